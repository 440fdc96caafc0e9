//! Loading ONNX graphs into optimized tract plans with fixed input shapes.
//!
//! A [`GraphSpec`] says how each graph input is fixed at load: a concrete
//! shape ([`InputSpec::shape`]) or a constant value ([`InputSpec::constant`]).
//! Constants are folded into the graph before optimization: tract cannot
//! optimize the official SAM decoder while `orig_im_size` is a runtime input
//! (its final `Resize` takes the output size from the input's *values*:
//! "Neither sizes nor scales makes sense"), so it is pinned here.
//!
//! Symbolic dimensions (the `num_points` of the official decoder export, and
//! the copies onnxruntime's quantization pre-processing writes into
//! `value_info`) are resolved from the concrete input shapes: a declared
//! input dimension that is a bare symbol takes the given size, and the value
//! is substituted in every declared fact of the graph. Whatever declared
//! intermediate dimension still holds an unknown symbol afterwards is
//! forgotten (tract re-derives it), so leftover `value_info` cannot make the
//! analysis fail. [`GraphSpec::strip_value_info`] ignores `value_info`
//! altogether.
//!
//! Every error names the file and, where one is involved, the input.

use std::collections::HashMap;
use std::path::Path;

use tract_onnx::prelude::*;
use tract_onnx::tract_core::ops::konst::Const;
use tract_onnx::tract_hir::infer::{Factoid, GenericFactoid, ShapeFactoid};

use crate::npy::NpyArray;

mod error;
mod guard;
mod kernels;
mod plan;
mod tensors;

pub use error::GraphError;
pub(crate) use guard::contain_panic;
pub use guard::{MAX_INPUT_BYTES, MAX_INPUT_ELEMENTS, MAX_NODES};
pub use plan::{OutputInfo, Plan, Session, TensorInfo};
pub use tensors::{npy_to_tensor, tensor_to_npy};
pub use tract_onnx::prelude::{DatumType, Tensor};

/// How one graph input is fixed at load time.
#[derive(Debug, Clone)]
pub struct InputSpec {
    name: String,
    fix: Fix,
}

#[derive(Debug, Clone)]
enum Fix {
    Shape(Vec<usize>),
    Constant(Tensor),
}

impl InputSpec {
    /// A runtime input of this concrete shape (type as the graph declares).
    pub fn shape(name: impl Into<String>, shape: impl Into<Vec<usize>>) -> InputSpec {
        InputSpec {
            name: name.into(),
            fix: Fix::Shape(shape.into()),
        }
    }

    /// An input pinned to this value: it stops being an input and is folded
    /// into the graph before optimization.
    pub fn constant(name: impl Into<String>, value: Tensor) -> InputSpec {
        InputSpec {
            name: name.into(),
            fix: Fix::Constant(value),
        }
    }

    /// [`InputSpec::constant`] from `.npy` data.
    pub fn constant_npy(name: impl Into<String>, value: NpyArray) -> Result<InputSpec, GraphError> {
        let name = name.into();
        let tensor = npy_to_tensor(value, &name)?;
        Ok(InputSpec::constant(name, tensor))
    }

    /// The input's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The shape this spec fixes.
    pub fn fixed_shape(&self) -> &[usize] {
        match &self.fix {
            Fix::Shape(s) => s,
            Fix::Constant(t) => t.shape(),
        }
    }

    /// Whether the input is pinned to a constant.
    pub fn is_constant(&self) -> bool {
        matches!(self.fix, Fix::Constant(_))
    }
}

/// How to load a graph: input shapes and constants, symbol values.
#[derive(Debug, Clone, Default)]
pub struct GraphSpec {
    /// One entry per input to fix. Inputs without an entry keep the shape the
    /// graph declares, which must then be concrete (after symbol resolution).
    pub inputs: Vec<InputSpec>,
    /// Values for symbolic dimensions, by name (for instance `num_points`),
    /// on top of those derived from the input shapes. A name the graph does
    /// not use is ignored.
    pub symbols: Vec<(String, usize)>,
    /// Ignore the graph's `value_info` entirely.
    pub strip_value_info: bool,
    /// The outputs to keep, by name, in this order; empty keeps all. What
    /// only dropped outputs need is pruned before optimization (the SAM
    /// decoder's full-size `masks` when only `low_res_masks` is used).
    pub outputs: Vec<String>,
}

