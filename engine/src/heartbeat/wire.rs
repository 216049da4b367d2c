//! The heartbeat datagram: one per module per pulse, authenticated with the cluster key.
//!
//! ```text
//! "HKHB" | version u8 = 1 | body length u32 | body | MAC (32 bytes)
//! body = module length u32 | module | node length u32 | node | seq u64 | advert length u32 | advert (JSON)
//! ```
//! Integers are big-endian. The MAC is keyed BLAKE3 (key: [`HeartbeatKey`]) over every byte
//! before it. Decoding checks, in order: size bounds, magic, version, MAC, then parses the
//! body. Only the first three run on unauthenticated bytes, and all of them on fixed offsets:
//! nothing an outsider sends reaches the parser. The parser still trusts no length prefix:
//! every one is checked against the bytes actually left before anything is sliced, and
//! nothing is allocated from a prefix.

use crate::key::HeartbeatKey;
use crate::mirror::advert::Advert;
use serde::Serialize;
use serde::de::DeserializeOwned;

const MAGIC: [u8; 4] = *b"HKHB";
pub const VERSION: u8 = 1;
const HEADER_LEN: usize = 4 + 1 + 4;
const MAC_LEN: usize = 32;
/// Two empty names, a seq and an empty advert: 4 + 4 + 8 + 4.
const MIN_BODY_LEN: usize = 20;
/// The smallest datagram that could be well formed.
pub const MIN_DATAGRAM: usize = HEADER_LEN + MIN_BODY_LEN + MAC_LEN;
/// Below the usual 1500-byte MTU, leaving room for IP and UDP headers: never fragmented.
pub const MAX_DATAGRAM: usize = 1400;
/// Module names are at most 32 bytes (config), node names are host names (at most 64).
pub const MAX_NAME: usize = 64;

/// One heartbeat: `node` says how it sees `module`. `advert.incarnation` is the sender's
/// daemon incarnation; with `seq` it orders heartbeats against replay (see `replay`). The
/// advert is a mirror module's by default; farm modules send theirs in the same envelope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Heartbeat<A = Advert> {
    pub module: String,
    pub node: String,
    pub seq: u64,
    pub advert: A,
}

