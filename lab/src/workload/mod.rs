//! Workloads: what the lab fills its sandboxes with, the same for the same seed.
//!
//! - [`rng`]: the one random number generator (SplitMix64);
//! - [`android`]: a synthetic tree shaped like the Android SDK (`bench free`);
//! - [`runner`]: a hosted runner's preinstalled software, scaled down (`simulate`);
//! - [`layouts`]: the 2026 disk layouts of hosted runners, as data (the runner box).

pub mod android;
pub mod layouts;
pub mod rng;
pub mod runner;

pub use rng::Rng;
