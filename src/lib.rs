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
//! - [`graph`]: loading ONNX graphs into optimized tract plans with fixed
//!   input shapes, constant inputs and pinned symbolic dimensions.
//!
//! Errors at the library boundary are typed and name the file involved;
//! malformed input is an error, never a panic.

pub mod bundle;
pub mod frame;
pub mod graph;
pub mod npy;
pub mod prompt;
pub mod resize;
