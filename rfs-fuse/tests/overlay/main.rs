//! The overlay mounted for real (FUSE, as root): no mocks. Without /dev/fuse or root these
//! tests fail with a message saying so; they never skip.

mod attrs;
mod basics;
mod concurrency;
mod readonly;
mod rename;
mod stale;
mod support;
