//! Parsing the manifest: syntax, key tree and types, messages. The helpers
//! here build manifests for `validate_tests.rs` too.

use std::path::Path;

use super::*;

pub(super) const SHA_A: &str = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";

/// A valid manifest, in the layout the recipe writes.
pub(super) fn valid() -> String {
    format!(
        r#"# sammix bundle manifest: see models/README.md for the schema.
schema = 1
name = "test-bundle"
description = "a test"

[input]
size = 256
channels = 1
embedding_size = 16
mean = [127.5]
std = [64.0]
resize = "bilinear"

[prompt]
cam_threshold = 0.5
min_component_px = 16
box_margin = 0.02
dense_logit = 8.0

[gate]
presence_threshold = 0.5

[decoder]
mask_tokens = [1, 2, 3]
mask_threshold = 0.0

[graphs.classifier]
file = "classifier.onnx"
precision = "int8-dynamic"
sha256 = "{SHA_A}"

[graphs.encoder]
file = "encoder.onnx"
precision = "f32"
sha256 = "{SHA_A}"

[graphs.decoder]
file = "decoder.onnx"
precision = "int8-qdq"
sha256 = "{SHA_A}"

[checksums]
"MODEL_CARD.md" = "{SHA_A}"
"demo/clip.y4m" = "{SHA_A}"
"#
    )
}

/// `valid()` with the line starting with `key =` after `[table]` replaced by
/// `line` (or removed when `line` is empty).
pub(super) fn with(table: &str, key: &str, line: &str) -> String {
    let text = valid();
    let mut out = String::new();
    let mut current = String::new();
    let mut done = false;
    for l in text.lines() {
        if l.starts_with('[') {
            current = l.trim_matches(['[', ']']).to_string();
        }
        if !done && current == table && l.split('=').next().map(str::trim) == Some(key) {
            done = true;
            if !line.is_empty() {
                out.push_str(line);
                out.push('\n');
            }
            continue;
        }
        out.push_str(l);
        out.push('\n');
    }
    assert!(done, "no {key} in [{table}]");
    out
}

pub(super) fn parse(text: &str) -> Result<Manifest, BundleError> {
    Manifest::parse(text, Path::new("b/sammix.toml"))
}

pub(super) fn err(text: &str) -> BundleError {
    match parse(text) {
        Ok(_) => panic!("accepted:\n{text}"),
        Err(e) => e,
    }
}

/// The field and problem of an [`BundleError::Invalid`].
pub(super) fn invalid(text: &str) -> (String, Invalid) {
    match err(text) {
        BundleError::Invalid { field, problem, .. } => (field, problem),
        other => panic!("expected Invalid, got {other:?}: {other}"),
    }
}

#[test]
fn parses_a_valid_manifest() {
    let m = parse(&valid()).unwrap();
    assert_eq!(m.schema, 1);
    assert_eq!(m.name, "test-bundle");
    assert_eq!(m.input.size, 256);
    assert_eq!(m.input.embedding_size, 16);
    assert_eq!(m.input.mean, vec![127.5]);
    assert_eq!(m.input.resize, Resize::Bilinear);
    assert_eq!(m.prompt.min_component_px, 16);
    assert_eq!(m.decoder.mask_tokens, vec![1, 2, 3]);
    assert_eq!(m.graphs.classifier.precision, Precision::Int8Dynamic);
    assert_eq!(m.graphs.encoder.precision, Precision::F32);
    assert_eq!(
        m.graphs.get(GraphRole::Decoder).precision,
        Precision::Int8Qdq
    );
    assert_eq!(m.graphs.decoder.file, "decoder.onnx");
    let keys: Vec<&str> = m.checksums.keys().map(String::as_str).collect();
    assert_eq!(keys, ["MODEL_CARD.md", "demo/clip.y4m"]);
}

#[test]
fn integers_are_accepted_for_floats() {
    let m = parse(&with("input", "mean", "mean = [127]")).unwrap();
    assert_eq!(m.input.mean, vec![127.0]);
}

#[test]
fn bad_toml_has_line_and_column() {
    let text = with("prompt", "box_margin", "box_margin = = 0.1");
    let e = err(&text);
    let BundleError::Toml { at, .. } = &e else {
        panic!("expected Toml, got {e:?}")
    };
    let line = text
        .lines()
        .position(|l| l.starts_with("box_margin"))
        .unwrap()
        + 1;
    assert_eq!(at.map(|p| p.line), Some(line), "{e}");
    assert!(
        e.to_string().starts_with(&format!("b/sammix.toml:{line}:")),
        "{e}"
    );
}

