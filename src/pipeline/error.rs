//! The error type of the pipeline: loading a bundle's graphs against the
//! contract, and running frames.

use std::path::PathBuf;

use crate::bundle::BundleError;
use crate::decoder::DecoderError;
use crate::graph::GraphError;

/// An error building the pipeline or running a frame through it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PipelineError {
    /// The bundle did not open.
    #[error(transparent)]
    Bundle(#[from] BundleError),
    /// A graph did not load, optimize or run.
    #[error(transparent)]
    Graph(#[from] GraphError),
    /// A graph loaded, but an output differs from the bundle contract
    /// (`models/README.md`).
    #[error("{}: output {output:?} is {got}, the contract expects {expected}", path.display())]
    Contract {
        /// The graph file.
        path: PathBuf,
        /// The output's name.
        output: String,
        /// What the contract wants.
        expected: String,
        /// What the graph gives.
        got: String,
    },
    /// A graph's embedding grid (the encoder's `image_embeddings` E×E, the
    /// decoder's 4E×4E `mask_input`, ...) differs from what the manifest's
    /// `input.embedding_size` makes it. E is the graphs': the manifest must
    /// say theirs.
    #[error(
        "{}: {tensor} is {got}, but the manifest's input.embedding_size = {embedding_size} \
         makes it {expected} (E comes from the graphs: the manifest must give theirs)",
        path.display()
    )]
    EmbeddingSize {
        /// The graph file.
        path: PathBuf,
        /// The tensor, as `input "mask_input"` or `output "image_embeddings"`.
        tensor: String,
        /// The manifest's `input.embedding_size`.
        embedding_size: u32,
        /// The shape the manifest makes it.
        expected: String,
        /// The shape in the graph (`?` for a dimension that is not a number).
        got: String,
    },
    /// The native decoder did not load `decoder.onnx`, or did not run.
    /// (The message includes the decoder's, so it is not also given as the
    /// error's `source()`: `{:#}` chains would print it twice.)
    #[error("native decoder, {}: {}", path.display(), decoder_detail(path, error))]
    Decoder {
        /// The decoder graph file.
        path: PathBuf,
        /// What the native decoder said (boxed: it is large, and the
        /// pipeline's results should stay small).
        error: Box<DecoderError>,
    },
    /// The native decoder loaded `decoder.onnx`, but what it read from the
    /// graph does not fit the bundle's manifest.
    #[error("native decoder, {}: the graph has {what} {got}, the manifest ({field}) says {expected}", path.display())]
    DecoderMismatch {
        /// The decoder graph file.
        path: PathBuf,
        /// What was read from the graph.
        what: &'static str,
        /// The manifest field it is checked against.
        field: &'static str,
        /// The manifest's value.
        expected: String,
        /// The graph's value.
        got: String,
    },
    /// A stage's backend did not start, or was lost mid-stream, and the
    /// request requires it: the CPU does not stand in.
    #[error("{stage} backend {backend}: {problem}; required by {required_by}, so the {stage} does not fall back to the CPU")]
    BackendRequired {
        /// The graph stage (`encoder`).
        stage: &'static str,
        /// The backend asked for (`gpu`, or its name once started).
        backend: String,
        /// What went wrong: `cannot start: ...`, `lost on frame N: ...`.
        problem: String,
        /// Who requires it (the profile field or the command-line flag).
        required_by: String,
    },
    /// A frame the pipeline cannot take.
    #[error("frame {sequence}: {problem}")]
    Frame {
        /// The frame's sequence number.
        sequence: u64,
        /// What is wrong with it.
        problem: String,
    },
}

/// The decoder's message without the file name the pipeline error already
/// gives (load errors start with `PATH: `).
fn decoder_detail(path: &std::path::Path, e: &DecoderError) -> String {
    let text = e.to_string();
    let prefix = format!("{}: ", path.display());
    match text.strip_prefix(&prefix) {
        Some(rest) => rest.to_string(),
        None => text,
    }
}
