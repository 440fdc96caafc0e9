//! The CPU running a stage's graph on our own kernels ([`crate::convnet`]):
//! the real-time student's convolutional encoder and presence/CAM head. tract stays the reference
//! it is checked against (`tests/native_encoder.rs`) and runs every graph
//! this one refuses.

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
}

impl NativeCpu {
    /// The native form of `plan`'s graph, when [`ConvNet`] runs every node
    /// of it and its input is the plan's; why not otherwise.
    pub fn new(plan: &Plan) -> Result<NativeCpu, String> {
        Ok(NativeCpu {
            net: convnet_of(plan)?,
        })
    }
}

/// `plan`'s graph as a [`ConvNet`], when it runs every node of it and its
/// input and outputs are the plan's; why not otherwise.
pub(super) fn convnet_of(plan: &Plan) -> Result<ConvNet, String> {
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
    for (i, o) in plan.outputs().iter().enumerate() {
        let (c, h, w) = net.output_chw_at(i);
        let shape = o.shape.clone().unwrap_or_else(|| vec![1, c, h, w]);
        if shape.iter().product::<usize>() != c * h * w {
            return Err(format!(
                "output {:?} is {shape:?}, the graph's {c}×{h}×{w}",
                o.name
            ));
        }
    }
    Ok(net)
}

impl StageBackend for NativeCpu {
    fn kind(&self) -> BackendKind {
        BackendKind::Cpu
    }

    fn name(&self) -> &str {
        "CPU (native kernels)"
    }

    fn run(&mut self, input: &[f32], outputs: &mut [Vec<f32>]) -> Result<(), BackendError> {
        if outputs.len() > self.net.output_count() {
            return Err(BackendError::Device {
                detail: format!(
                    "{} output buffers for a graph of {} outputs",
                    outputs.len(),
                    self.net.output_count()
                ),
            });
        }
        for (i, out) in outputs.iter_mut().enumerate() {
            let (c, h, w) = self.net.output_chw_at(i);
            // no allocation once the buffer has had this length
            out.resize(c * h * w, 0.0);
        }
        self.net
            .run_all(input, outputs)
            .map_err(|e| BackendError::Device {
                detail: e.to_string(),
            })
    }
}
