//! The manifest `sammix.toml`, schema 1 (`models/README.md`): typed fields
//! and parsing. The semantic checks are in `validate.rs`.

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::input::InputParams;
use super::{BundleError, Invalid, TextPos, SCHEMA};

/// The parsed manifest. The field tree mirrors schema 1 exactly; no other
/// key is accepted.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// The schema version, [`SCHEMA`].
    pub schema: u32,
    /// The bundle's name.
    pub name: String,
    /// One line on what the bundle segments.
    pub description: String,
    /// The model input.
    pub input: InputParams,
    /// The CAM → prompt rule's parameters.
    pub prompt: PromptParams,
    /// The presence gate.
    pub gate: GateParams,
    /// Choosing and thresholding the decoder's mask.
    pub decoder: DecoderParams,
    /// When a frame is flagged for review; absent: frames are never flagged.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub confidence: Option<ConfidenceParams>,
    /// The three graphs.
    pub graphs: Graphs,
    /// Path in the bundle (`/`-separated) → sha256 of every file but the
    /// manifest and the graphs.
    pub checksums: BTreeMap<String, String>,
}

/// `[prompt]`: the CAM → prompt rule (`DESIGN.md`).
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct PromptParams {
    /// Fraction of the upsampled CAM's maximum, in (0, 1].
    pub cam_threshold: f32,
    /// Components smaller than this (in S×S pixels) are dropped; at least 1.
    pub min_component_px: u32,
    /// Fraction of S added on each side of the box, in [0, 0.5).
    pub box_margin: f32,
    /// s: `mask_input = s·(2f − 1)`; positive.
    pub dense_logit: f32,
    /// One box (one decoder call) per kept component, largest first, at
    /// most this many; in 1..=4, 1 when absent (the single-box rule).
    #[serde(default = "one")]
    pub max_boxes: u32,
    /// Per box, this many more decoder calls, each with the box of the last
    /// call's mask and its logits as `mask_input`; in 0..=2, 0 when absent.
    #[serde(default)]
    pub refine_rounds: u32,
}

fn one() -> u32 {
    1
}

/// `[gate]`: whether a frame is segmented at all.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct GateParams {
    /// `sigmoid(logits)` below this: no decoder (and no encoder when the
    /// classifier reads the image), empty mask; in [0, 1].
    pub presence_threshold: f32,
}

/// `[decoder]`: which mask is taken, and how it is thresholded.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct DecoderParams {
    /// The mask taken is the one of these (distinct, in 0..=3) with the
    /// highest `iou_predictions`.
    pub mask_tokens: Vec<u32>,
    /// The upsampled `low_res_masks` logits `>` this are the mask.
    pub mask_threshold: f32,
}

/// `[confidence]`: when a frame is flagged for a clinician's review, from
/// what the model already knows. Each rule is off at its neutral value (0).
/// A frame is flagged by the first rule it fails, in this order.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ConfidenceParams {
    /// Flag when the presence probability is within this of
    /// `gate.presence_threshold` (the gate was a near call); in [0, 0.5].
    #[serde(default)]
    pub presence_margin: f32,
    /// Flag a segmented frame whose chosen mask's predicted IoU is below
    /// this; in [0, 1].
    #[serde(default)]
    pub min_iou_prediction: f32,
    /// Flag a frame judged present whose CAM peak (the largest raw CAM
    /// value, the classifier's own units) is below this; at least 0. A
    /// present frame whose CAM gave no prompt is always flagged.
    #[serde(default)]
    pub min_cam_peak: f32,
    /// In a stream, flag a frame whose mask agrees with the previous
    /// frame's by less than this IoU (both empty: 1; one empty: 0); in
    /// [0, 1].
    #[serde(default)]
    pub min_agreement: f32,
}

/// `[graphs]`: the three ONNX graphs.
///
/// In the file, the classifier's input is a key of its own table,
/// `[graphs.classifier] input = "image"` (the default when absent) or
/// `"image_embeddings"`; no other graph has that key.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(from = "GraphsToml", into = "GraphsToml")]
pub struct Graphs {
    /// Image (or image embeddings) → logits, cam.
    pub classifier: GraphEntry,
    /// `graphs.classifier.input`: what the classifier reads.
    pub classifier_input: ClassifierInput,
    /// Image → image embeddings.
    pub encoder: GraphEntry,
    /// The official SAM decoder interface.
    pub decoder: GraphEntry,
}

/// `[graphs]` as written: the classifier's table has `input` besides the
/// entry's keys.
#[derive(Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct GraphsToml {
    classifier: ClassifierToml,
    encoder: GraphEntry,
    decoder: GraphEntry,
}

/// `[graphs.classifier]` as written.
#[derive(Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct ClassifierToml {
    file: String,
    precision: Precision,
    #[serde(default)]
    input: ClassifierInput,
    sha256: String,
}

