//! The CPU running a stage's graph on our own kernels ([`crate::convnet`]):
//! the real-time student's convolutional encoder. tract stays the reference
//! it is checked against (`tests/native_encoder.rs`) and runs every graph
//! this one refuses.

use tract_onnx::prelude::Tensor;

use crate::convnet::ConvNet;
use crate::graph::Plan;

use super::{BackendError, BackendKind, StageBackend};

/// The encoder on [`ConvNet`]: one input `1×C×S×S`, one output `1×C×E×E`.
#[derive(Debug)]
pub struct NativeCpu {
    net: ConvNet,
    shape: [usize; 4],
    out: Vec<f32>,
}

impl NativeCpu {
    /// The native form of `plan`'s graph, when [`ConvNet`] runs every node
    /// of it and its input is the plan's; why not otherwise.
    pub fn new(plan: &Plan) -> Result<NativeCpu, String> {
        let net = ConvNet::load(plan.path()).map_err(|e| e.to_string())?;
        let [input] = plan.inputs() else {
            return Err("the plan has more than one input".into());
        };
        if input.shape.iter().product::<usize>() != net.input_len() {
            return Err(format!(
                "the plan's input is {:?}, the graph's {} values",
                input.shape,
                net.input_len()
            ));
        }
        let (c, h, w) = net.output_chw();
        Ok(NativeCpu {
            net,
            shape: [1, c, h, w],
            out: vec![0.0; c * h * w],
        })
    }
}

impl StageBackend for NativeCpu {
    fn kind(&self) -> BackendKind {
        BackendKind::Cpu
    }

    fn name(&self) -> &str {
        "CPU (native kernels)"
    }

    fn run(&mut self, inputs: Vec<Tensor>) -> Result<Vec<Tensor>, BackendError> {
        let device = |detail: String| BackendError::Device { detail };
        let [input] = inputs.as_slice() else {
            return Err(device(format!("expected one input, got {}", inputs.len())));
        };
        let plain = input
            .try_as_plain_ram()
            .map_err(|e| device(format!("input: {e}")))?;
        let x = plain
            .as_slice::<f32>()
            .map_err(|e| device(format!("input: {e}")))?;
        self.net
            .run(x, &mut self.out)
            .map_err(|e| device(e.to_string()))?;
        let t = Tensor::from_shape(&self.shape, &self.out).map_err(|e| device(e.to_string()))?;
        Ok(vec![t])
    }
}
