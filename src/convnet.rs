//! Convolutional graphs on our own kernels: the real-time student's
//! `encoder.onnx` (strided convolutions, inverted residual blocks,
//! depthwise 3×3 with dilation, a nearest ×2 upsample, SAM's channel
//! LayerNorm) and its presence/CAM head's `classifier.onnx` (dilated
//! convolutions, a global max, a sigmoid) run without tract.
//!
//! The graph is read once ([`ConvNet::load`]) into a list of steps over
//! NHWC buffers allocated then: a 1×1 convolution is one GEMM
//! ([`Kernels::gemm_f32`], pixels × input channels times the packed
//! weights), a dense k×k one a GEMM over an im2col buffer, a depthwise one
//! [`Kernels::depthwise`] (tap by tap over all channels, compiled per ISA
//! level), LayerNorm the kernels' row LayerNorm (one row a pixel).
//! [`ConvNet::run`] allocates nothing. Weights stored as f16 (`Cast` of an
//! f16 initializer, the bundle's `f16-stored` form) or f32 are read as f32.
//!
//! Only what the student uses is accepted: `Conv` (1×1 or k×k, groups 1 or
//! depthwise, any stride, dilation and symmetric padding), `Relu`, `Add` of
//! two tensors of one shape, `Add` or `Mul` of a tensor and a scalar
//! constant, `Sigmoid`, `ReduceMax` over height and width, `Resize`
//! nearest ×2, the LayerNorm2d pattern (`ReduceMean` over channels, `Sub`,
//! `Pow` 2, `ReduceMean`, `Add` eps, `Sqrt`, `Div`, `Mul` γ, `Add` β), and
//! `Cast`/`Constant` feeding those; one input, any number of outputs.
//! Any other graph is refused at load with the node that does not fit, so
//! the caller keeps tract for it.

use std::path::{Path, PathBuf};

use crate::kernels::{Kernels, PackedB};

mod exec;
#[cfg(feature = "gpu")]
pub mod gpu;
mod read;

/// Why a graph cannot run natively.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConvNetError {
    /// The file could not be read as ONNX, or a weight is malformed.
    #[error("{path}: {detail}")]
    Graph {
        /// The graph file.
        path: PathBuf,
        /// What went wrong.
        detail: String,
    },
    /// A node (or its attributes, or its inputs' shapes) is outside what
    /// the native encoder runs.
    #[error("{path}: node {node:?} ({op}): {what}")]
    Unsupported {
        /// The graph file.
        path: PathBuf,
        /// The node's name (or its first output's).
        node: String,
        /// Its op type.
        op: String,
        /// What does not fit.
        what: String,
    },
    /// [`ConvNet::run`]'s input or output slice has the wrong length.
    #[error("the native encoder takes {expected} values, got {got}")]
    Length {
        /// Expected length.
        expected: usize,
        /// Given length.
        got: usize,
    },
}

/// A tensor's shape, NHWC with N = 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Hwc {
    h: usize,
    w: usize,
    c: usize,
}

impl Hwc {
    fn len(self) -> usize {
        self.h * self.w * self.c
    }
}

/// How a convolution is computed.
#[derive(Debug)]
enum ConvKind {
    /// 1×1, stride 1, no padding: one GEMM.
    Pointwise { w: PackedB },
    /// k×k, groups 1: im2col then one GEMM; `w` is (k·k·cin) × cout.
    Dense { w: PackedB, geo: Geometry },
    /// groups = cin = cout: `w` is k·k taps × c, tap-major.
    Depthwise { w: Vec<f32>, geo: Geometry },
}

/// A k×k window's geometry.
#[derive(Debug, Clone, Copy)]
struct Geometry {
    k: usize,
    stride: usize,
    pad: usize,
    dilation: usize,
}

#[derive(Debug)]
enum Step {
    Conv {
        src: usize,
        dst: usize,
        kind: ConvKind,
        bias: Vec<f32>,
        relu: bool,
    },
    Relu {
        src: usize,
        dst: usize,
    },
    Add {
        a: usize,
        b: usize,
        dst: usize,
        relu: bool,
    },
    Upsample2 {
        src: usize,
        dst: usize,
    },
    LayerNorm {
        src: usize,
        dst: usize,
        gamma: Vec<f32>,
        beta: Vec<f32>,
        eps: f32,
    },
    /// `dst = src · scale + shift` (scalar constants).
    Affine {
        src: usize,
        dst: usize,
        scale: f32,
        shift: f32,
    },
    Sigmoid {
        src: usize,
        dst: usize,
    },
    /// The largest value of each channel over the image (1×1×C).
    GlobalMax {
        src: usize,
        dst: usize,
    },
}

/// The student's encoder, loaded for native runs.
#[derive(Debug)]
pub struct ConvNet {
    path: PathBuf,
    kernels: Kernels,
    steps: Vec<Step>,
    /// Value → buffer slot; values whose lives do not overlap share one.
    slot: Vec<usize>,
    shapes: Vec<Hwc>,
    bufs: Vec<Vec<f32>>,
    im2col: Vec<f32>,
    input: usize,
    /// The graph's outputs, in its order.
    outputs: Vec<usize>,
}

