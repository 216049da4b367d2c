//! Running commands with a deadline, output captured, and errors that say which command failed.

use std::fs::File;
use std::io::{Read, Seek};
use std::process::{Command, Output, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

/// Longest a command run by the lab may take before it is killed (guards against hangs only).
pub const COMMAND_TIMEOUT: Duration = Duration::from_secs(60);

/// The command as a shell-like line.
pub fn describe(cmd: &Command) -> String {
    let mut words = vec![cmd.get_program().to_string_lossy().into_owned()];
    words.extend(cmd.get_args().map(|a| a.to_string_lossy().into_owned()));
    words.join(" ")
}

/// Runs `cmd` to completion (killed after `timeout`), whatever its exit status. Output goes to
/// anonymous files, not pipes, so a background process that keeps them open cannot block us.
pub fn output(cmd: &mut Command, what: &str, timeout: Duration) -> Result<Output> {
    let mut out = tempfile::tempfile().context("creating a temporary file")?;
    let mut err = tempfile::tempfile().context("creating a temporary file")?;
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(out.try_clone()?)
        .stderr(err.try_clone()?)
        .spawn()
        .with_context(|| format!("cannot start `{what}`"))?;
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break status;
        }
        if start.elapsed() > timeout {
            // Already gone if it ended meanwhile; either way reap it.
            let _ = child.kill();
            child.wait()?;
            bail!("`{what}` did not finish within {timeout:?}: killed");
        }
        sleep(Duration::from_millis(5));
    };
    Ok(Output {
        status,
        stdout: read_all(&mut out)?,
        stderr: read_all(&mut err)?,
    })
}

/// Like [`output`], but a non-zero exit is an error naming the command and its stderr.
pub fn checked(cmd: &mut Command, what: &str, timeout: Duration) -> Result<Output> {
    let out = output(cmd, what, timeout)?;
    if !out.status.success() {
        bail!(
            "`{what}` failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(out)
}

/// Runs a command in the root namespaces (e.g. `ip ...`), failing if it fails.
pub fn root(program: &str, args: &[&str]) -> Result<Output> {
    let mut cmd = Command::new(program);
    cmd.args(args);
    let what = describe(&cmd);
    checked(&mut cmd, &what, COMMAND_TIMEOUT)
}

fn read_all(file: &mut File) -> Result<Vec<u8>> {
    let mut buf = Vec::new();
    file.rewind()?;
    file.read_to_end(&mut buf)?;
    Ok(buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_name_the_command_and_its_stderr() {
        let err = root("sh", &["-c", "echo oops >&2; exit 3"]).unwrap_err();
        let msg = format!("{err:#}");
        assert!(msg.contains("sh -c echo oops"), "{msg}");
        assert!(msg.contains("oops"), "{msg}");
    }

    #[test]
    fn a_background_process_holding_the_output_does_not_block() {
        let out = root("sh", &["-c", "sleep 5 & echo hi"]).unwrap();
        assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "hi");
    }

    #[test]
    fn hung_commands_are_killed() {
        let mut cmd = Command::new("sleep");
        cmd.arg("10");
        let err = output(&mut cmd, "sleep 10", Duration::from_millis(100)).unwrap_err();
        assert!(format!("{err}").contains("did not finish"));
    }
}
