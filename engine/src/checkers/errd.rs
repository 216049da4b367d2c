//! Counting running processes for `<errd><proc name=.../>` by scanning `/proc`.

use std::io;
use std::path::Path;

/// Length at which the kernel truncates a process name (`comm`, TASK_COMM_LEN - 1).
const COMM_MAX: usize = 15;

/// How many live (non-zombie) processes match `name`:
/// - if `name` holds a `/` or a space, processes whose command line (arguments joined by
///   spaces) contains `name`;
/// - otherwise processes whose name (`/proc/<pid>/comm`) is `name`; for names longer than
///   the kernel keeps (15 bytes), the truncated name must match and the program's file
///   name (`argv[0]`'s last component) must be `name`.
///
/// Processes that vanish during the scan are skipped. Errors only if `/proc` cannot be read.
pub fn count_processes(name: &str) -> io::Result<u32> {
    count_in(Path::new("/proc"), name)
}

fn count_in(proc: &Path, name: &str) -> io::Result<u32> {
    let by_cmdline = name.contains('/') || name.contains(' ');
    let mut count = 0u32;
    for entry in std::fs::read_dir(proc)? {
        let Ok(entry) = entry else { continue };
        let file_name = entry.file_name();
        let Some(pid) = file_name.to_str() else {
            continue;
        };
        if pid.is_empty() || !pid.bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        let dir = entry.path();
        // Gone meanwhile, or unreadable: not counted.
        let Some((comm, state)) = std::fs::read(dir.join("stat"))
            .ok()
            .and_then(|s| parse_stat(&s))
        else {
            continue;
        };
        if state == 'Z' || state == 'X' {
            continue;
        }
        let matches = if by_cmdline {
            read_cmdline(&dir).is_some_and(|args| args.join(" ").contains(name))
        } else if comm == name {
            true
        } else if name.len() > COMM_MAX && name.starts_with(&comm) && comm.len() >= COMM_MAX {
            read_cmdline(&dir)
                .and_then(|args| args.into_iter().next())
                .is_some_and(|argv0| argv0.rsplit('/').next() == Some(name))
        } else {
            false
        };
        if matches {
            count = count.saturating_add(1);
        }
    }
    Ok(count)
}

/// `(comm, state)` from the contents of `/proc/<pid>/stat`: "pid (comm) S ...", where comm
/// may itself hold spaces and parentheses.
fn parse_stat(stat: &[u8]) -> Option<(String, char)> {
    let open = stat.iter().position(|&b| b == b'(')?;
    let close = stat.iter().rposition(|&b| b == b')')?;
    let comm = String::from_utf8_lossy(stat.get(open + 1..close)?).into_owned();
    let state = stat.get(close + 2).map(|&b| char::from(b))?;
    Some((comm, state))
}

/// The arguments of a process; `None` if gone or empty (kernel threads).
fn read_cmdline(dir: &Path) -> Option<Vec<String>> {
    let raw = std::fs::read(dir.join("cmdline")).ok()?;
    let args: Vec<String> = raw
        .split(|&b| b == 0)
        .filter(|a| !a.is_empty())
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .collect();
    (!args.is_empty()).then_some(args)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn own_comm() -> String {
        std::fs::read_to_string("/proc/self/comm")
            .expect("own comm")
            .trim_end_matches('\n')
            .to_string()
    }

    #[test]
    fn counts_this_test_process_by_name() {
        let comm = own_comm();
        assert!(count_processes(&comm).expect("scan /proc") >= 1, "{comm}");
    }

    #[test]
    fn counts_by_full_program_name_beyond_comm_length() {
        // The test binary's file name (hakit-<hash>) is longer than 15 bytes.
        let exe = std::env::current_exe().expect("exe");
        let name = exe
            .file_name()
            .expect("file name")
            .to_str()
            .expect("utf-8")
            .to_string();
        assert!(name.len() > COMM_MAX, "{name}");
        assert!(count_processes(&name).expect("scan") >= 1, "{name}");
        let wrong = format!("{}x", &name[..COMM_MAX]);
        assert_eq!(count_processes(&wrong).expect("scan"), 0, "{wrong}");
    }

    #[test]
    fn counts_by_command_line_substring() {
        let mut child = std::process::Command::new("sleep")
            .arg("31.4159")
            .spawn()
            .expect("spawn sleep");
        // Until the child has exec'd, its command line is still ours: wait for it.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        let mut counted = count_processes("sleep 31.4159");
        while !matches!(counted, Ok(1)) && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(10));
            counted = count_processes("sleep 31.4159");
        }
        let by_path = count_processes("/no/such/program --flag");
        let _ = child.kill();
        let _ = child.wait();
        assert_eq!(counted.expect("scan"), 1);
        assert_eq!(by_path.expect("scan"), 0);
    }

    #[test]
    fn absent_name_counts_zero() {
        assert_eq!(count_processes("hakit-absent-xyz").expect("scan"), 0);
    }

    #[test]
    fn stat_parsing() {
        assert_eq!(
            parse_stat(b"42 (we (ird) name) S 1 2"),
            Some(("we (ird) name".to_string(), 'S'))
        );
        assert_eq!(parse_stat(b"42 (zz) Z 1"), Some(("zz".to_string(), 'Z')));
        assert_eq!(parse_stat(b"garbage"), None);
        assert_eq!(parse_stat(b"1 (x)"), None);
    }
}
