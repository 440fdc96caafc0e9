//! Reading a graph into [`ConvNet`] steps: the nodes matched one by one
//! (the LayerNorm2d pattern as a whole), weights repacked for the kernels,
//! buffers shared between values whose lives do not overlap.

use std::collections::HashMap;
use std::path::Path;

use crate::decoder::onnx::{Data, Init, OnnxGraph};
use crate::kernels::{Kernels, PackedB};

use super::{ConvKind, ConvNet, ConvNetError, Geometry, Hwc, Step};

/// Reading state: tensor names to values and initializers.
struct Reader<'g> {
    g: &'g OnnxGraph,
    path: &'g Path,
    values: HashMap<String, usize>,
    shapes: Vec<Hwc>,
    /// Names standing for an initializer (itself, or a `Cast` of one).
    alias: HashMap<String, String>,
}

impl Reader<'_> {
    fn unsupported(&self, i: usize, what: impl Into<String>) -> ConvNetError {
        let n = self.g.node(i);
        let node = if n.name.is_empty() {
            n.output.first().cloned().unwrap_or_default()
        } else {
            n.name.clone()
        };
        ConvNetError::Unsupported {
            path: self.path.to_path_buf(),
            node,
            op: n.op_type.clone(),
            what: what.into(),
        }
    }

    fn value(&self, i: usize, name: &str) -> Result<usize, ConvNetError> {
        self.values.get(name).copied().ok_or_else(|| {
            self.unsupported(i, format!("input {name:?} is not a tensor it computed"))
        })
    }

    fn new_value(&mut self, name: &str, shape: Hwc) -> usize {
        self.shapes.push(shape);
        let v = self.shapes.len() - 1;
        self.values.insert(name.to_string(), v);
        v
    }

    /// An initializer (through `Cast` aliases) or a `Constant`, as f32.
    fn weight(&self, i: usize, name: &str) -> Result<(Vec<i64>, Vec<f32>), ConvNetError> {
        let real = self.alias.get(name).map_or(name, String::as_str);
        let init: Init = if self.g.is_init(real) {
            self.g.init(real, real).map_err(|e| ConvNetError::Graph {
                path: self.path.to_path_buf(),
                detail: e.to_string(),
            })?
        } else if let Some(c) = self.g.constant(real) {
            c
        } else {
            return Err(self.unsupported(i, format!("{name:?} is not a weight")));
        };
        match init.data {
            Data::F32(v) => Ok((init.dims, v)),
            _ => Err(self.unsupported(i, format!("weight {name:?} is neither f32 nor f16"))),
        }
    }

    fn is_weight(&self, name: &str) -> bool {
        let real = self.alias.get(name).map_or(name, String::as_str);
        self.g.is_init(real) || self.g.constant(real).is_some()
    }
}

fn ints(n: &tract_onnx::pb::NodeProto, name: &str) -> Option<Vec<i64>> {
    n.attribute
        .iter()
        .find(|a| a.name == name)
        .map(|a| a.ints.clone())
}

fn int(n: &tract_onnx::pb::NodeProto, name: &str) -> Option<i64> {
    n.attribute.iter().find(|a| a.name == name).map(|a| a.i)
}

fn string(n: &tract_onnx::pb::NodeProto, name: &str) -> Option<String> {
    n.attribute
        .iter()
        .find(|a| a.name == name)
        .map(|a| String::from_utf8_lossy(&a.s).into_owned())
}

