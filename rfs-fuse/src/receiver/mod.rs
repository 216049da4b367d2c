//! The secondary's side: applying operations beneath the replicated root.
