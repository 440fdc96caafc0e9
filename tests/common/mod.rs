//! Shared by the integration tests that build bundles: a temporary copy of
//! the real bundle with graphs replaced by tiny hand-built ONNX models
//! (moved here from `graph_contract.rs`). Each test crate uses part of it.
#![allow(dead_code)]

use std::fs;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use prost::Message;
use sammix::bundle::{sha256_file, Bundle, ClassifierInput, GraphRole, Manifest, MANIFEST};
use sammix::pipeline::{DecoderKind, Pipeline, PipelineError, EMBED_DIM};
use tract_onnx::pb;
use tract_onnx::pb::tensor_shape_proto::{dimension, Dimension};

/// The bundle shipped in the repository.
pub fn real_bundle_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("models/sammix-us-scratch")
}

// ---------------------------------------------------------------------------
// Temporary bundles

/// A copy of the real bundle's manifest and three graphs in a folder under
/// the system's temporary folder (removed on drop). The manifest's
/// `[checksums]` table is emptied, so the other files need not be copied.
pub struct TestBundle {
    pub dir: PathBuf,
    pub manifest: Manifest,
}

impl TestBundle {
    pub fn new(name: &str) -> TestBundle {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let dir =
            std::env::temp_dir().join(format!("sammix-contract-{}-{n}-{name}", std::process::id()));
        let real = real_bundle_dir();
        let manifest = Manifest::read(real.join(MANIFEST)).unwrap_or_else(|e| panic!("{e}"));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        // Built at once so that a failure below still removes the folder.
        let b = TestBundle { dir, manifest };

        let text = fs::read_to_string(real.join(MANIFEST)).unwrap();
        let at = text.find("\n[checksums]\n").expect("no [checksums] table") + 1;
        b.write_manifest(&format!("{}[checksums]\n", &text[..at]));
        for role in GraphRole::ALL {
            let file = &b.manifest.graphs.get(role).file;
            fs::copy(real.join(file), b.dir.join(file)).unwrap();
        }
        b
    }

    pub fn write_manifest(&self, text: &str) {
        fs::write(self.dir.join(MANIFEST), text).unwrap();
    }

    /// Sets the manifest's `input.embedding_size` to `e` (in the file and in
    /// [`TestBundle::sizes`]).
    pub fn set_embedding_size(&mut self, e: u32) -> &mut TestBundle {
        let path = self.dir.join(MANIFEST);
        let text = fs::read_to_string(&path).unwrap();
        let old = format!("embedding_size = {}", self.manifest.input.embedding_size);
        assert!(text.contains(&old), "no {old:?} in the manifest");
        self.write_manifest(&text.replacen(&old, &format!("embedding_size = {e}"), 1));
        self.manifest.input.embedding_size = e;
        self
    }

    /// Replaces the first `old` in the manifest's text by `new` (the parsed
    /// [`TestBundle::manifest`] is not updated).
    pub fn edit_manifest(&self, old: &str, new: &str) -> &TestBundle {
        let path = self.dir.join(MANIFEST);
        let text = fs::read_to_string(&path).unwrap();
        assert!(text.contains(old), "no {old:?} in the manifest");
        self.write_manifest(&text.replacen(old, new, 1));
        self
    }

    /// Writes `input = "<value>"` into `[graphs.classifier]` (and into
    /// [`TestBundle::manifest`] when it is a valid value).
    pub fn set_classifier_input(&mut self, value: &str) -> &mut TestBundle {
        let path = self.dir.join(MANIFEST);
        let text = fs::read_to_string(&path).unwrap();
        let table = "[graphs.classifier]\n";
        assert!(text.contains(table), "no {table}");
        let line = format!("{table}input = {value:?}\n");
        self.write_manifest(&text.replacen(table, &line, 1));
        if value == "image_embeddings" {
            self.manifest.graphs.classifier_input = ClassifierInput::ImageEmbeddings;
        }
        self
    }

    /// The path of a graph file in this bundle.
    pub fn graph_path(&self, role: GraphRole) -> PathBuf {
        self.dir.join(&self.manifest.graphs.get(role).file)
    }

    /// Replaces graph `role` by `bytes` and writes its new sha256 into the
    /// manifest (`graphs.<role>.sha256`).
    pub fn replace(&self, role: GraphRole, bytes: &[u8]) -> &TestBundle {
        let path = self.graph_path(role);
        fs::write(&path, bytes).unwrap();
        let digest = sha256_file(&path).unwrap();

        let manifest = self.dir.join(MANIFEST);
        let mut text = fs::read_to_string(&manifest).unwrap();
        let table = format!("[graphs.{}]\n", role.key());
        let table_at = text.find(&table).unwrap_or_else(|| panic!("no {table}"));
        let key = "sha256 = \"";
        let at = table_at + text[table_at..].find(key).expect("no sha256") + key.len();
        text.replace_range(at..at + 64, &digest);
        self.write_manifest(&text);
        self
    }

