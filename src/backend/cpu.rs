//! The CPU backend: tract's optimized plan of a stage's graph, run in one
//! reusable session (the reference every other backend is checked against).

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

    fn run(&mut self, inputs: Vec<Tensor>) -> Result<Vec<Tensor>, BackendError> {
        Ok(self.session.run(inputs)?)
    }
}
