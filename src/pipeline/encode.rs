//! The encoder stage: tract's plan of `encoder.onnx`, and the embeddings
//! cache of [`super::Pipeline::set_embedding_reuse`].

use tract_onnx::prelude::Tensor;

use crate::graph::Session;

use super::PipelineError;

/// Where a frame's image embeddings stand once its classifier has run.
pub(crate) enum Embeddings {
    /// Not computed yet: the model input tensor for the encoder.
    ToEncode(Tensor),
    /// Computed beside the classifier ([`super::Pipeline::set_overlap`]):
    /// the encoder's outputs, or why not.
    Overlapped(Result<Vec<Tensor>, PipelineError>),
    /// Computed before the classifier, which read them.
    Ready(Tensor),
}

/// The image encoder and its cache.
#[derive(Debug)]
pub(crate) struct EncoderStage {
    /// The encoder's session (the overlapped run borrows it).
    pub(crate) session: Session,
    reuse: Option<f32>,
    cached_input: Vec<f32>,
    cached: Option<Tensor>,
    /// Times the encoder ran (beside the classifier or not).
    pub(crate) runs: u64,
}

impl EncoderStage {
    pub(crate) fn new(session: Session) -> EncoderStage {
        EncoderStage {
            session,
            reuse: None,
            cached_input: Vec::new(),
            cached: None,
            runs: 0,
        }
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
    /// `stage` may hold): the cached ones when the input is close enough to
    /// the one they were made from (`reused` is then set), else the
    /// encoder's (run now, or beside the classifier), cached when reuse is
    /// on. [`Embeddings::Ready`] ones are returned as they are.
    pub(crate) fn embeddings(
        &mut self,
        values: &[f32],
        stage: Embeddings,
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
        let emb = match stage {
            Embeddings::Overlapped(ran) => ran?.swap_remove(0),
            Embeddings::ToEncode(input) => self.session.run(vec![input])?.swap_remove(0),
            Embeddings::Ready(emb) => emb,
        };
        if self.reuse.is_some() {
            self.cached_input.clear();
            self.cached_input.extend_from_slice(values);
            self.cached = Some(emb.clone());
        }
        Ok(emb)
    }
}
