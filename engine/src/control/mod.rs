//! The control socket: how the CLI on a node reaches its local daemon (a Unix socket under
//! the state root, one JSON request and one JSON response per connection).

pub mod client;
pub mod protocol;
pub mod server;
