//! `aya::Pod` for the map types, so the loader can read and write them.
//!
//! SAFETY (all impls below): each type is `#[repr(C)]`, `Copy`, made only of integers and byte arrays, with no implicit padding (sizes are asserted
//! in `types.rs`), so every bit pattern is a valid value and bytes can be copied either way.

use crate::types::{Counters, FarmConfig, FlowKey, FlowValue};

// SAFETY: see the module doc.
unsafe impl aya::Pod for FarmConfig {}
// SAFETY: see the module doc.
unsafe impl aya::Pod for FlowKey {}
// SAFETY: see the module doc.
unsafe impl aya::Pod for FlowValue {}
// SAFETY: see the module doc.
unsafe impl aya::Pod for Counters {}
