//! The SECOND makes what it applied durable every [`DataConfig::sync_every`] (`syncfs` of each
//! folder, on its own thread: the stream never waits for it), then publishes up to where.

use super::DataConfig;
use super::durability::Durability;
use crate::modlog::{ModuleLog, Source};
use rfs_fuse::link::AppliedPoint;
use std::fs::File;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How often a waiting syncer checks whether it must stop.
const POLL: Duration = Duration::from_millis(100);

pub(super) struct Syncer {
    pub cfg: Arc<DataConfig>,
    pub dirs: Arc<Vec<File>>,
    pub applied: AppliedPoint,
    pub durability: Arc<Durability>,
    pub stop: Arc<AtomicBool>,
    pub log: ModuleLog,
}

impl Syncer {
    pub fn spawn(self) -> std::io::Result<JoinHandle<()>> {
        std::thread::Builder::new()
            .name("rfs-sync".into())
            .spawn(move || self.run())
    }

    fn run(self) {
        let mut failing = false;
        let mut last = Instant::now();
        while !self.stop.load(Ordering::SeqCst) {
            std::thread::sleep(POLL);
            if last.elapsed() < self.cfg.sync_every {
                continue;
            }
            last = Instant::now();
            let point = *self.applied.lock().unwrap_or_else(PoisonError::into_inner);
            if point.is_none() || point == self.durability.own() {
                continue;
            }
            match self.sync() {
                Ok(()) => {
                    failing = false;
                    self.durability.set_own(point);
                }
                Err(why) if !failing => {
                    failing = true;
                    self.log.line(
                        Source::Engine,
                        &format!(
                            "cannot make the received data durable ({why}): the primary keeps \
                             its change journal's older epochs"
                        ),
                    );
                }
                Err(_) => {}
            }
        }
        self.durability.set_own(None);
    }

    fn sync(&self) -> Result<(), String> {
        for (dir, path) in self.dirs.iter().zip(&self.cfg.dirs) {
            nix::unistd::syncfs(dir).map_err(|e| format!("{}: syncfs: {e}", path.display()))?;
        }
        Ok(())
    }
}
