//! The error type of the pipeline: loading a bundle's graphs against the
//! contract, and running frames.

use std::path::PathBuf;

use crate::bundle::BundleError;
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
    /// A frame the pipeline cannot take.
    #[error("frame {sequence}: {problem}")]
    Frame {
        /// The frame's sequence number.
        sequence: u64,
        /// What is wrong with it.
        problem: String,
    },
}
