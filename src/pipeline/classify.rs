//! The classifier stage: tract's session of `classifier.onnx`, or the same
//! graph on our own kernels ([`NativeCpu`]) when they run every node of it
//! (the real-time student's presence/CAM head), as the encoder picks
//! ([`crate::backend::native_wanted`]). Its outputs (`logits`, `cam`) go to
//! buffers it owns, reused from frame to frame.

use std::path::PathBuf;

use crate::backend::{self, BackendError, NativeCpu, StageBackend, TractCpu};
use crate::graph::{GraphError, Plan};

use super::PipelineError;

/// What runs the classifier, and its outputs.
#[derive(Debug)]
pub(crate) struct ClassifierStage {
    backend: Box<dyn StageBackend>,
    /// The graph file, for messages.
    path: PathBuf,
    /// One buffer per output: `logits`, `cam`.
    outs: Vec<Vec<f32>>,
}

impl ClassifierStage {
    /// The classifier of `plan`: native when wanted and possible, else tract.
    pub(crate) fn new(plan: &Plan) -> Result<ClassifierStage, GraphError> {
        let mut run: Option<Box<dyn StageBackend>> = None;
        if backend::native_wanted() {
            match NativeCpu::new(plan) {
                Ok(n) => run = Some(Box::new(n)),
                Err(why) => log::debug!("classifier: tract, not the native kernels: {why}"),
            }
        }
        let backend = match run {
            Some(b) => b,
            None => Box::new(TractCpu::new(plan)?),
        };
        Ok(ClassifierStage {
            backend,
            path: plan.path().to_path_buf(),
            outs: backend::output_buffers(plan),
        })
    }

    /// What runs it, in words.
    pub(crate) fn name(&self) -> &str {
        self.backend.name()
    }

    /// Runs it on frame `sequence`'s `input` (the model input, or the image
    /// embeddings for a head on them); the outputs stay in the stage.
    pub(crate) fn run(&mut self, input: &[f32], sequence: u64) -> Result<(), PipelineError> {
        self.backend
            .run(input, &mut self.outs)
            .map_err(|e| match e {
                BackendError::Graph(e) => PipelineError::Graph(e),
                other => PipelineError::Frame {
                    sequence,
                    problem: format!(
                        "classifier ({}, {}): {other}",
                        self.backend.name(),
                        self.path.display()
                    ),
                },
            })
    }

    /// Output `index` (`name` in messages) of the last run.
    pub(crate) fn output(&self, index: usize, name: &str) -> Result<&[f32], PipelineError> {
        match self.outs.get(index) {
            Some(v) if !v.is_empty() => Ok(v),
            _ => Err(PipelineError::Graph(GraphError::Run {
                path: self.path.clone(),
                detail: format!("output {name:?} is missing or empty"),
            })),
        }
    }
}
