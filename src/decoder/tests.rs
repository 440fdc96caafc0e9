//! Unit tests of the native decoder's pieces: `DynamicQuantizeLinear`'s
//! rule, the int8 linear layer, and finding weights by graph structure in
//! tiny graphs built here (the three forms the exporters write: `Gemm`,
//! `MatMul` + `Add`, `MatMulInteger` → `Cast` → `Mul` → `Add`; `LayerNorm2d`
//! folded to `Mul`/`Add`). Whole-decoder agreement with tract is in
//! `tests/native_decoder.rs`.

use std::path::Path;

use tract_onnx::pb;

use super::linear::{quantize_dynamic, Linear, Weight};
use super::onnx::OnnxGraph;
use super::weights::Loader;
use super::{DecoderError, Precision};
use crate::kernels::round_for_codes;
use crate::kernels::{Kernels, PackedB};

/// The ONNX reference: u8 codes and zero point, rounding half to even.
fn reference_quantize(x: &[f32]) -> (Vec<u8>, f32, u8) {
    let min = x.iter().fold(0.0f32, |a, &v| a.min(v));
    let max = x.iter().fold(0.0f32, |a, &v| a.max(v));
    let scale = (max - min) / 255.0;
    let zp = (-min / scale).round_ties_even().clamp(0.0, 255.0) as u8;
    let q = x
        .iter()
        .map(|&v| ((v / scale).round_ties_even() + f32::from(zp)).clamp(0.0, 255.0) as u8)
        .collect();
    (q, scale, zp)
}

#[test]
fn dynamic_quantization_follows_the_onnx_rule() {
    let cases: [&[f32]; 5] = [
        &[-1.0, 0.0, 0.5, 2.0, 1.3, -0.7],
        &[0.1, 0.2, 0.3],
        &[-3.0, -2.0, -0.25],
        // ties: 0.5 and 1.5 steps round to even
        &[0.0, 0.5, 1.5, 2.5, 255.0],
        &[0.0, 0.0],
    ];
    for x in cases {
        let mut q = vec![0i8; x.len()];
        let act = quantize_dynamic(x, &mut q);
        let (rq, rs, rzp) = reference_quantize(x);
        if rs > 0.0 {
            assert_eq!(act.scale, rs, "{x:?}");
            assert_eq!(i32::from(act.zero_point) + 128, i32::from(rzp), "{x:?}");
            let got: Vec<u8> = q.iter().map(|&v| (i32::from(v) + 128) as u8).collect();
            assert_eq!(got, rq, "{x:?}");
        } else {
            // all zero: scale 0, codes and zero point equal, outputs = bias
            assert!(
                q.iter().all(|&v| v == act.zero_point),
                "{x:?} {q:?} {act:?}"
            );
        }
    }
    // zero is exact: its code is the zero point
    let mut q = [0i8; 3];
    let act = quantize_dynamic(&[-0.3, 0.0, 0.9], &mut q);
    assert_eq!(q[1], act.zero_point);
}

#[test]
fn rounding_for_codes_is_round_half_even_where_it_matters() {
    let mut v = -300.0f32;
    while v <= 300.0 {
        assert_eq!(round_for_codes(v), v.round_ties_even(), "{v}");
        v += 0.125;
    }
    for v in [
        0.5f32,
        1.5,
        2.5,
        -0.5,
        -1.5,
        254.5,
        255.5,
        1e-30,
        -1e-30,
        4_194_303.5,
    ] {
        assert_eq!(round_for_codes(v), v.round_ties_even(), "{v}");
    }
    // beyond 2^22 the value only has to clamp the same way
    assert!(round_for_codes(5e6) > 255.0 && round_for_codes(-5e6) < 0.0);
    assert!(round_for_codes(f32::NAN).is_nan());
}