impl ConvNet {
    /// Reads `path` (an encoder with one input `1×C×S×S` and one output),
    /// refusing any node outside the module's list.
    pub fn load(path: &Path) -> Result<ConvNet, ConvNetError> {
        let g = OnnxGraph::read(path).map_err(|e| ConvNetError::Graph {
            path: path.to_path_buf(),
            detail: e.to_string(),
        })?;
        let kernels = *Kernels::get();
        let mut r = Reader {
            g: &g,
            path,
            values: HashMap::new(),
            shapes: Vec::new(),
            alias: HashMap::new(),
        };
        let inputs = g.input_names().collect::<Vec<_>>();
        let [input_name] = inputs.as_slice() else {
            return Err(ConvNetError::Graph {
                path: path.to_path_buf(),
                detail: format!("expected one graph input, found {}", inputs.len()),
            });
        };
        let dims = g.input_shape(input_name).unwrap_or_default();
        let (Some(Some(1)), Some(Some(c)), Some(Some(h)), Some(Some(w)), 4) = (
            dims.first().copied(),
            dims.get(1).copied(),
            dims.get(2).copied(),
            dims.get(3).copied(),
            dims.len(),
        ) else {
            return Err(ConvNetError::Graph {
                path: path.to_path_buf(),
                detail: format!("input {input_name:?} is not 1×C×H×W with fixed sizes: {dims:?}"),
            });
        };
        let input = r.new_value(input_name, Hwc { h, w, c });
        let mut steps = Vec::new();
        let mut done = vec![false; g.node_count()];
        for i in 0..g.node_count() {
            if done[i] {
                continue;
            }
            let n = g.node(i);
            let out = n.output.first().cloned().unwrap_or_default();
            match n.op_type.as_str() {
                "Constant" => {}
                "Cast" => {
                    let src = n.input.first().cloned().unwrap_or_default();
                    if !r.is_weight(&src) {
                        return Err(r.unsupported(i, "casts a computed tensor"));
                    }
                    let real = r.alias.get(&src).cloned().unwrap_or(src);
                    r.alias.insert(out, real);
                }
                "Conv" => steps.push(conv(&mut r, i)?),
                "Relu" => {
                    let src = r.value(i, &n.input[0])?;
                    // Fused into the step that made its input when that
                    // step's output has no other reader.
                    let only = g.consumers(&n.input[0]).len() == 1;
                    match steps.last_mut() {
                        Some(Step::Conv { dst, relu, .. } | Step::Add { dst, relu, .. })
                            if *dst == src && only =>
                        {
                            *relu = true;
                            r.values.insert(out, src);
                        }
                        _ => {
                            let dst = r.new_value(&out, r.shapes[src]);
                            steps.push(Step::Relu { src, dst });
                        }
                    }
                }
                "Add" | "Mul" if n.input.iter().any(|t| r.is_weight(t)) => {
                    // A value and a scalar constant: an affine step.
                    let (w, v) = if r.is_weight(&n.input[0]) {
                        (&n.input[0], &n.input[1])
                    } else {
                        (&n.input[1], &n.input[0])
                    };
                    let src = r.value(i, v)?;
                    let (_, c) = r.weight(i, w)?;
                    let [c] = c.as_slice() else {
                        return Err(
                            r.unsupported(i, "only a scalar constant operand runs natively")
                        );
                    };
                    let (scale, shift) = if n.op_type == "Mul" {
                        (*c, 0.0)
                    } else {
                        (1.0, *c)
                    };
                    let dst = r.new_value(&out, r.shapes[src]);
                    steps.push(Step::Affine {
                        src,
                        dst,
                        scale,
                        shift,
                    });
                }
                "Sigmoid" => {
                    let src = r.value(i, &n.input[0])?;
                    let dst = r.new_value(&out, r.shapes[src]);
                    steps.push(Step::Sigmoid { src, dst });
                }
                "ReduceMax" => {
                    let src = r.value(i, &n.input[0])?;
                    let axes = ints(n, "axes").unwrap_or_default();
                    if axes != [2, 3] && axes != [-2, -1] {
                        return Err(r.unsupported(i, "only the maximum over height and width"));
                    }
                    let c = r.shapes[src].c;
                    let dst = r.new_value(&out, Hwc { h: 1, w: 1, c });
                    steps.push(Step::GlobalMax { src, dst });
                }
                "Add" => {
                    let (a, b) = (r.value(i, &n.input[0])?, r.value(i, &n.input[1])?);
                    if r.shapes[a] != r.shapes[b] {
                        return Err(r.unsupported(i, "adds tensors of different shapes"));
                    }
                    let dst = r.new_value(&out, r.shapes[a]);
                    steps.push(Step::Add {
                        a,
                        b,
                        dst,
                        relu: false,
                    });
                }
                "Resize" => {
                    let src = r.value(i, &n.input[0])?;
                    if string(n, "mode").as_deref().unwrap_or("nearest") != "nearest" {
                        return Err(r.unsupported(i, "only nearest resizing runs natively"));
                    }
                    let scales = n
                        .input
                        .get(2)
                        .filter(|s| !s.is_empty())
                        .map(|s| r.weight(i, s).map(|(_, v)| v))
                        .transpose()?;
                    if scales.as_deref() != Some(&[1.0, 1.0, 2.0, 2.0][..]) {
                        return Err(r.unsupported(i, "only scales [1, 1, 2, 2] run natively"));
                    }
                    let s = r.shapes[src];
                    let dst = r.new_value(
                        &out,
                        Hwc {
                            h: 2 * s.h,
                            w: 2 * s.w,
                            c: s.c,
                        },
                    );
                    steps.push(Step::Upsample2 { src, dst });
                }
                "ReduceMean" => {
                    let (step, used) = layer_norm(&mut r, i)?;
                    for u in used {
                        done[u] = true;
                    }
                    steps.push(step);
                }
                op => return Err(r.unsupported(i, format!("{op} does not run natively"))),
            }
        }
        let mut outputs = Vec::new();
        for name in g.output_names() {
            let Some(&v) = r.values.get(name) else {
                return Err(ConvNetError::Graph {
                    path: path.to_path_buf(),
                    detail: format!("output {name:?} is not computed by the steps read"),
                });
            };
            outputs.push(v);
        }
        if outputs.is_empty() {
            return Err(ConvNetError::Graph {
                path: path.to_path_buf(),
                detail: "the graph has no output".into(),
            });
        }
        let shapes = r.shapes;
        let (slot, sizes) = assign_slots(&steps, &shapes, input, &outputs);
        let im2col = steps
            .iter()
            .map(|s| match s {
                Step::Conv {
                    src,
                    dst,
                    kind: ConvKind::Dense { geo, .. },
                    ..
                } => shapes[*dst].h * shapes[*dst].w * geo.k * geo.k * shapes[*src].c,
                _ => 0,
            })
            .max()
            .unwrap_or(0);
        Ok(ConvNet {
            path: path.to_path_buf(),
            kernels,
            steps,
            slot,
            bufs: sizes.into_iter().map(|n| vec![0.0; n]).collect(),
            shapes,
            im2col: vec![0.0; im2col],
            input,
            outputs,
        })
    }
}

