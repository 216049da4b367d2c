//! The primary's side: the FUSE overlay mounted in place.
