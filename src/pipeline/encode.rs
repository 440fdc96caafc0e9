//! The encoder stage: the backend that runs `encoder.onnx` ([`crate::backend`]:
//! tract on the CPU unless another was started), the CPU standing in for a
//! backend that cannot start or is lost, and the embeddings cache of
//! [`super::Pipeline::set_embedding_reuse`] (above the backend: a reused
//! frame runs none).

use std::path::Path;

use tract_onnx::prelude::Tensor;

use crate::backend::{self, BackendChoice, BackendError, BackendKind, BackendRequest};
use crate::backend::{NativeCpu, StageBackend, TractCpu};
use crate::graph::{GraphError, Plan};

use super::PipelineError;

/// Where a frame's image embeddings stand once its classifier has run.
pub(crate) enum Embeddings {
    /// Not computed yet: the model input tensor for the encoder.
    ToEncode(Tensor),
    /// Computed beside the classifier ([`super::Pipeline::set_overlap`]):
    /// the backend's outputs, or why not.
    Overlapped(Result<Vec<Tensor>, BackendError>),
    /// Computed before the classifier, which read them.
    Ready(Tensor),
}

/// The image encoder, its backend and its cache.
#[derive(Debug)]
pub(crate) struct EncoderStage {
    /// The backend that runs the encoder (the overlapped run borrows it).
    pub(crate) backend: Box<dyn StageBackend>,
    /// The encoder's plan: the CPU backend is a session of it.
    plan: Plan,
    /// Who requires the backend (no CPU fallback); `None`: the CPU stands in.
    required_by: Option<String>,
    /// Why the CPU runs the encoder instead of the backend asked for.
    fallback: Option<String>,
    reuse: Option<f32>,
    cached_input: Vec<f32>,
    cached: Option<Tensor>,
    /// Times the encoder ran (beside the classifier or not).
    pub(crate) runs: u64,
}

/// The CPU's encoder: on our own kernels when they run every node of the
/// graph ([`NativeCpu`]: the real-time student's convolutions) and
/// [`backend::native_wanted`], else tract.
fn cpu_encoder(plan: &Plan) -> Result<Box<dyn StageBackend>, GraphError> {
    if backend::native_wanted() {
        match NativeCpu::new(plan) {
            Ok(n) => return Ok(Box::new(n)),
            Err(why) => log::debug!("encoder: tract, not the native kernels: {why}"),
        }
    }
    Ok(Box::new(TractCpu::new(plan)?))
}

impl EncoderStage {
    /// The encoder on the CPU.
    pub(crate) fn new(plan: &Plan) -> Result<EncoderStage, GraphError> {
        Ok(EncoderStage {
            backend: cpu_encoder(plan)?,
            plan: plan.clone(),
            required_by: None,
            fallback: None,
            reuse: None,
            cached_input: Vec::new(),
            cached: None,
            runs: 0,
        })
    }

    /// The encoder graph's file.
    pub(crate) fn path(&self) -> &Path {
        self.plan.path()
    }

    /// Why the CPU runs the encoder instead of the backend asked for (it
    /// could not start, or was lost on a frame).
    pub(crate) fn fallback(&self) -> Option<&str> {
        self.fallback.as_deref()
    }

    /// Runs the encoder on `backend` from the next frame on; one lost with
    /// `required_by` set stops the stream, else the CPU takes over.
    pub(crate) fn set_backend(
        &mut self,
        backend: Box<dyn StageBackend>,
        required_by: Option<String>,
    ) {
        log::info!("encoder backend: {}", backend.name());
        self.backend = backend;
        self.required_by = required_by;
        self.fallback = None;
        self.cached = None;
    }

    /// Starts the backend `request` asks for. One that cannot start is an
    /// error when required; else the CPU runs the encoder, said in one log
    /// line (a warning when the backend was asked for by name).
    pub(crate) fn select(&mut self, request: &BackendRequest) -> Result<(), PipelineError> {
        let Some(kind) = request.accelerator() else {
            self.cpu_backend()?;
            self.fallback = None;
            return Ok(());
        };
        match backend::start(kind, &self.plan) {
            Ok(started) => {
                self.set_backend(started, request.required().map(str::to_string));
                Ok(())
            }
            Err(e) => {
                if let Some(by) = request.required() {
                    return Err(PipelineError::BackendRequired {
                        stage: "encoder",
                        backend: kind.to_string(),
                        problem: format!("cannot start: {e}"),
                        required_by: by.to_string(),
                    });
                }
                self.cpu_backend()?;
                let why = format!("{kind} cannot start: {e}");
                let cpu = self.backend.name();
                match request.choice {
                    BackendChoice::Auto => log::info!(
                        "encoder backend auto: the {why}; running the encoder on the {cpu}"
                    ),
                    _ => log::warn!("encoder backend {why}; running the encoder on the {cpu}"),
                }
                self.fallback = Some(why);
                Ok(())
            }
        }
    }

    /// The CPU backend in place of the current one.
    fn cpu_backend(&mut self) -> Result<(), GraphError> {
        if self.backend.kind() != BackendKind::Cpu {
            self.backend = cpu_encoder(&self.plan)?;
        }
        self.required_by = None;
        Ok(())
    }

    /// The reuse threshold (`None`: always encode); forgets the cache.
    pub(crate) fn set_reuse(&mut self, threshold: Option<f32>) {
        self.reuse = threshold;
        self.cached = None;
    }

