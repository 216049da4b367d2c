//! Configuration: `cluster.xml` and each module's `userconfig.xml`, parsed with positions
//! and validated into the typed [`model`].

pub mod duration;
pub mod error;
pub mod model;
mod quotes;
pub mod roots;
mod xml;

pub use duration::{DurationError, TimeUnit, parse_duration};
pub use error::ConfigError;
pub use model::*;
pub use roots::Roots;