impl GraphSpec {
    /// A spec fixing these inputs.
    pub fn new(inputs: Vec<InputSpec>) -> GraphSpec {
        GraphSpec {
            inputs,
            ..GraphSpec::default()
        }
    }
}

/// Loads `path`, fixes its inputs as `spec` says and optimizes it into a plan.
pub fn load(path: impl AsRef<Path>, spec: &GraphSpec) -> Result<Plan, GraphError> {
    kernels::avoid_faulty_kernels();
    let path = path.as_ref();
    let load_err = |detail: String| GraphError::Load {
        path: path.to_path_buf(),
        detail,
    };
    if !path.is_file() {
        return Err(load_err("no such file".to_string()));
    }
    let onnx = tract_onnx::onnx().with_ignore_value_info(spec.strip_value_info);
    let proto = guard::contain(path, "reading", || {
        onnx.proto_model_for_path(path)
            .map_err(|e| load_err(format!("{e:#}")))
    })?;
    guard::precheck(path, &proto)?;
    guard::contain(path, "loading", || {
        let dir = path.parent().and_then(Path::to_str);
        let parsed = onnx
            .parse(&proto, dir)
            .map_err(|e| load_err(format!("{e:#}")))?;
        if !parsed.unresolved_inputs.is_empty() {
            return Err(load_err(format!(
                "inputs no node or initializer defines: {:?}",
                parsed.unresolved_inputs
            )));
        }
        drop(proto);
        let mut model = parsed.model;
        let output_names = select_outputs(&mut model, path, &spec.outputs)?;
        fix_inputs(&mut model, path, spec)?;
        let typed = model
            .into_typed()
            .map_err(|e| optimize_error(path, "shape and type analysis", e))?;
        let optimized = typed
            .into_optimized()
            .map_err(|e| optimize_error(path, "optimization", e))?;
        Plan::new(path, optimized, output_names)
    })
}

/// The graph's input names, in order.
fn input_names(model: &InferenceModel) -> TractResult<Vec<String>> {
    Ok(model
        .input_outlets()?
        .iter()
        .map(|o| model.node(o.node).name.clone())
        .collect())
}

/// Keeps only the `wanted` outputs (all when empty); returns the kept names.
fn select_outputs(
    model: &mut InferenceModel,
    path: &Path,
    wanted: &[String],
) -> Result<Vec<String>, GraphError> {
    let internal = |e: TractError| GraphError::Load {
        path: path.to_path_buf(),
        detail: format!("{e:#}"),
    };
    let names = output_names(model).map_err(internal)?;
    if wanted.is_empty() {
        return Ok(names);
    }
    let outlets = model.output_outlets().map_err(internal)?.to_vec();
    let mut chosen = Vec::with_capacity(wanted.len());
    for name in wanted {
        let ix = names
            .iter()
            .position(|n| n == name)
            .ok_or_else(|| GraphError::UnknownOutput {
                path: path.to_path_buf(),
                name: name.clone(),
                available: names.clone(),
            })?;
        chosen.push(outlets[ix]);
    }
    model.select_output_outlets(&chosen).map_err(internal)?;
    Ok(wanted.to_vec())
}

/// The graph's output names, in order.
fn output_names(model: &InferenceModel) -> TractResult<Vec<String>> {
    Ok(model
        .output_outlets()?
        .iter()
        .map(|&o| {
            model
                .outlet_label(o)
                .unwrap_or(&model.node(o.node).name)
                .to_string()
        })
        .collect())
}

fn optimize_error(path: &Path, stage: &'static str, e: TractError) -> GraphError {
    let detail = format!("{e:#}");
    let hint = if detail.contains("Neither sizes nor scales") {
        "\nhint: a Resize takes its output size from a runtime input; pin that input as a \
         constant (for the SAM decoder: orig_im_size), or use low_res_masks"
            .to_string()
    } else if let Some(op) = unimplemented_op(&detail) {
        format!("\nhint: the graph uses the operator {op}, which tract 0.23.9 does not implement")
    } else {
        String::new()
    };
    GraphError::Optimize {
        path: path.to_path_buf(),
        stage,
        detail,
        hint,
    }
}

