//! The parameters that are not plain linear layers: convolutions,
//! LayerNorms (also `LayerNorm2d` folded into `Mul`/`Add`), the output
//! tokens, the no-mask embedding and the positional-encoding matrix.

use std::collections::{HashSet, VecDeque};

use crate::kernels::PackedB;

use super::linear::{Linear, Weight};
use super::onnx::attr_f;
use super::weights::{shape_text, Loader};
use super::{DecoderError, Precision};

/// `nn.LayerNorm` default epsilon, when the graph does not say.
const LAYER_NORM_EPS: f32 = 1e-5;

/// A LayerNorm's affine parameters and epsilon.
#[derive(Debug, Clone)]
pub(crate) struct Norm {
    pub gamma: Vec<f32>,
    pub beta: Vec<f32>,
    pub eps: f32,
}

/// SAM's random-Fourier matrix `[2, F]`, f32 or int8 (per-column scales).
#[derive(Debug, Clone)]
pub(crate) enum PeMatrix {
    F32(Vec<f32>),
    I8 { w: Vec<i8>, scales: Vec<f32> },
}

/// A convolution with kernel = stride and no padding, as a linear layer over
/// its patches, and the node that runs it (to find what follows).
pub(crate) struct PatchConv {
    pub linear: Linear,
    pub node_input: String,
}

