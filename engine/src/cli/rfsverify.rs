//! `hakit rfsverify -m M`: asks the local daemon (the primary) to compare its replicated
//! folders with the SECOND's. Exit 0 when identical, 1 when they differ, 2 when there is
//! nothing to compare with (no SECOND answering, this node not the primary).

use anyhow::{Result, bail};
use hakit::config::Roots;
use hakit::control::client::call_patiently;
use hakit::control::protocol::{Request, Response};
use std::time::Duration;

pub const EXIT_DIFFERENT: i32 = 1;
pub const EXIT_NO_PEER: i32 = 2;

/// Both replicas are read whole: allow for large data sets.
const VERIFY_TIMEOUT: Duration = Duration::from_secs(3600);

pub fn rfsverify(roots: &Roots, module: &str) -> Result<i32> {
    let request = Request::Verify {
        module: module.to_string(),
    };
    match call_patiently(&roots.control_socket(), &request, VERIFY_TIMEOUT)? {
        Response::Verified(report) => {
            println!("{}", report.text);
            if report.identical {
                println!("{module}: the replicas are identical");
                Ok(0)
            } else {
                println!("{module}: the replicas differ");
                Ok(EXIT_DIFFERENT)
            }
        }
        Response::Refused { message } => {
            eprintln!("{module}: cannot verify: {message}");
            Ok(EXIT_NO_PEER)
        }
        Response::Error { message } => bail!("{message}"),
        other => bail!("unexpected answer from the daemon: {other:?}"),
    }
}