impl ConvNet {
    /// The graph file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Runs on `kernels` instead of the process's ([`Kernels::get`]): to
    /// check each ISA level against the scalar one.
    pub fn with_kernels(mut self, kernels: Kernels) -> ConvNet {
        self.kernels = kernels;
        self
    }

    /// The kernels it runs on.
    pub fn kernels(&self) -> Kernels {
        self.kernels
    }

    /// Input length: C·H·W.
    pub fn input_len(&self) -> usize {
        self.shapes[self.input].len()
    }

    /// The first output's (channels, height, width).
    pub fn output_chw(&self) -> (usize, usize, usize) {
        self.output_chw_at(0)
    }

    /// How many outputs the graph has.
    pub fn output_count(&self) -> usize {
        self.outputs.len()
    }

    /// Output `i`'s (channels, height, width).
    ///
    /// # Panics
    /// If `i` is not below [`ConvNet::output_count`].
    pub fn output_chw_at(&self, i: usize) -> (usize, usize, usize) {
        let s = self.shapes[self.outputs[i]];
        (s.c, s.h, s.w)
    }

    /// Step `i` on the buffers.
    fn step(&mut self, i: usize) {
        exec::run_step(
            &self.kernels,
            &self.steps[i],
            &self.slot,
            &self.shapes,
            &mut self.bufs,
            &mut self.im2col,
        );
    }

    /// Runs once like [`ConvNet::run`], timing each step: (what it is, ms),
    /// in order. For benchmarks (it allocates the list).
    pub fn run_timed(
        &mut self,
        input: &[f32],
        output: &mut [f32],
    ) -> Result<Vec<(String, f64)>, ConvNetError> {
        self.run(input, output)?;
        let mut times = Vec::with_capacity(self.steps.len());
        for i in 0..self.steps.len() {
            let t0 = std::time::Instant::now();
            self.step(i);
            let ms = t0.elapsed().as_secs_f64() * 1e3;
            let what = match &self.steps[i] {
                Step::Conv { src, dst, kind, .. } => {
                    let (a, b) = (self.shapes[*src], self.shapes[*dst]);
                    let k = match kind {
                        ConvKind::Pointwise { .. } => "conv 1x1".to_string(),
                        ConvKind::Dense { geo, .. } => {
                            format!("conv {0}x{0}/{1}", geo.k, geo.stride)
                        }
                        ConvKind::Depthwise { geo, .. } => format!(
                            "depthwise {0}x{0}/{1} d{2}",
                            geo.k, geo.stride, geo.dilation
                        ),
                    };
                    format!("{k} {}x{}x{} -> {}x{}x{}", a.h, a.w, a.c, b.h, b.w, b.c)
                }
                Step::Relu { .. } => "relu".into(),
                Step::Add { .. } => "add".into(),
                Step::Upsample2 { .. } => "upsample x2".into(),
                Step::LayerNorm { .. } => "layer norm".into(),
                Step::Affine { .. } => "affine".into(),
                Step::Sigmoid { .. } => "sigmoid".into(),
                Step::GlobalMax { .. } => "global max".into(),
            };
            times.push((what, ms));
        }
        Ok(times)
    }

    /// Runs the graph on `input` (C×H×W, planar, as the graph's input) into
    /// `output` (C×H×W, planar, as the graph's first output).
    pub fn run(&mut self, input: &[f32], output: &mut [f32]) -> Result<(), ConvNetError> {
        self.run_all(input, &mut [output])
    }

    /// Runs the graph on `input` into `outputs`, one slice per output (at
    /// most [`ConvNet::output_count`]), each planar C×H×W.
    pub fn run_all<O: AsMut<[f32]>>(
        &mut self,
        input: &[f32],
        outputs: &mut [O],
    ) -> Result<(), ConvNetError> {
        let si = self.shapes[self.input];
        if input.len() != si.len() {
            return Err(ConvNetError::Length {
                expected: si.len(),
                got: input.len(),
            });
        }
        for (o, out) in outputs.iter_mut().enumerate() {
            let len = self.outputs.get(o).map_or(0, |&v| self.shapes[v].len());
            if out.as_mut().len() != len {
                return Err(ConvNetError::Length {
                    expected: len,
                    got: out.as_mut().len(),
                });
            }
        }
        // Planar (C × HW) to NHWC (HW × C): a blocked transpose.
        let buf = &mut self.bufs[self.slot[self.input]][..si.len()];
        buf.fill(0.0);
        self.kernels.add_transposed(input, si.c, si.h * si.w, buf);
        for i in 0..self.steps.len() {
            self.step(i);
        }
        // NHWC (HW × C) back to planar (C × HW): the same transpose with the
        // roles swapped (element by element it had cost ~2 ms at 1024 × 256,
        // its writes 4 KB apart).
        for (out, &v) in outputs.iter_mut().zip(&self.outputs) {
            let so = self.shapes[v];
            let buf = &self.bufs[self.slot[v]][..so.len()];
            let out = out.as_mut();
            out.fill(0.0);
            self.kernels.add_transposed(buf, so.h * so.w, so.c, out);
        }
        Ok(())
    }
}
