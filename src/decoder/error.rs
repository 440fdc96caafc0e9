//! The error type of the native decoder.

use std::path::PathBuf;

/// An error loading the native decoder from `decoder.onnx`, or running it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DecoderError {
    /// The file is missing or is not an ONNX model.
    #[error("{}: cannot read the ONNX model: {detail}", path.display())]
    Read {
        /// The graph file.
        path: PathBuf,
        /// What went wrong.
        detail: String,
    },
    /// A SAM parameter the decoder needs is not in the graph, neither by
    /// name nor where the graph's structure says it should be.
    #[error("{}: weight {name} is missing (expected {expected}; {looked})", path.display())]
    MissingWeight {
        /// The graph file.
        path: PathBuf,
        /// SAM's parameter path, e.g.
        /// `mask_decoder.transformer.layers.0.self_attn.q_proj.weight`.
        name: String,
        /// The shape and type expected.
        expected: String,
        /// Where it was looked for.
        looked: String,
    },
    /// A weight has the wrong shape.
    #[error(
        "{}: weight {name} (initializer {initializer:?}): expected shape {expected}, found {found:?}",
        path.display()
    )]
    WeightShape {
        /// The graph file.
        path: PathBuf,
        /// SAM's parameter path.
        name: String,
        /// The ONNX initializer holding it.
        initializer: String,
        /// The expected shape, e.g. `[256, 128]`.
        expected: String,
        /// The initializer's dims.
        found: Vec<i64>,
    },
    /// A weight's data cannot be used: element type, data length, external
    /// data, a non-zero int8 zero point, a non-finite scale.
    #[error("{}: weight {name} (initializer {initializer:?}): {problem}", path.display())]
    WeightData {
        /// The graph file.
        path: PathBuf,
        /// SAM's parameter path.
        name: String,
        /// The ONNX initializer holding it.
        initializer: String,
        /// What is wrong.
        problem: String,
    },
    /// The graph computes something the native decoder does not (another
    /// interface, mask selection in the graph, stability scores).
    #[error("{}: the native decoder does not support this graph: {detail}", path.display())]
    UnsupportedGraph {
        /// The graph file.
        path: PathBuf,
        /// What differs.
        detail: String,
    },
    /// A run was given buffers of the wrong size.
    #[error("native decoder input {name}: expected {expected}, got {got}")]
    Input {
        /// The input or output buffer.
        name: &'static str,
        /// What was expected.
        expected: String,
        /// What was given.
        got: String,
    },
}
