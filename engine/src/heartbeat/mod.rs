//! Heartbeats: the authenticated UDP messages nodes exchange every pulse, and the liveness
//! state machine that turns them into "peer up / peer lost".

pub mod liveness;
pub mod replay;
pub mod wire;
