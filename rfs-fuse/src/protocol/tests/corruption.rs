//! Corrupted, truncated or arbitrarily chunked streams: never a wrong message, never a panic.

use super::super::frame::{FrameDecoder, HEADER_LEN, encode_frame};
use super::super::stream::MessageDecoder;
use super::*;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// Feeds `bytes` then end of stream; returns the messages decoded, and whether the stream
/// was rejected (an error, or ending inside a frame).
fn run(bytes: &[u8]) -> (Vec<Message>, bool) {
    let mut dec = MessageDecoder::new();
    dec.push(bytes);
    let mut out = Vec::new();
    loop {
        match dec.next() {
            Ok(Some(msg)) => out.push(msg),
            Ok(None) => return (out, dec.finish().is_err()),
            Err(_) => return (out, true),
        }
    }
}

/// Flips one bit at a time, everywhere in each sample frame: the CRC (or the length check)
/// catches every one of them.
#[test]
fn every_single_bit_flip_of_a_frame_is_rejected() {
    for msg in samples() {
        let frame = frame_of(&msg);
        for bit in 0..frame.len() * 8 {
            let mut bad = frame.to_vec();
            bad[bit / 8] ^= 1 << (bit % 8);
            let (msgs, rejected) = run(&bad);
            assert!(
                msgs.is_empty() && rejected,
                "bit {bit} of {msg:?} went undetected"
            );
        }
    }
}

/// Below the CRC: a flipped payload re-framed with a valid CRC either fails to decode or
/// decodes into a message that encodes back to exactly those bytes (the encoding is
/// canonical, so no two byte strings mean the same message).
#[test]
fn bit_flipped_payloads_fail_or_decode_canonically() {
    for msg in samples() {
        let good = payload(&msg);
        for bit in 0..good.len() * 8 {
            let mut bad = good.to_vec();
            bad[bit / 8] ^= 1 << (bit % 8);
            let bad = Bytes::from(bad);
            if let Ok(other) = codec::decode(&bad) {
                assert_eq!(payload(&other), bad, "non-canonical decode of bit {bit}");
            }
            // And through the frame layer: no panic, same verdict.
            let (msgs, _) = run(&encode_frame(&bad).unwrap());
            assert_eq!(msgs.len(), usize::from(codec::decode(&bad).is_ok()));
        }
    }
}

/// A prefix of a frame is "need more" (and an error at end of stream); a prefix of a
/// payload never decodes.
#[test]
fn truncation_never_yields_a_message() {
    for msg in samples() {
        let frame = frame_of(&msg);
        for len in 0..frame.len() {
            let (msgs, rejected) = run(&frame[..len]);
            assert!(msgs.is_empty(), "prefix of {len} bytes decoded");
            assert_eq!(rejected, len > 0, "prefix of {len} bytes");
        }
        let payload = &frame[HEADER_LEN..];
        for len in 0..payload.len() {
            let prefix = Bytes::copy_from_slice(&payload[..len]);
            assert!(codec::decode(&prefix).is_err(), "payload prefix {len}");
        }
    }
}

fn random_stream(rng: &mut StdRng, n: usize) -> (Vec<Message>, Vec<u8>) {
    let msgs: Vec<Message> = (0..n).map(|_| random::message(rng)).collect();
    let mut bytes = Vec::new();
    for msg in &msgs {
        bytes.extend_from_slice(&frame_of(msg));
    }
    (msgs, bytes)
}

/// Chunk sizes from single bytes to whole frames, as a transport may deliver them.
fn chunk_len(rng: &mut StdRng) -> usize {
    match rng.random_range(0..3) {
        0 => rng.random_range(1..=8),
        1 => rng.random_range(1..=1500),
        _ => rng.random_range(1..=300_000),
    }
}

#[test]
fn random_streams_split_at_random_boundaries_decode_in_order() {
    let mut rng = StdRng::seed_from_u64(0x5EED_0002);
    for _ in 0..10 {
        let (msgs, bytes) = random_stream(&mut rng, 400);
        let mut dec = MessageDecoder::new();
        let mut frames = FrameDecoder::new();
        let mut got = Vec::new();
        let mut payloads = 0;
        let mut rest = &bytes[..];
        while !rest.is_empty() {
            let (chunk, tail) = rest.split_at(chunk_len(&mut rng).min(rest.len()));
            rest = tail;
            dec.push(chunk);
            while let Some(msg) = dec.next().unwrap() {
                got.push(msg);
            }
            frames.push(chunk);
            while let Some(payload) = frames.next().unwrap() {
                assert_eq!(codec::decode(&payload).unwrap(), msgs[payloads]);
                payloads += 1;
            }
        }
        assert_eq!(got, msgs);
        assert_eq!(payloads, msgs.len());
        dec.finish().unwrap();
        frames.finish().unwrap();
    }
}

/// One flipped bit anywhere in a stream: what decodes before it is the original prefix,
/// then the stream is rejected.
#[test]
fn a_flipped_bit_in_a_stream_stops_it_without_a_wrong_message() {
    let mut rng = StdRng::seed_from_u64(0x5EED_0003);
    for _ in 0..300 {
        let (msgs, mut bytes) = random_stream(&mut rng, 20);
        let bit = rng.random_range(0..bytes.len() * 8);
        bytes[bit / 8] ^= 1 << (bit % 8);
        let (got, rejected) = run(&bytes);
        assert!(rejected, "flip of bit {bit} went undetected");
        assert!(got.len() < msgs.len());
        assert_eq!(got[..], msgs[..got.len()]);
    }
}
