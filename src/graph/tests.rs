//! Loading tiny ONNX graphs built here, one per trap the loader handles.

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};

use prost::Message;
use tract_onnx::pb;
use tract_onnx::pb::tensor_shape_proto::{dimension, Dimension};

use super::*;

const FLOAT: i32 = 1;
const INT64: i32 = 7;

enum D {
    V(i64),
    P(&'static str),
}

fn value_info(name: &str, elem_type: i32, dims: &[D]) -> pb::ValueInfoProto {
    let dim = dims
        .iter()
        .map(|d| Dimension {
            value: Some(match d {
                D::V(v) => dimension::Value::DimValue(*v),
                D::P(p) => dimension::Value::DimParam(p.to_string()),
            }),
            ..Default::default()
        })
        .collect();
    pb::ValueInfoProto {
        name: name.to_string(),
        r#type: Some(pb::TypeProto {
            value: Some(pb::type_proto::Value::TensorType(pb::type_proto::Tensor {
                elem_type,
                shape: Some(pb::TensorShapeProto { dim }),
            })),
            ..Default::default()
        }),
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
        op_type: op.to_string(),
        name: output.to_string(),
        input: inputs.iter().map(|s| s.to_string()).collect(),
        output: vec![output.to_string()],
        attribute,
        ..Default::default()
    }
}

fn write_model(file: &str, graph: pb::GraphProto) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("sammix-graph-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let model = pb::ModelProto {
        ir_version: 8,
        opset_import: vec![pb::OperatorSetIdProto {
            domain: String::new(),
            version: 17,
        }],
        graph: Some(graph),
        ..Default::default()
    };
    // Tests run in parallel: each model gets its own file.
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let path = dir.join(format!("{}-{file}", NEXT.fetch_add(1, Ordering::Relaxed)));
    std::fs::write(&path, model.encode_to_vec()).unwrap();
    path
}

/// `points` 1×num_points×2 and `labels` 1×num_points in; `sum` = labels² +
/// labels and `sq` = points² out. `value_info` carries `num_points` and an
/// unrelated symbol, as onnxruntime's quantization pre-processing writes.
fn symbolic_graph() -> PathBuf {
    let graph = pb::GraphProto {
        name: "symbolic".to_string(),
        node: vec![
            node("Mul", &["labels", "labels"], "prod", vec![]),
            node("Add", &["prod", "labels"], "sum", vec![]),
            node("Mul", &["points", "points"], "sq", vec![]),
        ],
        input: vec![
            value_info("points", FLOAT, &[D::V(1), D::P("num_points"), D::V(2)]),
            value_info("labels", FLOAT, &[D::V(1), D::P("num_points")]),
        ],
        output: vec![
            value_info("sum", FLOAT, &[D::V(1), D::P("num_points")]),
            value_info("sq", FLOAT, &[]),
        ],
        value_info: vec![
            value_info("prod", FLOAT, &[D::V(1), D::P("num_points")]),
            value_info("sq", FLOAT, &[D::V(1), D::P("unk__7"), D::V(2)]),
        ],
        ..Default::default()
    };
    write_model("symbolic.onnx", graph)
}

/// `x` 1×1×4×4 resized (linear) to the `size` (H, W) input, as the SAM
/// decoder resizes its masks to `orig_im_size`.
fn resize_graph() -> PathBuf {
    let head = pb::TensorProto {
        name: "head".to_string(),
        dims: vec![2],
        data_type: INT64,
        int64_data: vec![1, 1],
        ..Default::default()
    };
    let to_int64 = pb::AttributeProto {
        name: "to".to_string(),
        r#type: 2,
        i: INT64 as i64,
        ..Default::default()
    };
    let axis = pb::AttributeProto {
        name: "axis".to_string(),
        r#type: 2,
        i: 0,
        ..Default::default()
    };
    let mode = pb::AttributeProto {
        name: "mode".to_string(),
        r#type: 3,
        s: b"linear".to_vec(),
        ..Default::default()
    };
    let graph = pb::GraphProto {
        name: "resize".to_string(),
        node: vec![
            node("Cast", &["size"], "size_i64", vec![to_int64]),
            node("Concat", &["head", "size_i64"], "sizes", vec![axis]),
            node("Resize", &["x", "", "", "sizes"], "y", vec![mode]),
        ],
        initializer: vec![head],
        input: vec![
            value_info("x", FLOAT, &[D::V(1), D::V(1), D::V(4), D::V(4)]),
            value_info("size", FLOAT, &[D::V(2)]),
        ],
        output: vec![value_info("y", FLOAT, &[])],
        ..Default::default()
    };
    write_model("resize.onnx", graph)
}

