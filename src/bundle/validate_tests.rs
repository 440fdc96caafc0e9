//! The semantic checks of the manifest (`validate.rs`), without files.

use super::tests::{err, invalid, parse, valid, with, SHA_A};
use super::*;
use crate::frame::PixelFormat;

#[test]
fn input_values_are_checked() {
    let cases: Vec<(String, &str, Invalid)> = vec![
        (
            with("input", "size", "size = 0"),
            "input.size",
            Invalid::Size { found: 0 },
        ),
        (
            with("input", "size", "size = 250"),
            "input.size",
            Invalid::Size { found: 250 },
        ),
        (
            with("input", "channels", "channels = 0"),
            "input.channels",
            Invalid::TooSmall { min: 1, found: 0 },
        ),
        (
            with("input", "embedding_size", "embedding_size = 0"),
            "input.embedding_size",
            Invalid::TooSmall { min: 1, found: 0 },
        ),
        (
            // 4E = 192 does not divide S = 256.
            with("input", "embedding_size", "embedding_size = 48"),
            "input.embedding_size",
            Invalid::EmbeddingSize {
                size: 256,
                found: 48,
            },
        ),
        (
            // 4E = 512 is larger than S.
            with("input", "embedding_size", "embedding_size = 128"),
            "input.embedding_size",
            Invalid::EmbeddingSize {
                size: 256,
                found: 128,
            },
        ),
        (
            with("input", "mean", "mean = [1.0, 2.0, 3.0]"),
            "input.mean",
            Invalid::Length {
                expected: 1,
                found: 3,
            },
        ),
        (
            with("input", "std", "std = []"),
            "input.std",
            Invalid::Length {
                expected: 1,
                found: 0,
            },
        ),
        (
            with("input", "std", "std = [0.0]"),
            "input.std[0]",
            Invalid::OutOfRange {
                expected: "> 0",
                found: 0.0,
            },
        ),
        (
            with("input", "std", "std = [-1.0]"),
            "input.std[0]",
            Invalid::OutOfRange {
                expected: "> 0",
                found: -1.0,
            },
        ),
        (
            with("input", "mean", "mean = [inf]"),
            "input.mean[0]",
            Invalid::NonFinite {
                found: f32::INFINITY,
            },
        ),
        (
            with("input", "mean", "mean = [1e300]"),
            "input.mean[0]",
            Invalid::NonFinite {
                found: f32::INFINITY,
            },
        ),
    ];
    for (text, field, problem) in cases {
        assert_eq!(invalid(&text), (field.to_string(), problem), "{field}");
    }
    let (field, problem) = invalid(&with("input", "std", "std = [nan]"));
    assert_eq!(field, "input.std[0]");
    assert!(matches!(problem, Invalid::NonFinite { found } if found.is_nan()));
    // Three channels with three values each are fine.
    let text = with("input", "channels", "channels = 3")
        .replace("mean = [127.5]", "mean = [1, 2, 3]")
        .replace("std = [64.0]", "std = [1, 2, 3]");
    assert_eq!(parse(&text).unwrap().input.std, vec![1.0, 2.0, 3.0]);
}

/// E is the graphs' (the contract checks it at load): any E whose 4E
/// divides S is a valid manifest, not only S / 16.
#[test]
fn any_embedding_size_whose_dense_prompt_tiles_the_input() {
    // LiteMedSAM: S = 256, E = 64 (dense prompt 256×256, one pixel a cell).
    for e in [64, 32, 16, 1] {
        let m = parse(&with(
            "input",
            "embedding_size",
            &format!("embedding_size = {e}"),
        ))
        .unwrap_or_else(|err| panic!("E = {e}: {err}"));
        assert_eq!(m.input.embedding_size, e);
    }
    // SAM ViT-B: S = 1024, E = 64.
    let text =
        with("input", "size", "size = 1024").replace("embedding_size = 16", "embedding_size = 64");
    assert_eq!(parse(&text).unwrap().input.embedding_size, 64);
    // The message names the field, S and what 4E must do.
    let text = err(&with("input", "embedding_size", "embedding_size = 48")).to_string();
    assert!(
        text.contains("`input.embedding_size`")
            && text.contains("4E divides input.size = 256")
            && text.contains("found 48"),
        "{text}"
    );
}

