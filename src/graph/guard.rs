//! What stands between a graph file's bytes and tract.
//!
//! tract 0.23.9 assumes more about a graph than it checks. Fed hostile or
//! malformed ONNX (`tests/data/hostile/`, made by
//! `models/recipe/scripts/hostile_graphs.py`), its loader and optimizer
//! *panic* on a constant `Gather` index out of range, a `Slice` step or a
//! `Range` delta of 0, an empty `Resize` scales tensor, pads that crop more
//! than the axis holds, or a `Transpose` axis out of range; and a
//! `Transpose` whose `perm` repeats an axis sends it into unbounded memory
//! growth (20 GB before the kernel's OOM killer stopped it here).
//!
//! Two defences, both here:
//!
//! - [`precheck`] refuses, before tract sees the graph, what would not
//!   return at all or only after seconds: a `Transpose` `perm` that is not
//!   a permutation, a graph larger than [`MAX_NODES`] nodes (subgraphs
//!   included), and a graph input declaring a negative dimension or more
//!   than [`MAX_INPUT_ELEMENTS`] elements or [`MAX_INPUT_BYTES`] bytes.
//! - [`contain`] runs a tract step with unwinding caught: a panic becomes
//!   [`GraphError::Panicked`], naming the file and the step, and the caller
//!   goes on (the CLI exits with a message, the stream stops cleanly).
//!
//! What tract already refuses cleanly is left to it (raw data shorter than
//! its dims, negative dims, external data outside the model's directory,
//! cycles, unresolved inputs, unknown operators).

use std::any::Any;
use std::cell::Cell;
use std::panic::{self, AssertUnwindSafe};
use std::path::Path;
use std::sync::Once;

use tract_onnx::pb::tensor_shape_proto::dimension;
use tract_onnx::pb::{type_proto, GraphProto, ModelProto, NodeProto, ValueInfoProto};

use super::GraphError;

/// The most nodes a graph may have, subgraphs included: LiteMedSAM's int8
/// encoder, the largest graph a bundle ships, has 1,244.
pub const MAX_NODES: usize = 200_000;

thread_local! {
    /// How many [`contain`] calls this thread is inside.
    static CONTAINING: Cell<u32> = const { Cell::new(0) };
}

static QUIET_HOOK: Once = Once::new();

/// Wraps the process's panic hook once: a panic inside [`contain`] is not
/// printed (it comes back as an error, which the caller reports); any other
/// panic goes to the hook that was there before.
fn install_quiet_hook() {
    QUIET_HOOK.call_once(|| {
        let previous = panic::take_hook();
        panic::set_hook(Box::new(move |info| {
            if CONTAINING.with(Cell::get) == 0 {
                previous(info);
            } else {
                log::debug!("contained panic: {info}");
            }
        }));
    });
}

/// Runs one tract step, turning a panic inside it into an error.
pub(crate) fn contain<T>(
    path: &Path,
    stage: &'static str,
    f: impl FnOnce() -> Result<T, GraphError>,
) -> Result<T, GraphError> {
    install_quiet_hook();
    CONTAINING.with(|c| c.set(c.get() + 1));
    // AssertUnwindSafe: after a panic nothing the closure touched is used
    // again: a failed load drops its half-built model, and a failed run
    // replaces its session state (Session::run).
    let result = panic::catch_unwind(AssertUnwindSafe(f));
    CONTAINING.with(|c| c.set(c.get() - 1));
    match result {
        Ok(result) => result,
        Err(payload) => {
            let message = panic_message(payload.as_ref());
            log::debug!(
                "{}: tract panicked while {stage} ({message}); contained",
                path.display()
            );
            Err(GraphError::Panicked {
                path: path.to_path_buf(),
                stage,
                message,
            })
        }
    }
}

/// Runs `f` with a panic inside it caught and not printed: `Err` holds the
/// panic's message. For dependencies other than tract that panic on bad
/// input (the JPEG decoder, the minisign crate: found by fuzzing).
pub(crate) fn contain_panic<T>(f: impl FnOnce() -> T) -> Result<T, String> {
    install_quiet_hook();
    CONTAINING.with(|c| c.set(c.get() + 1));
    // AssertUnwindSafe: callers drop whatever the closure touched on error.
    let result = panic::catch_unwind(AssertUnwindSafe(f));
    CONTAINING.with(|c| c.set(c.get() - 1));
    result.map_err(|payload| panic_message(payload.as_ref()))
}

fn panic_message(payload: &(dyn Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "a panic without a message".to_string()
    }
}

/// Refuses what tract would not come back from; see the module docs.
pub(crate) fn precheck(path: &Path, model: &ModelProto) -> Result<(), GraphError> {
    let refuse = |reason: String| GraphError::Refused {
        path: path.to_path_buf(),
        reason,
    };
    let Some(graph) = &model.graph else {
        return Ok(()); // tract says so, as a load error
    };
    let mut nodes = 0usize;
    check_graph(graph, &mut nodes).map_err(refuse)?;
    for input in &graph.input {
        check_declared_input(input)
            .map_err(|e| refuse(format!("graph input {:?}: {e}", input.name)))?;
    }
    Ok(())
}

/// The most elements a graph input may declare: 2²⁴ (64 MB of f32). The
/// largest input a bundle has is an encoder's image (3×1024×1024 for SAM's
/// ViT at full size, 3×256×256 for LiteMedSAM). tract 0.23.9 spends time
/// in proportion to a declared input's size while optimizing a graph (14 s
/// for a 2.7×10⁸-element `uint32` input in front of one `Gelu`, found by
/// fuzzing), so a graph declaring more is refused before tract sees it.
pub const MAX_INPUT_ELEMENTS: u64 = 1 << 24;

