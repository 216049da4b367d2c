//! Configuration: `cluster.xml` and each module's `userconfig.xml`, parsed with positions
//! and validated into the typed [`model`].
//!
//! [`load_all`] is the entry point; `parse_*` take text for tests and `hakit config check`.

mod cluster_xml;
pub mod duration;
pub mod error;
mod fields;
pub mod load;
mod macros;
pub mod model;
mod quotes;
pub mod roots;
mod userconfig_xml;
mod xml;

pub use duration::{DurationError, TimeUnit, parse_duration};
pub use error::ConfigError;
pub use load::{
    Config, is_valid_module_name, load_all, load_cluster, load_module, module_names, module_paths,
    parse_cluster, parse_module, userconfig_file,
};
pub use model::*;
pub use roots::Roots;

#[cfg(test)]
mod tests;