impl Loader<'_> {
    /// `nn.LayerNorm` `path` of `c` channels; epsilon from the
    /// `LayerNormalization` node that uses it.
    pub fn layer_norm(&self, path: &str, c: usize) -> Result<Norm, DecoderError> {
        let gamma = self.vector(&format!("{path}.weight"), c)?;
        let beta = self.vector(&format!("{path}.bias"), c)?;
        let eps = self
            .find(&format!("{path}.weight"))
            .and_then(|w| {
                self.g
                    .consumers(&w)
                    .iter()
                    .map(|&i| self.g.node(i))
                    .find(|n| n.op_type == "LayerNormalization")
                    .map(|n| attr_f(n, "epsilon").unwrap_or(LAYER_NORM_EPS))
            })
            .unwrap_or(LAYER_NORM_EPS);
        Ok(Norm { gamma, beta, eps })
    }

    /// `Conv2d(c_in, c_out, kernel_size = stride = ks)` `path` as a linear
    /// layer over patches (`k = c_in·ks·ks` in `(ci, dy, dx)` order).
    pub fn patch_conv(
        &self,
        path: &str,
        c_in: usize,
        ks: usize,
    ) -> Result<PatchConv, DecoderError> {
        let bias_param = format!("{path}.bias");
        let weight_param = format!("{path}.weight");
        let c_out = self.len_of(&bias_param).ok_or_else(|| {
            let looked = format!("initializers {:?}", Self::candidates(&bias_param));
            self.missing(&bias_param, "f32 [c_out]".into(), looked)
        })?;
        let bias = self.vector(&bias_param, c_out)?;
        let k = c_in * ks * ks;
        let dims = [c_out, c_in, ks, ks];
        let quantized = format!("{weight_param}_quantized");
        let (weight, init) = if let Some(init) = self.find(&weight_param) {
            let w = self.f32_exact(&init, &weight_param, &dims)?;
            (Weight::F32(PackedB::from_linear_weight(&w, c_out, k)), init)
        } else if let Some(init) = self.find(&quantized) {
            let base = init.trim_end_matches("_quantized");
            let zp = format!("{base}_zero_point");
            let zp = self.g.is_init(&zp).then_some(zp);
            let (w, scales) = self.int8(
                &weight_param,
                &init,
                &format!("{base}_scale"),
                zp.as_deref(),
                &dims,
                c_out,
            )?;
            // [c_out][k] → [k][c_out]
            let mut t = vec![0i8; w.len()];
            for (co, row) in w.chunks_exact(k).enumerate() {
                for (p, &v) in row.iter().enumerate() {
                    t[p * c_out + co] = v;
                }
            }
            (self.pack(t, k, c_out, scales), init)
        } else {
            let mut looked = Self::candidates(&weight_param).to_vec();
            looked.extend(Self::candidates(&quantized));
            return Err(self.missing(
                &weight_param,
                format!("f32 or int8 {}", shape_text(&dims)),
                format!("initializers {looked:?}"),
            ));
        };
        Ok(PatchConv {
            linear: Linear::new(weight, bias),
            node_input: init,
        })
    }

    /// `ConvTranspose2d(c_in, c_out, 2, stride 2)` `path`: the weight as a
    /// `c_in × (c_out·4)` matrix (columns `(co, dy, dx)`), the bias per
    /// column, and `c_out`.
    pub fn conv_transpose(
        &self,
        path: &str,
        c_in: usize,
    ) -> Result<(PackedB, Vec<f32>, usize), DecoderError> {
        let bias_param = format!("{path}.bias");
        let c_out = self.len_of(&bias_param).ok_or_else(|| {
            let looked = format!("initializers {:?}", Self::candidates(&bias_param));
            self.missing(&bias_param, "f32 [c_out]".into(), looked)
        })?;
        let bias = self.vector(&bias_param, c_out)?;
        let weight_param = format!("{path}.weight");
        let dims = [c_in, c_out, 2, 2];
        let Some(init) = self.find(&weight_param) else {
            let looked = format!("initializers {:?}", Self::candidates(&weight_param));
            return Err(self.missing(&weight_param, format!("f32 {}", shape_text(&dims)), looked));
        };
        let w = self.f32_exact(&init, &weight_param, &dims)?;
        let bias4 = bias.iter().flat_map(|&b| [b; 4]).collect();
        Ok((PackedB::new(&w, c_in, c_out * 4), bias4, c_out))
    }

    /// `LayerNorm2d` `path` of `c` channels following the convolution whose
    /// weight is `conv_init`: by name, or (folded by the exporter into
    /// `Mul(γ [C,1,1], x)` then `Add(·, β [C,1,1])`) the nearest such pair
    /// downstream of that convolution.
    pub fn layer_norm_2d(
        &self,
        path: &str,
        conv_init: &str,
        c: usize,
    ) -> Result<(Vec<f32>, Vec<f32>), DecoderError> {
        let wp = format!("{path}.weight");
        if self.find(&wp).is_some() {
            return Ok((
                self.vector(&wp, c)?,
                self.vector(&format!("{path}.bias"), c)?,
            ));
        }
        let g = self.g;
        let is_vec = |t: &str| {
            g.init_dims(t)
                .is_some_and(|d| d.iter().map(|&v| v.max(0) as usize).product::<usize>() == c)
        };
        let mut queue: VecDeque<usize> = g.consumers(conv_init).iter().copied().collect();
        let mut seen: HashSet<usize> = queue.iter().copied().collect();
        while let Some(i) = queue.pop_front() {
            let node = g.node(i);
            if node.op_type == "Mul" {
                if let Some(gamma) = node.input.iter().find(|t| is_vec(t)) {
                    let out = node.output.first().map_or("", String::as_str);
                    let beta = g.consumers(out).iter().find_map(|&j| {
                        let add = g.node(j);
                        (add.op_type == "Add")
                            .then(|| add.input.iter().find(|t| is_vec(t)))
                            .flatten()
                    });
                    if let Some(beta) = beta {
                        let gamma = self.f32_vector(gamma, &wp, c)?;
                        let beta = self.f32_vector(beta, &format!("{path}.bias"), c)?;
                        return Ok((gamma, beta));
                    }
                }
            }
            for out in &node.output {
                for &j in g.consumers(out) {
                    if seen.insert(j) {
                        queue.push_back(j);
                    }
                }
            }
        }
        Err(self.missing(
            &wp,
            format!("f32 [{c}]"),
            format!(
                "initializers {:?}, and a Mul by a {c}-element initializer followed by an Add of one, downstream of {conv_init:?}",
                Self::candidates(&wp)
            ),
        ))
    }

    /// `cat(iou_token, mask_tokens)` (`t × c`, `t ≥ 2`): by name, or the
    /// `[1, t, c]` initializer the export expands over the batch.
    pub fn output_tokens(&self, c: usize) -> Result<(Vec<f32>, usize), DecoderError> {
        let iou = "mask_decoder.iou_token.weight";
        let masks = "mask_decoder.mask_tokens.weight";
        if let (Some(_), Some(m)) = (self.find(iou), self.find(masks)) {
            let n = self
                .g
                .init_dims(&m)
                .map_or(0, |d| d.first().copied().unwrap_or(0).max(0) as usize);
            let mut t = self.vector(iou, c)?;
            t.extend(self.f32_exact(&m, masks, &[n, c])?);
            return Ok((t, n + 1));
        }
        let found: Vec<&str> = self
            .g
            .init_names()
            .filter(|name| {
                let dims = self.g.init_dims(name).unwrap_or(&[]);
                let expanded = self
                    .g
                    .consumers(name)
                    .iter()
                    .any(|&i| self.g.node(i).op_type == "Expand");
                expanded && dims.len() == 3 && dims[0] == 1 && dims[1] >= 2 && dims[2] as usize == c
            })
            .collect();
        match found.as_slice() {
            [one] => {
                let t = self.g.init_dims(one).map_or(0, |d| d[1] as usize);
                Ok((self.f32_exact(one, iou, &[1, t, c])?, t))
            }
            _ => Err(self.missing(
                &format!("{iou} + {masks}"),
                format!("f32 [1, {c}] and [M, {c}]"),
                format!(
                    "those initializers, or one [1, 1+M, {c}] initializer going into an Expand ({} found)",
                    found.len()
                ),
            )),
        }
    }

    /// `no_mask_embed.weight` (`c`): by name, or the initializer multiplied
    /// by `1 − has_mask_input`.
    pub fn no_mask_embed(&self, c: usize) -> Result<Vec<f32>, DecoderError> {
        let param = "prompt_encoder.no_mask_embed.weight";
        if self.find(param).is_some() {
            return self.vector(param, c);
        }
        let g = self.g;
        for &s in g.consumers("has_mask_input") {
            let sub = g.node(s);
            if sub.op_type != "Sub"
                || sub.input.get(1).map(String::as_str) != Some("has_mask_input")
            {
                continue;
            }
            for &m in g.consumers(sub.output.first().map_or("", String::as_str)) {
                let mul = g.node(m);
                if mul.op_type != "Mul" {
                    continue;
                }
                if let Some(init) = mul.input.iter().find(|t| g.is_init(t)) {
                    return self.f32_vector(init, param, c);
                }
            }
        }
        Err(self.missing(
            param,
            format!("f32 [1, {c}]"),
            format!(
                "initializers {:?}, and the initializer multiplied by (1 - has_mask_input)",
                Self::candidates(param)
            ),
        ))
    }

    /// `pe_layer.positional_encoding_gaussian_matrix` (`[2, f]`).
    pub fn pe_matrix(&self, f: usize) -> Result<PeMatrix, DecoderError> {
        let param = "prompt_encoder.pe_layer.positional_encoding_gaussian_matrix";
        if let Some(init) = self.find(param) {
            return Ok(PeMatrix::F32(self.f32_exact(&init, param, &[2, f])?));
        }
        let quantized = format!("{param}_quantized");
        let Some(init) = self.find(&quantized) else {
            let mut looked = Self::candidates(param).to_vec();
            looked.extend(Self::candidates(&quantized));
            return Err(self.missing(
                param,
                format!("f32 or int8 [2, {f}]"),
                format!("initializers {looked:?}"),
            ));
        };
        let base = init.trim_end_matches("_quantized");
        let zp = format!("{base}_zero_point");
        let zp = self.g.is_init(&zp).then_some(zp);
        let (w, scales) = self.int8(
            param,
            &init,
            &format!("{base}_scale"),
            zp.as_deref(),
            &[2, f],
            f,
        )?;
        Ok(match self.precision {
            Precision::AsGraph => PeMatrix::I8 { w, scales },
            Precision::F32 => PeMatrix::F32(
                w.iter()
                    .enumerate()
                    .map(|(i, &q)| f32::from(q) * scales[i % f])
                    .collect(),
            ),
        })
    }
}