#[test]
fn thresholds_are_checked() {
    let range = |field: &str, line: &str, expected: &'static str, found: f32| {
        let (table, key) = field.split_once('.').unwrap();
        let got = invalid(&with(table, key, line));
        assert_eq!(
            got,
            (field.to_string(), Invalid::OutOfRange { expected, found })
        );
    };
    range(
        "prompt.cam_threshold",
        "cam_threshold = 0.0",
        "in (0, 1]",
        0.0,
    );
    range(
        "prompt.cam_threshold",
        "cam_threshold = 1.5",
        "in (0, 1]",
        1.5,
    );
    range("prompt.box_margin", "box_margin = 0.5", "in [0, 0.5)", 0.5);
    range(
        "prompt.box_margin",
        "box_margin = -0.1",
        "in [0, 0.5)",
        -0.1,
    );
    range("prompt.dense_logit", "dense_logit = 0.0", "> 0", 0.0);
    range(
        "gate.presence_threshold",
        "presence_threshold = 1.01",
        "in [0, 1]",
        1.01,
    );
    range(
        "gate.presence_threshold",
        "presence_threshold = -0.01",
        "in [0, 1]",
        -0.01,
    );
    assert_eq!(
        invalid(&with("prompt", "min_component_px", "min_component_px = 0")),
        (
            "prompt.min_component_px".to_string(),
            Invalid::TooSmall { min: 1, found: 0 }
        )
    );
    let (field, problem) = invalid(&with("prompt", "dense_logit", "dense_logit = inf"));
    assert_eq!(field, "prompt.dense_logit");
    assert!(matches!(problem, Invalid::NonFinite { .. }));
    let (field, problem) = invalid(&with("prompt", "cam_threshold", "cam_threshold = nan"));
    assert_eq!(field, "prompt.cam_threshold");
    assert!(matches!(problem, Invalid::NonFinite { .. }));
    let (field, _) = invalid(&with("decoder", "mask_threshold", "mask_threshold = -inf"));
    assert_eq!(field, "decoder.mask_threshold");
    // The bounds that are allowed.
    for (table, key, line) in [
        ("prompt", "cam_threshold", "cam_threshold = 1.0"),
        ("prompt", "box_margin", "box_margin = 0.0"),
        ("gate", "presence_threshold", "presence_threshold = 0.0"),
        ("gate", "presence_threshold", "presence_threshold = 1.0"),
        ("decoder", "mask_threshold", "mask_threshold = -2.5"),
    ] {
        parse(&with(table, key, line)).unwrap();
    }
}

#[test]
fn mask_tokens_are_checked() {
    let tokens = |line: &str| invalid(&with("decoder", "mask_tokens", line));
    assert_eq!(
        tokens("mask_tokens = []"),
        ("decoder.mask_tokens".to_string(), Invalid::NoMaskTokens)
    );
    assert_eq!(
        tokens("mask_tokens = [0, 4]"),
        (
            "decoder.mask_tokens[1]".to_string(),
            Invalid::MaskToken { found: 4 }
        )
    );
    assert_eq!(
        tokens("mask_tokens = [2, 1, 2]"),
        (
            "decoder.mask_tokens[2]".to_string(),
            Invalid::DuplicateMaskToken { token: 2 }
        )
    );
    let m = parse(&with("decoder", "mask_tokens", "mask_tokens = [0]")).unwrap();
    assert_eq!(m.decoder.mask_tokens, vec![0]);
}

#[test]
fn digests_are_64_lowercase_hex() {
    let upper = SHA_A.to_uppercase();
    let short = &SHA_A[..63];
    let not_hex = format!("{}g", &SHA_A[..63]);
    for bad in [upper.as_str(), short, not_hex.as_str(), ""] {
        let text = with("graphs.encoder", "sha256", &format!("sha256 = \"{bad}\""));
        assert_eq!(
            invalid(&text),
            (
                "graphs.encoder.sha256".to_string(),
                Invalid::Sha256 {
                    found: bad.to_string()
                }
            )
        );
    }
    let text = valid().replace(
        &format!("\"demo/clip.y4m\" = \"{SHA_A}\""),
        "\"demo/clip.y4m\" = \"abc\"",
    );
    let (field, problem) = invalid(&text);
    assert_eq!(field, "checksums.\"demo/clip.y4m\"");
    assert!(matches!(problem, Invalid::Sha256 { .. }));
}

