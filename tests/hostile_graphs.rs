//! Hostile and malformed graph files (`tests/data/hostile/`, made by
//! `models/recipe/scripts/hostile_graphs.py`): each is refused with an error
//! that names the file and says why; none panics, none runs away with memory.

use std::path::PathBuf;

use sammix::graph::{self, GraphError, GraphSpec};

fn hostile(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(format!("tests/data/hostile/{name}.onnx"))
}

/// What loading each file must give: the error kind and words its message
/// holds; `None`: it loads (what it holds is only wrong when run).
const CASES: &[(&str, Option<(&str, &str)>)] = &[
    // tract panics on these: contained
    (
        "gather_out_of_range",
        Some(("panicked", "index out of bounds")),
    ),
    (
        "classifier_that_panics",
        Some(("panicked", "index out of bounds")),
    ),
    ("pad_negative", Some(("panicked", "assertion failed"))),
    ("range_step_zero", Some(("panicked", "divide by zero"))),
    ("resize_empty_scales", Some(("panicked", "unwrap"))),
    ("slice_step_zero", Some(("panicked", "divide by zero"))),
    // tract never returns from these (memory) or panics: refused first
    (
        "transpose_bad_perm",
        Some(("refused", "perm [0, 0] is not a permutation of 0..2")),
    ),
    (
        "transpose_perm_out_of_range",
        Some(("refused", "perm [0, 5] is not a permutation")),
    ),
    // tract takes seconds (in proportion to the declared size) or refuses
    // it less clearly: refused first
    (
        "large_declared_input",
        Some(("refused", "graph input \"x\": declares 268435456 elements")),
    ),
    (
        "absurd_input_dims",
        Some(("refused", "declares 18446744073709551615 elements")),
    ),
    (
        "negative_input_dim",
        Some(("refused", "graph input \"x\": dimension 1 is -3")),
    ),
    // tract refuses these cleanly by itself
    (
        "huge_initializer_dims",
        Some(("load", "does not match shape [1048576, 1048576]")),
    ),
    ("huge_dims_no_data", Some(("load", "out of bounds"))),
    ("constant_node_huge", Some(("load", "Constant"))),
    (
        "short_raw_data",
        Some(("load", "Raw tensor data length (3)")),
    ),
    (
        "negative_initializer_dim",
        Some(("load", "Negative dimension")),
    ),
    (
        "external_data_escape",
        Some(("load", "\"../../etc/shadow\"")),
    ),
    ("external_data_absolute", Some(("load", "\"/etc/passwd\""))),
    ("undefined_input", Some(("load", "[\"nowhere\"]"))),
    ("truncated", Some(("load", "failed to decode Protobuf"))),
    ("garbage", Some(("load", "failed to decode Protobuf"))),
    ("cycle", Some(("optimize", "Loop detected"))),
    ("unknown_op", Some(("optimize", "FrobnicateV9"))),
    ("concat_axis_9", Some(("optimize", "Concat"))),
    ("conv_rank1_weight", Some(("optimize", "Conv"))),
    ("gemm_rank1", Some(("optimize", "Gemm"))),
    ("matmul_mismatch_const", Some(("optimize", "MatMul"))),
    ("reshape_negative", Some(("optimize", "Reshape"))),
    ("reshape_two_minus_one", Some(("optimize", "Reshape"))),
    ("squeeze_non_unit", Some(("optimize", "Squeeze"))),
    ("split_bad_sizes", Some(("optimize", "Split"))),
    ("expand_huge", Some(("optimize", "MultiBroadcastTo"))),
    // load: nothing in them is wrong until run (and the bundle's specs fix every input)
    ("deep_chain", None),
    ("constant_of_shape_huge", None),
    ("topk_k_too_big", None),
    ("gather_runtime_index", None),
];

fn kind(e: &GraphError) -> &'static str {
    match e {
        GraphError::Panicked { .. } => "panicked",
        GraphError::Refused { .. } => "refused",
        GraphError::Load { .. } => "load",
        GraphError::Optimize { .. } => "optimize",
        GraphError::UnresolvedInput { .. } => "unresolved",
        _ => "other",
    }
}

#[test]
fn every_hostile_graph_gets_a_clear_error_or_loads() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/hostile");
    let on_disk = std::fs::read_dir(&dir).unwrap().count();
    assert_eq!(
        on_disk,
        CASES.len(),
        "every file in {} has a case",
        dir.display()
    );
    for &(name, want) in CASES {
        let path = hostile(name);
        let got = graph::load(&path, &GraphSpec::default());
        match (want, got) {
            (None, Ok(_)) => {}
            (None, Err(e)) => panic!("{name}: expected to load, got {e}"),
            (Some((k, _)), Ok(_)) => panic!("{name}: expected a {k} error, it loaded"),
            (Some((k, words)), Err(e)) => {
                let text = e.to_string();
                assert_eq!(kind(&e), k, "{name}: {text}");
                assert!(
                    text.starts_with(&path.display().to_string()),
                    "{name}: {text}"
                );
                assert!(text.contains(words), "{name}: {text:?} lacks {words:?}");
            }
        }
    }
}

#[test]
fn a_contained_panic_leaves_tract_usable() {
    let path = hostile("gather_out_of_range");
    for _ in 0..3 {
        assert!(matches!(
            graph::load(&path, &GraphSpec::default()),
            Err(GraphError::Panicked {
                stage: "loading",
                ..
            })
        ));
    }
    graph::load(hostile("deep_chain"), &GraphSpec::default()).expect("a good graph still loads");
}

#[test]
fn a_graph_that_fails_when_run_gives_an_error_and_the_next_run_goes_on() {
    // Gather with its index given at run time: 7 is out of range for 4 values
    let plan = graph::load(hostile("gather_runtime_index"), &GraphSpec::default()).unwrap();
    let mut session = plan.session().unwrap();
    for _ in 0..2 {
        let bad = graph::Tensor::from_shape(&[1], &[7i64]).unwrap();
        let e = session.run(vec![bad]).unwrap_err();
        let text = e.to_string();
        assert!(
            matches!(
                e,
                GraphError::Panicked {
                    stage: "running",
                    ..
                } | GraphError::Run { .. }
            ),
            "{text}"
        );
        assert!(text.contains("gather_runtime_index.onnx"), "{text}");
        let good = graph::Tensor::from_shape(&[1], &[2i64]).unwrap();
        let out = session.run(vec![good]).expect("the next run goes on");
        let y = out[0].try_as_plain_ram().unwrap();
        assert_eq!(y.as_slice::<f32>().unwrap(), &[2.0]);
    }
}

/// Found by fuzzing (`fuzz/regressions/graph/hangs-a13dea8d0c78af93`): a
/// `uint64` input of 16,777,192 elements, under the element bound but
/// 128 MiB, in front of `Gelu` and `Celu`; tract took 1.5 s to load it. The
/// byte bound refuses it first, naming the input and its size.
#[test]
fn a_declared_input_within_the_element_bound_but_too_many_bytes_is_refused() {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/regressions/graph/hangs-a13dea8d0c78af93");
    let e = graph::load(&path, &GraphSpec::default()).unwrap_err();
    assert_eq!(kind(&e), "refused", "{e}");
    let text = e.to_string();
    assert!(
        text.contains("graph input \"x\"") && text.contains("134217536 bytes"),
        "{text}"
    );
}