#[test]
fn unknown_fields_are_named_with_their_table() {
    let cases = [
        (
            valid().replace("description = ", "extra = 1\ndescription = "),
            "extra",
        ),
        (
            valid().replace("[input]\n", "[input]\nsizes = 3\n"),
            "input.sizes",
        ),
        (
            valid().replace("[gate]\n", "[gate]\nthreshold = 0.5\n"),
            "gate.threshold",
        ),
        (
            valid().replace("[graphs.encoder]\n", "[graphs.encoder]\nopset = 17\n"),
            "graphs.encoder.opset",
        ),
        (
            valid().replace("schema = 1\n", "schema = 1\nversion = 2\n"),
            "version",
        ),
        (format!("{}[extra]\nx = 1\n", valid()), "extra"),
    ];
    for (text, field) in cases {
        match err(&text) {
            BundleError::UnknownField {
                field: f,
                expected,
                at,
                ..
            } => {
                assert_eq!(f, field);
                assert!(at.is_some(), "{field}");
                if field == "input.sizes" {
                    assert!(expected.contains("`size`"), "{expected}");
                }
            }
            other => panic!("{field}: expected UnknownField, got {other:?}: {other}"),
        }
    }
}

#[test]
fn missing_fields_are_named_with_their_table() {
    let cases = [
        (with("input", "std", ""), "input.std"),
        (with("prompt", "dense_logit", ""), "prompt.dense_logit"),
        (
            with("graphs.decoder", "sha256", ""),
            "graphs.decoder.sha256",
        ),
        (with("", "name", ""), "name"),
        (valid().replace("schema = 1\n", ""), "schema"),
    ];
    for (text, field) in cases {
        match err(&text) {
            BundleError::MissingField { field: f, .. } => assert_eq!(f, field),
            other => panic!("{field}: expected MissingField, got {other:?}: {other}"),
        }
    }
    // A whole table.
    let text = valid().replace("[gate]\npresence_threshold = 0.5\n", "");
    match err(&text) {
        BundleError::MissingField { field, .. } => assert_eq!(field, "gate"),
        other => panic!("expected MissingField, got {other:?}"),
    }
}

