//! Read access to `decoder.onnx` as a protobuf: initializers decoded to
//! `f32` / `i8`, and the producer and consumers of every tensor, so weights
//! whose names the exporter dropped can be found by the graph's structure.
//!
//! A tensor written by an `Identity` node (or a chain of them) whose input
//! is an initializer counts as that initializer under the output's name:
//! torch's exporter keeps one copy of identical initializers (every fresh
//! LayerNorm is ones and zeros) and names the others through `Identity`
//! nodes. Those alias nodes are not listed among the initializer's
//! consumers, so the structure reads as if each name had its own copy.
//!
//! Initializers are decoded here rather than with tract's `load_tensor`,
//! which panics on some element types: every malformed tensor is a
//! [`DecoderError`] naming it.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use tract_onnx::pb;
use tract_onnx::prelude::Framework;

use super::DecoderError;

/// ONNX `TensorProto.DataType` codes the decoder reads.
const FLOAT: i32 = 1;
const FLOAT16: i32 = 10;
const UINT8: i32 = 2;
const INT8: i32 = 3;
const INT32: i32 = 6;
const INT64: i32 = 7;

/// An initializer (or `Constant` node value) decoded.
#[derive(Debug, Clone)]
pub(crate) struct Init {
    /// The ONNX name.
    pub name: String,
    /// Its dims.
    pub dims: Vec<i64>,
    /// The values.
    pub data: Data,
}

/// Decoded values.
#[derive(Debug, Clone)]
pub(crate) enum Data {
    /// `float`.
    F32(Vec<f32>),
    /// `int8`.
    I8(Vec<i8>),
    /// Another element type (its ONNX code), not decoded.
    Other(i32),
}

impl Init {
    /// Number of elements the dims describe.
    pub fn numel(&self) -> usize {
        self.dims.iter().map(|&d| d.max(0) as usize).product()
    }
}

/// The graph of a model file, indexed.
pub(crate) struct OnnxGraph {
    path: PathBuf,
    graph: pb::GraphProto,
    inits: HashMap<String, usize>,
    producer: HashMap<String, usize>,
    consumers: HashMap<String, Vec<usize>>,
}

impl OnnxGraph {
    /// Reads and indexes `path`.
    pub fn read(path: &Path) -> Result<OnnxGraph, DecoderError> {
        let err = |detail: String| DecoderError::Read {
            path: path.to_path_buf(),
            detail,
        };
        if !path.is_file() {
            return Err(err("no such file".into()));
        }
        let model = tract_onnx::onnx()
            .proto_model_for_path(path)
            .map_err(|e| err(format!("{e:#}")))?;
        let graph = model
            .graph
            .ok_or_else(|| err("the model has no graph".into()))?;
        Ok(Self::index(path, graph))
    }

    /// Indexes an already decoded graph (`path` names it in errors).
    pub fn index(path: &Path, graph: pb::GraphProto) -> OnnxGraph {
        let mut inits = HashMap::new();
        for (i, t) in graph.initializer.iter().enumerate() {
            inits.insert(t.name.clone(), i);
        }
        let aliases = identity_aliases(&graph, &mut inits);
        let mut producer = HashMap::new();
        let mut consumers: HashMap<String, Vec<usize>> = HashMap::new();
        for (i, n) in graph.node.iter().enumerate() {
            for o in &n.output {
                producer.insert(o.clone(), i);
            }
            if aliases.contains(&i) {
                continue;
            }
            for input in n.input.iter().filter(|s| !s.is_empty()) {
                consumers.entry(input.clone()).or_default().push(i);
            }
        }
        OnnxGraph {
            path: path.to_path_buf(),
            graph,
            inits,
            producer,
            consumers,
        }
    }

    /// How many nodes the graph has.
    pub fn node_count(&self) -> usize {
        self.graph.node.len()
    }

    /// The graph's input names that are not initializers.
    pub fn input_names(&self) -> impl Iterator<Item = &str> {
        self.graph
            .input
            .iter()
            .map(|i| i.name.as_str())
            .filter(|n| !self.inits.contains_key(*n))
    }

    /// The model file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Node `i`.
    pub fn node(&self, i: usize) -> &pb::NodeProto {
        &self.graph.node[i]
    }

    /// Whether `name` is an initializer.
    pub fn is_init(&self, name: &str) -> bool {
        self.inits.contains_key(name)
    }

    /// The dims of initializer `name`.
    pub fn init_dims(&self, name: &str) -> Option<&[i64]> {
        self.inits
            .get(name)
            .map(|&i| self.graph.initializer[i].dims.as_slice())
    }

    /// The names of all initializers.
    pub fn init_names(&self) -> impl Iterator<Item = &str> {
        self.graph.initializer.iter().map(|t| t.name.as_str())
    }

    /// The node writing `tensor`.
    pub fn producer(&self, tensor: &str) -> Option<usize> {
        self.producer.get(tensor).copied()
    }

    /// The nodes reading `tensor`.
    pub fn consumers(&self, tensor: &str) -> &[usize] {
        self.consumers.get(tensor).map_or(&[], |v| v.as_slice())
    }

