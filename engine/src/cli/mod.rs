//! The command line: verbs of the model product (`hakit prim -m web`, `hakit state -m web
//! -lq`, ...). Exit codes: 0 done; `state -q` 0..4 for STOP, WAIT, ALONE, PRIM, SECOND;
//! 5 refused by the module; 10 error (bad arguments, daemon unreachable, bad configuration);
//! `rfsverify` 0 identical, 1 different, 2 nothing to compare with.

mod args;
mod commands;
mod farm_view;
mod rfsdiff;
mod rfsverify;
mod state_view;

use clap::Parser;

pub const EXIT_REFUSED: i32 = 5;
pub const EXIT_ERROR: i32 = 10;

pub fn main() -> i32 {
    let cli = match args::Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let code = if e.use_stderr() { EXIT_ERROR } else { 0 };
            let _ = e.print();
            return code;
        }
    };
    match commands::run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("hakit: {}", describe(&e));
            EXIT_ERROR
        }
    }
}

/// An error and its causes on one line, leaving out a cause whose text its parent already
/// includes (most of our errors spell out their source).
fn describe(error: &anyhow::Error) -> String {
    let mut text = String::new();
    for cause in error.chain() {
        let cause = cause.to_string();
        if !text.contains(&cause) {
            if !text.is_empty() {
                text.push_str(": ");
            }
            text.push_str(&cause);
        }
    }
    text
}
