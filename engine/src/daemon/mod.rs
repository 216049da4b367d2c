//! The node daemon: one process running every module of this node.

pub mod board;
