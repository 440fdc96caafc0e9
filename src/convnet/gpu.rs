//! A [`ConvNet`] on a GPU through Vulkan compute (wgpu, WGSL shaders in
//! `gpu.wgsl`): the same steps as on the CPU, one compute dispatch each
//! over NHWC storage buffers that live on the device. Built with the `gpu`
//! feature.
//!
//! At load the weights go up once (one buffer for all of them), every
//! value slot of the CPU plan gets a device buffer, and every step its
//! bind group and its dispatch size; a frame then writes the input, records
//! the dispatches in one pass, copies the outputs to one mapped read-back
//! buffer and waits for them (with a time bound: a GPU that does not
//! answer is an error, not a hang). What wgpu does inside (command buffers,
//! its staging belt) allocates per frame; our side reuses its buffers.
//!
//! Each invocation computes one output value in the order the CPU does,
//! but sums in f32 in another order: results agree with the CPU's to
//! rounding (`tests/gpu_backend.rs`), not bit for bit.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use wgpu::util::DeviceExt;

use super::{ConvKind, ConvNet, Geometry, Step};

/// How long a frame may take on the device before it is given up.
pub const FRAME_TIMEOUT: Duration = Duration::from_secs(30);

/// Why the GPU did not start or did not run.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum GpuError {
    /// No Vulkan adapter (no driver, no device).
    #[error("no Vulkan adapter: {0}")]
    NoAdapter(String),
    /// The device, the driver or wgpu failed (at start or on a frame).
    #[error("{0}")]
    Device(String),
    /// The input or an output slice has the wrong length.
    #[error("the GPU graph takes {expected} values, got {got}")]
    Length {
        /// Expected length.
        expected: usize,
        /// Given length.
        got: usize,
    },
}

/// The uniform block of `gpu.wgsl` (`Params`), 24 × 4 bytes.
#[derive(Debug, Clone, Copy, Default)]
struct Params {
    h: u32,
    w: u32,
    c: u32,
    oh: u32,
    ow: u32,
    oc: u32,
    k: u32,
    stride: u32,
    pad: u32,
    dil: u32,
    w_off: u32,
    b_off: u32,
    g_off: u32,
    relu: u32,
    a: f32,
    b: f32,
    count: u32,
}

impl Params {
    /// A k×k window's size, stride, padding and dilation.
    fn window(&mut self, geo: &Geometry) {
        self.k = geo.k as u32;
        self.stride = geo.stride as u32;
        self.pad = geo.pad as u32;
        self.dil = geo.dilation as u32;
    }

    fn bytes(&self) -> [u8; 96] {
        let words: [u32; 24] = [
            self.h,
            self.w,
            self.c,
            self.oh,
            self.ow,
            self.oc,
            self.k,
            self.stride,
            self.pad,
            self.dil,
            self.w_off,
            self.b_off,
            self.g_off,
            self.relu,
            self.a.to_bits(),
            self.b.to_bits(),
            self.count,
            0,
            0,
            0,
            0,
            0,
            0,
            0,
        ];
        let mut out = [0u8; 96];
        for (d, w) in out.chunks_exact_mut(4).zip(words) {
            d.copy_from_slice(&w.to_ne_bytes());
        }
        out
    }
}

/// One dispatch: its pipeline (entry point), bind group and grid.
#[derive(Debug)]
struct Dispatch {
    entry: usize,
    group: wgpu::BindGroup,
    grid: (u32, u32),
}

/// What a dispatch reads and writes: slots of the plan, or the graph's
/// planar input and output buffers.
#[derive(Debug, Clone, Copy)]
enum Buf {
    Slot(usize),
    Input,
    Output(usize),
    Dummy,
}

/// The entry points of `gpu.wgsl`, in [`GpuNet`]'s pipeline order.
const ENTRIES: [&str; 11] = [
    "to_nhwc",
    "to_planar",
    "conv",
    "depthwise",
    "add",
    "relu",
    "affine",
    "sigmoid",
    "upsample2",
    "layer_norm",
    "global_max",
];

fn entry(name: &str) -> usize {
    ENTRIES.iter().position(|&e| e == name).unwrap_or(0)
}

