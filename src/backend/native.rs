//! The CPU running a stage's graph on our own kernels ([`crate::convnet`]):
//! the real-time student's convolutional encoder and presence/CAM head. tract stays the reference
//! it is checked against (`tests/native_encoder.rs`) and runs every graph
//! this one refuses.

use tract_onnx::prelude::Tensor;

use crate::convnet::ConvNet;
use crate::graph::Plan;

use super::{BackendError, BackendKind, StageBackend};

/// Whether the CPU should run graphs natively where [`ConvNet`] can:
/// `SAMMIX_CONVNET=native` or `tract` says; unset, release builds do and
/// debug builds do not (our crate is built unoptimized there, `Cargo.toml`:
/// 1.5 s a student frame against 16 ms in tract).
pub fn native_wanted() -> bool {
    match std::env::var("SAMMIX_CONVNET").ok().as_deref() {
        Some("tract") => false,
        Some("native") => true,
        Some(other) => {
            log::warn!("SAMMIX_CONVNET={other:?}: expected native or tract; ignored");
            !cfg!(debug_assertions)
        }
        None => !cfg!(debug_assertions),
    }
}

/// A graph on [`ConvNet`]: one input `1×C×H×W`, its outputs shaped as the
/// plan's (the student's encoder; its presence/CAM head).
#[derive(Debug)]
pub struct NativeCpu {
    net: ConvNet,
    shapes: Vec<Vec<usize>>,
    outs: Vec<Vec<f32>>,
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
        if plan.outputs().len() != net.output_count() {
            return Err(format!(
                "the plan has {} outputs, the graph {}",
                plan.outputs().len(),
                net.output_count()
            ));
        }
        let mut shapes = Vec::new();
        let mut outs = Vec::new();
        for (i, o) in plan.outputs().iter().enumerate() {
            let (c, h, w) = net.output_chw_at(i);
            let shape = o.shape.clone().unwrap_or_else(|| vec![1, c, h, w]);
            if shape.iter().product::<usize>() != c * h * w {
                return Err(format!(
                    "output {:?} is {shape:?}, the graph's {c}×{h}×{w}",
                    o.name
                ));
            }
            shapes.push(shape);
            outs.push(vec![0.0; c * h * w]);
        }
        Ok(NativeCpu { net, shapes, outs })
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
        let mut outs: Vec<&mut [f32]> = self.outs.iter_mut().map(Vec::as_mut_slice).collect();
        self.net
            .run_all(x, &mut outs)
            .map_err(|e| device(e.to_string()))?;
        self.outs
            .iter()
            .zip(&self.shapes)
            .map(|(o, s)| Tensor::from_shape(s, o).map_err(|e| device(e.to_string())))
            .collect()
    }
}
