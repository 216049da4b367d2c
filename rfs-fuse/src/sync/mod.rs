//! Synchronisation of a secondary that does not share the primary's history.

pub mod full_copy;