#[derive(Debug, thiserror::Error)]
pub enum WireError {
    #[error("truncated: {len} bytes, need at least {MIN_DATAGRAM}")]
    Truncated { len: usize },
    #[error("oversize: {len} bytes, at most {MAX_DATAGRAM}")]
    Oversize { len: usize },
    #[error("bad magic {found:02x?}: not a hakit heartbeat")]
    BadMagic { found: [u8; 4] },
    #[error("unsupported version {found}, this node speaks {VERSION}: upgrade both nodes")]
    BadVersion { found: u8 },
    #[error("bad MAC: wrong cluster key or tampered datagram")]
    BadMac,
    #[error("body length field says {declared} bytes, the datagram holds {actual}")]
    BodyLength { declared: u32, actual: usize },
    #[error("truncated body: {field} needs {need} bytes, {left} left")]
    ShortField {
        field: &'static str,
        need: u64,
        left: usize,
    },
    #[error("{field} name is {len} bytes, at most {MAX_NAME}")]
    NameTooLong { field: &'static str, len: u32 },
    #[error("{field} name is empty")]
    EmptyName { field: &'static str },
    #[error("{field} name is not UTF-8 text without control characters")]
    BadName { field: &'static str },
    #[error("bad advert: {0}")]
    BadAdvert(#[source] serde_json::Error),
    #[error("{0} unexpected bytes after the advert")]
    Trailing(usize),
}

/// The datagram for `hb`. Names longer than [`MAX_NAME`] produce a datagram the peer
/// rejects (configuration keeps them shorter).
/// Numbers and seals the heartbeats one node sends for one module.
#[derive(Debug, Clone)]
pub struct Sealer {
    pub module: String,
    pub node: String,
    pub key: HeartbeatKey,
    seq: u64,
}

impl Sealer {
    pub fn new(module: &str, node: &str, key: HeartbeatKey) -> Sealer {
        Sealer {
            module: module.to_string(),
            node: node.to_string(),
            key,
            seq: 0,
        }
    }

    /// The next datagram, carrying `advert`.
    pub fn seal<A: Serialize>(&mut self, advert: A) -> Vec<u8> {
        self.seq += 1;
        encode(
            &self.key,
            &Heartbeat {
                module: self.module.clone(),
                node: self.node.clone(),
                seq: self.seq,
                advert,
            },
        )
    }
}

pub fn encode<A: Serialize>(key: &HeartbeatKey, hb: &Heartbeat<A>) -> Vec<u8> {
    // Cannot fail: adverts are plain integers, booleans, strings, sets and unit enums. Were
    // it ever to, the empty advert is rejected by the peer with a clear error rather than
    // panic here.
    let advert = serde_json::to_vec(&hb.advert).unwrap_or_default();
    let mut body =
        Vec::with_capacity(MIN_BODY_LEN + hb.module.len() + hb.node.len() + advert.len());
    put_bytes(&mut body, hb.module.as_bytes());
    put_bytes(&mut body, hb.node.as_bytes());
    body.extend_from_slice(&hb.seq.to_be_bytes());
    put_bytes(&mut body, &advert);
    seal(key, len_u32(body.len()), &body)
}

/// Authenticates and parses one mirror heartbeat.
pub fn decode(key: &HeartbeatKey, datagram: &[u8]) -> Result<Heartbeat, WireError> {
    decode_as(key, datagram)
}

/// Authenticates and parses one datagram carrying an advert of type `A`.
pub fn decode_as<A: DeserializeOwned>(
    key: &HeartbeatKey,
    datagram: &[u8],
) -> Result<Heartbeat<A>, WireError> {
    let len = datagram.len();
    if len < MIN_DATAGRAM {
        return Err(WireError::Truncated { len });
    }
    if len > MAX_DATAGRAM {
        return Err(WireError::Oversize { len });
    }
    let Some((signed, mac)) = datagram.split_last_chunk::<MAC_LEN>() else {
        return Err(WireError::Truncated { len });
    };
    let mut r = Reader(signed);
    let found = r.array::<4>("magic")?;
    if found != MAGIC {
        return Err(WireError::BadMagic { found });
    }
    let [found] = r.array::<1>("version")?;
    if found != VERSION {
        return Err(WireError::BadVersion { found });
    }
    // `blake3::Hash` equality is constant-time: no timing oracle on the MAC.
    if blake3::keyed_hash(key.bytes(), signed) != blake3::Hash::from_bytes(*mac) {
        return Err(WireError::BadMac);
    }
    let declared = r.u32("body length")?;
    if usize::try_from(declared).ok() != Some(r.0.len()) {
        return Err(WireError::BodyLength {
            declared,
            actual: r.0.len(),
        });
    }
    let module = r.name("module")?;
    let node = r.name("node")?;
    let seq = u64::from_be_bytes(r.array("seq")?);
    let advert_len = r.u32("advert length")?;
    let advert = r.bytes("advert", advert_len)?;
    if !r.0.is_empty() {
        return Err(WireError::Trailing(r.0.len()));
    }
    let advert = serde_json::from_slice(advert).map_err(WireError::BadAdvert)?;
    Ok(Heartbeat {
        module,
        node,
        seq,
        advert,
    })
}

/// Header, `body`, MAC. `body_len` is a parameter so that tests can lie about it.
fn seal(key: &HeartbeatKey, body_len: u32, body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER_LEN + body.len() + MAC_LEN);
    out.extend_from_slice(&MAGIC);
    out.push(VERSION);
    out.extend_from_slice(&body_len.to_be_bytes());
    out.extend_from_slice(body);
    let mac = blake3::keyed_hash(key.bytes(), &out);
    out.extend_from_slice(mac.as_bytes());
    out
}

fn put_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    out.extend_from_slice(&len_u32(bytes.len()).to_be_bytes());
    out.extend_from_slice(bytes);
}

/// Lengths beyond u32 saturate: the peer rejects such a datagram as oversize anyway.
fn len_u32(len: usize) -> u32 {
    u32::try_from(len).unwrap_or(u32::MAX)
}

/// Reads fields front to back, checking every length against what is left.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn bytes(&mut self, field: &'static str, len: u32) -> Result<&'a [u8], WireError> {
        let short = || WireError::ShortField {
            field,
            need: u64::from(len),
            left: self.0.len(),
        };
        let n = usize::try_from(len).map_err(|_| short())?;
        if n > self.0.len() {
            return Err(short());
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }

    fn array<const N: usize>(&mut self, field: &'static str) -> Result<[u8; N], WireError> {
        let Some((head, rest)) = self.0.split_first_chunk::<N>() else {
            return Err(WireError::ShortField {
                field,
                need: N as u64,
                left: self.0.len(),
            });
        };
        self.0 = rest;
        Ok(*head)
    }

    fn u32(&mut self, field: &'static str) -> Result<u32, WireError> {
        self.array(field).map(u32::from_be_bytes)
    }

    /// A length-checked, non-empty UTF-8 name without control characters (names go to logs).
    fn name(&mut self, field: &'static str) -> Result<String, WireError> {
        let len = self.u32(field)?;
        if !usize::try_from(len).is_ok_and(|n| n <= MAX_NAME) {
            return Err(WireError::NameTooLong { field, len });
        }
        if len == 0 {
            return Err(WireError::EmptyName { field });
        }
        let raw = self.bytes(field, len)?;
        match std::str::from_utf8(raw) {
            Ok(s) if !s.chars().any(char::is_control) => Ok(s.to_string()),
            _ => Err(WireError::BadName { field }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::key::ClusterKey;
    use crate::mirror::advert::{CopyFigures, DurablePoint};
    use crate::mirror::data::{DataRecord, Generation, LastRole};
    use crate::mirror::role::{Readiness, Role};
    use rand::{Rng, SeedableRng, rngs::StdRng};

    fn key() -> HeartbeatKey {
        ClusterKey::from_bytes([42; 32]).heartbeat_key()
    }

    fn heartbeat() -> Heartbeat {
        Heartbeat {
            module: "web".into(),
            node: "node-a".into(),
            seq: 17,
            advert: Advert {
                incarnation: 1_780_000_000_000_000,
                role: Role::Prim,
                readiness: Readiness::Ready,
                data: DataRecord {
                    generation: Generation { counter: 3, tag: 9 },
                    synced: Generation { counter: 2, tag: 5 },
                    previous: Generation { counter: 2, tag: 5 },
                    consistent: true,
                    last_role: LastRole::Prim,
                },
                yielding: false,
                swap_request: true,
                serving_ms: 1234,
                join_only: false,
                join_id: 7,
                acked_join: 7,
                copied_join: 0,
                broken_join: 0,
                join_base: None,
                copy: None,
                durable: None,
                sent_ms: 99,
                echo_ms: 98,
                echo_incarnation: 5,
            },
        }
    }

    /// A body with the given fields, sealed with the right key: reaches the parser.
    fn body(module: &[u8], node: &[u8], advert: &[u8]) -> Vec<u8> {
        let mut b = Vec::new();
        put_bytes(&mut b, module);
        put_bytes(&mut b, node);
        b.extend_from_slice(&1u64.to_be_bytes());
        put_bytes(&mut b, advert);
        b
    }

    fn sealed(body: &[u8]) -> Vec<u8> {
        seal(&key(), len_u32(body.len()), body)
    }

    #[test]
    fn a_sealer_numbers_its_heartbeats_from_one() {
        let mut sealer = Sealer::new("web", "node-a", key());
        let advert = heartbeat().advert;
        for seq in 1..=3 {
            let hb = decode(&key(), &sealer.seal(advert)).unwrap();
            assert_eq!(
                (hb.module.as_str(), hb.node.as_str(), hb.seq),
                ("web", "node-a", seq)
            );
            assert_eq!(hb.advert, advert);
        }
    }

    #[test]
    fn round_trip() {
        let hb = heartbeat();
        let d = encode(&key(), &hb);
        assert!(d.len() <= MAX_DATAGRAM);
        assert_eq!(&d[..5], b"HKHB\x01");
        assert_eq!(decode(&key(), &d).unwrap(), hb);
    }

    #[test]
    fn largest_heartbeat_fits_in_a_datagram() {
        let mut hb = heartbeat();
        hb.module = "m".repeat(MAX_NAME);
        hb.node = "\u{e9}".repeat(MAX_NAME / 2);
        hb.seq = u64::MAX;
        let a = &mut hb.advert;
        for v in [
            &mut a.incarnation,
            &mut a.serving_ms,
            &mut a.join_id,
            &mut a.acked_join,
            &mut a.sent_ms,
            &mut a.echo_ms,
            &mut a.echo_incarnation,
        ] {
            *v = u64::MAX;
        }
        let g = Generation {
            counter: u64::MAX,
            tag: u64::MAX,
        };
        a.data = DataRecord {
            generation: g,
            synced: g,
            previous: g,
            consistent: false,
            last_role: LastRole::HandedOver,
        };
        a.role = Role::Second;
        a.readiness = Readiness::Transient;
        a.join_base = Some(g);
        a.copy = Some(CopyFigures {
            bytes: u64::MAX,
            bytes_total: Some(u64::MAX),
            eta_seconds: Some(u64::MAX),
        });
        a.durable = Some(DurablePoint {
            session: u64::MAX,
            next: u64::MAX,
        });
        let d = encode(&key(), &hb);
        // 1070 bytes today, every number at its widest: room left for new Advert fields.
        assert!(d.len() <= MAX_DATAGRAM - 200, "{} bytes", d.len());
        assert_eq!(decode(&key(), &d).unwrap(), hb);
    }

    #[test]
    fn every_single_bit_flip_is_rejected() {
        let d = encode(&key(), &heartbeat());
        for bit in 0..d.len() * 8 {
            let mut bad = d.clone();
            bad[bit / 8] ^= 1 << (bit % 8);
            let err = decode(&key(), &bad).unwrap_err();
            match bit / 8 {
                0..4 => assert!(
                    matches!(err, WireError::BadMagic { .. }),
                    "bit {bit}: {err}"
                ),
                4 => assert!(
                    matches!(err, WireError::BadVersion { .. }),
                    "bit {bit}: {err}"
                ),
                _ => assert!(matches!(err, WireError::BadMac), "bit {bit}: {err}"),
            }
        }
    }

    #[test]
    fn truncation_at_every_length_and_extension_are_rejected() {
        let d = encode(&key(), &heartbeat());
        for n in 0..d.len() {
            let err = decode(&key(), &d[..n]).unwrap_err();
            if n < MIN_DATAGRAM {
                assert!(
                    matches!(err, WireError::Truncated { len } if len == n),
                    "{n}: {err}"
                );
            } else {
                assert!(matches!(err, WireError::BadMac), "{n}: {err}");
            }
        }
        let err = decode(&key(), &[0; 12]).unwrap_err().to_string();
        assert_eq!(
            err,
            format!("truncated: 12 bytes, need at least {MIN_DATAGRAM}")
        );
        let mut longer = d.clone();
        longer.push(0);
        assert!(matches!(decode(&key(), &longer), Err(WireError::BadMac)));
    }

    #[test]
    fn wrong_key_is_rejected() {
        let d = encode(&key(), &heartbeat());
        let other = ClusterKey::from_bytes([43; 32]).heartbeat_key();
        let err = decode(&other, &d).unwrap_err();
        assert_eq!(
            err.to_string(),
            "bad MAC: wrong cluster key or tampered datagram"
        );
        // The raw cluster key is not the heartbeat key either.
        let mut raw = d[..d.len() - 32].to_vec();
        raw.extend_from_slice(blake3::keyed_hash(&[42; 32], &raw).as_bytes());
        assert!(matches!(decode(&key(), &raw), Err(WireError::BadMac)));
    }

    #[test]
    fn oversize_is_rejected_before_anything_else() {
        let mut d = encode(&key(), &heartbeat());
        d.resize(MAX_DATAGRAM + 1, 0);
        let err = decode(&key(), &d).unwrap_err();
        assert!(matches!(err, WireError::Oversize { len } if len == MAX_DATAGRAM + 1));
        let d = sealed(&body(b"m", b"n", &vec![b' '; MAX_DATAGRAM]));
        assert!(matches!(
            decode(&key(), &d),
            Err(WireError::Oversize { .. })
        ));
    }

    #[test]
    fn hostile_lengths_are_rejected_without_allocation() {
        let advert = serde_json::to_vec(&heartbeat().advert).unwrap();
        let good = body(b"web", b"node-a", &advert);
        assert!(decode(&key(), &sealed(&good)).is_ok());

        let lying = seal(&key(), u32::MAX, &good);
        let err = decode(&key(), &lying).unwrap_err();
        assert!(
            matches!(
                err,
                WireError::BodyLength {
                    declared: u32::MAX,
                    ..
                }
            ),
            "{err}"
        );

        let mut b = good.clone();
        b[..4].copy_from_slice(&u32::MAX.to_be_bytes());
        let err = decode(&key(), &sealed(&b)).unwrap_err();
        assert_eq!(
            err.to_string(),
            "module name is 4294967295 bytes, at most 64"
        );

        // node length prefix right after "web"
        let mut b = good.clone();
        b[7..11].copy_from_slice(&64u32.to_be_bytes());
        let err = decode(&key(), &sealed(&b)).unwrap_err();
        assert!(matches!(err, WireError::BadName { field: "node" }), "{err}");

        let mut b = body(b"web", b"node-a", b"");
        let at = b.len() - 4;
        b[at..].copy_from_slice(&u32::MAX.to_be_bytes());
        let err = decode(&key(), &sealed(&b)).unwrap_err();
        assert_eq!(
            err.to_string(),
            "truncated body: advert needs 4294967295 bytes, 0 left"
        );
    }

    #[test]
    fn bad_body_fields_are_named() {
        let advert = serde_json::to_vec(&heartbeat().advert).unwrap();
        let cases: [(Vec<u8>, &str); 6] = [
            (body(b"", b"n", &advert), "module name is empty"),
            (
                body(&[b'm'; 65], b"n", &advert),
                "module name is 65 bytes, at most 64",
            ),
            (body(b"m", b"\xff", &advert), "node name is not UTF-8"),
            (body(b"m", b"a\nb", &advert), "node name is not UTF-8"),
            (body(b"m", b"n", b"{}"), "bad advert: missing field"),
            (body(b"m", b"n", b"[1,2"), "bad advert:"),
        ];
        for (b, want) in cases {
            let err = decode(&key(), &sealed(&b)).unwrap_err().to_string();
            assert!(err.starts_with(want), "{err} (want {want})");
        }
        let mut b = body(b"m", b"n", &advert);
        b.push(b' ');
        let err = decode(&key(), &sealed(&b)).unwrap_err();
        assert!(matches!(err, WireError::Trailing(1)), "{err}");
    }

    #[test]
    fn random_input_never_panics() {
        let mut rng = StdRng::seed_from_u64(0x4b48_4842);
        let valid = encode(&key(), &heartbeat());
        let advert = serde_json::to_vec(&heartbeat().advert).unwrap();
        let good_body = body(b"web", b"node-a", &advert);
        for _ in 0..20_000 {
            // Unauthenticated noise, with a plausible header half the time.
            let mut noise = vec![0u8; rng.random_range(0..=MAX_DATAGRAM + 8)];
            rng.fill(&mut noise[..]);
            if rng.random_bool(0.5) && noise.len() >= 5 {
                noise[..5].copy_from_slice(b"HKHB\x01");
            }
            assert!(decode(&key(), &noise).is_err());
            // Mutated bodies sealed with the right key: exercises the body parser itself.
            let mut b = good_body.clone();
            for _ in 0..rng.random_range(1..8) {
                let i = rng.random_range(0..b.len());
                b[i] = rng.random();
            }
            b.truncate(rng.random_range(0..=b.len()));
            let _ = decode(&key(), &sealed(&b));
            // Random bit flips on a valid datagram.
            let mut d = valid.clone();
            let i = rng.random_range(0..d.len());
            d[i] ^= rng.random_range(1..=255u8);
            assert!(decode(&key(), &d).is_err());
        }
    }
}
