//! Finding SAM's parameters in `decoder.onnx` and checking their shapes.
//!
//! The official export keeps some parameter names (biases, LayerNorm
//! weights, the prompt embeddings) and drops others: the TorchScript
//! exporter turns a 3-D `Linear` into a `MatMul` with an anonymous,
//! transposed initializer (`onnx::MatMul_1465`), folds `LayerNorm2d`'s
//! weight into `onnx::Mul_1451` (`[C, 1, 1]`) and the output tokens into
//! `onnx::Expand_1460`; onnxruntime's dynamic quantization then replaces
//! `W` by `W_quantized` (int8, `[in, out]`), `W_scale`, `W_zero_point` and a
//! `MatMulInteger`. So a linear layer is found from its bias, whose name
//! survives: the `Gemm` that takes it, or the `Add` it goes into, whose
//! other operand comes from `MatMul(x, W)` or from
//! `Mul(Cast(MatMulInteger(q, W_quantized, ..)), Mul(scale, W_scale))`.
//! Names are tried as SAM has them (`mask_decoder.…`) and with the `model.`
//! prefix `SamOnnxModel` gives them (`model.prompt_encoder.…`).

use crate::kernels::{Kernels, PackedB};

use super::linear::{Linear, Weight};
use super::onnx::{attr_f, attr_i, type_name, Data, Init, OnnxGraph};
use super::{DecoderError, Precision};

/// Looks parameters up in one graph.
pub(crate) struct Loader<'a> {
    pub g: &'a OnnxGraph,
    pub kern: Kernels,
    pub precision: Precision,
}

/// Where a linear layer's weight lives.
enum Source {
    /// f32; `transposed`: stored `[n, k]` (a `Gemm` with `transB = 1`).
    F32 { init: String, transposed: bool },
    /// int8 `[k, n]` for `MatMulInteger`.
    I8 {
        init: String,
        scale: Option<String>,
        zero_point: Option<String>,
    },
}

/// `[a, b, c]`.
pub(crate) fn shape_text(dims: &[usize]) -> String {
    let d: Vec<String> = dims.iter().map(|d| d.to_string()).collect();
    format!("[{}]", d.join(", "))
}