/// Reads `Conv` node `i` into a step.
fn conv(r: &mut Reader<'_>, i: usize) -> Result<Step, ConvNetError> {
    let n = r.g.node(i);
    let src = r.value(i, &n.input[0])?;
    let s = r.shapes[src];
    let (wd, w) = r.weight(i, &n.input[1])?;
    let [cout, cin_g, kh, kw] = wd.as_slice() else {
        return Err(r.unsupported(i, format!("weight dims {wd:?} are not 4-D")));
    };
    let (cout, cin_g, kh, kw) = (*cout as usize, *cin_g as usize, *kh as usize, *kw as usize);
    let bias = match n.input.get(2).filter(|b| !b.is_empty()) {
        Some(b) => r.weight(i, b)?.1,
        None => vec![0.0; cout],
    };
    if bias.len() != cout {
        return Err(r.unsupported(i, format!("bias of {} for {cout} outputs", bias.len())));
    }
    let group = int(n, "group").unwrap_or(1).max(1) as usize;
    let stride = ints(n, "strides").unwrap_or_default();
    let dil = ints(n, "dilations").unwrap_or_default();
    let pads = ints(n, "pads").unwrap_or_default();
    let same = |v: &[i64], d: i64| v.iter().all(|&x| x == v.first().copied().unwrap_or(d));
    if kh != kw || !same(&stride, 1) || !same(&dil, 1) || !same(&pads, 0) {
        return Err(r.unsupported(i, "only square kernels, equal strides, dilations and pads"));
    }
    if string(n, "auto_pad").is_some_and(|p| p != "NOTSET") {
        return Err(r.unsupported(i, "auto_pad"));
    }
    let geo = Geometry {
        k: kh,
        stride: stride.first().copied().unwrap_or(1).max(1) as usize,
        pad: pads.first().copied().unwrap_or(0).max(0) as usize,
        dilation: dil.first().copied().unwrap_or(1).max(1) as usize,
    };
    let span = geo.dilation * (geo.k - 1) + 1;
    if s.h + 2 * geo.pad < span || s.w + 2 * geo.pad < span {
        return Err(r.unsupported(i, "the window is larger than the padded input"));
    }
    let out = Hwc {
        h: (s.h + 2 * geo.pad - span) / geo.stride + 1,
        w: (s.w + 2 * geo.pad - span) / geo.stride + 1,
        c: cout,
    };
    let kind = if group == 1 {
        if cin_g != s.c {
            return Err(r.unsupported(i, format!("weight for {cin_g} inputs, input has {}", s.c)));
        }
        // ONNX [cout][cin][ky][kx] → B[(ky·k + kx)·cin + ci][cout].
        let kk = kh * kw;
        let mut b = vec![0.0; kk * s.c * cout];
        for o in 0..cout {
            for ci in 0..s.c {
                for t in 0..kk {
                    b[(t * s.c + ci) * cout + o] = w[(o * s.c + ci) * kk + t];
                }
            }
        }
        if kh == 1 && geo.stride == 1 && geo.pad == 0 {
            ConvKind::Pointwise {
                w: PackedB::new(&b, s.c, cout),
            }
        } else {
            ConvKind::Dense {
                w: PackedB::new(&b, kk * s.c, cout),
                geo,
            }
        }
    } else if group == s.c && cout == s.c && cin_g == 1 {
        let kk = kh * kw;
        let mut taps = vec![0.0; kk * cout];
        for ch in 0..cout {
            for t in 0..kk {
                taps[t * cout + ch] = w[ch * kk + t];
            }
        }
        ConvKind::Depthwise { w: taps, geo }
    } else {
        return Err(r.unsupported(i, format!("groups {group} (only 1 or depthwise)")));
    };
    let dst = r.new_value(&n.output[0], out);
    Ok(Step::Conv {
        src,
        dst,
        kind,
        bias,
        relu: false,
    })
}

