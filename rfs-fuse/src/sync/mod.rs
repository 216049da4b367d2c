//! Synchronisation of a secondary: a copy of everything (`full_copy`, `live_copy` while the
//! application writes), the changes made meanwhile (`tracker`), and their copy
//! (`copy_changes`); manifests of a replica and their comparison (`manifest`).

pub mod compare_copy;
pub mod full_copy;
pub mod manifest;
pub mod paths;
pub mod tracker;
