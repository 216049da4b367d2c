//! Configuration: `cluster.xml` and each module's `userconfig.xml`, parsed with positions
//! and validated into the typed [`model`].

pub mod model;
pub mod roots;

pub use model::*;
pub use roots::Roots;