#[test]
fn paths_are_checked() {
    let file = |path: &str| err(&with("graphs.encoder", "file", &format!("file = {path:?}")));
    for path in [
        "../encoder.onnx",
        "a/../../encoder.onnx",
        "/etc/passwd",
        "C:/x.onnx",
    ] {
        match file(path) {
            BundleError::OutsideBundle { field, entry, .. } => {
                assert_eq!(field, "graphs.encoder.file");
                assert_eq!(entry, path);
            }
            other => panic!("{path}: expected OutsideBundle, got {other:?}"),
        }
    }
    for path in [
        "",
        "./encoder.onnx",
        "a//encoder.onnx",
        "a\\encoder.onnx",
        "a/",
    ] {
        match file(path) {
            BundleError::Invalid {
                field,
                problem: Invalid::PathForm { found },
                ..
            } => {
                assert_eq!(field, "graphs.encoder.file");
                assert_eq!(found, path);
            }
            other => panic!("{path:?}: expected PathForm, got {other:?}"),
        }
    }
    // Checksum keys too.
    let text = format!("{}\"../x\" = \"{SHA_A}\"\n", valid());
    match err(&text) {
        BundleError::OutsideBundle { field, .. } => assert_eq!(field, "checksums.\"../x\""),
        other => panic!("expected OutsideBundle, got {other:?}"),
    }
    let text = format!("{}\"sammix.toml\" = \"{SHA_A}\"\n", valid());
    assert_eq!(
        invalid(&text),
        (
            "checksums.\"sammix.toml\"".to_string(),
            Invalid::ListsManifest
        )
    );
}

#[test]
fn every_file_is_listed_once() {
    let text = with("graphs.decoder", "file", "file = \"encoder.onnx\"");
    assert_eq!(
        invalid(&text),
        (
            "graphs.decoder.file".to_string(),
            Invalid::DuplicatePath {
                found: "encoder.onnx".to_string(),
                first: "graphs.encoder.file".to_string()
            }
        )
    );
    let text = format!("{}\"encoder.onnx\" = \"{SHA_A}\"\n", valid());
    let (field, problem) = invalid(&text);
    assert_eq!(field, "checksums.\"encoder.onnx\"");
    assert!(matches!(problem, Invalid::DuplicatePath { .. }));
}

#[test]
fn the_first_failure_in_schema_order_is_reported() {
    let text = with("input", "size", "size = 250")
        .replace("presence_threshold = 0.5", "presence_threshold = 2.0");
    assert_eq!(invalid(&text).0, "input.size");
}

#[test]
fn boxes_and_refinement_are_optional_and_bounded() {
    let prompt = |lines: &str| {
        valid().replace(
            "dense_logit = 8.0\n",
            &format!("dense_logit = 8.0\n{lines}"),
        )
    };
    // Absent: the single-box rule, no refinement.
    let m = parse(&valid()).unwrap();
    assert_eq!((m.prompt.max_boxes, m.prompt.refine_rounds), (1, 0));
    for (boxes, rounds) in [(1, 0), (4, 2), (2, 1)] {
        let text = prompt(&format!("max_boxes = {boxes}\nrefine_rounds = {rounds}\n"));
        let m = parse(&text).unwrap();
        assert_eq!(
            (m.prompt.max_boxes, m.prompt.refine_rounds),
            (boxes, rounds)
        );
    }
    for (line, field, min, max, found) in [
        ("max_boxes = 0\n", "prompt.max_boxes", 1, 4, 0),
        ("max_boxes = 5\n", "prompt.max_boxes", 1, 4, 5),
        ("refine_rounds = 3\n", "prompt.refine_rounds", 0, 2, 3),
    ] {
        assert_eq!(
            invalid(&prompt(line)),
            (
                field.to_string(),
                Invalid::IntOutOfRange { min, max, found }
            ),
            "{line}"
        );
    }
    let text = err(&prompt("max_boxes = 9\n")).to_string();
    assert!(
        text.contains("field `prompt.max_boxes`: expected an integer in 1..=4, found 9"),
        "{text}"
    );
    // A negative count is a type error, named too.
    match err(&prompt("refine_rounds = -1\n")) {
        BundleError::WrongType { field, .. } => assert_eq!(field, "prompt.refine_rounds"),
        other => panic!("expected WrongType, got {other:?}"),
    }
}

