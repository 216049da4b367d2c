//! How far the SECOND's copy of the stream is durable. The SECOND makes what it applied
//! durable now and then, off the stream's thread ([`syncer`](super::syncer)), and says up to
//! where in its heartbeats; the primary forgets the change journal's epochs the SECOND holds
//! durably ([`epochs`](super::epochs)).

use rfs_fuse::link::StreamPoint;
use std::sync::{Mutex, PoisonError};

#[derive(Debug, Default)]
pub struct Durability {
    /// As SECOND: the point of the primary's stream made durable here.
    own: Mutex<Option<StreamPoint>>,
    /// As primary: the point the peer last said it made durable.
    peer: Mutex<Option<StreamPoint>>,
}

impl Durability {
    pub fn own(&self) -> Option<StreamPoint> {
        *self.own.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub fn set_own(&self, point: Option<StreamPoint>) {
        *self.own.lock().unwrap_or_else(PoisonError::into_inner) = point;
    }

    pub fn peer(&self) -> Option<StreamPoint> {
        *self.peer.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub fn set_peer(&self, point: Option<StreamPoint>) {
        *self.peer.lock().unwrap_or_else(PoisonError::into_inner) = point;
    }
}
