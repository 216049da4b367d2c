//! Configuration errors. Each one names the file (and, for content errors, the 1-based line and
//! column) and says what to do, so that `hakit config check` output can be acted on directly.

use std::io;
use std::path::{Path, PathBuf};

use super::xml::Pos;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A file or directory could not be read.
    #[error("{}: cannot read: {error}", path.display())]
    Io { path: PathBuf, error: io::Error },
    /// The content of a file is wrong at a known place.
    #[error("{}:{line}:{column}: {message}", file.display())]
    Invalid {
        file: PathBuf,
        line: usize,
        column: usize,
        message: String,
    },
    /// A file or directory is wrong as a whole (its name, its place).
    #[error("{}: {message}", path.display())]
    Path { path: PathBuf, message: String },
}

impl ConfigError {
    pub(crate) fn io(path: &Path, error: io::Error) -> Self {
        ConfigError::Io {
            path: path.to_path_buf(),
            error,
        }
    }

    pub(crate) fn at(file: &Path, pos: Pos, message: impl Into<String>) -> Self {
        ConfigError::Invalid {
            file: file.to_path_buf(),
            line: pos.line,
            column: pos.column,
            message: message.into(),
        }
    }

    pub(crate) fn path(path: &Path, message: impl Into<String>) -> Self {
        ConfigError::Path {
            path: path.to_path_buf(),
            message: message.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_name_file_line_and_column() {
        let err = ConfigError::at(
            Path::new("/etc/hakit/cluster.xml"),
            Pos { line: 3, column: 7 },
            "lan: bad",
        );
        assert_eq!(err.to_string(), "/etc/hakit/cluster.xml:3:7: lan: bad");
    }

    #[test]
    fn io_errors_name_the_path() {
        let err = ConfigError::io(
            Path::new("/nope/cluster.xml"),
            io::Error::new(io::ErrorKind::NotFound, "No such file or directory"),
        );
        assert_eq!(
            err.to_string(),
            "/nope/cluster.xml: cannot read: No such file or directory"
        );
    }

    #[test]
    fn path_errors_name_the_path() {
        let err = ConfigError::path(Path::new("/etc/hakit/modules/a b"), "bad name");
        assert_eq!(err.to_string(), "/etc/hakit/modules/a b: bad name");
    }
}
