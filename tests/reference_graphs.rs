//! tract agrees with onnxruntime on every graph of the reference bundle.
//!
//! The recipe records onnxruntime (CPU) outputs next to the bundle:
//! `BUNDLE/reference/index.json` lists graph cases (format 1):
//!
//! ```json
//! {"format": 1, "graph_cases": [
//!   {"name": "frame_000/decoder", "graph": "decoder.onnx",
//!    "inputs": [{"name": "image_embeddings", "file": "frame_000/image_embeddings.npy"}],
//!    "constant_inputs": [{"name": "orig_im_size", "file": "frame_000/orig_im_size.npy"}],
//!    "outputs": [{"name": "low_res_masks", "file": "frame_000/low_res_masks.npy"}],
//!    "atol": 1e-3, "rtol": 1e-3}]}
//! ```
//!
//! `file` paths are relative to the reference folder, `graph` to the bundle.
//! Each case loads its graph with the input shapes of its `.npy` files and
//! its constant inputs pinned, runs it, and checks every output elementwise:
//! `|tract - ort| <= atol + rtol * |ort|`. Every `*.onnx` of the bundle must
//! be covered by a case, and every output of a graph must be checked.
//!
//! The bundle is `$SAMMIX_REFERENCE_BUNDLE`, by default
//! `models/sammix-us-scratch`. A missing bundle or index fails the tests.

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use sammix::graph::{self, GraphSpec, InputSpec, Tensor};
use sammix::npy::{NpyArray, NpyData};
use serde::Deserialize;

