//! The classifier stage: tract's session of `classifier.onnx`, or the same
//! graph on our own kernels ([`NativeCpu`]) when they run every node of it
//! (the real-time student's presence/CAM head), as the encoder picks
//! ([`crate::backend::native_wanted`]).

use std::path::{Path, PathBuf};

use tract_onnx::prelude::Tensor;

use crate::backend::{self, NativeCpu, StageBackend};
use crate::graph::{GraphError, Plan, Session};

use super::PipelineError;

/// What runs the classifier.
#[derive(Debug)]
pub(crate) enum ClassifierStage {
    /// tract.
    Tract(Session),
    /// Our kernels; the graph file, for messages.
    Native(NativeCpu, PathBuf),
}

impl ClassifierStage {
    /// The classifier of `plan`: native when wanted and possible, else tract.
    pub(crate) fn new(plan: &Plan) -> Result<ClassifierStage, GraphError> {
        if backend::native_wanted() {
            match NativeCpu::new(plan) {
                Ok(n) => return Ok(ClassifierStage::Native(n, plan.path().to_path_buf())),
                Err(why) => log::debug!("classifier: tract, not the native kernels: {why}"),
            }
        }
        Ok(ClassifierStage::Tract(plan.session()?))
    }

    /// The graph file.
    pub(crate) fn path(&self) -> &Path {
        match self {
            ClassifierStage::Tract(s) => s.plan().path(),
            ClassifierStage::Native(_, p) => p,
        }
    }

    /// What runs it, in words.
    pub(crate) fn name(&self) -> &str {
        match self {
            ClassifierStage::Tract(_) => "CPU (tract)",
            ClassifierStage::Native(n, _) => n.name(),
        }
    }

    /// Runs it on frame `sequence`'s input.
    pub(crate) fn run(
        &mut self,
        inputs: Vec<Tensor>,
        sequence: u64,
    ) -> Result<Vec<Tensor>, PipelineError> {
        match self {
            ClassifierStage::Tract(s) => Ok(s.run(inputs)?),
            ClassifierStage::Native(n, path) => n.run(inputs).map_err(|e| PipelineError::Frame {
                sequence,
                problem: format!("classifier (native kernels, {}): {e}", path.display()),
            }),
        }
    }
}