/// The operator name in tract's `Unimplemented(Op)` message, if any.
fn unimplemented_op(detail: &str) -> Option<&str> {
    let start = detail.find("Unimplemented(")? + "Unimplemented(".len();
    let len = detail[start..].find(')')?;
    Some(&detail[start..start + len])
}

/// Pins constants, resolves symbols and sets concrete input facts.
fn fix_inputs(model: &mut InferenceModel, path: &Path, spec: &GraphSpec) -> Result<(), GraphError> {
    let internal = |e: TractError| GraphError::Load {
        path: path.to_path_buf(),
        detail: format!("{e:#}"),
    };
    let names = input_names(model).map_err(internal)?;
    let outlets = model.input_outlets().map_err(internal)?.to_vec();

    // Which spec applies to which input.
    let mut by_input: Vec<Option<&InputSpec>> = vec![None; names.len()];
    for input in &spec.inputs {
        let ix = names.iter().position(|n| *n == input.name).ok_or_else(|| {
            GraphError::UnknownInput {
                path: path.to_path_buf(),
                name: input.name.clone(),
                available: names.clone(),
            }
        })?;
        if by_input[ix].replace(input).is_some() {
            return Err(GraphError::DuplicateInput {
                path: path.to_path_buf(),
                name: input.name.clone(),
            });
        }
    }

    // Symbol values: from the spec, then from the given shapes.
    let mut symbols: HashMap<Symbol, (usize, String)> = HashMap::new();
    for (name, value) in &spec.symbols {
        match model.symbols.get(name) {
            Some(sym) => {
                symbols.insert(sym, (*value, "the spec".to_string()));
            }
            None => log::debug!(
                "{}: no symbol {name:?} in the graph, ignored",
                path.display()
            ),
        }
    }
    for (ix, input) in by_input.iter().enumerate() {
        let Some(input) = input else { continue };
        let fact = model.outlet_fact(outlets[ix]).map_err(internal)?;
        bind_symbols(path, input, fact, &mut symbols)?;
    }
    if !symbols.is_empty() {
        let subs: HashMap<Symbol, TDim> = symbols
            .iter()
            .map(|(s, (v, _))| (s.clone(), TDim::Val(*v as i64)))
            .collect();
        for (s, (v, from)) in &symbols {
            log::debug!("{}: symbol {s} = {v} (from {from})", path.display());
        }
        model.set_symbols(&subs).map_err(internal)?;
    }
    forget_unresolved_dims(model, &outlets).map_err(internal)?;

    // Concrete input facts; constants replace their source node.
    let mut kept = Vec::new();
    for (ix, &outlet) in outlets.iter().enumerate() {
        let name = &names[ix];
        let declared = model.outlet_fact(outlet).map_err(internal)?.clone();
        let declared_dt = declared.datum_type.concretize();
        match by_input[ix].map(|i| &i.fix) {
            Some(Fix::Constant(value)) => {
                if let Some(dt) = declared_dt {
                    if dt != value.datum_type() {
                        return Err(GraphError::DatumTypeMismatch {
                            path: path.to_path_buf(),
                            name: name.clone(),
                            declared: dt,
                            given: value.datum_type(),
                        });
                    }
                }
                let value = Arc::new(value.clone());
                let konst = Const::new(value.clone()).map_err(internal)?;
                model.node_mut(outlet.node).op = Box::new(konst);
                let fact = InferenceFact::try_from(value).map_err(internal)?;
                model.set_outlet_fact(outlet, fact).map_err(internal)?;
            }
            Some(Fix::Shape(shape)) => {
                let dt = declared_dt.ok_or_else(|| GraphError::UnresolvedInput {
                    path: path.to_path_buf(),
                    name: name.clone(),
                    declared: format!("{declared:?}"),
                })?;
                model
                    .set_outlet_fact(outlet, InferenceFact::dt_shape(dt, shape.as_slice()))
                    .map_err(internal)?;
                kept.push(outlet);
            }
            None => {
                let concrete = declared.shape.as_concrete_finite().ok().flatten();
                match (declared_dt, concrete) {
                    (Some(dt), Some(shape)) => {
                        model
                            .set_outlet_fact(outlet, InferenceFact::dt_shape(dt, shape))
                            .map_err(internal)?;
                    }
                    _ => {
                        return Err(GraphError::UnresolvedInput {
                            path: path.to_path_buf(),
                            name: name.clone(),
                            declared: format!("{declared:?}"),
                        })
                    }
                }
                kept.push(outlet);
            }
        }
    }
    model.set_input_outlets(&kept).map_err(internal)?;
    Ok(())
}