/// The part of the index this test reads; other top-level keys (frames,
/// prompt cases, parameters) belong to other tests.
#[derive(Debug, Deserialize)]
struct Index {
    format: u32,
    graph_cases: Vec<GraphCase>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct GraphCase {
    name: String,
    graph: String,
    inputs: Vec<NamedFile>,
    #[serde(default)]
    constant_inputs: Vec<NamedFile>,
    outputs: Vec<NamedFile>,
    atol: f64,
    rtol: f64,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct NamedFile {
    name: String,
    file: String,
}

struct Bundle {
    dir: PathBuf,
    reference: PathBuf,
    index: Index,
}

fn bundle() -> Bundle {
    let dir = match std::env::var_os("SAMMIX_REFERENCE_BUNDLE") {
        Some(d) => PathBuf::from(d),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("models/sammix-us-scratch"),
    };
    let reference = dir.join("reference");
    let index_path = reference.join("index.json");
    let text = std::fs::read_to_string(&index_path).unwrap_or_else(|e| {
        panic!(
            "no reference index at {} ({e}). Build the bundle and its reference outputs with \
             the recipe, or point SAMMIX_REFERENCE_BUNDLE at a bundle folder.",
            index_path.display()
        )
    });
    let index: Index = serde_json::from_str(&text).unwrap_or_else(|e| {
        panic!(
            "{}: not a format-1 reference index: {e}",
            index_path.display()
        )
    });
    assert_eq!(
        index.format,
        1,
        "{}: unsupported format {}",
        index_path.display(),
        index.format
    );
    assert!(
        !index.graph_cases.is_empty(),
        "{}: no graph cases",
        index_path.display()
    );
    Bundle {
        dir,
        reference,
        index,
    }
}

fn read_npy(path: &Path) -> NpyArray {
    NpyArray::read(path).unwrap_or_else(|e| panic!("{e}"))
}

fn to_f64(data: &NpyData) -> Vec<f64> {
    match data {
        NpyData::F32(v) => v.iter().map(|&x| f64::from(x)).collect(),
        NpyData::I64(v) => v.iter().map(|&x| x as f64).collect(),
        NpyData::I32(v) => v.iter().map(|&x| f64::from(x)).collect(),
        NpyData::U8(v) => v.iter().map(|&x| f64::from(x)).collect(),
    }
}

/// Row-major coordinates of a flat index.
fn coords(mut flat: usize, shape: &[usize]) -> Vec<usize> {
    let mut out = vec![0; shape.len()];
    for (c, &d) in out.iter_mut().zip(shape).rev() {
        if d > 0 {
            *c = flat % d;
            flat /= d;
        }
    }
    out
}

/// Compares one output; returns a report line, and whether it passed.
fn compare(label: &str, got: &Tensor, want: &NpyArray, atol: f64, rtol: f64) -> (String, bool) {
    let got = match graph::tensor_to_npy(got, label) {
        Ok(a) => a,
        Err(e) => return (format!("{label}: {e}"), false),
    };
    if got.shape() != want.shape() || got.dtype() != want.dtype() {
        let line = format!(
            "{label}: tract gives {} {:?}, onnxruntime {} {:?}",
            got.dtype(),
            got.shape(),
            want.dtype(),
            want.shape()
        );
        return (line, false);
    }
    let (a, b) = (to_f64(got.data()), to_f64(want.data()));
    let mut max_abs = 0.0f64;
    // The element that exceeds its tolerance by the most (or, when all pass,
    // that comes closest to it).
    let mut worst: Option<(usize, f64)> = None;
    for (i, (&x, &y)) in a.iter().zip(&b).enumerate() {
        let excess = if x.is_nan() || y.is_nan() {
            if x.is_nan() && y.is_nan() {
                f64::NEG_INFINITY
            } else {
                f64::INFINITY
            }
        } else if x == y {
            // Equal infinities included.
            f64::NEG_INFINITY
        } else {
            let diff = (x - y).abs();
            max_abs = max_abs.max(diff);
            diff - (atol + rtol * y.abs())
        };
        if worst.is_none_or(|(_, e)| excess > e) {
            worst = Some((i, excess));
        }
    }
    let ok = worst.is_none_or(|(_, e)| e <= 0.0);
    let mut line = format!("{label}: {:?} max |diff| {max_abs:.3e}", want.shape());
    if let Some((i, _)) = worst.filter(|_| !ok) {
        let _ = write!(
            line,
            " -- FAILS at {:?}: tract {} vs onnxruntime {} (|diff| {:.3e} > {atol:e} + {rtol:e} * |ort|)",
            coords(i, want.shape()),
            a[i],
            b[i],
            (a[i] - b[i]).abs()
        );
    }
    (line, ok)
}

fn run_case(bundle: &Bundle, case: &GraphCase) -> (String, bool) {
    let path = bundle.dir.join(&case.graph);
    let head = format!("case {:?} ({})", case.name, path.display());
    assert!(
        case.atol >= 0.0 && case.rtol >= 0.0 && case.atol.is_finite() && case.rtol.is_finite(),
        "{head}: bad tolerances atol {} rtol {}",
        case.atol,
        case.rtol
    );
    let mut spec_inputs = Vec::new();
    let mut feeds = Vec::new();
    for input in &case.inputs {
        let file = bundle.reference.join(&input.file);
        let tensor = graph::npy_to_tensor(read_npy(&file), &file.display().to_string())
            .unwrap_or_else(|e| panic!("{head}: {e}"));
        spec_inputs.push(InputSpec::shape(&input.name, tensor.shape()));
        feeds.push((input.name.clone(), tensor));
    }
    for input in &case.constant_inputs {
        let file = bundle.reference.join(&input.file);
        let spec = InputSpec::constant_npy(&input.name, read_npy(&file))
            .unwrap_or_else(|e| panic!("{head}: {e}"));
        spec_inputs.push(spec);
    }
    let plan = match graph::load(&path, &GraphSpec::new(spec_inputs)) {
        Ok(plan) => plan,
        Err(e) => return (format!("{head}\n  load: {e}"), false),
    };
    let outputs = match plan.run_named(feeds) {
        Ok(o) => o,
        Err(e) => return (format!("{head}\n  run: {e}"), false),
    };
    let mut report = head;
    let mut ok = true;
    let listed: BTreeSet<&str> = case.outputs.iter().map(|o| o.name.as_str()).collect();
    let unchecked: Vec<&str> = outputs
        .iter()
        .map(|(n, _)| n.as_str())
        .filter(|n| !listed.contains(n))
        .collect();
    if !unchecked.is_empty() {
        let _ = write!(
            report,
            "\n  graph outputs without a reference: {unchecked:?}"
        );
        ok = false;
    }
    for expected in &case.outputs {
        let Some((_, got)) = outputs.iter().find(|(n, _)| *n == expected.name) else {
            let names: Vec<&str> = outputs.iter().map(|(n, _)| n.as_str()).collect();
            let _ = write!(
                report,
                "\n  no output {:?} (outputs: {names:?})",
                expected.name
            );
            ok = false;
            continue;
        };
        let want = read_npy(&bundle.reference.join(&expected.file));
        let (line, passed) = compare(&expected.name, got, &want, case.atol, case.rtol);
        let _ = write!(report, "\n  {line}");
        ok &= passed;
    }
    (report, ok)
}

#[test]
fn tract_agrees_with_onnxruntime_on_every_case() {
    let bundle = bundle();
    let mut failed = Vec::new();
    for case in &bundle.index.graph_cases {
        let (report, ok) = run_case(&bundle, case);
        println!("{report}");
        if !ok {
            failed.push(report);
        }
    }
    assert!(
        failed.is_empty(),
        "{} case(s) disagree:\n{}",
        failed.len(),
        failed.join("\n")
    );
}

#[test]
fn every_shipped_graph_has_a_case() {
    let bundle = bundle();
    let covered: BTreeSet<&str> = bundle
        .index
        .graph_cases
        .iter()
        .map(|c| c.graph.as_str())
        .collect();
    let entries = std::fs::read_dir(&bundle.dir)
        .unwrap_or_else(|e| panic!("{}: cannot list the bundle: {e}", bundle.dir.display()));
    let mut shipped = BTreeSet::new();
    for entry in entries {
        let path = entry
            .unwrap_or_else(|e| panic!("{}: {e}", bundle.dir.display()))
            .path();
        if path.extension().is_some_and(|x| x == "onnx") {
            if let Some(name) = path.file_name().and_then(|n| n.to_str()) {
                shipped.insert(name.to_string());
            }
        }
    }
    assert!(
        !shipped.is_empty(),
        "{}: no .onnx graphs in the bundle",
        bundle.dir.display()
    );
    let unchecked: Vec<&String> = shipped
        .iter()
        .filter(|g| !covered.contains(g.as_str()))
        .collect();
    assert!(
        unchecked.is_empty(),
        "{}: graphs without a reference case in reference/index.json: {unchecked:?}",
        bundle.dir.display()
    );
    let missing: Vec<&&str> = covered.iter().filter(|g| !shipped.contains(**g)).collect();
    assert!(
        missing.is_empty(),
        "{}: cases name graphs that are not in the bundle: {missing:?}",
        bundle.dir.display()
    );
}