    /// Replaces graph `role` by a copy of the real bundle's graph `from`.
    pub fn swap(&self, role: GraphRole, from: GraphRole) -> &TestBundle {
        let source = real_bundle_dir().join(&self.manifest.graphs.get(from).file);
        self.replace(role, &fs::read(source).unwrap())
    }

    /// The pipeline with the tract decoder on this bundle, which must open,
    /// and must fail without panicking.
    pub fn pipeline_err(&self) -> PipelineError {
        self.pipeline_err_with(DecoderKind::Tract)
    }

    /// [`TestBundle::pipeline_err`] with the decoder `kind`.
    pub fn pipeline_err_with(&self, kind: DecoderKind) -> PipelineError {
        let bundle = Bundle::open(&self.dir).unwrap_or_else(|e| panic!("Bundle::open: {e}"));
        match catch_unwind(AssertUnwindSafe(|| Pipeline::with_decoder(&bundle, kind))) {
            Ok(Ok(_)) => panic!("Pipeline::new accepted {}", self.dir.display()),
            Ok(Err(e)) => {
                eprintln!("{e}");
                e
            }
            Err(_) => panic!("Pipeline::new panicked on {}", self.dir.display()),
        }
    }

    /// The model sizes of the manifest: (C, S, E).
    pub fn sizes(&self) -> Sizes {
        let i = &self.manifest.input;
        Sizes {
            c: i.channels.into(),
            s: i.size.into(),
            e: i.embedding_size.into(),
        }
    }
}

impl Drop for TestBundle {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.dir);
    }
}

/// Checks the error's variant and that its message holds every one of the
/// expected strings.
#[allow(unused_macros)]
macro_rules! assert_err {
    ($err:expr, $pattern:pat $(if $guard:expr)?, [$($needle:expr),* $(,)?]) => {{
        let err = $err;
        assert!(matches!(&err, $pattern $(if $guard)?), "unexpected error: {err:?}");
        let text = err.to_string();
        $(assert!(text.contains($needle), "{:?} is not in: {text}", $needle);)*
    }};
}

// ---------------------------------------------------------------------------
// Tiny ONNX models

pub const FLOAT: i32 = 1;
pub const INT64: i32 = 7;

/// The manifest's channels C, input size S and embedding size E.
#[derive(Debug, Clone, Copy)]
pub struct Sizes {
    pub c: i64,
    pub s: i64,
    pub e: i64,
}

impl Sizes {
    /// The image input, 1×C×S×S.
    pub fn image(self) -> Vec<i64> {
        vec![1, self.c, self.s, self.s]
    }
}

/// An ONNX graph under construction (opset 17, default domain).
#[derive(Default)]
pub struct Onnx {
    pub graph: pb::GraphProto,
}

impl Onnx {
    /// An f32 input of this shape.
    pub fn input(mut self, name: &str, dims: &[i64]) -> Onnx {
        let dim = dims
            .iter()
            .map(|&v| Dimension {
                value: Some(dimension::Value::DimValue(v)),
                ..Default::default()
            })
            .collect();
        self.graph
            .input
            .push(tensor_info(name, Some(pb::TensorShapeProto { dim })));
        self
    }

    /// An f32 output, its shape left to tract.
    pub fn output(mut self, name: &str) -> Onnx {
        self.graph.output.push(tensor_info(name, None));
        self
    }

    /// An int64 vector initializer.
    pub fn ints(mut self, name: &str, values: &[i64]) -> Onnx {
        self.graph.initializer.push(pb::TensorProto {
            name: name.to_string(),
            dims: vec![values.len() as i64],
            data_type: INT64,
            int64_data: values.to_vec(),
            ..Default::default()
        });
        self
    }

    /// A node with one output, named after it.
    pub fn node(mut self, op: &str, inputs: &[&str], output: &str, attrs: Vec<Attr>) -> Onnx {
        self.graph.node.push(pb::NodeProto {
            op_type: op.to_string(),
            name: output.to_string(),
            input: inputs.iter().map(|s| s.to_string()).collect(),
            output: vec![output.to_string()],
            attribute: attrs.into_iter().map(|a| a.0).collect(),
            ..Default::default()
        });
        self
    }

    /// The encoded model.
    pub fn encode(self) -> Vec<u8> {
        pb::ModelProto {
            ir_version: 8,
            opset_import: vec![pb::OperatorSetIdProto {
                domain: String::new(),
                version: 17,
            }],
            graph: Some(pb::GraphProto {
                name: "contract-test".to_string(),
                ..self.graph
            }),
            ..Default::default()
        }
        .encode_to_vec()
    }
}