#[test]
fn int8_linear_is_close_to_its_dequantized_f32_layer() {
    let kern = *Kernels::get();
    let (m, k, n) = (5, 40, 19);
    let w: Vec<i8> = (0..k * n)
        .map(|i| ((i * 37 % 255) as i32 - 127) as i8)
        .collect();
    let scales: Vec<f32> = (0..n).map(|j| 0.01 + 0.001 * j as f32).collect();
    let bias: Vec<f32> = (0..n).map(|j| j as f32 * 0.1 - 0.5).collect();
    let x: Vec<f32> = (0..m * k)
        .map(|i| ((i * 7919) % 200) as f32 / 50.0 - 1.3)
        .collect();
    let deq: Vec<f32> = w
        .iter()
        .enumerate()
        .map(|(i, &q)| f32::from(q) * scales[i % n])
        .collect();
    let int8 = Linear::new(Weight::I8(kern.pack_i8(&w, k, n, &scales)), bias.clone());
    let f32l = Linear::new(Weight::F32(PackedB::new(&deq, k, n)), bias);
    let mut q = vec![0i8; m * k];
    let (mut a, mut b) = (vec![0.0; m * n], vec![0.0; m * n]);
    int8.forward(&kern, m, &x, &mut q, &mut a);
    f32l.forward(&kern, m, &x, &mut q, &mut b);
    // activations rounded by at most half a step (range 4 / 255)
    let step = 4.0 / 255.0;
    for (i, (&p, &r)) in a.iter().zip(&b).enumerate() {
        let j = i % n;
        let bound = 0.5 * step * (k as f32) * 127.0 * scales[j] + 1e-4;
        assert!((p - r).abs() <= bound, "{i}: {p} vs {r} (bound {bound})");
    }
}

// ---------------------------------------------------------------- tiny graphs

const FLOAT: i32 = 1;
const INT8: i32 = 3;

fn f32_init(name: &str, dims: &[i64], v: &[f32]) -> pb::TensorProto {
    pb::TensorProto {
        name: name.into(),
        dims: dims.to_vec(),
        data_type: FLOAT,
        float_data: v.to_vec(),
        ..Default::default()
    }
}

fn i8_init(name: &str, dims: &[i64], v: &[i8]) -> pb::TensorProto {
    pb::TensorProto {
        name: name.into(),
        dims: dims.to_vec(),
        data_type: INT8,
        raw_data: v.iter().map(|&b| b as u8).collect(),
        ..Default::default()
    }
}

fn node(
    op: &str,
    inputs: &[&str],
    output: &str,
    attribute: Vec<pb::AttributeProto>,
) -> pb::NodeProto {
    pb::NodeProto {
        op_type: op.into(),
        name: output.into(),
        input: inputs.iter().map(|s| s.to_string()).collect(),
        output: vec![output.into()],
        attribute,
        ..Default::default()
    }
}

fn int_attr(name: &str, i: i64) -> pb::AttributeProto {
    pb::AttributeProto {
        name: name.into(),
        i,
        r#type: pb::attribute_proto::AttributeType::Int as i32,
        ..Default::default()
    }
}

fn graph(nodes: Vec<pb::NodeProto>, inits: Vec<pb::TensorProto>) -> OnnxGraph {
    let g = pb::GraphProto {
        node: nodes,
        initializer: inits,
        ..Default::default()
    };
    OnnxGraph::index(Path::new("tiny.onnx"), g)
}

/// y = x · W + b through `lin`, one row.
fn apply(kern: &Kernels, lin: &Linear, x: &[f32]) -> Vec<f32> {
    let mut q = vec![0i8; x.len()];
    let mut out = vec![0.0; lin.n()];
    lin.forward(kern, 1, x, &mut q, &mut out);
    out
}