#[test]
fn confidence_rules_are_optional_and_bounded() {
    let confidence = |lines: &str| {
        valid().replace(
            "\n[graphs.classifier]",
            &format!("\n[confidence]\n{lines}\n[graphs.classifier]"),
        )
    };
    // Absent: no frame is flagged.
    assert_eq!(parse(&valid()).unwrap().confidence, None);
    // Each key defaults to 0 (off).
    let m = parse(&confidence("min_iou_prediction = 0.8\n")).unwrap();
    assert_eq!(
        m.confidence,
        Some(ConfidenceParams {
            presence_margin: 0.0,
            min_iou_prediction: 0.8,
            min_cam_peak: 0.0,
            min_agreement: 0.0,
        })
    );
    let all = "presence_margin = 0.5\nmin_iou_prediction = 1.0\nmin_cam_peak = 12.5\nmin_agreement = 1.0\n";
    parse(&confidence(all)).unwrap();
    for (line, field, expected, found) in [
        (
            "presence_margin = 0.6\n",
            "confidence.presence_margin",
            "in [0, 0.5]",
            0.6,
        ),
        (
            "min_iou_prediction = -0.1\n",
            "confidence.min_iou_prediction",
            "in [0, 1]",
            -0.1,
        ),
        (
            "min_agreement = 1.5\n",
            "confidence.min_agreement",
            "in [0, 1]",
            1.5,
        ),
        (
            "min_cam_peak = -1.0\n",
            "confidence.min_cam_peak",
            ">= 0",
            -1.0,
        ),
    ] {
        assert_eq!(
            invalid(&confidence(line)),
            (field.to_string(), Invalid::OutOfRange { expected, found }),
            "{line}"
        );
    }
    let (field, problem) = invalid(&confidence("min_cam_peak = inf\n"));
    assert_eq!(field, "confidence.min_cam_peak");
    assert!(matches!(problem, Invalid::NonFinite { .. }));
    // An unknown key is refused, named.
    let text = err(&confidence("min_dice = 0.7\n")).to_string();
    assert!(text.contains("min_dice"), "{text}");
}

/// `input.color`: what the channels hold. Absent, the model takes the
/// frame's luma (`gray`), whatever its channel count.
#[test]
fn input_color_is_gray_by_default_and_rgb_needs_three_channels() {
    let color = |channels: u32, line: &str| {
        let (mean, std) = if channels == 3 {
            ("mean = [0, 0, 0]", "std = [255, 255, 255]")
        } else {
            ("mean = [127.5]", "std = [64.0]")
        };
        valid()
            .replace("channels = 1\n", &format!("channels = {channels}\n{line}"))
            .replace("mean = [127.5]", mean)
            .replace("std = [64.0]", std)
    };
    for (channels, line, want) in [
        (1, "", InputColor::Gray),
        (3, "", InputColor::Gray),
        (1, "color = \"gray\"\n", InputColor::Gray),
        (3, "color = \"gray\"\n", InputColor::Gray),
        (3, "color = \"rgb\"\n", InputColor::Rgb),
    ] {
        let m = parse(&color(channels, line)).unwrap_or_else(|e| panic!("{line}: {e}"));
        assert_eq!(m.input.color, want, "{line}");
        // Written back (`sammix info --json`), the default too.
        let v = serde_json::to_value(&m).unwrap();
        assert_eq!(v["input"]["color"], want.as_str());
    }
    assert_eq!(InputColor::Gray.pixel_format(), PixelFormat::Gray8);
    assert_eq!(InputColor::Rgb.pixel_format(), PixelFormat::Rgb8);
    // `rgb` with one channel (or two, or four) is refused, naming the
    // field, before the per-channel lists are looked at.
    for channels in [1, 2, 4] {
        let text = color(channels, "color = \"rgb\"\n");
        assert_eq!(
            invalid(&text),
            ("input.color".to_string(), Invalid::RgbChannels { channels }),
            "{channels} channels"
        );
    }
    let text = err(&color(1, "color = \"rgb\"\n")).to_string();
    assert!(
        text.contains("field `input.color`: ")
            && text.contains("expected input.channels = 3, found 1"),
        "{text}"
    );
}