    /// Whether embeddings may be reused.
    pub(crate) fn reuses(&self) -> bool {
        self.reuse.is_some()
    }

    /// The embeddings of the model input `values` (the data of the tensor
    /// `stage` may hold) of frame `sequence`: the cached ones when the input
    /// is close enough to the one they were made from (`reused` is then
    /// set), else the backend's (run now, or beside the classifier), cached
    /// when reuse is on. [`Embeddings::Ready`] ones are returned as they are.
    pub(crate) fn embeddings(
        &mut self,
        values: &[f32],
        stage: Embeddings,
        sequence: u64,
        reused: &mut bool,
    ) -> Result<Tensor, PipelineError> {
        if let Embeddings::Ready(emb) = stage {
            return Ok(emb);
        }
        let reusable = match (self.reuse, &self.cached) {
            (Some(t), Some(_)) if self.cached_input.len() == values.len() => {
                let diff: f32 = self
                    .cached_input
                    .iter()
                    .zip(values)
                    .map(|(a, b)| (a - b).abs())
                    .sum();
                diff / (values.len() as f32) < t
            }
            _ => false,
        };
        if let Some(cached) = self.cached.as_ref().filter(|_| reusable) {
            *reused = true;
            return Ok(cached.clone());
        }
        self.runs += 1;
        let ran = match stage {
            Embeddings::Overlapped(ran) => ran,
            Embeddings::ToEncode(input) => self.backend.run(vec![input]),
            Embeddings::Ready(emb) => Ok(vec![emb]),
        };
        let emb = self.output(ran, values, sequence)?;
        if self.reuse.is_some() {
            self.cached_input.clear();
            self.cached_input.extend_from_slice(values);
            self.cached = Some(emb.clone());
        }
        Ok(emb)
    }

    /// The image embeddings of a run of the backend. A CPU that fails is
    /// the frame's error, as a graph's; any other backend that fails (or
    /// gives no embeddings of the graph's shape) is lost: the stream stops
    /// if it is required, else the CPU encodes `values` and every frame
    /// after.
    fn output(
        &mut self,
        ran: Result<Vec<Tensor>, BackendError>,
        values: &[f32],
        sequence: u64,
    ) -> Result<Tensor, PipelineError> {
        let cpu = self.backend.kind() == BackendKind::Cpu;
        let first = ran.and_then(|outs| match outs.into_iter().next() {
            Some(emb) if cpu || self.fits(&emb) => Ok(emb),
            Some(emb) => Err(BackendError::Device {
                detail: format!(
                    "gave image_embeddings of shape {:?}, the graph's are {:?}",
                    emb.shape(),
                    self.plan.outputs()[0].shape.as_deref().unwrap_or_default()
                ),
            }),
            None => Err(BackendError::Device {
                detail: "gave no output".into(),
            }),
        });
        let error = match first {
            Ok(emb) => return Ok(emb),
            Err(e) => e,
        };
        if cpu {
            return Err(match error {
                BackendError::Graph(e) => PipelineError::Graph(e),
                other => PipelineError::Frame {
                    sequence,
                    problem: format!("encoder on the {}: {other}", self.backend.name()),
                },
            });
        }
        self.lose(error, sequence)?;
        let shape = self.plan.inputs().first().map_or(&[][..], |i| &i.shape[..]);
        let input = Tensor::from_shape(shape, values).map_err(|e| PipelineError::Frame {
            sequence,
            problem: format!("cannot build the encoder's input tensor: {e}"),
        })?;
        let ran = self.backend.run(vec![input]);
        self.output(ran, values, sequence)
    }

    /// Hands the encoder to the CPU after its backend failed on frame
    /// `sequence` (one warning), or the error, when the backend is required.
    fn lose(&mut self, error: BackendError, sequence: u64) -> Result<(), PipelineError> {
        let lost = self.backend.name().to_string();
        if let Some(by) = &self.required_by {
            return Err(PipelineError::BackendRequired {
                stage: "encoder",
                backend: lost,
                problem: format!("lost on frame {sequence}: {error}"),
                required_by: by.clone(),
            });
        }
        self.cpu_backend()?;
        let why = format!("{lost} lost on frame {sequence}: {error}");
        log::warn!(
            "encoder backend {why}; running the encoder on the {} for the rest of the stream",
            self.backend.name()
        );
        self.fallback = Some(why);
        Ok(())
    }

    /// The embeddings `stage` holds, for a frame that needs none from the
    /// encoder (the target is gone): [`Embeddings::Ready`] ones, kept for a
    /// correction. A run beside the classifier that failed still loses its
    /// backend (a CPU's failure there goes unused, as its result would).
    pub(crate) fn unused(
        &mut self,
        stage: Embeddings,
        sequence: u64,
    ) -> Result<Option<Tensor>, PipelineError> {
        match stage {
            Embeddings::Ready(emb) => Ok(Some(emb)),
            Embeddings::Overlapped(Err(e)) if self.backend.kind() != BackendKind::Cpu => {
                self.lose(e, sequence)?;
                Ok(None)
            }
            Embeddings::Overlapped(_) | Embeddings::ToEncode(_) => Ok(None),
        }
    }

    /// Whether `emb` has the shape of the graph's first output (when tract
    /// knows it).
    fn fits(&self, emb: &Tensor) -> bool {
        match self.plan.outputs().first().and_then(|o| o.shape.as_deref()) {
            Some(shape) => emb.shape() == shape,
            None => true,
        }
    }
}