#[test]
fn wrong_types_are_named_with_the_expectation() {
    let cases = [
        (
            with("input", "size", r#"size = "256""#),
            "input.size",
            "expected a non-negative integer",
        ),
        (
            with("input", "size", "size = -256"),
            "input.size",
            "integer `-256`",
        ),
        (
            with("input", "size", "size = 256.0"),
            "input.size",
            "integer",
        ),
        (
            with("input", "mean", r#"mean = ["a"]"#),
            "input.mean[0]",
            "expected a number",
        ),
        (
            with("input", "std", "std = 64.0"),
            "input.std",
            "expected an array",
        ),
        (
            with("input", "resize", r#"resize = "bicubic""#),
            "input.resize",
            "`bilinear`",
        ),
        (
            with("input", "resize", "resize = 1"),
            "input.resize",
            "expected a string",
        ),
        (
            valid().replace("channels = 1\n", "channels = 1\ncolor = \"bgr\"\n"),
            "input.color",
            "unknown variant `bgr`, expected `gray` or `rgb`",
        ),
        (
            valid().replace("channels = 1\n", "channels = 1\ncolor = 3\n"),
            "input.color",
            "expected a string",
        ),
        (
            with("graphs.encoder", "precision", r#"precision = "f16""#),
            "graphs.encoder.precision",
            "`int8-dynamic`",
        ),
        (
            with("decoder", "mask_tokens", "mask_tokens = [1, -2]"),
            "decoder.mask_tokens[1]",
            "non-negative integer",
        ),
        (with("", "name", "name = 3"), "name", "string"),
        (
            valid().replace(
                &format!("\"MODEL_CARD.md\" = \"{SHA_A}\""),
                "\"MODEL_CARD.md\" = 1",
            ),
            "checksums.\"MODEL_CARD.md\"",
            "string",
        ),
    ];
    for (text, field, expected) in cases {
        match err(&text) {
            BundleError::WrongType {
                field: f, detail, ..
            } => {
                assert_eq!(f, field);
                assert!(detail.contains(expected), "{field}: {detail}");
            }
            other => panic!("{field}: expected WrongType, got {other:?}: {other}"),
        }
    }
}

#[test]
fn other_schema_versions_are_refused_first() {
    // Even with keys schema 1 does not know.
    let text = valid().replace("schema = 1\n", "schema = 2\nnew_key = 1\n");
    assert_eq!(
        invalid(&text),
        ("schema".to_string(), Invalid::Schema { found: 2 })
    );
    let text = valid().replace("schema = 1\n", "schema = -1\n");
    assert_eq!(invalid(&text).1, Invalid::Schema { found: -1 });
}

#[test]
fn messages_name_the_file_the_field_and_the_expectation() {
    let e = err(&with("prompt", "box_margin", "box_margin = 0.7"));
    assert_eq!(
        e.to_string(),
        "b/sammix.toml: field `prompt.box_margin`: expected a value in [0, 0.5), found 0.7"
    );
    let e = err(&with("input", "std", ""));
    let msg = e.to_string();
    assert!(msg.starts_with("b/sammix.toml:"), "{msg}");
    assert!(msg.contains("missing field `input.std`"), "{msg}");
    let e = err(&valid().replace("[input]\n", "[input]\nsizes = 3\n"));
    let msg = e.to_string();
    assert!(
        msg.starts_with("b/sammix.toml:7:1: unknown field `input.sizes`"),
        "{msg}"
    );
    let e = err(&with("input", "size", r#"size = "256""#));
    let msg = e.to_string();
    assert!(
        msg.contains("field `input.size`: invalid type: string \"256\""),
        "{msg}"
    );
}

#[test]
fn text_positions_count_lines_and_characters() {
    let text = "a = 1\nbé = x\n";
    assert_eq!(TextPos::of_offset(text, 0), TextPos { line: 1, column: 1 });
    assert_eq!(TextPos::of_offset(text, 6), TextPos { line: 2, column: 1 });
    // After "bé " (4 bytes, 3 characters).
    assert_eq!(TextPos::of_offset(text, 10), TextPos { line: 2, column: 4 });
    // Inside a character, and past the end: clamped, no panic.
    assert_eq!(TextPos::of_offset(text, 8), TextPos { line: 2, column: 2 });
    assert_eq!(TextPos::of_offset(text, 999).line, 3);
}

#[test]
fn non_utf8_manifests_are_toml_errors() {
    let dir = std::env::temp_dir().join(format!("sammix-bundle-unit-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(MANIFEST);
    std::fs::write(&path, b"schema = 1\nname = \"\xff\"\n").unwrap();
    let e = Manifest::read(&path).unwrap_err();
    std::fs::remove_dir_all(&dir).unwrap();
    match e {
        BundleError::Toml { at, .. } => assert_eq!(at, Some(TextPos { line: 2, column: 9 })),
        other => panic!("expected Toml, got {other:?}"),
    }
}

#[test]
fn the_classifier_reads_the_image_unless_told_otherwise() {
    let m = parse(&valid()).unwrap();
    assert_eq!(m.graphs.classifier_input, ClassifierInput::Image);
    let with_input = |line: &str| {
        valid().replace(
            "[graphs.classifier]\n",
            &format!("[graphs.classifier]\n{line}\n"),
        )
    };
    let m = parse(&with_input(r#"input = "image_embeddings""#)).unwrap();
    assert_eq!(m.graphs.classifier_input, ClassifierInput::ImageEmbeddings);
    assert_eq!(m.graphs.classifier.file, "classifier.onnx");
    let m = parse(&with_input(r#"input = "image""#)).unwrap();
    assert_eq!(m.graphs.classifier_input, ClassifierInput::Image);

    // Anything else: the field and the values allowed.
    for (line, detail) in [
        (
            r#"input = "embeddings""#,
            "expected `image` or `image_embeddings`",
        ),
        (
            r#"input = "Image""#,
            "expected `image` or `image_embeddings`",
        ),
        ("input = 1", "expected a string"),
    ] {
        match err(&with_input(line)) {
            BundleError::WrongType {
                field, detail: d, ..
            } => {
                assert_eq!(field, "graphs.classifier.input", "{line}");
                assert!(d.contains(detail), "{line}: {d}");
            }
            other => panic!("{line}: expected WrongType, got {other:?}: {other}"),
        }
    }
    // Only the classifier has the key.
    let text = valid().replace(
        "[graphs.encoder]\n",
        "[graphs.encoder]\ninput = \"image\"\n",
    );
    match err(&text) {
        BundleError::UnknownField { field, .. } => assert_eq!(field, "graphs.encoder.input"),
        other => panic!("expected UnknownField, got {other:?}: {other}"),
    }
    // Unknown keys of the classifier's table are still named, with `input`
    // among those allowed.
    match err(&with_input("opset = 17")) {
        BundleError::UnknownField {
            field, expected, ..
        } => {
            assert_eq!(field, "graphs.classifier.opset");
            assert!(expected.contains("`input`"), "{expected}");
        }
        other => panic!("expected UnknownField, got {other:?}: {other}"),
    }
    // Written back (`sammix info --json`) under the classifier's table.
    let m = parse(&with_input(r#"input = "image_embeddings""#)).unwrap();
    let v = serde_json::to_value(&m).unwrap();
    assert_eq!(v["graphs"]["classifier"]["input"], "image_embeddings");
    assert_eq!(v["graphs"]["classifier"]["file"], "classifier.onnx");
    assert!(v["graphs"].get("classifier_input").is_none(), "{v}");
}

#[test]
fn parses_the_stored_precisions() {
    for (text, want) in [
        ("f16-stored", Precision::F16Stored),
        ("int8-weights", Precision::Int8Weights),
    ] {
        let manifest =
            valid().replacen("precision = \"f32\"", &format!("precision = \"{text}\""), 1);
        let m = parse(&manifest).unwrap();
        assert_eq!(m.graphs.encoder.precision, want);
        assert_eq!(want.as_str(), text);
    }
}
