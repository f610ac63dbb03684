//! Sandboxes: real components made and torn down here, one of each kind.
//!
//! - [`loopfs`]: a real filesystem in a file, loop-mounted;
//! - [`bridge`]: a network bridge of a throwaway engine's own;
//! - [`engine`]: a throwaway `dockerd` with a service program, on a socket or TLS;
//! - [`registry`]: a registry on loopback that requires a password;
//! - [`base_image`]: base images made locally (Debian by debootstrap, the stand-in of
//!   NVIDIA's CUDA base on it, busybox-static);
//! - [`fake_gpu`]: a fake NVIDIA GPU at a throwaway engine's boundary (hook, runtime, CDI);
//! - [`builder`]: a buildx `docker-container` builder, as `docker/setup-buildx-action` makes it;
//! - [`runner`]: the simulated runner built from them, torn down by name;
//! - [`runner_box`]: a GitHub-hosted runner's user, directories, environment and 2026 disk
//!   layout, for the workflow runner.

pub mod base_image;
pub mod bridge;
pub mod builder;
pub mod engine;
pub mod fake_gpu;
pub mod loopfs;
pub mod registry;
pub mod runner;
pub mod runner_box;

pub use bridge::Bridge;
pub use builder::{BuilderSpec, ContainerBuilder, GcLimits};
pub use engine::{Engine, EngineSpec, Listen, Start};
pub use loopfs::{FsKind, LoopFs, Mkfs};
pub use registry::Registry;