impl From<GraphsToml> for Graphs {
    fn from(g: GraphsToml) -> Graphs {
        let c = g.classifier;
        Graphs {
            classifier: GraphEntry {
                file: c.file,
                precision: c.precision,
                sha256: c.sha256,
            },
            classifier_input: c.input,
            encoder: g.encoder,
            decoder: g.decoder,
        }
    }
}

impl From<Graphs> for GraphsToml {
    fn from(g: Graphs) -> GraphsToml {
        GraphsToml {
            classifier: ClassifierToml {
                file: g.classifier.file,
                precision: g.classifier.precision,
                input: g.classifier_input,
                sha256: g.classifier.sha256,
            },
            encoder: g.encoder,
            decoder: g.decoder,
        }
    }
}

/// What the classifier graph reads (`graphs.classifier.input`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ClassifierInput {
    /// `image`, 1×C×S×S: the model input, as the encoder's. The classifier
    /// runs first and gates the encoder.
    #[default]
    Image,
    /// `image_embeddings`, 1×256×E×E: the encoder's output (a presence/CAM
    /// head trained on the foundation's embeddings). The encoder runs
    /// first, on every frame.
    ImageEmbeddings,
}

impl ClassifierInput {
    /// The manifest's spelling, which is also the graph input's name.
    pub fn as_str(self) -> &'static str {
        match self {
            ClassifierInput::Image => "image",
            ClassifierInput::ImageEmbeddings => "image_embeddings",
        }
    }
}

impl fmt::Display for ClassifierInput {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Graphs {
    /// The entry of one graph.
    pub fn get(&self, role: GraphRole) -> &GraphEntry {
        match role {
            GraphRole::Classifier => &self.classifier,
            GraphRole::Encoder => &self.encoder,
            GraphRole::Decoder => &self.decoder,
        }
    }
}

/// Which of the three graphs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum GraphRole {
    /// `graphs.classifier`.
    Classifier,
    /// `graphs.encoder`.
    Encoder,
    /// `graphs.decoder`.
    Decoder,
}

impl GraphRole {
    /// The three roles, in manifest order.
    pub const ALL: [GraphRole; 3] = [
        GraphRole::Classifier,
        GraphRole::Encoder,
        GraphRole::Decoder,
    ];

    /// The key under `[graphs]`.
    pub fn key(self) -> &'static str {
        match self {
            GraphRole::Classifier => "classifier",
            GraphRole::Encoder => "encoder",
            GraphRole::Decoder => "decoder",
        }
    }
}

impl fmt::Display for GraphRole {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.key())
    }
}

/// `[graphs.<role>]`: one graph file.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct GraphEntry {
    /// Path in the bundle (`/`-separated).
    pub file: String,
    /// How the graph is quantized.
    pub precision: Precision,
    /// sha256 of the file, 64 lowercase hex digits.
    pub sha256: String,
}

/// How a graph is quantized.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize, Serialize)]
pub enum Precision {
    /// Plain `f32`.
    #[serde(rename = "f32")]
    F32,
    /// Dynamic int8 (`MatMulInteger` / `ConvInteger`).
    #[serde(rename = "int8-dynamic")]
    Int8Dynamic,
    /// Static int8 as `QuantizeLinear` / `DequantizeLinear` pairs.
    #[serde(rename = "int8-qdq")]
    Int8Qdq,
    /// Float initializers stored as float16, each behind a `Cast` to float:
    /// half the bytes, f32 compute (the engine folds the casts at load).
    #[serde(rename = "f16-stored")]
    F16Stored,
    /// `MatMul` weights stored as int8 per output channel behind a
    /// `DequantizeLinear`, the other floats f16-stored: f32 compute.
    #[serde(rename = "int8-weights")]
    Int8Weights,
}

impl Precision {
    /// The manifest's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Precision::F32 => "f32",
            Precision::Int8Dynamic => "int8-dynamic",
            Precision::Int8Qdq => "int8-qdq",
            Precision::F16Stored => "f16-stored",
            Precision::Int8Weights => "int8-weights",
        }
    }
}

impl fmt::Display for Precision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Manifest {
    /// Parses and validates manifest text; `path` names it in errors.
    ///
    /// A `schema` other than 1 is reported before any other field, so that a
    /// manifest of another version is not refused for its unknown keys.
    pub fn parse(text: &str, path: &Path) -> Result<Manifest, BundleError> {
        /// Only the schema version; everything else is ignored.
        #[derive(Deserialize)]
        struct Version {
            schema: Option<toml::Value>,
        }
        let version: Version = toml::from_str(text).map_err(|e| syntax_error(path, text, &e))?;
        if let Some(toml::Value::Integer(found)) = version.schema {
            if found != i64::from(SCHEMA) {
                return Err(BundleError::Invalid {
                    path: path.to_path_buf(),
                    field: "schema".to_string(),
                    problem: Invalid::Schema { found },
                });
            }
        }
        let de = toml::Deserializer::parse(text).map_err(|e| syntax_error(path, text, &e))?;
        let manifest: Manifest =
            serde_path_to_error::deserialize(de).map_err(|e| field_error(path, text, &e))?;
        manifest.validate(path)?;
        Ok(manifest)
    }

