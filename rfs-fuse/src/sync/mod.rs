//! Synchronisation of a secondary: a copy of everything (`full_copy`, `live_copy` while the
//! application writes), the changes made meanwhile (`tracker`: whole paths, and the zones of
//! files changed in place, `zones`), and their copy (`copy_changes`); manifests of a replica
//! and their comparison (`manifest`), and a copy of only what differs from one
//! (`compare_copy`).

pub mod compare_copy;
pub mod full_copy;
pub mod manifest;
pub mod paths;
pub mod tracker;
pub mod zones;
