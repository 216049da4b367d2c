//! Carries out the state machine's steps: persist the record, run a script, add or remove
//! the virtual IPs, synchronise data. Each step answers `(ok, what happened)`.

use super::data::DataPlane;
use super::guardian::Guardian;
use super::record_store;
use crate::config::Module;
use crate::mirror::plan::{NodeRecord, Script, Step};
use crate::net::{add_vip, del_vip, send_gratuitous_arp};
use crate::scripts::{ScriptOutcome, ScriptRunner};
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

/// Gratuitous ARPs sent after adding a virtual IP, and their spacing.
const GARP_COUNT: u32 = 3;
const GARP_INTERVAL: Duration = Duration::from_millis(100);

pub struct StepExecutor {
    module: Module,
    runner: ScriptRunner,
    guardian: Arc<Guardian>,
    data: Option<Arc<DataPlane>>,
}

impl StepExecutor {
    pub fn new(
        module: Module,
        node: &str,
        guardian: Arc<Guardian>,
        data: Option<Arc<DataPlane>>,
    ) -> StepExecutor {
        let runner = ScriptRunner::new(
            &module.name,
            &module.paths,
            node,
            &module.user,
            module.paths.log_dir.join("application.log"),
        );
        StepExecutor {
            module,
            runner,
            guardian,
            data,
        }
    }

    pub async fn run(&self, step: Step) -> (bool, String) {
        match step {
            Step::Persist(record) => self.persist(record).await,
            Step::Run(script) => self.script(script).await,
            Step::AddVips => self.add_vips().await,
            Step::DelVips => self.del_vips().await,
            Step::Data(mode) => self.on_data(move |d| d.set_mode(mode)).await,
            Step::Quarantine => self.on_data(DataPlane::quarantine).await,
            Step::AwaitCopy { .. } => (
                false,
                "waiting for the primary's copy is not a driver step".to_string(),
            ),
        }
    }

    /// Runs `work` on the data plane off the async threads (it mounts, copies, syncs).
    async fn on_data(
        &self,
        work: impl FnOnce(&DataPlane) -> Result<String, String> + Send + 'static,
    ) -> (bool, String) {
        let Some(data) = self.data.clone() else {
            return (true, "no replicated directories".to_string());
        };
        match tokio::task::spawn_blocking(move || work(&data)).await {
            Ok(Ok(done)) => (true, done),
            Ok(Err(e)) => (false, e),
            Err(e) => (false, format!("data task failed: {e}")),
        }
    }

    async fn persist(&self, record: NodeRecord) -> (bool, String) {
        // A SECOND records its copy as consistent only once what it received is durable.
        let (synced, why) = self
            .on_data(|d| d.sync_received().map(|()| String::new()))
            .await;
        if !synced {
            return (false, why);
        }
        let dir = self.module.paths.state_dir.clone();
        let saved = tokio::task::spawn_blocking(move || record_store::save(&dir, &record)).await;
        match saved {
            Ok(Ok(())) => (
                true,
                format!(
                    "recorded durably in {}",
                    self.module.paths.state_dir.display()
                ),
            ),
            Ok(Err(e)) => (false, e.to_string()),
            Err(e) => (false, format!("record writer failed: {e}")),
        }
    }

    async fn script(&self, script: Script) -> (bool, String) {
        let name = script.file_name();
        let role = match script {
            Script::Prestart => "start",
            Script::StartPrim | Script::StopPrim => "prim",
            Script::StartSecond | Script::StopSecond => "second",
            Script::Poststop => "stop",
        };
        // The application is "held" from the start of start_prim (it may be half-started if
        // the daemon dies during it) until stop_prim has finished.
        if script == Script::StartPrim {
            self.guardian
                .note(&format!("held {} app", self.module.name));
        }
        let outcome = if script.is_stop() {
            self.runner.run_stop(name, role).await
        } else {
            self.runner.run(name, &[], role).await
        };
        if script == Script::StopPrim {
            self.guardian
                .note(&format!("released {} app", self.module.name));
        }
        let ok = matches!(outcome, ScriptOutcome::Missing { .. }) || outcome.succeeded();
        (ok, outcome.describe())
    }

    async fn add_vips(&self) -> (bool, String) {
        let mut done = Vec::new();
        for vip in &self.module.vips {
            let placement = match add_vip(vip.addr, vip.interface.as_deref()).await {
                Ok(p) => p,
                Err(e) => return (false, format!("virtual IP {}: {e}", vip.addr)),
            };
            self.guardian
                .note(&format!("held {} vip {}", self.module.name, vip.addr));
            let mut what = format!(
                "{}/{} on {}",
                vip.addr, placement.prefix_len, placement.ifname
            );
            if let (true, IpAddr::V4(v4)) = (vip.arpreroute, vip.addr) {
                // The first announcement goes out before start_prim; the repeats (for switches
                // and clients that missed it) follow in the background without delaying it.
                let ifname = placement.ifname.clone();
                let first = tokio::task::spawn_blocking(move || {
                    send_gratuitous_arp(&ifname, v4, 1, Duration::ZERO)
                })
                .await;
                match first {
                    Ok(Ok(())) => {
                        what.push_str(&format!(
                            ", gratuitous ARP sent ({} more to follow)",
                            GARP_COUNT - 1
                        ));
                        let ifname = placement.ifname.clone();
                        tokio::task::spawn_blocking(move || {
                            std::thread::sleep(GARP_INTERVAL);
                            send_gratuitous_arp(&ifname, v4, GARP_COUNT - 1, GARP_INTERVAL)
                        });
                    }
                    Ok(Err(e)) => what.push_str(&format!(", gratuitous ARP failed: {e}")),
                    Err(e) => what.push_str(&format!(", gratuitous ARP task failed: {e}")),
                }
            }
            done.push(what);
        }
        if done.is_empty() {
            return (true, "no virtual IP configured".to_string());
        }
        (true, done.join("; "))
    }

    async fn del_vips(&self) -> (bool, String) {
        let mut done = Vec::new();
        let mut ok = true;
        for vip in &self.module.vips {
            match del_vip(vip.addr).await {
                Ok(true) => done.push(format!("{} removed", vip.addr)),
                Ok(false) => done.push(format!("{} was not present", vip.addr)),
                Err(e) => {
                    ok = false;
                    done.push(format!("{}: {e}", vip.addr));
                    continue;
                }
            }
            self.guardian
                .note(&format!("released {} vip {}", self.module.name, vip.addr));
        }
        if done.is_empty() {
            return (true, "no virtual IP configured".to_string());
        }
        (ok, done.join("; "))
    }
}
