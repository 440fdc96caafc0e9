//! sammix: a lean runtime for SAM-Mix segmentation on edge boards.
//!
//! SAM-Mix pairs a classifier, whose class activation map prompts SAM, with
//! SAM's image encoder and mask decoder; the three ONNX graphs of a bundle run
//! here with [tract](https://github.com/sonos/tract). This is the start of
//! the crate:
//!
//! - [`bundle`]: opening a bundle folder: its manifest `sammix.toml`
//!   parsed and validated, every file checked against its sha256;
//! - [`npy`]: a dependency-free reader and writer for NumPy `.npy` files
//!   (test vectors, reference outputs);
//! - [`image_io`]: PNG frames and masks in, PNG masks and frames out (any
//!   colour type and bit depth read as 8-bit gray or RGB);
//! - [`y4m`]: a dependency-free YUV4MPEG2 clip reader (8-bit colorspaces,
//!   to gray or RGB, no allocation per frame) and writer;
//! - [`metrics`]: Dice, IoU and HD95 with the Python recipe's conventions,
//!   per-image scores and their summary for `sammix eval`;
//! - [`overlay`]: the picture a clinician sees: the frame with the target
//!   tinted and outlined, the box and the presence probability drawn on it;
//! - [`board`]: the board profile compiled in by `build.rs` (`SAMMIX_BOARD`)
//!   and the controls: freeze button, status LED, frame watchdog;
//! - [`graph`]: loading ONNX graphs into optimized tract plans with fixed
//!   input shapes, constant inputs and pinned symbolic dimensions.
//! - [`backend`]: where a graph stage runs ([`backend::StageBackend`]): tract
//!   on the CPU, the reference; the choice of the board profile and
//!   `--backend`, and the CPU standing in for a backend that cannot start.
//! - [`kernels`]: the native decoder's compute kernels (f32 and int8 GEMM,
//!   softmax, LayerNorm, GELU, transposed convolution, resize), one module per
//!   instruction set (scalar, AVX2, AVX-512 VNNI, NEON with dot product and
//!   i8mm), chosen at run time.
//!
//! Errors at the library boundary are typed and name the file involved;
//! malformed input is an error, never a panic.

pub mod backend;
pub mod board;
pub mod bundle;
pub mod convnet;
pub mod decoder;
pub mod frame;
pub mod graph;
pub mod image_io;
pub mod kernels;
pub mod metrics;
pub mod npy;
pub mod overlay;
pub mod pipeline;
pub mod prompt;
pub mod resize;
pub mod source;
pub mod stream;
pub mod y4m;
