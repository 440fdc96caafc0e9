//! The error type of graph loading and running.

use std::path::PathBuf;

use tract_onnx::prelude::DatumType;

/// An error loading, optimizing or running a graph.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum GraphError {
    /// The file is missing or is not an ONNX model tract can read.
    #[error("{}: cannot load ONNX graph: {detail}", path.display())]
    Load {
        /// The graph file.
        path: PathBuf,
        /// tract's error chain.
        detail: String,
    },
    /// The spec names an input the graph does not have.
    #[error("{}: the graph has no input {name:?} (its inputs: {available:?})", path.display())]
    UnknownInput {
        /// The graph file.
        path: PathBuf,
        /// The name in the spec.
        name: String,
        /// The graph's input names.
        available: Vec<String>,
    },
    /// The spec asks for an output the graph does not have.
    #[error("{}: the graph has no output {name:?} (its outputs: {available:?})", path.display())]
    UnknownOutput {
        /// The graph file.
        path: PathBuf,
        /// The name asked for.
        name: String,
        /// The graph's output names.
        available: Vec<String>,
    },
    /// The spec names an input twice.
    #[error("{}: input {name:?} is given twice", path.display())]
    DuplicateInput {
        /// The graph file.
        path: PathBuf,
        /// The input.
        name: String,
    },
    /// A given shape does not fit the shape the graph declares.
    #[error("{}: input {name:?}: the graph declares {declared}, got shape {given:?}", path.display())]
    ShapeMismatch {
        /// The graph file.
        path: PathBuf,
        /// The input.
        name: String,
        /// The declared fact, as tract prints it.
        declared: String,
        /// The declared dimensions, `None` where one is not a number (a
        /// symbol, or unknown); empty when the rank is not fixed.
        declared_dims: Vec<Option<usize>>,
        /// The given shape.
        given: Vec<usize>,
    },
    /// Two inputs give one symbolic dimension two values.
    #[error(
        "{}: input {name:?} sets symbol {symbol} to {value}, but {earlier_source} set it to {earlier}",
        path.display()
    )]
    SymbolConflict {
        /// The graph file.
        path: PathBuf,
        /// The input that conflicts.
        name: String,
        /// The symbol.
        symbol: String,
        /// The value from this input.
        value: usize,
        /// The earlier value.
        earlier: usize,
        /// Where the earlier value came from (an input, or the spec).
        earlier_source: String,
    },
    /// An input without a spec whose declared shape or type is not concrete.
    #[error("{}: input {name:?} is declared as {declared}: give its shape", path.display())]
    UnresolvedInput {
        /// The graph file.
        path: PathBuf,
        /// The input.
        name: String,
        /// The declared fact.
        declared: String,
    },
    /// A constant's element type differs from the declared one.
    #[error("{}: input {name:?}: the graph declares {declared:?}, the value is {given:?}", path.display())]
    DatumTypeMismatch {
        /// The graph file.
        path: PathBuf,
        /// The input.
        name: String,
        /// Declared type.
        declared: DatumType,
        /// Given type.
        given: DatumType,
    },
    /// Shape and type analysis or optimization failed.
    #[error("{}: cannot optimize the graph ({stage}): {detail}{hint}", path.display())]
    Optimize {
        /// The graph file.
        path: PathBuf,
        /// Which step failed.
        stage: &'static str,
        /// tract's error chain.
        detail: String,
        /// A hint on the likely cause, empty or starting with a newline.
        hint: String,
    },
    /// The graph holds something tract would not come back from (see
    /// `graph::guard`); refused before tract reads it.
    #[error("{}: refused: {reason}", path.display())]
    Refused {
        /// The graph file.
        path: PathBuf,
        /// What was found.
        reason: String,
    },
    /// tract panicked on this graph (an assumption it does not check); the
    /// panic was contained.
    #[error("{}: tract failed while {stage} (contained panic: {message})", path.display())]
    Panicked {
        /// The graph file.
        path: PathBuf,
        /// What tract was doing: loading, running.
        stage: &'static str,
        /// The panic's message.
        message: String,
    },
    /// The inputs given to a run do not match the plan.
    #[error("{}: {problem}", path.display())]
    BadRunInputs {
        /// The graph file.
        path: PathBuf,
        /// What does not match.
        problem: String,
    },
    /// tract failed while running the plan.
    #[error("{}: run failed: {detail}", path.display())]
    Run {
        /// The graph file.
        path: PathBuf,
        /// tract's error chain.
        detail: String,
    },
    /// A tensor cannot be converted to or from `.npy` data.
    #[error("{context}: {problem}")]
    Tensor {
        /// What was being converted.
        context: String,
        /// What went wrong.
        problem: String,
    },
}
