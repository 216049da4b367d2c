//! PRIM/ALONE: the overlays mounted read-write over the replicated directories.

use super::DataConfig;
use super::durability::Durability;
use super::journal::Journal;
use super::progress::CopyProgress;
use super::replicate::{Backing, ReplicationTask, TaskParts};
use crate::mirror::replication::{ReplicaTarget, ReplicationEvent};
use crate::modlog::ModuleLog;
use rfs_fuse::link::LinkStats;
use rfs_fuse::overlay::{
    MountedOverlay, NoReplication, OverlayError, OverlayOptions, SwitchReplicator, mount_in_place,
};
use std::fs::File;
use std::io;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc::UnboundedSender;

/// How long an unmount may be refused as busy (an application still closing its files)
/// before the mount is detached lazily.
const UNMOUNT_PATIENCE: Duration = Duration::from_secs(5);
const UNMOUNT_RETRY: Duration = Duration::from_millis(250);

pub(super) struct ServeSide {
    journal: Arc<Journal>,
    durability: Arc<Durability>,
    mounts: Vec<MountedOverlay>,
    switches: Vec<SwitchReplicator>,
    backing: Arc<Backing>,
    task: Option<ReplicationTask>,
}

impl ServeSide {
    /// Open every directory (the full copy reads through these descriptors, underneath the
    /// mounts), then mount the overlays; on failure, unmount what was mounted.
    pub fn start(cfg: &DataConfig, durability: Arc<Durability>) -> Result<ServeSide, String> {
        let mut side = ServeSide {
            journal: Arc::new(Journal::open(&cfg.state_dir, cfg.dirs.len(), cfg.zone_size)),
            durability,
            mounts: Vec::new(),
            switches: Vec::new(),
            backing: Arc::new(Backing::default()),
            task: None,
        };
        let mut dirs = Vec::new();
        for dir in &cfg.dirs {
            // A mount left by a daemon killed with its guardian answers nothing (ENOTCONN)
            // until it is detached: only then does the folder beneath show.
            if !dir
                .symlink_metadata()
                .is_err_and(|e| e.kind() == io::ErrorKind::NotFound)
            {
                rfs_fuse::overlay::clean_stale(dir).map_err(|e| e.to_string())?;
            }
            if !dir.is_dir() {
                // Serving an empty folder in its place would look like lost data.
                return Err(format!(
                    "{} is not a directory on this node: create it (with the application's \
                     data) before serving",
                    dir.display()
                ));
            }
            let opened = File::open(dir).map_err(|e| format!("{}: open: {e}", dir.display()))?;
            dirs.push(opened);
        }
        for (index, dir) in cfg.dirs.iter().enumerate() {
            let switch = SwitchReplicator::new();
            if let Some(observer) = side.journal.observer(index) {
                switch.observe(observer);
            }
            let mounted = mount_in_place(dir, Arc::new(switch.clone()), OverlayOptions::default());
            match mounted {
                Ok(m) => {
                    side.mounts.push(m);
                    side.switches.push(switch);
                }
                Err(e) => {
                    let undone = side.stop();
                    return Err(format!("{e} ({undone})"));
                }
            }
        }
        let open = side
            .mounts
            .iter()
            .map(MountedOverlay::open_handles)
            .collect();
        side.backing = Arc::new(Backing { dirs, open });
        Ok(side)
    }

    pub fn describe(&self) -> String {
        let dirs: Vec<String> = self
            .mounts
            .iter()
            .map(|m| m.dir().display().to_string())
            .collect();
        format!("mounted read-write: {}", dirs.join(", "))
    }

    pub fn replicate(
        &mut self,
        target: Option<ReplicaTarget>,
        cfg: &Arc<DataConfig>,
        log: &ModuleLog,
        events: &UnboundedSender<ReplicationEvent>,
    ) {
        if self.task.as_ref().map(|t| t.join_id()) == target.map(|t| t.join_id) {
            return;
        }
        if self.task.is_some() {
            // The peer may still take over without what is written from now on: writes wait
            // (applied here, not yet returned) for the engine's release.
            for switch in &self.switches {
                switch.hold_all();
            }
        }
        self.stop_replication();
        if let Some(target) = target {
            let parts = TaskParts {
                journal: Arc::clone(&self.journal),
                cfg: Arc::clone(cfg),
                switches: self.switches.clone(),
                backing: Arc::clone(&self.backing),
                durability: Arc::clone(&self.durability),
            };
            self.task = Some(ReplicationTask::start(
                target,
                parts,
                log.clone(),
                events.clone(),
            ));
        }
    }

    /// New writes go nowhere but here; the stream is closed (its last requests answered, up
    /// to the send timeout).
    fn stop_replication(&mut self) {
        for switch in &self.switches {
            switch.set(Arc::new(NoReplication));
        }
        if let Some(task) = self.task.take() {
            task.stop();
        }
    }

    pub fn release_writes(&self) {
        for switch in &self.switches {
            switch.release();
        }
    }

    pub fn link_stats(&self) -> Option<LinkStats> {
        self.task.as_ref().and_then(|t| t.stats())
    }

    /// The directories underneath the overlays.
    pub fn backing(&self) -> Arc<Backing> {
        Arc::clone(&self.backing)
    }

    pub fn copy_progress(&self) -> Option<CopyProgress> {
        self.task.as_ref().map(|t| t.progress())
    }

    /// Stop replicating and unmount; busy mounts are retried, then detached lazily.
    pub fn stop(mut self) -> String {
        self.stop_replication();
        let mut report = Vec::new();
        if self.switches.iter().any(SwitchReplicator::holding) {
            // Stopping with writes the peer may never have (e.g. stepping down, isolated):
            // they must fail in the application, never be acknowledged.
            for mount in &self.mounts {
                match mount.abort() {
                    Ok(()) => report.push(format!(
                        "{}: writes the peer lacks were failed (connection aborted)",
                        mount.dir().display()
                    )),
                    Err(e) => report.push(e.to_string()),
                }
            }
        }
        // Nothing may stay blocked in the mounts going away.
        self.release_writes();
        for mut mount in std::mem::take(&mut self.mounts) {
            report.push(unmount_patiently(&mut mount));
        }
        report.join("; ")
    }
}

pub(super) fn unmount_patiently(mount: &mut MountedOverlay) -> String {
    let dir = mount.dir().display().to_string();
    let mut waited = Duration::ZERO;
    loop {
        match mount.unmount() {
            Ok(()) => return format!("{dir} unmounted"),
            Err(OverlayError::Busy { .. }) if waited < UNMOUNT_PATIENCE => {
                std::thread::sleep(UNMOUNT_RETRY);
                waited += UNMOUNT_RETRY;
            }
            // Dropping the mount detaches it lazily: the path shows the plain directory at
            // once and the files still open keep working until closed.
            Err(e) => {
                return format!("{dir}: {e}; detached lazily, files still open keep it alive");
            }
        }
    }
}