pub fn tensor_info(name: &str, shape: Option<pb::TensorShapeProto>) -> pb::ValueInfoProto {
    pb::ValueInfoProto {
        name: name.to_string(),
        r#type: Some(pb::TypeProto {
            value: Some(pb::type_proto::Value::TensorType(pb::type_proto::Tensor {
                elem_type: FLOAT,
                shape,
            })),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// A node attribute.
pub struct Attr(pub pb::AttributeProto);

/// An `INT` attribute.
pub fn int(name: &str, i: i64) -> Attr {
    Attr(pb::AttributeProto {
        name: name.to_string(),
        r#type: 2,
        i,
        ..Default::default()
    })
}

/// An `INTS` attribute.
pub fn ints(name: &str, ints: &[i64]) -> Attr {
    Attr(pb::AttributeProto {
        name: name.to_string(),
        r#type: 7,
        ints: ints.to_vec(),
        ..Default::default()
    })
}

/// Pooling attributes taking S×S to E×E.
pub fn pool_to_cam(z: Sizes) -> Vec<Attr> {
    let k = z.s / z.e;
    vec![ints("kernel_shape", &[k, k]), ints("strides", &[k, k])]
}

/// `input` (1×C×S×S, named `input_name`) → `gray`, its channel mean
/// (1×1×S×S).
pub fn gray_image(z: Sizes, input_name: &str) -> Onnx {
    Onnx::default().input(input_name, &z.image()).node(
        "ReduceMean",
        &[input_name],
        "gray",
        vec![ints("axes", &[1]), int("keepdims", 1)],
    )
}

/// `gray` → `logits` (1×1): its mean.
pub fn add_logits(g: Onnx) -> Onnx {
    g.ints("logits_shape", &[1, 1])
        .node("GlobalAveragePool", &["gray"], "pooled", vec![])
        .node("Reshape", &["pooled", "logits_shape"], "logits", vec![])
        .output("logits")
}

/// `gray` → `cam` (1×1×E×E): `op` pooling S/E × S/E blocks.
pub fn add_cam(g: Onnx, z: Sizes, op: &str) -> Onnx {
    g.node(op, &["gray"], "cam", pool_to_cam(z)).output("cam")
}

/// A classifier that meets the contract but for the name of its input
/// (`image` in the contract).
pub fn classifier_named(z: Sizes, input_name: &str) -> Onnx {
    add_cam(add_logits(gray_image(z, input_name)), z, "AveragePool")
}

/// A classifier on the image embeddings (`graphs.classifier.input =
/// "image_embeddings"`): `image_embeddings` (1×256×`e`×`e`) → `gray`, their
/// channel mean (1×1×E×E), which is the CAM; `logits` its mean.
pub fn embeddings_classifier(z: Sizes) -> Onnx {
    let g = Onnx::default()
        .input("image_embeddings", &[1, EMBED_DIM as i64, z.e, z.e])
        .node(
            "ReduceMean",
            &["image_embeddings"],
            "gray",
            vec![ints("axes", &[1]), int("keepdims", 1)],
        );
    add_logits(g)
        .node("Identity", &["gray"], "cam", vec![])
        .output("cam")
}

/// An encoder: `image` → `image_embeddings` (1×`channels`×E×E), the
/// pooled image broadcast over the channels.
pub fn encoder(z: Sizes, channels: i64) -> Onnx {
    gray_image(z, "image")
        .ints("embed_shape", &[1, channels, z.e, z.e])
        .node("AveragePool", &["gray"], "small", pool_to_cam(z))
        .node(
            "Expand",
            &["small", "embed_shape"],
            "image_embeddings",
            vec![],
        )
        .output("image_embeddings")
}

/// A decoder with the contract's inputs (`orig_im_size` unused):
/// `iou_predictions` (1×`masks`) from the mean of `mask_input`, and
/// `low_res_masks` (1×`masks`×`size`×`size`), `mask_input` (4E×4E) pooled
/// to `size` and broadcast.
pub fn decoder(z: Sizes, masks: i64, size: i64) -> Onnx {
    let n = 4 * z.e;
    let k = n / size;
    Onnx::default()
        .input("image_embeddings", &[1, EMBED_DIM as i64, z.e, z.e])
        .input("point_coords", &[1, 2, 2])
        .input("point_labels", &[1, 2])
        .input("mask_input", &[1, 1, n, n])
        .input("has_mask_input", &[1])
        .input("orig_im_size", &[2])
        .ints("pooled_shape", &[1, 1])
        .ints("iou_shape", &[1, masks])
        .ints("masks_shape", &[1, masks, size, size])
        .node("GlobalAveragePool", &["mask_input"], "pooled", vec![])
        .node("Reshape", &["pooled", "pooled_shape"], "iou", vec![])
        .node("Expand", &["iou", "iou_shape"], "iou_predictions", vec![])
        .node(
            "AveragePool",
            &["mask_input"],
            "small",
            vec![ints("kernel_shape", &[k, k]), ints("strides", &[k, k])],
        )
        .node("Expand", &["small", "masks_shape"], "low_res_masks", vec![])
        .output("iou_predictions")
        .output("low_res_masks")
}
