//! `hakit`: the node daemon and the administrator's command line.

#![forbid(unsafe_code)]

mod cli;

fn main() {
    std::process::exit(cli::main());
}