    /// The declared shape of graph input `name` (`None` per symbolic dim),
    /// or `None` when there is no such input.
    pub fn input_shape(&self, name: &str) -> Option<Vec<Option<usize>>> {
        let vi = self.graph.input.iter().find(|i| i.name == name)?;
        let Some(pb::type_proto::Value::TensorType(t)) = vi.r#type.as_ref()?.value.as_ref() else {
            return None;
        };
        let dims = t.shape.as_ref()?.dim.iter().map(|d| match d.value {
            Some(pb::tensor_shape_proto::dimension::Value::DimValue(v)) if v > 0 => {
                Some(v as usize)
            }
            _ => None,
        });
        Some(dims.collect())
    }

    /// The graph's output names.
    pub fn output_names(&self) -> impl Iterator<Item = &str> {
        self.graph.output.iter().map(|o| o.name.as_str())
    }

    /// Initializer `name` decoded; `param` is SAM's name for it, in errors.
    pub fn init(&self, name: &str, param: &str) -> Result<Init, DecoderError> {
        let Some(&i) = self.inits.get(name) else {
            return Err(DecoderError::MissingWeight {
                path: self.path.clone(),
                name: param.to_string(),
                expected: "an initializer".into(),
                looked: format!("initializer {name:?}"),
            });
        };
        self.decode(&self.graph.initializer[i], param)
    }

    /// The value of `tensor` when it is an initializer or a `Constant`
    /// node's output.
    pub fn constant(&self, tensor: &str) -> Option<Init> {
        if self.is_init(tensor) {
            return self.init(tensor, tensor).ok();
        }
        let node = self.node(self.producer(tensor)?);
        if node.op_type != "Constant" {
            return None;
        }
        let attr = node.attribute.iter().find(|a| a.name == "value")?;
        let t = attr.t.as_ref()?;
        let mut init = self.decode(t, tensor).ok()?;
        init.name = tensor.to_string();
        Some(init)
    }

    fn decode(&self, t: &pb::TensorProto, param: &str) -> Result<Init, DecoderError> {
        let bad = |problem: String| DecoderError::WeightData {
            path: self.path.clone(),
            name: param.to_string(),
            initializer: t.name.clone(),
            problem,
        };
        if t.dims.iter().any(|&d| d < 0) {
            return Err(bad(format!("negative dims {:?}", t.dims)));
        }
        if t.data_location == Some(pb::tensor_proto::DataLocation::External as i32) {
            return Err(bad("external data is not supported".into()));
        }
        let numel: usize = t.dims.iter().map(|&d| d as usize).product();
        let raw = &t.raw_data;
        let width = match t.data_type {
            FLOAT | INT32 => 4,
            FLOAT16 => 2,
            UINT8 | INT8 => 1,
            INT64 => 8,
            _ => 0,
        };
        if !raw.is_empty() && width > 0 && raw.len() != numel * width {
            return Err(bad(format!(
                "{} bytes of raw data for {numel} elements of {width} bytes",
                raw.len()
            )));
        }
        let data = match t.data_type {
            FLOAT if !raw.is_empty() => Data::F32(
                raw.chunks_exact(4)
                    .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                    .collect(),
            ),
            FLOAT => Data::F32(t.float_data.clone()),
            // f16 is read as f32 (the bundles' `f16-stored` form).
            FLOAT16 if !raw.is_empty() => Data::F32(
                raw.chunks_exact(2)
                    .map(|b| half::f16::from_le_bytes([b[0], b[1]]).to_f32())
                    .collect(),
            ),
            // Without raw data, f16 values sit in int32_data, one a value.
            FLOAT16 => Data::F32(
                t.int32_data
                    .iter()
                    .map(|&v| half::f16::from_bits(v as u16).to_f32())
                    .collect(),
            ),
            INT8 if !raw.is_empty() => Data::I8(raw.iter().map(|&b| b as i8).collect()),
            INT8 => Data::I8(t.int32_data.iter().map(|&v| v as i8).collect()),
            other => Data::Other(other),
        };
        let len = match &data {
            Data::F32(v) => v.len(),
            Data::I8(v) => v.len(),
            Data::Other(_) => numel,
        };
        if len != numel {
            return Err(bad(format!("{len} values for dims {:?}", t.dims)));
        }
        Ok(Init {
            name: t.name.clone(),
            dims: t.dims.clone(),
            data,
        })
    }
}

/// Adds to `inits` the output of every `Identity` node whose input is an
/// initializer or such an output (chains, in any node order), mapped to the
/// initializer at the chain's start; returns those nodes. An output that is
/// already an initializer keeps its own value.
fn identity_aliases(graph: &pb::GraphProto, inits: &mut HashMap<String, usize>) -> Vec<usize> {
    let mut aliases = Vec::new();
    loop {
        let before = aliases.len();
        for (i, n) in graph.node.iter().enumerate() {
            let ([input], [output]) = (n.input.as_slice(), n.output.as_slice()) else {
                continue;
            };
            if n.op_type != "Identity" || aliases.contains(&i) || inits.contains_key(output) {
                continue;
            }
            if let Some(&init) = inits.get(input) {
                inits.insert(output.clone(), init);
                aliases.push(i);
            }
        }
        if aliases.len() == before {
            return aliases;
        }
    }
}

/// The name of an ONNX element type code.
pub(crate) fn type_name(code: i32) -> &'static str {
    match code {
        FLOAT => "float",
        UINT8 => "uint8",
        INT8 => "int8",
        INT32 => "int32",
        INT64 => "int64",
        _ => "another type",
    }
}

/// An attribute of `node` as an integer.
pub(crate) fn attr_i(node: &pb::NodeProto, name: &str) -> Option<i64> {
    node.attribute.iter().find(|a| a.name == name).map(|a| a.i)
}

/// An attribute of `node` as a float.
pub(crate) fn attr_f(node: &pb::NodeProto, name: &str) -> Option<f32> {
    node.attribute.iter().find(|a| a.name == name).map(|a| a.f)
}