/// A [`ConvNet`] uploaded to a Vulkan device.
#[derive(Debug)]
pub struct GpuNet {
    device: wgpu::Device,
    queue: wgpu::Queue,
    adapter: String,
    pipelines: Vec<wgpu::ComputePipeline>,
    dispatches: Vec<Dispatch>,
    input: wgpu::Buffer,
    input_len: usize,
    /// Each output's planar buffer and length.
    outputs: Vec<(wgpu::Buffer, usize)>,
    readback: wgpu::Buffer,
    /// An error the device reported outside a call (validation, lost).
    failed: Arc<Mutex<Option<String>>>,
}

impl GpuNet {
    /// `net` on the first Vulkan adapter wgpu finds (a discrete GPU first):
    /// its weights uploaded, its shaders compiled, its buffers made.
    pub fn new(net: &ConvNet) -> Result<GpuNet, GpuError> {
        let mut desc = wgpu::InstanceDescriptor::new_without_display_handle();
        desc.backends = wgpu::Backends::VULKAN;
        // No debug messenger: the loader's own complaints (no driver found)
        // would reach the log as errors beside our one line saying why.
        desc.flags = wgpu::InstanceFlags::empty();
        let instance = wgpu::Instance::new(desc);
        let adapter = pollster::block_on(instance.request_adapter(&wgpu::RequestAdapterOptions {
            power_preference: wgpu::PowerPreference::HighPerformance,
            force_fallback_adapter: false,
            compatible_surface: None,
            apply_limit_buckets: false,
        }))
        .map_err(|e| GpuError::NoAdapter(e.to_string()))?;
        let info = adapter.get_info();
        let name = format!("{} ({}, {:?})", info.name, info.driver, info.device_type);
        let mut limits = wgpu::Limits::default();
        let supported = adapter.limits();
        limits.max_storage_buffer_binding_size = supported.max_storage_buffer_binding_size;
        limits.max_buffer_size = supported.max_buffer_size;
        let (device, queue) = pollster::block_on(adapter.request_device(&wgpu::DeviceDescriptor {
            label: Some("sammix"),
            required_features: wgpu::Features::empty(),
            required_limits: limits,
            ..Default::default()
        }))
        .map_err(|e| GpuError::Device(format!("{name}: {e}")))?;
        let failed = Arc::new(Mutex::new(None::<String>));
        let slot = Arc::clone(&failed);
        device.on_uncaptured_error(Arc::new(move |e: wgpu::Error| {
            if let Ok(mut s) = slot.lock() {
                s.get_or_insert_with(|| e.to_string());
            }
        }));
        let slot = Arc::clone(&failed);
        device.set_device_lost_callback(move |reason, message| {
            if let Ok(mut s) = slot.lock() {
                s.get_or_insert_with(|| format!("device lost ({reason:?}): {message}"));
            }
        });
        let built = Builder::new(&device).build(net);
        let (pipelines, dispatches, input, outputs, readback) = built;
        let gpu = GpuNet {
            device,
            queue,
            adapter: name,
            pipelines,
            dispatches,
            input,
            input_len: net.input_len(),
            outputs,
            readback,
            failed,
        };
        gpu.check()?;
        Ok(gpu)
    }

    /// The adapter, in words: `llvmpipe (LLVM 15.0.6, 256 bits) (llvmpipe, Cpu)`.
    pub fn adapter(&self) -> &str {
        &self.adapter
    }

    /// An error the device reported since the last check.
    fn check(&self) -> Result<(), GpuError> {
        match self.failed.lock() {
            Ok(s) => match s.as_ref() {
                Some(e) => Err(GpuError::Device(e.clone())),
                None => Ok(()),
            },
            Err(_) => Err(GpuError::Device("the error slot is poisoned".into())),
        }
    }