/// Checks a given shape against the declared fact and records the values of
/// declared dimensions that are bare symbols.
fn bind_symbols(
    path: &Path,
    input: &InputSpec,
    fact: &InferenceFact,
    symbols: &mut HashMap<Symbol, (usize, String)>,
) -> Result<(), GraphError> {
    let given = input.fixed_shape();
    let declared: Vec<&GenericFactoid<TDim>> = fact.shape.dims().collect();
    let mismatch = || GraphError::ShapeMismatch {
        path: path.to_path_buf(),
        name: input.name.clone(),
        declared: format!("{fact:?}"),
        declared_dims: if fact.shape.is_open() {
            Vec::new()
        } else {
            declared
                .iter()
                .map(|d| match d {
                    GenericFactoid::Only(TDim::Val(v)) => usize::try_from(*v).ok(),
                    _ => None,
                })
                .collect()
        },
        given: given.to_vec(),
    };
    let rank_ok = if fact.shape.is_open() {
        declared.len() <= given.len()
    } else {
        declared.len() == given.len()
    };
    if !rank_ok {
        return Err(mismatch());
    }
    for (dim, &size) in declared.iter().zip(given) {
        match dim {
            GenericFactoid::Only(TDim::Val(v)) if usize::try_from(*v).ok() != Some(size) => {
                return Err(mismatch());
            }
            GenericFactoid::Only(TDim::Sym(sym)) => match symbols.get(sym) {
                Some((earlier, from)) if *earlier != size => {
                    return Err(GraphError::SymbolConflict {
                        path: path.to_path_buf(),
                        name: input.name.clone(),
                        symbol: sym.to_string(),
                        value: size,
                        earlier: *earlier,
                        earlier_source: from.clone(),
                    });
                }
                Some(_) => {}
                None => {
                    symbols.insert(sym.clone(), (size, format!("input {:?}", input.name)));
                }
            },
            _ => {}
        }
    }
    Ok(())
}

/// Forgets declared dimensions of intermediate values that still hold a
/// symbol: analysis derives them from the now concrete inputs, and a stale
/// symbol would not unify with the derived value.
fn forget_unresolved_dims(model: &mut InferenceModel, inputs: &[OutletId]) -> TractResult<()> {
    let mut forgotten = 0usize;
    for node in model.nodes_mut() {
        for (slot, output) in node.outputs.iter_mut().enumerate() {
            if inputs.contains(&OutletId::new(node.id, slot)) {
                continue;
            }
            let shape = &output.fact.shape;
            let symbolic = |d: &GenericFactoid<TDim>| matches!(d, GenericFactoid::Only(t) if !t.symbols().is_empty());
            if !shape.dims().any(symbolic) {
                continue;
            }
            let dims: TVec<GenericFactoid<TDim>> = shape
                .dims()
                .map(|d| {
                    if symbolic(d) {
                        GenericFactoid::Any
                    } else {
                        d.clone()
                    }
                })
                .collect();
            forgotten += 1;
            output.fact.shape = if shape.is_open() {
                ShapeFactoid::open(dims)
            } else {
                ShapeFactoid::closed(dims)
            };
        }
    }
    if forgotten > 0 {
        log::debug!("forgot symbolic declared shapes of {forgotten} intermediate values");
    }
    Ok(())
}

/// Reads a `.npy` file into a tensor.
pub fn read_npy_tensor(path: impl AsRef<Path>) -> Result<Tensor, GraphError> {
    let path = path.as_ref();
    let array = NpyArray::read(path).map_err(|e| GraphError::Tensor {
        context: path.display().to_string(),
        problem: e.kind.to_string(),
    })?;
    npy_to_tensor(array, &path.display().to_string())
}

#[cfg(test)]
mod tests;
