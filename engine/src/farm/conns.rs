//! Counting the farm's open TCP connections per bucket from the kernel's socket tables
//! (`/proc/net/tcp`, `/proc/net/tcp6`): how a draining bucket knows its connections ended.
//! Pure parsing: the driver reads the files and gives their text.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Socket states in which a connection still expects packets from its client:
/// SYN_RECV, ESTABLISHED, FIN_WAIT1, FIN_WAIT2, CLOSE_WAIT, LAST_ACK, CLOSING. TIME_WAIT and
/// LISTEN do not count.
const OPEN_STATES: [u8; 7] = [0x03, 0x01, 0x04, 0x05, 0x08, 0x09, 0x0b];

/// One connection to a local address: the client's address and port, the local port.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Conn {
    pub local: IpAddr,
    pub local_port: u16,
    pub client: IpAddr,
    pub client_port: u16,
}

/// The open connections listed in the text of `/proc/net/tcp` or `/proc/net/tcp6`. Lines that
/// do not parse (the header, a format this code does not know) are skipped.
pub fn open_connections(table: &str) -> Vec<Conn> {
    table.lines().filter_map(parse_line).collect()
}

/// Per bucket, the open connections whose local address is `vip`; `bucket` gives a
/// connection's bucket (`None`: not farm traffic, e.g. a port without a rule).
pub fn per_bucket(
    conns: &[Conn],
    vip: IpAddr,
    buckets: usize,
    bucket: impl Fn(&Conn) -> Option<usize>,
) -> Vec<u32> {
    let mut counts = vec![0u32; buckets];
    for c in conns.iter().filter(|c| c.local == vip) {
        if let Some(n) = bucket(c).and_then(|b| counts.get_mut(b)) {
            *n += 1;
        }
    }
    counts
}

/// `  0: 0A58000A:1F90 6400580A:C350 01 ...`
fn parse_line(line: &str) -> Option<Conn> {
    let mut fields = line.split_whitespace();
    fields.next()?.strip_suffix(':')?;
    let (local, local_port) = endpoint(fields.next()?)?;
    let (client, client_port) = endpoint(fields.next()?)?;
    let state = u8::from_str_radix(fields.next()?, 16).ok()?;
    OPEN_STATES.contains(&state).then_some(Conn {
        local,
        local_port,
        client,
        client_port,
    })
}

/// `ADDR:PORT` in hex: the address as the kernel holds it in memory (32-bit words printed in
/// this machine's byte order), the port as a number.
fn endpoint(text: &str) -> Option<(IpAddr, u16)> {
    let (addr, port) = text.split_once(':')?;
    let port = u16::from_str_radix(port, 16).ok()?;
    let words = (0..addr.len() / 8)
        .map(|i| addr.get(i * 8..i * 8 + 8).and_then(word))
        .collect::<Option<Vec<[u8; 4]>>>()?;
    let addr = match (addr.len(), words.as_slice()) {
        (8, [w]) => IpAddr::V4(Ipv4Addr::from(*w)),
        (32, [a, b, c, d]) => {
            let mut o = [0u8; 16];
            for (chunk, w) in o.chunks_exact_mut(4).zip([a, b, c, d]) {
                chunk.copy_from_slice(w);
            }
            IpAddr::V6(Ipv6Addr::from(o))
        }
        _ => return None,
    };
    Some((addr, port))
}

fn word(hex: &str) -> Option<[u8; 4]> {
    u32::from_str_radix(hex, 16).ok().map(u32::to_ne_bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The kernel's text for an address, on this machine.
    fn hex4(a: Ipv4Addr) -> String {
        format!("{:08X}", u32::from_ne_bytes(a.octets()))
    }

    fn line(local: Ipv4Addr, lport: u16, client: Ipv4Addr, cport: u16, state: u8) -> String {
        format!(
            "   3: {}:{lport:04X} {}:{cport:04X} {state:02X} 00000000:00000000 00:00000000 \
             00000000     0        0 12345 1 0000000000000000 20 4 30 10 -1",
            hex4(local),
            hex4(client)
        )
    }

    #[test]
    fn open_connections_to_the_vip_are_counted_per_bucket() {
        let vip = Ipv4Addr::new(10, 88, 0, 10);
        let other = Ipv4Addr::new(10, 88, 0, 1);
        let client = Ipv4Addr::new(10, 88, 0, 100);
        let text = [
            "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid",
            &line(vip, 7000, Ipv4Addr::UNSPECIFIED, 0, 0x0a),
            &line(vip, 7000, client, 40000, 0x01),
            &line(vip, 7000, client, 40001, 0x08),
            &line(vip, 7000, client, 40002, 0x06),
            &line(other, 22, client, 40003, 0x01),
            "garbage",
            "  4: zz:1 00:00 01",
        ]
        .join("\n");
        let conns = open_connections(&text);
        assert_eq!(conns.len(), 3, "{conns:?}");
        assert_eq!(conns[0].client, IpAddr::V4(client));
        assert_eq!(conns[0].client_port, 40000);
        assert_eq!(conns[0].local_port, 7000);
        let counts = per_bucket(&conns, IpAddr::V4(vip), 4, |c| {
            Some(usize::from(c.client_port % 2))
        });
        assert_eq!(counts, [1, 1, 0, 0]);
        // A bucket outside the table is ignored, not a panic.
        let counts = per_bucket(&conns, IpAddr::V4(vip), 1, |_| Some(9));
        assert_eq!(counts, [0]);
    }

    #[test]
    fn ipv6_endpoints_parse() {
        let v6: Ipv6Addr = "fd00::10".parse().unwrap();
        let words: String = v6
            .octets()
            .chunks_exact(4)
            .map(|c| format!("{:08X}", u32::from_ne_bytes([c[0], c[1], c[2], c[3]])))
            .collect();
        let text = format!("  0: {words}:1B58 {words}:9C40 01 0 0");
        let conns = open_connections(&text);
        assert_eq!(conns.len(), 1);
        assert_eq!(conns[0].local, IpAddr::V6(v6));
        assert_eq!(conns[0].client_port, 0x9c40);
    }
}