#[test]
fn linear_layers_are_found_in_every_exported_form() {
    let kern = *Kernels::get();
    // W as PyTorch has it: out 2 × in 3
    let w = [1.0f32, 2.0, 3.0, -1.0, 0.5, 0.0];
    let wt = [1.0f32, -1.0, 2.0, 0.5, 3.0, 0.0]; // [in][out]
    let b = [0.25f32, -0.5];
    let x = [1.0f32, -2.0, 0.5];
    let want = [1.0 - 4.0 + 1.5 + 0.25, -1.0 - 1.0 - 0.5];

    // Gemm(x, W named, b, transB = 1)
    let g = graph(
        vec![node(
            "Gemm",
            &["x", "l.weight", "l.bias"],
            "y",
            vec![int_attr("transB", 1)],
        )],
        vec![
            f32_init("l.weight", &[2, 3], &w),
            f32_init("l.bias", &[2], &b),
        ],
    );
    let l = Loader {
        g: &g,
        kern,
        precision: Precision::AsGraph,
    };
    assert_eq!(apply(&kern, &l.linear("l", 3, None).unwrap(), &x), want);

    // Add(b, MatMul(x, anonymous Wᵀ)), names with the model. prefix
    let g = graph(
        vec![
            node("MatMul", &["x", "onnx::MatMul_7"], "mm", vec![]),
            node("Add", &["model.l.bias", "mm"], "y", vec![]),
        ],
        vec![
            f32_init("onnx::MatMul_7", &[3, 2], &wt),
            f32_init("model.l.bias", &[2], &b),
        ],
    );
    let l = Loader {
        g: &g,
        kern,
        precision: Precision::AsGraph,
    };
    assert_eq!(apply(&kern, &l.linear("l", 3, Some(2)).unwrap(), &x), want);
    // the same weight, wrong k: named in the error
    let err = l.linear("l", 4, Some(2)).unwrap_err();
    assert!(
        matches!(err, DecoderError::WeightShape { ref name, ref initializer, .. }
        if name == "l.weight" && initializer == "onnx::MatMul_7"),
        "{err}"
    );

    // int8: Add(b, Mul(Cast(MatMulInteger(q, Wq, zp, wzp)), Mul(scale, W_scale)))
    let wq: Vec<i8> = wt.iter().map(|&v| (v * 2.0) as i8).collect();
    let g = graph(
        int8_nodes(),
        vec![
            i8_init("W_quantized", &[3, 2], &wq),
            f32_init("W_scale", &[2], &[0.5, 0.5]),
            i8_init("W_zero_point", &[2], &[0, 0]),
            f32_init("l.bias", &[2], &b),
        ],
    );
    let l = Loader {
        g: &g,
        kern,
        precision: Precision::AsGraph,
    };
    let lin = l.linear("l", 3, None).unwrap();
    assert!(lin.is_int8());
    for (got, want) in apply(&kern, &lin, &x).iter().zip(want) {
        assert!((got - want).abs() < 0.05, "{got} vs {want}");
    }
    let l = Loader {
        g: &g,
        kern,
        precision: Precision::F32,
    };
    let lin = l.linear("l", 3, None).unwrap();
    assert!(!lin.is_int8());
    assert_eq!(apply(&kern, &lin, &x), want);

    // a non-zero weight zero point is refused, naming the weight
    let g2 = graph(
        int8_nodes(),
        vec![
            i8_init("W_quantized", &[3, 2], &wq),
            f32_init("W_scale", &[2], &[0.5, 0.5]),
            i8_init("W_zero_point", &[2], &[1, 0]),
            f32_init("l.bias", &[2], &b),
        ],
    );
    let l = Loader {
        g: &g2,
        kern,
        precision: Precision::AsGraph,
    };
    let err = l.linear("l", 3, None).unwrap_err();
    assert!(
        matches!(err, DecoderError::WeightData { ref name, .. } if name == "l.weight"),
        "{err}"
    );

    // no bias at all
    let err = l.linear("other", 3, None).unwrap_err();
    assert!(
        matches!(err, DecoderError::MissingWeight { ref name, .. } if name == "other.bias"),
        "{err}"
    );
}

/// `Add(b, Mul(Cast(MatMulInteger(..)), Mul(x_scale, W_scale)))`.
fn int8_nodes() -> Vec<pb::NodeProto> {
    vec![
        node(
            "MatMulInteger",
            &["xq", "W_quantized", "xzp", "W_zero_point"],
            "acc",
            vec![],
        ),
        node("Cast", &["acc"], "accf", vec![int_attr("to", 1)]),
        node("Mul", &["xs", "W_scale"], "scales", vec![]),
        node("Mul", &["accf", "scales"], "mm", vec![]),
        node("Add", &["l.bias", "mm"], "y", vec![]),
    ]
}