fn f32_tensor(shape: &[usize], values: &[f32]) -> Tensor {
    Tensor::from_shape(shape, values).unwrap()
}

fn values(t: &Tensor) -> Vec<f32> {
    tensor_to_npy(t, "test").unwrap().into_vec::<f32>().unwrap()
}

#[test]
fn pins_symbols_from_input_shapes_through_value_info() {
    let path = symbolic_graph();
    let spec = GraphSpec::new(vec![
        InputSpec::shape("points", [1, 3, 2]),
        InputSpec::shape("labels", [1, 3]),
    ]);
    let plan = load(&path, &spec).unwrap();
    assert_eq!(
        plan.inputs()
            .iter()
            .map(|i| i.name.as_str())
            .collect::<Vec<_>>(),
        ["points", "labels"]
    );
    assert_eq!(plan.outputs()[0].name, "sum");
    assert_eq!(plan.outputs()[0].shape.as_deref(), Some(&[1, 3][..]));
    let out = plan
        .run_named(vec![
            ("labels".to_string(), f32_tensor(&[1, 3], &[1.0, 2.0, -1.0])),
            (
                "points".to_string(),
                f32_tensor(&[1, 3, 2], &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]),
            ),
        ])
        .unwrap();
    assert_eq!(out[0].0, "sum");
    assert_eq!(values(&out[0].1), [2.0, 6.0, 0.0]);
    assert_eq!(values(&out[1].1), [1.0, 4.0, 9.0, 16.0, 25.0, 36.0]);

    // Stripping value_info works as well.
    let stripped = GraphSpec {
        strip_value_info: true,
        ..spec
    };
    assert_eq!(
        load(&path, &stripped).unwrap().outputs()[1]
            .shape
            .as_deref(),
        Some(&[1, 3, 2][..])
    );
}

#[test]
fn symbols_from_the_spec_resolve_unspecified_inputs() {
    let spec = GraphSpec {
        symbols: vec![("num_points".to_string(), 4), ("absent".to_string(), 9)],
        ..Default::default()
    };
    let plan = load(symbolic_graph(), &spec).unwrap();
    assert_eq!(plan.inputs()[0].shape, [1, 4, 2]);
    assert_eq!(plan.inputs()[1].shape, [1, 4]);
}

#[test]
fn reports_conflicting_and_missing_shapes() {
    let path = symbolic_graph();
    let spec = GraphSpec::new(vec![
        InputSpec::shape("points", [1, 3, 2]),
        InputSpec::shape("labels", [1, 2]),
    ]);
    let err = load(&path, &spec).unwrap_err();
    assert!(
        matches!(&err, GraphError::SymbolConflict { name, value: 2, earlier: 3, .. } if name == "labels"),
        "{err}"
    );
    assert!(err.to_string().contains("symbolic.onnx"), "{err}");

    let spec = GraphSpec::new(vec![InputSpec::shape("points", [1, 3, 3])]);
    let err = load(&path, &spec).unwrap_err();
    assert!(
        matches!(&err, GraphError::ShapeMismatch { name, .. } if name == "points"),
        "{err}"
    );

    let spec = GraphSpec::new(vec![InputSpec::shape("points", [3, 2])]);
    assert!(matches!(
        load(&path, &spec).unwrap_err(),
        GraphError::ShapeMismatch { .. }
    ));

    let err = load(&path, &GraphSpec::default()).unwrap_err();
    assert!(
        matches!(&err, GraphError::UnresolvedInput { name, .. } if name == "points"),
        "{err}"
    );

    let spec = GraphSpec::new(vec![InputSpec::shape("point", [1, 3, 2])]);
    let err = load(&path, &spec).unwrap_err();
    assert!(
        matches!(&err, GraphError::UnknownInput { name, available, .. } if name == "point" && available.len() == 2)
    );

    let spec = GraphSpec::new(vec![
        InputSpec::shape("labels", [1, 3]),
        InputSpec::shape("labels", [1, 3]),
    ]);
    assert!(matches!(
        load(&path, &spec).unwrap_err(),
        GraphError::DuplicateInput { .. }
    ));
}

