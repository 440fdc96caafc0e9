//! Where a graph stage runs: the [`StageBackend`] trait, and the choice the
//! board profile (`[backend]`) and the command line (`--backend`) make.
//!
//! The bundle is the same whatever runs it. A stage asks for a
//! [`BackendChoice`]; [`start`] starts the [`BackendKind`] behind it. The
//! CPU ([`TractCpu`]: tract's plan of the stage's graph, the reference)
//! always starts. This build has no other backend: asking [`start`] for the
//! GPU answers [`BackendError::NotBuilt`], as a GPU backend that cannot
//! start would, and the pipeline then runs the stage on the CPU with one log
//! line, or refuses to run where the request is required
//! ([`BackendRequest::required_by`]). A backend that fails after it has run
//! (device removed, driver error) is "lost": the pipeline hands the stage to
//! the CPU for the rest of the stream, or stops, when required
//! ([`crate::pipeline::Pipeline::set_encoder_backend`]).
//!
//! The image encoder's backend is chosen as above; the classifier runs on
//! the CPU through the same trait ([`TractCpu`], or [`NativeCpu`] for a graph
//! our kernels run whole); the tract decoder is a tract session, the native
//! decoder has its own kernels.
//! What a GPU or NPU implementation needs: `docs/accelerators.md`.

use std::fmt;

use crate::board::Profile;
use crate::graph::{GraphError, Plan};
use serde::Serialize;

mod cpu;
#[cfg(feature = "gpu")]
mod gpu;
mod native;

pub use crate::board::schema::BackendChoice;
pub use cpu::TractCpu;
#[cfg(feature = "gpu")]
pub use gpu::VulkanGpu;
pub use native::{native_wanted, NativeCpu};

/// The kind of device a backend runs a stage on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum BackendKind {
    /// The CPU (tract).
    Cpu,
    /// A GPU (Vulkan compute; not built into this binary yet).
    Gpu,
}

impl BackendKind {
    /// `cpu` or `gpu`.
    pub fn as_str(self) -> &'static str {
        match self {
            BackendKind::Cpu => "cpu",
            BackendKind::Gpu => "gpu",
        }
    }
}

impl fmt::Display for BackendKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What runs one graph stage: its graph's input in, its outputs out, each
/// in a buffer the stage owns.
///
/// An implementation loads what it needs once (weights uploaded, kernels
/// compiled) when it starts, so that [`StageBackend::run`] moves only the
/// frame's values; it runs on the inference thread, or on a second thread
/// beside the classifier (the encoder's overlap), hence `Send`.
pub trait StageBackend: Send + fmt::Debug {
    /// The device it runs on.
    fn kind(&self) -> BackendKind;

    /// What runs the stage, for logs and reports: `CPU (tract)`.
    fn name(&self) -> &str;

    /// Runs the graph once on `input` (its one input, f32, row-major in the
    /// shape of its plan, [`Plan::inputs`]) into `outputs`, one buffer per
    /// graph output in the graph's order, each arriving with its output's
    /// length when the plan knows it ([`output_buffers`]). A backend writes
    /// every value and leaves each buffer that length; the buffers keep
    /// their capacity from frame to frame, so a backend that writes in place
    /// allocates nothing per frame. An error after earlier runs succeeded
    /// means the backend is lost (the pipeline does not call it again).
    fn run(&mut self, input: &[f32], outputs: &mut [Vec<f32>]) -> Result<(), BackendError>;
}

/// One zeroed buffer per output of `plan`, of its length when the plan
/// knows the output's shape (empty otherwise: a backend fills it).
pub fn output_buffers(plan: &Plan) -> Vec<Vec<f32>> {
    plan.outputs()
        .iter()
        .map(|o| vec![0.0; o.shape.as_ref().map_or(0, |s| s.iter().product())])
        .collect()
}

/// Why a backend did not start, or did not run.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BackendError {
    /// The backend is not compiled into this binary.
    #[error("not built into this binary ({why})")]
    NotBuilt {
        /// Why, and what would build it.
        why: &'static str,
    },
    /// The device or its driver failed: at start (no device), or while
    /// running (removed, reset, out of memory).
    #[error("{detail}")]
    Device {
        /// What the device or driver said.
        detail: String,
    },
    /// The backend cannot run this graph (an op it lacks); the CPU can.
    #[error("{detail}")]
    Unsupported {
        /// What it lacks, naming the graph and the node.
        detail: String,
    },
    /// tract's plan did not run (the CPU backend).
    #[error(transparent)]
    Graph(#[from] GraphError),
}

/// Why [`start`] has no GPU to give in a build without the `gpu` feature.
pub const NO_GPU: &str =
    "this binary was built without the GPU backend (cargo build --features gpu: Vulkan through wgpu)";

/// Starts a backend of `kind` for the graph of `plan`. The CPU always
/// starts; the GPU ([`VulkanGpu`], with the `gpu` feature) when there is a
/// Vulkan device and the graph is one it runs.
pub fn start(kind: BackendKind, plan: &Plan) -> Result<Box<dyn StageBackend>, BackendError> {
    match kind {
        BackendKind::Cpu => Ok(Box::new(TractCpu::new(plan)?)),
        #[cfg(feature = "gpu")]
        BackendKind::Gpu => Ok(Box::new(VulkanGpu::start(plan)?)),
        #[cfg(not(feature = "gpu"))]
        BackendKind::Gpu => Err(BackendError::NotBuilt { why: NO_GPU }),
    }
}

/// What the board profile and the command line ask of a stage's backend.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackendRequest {
    /// The backend asked for.
    pub choice: BackendChoice,
    /// Who requires it (`` `backend.required = true` in board profile
    /// rk3588 ``, `--backend-required`): a backend that cannot start is an
    /// error instead of the CPU standing in, and one lost mid-stream stops
    /// the stream. `None`: the CPU stands in. Ignored for
    /// [`BackendChoice::Cpu`] and [`BackendChoice::Auto`].
    pub required_by: Option<String>,
}

impl BackendRequest {
    /// The CPU, as without a `[backend]` table.
    pub fn cpu() -> BackendRequest {
        BackendRequest {
            choice: BackendChoice::Cpu,
            required_by: None,
        }
    }

    /// The encoder's request in `profile` (read from the file `source`):
    /// its `backend.encoder`, unless `choice` (`--backend`) overrides it;
    /// required when the profile says so and the GPU is what is asked for.
    pub fn encoder(
        profile: &Profile,
        source: &str,
        choice: Option<BackendChoice>,
    ) -> BackendRequest {
        let choice = choice.unwrap_or(profile.backend.encoder);
        let required = profile.backend.required && choice == BackendChoice::Gpu;
        BackendRequest {
            choice,
            required_by: required.then(|| {
                format!(
                    "`backend.required = true` in board profile {} ({source})",
                    profile.name
                )
            }),
        }
    }

    /// The kind to start: none for the CPU, the GPU for `gpu` and `auto`.
    pub fn accelerator(&self) -> Option<BackendKind> {
        match self.choice {
            BackendChoice::Cpu => None,
            BackendChoice::Gpu | BackendChoice::Auto => Some(BackendKind::Gpu),
        }
    }

    /// Who requires the accelerator, when one is asked for by name.
    pub fn required(&self) -> Option<&str> {
        match self.choice {
            BackendChoice::Gpu => self.required_by.as_deref(),
            BackendChoice::Cpu | BackendChoice::Auto => None,
        }
    }
}

#[cfg(test)]
mod tests;
