//! The module log: one timestamped line per event and decision, in
//! `<log_root>/<module>/module.log`. Scripts add lines through `hakit printi/printe`.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

/// Where a line comes from, shown in the log so that a reader can tell decisions apart from
/// what scripts said.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    Engine,
    ScriptInfo,
    ScriptError,
}

#[derive(Debug, Clone)]
pub struct ModuleLog {
    module: String,
    path: PathBuf,
    file: Arc<Mutex<File>>,
}

impl ModuleLog {
    /// Open (create) `<log_dir>/module.log` for appending.
    pub fn open(module: &str, log_dir: &Path) -> std::io::Result<ModuleLog> {
        std::fs::create_dir_all(log_dir)?;
        let path = log_dir.join("module.log");
        let file = open_append(&path)?;
        Ok(ModuleLog {
            module: module.to_string(),
            path,
            file: Arc::new(Mutex::new(file)),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Append one line; also echoed to the daemon's standard error. Write errors are
    /// reported on standard error and otherwise ignored: a full log disk must not stop
    /// failover decisions.
    pub fn line(&self, source: Source, text: &str) {
        let line = format_line(source, text);
        eprint!("[{}] {line}", self.module);
        let mut file = self.file.lock().unwrap_or_else(|e| e.into_inner());
        if let Err(e) = file.write_all(line.as_bytes()) {
            eprintln!(
                "[{}] cannot write {}: {e}",
                self.module,
                self.path.display()
            );
        }
    }
}

/// Append one line to a module log without a daemon (used by `hakit printi/printe`).
/// `O_APPEND` keeps concurrent writers' lines whole.
pub fn append_line(log_dir: &Path, source: Source, text: &str) -> std::io::Result<()> {
    std::fs::create_dir_all(log_dir)?;
    open_append(&log_dir.join("module.log"))?.write_all(format_line(source, text).as_bytes())
}

fn open_append(path: &Path) -> std::io::Result<File> {
    OpenOptions::new().create(true).append(true).open(path)
}

fn format_line(source: Source, text: &str) -> String {
    let tag = match source {
        Source::Engine => "I",
        Source::ScriptInfo => "I script:",
        Source::ScriptError => "E script:",
    };
    // One event, one line: embedded newlines would split it.
    let text = text.replace('\n', " | ");
    format!(
        "{} {tag} {text}\n",
        humantime::format_rfc3339_millis(SystemTime::now())
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_timestamped_tagged_and_single() {
        let dir = tempfile::tempdir().unwrap();
        let log = ModuleLog::open("web", dir.path()).unwrap();
        log.line(Source::Engine, "SECOND -> ALONE: node1 lost");
        append_line(dir.path(), Source::ScriptError, "disk full\nretrying").unwrap();
        let text = std::fs::read_to_string(dir.path().join("module.log")).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2);
        assert!(
            lines[0].ends_with(" I SECOND -> ALONE: node1 lost"),
            "{}",
            lines[0]
        );
        assert!(
            lines[1].ends_with(" E script: disk full | retrying"),
            "{}",
            lines[1]
        );
        assert!(lines[0].starts_with("20") && lines[0].contains('T'));
    }
}
