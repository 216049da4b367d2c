//! The journal conversation over a socket pair: a former primary's journal bytes arrive
//! whole, per root, and anything inconsistent is refused.

use bytes::Bytes;
use rfs_fuse::link::{LinkError, Opening, request_journal, serve_journal};
use rfs_fuse::protocol::{Message, encode_message};
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;

/// Serves one journal request for module `db` with `journals`.
fn peer(journals: Vec<Vec<u8>>) -> (UnixStream, std::thread::JoinHandle<Result<u64, LinkError>>) {
    let (ours, theirs) = UnixStream::pair().unwrap();
    let thread = std::thread::spawn(move || {
        let opening = Opening::read(theirs.try_clone().unwrap())?;
        serve_journal(opening, theirs, "db", &journals)
    });
    (ours, thread)
}

#[test]
fn each_roots_journal_arrives_whole_even_across_many_chunks() {
    let big: Vec<u8> = (0..(3 << 20) + 5).map(|i| (i % 251) as u8).collect();
    let journals = vec![big.clone(), Vec::new(), b"records".to_vec()];
    let (stream, served) = peer(journals.clone());
    let got = request_journal(stream.try_clone().unwrap(), stream, "db", 3).unwrap();
    assert_eq!(got, journals);
    assert_eq!(served.join().unwrap().unwrap(), big.len() as u64 + 7);
}

#[test]
fn a_request_for_another_module_or_root_count_is_refused_with_the_reason() {
    let (stream, served) = peer(vec![Vec::new()]);
    let error = request_journal(stream.try_clone().unwrap(), stream, "web", 1).unwrap_err();
    assert!(
        matches!(&error, LinkError::Refused(r) if r.contains("module mismatch")),
        "{error}"
    );
    assert!(served.join().unwrap().is_err());
    let (stream, served) = peer(vec![Vec::new()]);
    let error = request_journal(stream.try_clone().unwrap(), stream, "db", 2).unwrap_err();
    assert!(matches!(&error, LinkError::Refused(_)), "{error}");
    assert!(served.join().unwrap().is_err());
}

/// A peer that answers with `messages`, whatever it was asked.
fn answering(messages: Vec<Message>) -> UnixStream {
    let (ours, mut theirs) = UnixStream::pair().unwrap();
    std::thread::spawn(move || {
        let mut request = [0u8; 64];
        let _ = theirs.read(&mut request);
        for message in &messages {
            let _ = theirs.write_all(&encode_message(message).unwrap());
        }
    });
    ours
}

#[test]
fn a_chunk_beyond_the_roots_or_a_wrong_total_is_refused() {
    let chunk = |root| Message::JournalChunk {
        root,
        data: Bytes::from_static(b"abc"),
    };
    let stream = answering(vec![chunk(1), Message::JournalEnd { bytes: 3 }]);
    let error = request_journal(stream.try_clone().unwrap(), stream, "db", 1).unwrap_err();
    assert!(error.to_string().contains("names root 1"), "{error}");
    let stream = answering(vec![chunk(0), Message::JournalEnd { bytes: 4 }]);
    let error = request_journal(stream.try_clone().unwrap(), stream, "db", 1).unwrap_err();
    assert!(
        error.to_string().contains("announces 4 bytes but 3"),
        "{error}"
    );
    let stream = answering(vec![chunk(0)]);
    let error = request_journal(stream.try_clone().unwrap(), stream, "db", 1).unwrap_err();
    assert!(error.to_string().contains("before JournalEnd"), "{error}");
}