/// Matches SAM's LayerNorm2d from `ReduceMean` node `i`; the step and the
/// nodes it covers.
fn layer_norm(r: &mut Reader<'_>, i: usize) -> Result<(Step, Vec<usize>), ConvNetError> {
    let g = r.g;
    let bad =
        |r: &Reader<'_>, what: &str| r.unsupported(i, format!("not SAM's LayerNorm2d: {what}"));
    let n = g.node(i);
    let x = n.input[0].clone();
    let src = r.value(i, &x)?;
    if ints(n, "axes").as_deref() != Some(&[1][..]) {
        return Err(bad(r, "the mean is not over channels"));
    }
    // The single reader of `t` with op `op`, and that node.
    let next = |t: &str, op: &str| -> Option<usize> {
        g.consumers(t)
            .iter()
            .copied()
            .find(|&j| g.node(j).op_type == op)
    };
    let out0 = |j: usize| g.node(j).output[0].clone();
    let sub = next(&out0(i), "Sub").ok_or_else(|| bad(r, "no Sub"))?;
    if g.node(sub).input[0] != x {
        return Err(bad(r, "Sub does not take the input"));
    }
    let pow = next(&out0(sub), "Pow").ok_or_else(|| bad(r, "no Pow"))?;
    let mean2 = next(&out0(pow), "ReduceMean").ok_or_else(|| bad(r, "no second ReduceMean"))?;
    let add_eps = next(&out0(mean2), "Add").ok_or_else(|| bad(r, "no eps"))?;
    let sqrt = next(&out0(add_eps), "Sqrt").ok_or_else(|| bad(r, "no Sqrt"))?;
    let div = next(&out0(sqrt), "Div").ok_or_else(|| bad(r, "no Div"))?;
    if g.node(div).input[0] != out0(sub) {
        return Err(bad(r, "Div does not take the centred input"));
    }
    let mul = next(&out0(div), "Mul").ok_or_else(|| bad(r, "no Mul"))?;
    let add_b = next(&out0(mul), "Add").ok_or_else(|| bad(r, "no β"))?;
    let other = |j: usize, t: &str| -> String {
        g.node(j)
            .input
            .iter()
            .find(|s| s.as_str() != t)
            .cloned()
            .unwrap_or_default()
    };
    let (_, two) = r.weight(pow, &other(pow, &out0(sub)))?;
    if two.as_slice() != [2.0] {
        return Err(bad(r, "Pow is not a square"));
    }
    let (_, eps) = r.weight(add_eps, &other(add_eps, &out0(mean2)))?;
    let (_, gamma) = r.weight(mul, &other(mul, &out0(div)))?;
    let (_, beta) = r.weight(add_b, &other(add_b, &out0(mul)))?;
    let c = r.shapes[src].c;
    let [eps] = eps.as_slice() else {
        return Err(bad(r, "eps is not a scalar"));
    };
    if gamma.len() != c || beta.len() != c {
        return Err(bad(r, "γ or β is not one value a channel"));
    }
    let dst = r.new_value(&out0(add_b), r.shapes[src]);
    let used = vec![i, sub, pow, mean2, add_eps, sqrt, div, mul, add_b];
    Ok((
        Step::LayerNorm {
            src,
            dst,
            gamma,
            beta,
            eps: *eps,
        },
        used,
    ))
}

