//! Synchronisation of a secondary: a copy of everything (`full_copy`, `live_copy` while the
//! application writes), the changes made meanwhile (`tracker`: whole paths, and the zones of
//! files changed in place, `zones`), and their copy (`copy_changes`).

pub mod full_copy;
pub mod paths;
pub mod tracker;
pub mod zones;