impl Loader<'_> {
    /// The ONNX names SAM parameter `param` may have.
    pub fn candidates(param: &str) -> [String; 2] {
        [param.to_string(), format!("model.{param}")]
    }

    /// The first candidate name of `param` that is an initializer.
    pub fn find(&self, param: &str) -> Option<String> {
        Self::candidates(param)
            .into_iter()
            .find(|n| self.g.is_init(n))
    }

    pub fn missing(&self, param: &str, expected: String, looked: String) -> DecoderError {
        DecoderError::MissingWeight {
            path: self.g.path().to_path_buf(),
            name: param.to_string(),
            expected,
            looked,
        }
    }

    fn shape_err(&self, param: &str, init: &Init, expected: &[usize]) -> DecoderError {
        DecoderError::WeightShape {
            path: self.g.path().to_path_buf(),
            name: param.to_string(),
            initializer: init.name.clone(),
            expected: shape_text(expected),
            found: init.dims.clone(),
        }
    }

    fn data_err(&self, param: &str, init: &str, problem: String) -> DecoderError {
        DecoderError::WeightData {
            path: self.g.path().to_path_buf(),
            name: param.to_string(),
            initializer: init.to_string(),
            problem,
        }
    }

    /// An f32 initializer's values, its dims exactly `dims`.
    pub fn f32_exact(
        &self,
        init: &str,
        param: &str,
        dims: &[usize],
    ) -> Result<Vec<f32>, DecoderError> {
        let t = self.g.init(init, param)?;
        let ok =
            t.dims.len() == dims.len() && t.dims.iter().zip(dims).all(|(&a, &b)| a as usize == b);
        if !ok {
            return Err(self.shape_err(param, &t, dims));
        }
        self.f32_values(t, param)
    }

    /// An f32 initializer's values, `len` of them in any shape whose other
    /// dims are 1 (`[C]`, `[1, C]`, `[C, 1, 1]`, `[1, C, 1, 1]`).
    pub fn f32_vector(
        &self,
        init: &str,
        param: &str,
        len: usize,
    ) -> Result<Vec<f32>, DecoderError> {
        let t = self.g.init(init, param)?;
        let ones = t.dims.iter().filter(|&&d| d != 1).count() <= 1;
        if t.numel() != len || !ones {
            return Err(self.shape_err(param, &t, &[len]));
        }
        self.f32_values(t, param)
    }

    fn f32_values(&self, t: Init, param: &str) -> Result<Vec<f32>, DecoderError> {
        match t.data {
            Data::F32(v) => Ok(v),
            Data::I8(_) => Err(self.data_err(param, &t.name, "int8, expected float".into())),
            Data::Other(c) => {
                Err(self.data_err(param, &t.name, format!("{}, expected float", type_name(c))))
            }
        }
    }

    /// Named f32 parameter of `len` values (any shape with other dims 1).
    pub fn vector(&self, param: &str, len: usize) -> Result<Vec<f32>, DecoderError> {
        let Some(init) = self.find(param) else {
            let looked = format!("initializers {:?}", Self::candidates(param));
            return Err(self.missing(param, format!("f32 [{len}]"), looked));
        };
        self.f32_vector(&init, param, len)
    }

    /// The length of named parameter `param` (a bias, to size its layer).
    pub fn len_of(&self, param: &str) -> Option<usize> {
        let init = self.find(param)?;
        let dims = self.g.init_dims(&init)?;
        Some(dims.iter().map(|&d| d.max(0) as usize).product())
    }

    /// The linear layer `path` (`path.weight`, `path.bias`): `k` inputs, and
    /// `n` outputs when given (else the bias's length).
    pub fn linear(&self, path: &str, k: usize, n: Option<usize>) -> Result<Linear, DecoderError> {
        let bias_param = format!("{path}.bias");
        let weight_param = format!("{path}.weight");
        let Some(bias_init) = self.find(&bias_param) else {
            let looked = format!("initializers {:?}", Self::candidates(&bias_param));
            let n = n.map_or("n".into(), |n| n.to_string());
            return Err(self.missing(&bias_param, format!("f32 [{n}]"), looked));
        };
        let n = match n {
            Some(n) => n,
            None => self.len_of(&bias_param).unwrap_or(0),
        };
        let bias = self.f32_vector(&bias_init, &bias_param, n)?;
        let source = self.trace(&bias_init).ok_or_else(|| {
            self.missing(
                &weight_param,
                format!("[{n}, {k}] f32 or [{k}, {n}] int8"),
                format!(
                    "the MatMul, MatMulInteger or Gemm whose output goes into the Add or Gemm of {bias_init:?}"
                ),
            )
        })?;
        let weight = match source {
            Source::F32 { init, transposed } => {
                let dims = if transposed { [n, k] } else { [k, n] };
                let w = self.f32_exact(&init, &weight_param, &dims)?;
                Weight::F32(if transposed {
                    PackedB::from_linear_weight(&w, n, k)
                } else {
                    PackedB::new(&w, k, n)
                })
            }
            Source::I8 {
                init,
                scale,
                zero_point,
            } => {
                let scale = scale
                    .unwrap_or_else(|| format!("{}_scale", init.trim_end_matches("_quantized")));
                let (w, scales) = self.int8(
                    &weight_param,
                    &init,
                    &scale,
                    zero_point.as_deref(),
                    &[k, n],
                    n,
                )?;
                self.pack(w, k, n, scales)
            }
        };
        Ok(Linear::new(weight, bias))
    }

    /// An int8 weight of `dims` with symmetric scales (one, or `n`), checked.
    pub fn int8(
        &self,
        param: &str,
        init: &str,
        scale: &str,
        zero_point: Option<&str>,
        dims: &[usize],
        n: usize,
    ) -> Result<(Vec<i8>, Vec<f32>), DecoderError> {
        let t = self.g.init(init, param)?;
        let ok =
            t.dims.len() == dims.len() && t.dims.iter().zip(dims).all(|(&a, &b)| a as usize == b);
        if !ok {
            return Err(self.shape_err(param, &t, dims));
        }
        let w = match t.data {
            Data::I8(w) => w,
            Data::F32(_) => return Err(self.data_err(param, init, "float, expected int8".into())),
            Data::Other(c) => {
                return Err(self.data_err(
                    param,
                    init,
                    format!("{} weights are not supported (int8 only)", type_name(c)),
                ))
            }
        };
        let s = self.g.init(scale, &format!("{param} (scale)"))?;
        let s = match s.data {
            Data::F32(v) if v.len() == 1 => vec![v[0]; n],
            Data::F32(v) if v.len() == n => v,
            _ => {
                return Err(DecoderError::WeightShape {
                    path: self.g.path().to_path_buf(),
                    name: format!("{param} (scale)"),
                    initializer: scale.to_string(),
                    expected: format!("f32 [] or [{n}]"),
                    found: s.dims,
                })
            }
        };
        if s.iter().any(|v| !v.is_finite() || *v < 0.0) {
            return Err(self.data_err(param, scale, "a scale is negative or not finite".into()));
        }
        if let Some(zp) = zero_point {
            let z = self.g.init(zp, &format!("{param} (zero point)"))?;
            let zero = match &z.data {
                Data::I8(v) => v.iter().all(|&v| v == 0),
                Data::F32(v) => v.iter().all(|&v| v == 0.0),
                Data::Other(_) => false,
            };
            if !zero {
                return Err(self.data_err(
                    param,
                    zp,
                    "the zero point is not int8 zero (only symmetric int8 weights are supported)"
                        .into(),
                ));
            }
        }
        Ok((w, s))
    }

    /// Packs int8 `w[k×n]` with per-column `scales`, or dequantizes it.
    pub fn pack(&self, w: Vec<i8>, k: usize, n: usize, scales: Vec<f32>) -> Weight {
        match self.precision {
            Precision::AsGraph => Weight::I8(self.kern.pack_i8(&w, k, n, &scales)),
            Precision::F32 => {
                let f: Vec<f32> = w
                    .iter()
                    .enumerate()
                    .map(|(i, &q)| f32::from(q) * scales[i % n])
                    .collect();
                Weight::F32(PackedB::new(&f, k, n))
            }
        }
    }

    /// Follows the bias initializer to the node holding the weight.
    fn trace(&self, bias: &str) -> Option<Source> {
        let g = self.g;
        let &[user] = g.consumers(bias) else {
            return None;
        };
        let node = g.node(user);
        match node.op_type.as_str() {
            "Gemm" => {
                let plain = attr_f(node, "alpha").unwrap_or(1.0) == 1.0
                    && attr_f(node, "beta").unwrap_or(1.0) == 1.0
                    && attr_i(node, "transA").unwrap_or(0) == 0
                    && node.input.get(2).map(String::as_str) == Some(bias);
                let b = node.input.get(1)?;
                (plain && g.is_init(b)).then(|| Source::F32 {
                    init: b.clone(),
                    transposed: attr_i(node, "transB").unwrap_or(0) == 1,
                })
            }
            "Add" => {
                let mut t = node.input.iter().find(|i| *i != bias)?.clone();
                let mut scale = None;
                for _ in 0..4 {
                    let n = g.node(g.producer(&t)?);
                    match n.op_type.as_str() {
                        "MatMul" => {
                            let b = n.input.get(1)?;
                            return g.is_init(b).then(|| Source::F32 {
                                init: b.clone(),
                                transposed: false,
                            });
                        }
                        "MatMulInteger" => {
                            let b = n.input.get(1)?;
                            return g.is_init(b).then(|| Source::I8 {
                                init: b.clone(),
                                scale,
                                zero_point: n.input.get(3).filter(|s| !s.is_empty()).cloned(),
                            });
                        }
                        "Cast" => t = n.input.first()?.clone(),
                        "Mul" => {
                            let leads = |s: &String| {
                                g.producer(s).is_some_and(|p| {
                                    matches!(
                                        g.node(p).op_type.as_str(),
                                        "Cast" | "MatMul" | "MatMulInteger"
                                    )
                                })
                            };
                            let lead = n.input.iter().find(|s| leads(s))?.clone();
                            let other = n.input.iter().find(|s| **s != lead)?;
                            scale = self.scale_of(other);
                            t = lead;
                        }
                        _ => return None,
                    }
                }
                None
            }
            _ => None,
        }
    }

    /// The weight scale initializer behind a `Mul(act_scale, W_scale)`.
    fn scale_of(&self, tensor: &str) -> Option<String> {
        if self.g.is_init(tensor) {
            return Some(tensor.to_string());
        }
        let n = self.g.node(self.g.producer(tensor)?);
        (n.op_type == "Mul")
            .then(|| n.input.iter().find(|i| self.g.is_init(i)).cloned())
            .flatten()
    }
}