/// Each value's buffer slot (values whose lives do not overlap share) and
/// each slot's length.
fn assign_slots(
    steps: &[Step],
    shapes: &[Hwc],
    input: usize,
    outputs: &[usize],
) -> (Vec<usize>, Vec<usize>) {
    let ios = |s: &Step| -> (Vec<usize>, usize) {
        match s {
            Step::Conv { src, dst, .. }
            | Step::Relu { src, dst }
            | Step::Upsample2 { src, dst }
            | Step::LayerNorm { src, dst, .. }
            | Step::Affine { src, dst, .. }
            | Step::Sigmoid { src, dst }
            | Step::GlobalMax { src, dst } => (vec![*src], *dst),
            Step::Add { a, b, dst, .. } => (vec![*a, *b], *dst),
        }
    };
    let mut last = vec![0usize; shapes.len()];
    for (k, s) in steps.iter().enumerate() {
        for v in ios(s).0 {
            last[v] = k;
        }
    }
    for &o in outputs {
        last[o] = usize::MAX;
    }
    let mut slot = vec![usize::MAX; shapes.len()];
    let mut sizes: Vec<usize> = Vec::new();
    let mut free: Vec<usize> = Vec::new();
    let take = |free: &mut Vec<usize>, sizes: &mut Vec<usize>, len: usize| -> usize {
        match free.pop() {
            Some(s) => {
                sizes[s] = sizes[s].max(len);
                s
            }
            None => {
                sizes.push(len);
                sizes.len() - 1
            }
        }
    };
    slot[input] = take(&mut free, &mut sizes, shapes[input].len());
    for (k, s) in steps.iter().enumerate() {
        let (srcs, dst) = ios(s);
        if slot[dst] == usize::MAX {
            slot[dst] = take(&mut free, &mut sizes, shapes[dst].len());
        }
        for v in srcs {
            // A ReLU fused into its producer has no step of its own.
            if last[v] == k && v != dst && !free.contains(&slot[v]) {
                free.push(slot[v]);
            }
        }
    }
    (slot, sizes)
}
