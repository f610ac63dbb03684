//! Workloads: what the lab fills its sandboxes with, the same for the same seed.
//!
//! - [`rng`]: the one random number generator (SplitMix64);
//! - [`android`]: a synthetic tree shaped like the Android SDK (`bench free`);
//! - [`runner`]: a hosted runner's preinstalled software, scaled down (`simulate`).

pub mod android;
pub mod rng;
pub mod runner;

pub use rng::Rng;
