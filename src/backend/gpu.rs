//! The GPU backend (`--features gpu`): a stage's graph on a Vulkan device
//! through [`GpuNet`] (wgpu compute), when [`crate::convnet`] reads every
//! node of it: the real-time student's encoder and head. Other graphs (the
//! accurate bundle's TinyViT) are refused at start, naming the node, and
//! the pipeline runs them on the CPU.

use crate::convnet::gpu::{GpuError, GpuNet};
use crate::graph::Plan;

use super::native::convnet_of;
use super::{BackendError, BackendKind, StageBackend};

/// A graph on a Vulkan GPU.
#[derive(Debug)]
pub struct VulkanGpu {
    net: GpuNet,
    name: String,
}

impl VulkanGpu {
    /// `plan`'s graph uploaded to the first Vulkan adapter; why not, when
    /// the graph has a node the GPU steps lack or there is no device.
    pub fn start(plan: &Plan) -> Result<VulkanGpu, BackendError> {
        let net = convnet_of(plan).map_err(|why| BackendError::Unsupported {
            detail: format!(
                "{}: the GPU backend runs convolutional graphs only: {why}",
                plan.path().display()
            ),
        })?;
        let net = GpuNet::new(&net).map_err(device)?;
        let name = format!("GPU (Vulkan: {})", net.adapter());
        log::info!("GPU backend: {name}");
        Ok(VulkanGpu { net, name })
    }
}

fn device(e: GpuError) -> BackendError {
    BackendError::Device {
        detail: e.to_string(),
    }
}

impl StageBackend for VulkanGpu {
    fn kind(&self) -> BackendKind {
        BackendKind::Gpu
    }

    fn name(&self) -> &str {
        &self.name
    }

    fn run(&mut self, input: &[f32], outputs: &mut [Vec<f32>]) -> Result<(), BackendError> {
        self.net.run_all(input, outputs).map_err(device)
    }
}
