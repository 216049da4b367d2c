//! The secondary's side: applying replicated operations beneath the replicated root.
//!
//! Everything the peer sends is treated as hostile input. Paths are resolved with
//! `openat2(RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS | RESOLVE_NO_XDEV)` up to their parent
//! directory (`beneath.rs`), and the final component is acted on with `*at()` calls that never
//! follow it (`object.rs`). Data operations go through an fd cache keyed by the stream handle
//! (`handles.rs`). `EmptyRoot` walks the tree by descriptor, never following a symlink nor
//! crossing a mount (`empty.rs`). A refusal is an [`ApplyError`] whose
//! [`ApplyError::is_refused`] is true: the caller logs it as a protocol violation.

mod apply;
mod attrs;
mod beneath;
mod empty;
mod error;
mod handles;
mod namespace;
mod object;

pub use apply::Receiver;
pub use error::ApplyError;
pub use handles::DEFAULT_HANDLE_LIMIT;