    /// Runs the graph on `input` (planar C×H×W) into `outputs` (one slice
    /// per output, at most as many as the graph has, each planar).
    pub fn run_all<O: AsMut<[f32]>>(
        &mut self,
        input: &[f32],
        outputs: &mut [O],
    ) -> Result<(), GpuError> {
        if input.len() != self.input_len {
            return Err(GpuError::Length {
                expected: self.input_len,
                got: input.len(),
            });
        }
        for (o, out) in outputs.iter_mut().enumerate() {
            let len = self.outputs.get(o).map_or(0, |b| b.1);
            if out.as_mut().len() != len {
                return Err(GpuError::Length {
                    expected: len,
                    got: out.as_mut().len(),
                });
            }
        }
        self.check()?;
        self.queue
            .write_buffer(&self.input, 0, bytemuck::cast_slice(input));
        let mut enc = self
            .device
            .create_command_encoder(&wgpu::CommandEncoderDescriptor { label: None });
        {
            let mut pass = enc.begin_compute_pass(&wgpu::ComputePassDescriptor::default());
            for d in &self.dispatches {
                pass.set_pipeline(&self.pipelines[d.entry]);
                pass.set_bind_group(0, &d.group, &[]);
                pass.dispatch_workgroups(d.grid.0, d.grid.1, 1);
            }
        }
        let mut at = 0u64;
        for (buf, len) in &self.outputs {
            let bytes = (*len * 4) as u64;
            enc.copy_buffer_to_buffer(buf, 0, &self.readback, at, bytes);
            at += bytes;
        }
        let index = self.queue.submit([enc.finish()]);
        let mapped = Arc::new(Mutex::new(None::<Result<(), String>>));
        let slot = Arc::clone(&mapped);
        let slice = self.readback.slice(..at.max(4));
        slice.map_async(wgpu::MapMode::Read, move |r| {
            if let Ok(mut s) = slot.lock() {
                *s = Some(r.map_err(|e| e.to_string()));
            }
        });
        self.device
            .poll(wgpu::PollType::Wait {
                submission_index: Some(index),
                timeout: Some(FRAME_TIMEOUT),
            })
            .map_err(|e| GpuError::Device(format!("waiting for the frame: {e}")))?;
        // The map callback runs once the copy is done; poll once more if
        // the wait returned first.
        let mut state = mapped.lock().ok().and_then(|s| s.clone());
        if state.is_none() {
            self.device
                .poll(wgpu::PollType::Wait {
                    submission_index: None,
                    timeout: Some(FRAME_TIMEOUT),
                })
                .map_err(|e| GpuError::Device(format!("waiting for the read-back: {e}")))?;
            state = mapped.lock().ok().and_then(|s| s.clone());
        }
        match state {
            Some(Ok(())) => {}
            Some(Err(e)) => return Err(GpuError::Device(format!("read-back: {e}"))),
            None => return Err(GpuError::Device("the read-back never completed".into())),
        }
        let result = (|| {
            let view = slice
                .get_mapped_range()
                .map_err(|e| GpuError::Device(format!("read-back: {e}")))?;
            let mut at = 0usize;
            for (out, (_, len)) in outputs.iter_mut().zip(&self.outputs) {
                let bytes = &view[at..at + len * 4];
                for (d, s) in out.as_mut().iter_mut().zip(bytes.chunks_exact(4)) {
                    *d = f32::from_ne_bytes([s[0], s[1], s[2], s[3]]);
                }
                at += len * 4;
            }
            Ok(())
        })();
        self.readback.unmap();
        result?;
        self.check()
    }
}

type Built = (
    Vec<wgpu::ComputePipeline>,
    Vec<Dispatch>,
    wgpu::Buffer,
    Vec<(wgpu::Buffer, usize)>,
    wgpu::Buffer,
);

/// Makes the device side of a [`ConvNet`].
struct Builder<'d> {
    device: &'d wgpu::Device,
    weights: Vec<f32>,
    steps: Vec<(usize, Params, Buf, Buf, Buf)>,
}

