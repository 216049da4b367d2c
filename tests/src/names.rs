//! Names of a lab's namespaces: `hkl<pid>_<n>` for the switch of its default network,
//! `hkl<pid>_<n>_net_<network>` for the switches of added networks and `hkl<pid>_<n>_<host>` for
//! hosts (host names have no `_`), where `<pid>` is the process that created the lab (so leftovers
//! of dead processes can be found) and `<n>` counts the labs of that process.

use std::sync::atomic::{AtomicU32, Ordering};

use anyhow::{Result, bail};

const TAG: &str = "hkl";
/// Longest host or network name: keeps `p-<host>` (the bridge port) within the 15 bytes of an
/// interface name.
const MAX_NAME: usize = 12;

/// A new lab prefix, unique within this machine while this process lives.
pub fn new_prefix() -> String {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("{TAG}{}_{n}", std::process::id())
}

/// The pid that created the lab owning namespace or folder `name`, if `name` is a lab's.
pub fn owner_pid(name: &str) -> Option<u32> {
    let rest = name.strip_prefix(TAG)?;
    let (pid, _) = rest.split_once('_')?;
    pid.parse().ok()
}

pub fn host_netns(prefix: &str, host: &str) -> String {
    format!("{prefix}_{host}")
}

pub fn network_netns(prefix: &str, network: &str) -> String {
    format!("{prefix}_net_{network}")
}

/// The name of a host's bridge port inside the switch namespace.
pub fn switch_port(host: &str) -> String {
    format!("p-{host}")
}

/// Checks the name of a host or network (`what`).
pub fn check_name(what: &str, name: &str) -> Result<()> {
    let ok_chars = name
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if name.is_empty() || name.len() > MAX_NAME || !ok_chars {
        bail!("bad {what} name {name:?}: use 1 to {MAX_NAME} characters among a-z, 0-9 and '-'");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_are_unique_and_name_their_owner() {
        let (a, b) = (new_prefix(), new_prefix());
        assert_ne!(a, b);
        assert_eq!(owner_pid(&a), Some(std::process::id()));
        for ns in [host_netns(&a, "node1"), network_netns(&a, "backup")] {
            assert_eq!(owner_pid(&ns), Some(std::process::id()));
        }
        assert_eq!(owner_pid("hklx_1"), None);
        assert_eq!(owner_pid("blue"), None);
    }

    #[test]
    fn host_names_fit_interface_names() {
        assert!(check_name("host", "node1").is_ok());
        assert!(check_name("host", "abcdefghijkl").is_ok());
        assert!(switch_port("abcdefghijkl").len() <= 15);
        for bad in ["", "abcdefghijklm", "Node1", "a b", "a/b", "a_b"] {
            assert!(check_name("host", bad).is_err(), "{bad:?} accepted");
        }
    }
}
