//! The module task's side of the data plane: commands carried out one at a time, in order,
//! off the async threads; events back from the replication stream.

use super::DataPlane;
use crate::mirror::replication::{ReplicaTarget, ReplicationEvent};
use std::sync::Arc;
use tokio::sync::mpsc;

/// The module's data plane as the module task drives it.
pub struct DataDriver {
    pub plane: Arc<DataPlane>,
    pub commands: mpsc::UnboundedSender<DataCommand>,
    pub events: mpsc::UnboundedReceiver<ReplicationEvent>,
}

pub enum DataCommand {
    Replicate(Option<ReplicaTarget>),
    ReleaseWrites,
}

impl DataDriver {
    pub fn spawn(
        plane: Arc<DataPlane>,
        events: mpsc::UnboundedReceiver<ReplicationEvent>,
    ) -> DataDriver {
        let (commands, mut queue) = mpsc::unbounded_channel::<DataCommand>();
        let worker = Arc::clone(&plane);
        tokio::spawn(async move {
            while let Some(command) = queue.recv().await {
                let plane = Arc::clone(&worker);
                let _ = tokio::task::spawn_blocking(move || match command {
                    DataCommand::Replicate(target) => plane.replicate(target),
                    DataCommand::ReleaseWrites => plane.release_writes(),
                })
                .await;
            }
        });
        DataDriver {
            plane,
            commands,
            events,
        }
    }
}

/// The next event from the replication stream; never ready for a module without data.
pub async fn next_data_event(data: &mut Option<DataDriver>) -> Option<ReplicationEvent> {
    match data {
        Some(d) => d.events.recv().await,
        None => std::future::pending().await,
    }
}
