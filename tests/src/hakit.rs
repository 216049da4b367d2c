//! The hakit binary under test and the module states its CLI reports.

use std::fmt;
use std::path::{Path, PathBuf};

use anyhow::{Result, bail};

/// The daemon binary the lab runs: `$HAKIT_BIN`, else `<workspace>/target/debug/hakit`.
pub fn hakit_bin() -> Result<PathBuf> {
    let (path, origin) = match std::env::var_os("HAKIT_BIN") {
        Some(path) => (PathBuf::from(path), "HAKIT_BIN"),
        None => {
            let workspace = Path::new(env!("CARGO_MANIFEST_DIR"))
                .parent()
                .unwrap_or(Path::new("."));
            (workspace.join("target/debug/hakit"), "the default location")
        }
    };
    if !path.is_file() {
        bail!(
            "the hakit binary is missing: {} ({origin}). Build it with `cargo build -p hakit`, or run \
             the tests with `cargo xtask test`, which builds it and sets HAKIT_BIN",
            path.display()
        );
    }
    Ok(path)
}

/// A mirror module's state, as `hakit state -m <module> -lq` reports it in its exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    Stop,
    Wait,
    Alone,
    Prim,
    Second,
}

impl State {
    pub const ALL: [State; 5] = [
        State::Stop,
        State::Wait,
        State::Alone,
        State::Prim,
        State::Second,
    ];

    /// The exit code of `hakit state -m <module> -lq` for this state.
    pub fn exit_code(self) -> i32 {
        match self {
            State::Stop => 0,
            State::Wait => 1,
            State::Alone => 2,
            State::Prim => 3,
            State::Second => 4,
        }
    }

    pub fn from_exit_code(code: i32) -> Option<State> {
        State::ALL.into_iter().find(|s| s.exit_code() == code)
    }

    pub fn name(self) -> &'static str {
        match self {
            State::Stop => "STOP",
            State::Wait => "WAIT",
            State::Alone => "ALONE",
            State::Prim => "PRIM",
            State::Second => "SECOND",
        }
    }
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::State;

    #[test]
    fn exit_codes_follow_the_cli_contract() {
        let codes: Vec<i32> = State::ALL.iter().map(|s| s.exit_code()).collect();
        assert_eq!(codes, [0, 1, 2, 3, 4]);
        assert_eq!(State::from_exit_code(3), Some(State::Prim));
        assert_eq!(State::from_exit_code(5), None);
        assert_eq!(State::Second.to_string(), "SECOND");
    }
}