    /// Reads, parses and validates a manifest file (without checking the
    /// files it lists: see [`super::Bundle::open`]).
    pub fn read(path: impl AsRef<Path>) -> Result<Manifest, BundleError> {
        let path = path.as_ref();
        let bytes = read_bytes(path)?;
        Manifest::from_bytes(&bytes, path)
    }

    /// Parses and validates manifest bytes read from `path` (named in
    /// errors): UTF-8 first, then [`Manifest::parse`].
    pub fn from_bytes(bytes: &[u8], path: &Path) -> Result<Manifest, BundleError> {
        let text = std::str::from_utf8(bytes).map_err(|e| {
            let valid = &bytes[..e.valid_up_to()];
            // The prefix is valid UTF-8 by construction.
            let prefix = std::str::from_utf8(valid).unwrap_or_default();
            BundleError::Toml {
                path: path.to_path_buf(),
                at: Some(TextPos::of_offset(prefix, prefix.len())),
                message: "not UTF-8 (TOML files are UTF-8)".to_string(),
            }
        })?;
        Manifest::parse(text, path)
    }
}

/// The manifest file's bytes ([`BundleError::MissingManifest`] when absent).
pub(super) fn read_bytes(path: &Path) -> Result<Vec<u8>, BundleError> {
    std::fs::read(path).map_err(|source| match source.kind() {
        std::io::ErrorKind::NotFound => BundleError::MissingManifest {
            path: path.to_path_buf(),
        },
        _ => BundleError::Io {
            path: path.to_path_buf(),
            source,
        },
    })
}

fn syntax_error(path: &Path, text: &str, e: &toml::de::Error) -> BundleError {
    BundleError::Toml {
        path: path.to_path_buf(),
        at: e.span().map(|s| TextPos::of_offset(text, s.start)),
        message: e.message().trim_end().to_string(),
    }
}

/// Turns a deserialization error into [`BundleError::UnknownField`],
/// [`BundleError::MissingField`] or [`BundleError::WrongType`].
///
/// serde reports these through `toml::de::Error` as messages built by
/// `serde::de::Error`'s default methods (`unknown field `x`, expected ...`,
/// `missing field `x``); anything else is a type or value error.
fn field_error(
    path: &Path,
    text: &str,
    e: &serde_path_to_error::Error<toml::de::Error>,
) -> BundleError {
    let inner = e.inner();
    let at = inner.span().map(|s| TextPos::of_offset(text, s.start));
    let parent = dotted(e.path());
    let message = inner.message().trim_end();
    let path = path.to_path_buf();
    if let Some((key, rest)) = backticked(message, "unknown field `") {
        // The path already ends with the unknown key.
        let named = matches!(
            e.path().iter().next_back(),
            Some(serde_path_to_error::Segment::Map { key: last }) if last == key
        );
        return BundleError::UnknownField {
            path,
            field: if named { parent } else { join(&parent, key) },
            at,
            expected: rest.trim_start_matches(", ").to_string(),
        };
    }
    if let Some((key, _)) = backticked(message, "missing field `") {
        return BundleError::MissingField {
            path,
            field: join(&parent, key),
            at,
        };
    }
    let detail = plain_types(message);
    BundleError::WrongType {
        path,
        field: parent,
        at,
        detail,
    }
}

/// serde's message with Rust type names said as manifest authors know them.
fn plain_types(message: &str) -> String {
    if message == "wanted string or table" {
        // toml's message for a non-string where an enum is expected.
        return "invalid type: expected a string".to_string();
    }
    for (rust, plain) in [
        ("expected u32", "expected a non-negative integer"),
        ("expected f32", "expected a number"),
        ("expected a sequence", "expected an array"),
        ("expected a map", "expected a table"),
    ] {
        if let Some(head) = message.strip_suffix(rust) {
            return format!("{head}{plain}");
        }
    }
    message.to_string()
}

/// `message` = `prefix` + key + `` ` `` + rest → (key, rest).
fn backticked<'m>(message: &'m str, prefix: &str) -> Option<(&'m str, &'m str)> {
    message.strip_prefix(prefix)?.split_once('`')
}

/// A serde path as a dotted TOML field: `graphs.encoder.sha256`,
/// `input.mean[1]`, `checksums."demo/clip.y4m"`.
fn dotted(path: &serde_path_to_error::Path) -> String {
    use serde_path_to_error::Segment;
    let mut out = String::new();
    for segment in path.iter() {
        match segment {
            Segment::Seq { index } => out.push_str(&format!("[{index}]")),
            Segment::Map { key } | Segment::Enum { variant: key } => {
                out = join(&out, key);
            }
            Segment::Unknown => out = join(&out, "?"),
        }
    }
    out
}

/// `parent.key`, with `key` quoted when it is not a bare TOML key.
pub(super) fn join(parent: &str, key: &str) -> String {
    let bare = !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    let key = if bare {
        key.to_string()
    } else {
        format!("{key:?}")
    };
    if parent.is_empty() {
        key
    } else {
        format!("{parent}.{key}")
    }
}
