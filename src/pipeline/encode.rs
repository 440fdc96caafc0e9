//! The encoder stage: the backend that runs `encoder.onnx` ([`crate::backend`]:
//! tract on the CPU unless another was started), the CPU standing in for a
//! backend that cannot start or is lost, and the embeddings cache of
//! [`super::Pipeline::set_embedding_reuse`] (above the backend: a reused
//! frame runs none). The embeddings live in buffers the stage owns (the
//! backend's output buffers, the cache), reused from frame to frame:
//! [`EncoderStage::current`] reads the ones of the last frame that had any.

use crate::backend::{self, BackendChoice, BackendError, BackendKind, BackendRequest};
use crate::backend::{NativeCpu, StageBackend, TractCpu};
use crate::graph::{GraphError, Plan};

use super::PipelineError;

/// Where a frame's image embeddings stand once its classifier has run.
pub(crate) enum Embeddings {
    /// Not computed yet.
    ToEncode,
    /// Computed beside the classifier ([`super::Pipeline::set_overlap`])
    /// into the stage's buffers, or why not.
    Overlapped(Result<(), BackendError>),
    /// Computed before the classifier, which read them
    /// ([`EncoderStage::current`]).
    Ready,
}

/// Which buffer holds the embeddings of the last frame that had any.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Current {
    /// The backend's output buffer.
    Output,
    /// The reuse cache.
    Cached,
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
    /// The cached embeddings (reuse on), valid when `has_cache`.
    cached: Vec<f32>,
    has_cache: bool,
    /// The backend's output buffers: the embeddings first.
    outs: Vec<Vec<f32>>,
    /// Where the last frame's embeddings are (`None`: it has none).
    current: Option<Current>,
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
            cached: Vec::new(),
            has_cache: false,
            outs: backend::output_buffers(plan),
            current: None,
            runs: 0,
        })
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
        self.has_cache = false;
        self.current = None;
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
        self.has_cache = false;
    }

    /// Whether embeddings may be reused.
    pub(crate) fn reuses(&self) -> bool {
        self.reuse.is_some()
    }

    /// Forgets which embeddings are current: a new frame starts.
    pub(crate) fn forget(&mut self) {
        self.current = None;
    }

    /// The embeddings of the last frame that had any (the encoder ran, ran
    /// beside the classifier and was used, or the cache stood in).
    pub(crate) fn current(&self) -> Option<&[f32]> {
        match self.current? {
            Current::Output => self.outs.first().map(Vec::as_slice),
            Current::Cached => Some(&self.cached),
        }
    }

    /// The backend and its output buffers, for a run beside the classifier.
    pub(crate) fn overlap_parts(&mut self) -> (&mut dyn StageBackend, &mut [Vec<f32>]) {
        (self.backend.as_mut(), &mut self.outs)
    }

    /// Makes the embeddings of the model input `values` of frame `sequence`
    /// [`EncoderStage::current`]: the cached ones when the input is close
    /// enough to the one they were made from (`reused` is then set), else
    /// the backend's (run now, or beside the classifier), cached when reuse
    /// is on. [`Embeddings::Ready`] ones are current already.
    pub(crate) fn embeddings(
        &mut self,
        values: &[f32],
        stage: Embeddings,
        sequence: u64,
        reused: &mut bool,
    ) -> Result<(), PipelineError> {
        if let Embeddings::Ready = stage {
            return Ok(());
        }
        let reusable = match self.reuse {
            Some(t) if self.has_cache && self.cached_input.len() == values.len() => {
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
        if reusable {
            *reused = true;
            self.current = Some(Current::Cached);
            return Ok(());
        }
        self.runs += 1;
        let ran = match stage {
            Embeddings::Overlapped(ran) => ran,
            Embeddings::ToEncode | Embeddings::Ready => self.backend.run(values, &mut self.outs),
        };
        self.output(ran, values, sequence)?;
        self.current = Some(Current::Output);
        if self.reuse.is_some() {
            self.cached_input.clear();
            self.cached_input.extend_from_slice(values);
            self.cached.clear();
            self.cached.extend_from_slice(&self.outs[0]);
            self.has_cache = true;
        }
        Ok(())
    }

    /// Checks a run of the backend: its embeddings are in `self.outs[0]`. A
    /// CPU that fails is the frame's error, as a graph's; any other backend
    /// that fails (or gives no embeddings of the graph's shape) is lost: the
    /// stream stops if it is required, else the CPU encodes `values` and
    /// every frame after.
    fn output(
        &mut self,
        ran: Result<(), BackendError>,
        values: &[f32],
        sequence: u64,
    ) -> Result<(), PipelineError> {
        let cpu = self.backend.kind() == BackendKind::Cpu;
        let want = self.plan.outputs().first().and_then(|o| o.shape.as_deref());
        let first = ran.and_then(|()| match (self.outs.first(), want) {
            (None, _) => Err(BackendError::Device {
                detail: "gave no output".into(),
            }),
            (Some(emb), Some(shape)) if !cpu && emb.len() != shape.iter().product::<usize>() => {
                Err(BackendError::Device {
                    detail: format!(
                        "gave {} image_embeddings values, the graph's are {shape:?}",
                        emb.len()
                    ),
                })
            }
            (Some(_), _) => Ok(()),
        });
        let error = match first {
            Ok(()) => return Ok(()),
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
        // the lost backend may have left the buffers any length
        self.outs = backend::output_buffers(&self.plan);
        let ran = self.backend.run(values, &mut self.outs);
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

    /// For a frame that needs no embeddings from the encoder (the target
    /// is gone): [`Embeddings::Ready`] ones stay current, kept for a
    /// correction; others are not. A run beside the classifier that failed
    /// still loses its backend (a CPU's failure there goes unused, as its
    /// result would).
    pub(crate) fn unused(&mut self, stage: Embeddings, sequence: u64) -> Result<(), PipelineError> {
        match stage {
            Embeddings::Ready => {}
            Embeddings::Overlapped(Err(e)) if self.backend.kind() != BackendKind::Cpu => {
                self.current = None;
                self.lose(e, sequence)?;
            }
            Embeddings::Overlapped(_) | Embeddings::ToEncode => self.current = None,
        }
        Ok(())
    }
}
