mod catalog;
mod error;
mod fsio;
mod measure;
mod mounts;
mod remove;
mod size;
mod usage;
pub use error::{Error, Result};
