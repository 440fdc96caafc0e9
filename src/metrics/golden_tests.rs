//! Replays `tests/data/metrics_golden.json`, the recipe's own numbers.
//!
//! The file is the output of the script below, saved as `gen.py` and run from `models/recipe`
//! (`PYTHONPATH=. ../../.venv/bin/python gen.py > ../../tests/data/metrics_golden.json`);
//! masks are stored as run lengths of their row-major bits, the first run
//! counting background pixels.
//!
//! ```python
//! import json, numpy as np
//! from scipy import ndimage
//! from sammix_recipe.metrics import dice, iou, hd95, summarize
//! rng = np.random.default_rng(20240611)
//! def blob(h, w, n):
//!     yy, xx = np.mgrid[:h, :w]
//!     m = np.zeros((h, w), bool)
//!     for _ in range(n):
//!         cy, cx = rng.uniform(-2, h + 1), rng.uniform(-2, w + 1)
//!         ry, rx = rng.uniform(0.8, h / 2.5 + 1), rng.uniform(0.8, w / 2.5 + 1)
//!         m |= ((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 <= 1
//!     return m
//! def rle(m):  # run lengths of the row-major bits, the first run counts zeros
//!     runs, cur, n = [], False, 0
//!     for b in m.ravel():
//!         if b != cur:
//!             runs.append(n); cur, n = b, 0
//!         n += 1
//!     return runs + [n]
//! def near(m, k):  # m moved by up to k px, with a ragged edge
//!     s = np.roll(m, (int(rng.integers(-k, k + 1)), int(rng.integers(-k, k + 1))), (0, 1))
//!     return s ^ (ndimage.binary_dilation(s) & ~ndimage.binary_erosion(s) & (rng.random(m.shape) < 0.3))
//! one = lambda h, w, y, x: np.pad(np.ones((1, 1), bool), ((y, h - y - 1), (x, w - x - 1)))
//! pairs = [blob(5, 7, 1), blob(5, 7, 2)], [b := blob(32, 32, 2), near(b, 2)], \
//!     [b := blob(48, 64, 3), near(b, 3)], [blob(48, 64, 1), blob(48, 64, 4)], \
//!     [rng.random((32, 32)) < 0.3, rng.random((32, 32)) < 0.2], \
//!     [rng.random((9, 13)) < 0.5, blob(9, 13, 2)], \
//!     [np.ones((32, 32), bool), blob(32, 32, 1)], \
//!     [one(32, 32, 0, 0), one(32, 32, 31, 17)], [one(7, 5, 3, 2), one(7, 5, 3, 2)], \
//!     [np.zeros((32, 32), bool), blob(32, 32, 2)], [blob(32, 32, 2), np.zeros((32, 32), bool)], \
//!     [np.zeros((32, 32), bool), np.zeros((32, 32), bool)], [rng.random((1, 23)) < 0.4, rng.random((1, 23)) < 0.4], \
//!     [rng.random((19, 1)) < 0.4, rng.random((19, 1)) < 0.5], [b := blob(64, 48, 2), near(b, 4)]
//! cases = []
//! for p, g in pairs:
//!     h = hd95(p, g)
//!     cases.append(dict(w=p.shape[1], h=p.shape[0], pred=rle(p), gt=rle(g),
//!                       dice=dice(p, g), iou=iou(p, g), hd95=h))
//! sel = [i for i, (p, _) in enumerate(pairs) if p.shape == (32, 32)]
//! flags = rng.random(len(sel)) < 0.5
//! summary = summarize(np.stack([pairs[i][0] for i in sel]), np.stack([pairs[i][1] for i in sel]), flags)
//! dump = lambda x: json.dumps(x, separators=(",", ":"))
//! print('{"cases":[\n' + ",\n".join(map(dump, cases)) + '],\n"summary":' + dump(dict(
//!     of_cases=sel, present_pred=flags.tolist(), expect=summary)) + "}")
//! ```

use serde::Deserialize;

use super::*;

#[derive(Deserialize)]
struct Golden {
    cases: Vec<Case>,
    summary: GoldenSummary,
}

#[derive(Deserialize)]
struct Case {
    w: usize,
    h: usize,
    pred: Vec<usize>,
    gt: Vec<usize>,
    dice: f64,
    iou: f64,
    hd95: Option<f64>,
}

#[derive(Deserialize)]
struct GoldenSummary {
    of_cases: Vec<usize>,
    present_pred: Vec<bool>,
    expect: serde_json::Map<String, serde_json::Value>,
}

fn golden() -> Golden {
    serde_json::from_str(include_str!("../../tests/data/metrics_golden.json")).unwrap()
}

fn decode(w: usize, h: usize, runs: &[usize]) -> Mask {
    let mut bytes = Vec::with_capacity(w * h);
    for (i, &n) in runs.iter().enumerate() {
        bytes.extend(std::iter::repeat_n(u8::from(i % 2 == 1), n));
    }
    Mask::from_bytes(w, h, &bytes).unwrap()
}

#[test]
fn golden_masks_score_like_the_recipe() {
    let golden = golden();
    assert!(golden.cases.len() >= 12);
    for (i, c) in golden.cases.iter().enumerate() {
        let (p, g) = (decode(c.w, c.h, &c.pred), decode(c.w, c.h, &c.gt));
        let (d, j, h) = (
            dice(&p, &g).unwrap(),
            iou(&p, &g).unwrap(),
            hd95(&p, &g).unwrap(),
        );
        assert!(
            (d - c.dice).abs() < 1e-9,
            "case {i}: dice {d} vs {}",
            c.dice
        );
        assert!((j - c.iou).abs() < 1e-9, "case {i}: iou {j} vs {}", c.iou);
        match (h, c.hd95) {
            (Some(h), Some(want)) => {
                assert!((h - want).abs() < 1e-6, "case {i}: hd95 {h} vs {want}")
            }
            (h, want) => assert_eq!(h, want, "case {i}: hd95"),
        }
    }
}

#[test]
fn golden_summary_matches_summarize() {
    let golden = golden();
    let s = &golden.summary;
    let rows: Vec<ImageScores> = s
        .of_cases
        .iter()
        .zip(&s.present_pred)
        .map(|(&i, &flag)| {
            let c = &golden.cases[i];
            let (p, g) = (decode(c.w, c.h, &c.pred), decode(c.w, c.h, &c.gt));
            ImageScores::new(format!("case{i}"), &p, &g, Some(flag)).unwrap()
        })
        .collect();
    let got = serde_json::to_value(Summary::from_rows(&rows)).unwrap();
    let got = got.as_object().unwrap();
    let mut keys: Vec<&String> = got.keys().collect();
    let mut want_keys: Vec<&String> = s.expect.keys().collect();
    keys.sort();
    want_keys.sort();
    assert_eq!(keys, want_keys);
    for (k, want) in &s.expect {
        match (got[k].as_f64(), want.as_f64()) {
            (Some(a), Some(b)) => assert!((a - b).abs() < 1e-9, "{k}: {a} vs {b}"),
            _ => assert_eq!(&got[k], want, "{k}"),
        }
    }
}
