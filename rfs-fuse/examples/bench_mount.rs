//! Mounts the overlay over a directory for `cargo xtask bench rfs` (built in release): `alone`
//! (no peer) or `replicated` (every operation sent over TCP loopback to a receiver applying it
//! to a second directory, acknowledged once applied). Prints `mounted` once ready; unmounts
//! when its standard input closes.

use rfs_fuse::link::{Hello, ServeOptions, StreamReplicator, serve};
use rfs_fuse::overlay::{NoReplication, OverlayOptions, Replicator, mount_in_place};
use rfs_fuse::protocol::AckLevel;
use rfs_fuse::receiver::Receiver;
use std::io::{BufRead, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (mode, primary) = match args.as_slice() {
        [mode, primary, ..] => (mode.as_str(), PathBuf::from(primary)),
        _ => return Err("usage: bench_mount alone|replicated <dir> [<secondary dir>]".into()),
    };
    let replicator: Arc<dyn Replicator> = match (mode, args.get(2)) {
        ("alone", _) => Arc::new(NoReplication),
        ("replicated", Some(secondary)) => {
            Arc::new(Arc::new(replicate_to(PathBuf::from(secondary))?).root(0))
        }
        _ => return Err(format!("unknown mode {mode:?} or missing secondary directory").into()),
    };
    let mut mount = mount_in_place(&primary, replicator, OverlayOptions::default())?;
    println!("mounted");
    std::io::stdout().flush()?;
    for line in std::io::stdin().lock().lines() {
        line?;
    }
    mount.unmount()?;
    Ok(())
}

fn replicate_to(secondary: PathBuf) -> Result<StreamReplicator, Box<dyn std::error::Error>> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?;
    std::thread::spawn(move || -> Result<(), String> {
        let (stream, _) = listener.accept().map_err(|e| e.to_string())?;
        stream.set_nodelay(true).map_err(|e| e.to_string())?;
        let receiver = Receiver::open(&secondary).map_err(|e| e.to_string())?;
        let reader = stream.try_clone().map_err(|e| e.to_string())?;
        let options = ServeOptions::new("bench", AckLevel::Applied);
        serve(reader, stream, &mut [receiver], options).map_err(|e| e.to_string())?;
        Ok(())
    });
    let stream = TcpStream::connect(addr)?;
    stream.set_nodelay(true)?;
    let hello = Hello {
        module: "bench".into(),
        node: "bench".into(),
        session: 1,
        roots: 1,
    };
    Ok(StreamReplicator::start(
        stream.try_clone()?,
        stream,
        hello,
        Duration::from_secs(30),
    )?)
}