#[test]
fn checks_run_inputs() {
    let spec = GraphSpec::new(vec![
        InputSpec::shape("points", [1, 3, 2]),
        InputSpec::shape("labels", [1, 3]),
    ]);
    let plan = load(symbolic_graph(), &spec).unwrap();
    let err = plan.run(vec![f32_tensor(&[1, 3], &[0.0; 3])]).unwrap_err();
    assert!(matches!(err, GraphError::BadRunInputs { .. }), "{err}");
    let err = plan
        .run(vec![
            f32_tensor(&[1, 2, 2], &[0.0; 4]),
            f32_tensor(&[1, 3], &[0.0; 3]),
        ])
        .unwrap_err();
    assert!(err.to_string().contains("\"points\""), "{err}");
    let err = plan
        .run_named(vec![("labels".to_string(), f32_tensor(&[1, 3], &[0.0; 3]))])
        .unwrap_err();
    assert!(err.to_string().contains("\"points\" is missing"), "{err}");
}

#[test]
fn a_resize_size_input_must_be_pinned() {
    let path = resize_graph();
    let spec = GraphSpec::new(vec![InputSpec::shape("size", [2])]);
    let err = load(&path, &spec).unwrap_err();
    assert!(matches!(err, GraphError::Optimize { .. }), "{err}");

    let size = f32_tensor(&[2], &[6.0, 8.0]);
    let plan = load(
        &path,
        &GraphSpec::new(vec![InputSpec::constant("size", size)]),
    )
    .unwrap();
    assert_eq!(plan.inputs().len(), 1);
    assert_eq!(plan.outputs()[0].shape.as_deref(), Some(&[1, 1, 6, 8][..]));
    let x = f32_tensor(&[1, 1, 4, 4], &[1.0; 16]);
    let y = plan.run(vec![x]).unwrap();
    assert_eq!(y[0].shape(), [1, 1, 6, 8]);
    assert!(values(&y[0]).iter().all(|&v| (v - 1.0).abs() < 1e-6));

    let wrong = Tensor::from_shape(&[2], &[6i64, 8]).unwrap();
    let err = load(
        &path,
        &GraphSpec::new(vec![InputSpec::constant("size", wrong)]),
    )
    .unwrap_err();
    assert!(
        matches!(
            err,
            GraphError::DatumTypeMismatch {
                declared: DatumType::F32,
                given: DatumType::I64,
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn names_the_file_it_cannot_load() {
    let missing = std::env::temp_dir().join("sammix-no-such-graph.onnx");
    let err = load(&missing, &GraphSpec::default()).unwrap_err();
    assert!(
        matches!(err, GraphError::Load { .. })
            && err.to_string().contains("sammix-no-such-graph.onnx")
    );

    let garbage = write_model("garbage.onnx", pb::GraphProto::default());
    std::fs::write(&garbage, b"\x08\x96\x01 not protobuf \xff\xff").unwrap();
    let err = load(&garbage, &GraphSpec::default()).unwrap_err();
    assert!(matches!(err, GraphError::Load { .. }), "{err}");
}