/// The most bytes a graph input may declare: 32 MiB, 2.7 times SAM's
/// full-size 3×1024×1024 f32 image. The element bound alone let through a
/// `uint64` input of 16,777,192 elements (128 MiB) that tract took 1.5 s to
/// load (a hang under the fuzzer's 2 s limit on a loaded machine).
pub const MAX_INPUT_BYTES: u64 = 1 << 25;

/// Bytes of one element of ONNX `TensorProto.DataType` `elem_type`
/// (unknown types, strings included, count as 8).
fn element_bytes(elem_type: i32) -> u64 {
    match elem_type {
        // UINT8, INT8, BOOL, FLOAT8 variants
        2 | 3 | 9 | 17..=20 => 1,
        // UINT16, INT16, FLOAT16, BFLOAT16
        4 | 5 | 10 | 16 => 2,
        // FLOAT, INT32, UINT32
        1 | 6 | 12 => 4,
        // COMPLEX128
        15 => 16,
        // INT64, DOUBLE, UINT64, COMPLEX64, STRING, and what is not known
        _ => 8,
    }
}

/// A declared input shape: no negative dimension, at most
/// [`MAX_INPUT_ELEMENTS`] elements and [`MAX_INPUT_BYTES`] bytes over its
/// concrete dimensions (symbolic
/// ones are fixed by the caller's [`GraphSpec`](super::GraphSpec) or
/// refused by tract).
fn check_declared_input(input: &ValueInfoProto) -> Result<(), String> {
    let Some(type_proto::Value::TensorType(t)) =
        input.r#type.as_ref().and_then(|t| t.value.as_ref())
    else {
        return Ok(());
    };
    let Some(shape) = &t.shape else {
        return Ok(());
    };
    let mut elements: u64 = 1;
    for (axis, d) in shape.dim.iter().enumerate() {
        if let Some(dimension::Value::DimValue(v)) = d.value {
            let v = u64::try_from(v).map_err(|_| format!("dimension {axis} is {v}"))?;
            elements = elements.saturating_mul(v);
        }
    }
    if elements > MAX_INPUT_ELEMENTS {
        return Err(format!(
            "declares {elements} elements, more than the {MAX_INPUT_ELEMENTS} any bundle's input needs"
        ));
    }
    let bytes = elements.saturating_mul(element_bytes(t.elem_type));
    if bytes > MAX_INPUT_BYTES {
        return Err(format!(
            "declares {elements} elements of {} bytes ({bytes} bytes), more than the {MAX_INPUT_BYTES} any bundle's input needs",
            element_bytes(t.elem_type)
        ));
    }
    Ok(())
}

fn check_graph(graph: &GraphProto, nodes: &mut usize) -> Result<(), String> {
    for (i, node) in graph.node.iter().enumerate() {
        *nodes += 1;
        if *nodes > MAX_NODES {
            return Err(format!("more than {MAX_NODES} nodes"));
        }
        if node.op_type == "Transpose" {
            check_transpose(node)
                .map_err(|e| format!("node #{i} {:?} (Transpose): {e}", node.name))?;
        }
        for attr in &node.attribute {
            for sub in attr.g.iter().chain(&attr.graphs) {
                check_graph(sub, nodes)?;
            }
        }
    }
    Ok(())
}

/// `perm`, when given, must hold each axis 0..n exactly once.
fn check_transpose(node: &NodeProto) -> Result<(), String> {
    let Some(perm) = node.attribute.iter().find(|a| a.name == "perm") else {
        return Ok(());
    };
    let n = perm.ints.len();
    let mut seen = vec![false; n];
    for &axis in &perm.ints {
        let ok =
            usize::try_from(axis).is_ok_and(|a| a < n && !std::mem::replace(&mut seen[a], true));
        if !ok {
            return Err(format!(
                "perm {:?} is not a permutation of 0..{n}",
                perm.ints
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use tract_onnx::pb::AttributeProto;

    fn transpose(perm: Vec<i64>) -> NodeProto {
        NodeProto {
            name: "t".to_string(),
            op_type: "Transpose".to_string(),
            attribute: vec![AttributeProto {
                name: "perm".to_string(),
                ints: perm,
                ..AttributeProto::default()
            }],
            ..NodeProto::default()
        }
    }

    #[test]
    fn transpose_perm_must_be_a_permutation() {
        assert!(check_transpose(&transpose(vec![0, 2, 1])).is_ok());
        assert!(check_transpose(&transpose(vec![])).is_ok());
        for bad in [vec![0, 0], vec![0, 5], vec![-1, 0], vec![1, 1, 0]] {
            let e = check_transpose(&transpose(bad.clone())).unwrap_err();
            assert!(e.contains("not a permutation"), "{bad:?}: {e}");
        }
    }

    #[test]
    fn node_count_includes_subgraphs() {
        let leaf = GraphProto {
            node: vec![NodeProto::default(); 3],
            ..GraphProto::default()
        };
        let parent = GraphProto {
            node: vec![NodeProto {
                op_type: "If".to_string(),
                attribute: vec![AttributeProto {
                    name: "then_branch".to_string(),
                    g: Some(leaf),
                    ..AttributeProto::default()
                }],
                ..NodeProto::default()
            }],
            ..GraphProto::default()
        };
        let mut n = 0;
        check_graph(&parent, &mut n).unwrap();
        assert_eq!(n, 4);
    }

    #[test]
    fn a_panic_becomes_an_error_naming_the_file_and_step() {
        let r: Result<(), GraphError> = contain(Path::new("x.onnx"), "loading", || {
            panic!("index out of bounds: the len is 4 but the index is 7")
        });
        let e = r.unwrap_err().to_string();
        assert!(e.starts_with("x.onnx: "), "{e}");
        assert!(e.contains("loading") && e.contains("the index is 7"), "{e}");
    }
}
