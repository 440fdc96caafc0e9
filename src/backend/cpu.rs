//! The CPU backend: tract's optimized plan of a stage's graph, run in one
//! reusable session (the reference every other backend is checked against).
//! tract allocates its tensors per run; the outputs are copied into the
//! stage's buffers.

use tract_onnx::prelude::Tensor;

use crate::graph::{GraphError, Plan, Session};

use super::{BackendError, BackendKind, StageBackend};

/// tract on the CPU: one [`Session`] of the stage's [`Plan`].
#[derive(Debug)]
pub struct TractCpu {
    session: Session,
}

impl TractCpu {
    /// A session of `plan` (its run state is allocated on the first run and
    /// reused after).
    pub fn new(plan: &Plan) -> Result<TractCpu, GraphError> {
        Ok(TractCpu {
            session: plan.session()?,
        })
    }
}

impl StageBackend for TractCpu {
    fn kind(&self) -> BackendKind {
        BackendKind::Cpu
    }

    fn name(&self) -> &str {
        "CPU (tract)"
    }

    fn run(&mut self, input: &[f32], outputs: &mut [Vec<f32>]) -> Result<(), BackendError> {
        let plan = self.session.plan();
        let path = plan.path().to_path_buf();
        let failed = |detail: String| {
            BackendError::Graph(GraphError::Run {
                path: path.clone(),
                detail,
            })
        };
        let shape = plan.inputs().first().map_or(&[][..], |i| &i.shape[..]);
        let tensor = Tensor::from_shape(shape, input)
            .map_err(|e| failed(format!("cannot build the input tensor: {e}")))?;
        let outs = self.session.run(vec![tensor])?;
        if outs.len() < outputs.len() {
            return Err(failed(format!(
                "{} outputs, expected {}",
                outs.len(),
                outputs.len()
            )));
        }
        for (i, (t, out)) in outs.iter().zip(outputs.iter_mut()).enumerate() {
            let values = t
                .try_as_plain_ram()
                .and_then(|v| v.as_slice::<f32>())
                .map_err(|e| failed(format!("output {i} is not readable as f32: {e:#}")))?;
            out.clear();
            out.extend_from_slice(values);
        }
        Ok(())
    }
}
