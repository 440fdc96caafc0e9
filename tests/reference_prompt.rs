//! The Rust CAM → prompt rule replays the recipe's reference vectors.
//!
//! `BUNDLE/reference/index.json` lists `prompt_cases`: a CAM (E×E `.npy`)
//! and what `sammix_recipe.prompt.cam_to_prompt` made of it: no prompt, or a
//! box, the kept-components mask (S×S) and the dense prompt (4E×4E). The two
//! implementations do the same f32 arithmetic in the same order, so the
//! mask must be identical, the box within 1e-4 px and the dense prompt
//! within 1e-6 (where the case stores it: the LiteMedSAM bundle keeps the
//! 4E×4E dense prompt for a few cases only, inside its size cap).
//!
//! The bundle is `$SAMMIX_REFERENCE_BUNDLE`, by default
//! `models/sammix-us-scratch`.

use std::path::{Path, PathBuf};

use sammix::bundle::PromptParams;
use sammix::npy;
use sammix::prompt::PromptEngine;
use serde::Deserialize;

#[derive(Debug, Deserialize)]
struct Index {
    format: u32,
    prompt_cases: Vec<PromptCase>,
    prompt_params: PromptParams,
    input_size: usize,
    embedding_size: usize,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PromptCase {
    name: String,
    cam: String,
    prompt: bool,
    #[serde(default)]
    r#box: Option<[f32; 4]>,
    #[serde(default)]
    mask: Option<String>,
    #[serde(default)]
    dense: Option<String>,
}

fn reference_dir() -> PathBuf {
    let dir = match std::env::var_os("SAMMIX_REFERENCE_BUNDLE") {
        Some(d) => PathBuf::from(d),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("models/sammix-us-scratch"),
    };
    dir.join("reference")
}

#[test]
fn prompt_rule_replays_the_recipe_vectors() {
    let dir = reference_dir();
    let path = dir.join("index.json");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (build the bundle with the recipe)", path.display()));
    let index: Index = serde_json::from_str(&text).unwrap();
    assert_eq!(index.format, 1);
    assert!(
        index.prompt_cases.len() >= 8,
        "too few prompt cases to mean anything"
    );
    assert!(index.prompt_cases.iter().any(|c| c.prompt));
    assert!(index.prompt_cases.iter().any(|c| !c.prompt));

    let s = index.input_size;
    let d = 4 * index.embedding_size;
    let mut failures = Vec::new();
    let mut dense_checked = 0;
    for case in &index.prompt_cases {
        let (shape, cam) = npy::read_typed::<f32>(dir.join(&case.cam)).unwrap();
        let (h, w) = (shape[shape.len() - 2], shape[shape.len() - 1]);
        let mut engine = PromptEngine::new(index.prompt_params.clone(), h, w, s, d);
        let got = engine.compute(&cam).unwrap().cloned();
        match (case.prompt, got) {
            (false, None) => {}
            (false, Some(p)) => {
                failures.push(format!("{}: expected no prompt, got {p:?}", case.name))
            }
            (true, None) => failures.push(format!("{}: expected a prompt, got none", case.name)),
            (true, Some(p)) => {
                let want_box = case.r#box.unwrap();
                for (g, w) in p.bbox.iter().zip(want_box) {
                    if (g - w).abs() > 1e-4 {
                        failures.push(format!(
                            "{}: box {:?}, expected {want_box:?}",
                            case.name, p.bbox
                        ));
                        break;
                    }
                }
                let (_, mask) =
                    npy::read_typed::<u8>(dir.join(case.mask.as_ref().unwrap())).unwrap();
                let differ = mask.iter().zip(&p.mask).filter(|(a, b)| a != b).count();
                if differ != 0 {
                    failures.push(format!("{}: {differ} mask pixels differ", case.name));
                }
                // a bundle may store the dense prompt for a few cases only (size cap)
                if let Some(file) = &case.dense {
                    let (_, dense) = npy::read_typed::<f32>(dir.join(file)).unwrap();
                    let worst = dense
                        .iter()
                        .zip(&p.dense)
                        .map(|(a, b)| (a - b).abs())
                        .fold(0.0f32, f32::max);
                    if worst > 1e-6 {
                        failures.push(format!("{}: dense prompt off by {worst}", case.name));
                    }
                    dense_checked += 1;
                }
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert!(dense_checked > 0, "no prompt case stores its dense prompt");
}
