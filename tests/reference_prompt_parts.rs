//! The prompt rule's steps 7 and 8 replay the recipe's vectors
//! (`sammix_recipe.prompt.component_boxes` and `box_from_low_res`).
//!
//! `BUNDLE/reference/index.json` lists `prompt_parts_cases`:
//!
//! - `kind = "component_boxes"`: a CAM (`.npy`), `max_boxes`, and the boxes
//!   (largest component first) the rule makes of it with the index's
//!   `prompt_params` and that `max_boxes`; replayed through
//!   [`PromptEngine`] (whose boxes come from `sammix::prompt::component_boxes`).
//! - `kind = "box_from_low_res"`: low-resolution logits (n×n `.npy`), a
//!   threshold, and the box (or null) of step 8; replayed through
//!   [`box_from_low_res`] with the margin of `prompt_params.box_margin`.
//!
//! Boxes must agree within 1e-4 px (the same f32 arithmetic in the same
//! order). The bundle is `$SAMMIX_REFERENCE_BUNDLE`, by default
//! `models/sammix-us-medsam`, the first bundle with these cases; without
//! them the test says so and passes.

use std::path::{Path, PathBuf};

use sammix::bundle::PromptParams;
use sammix::npy;
use sammix::prompt::{box_from_low_res, margin_px, PromptEngine};
use serde::Deserialize;

#[derive(Debug, Deserialize)]
struct Index {
    format: u32,
    #[serde(default)]
    prompt_parts_cases: Vec<Case>,
    prompt_params: PromptParams,
    input_size: usize,
    embedding_size: usize,
}

#[derive(Debug, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
enum Case {
    ComponentBoxes {
        name: String,
        cam: String,
        max_boxes: u32,
        boxes: Vec<[f32; 4]>,
    },
    BoxFromLowRes {
        name: String,
        low_res: String,
        threshold: f32,
        r#box: Option<[f32; 4]>,
    },
}

fn bundle_dir() -> PathBuf {
    match std::env::var_os("SAMMIX_REFERENCE_BUNDLE") {
        Some(d) => PathBuf::from(d),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("models/sammix-us-medsam"),
    }
}

fn close(got: &[[f32; 4]], want: &[[f32; 4]]) -> bool {
    got.len() == want.len()
        && got
            .iter()
            .zip(want)
            .all(|(g, w)| g.iter().zip(w).all(|(a, b)| (a - b).abs() <= 1e-4))
}

#[test]
fn component_boxes_and_low_res_boxes_replay_the_recipe_vectors() {
    let dir = bundle_dir().join("reference");
    let path = dir.join("index.json");
    let Ok(text) = std::fs::read_to_string(&path) else {
        eprintln!(
            "SKIPPED: no {} (build models/sammix-us-medsam with the recipe, or set \
             SAMMIX_REFERENCE_BUNDLE)",
            path.display()
        );
        return;
    };
    let index: Index = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(index.format, 1);
    if index.prompt_parts_cases.is_empty() {
        eprintln!("SKIPPED: {} has no prompt_parts_cases", path.display());
        return;
    }
    let s = index.input_size;
    let d = 4 * index.embedding_size;
    let margin = margin_px(index.prompt_params.box_margin, s);
    let (mut failures, mut boxes_cases, mut low_cases) = (Vec::new(), 0, 0);
    for case in &index.prompt_parts_cases {
        match case {
            Case::ComponentBoxes {
                name,
                cam,
                max_boxes,
                boxes,
            } => {
                boxes_cases += 1;
                let (shape, cam) = npy::read_typed::<f32>(dir.join(cam)).unwrap();
                let (h, w) = (shape[shape.len() - 2], shape[shape.len() - 1]);
                let params = PromptParams {
                    max_boxes: *max_boxes,
                    ..index.prompt_params.clone()
                };
                let mut engine = PromptEngine::new(params, h, w, s, d);
                let got = match engine.compute(&cam).unwrap() {
                    Some(p) => p.boxes.as_slice().to_vec(),
                    None => Vec::new(),
                };
                if !close(&got, boxes) {
                    failures.push(format!("{name}: boxes {got:?}, expected {boxes:?}"));
                }
            }
            Case::BoxFromLowRes {
                name,
                low_res,
                threshold,
                r#box,
            } => {
                low_cases += 1;
                let (shape, low) = npy::read_typed::<f32>(dir.join(low_res)).unwrap();
                let n = shape[shape.len() - 1];
                let got = box_from_low_res(&low, n, *threshold, s, margin);
                let ok = match (got, r#box) {
                    (None, None) => true,
                    (Some(g), Some(w)) => close(&[g], &[*w]),
                    _ => false,
                };
                if !ok {
                    failures.push(format!("{name}: box {got:?}, expected {box:?}", box = r#box));
                }
            }
        }
    }
    eprintln!("{boxes_cases} component-box cases, {low_cases} low-res box cases");
    assert!(boxes_cases > 0 && low_cases > 0);
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