impl<'d> Builder<'d> {
    fn new(device: &'d wgpu::Device) -> Builder<'d> {
        Builder {
            device,
            weights: Vec::new(),
            steps: Vec::new(),
        }
    }

    /// Appends `values` to the weights buffer; their offset.
    fn push(&mut self, values: &[f32]) -> u32 {
        let at = self.weights.len() as u32;
        self.weights.extend_from_slice(values);
        at
    }

    fn build(mut self, net: &ConvNet) -> Built {
        let shape = |v: usize| net.shapes[v];
        let slot = |v: usize| Buf::Slot(net.slot[v]);
        let si = shape(net.input);
        self.steps.push((
            entry("to_nhwc"),
            Params {
                h: si.h as u32,
                w: si.w as u32,
                c: si.c as u32,
                count: si.len() as u32,
                ..Params::default()
            },
            Buf::Input,
            Buf::Dummy,
            slot(net.input),
        ));
        for step in &net.steps {
            self.step(net, step);
        }
        for (o, &v) in net.outputs.iter().enumerate() {
            let so = shape(v);
            self.steps.push((
                entry("to_planar"),
                Params {
                    h: so.h as u32,
                    w: so.w as u32,
                    c: so.c as u32,
                    count: so.len() as u32,
                    ..Params::default()
                },
                slot(v),
                Buf::Dummy,
                Buf::Output(o),
            ));
        }

        let dev = self.device;
        let storage = |bytes: usize, usage: wgpu::BufferUsages| {
            dev.create_buffer(&wgpu::BufferDescriptor {
                label: None,
                size: bytes.max(4) as u64,
                usage,
                mapped_at_creation: false,
            })
        };
        let rw = wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC;
        let slots: Vec<wgpu::Buffer> = net.bufs.iter().map(|b| storage(b.len() * 4, rw)).collect();
        let input = storage(
            net.input_len() * 4,
            wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_DST,
        );
        let outputs: Vec<(wgpu::Buffer, usize)> = net
            .outputs
            .iter()
            .map(|&v| (storage(shape(v).len() * 4, rw), shape(v).len()))
            .collect();
        let total: usize = outputs.iter().map(|o| o.1 * 4).sum();
        let readback = storage(
            total,
            wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
        );
        let dummy = storage(4, wgpu::BufferUsages::STORAGE);
        if self.weights.is_empty() {
            self.weights.push(0.0);
        }
        let weights = dev.create_buffer_init(&wgpu::util::BufferInitDescriptor {
            label: Some("weights"),
            contents: bytemuck::cast_slice(&self.weights),
            usage: wgpu::BufferUsages::STORAGE,
        });

        let module = dev.create_shader_module(wgpu::ShaderModuleDescriptor {
            label: Some("gpu.wgsl"),
            source: wgpu::ShaderSource::Wgsl(include_str!("gpu.wgsl").into()),
        });
        let storage_entry = |binding: u32, read_only: bool| wgpu::BindGroupLayoutEntry {
            binding,
            visibility: wgpu::ShaderStages::COMPUTE,
            ty: wgpu::BindingType::Buffer {
                ty: wgpu::BufferBindingType::Storage { read_only },
                has_dynamic_offset: false,
                min_binding_size: None,
            },
            count: None,
        };
        let layout = dev.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
            label: None,
            entries: &[
                wgpu::BindGroupLayoutEntry {
                    binding: 0,
                    visibility: wgpu::ShaderStages::COMPUTE,
                    ty: wgpu::BindingType::Buffer {
                        ty: wgpu::BufferBindingType::Uniform,
                        has_dynamic_offset: false,
                        min_binding_size: None,
                    },
                    count: None,
                },
                storage_entry(1, true),
                storage_entry(2, true),
                storage_entry(3, true),
                storage_entry(4, false),
            ],
        });
        let pipeline_layout = dev.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
            label: None,
            bind_group_layouts: &[Some(&layout)],
            immediate_size: 0,
        });
        let pipelines = ENTRIES
            .iter()
            .map(|e| {
                dev.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
                    label: Some(e),
                    layout: Some(&pipeline_layout),
                    module: &module,
                    entry_point: Some(e),
                    compilation_options: Default::default(),
                    cache: None,
                })
            })
            .collect();
        let resolve = |b: Buf| match b {
            Buf::Slot(s) => &slots[s],
            Buf::Input => &input,
            Buf::Output(o) => &outputs[o].0,
            Buf::Dummy => &dummy,
        };
        let dispatches = self
            .steps
            .iter()
            .map(|&(entry, params, x, x2, y)| {
                let uniform = dev.create_buffer_init(&wgpu::util::BufferInitDescriptor {
                    label: None,
                    contents: &params.bytes(),
                    usage: wgpu::BufferUsages::UNIFORM,
                });
                let group = dev.create_bind_group(&wgpu::BindGroupDescriptor {
                    label: None,
                    layout: &layout,
                    entries: &[
                        wgpu::BindGroupEntry {
                            binding: 0,
                            resource: uniform.as_entire_binding(),
                        },
                        wgpu::BindGroupEntry {
                            binding: 1,
                            resource: weights.as_entire_binding(),
                        },
                        wgpu::BindGroupEntry {
                            binding: 2,
                            resource: resolve(x).as_entire_binding(),
                        },
                        wgpu::BindGroupEntry {
                            binding: 3,
                            resource: resolve(x2).as_entire_binding(),
                        },
                        wgpu::BindGroupEntry {
                            binding: 4,
                            resource: resolve(y).as_entire_binding(),
                        },
                    ],
                });
                Dispatch {
                    entry,
                    group,
                    grid: grid(params.count),
                }
            })
            .collect();
        (pipelines, dispatches, input, outputs, readback)
    }

    /// One CPU step as a dispatch.
    fn step(&mut self, net: &ConvNet, step: &Step) {
        let slot = |v: usize| Buf::Slot(net.slot[v]);
        let io = |src: usize, dst: usize| {
            let (si, so) = (net.shapes[src], net.shapes[dst]);
            Params {
                h: si.h as u32,
                w: si.w as u32,
                c: si.c as u32,
                oh: so.h as u32,
                ow: so.w as u32,
                oc: so.c as u32,
                count: so.len() as u32,
                ..Params::default()
            }
        };
        let (name, params, x, x2, y) = match step {
            Step::Conv {
                src,
                dst,
                kind,
                bias,
                relu,
            } => {
                let mut p = io(*src, *dst);
                p.relu = u32::from(*relu);
                p.b_off = self.push(bias);
                let name = match kind {
                    ConvKind::Pointwise { w } => {
                        p.w_off = self.push_packed(w);
                        (p.k, p.stride, p.pad, p.dil) = (1, 1, 0, 1);
                        "conv"
                    }
                    ConvKind::Dense { w, geo } => {
                        p.w_off = self.push_packed(w);
                        p.window(geo);
                        "conv"
                    }
                    ConvKind::Depthwise { w, geo } => {
                        p.w_off = self.push(w);
                        p.window(geo);
                        "depthwise"
                    }
                };
                (name, p, slot(*src), Buf::Dummy, slot(*dst))
            }
            Step::Relu { src, dst } => ("relu", io(*src, *dst), slot(*src), Buf::Dummy, slot(*dst)),
            Step::Add { a, b, dst, relu } => {
                let mut p = io(*a, *dst);
                p.relu = u32::from(*relu);
                ("add", p, slot(*a), slot(*b), slot(*dst))
            }
            Step::Upsample2 { src, dst } => (
                "upsample2",
                io(*src, *dst),
                slot(*src),
                Buf::Dummy,
                slot(*dst),
            ),
            Step::LayerNorm {
                src,
                dst,
                gamma,
                beta,
                eps,
            } => {
                let mut p = io(*src, *dst);
                p.b_off = self.push(gamma);
                p.g_off = self.push(beta);
                p.a = *eps;
                p.count = (net.shapes[*src].h * net.shapes[*src].w) as u32;
                ("layer_norm", p, slot(*src), Buf::Dummy, slot(*dst))
            }
            Step::Affine {
                src,
                dst,
                scale,
                shift,
            } => {
                let mut p = io(*src, *dst);
                (p.a, p.b) = (*scale, *shift);
                ("affine", p, slot(*src), Buf::Dummy, slot(*dst))
            }
            Step::Sigmoid { src, dst } => (
                "sigmoid",
                io(*src, *dst),
                slot(*src),
                Buf::Dummy,
                slot(*dst),
            ),
            Step::GlobalMax { src, dst } => {
                let mut p = io(*src, *dst);
                p.count = net.shapes[*src].c as u32;
                ("global_max", p, slot(*src), Buf::Dummy, slot(*dst))
            }
        };
        self.steps.push((entry(name), params, x, x2, y));
    }

    /// A packed GEMM weight, unpacked row-major (k × n) into the weights.
    fn push_packed(&mut self, w: &crate::kernels::PackedB) -> u32 {
        let at = self.weights.len() as u32;
        for p in 0..w.k() {
            for j in 0..w.n() {
                self.weights.push(w.get(p, j));
            }
        }
        at
    }
}

/// Workgroups of 64 for `count` values, at most 65,535 along x.
fn grid(count: u32) -> (u32, u32) {
    let groups = count.div_ceil(64).max(1);
    let x = groups.min(65_535);
    (x, groups.div_ceil(x))
}