#[test]
fn folded_layer_norm_2d_is_found_after_its_convolution() {
    let kern = *Kernels::get();
    // conv → LN2d (decomposed, γ/β anonymous [C,1,1]) → conv → LN2d
    let nodes = vec![
        node("Conv", &["x", "c0.weight", "c0.bias"], "a", vec![]),
        node("ReduceMean", &["a"], "m", vec![]),
        node("Sub", &["a", "m"], "d", vec![]),
        node("Div", &["d", "s"], "z", vec![]),
        node("Mul", &["onnx::Mul_1", "z"], "g", vec![]),
        node("Add", &["g", "onnx::Add_2"], "y", vec![]),
        node("Conv", &["y", "c1.weight", "c1.bias"], "a2", vec![]),
        node("Mul", &["onnx::Mul_3", "a2"], "g2", vec![]),
        node("Add", &["g2", "onnx::Add_4"], "y2", vec![]),
    ];
    let inits = vec![
        f32_init("c0.weight", &[2, 1, 2, 2], &[0.0; 8]),
        f32_init("c0.bias", &[2], &[0.0; 2]),
        f32_init("onnx::Mul_1", &[2, 1, 1], &[1.5, 2.5]),
        f32_init("onnx::Add_2", &[2, 1, 1], &[-1.0, 1.0]),
        f32_init("c1.weight", &[2, 2, 2, 2], &[0.0; 16]),
        f32_init("c1.bias", &[2], &[0.0; 2]),
        f32_init("onnx::Mul_3", &[2, 1, 1], &[7.0, 8.0]),
        f32_init("onnx::Add_4", &[2, 1, 1], &[9.0, 10.0]),
    ];
    let g = graph(nodes, inits);
    let l = Loader {
        g: &g,
        kern,
        precision: Precision::AsGraph,
    };
    assert_eq!(
        l.layer_norm_2d("n1", "c0.weight", 2).unwrap(),
        (vec![1.5, 2.5], vec![-1.0, 1.0])
    );
    assert_eq!(
        l.layer_norm_2d("n4", "c1.weight", 2).unwrap(),
        (vec![7.0, 8.0], vec![9.0, 10.0])
    );
    let err = l.layer_norm_2d("n9", "c1.weight", 3).unwrap_err();
    assert!(
        matches!(err, DecoderError::MissingWeight { ref name, .. } if name == "n9.weight"),
        "{err}"
    );
    let conv = l.patch_conv("c1", 2, 2).unwrap();
    assert_eq!((conv.linear.k(), conv.linear.n()), (8, 2));
}

fn float_attr(name: &str, f: f32) -> pb::AttributeProto {
    pb::AttributeProto {
        name: name.into(),
        f,
        r#type: pb::attribute_proto::AttributeType::Float as i32,
        ..Default::default()
    }
}

#[test]
fn identity_aliases_of_initializers_resolve_to_them() {
    let kern = *Kernels::get();
    // torch's exporter keeps one copy of identical initializers and names the
    // others through Identity nodes; a chain, listed against the data flow.
    let ln = |x: &str, p: &str, out: &str, eps: f32| {
        let (w, b) = (format!("{p}.weight"), format!("{p}.bias"));
        node(
            "LayerNormalization",
            &[x, &w, &b],
            out,
            vec![float_attr("epsilon", eps)],
        )
    };
    let nodes = vec![
        node("Identity", &["n2.weight"], "n3.weight", vec![]),
        node("Identity", &["n1.weight"], "n2.weight", vec![]),
        node("Identity", &["n1.bias"], "n2.bias", vec![]),
        node("Identity", &["n1.bias"], "n3.bias", vec![]),
        node("Identity", &["x"], "not_a_weight", vec![]),
        ln("x", "n1", "y1", 1e-5),
        ln("y1", "n2", "y2", 1e-6),
        ln("y2", "n3", "y3", 1e-3),
    ];
    let inits = vec![
        f32_init("n1.weight", &[2], &[1.0, 1.0]),
        f32_init("n1.bias", &[2], &[0.0, 0.0]),
    ];
    let g = graph(nodes, inits);
    assert!(g.is_init("n3.weight") && g.is_init("n2.bias"));
    assert!(!g.is_init("not_a_weight"));
    assert_eq!(g.init_dims("n3.weight"), Some(&[2i64][..]));
    // the alias nodes are not consumers: the weight feeds its LayerNorm only
    assert_eq!(g.consumers("n1.weight").len(), 1);
    assert_eq!(g.consumers("n3.weight").len(), 1);
    let l = Loader {
        g: &g,
        kern,
        precision: Precision::AsGraph,
    };
    for (p, eps) in [("n1", 1e-5), ("n2", 1e-6), ("n3", 1e-3)] {
        let n = l.layer_norm(p, 2).unwrap();
        assert_eq!(
            (n.gamma, n.beta, n.eps),
            (vec![1.0, 1.0], vec![0.0, 0.0], eps)
        );
    }
}
