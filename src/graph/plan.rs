//! An optimized, runnable graph with its input and output descriptions.

use std::path::{Path, PathBuf};

use tract_onnx::prelude::*;

use super::GraphError;

/// A runtime input of a [`Plan`]: name, element type and concrete shape.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TensorInfo {
    /// The ONNX input name.
    pub name: String,
    /// The element type.
    pub datum_type: DatumType,
    /// The shape.
    pub shape: Vec<usize>,
}

/// An output of a [`Plan`]: name, element type and shape when tract knows it
/// before running.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutputInfo {
    /// The ONNX output name.
    pub name: String,
    /// The element type.
    pub datum_type: DatumType,
    /// The shape, when concrete after optimization.
    pub shape: Option<Vec<usize>>,
}

/// A graph loaded by [`super::load`]: optimized once, run many times.
#[derive(Debug, Clone)]
pub struct Plan {
    path: PathBuf,
    inputs: Vec<TensorInfo>,
    outputs: Vec<OutputInfo>,
    runnable: Arc<TypedRunnableModel>,
}

impl Plan {
    pub(super) fn new(
        path: &Path,
        model: TypedModel,
        output_names: Vec<String>,
    ) -> Result<Plan, GraphError> {
        let internal = |stage: &'static str, detail: String| GraphError::Optimize {
            path: path.to_path_buf(),
            stage,
            detail,
            hint: String::new(),
        };
        let tract = |e: TractError| internal("planning", format!("{e:#}"));
        let mut inputs = Vec::new();
        for &outlet in model.input_outlets().map_err(tract)? {
            let name = model.node(outlet.node).name.clone();
            let fact = model.outlet_fact(outlet).map_err(tract)?;
            let shape = fact
                .shape
                .as_concrete()
                .ok_or_else(|| {
                    internal(
                        "planning",
                        format!("input {name:?} has no concrete shape: {fact:?}"),
                    )
                })?
                .to_vec();
            inputs.push(TensorInfo {
                name,
                datum_type: fact.datum_type,
                shape,
            });
        }
        let output_outlets = model.output_outlets().map_err(tract)?.to_vec();
        if output_outlets.len() != output_names.len() {
            return Err(internal(
                "planning",
                format!(
                    "{} outputs after optimization, the graph declares {:?}",
                    output_outlets.len(),
                    output_names
                ),
            ));
        }
        let mut outputs = Vec::new();
        for (&outlet, name) in output_outlets.iter().zip(output_names) {
            let fact = model.outlet_fact(outlet).map_err(tract)?;
            let shape = fact.shape.as_concrete().map(|s| s.to_vec());
            outputs.push(OutputInfo {
                name,
                datum_type: fact.datum_type,
                shape,
            });
        }
        let runnable = model.into_runnable().map_err(tract)?;
        Ok(Plan {
            path: path.to_path_buf(),
            inputs,
            outputs,
            runnable,
        })
    }

    /// The graph file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The runtime inputs, in the order [`Plan::run`] takes them (pinned
    /// constants are not inputs any more).
    pub fn inputs(&self) -> &[TensorInfo] {
        &self.inputs
    }

    /// The outputs, in the order [`Plan::run`] returns them.
    pub fn outputs(&self) -> &[OutputInfo] {
        &self.outputs
    }

    /// The optimized tract model (for inspection).
    pub fn model(&self) -> &TypedModel {
        self.runnable.model()
    }

    /// Runs once on inputs given in [`Plan::inputs`] order.
    pub fn run(&self, inputs: Vec<Tensor>) -> Result<Vec<Tensor>, GraphError> {
        self.session()?.run(inputs)
    }

    /// Runs once on inputs given by name, in any order; returns the outputs
    /// with their names, in [`Plan::outputs`] order.
    pub fn run_named(
        &self,
        inputs: Vec<(String, Tensor)>,
    ) -> Result<Vec<(String, Tensor)>, GraphError> {
        let mut slots: Vec<Option<Tensor>> = vec![None; self.inputs.len()];
        for (name, tensor) in inputs {
            let ix = self
                .inputs
                .iter()
                .position(|i| i.name == name)
                .ok_or_else(|| {
                    self.bad(format!(
                        "no runtime input {name:?} (inputs: {:?})",
                        self.inputs.iter().map(|i| &i.name).collect::<Vec<_>>()
                    ))
                })?;
            if slots[ix].replace(tensor).is_some() {
                return Err(self.bad(format!("input {name:?} given twice")));
            }
        }
        let ordered = slots
            .into_iter()
            .zip(&self.inputs)
            .map(|(t, info)| t.ok_or_else(|| self.bad(format!("input {:?} is missing", info.name))))
            .collect::<Result<Vec<_>, _>>()?;
        let outputs = self.run(ordered)?;
        Ok(self
            .outputs
            .iter()
            .map(|o| o.name.clone())
            .zip(outputs)
            .collect())
    }

    /// A reusable run state: repeated runs skip re-allocating it.
    /// The session holds its own handle on the plan (cheap: the optimized
    /// model is shared), so it can live next to the plan in a struct.
    pub fn session(&self) -> Result<Session, GraphError> {
        let state = TypedSimplePlan::spawn(&self.runnable).map_err(|e| GraphError::Run {
            path: self.path.clone(),
            detail: format!("{e:#}"),
        })?;
        Ok(Session {
            plan: self.clone(),
            state,
        })
    }

    fn bad(&self, problem: String) -> GraphError {
        GraphError::BadRunInputs {
            path: self.path.clone(),
            problem,
        }
    }

    fn check_inputs(&self, inputs: &[Tensor]) -> Result<(), GraphError> {
        if inputs.len() != self.inputs.len() {
            return Err(self.bad(format!(
                "expected {} inputs {:?}, got {}",
                self.inputs.len(),
                self.inputs.iter().map(|i| &i.name).collect::<Vec<_>>(),
                inputs.len()
            )));
        }
        for (info, tensor) in self.inputs.iter().zip(inputs) {
            if info.datum_type != tensor.datum_type() || info.shape != tensor.shape() {
                return Err(self.bad(format!(
                    "input {:?}: expected {:?} {:?}, got {:?} {:?}",
                    info.name,
                    info.datum_type,
                    info.shape,
                    tensor.datum_type(),
                    tensor.shape()
                )));
            }
        }
        Ok(())
    }
}

/// A run state of a [`Plan`], reused across runs.
#[derive(Debug)]
pub struct Session {
    plan: Plan,
    state: TypedSimpleState,
}

impl Session {
    /// The plan this session runs.
    pub fn plan(&self) -> &Plan {
        &self.plan
    }

    /// Runs once on inputs given in [`Plan::inputs`] order, after checking
    /// their types and shapes.
    pub fn run(&mut self, inputs: Vec<Tensor>) -> Result<Vec<Tensor>, GraphError> {
        self.plan.check_inputs(&inputs)?;
        let values: TVec<TValue> = inputs.into_iter().map(|t| t.into_tvalue()).collect();
        let path = &self.plan.path;
        let state = &mut self.state;
        let outputs = super::guard::contain(path, "running", || {
            state.run(values).map_err(|e| GraphError::Run {
                path: path.clone(),
                detail: format!("{e:#}"),
            })
        });
        if let Err(GraphError::Panicked { .. }) = &outputs {
            // the panicked state may hold half-written buffers: the next run starts from a fresh one
            if let Ok(fresh) = TypedSimplePlan::spawn(&self.plan.runnable) {
                self.state = fresh;
            }
        }
        Ok(outputs?.into_iter().map(|v| v.into_tensor()).collect())
    }
}
