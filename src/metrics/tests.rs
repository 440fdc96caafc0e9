use super::edt::{squared_distance_to, surface};
use super::*;

/// A small deterministic generator (xorshift64*), enough for test masks.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn mask(&mut self, w: usize, h: usize, percent: u64) -> Mask {
        let bytes: Vec<u8> = (0..w * h)
            .map(|_| u8::from(self.below(100) < percent))
            .collect();
        Mask::from_bytes(w, h, &bytes).unwrap()
    }
}

fn mask(w: usize, h: usize, rows: &[&str]) -> Mask {
    let bytes: Vec<u8> = rows
        .iter()
        .flat_map(|r| r.bytes().map(|b| u8::from(b == b'#')))
        .collect();
    Mask::from_bytes(w, h, &bytes).unwrap()
}

#[test]
fn empty_masks_follow_the_recipe_conventions() {
    let empty = Mask::zeros(6, 4);
    let mut one = Mask::zeros(6, 4);
    one.data_mut()[7] = 1;
    assert_eq!(dice(&empty, &empty).unwrap(), 1.0);
    assert_eq!(iou(&empty, &empty).unwrap(), 1.0);
    assert_eq!(dice(&one, &empty).unwrap(), 0.0);
    assert_eq!(iou(&one, &empty).unwrap(), 0.0);
    assert_eq!(dice(&empty, &one).unwrap(), 0.0);
    assert_eq!(dice(&one, &one).unwrap(), 1.0);
    assert_eq!(hd95(&empty, &empty).unwrap(), None);
    assert_eq!(hd95(&one, &empty).unwrap(), None);
    assert_eq!(hd95(&empty, &one).unwrap(), None);
    assert_eq!(hd95(&one, &one).unwrap(), Some(0.0));
}

#[test]
fn masks_of_different_sizes_are_an_error() {
    let (a, b) = (Mask::zeros(4, 3), Mask::zeros(3, 4));
    let err = dice(&a, &b).unwrap_err();
    assert_eq!(err.to_string(), "prediction is 4x3 but ground truth is 3x4");
    assert!(iou(&a, &b).is_err());
    assert!(hd95(&a, &b).is_err());
    assert!(ImageScores::new("x", &a, &b, None).is_err());
}

#[test]
fn surface_keeps_border_pixels_and_drops_the_interior() {
    let m = mask(5, 4, &["####.", "####.", "####.", "..#.."]);
    let s = surface(&m);
    let got: Vec<u8> = s.iter().map(|&b| u8::from(b)).collect();
    #[rustfmt::skip]
    // As scipy's `m & ~binary_erosion(m, np.ones((3, 3)), border_value=0)`.
    let want = [
        1, 1, 1, 1, 0,
        1, 0, 0, 1, 0,
        1, 1, 1, 1, 0,
        0, 0, 1, 0, 0,
    ];
    assert_eq!(got, want);
    // A 3x3 block away from the border keeps its centre out of the surface.
    let m = mask(5, 5, &[".....", ".###.", ".###.", ".###.", "....."]);
    let s = surface(&m);
    assert!(!s[12]);
    assert_eq!(s.iter().filter(|&&b| b).count(), 8);
}

#[test]
fn distance_transform_matches_brute_force_on_random_masks() {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    for case in 0..300 {
        let w = 1 + rng.below(14) as usize;
        let h = 1 + rng.below(14) as usize;
        let percent = [1, 5, 20, 50, 90][case % 5];
        let features: Vec<bool> = rng
            .mask(w, h, percent)
            .data()
            .iter()
            .map(|&b| b != 0)
            .collect();
        let got = squared_distance_to(&features, w, h);
        for y in 0..h {
            for x in 0..w {
                let want = (0..w * h)
                    .filter(|&i| features[i])
                    .map(|i| {
                        let (dx, dy) = ((i % w) as f64 - x as f64, (i / w) as f64 - y as f64);
                        dx * dx + dy * dy
                    })
                    .fold(f64::INFINITY, f64::min);
                assert_eq!(got[y * w + x], want, "case {case}: {w}x{h} at ({x}, {y})");
            }
        }
    }
}

#[test]
fn hd95_matches_brute_force_surface_distances() {
    let mut rng = Rng(42);
    for _ in 0..100 {
        let (w, h) = (1 + rng.below(10) as usize, 1 + rng.below(10) as usize);
        let (p, g) = (rng.mask(w, h, 30), rng.mask(w, h, 30));
        let got = hd95(&p, &g).unwrap();
        if p.is_empty() || g.is_empty() {
            assert_eq!(got, None);
            continue;
        }
        let (sp, sg) = (surface(&p), surface(&g));
        let nearest = |from: usize, to: &[bool]| {
            (0..w * h)
                .filter(|&i| to[i])
                .map(|i| {
                    let dx = (i % w) as f64 - (from % w) as f64;
                    let dy = (i / w) as f64 - (from / w) as f64;
                    (dx * dx + dy * dy).sqrt()
                })
                .fold(f64::INFINITY, f64::min)
        };
        let mut d: Vec<f64> = (0..w * h)
            .filter(|&i| sp[i])
            .map(|i| nearest(i, &sg))
            .chain((0..w * h).filter(|&i| sg[i]).map(|i| nearest(i, &sp)))
            .collect();
        d.sort_by(f64::total_cmp);
        let pos = 0.95 * (d.len() - 1) as f64;
        let lo = pos.floor() as usize;
        let hi = (lo + 1).min(d.len() - 1);
        let want = d[lo] + (d[hi] - d[lo]) * (pos - lo as f64);
        assert!((got.unwrap() - want).abs() < 1e-9, "{got:?} vs {want}");
    }
}

#[test]
fn percentile_interpolates_like_numpy() {
    // np.percentile([4, 1, 3, 2], 95) == 3.85; one value is itself.
    let got = percentile_linear(&mut [4.0, 1.0, 3.0, 2.0], 0.95).unwrap();
    assert!((got - 3.85).abs() < 1e-12);
    assert_eq!(percentile_linear(&mut [7.5], 0.95), Some(7.5));
    assert_eq!(percentile_linear(&mut [], 0.95), None);
    assert_eq!(percentile_linear(&mut [2.0, 0.0, 1.0], 1.0), Some(2.0));
    assert_eq!(percentile_linear(&mut [2.0, 0.0, 1.0], 0.0), Some(0.0));
}

#[test]
fn hd95_on_full_hd_masks_is_cheap_and_sane() {
    // Two discs of radius 200 px, the second moved 30 px to the right: every
    // surface distance lies in [0, 30], and most are well above 0.
    let (w, h) = (1920, 1080);
    let disc = |cx: i64| {
        let bytes: Vec<u8> = (0..w * h)
            .map(|i| {
                let (dx, dy) = ((i % w) as i64 - cx, (i / w) as i64 - 540);
                u8::from(dx * dx + dy * dy <= 200 * 200)
            })
            .collect();
        Mask::from_bytes(w, h, &bytes).unwrap()
    };
    let (a, b) = (disc(900), disc(930));
    assert_eq!(hd95(&a, &a).unwrap(), Some(0.0));
    let d = hd95(&a, &b).unwrap().unwrap();
    assert!(d > 20.0 && d <= 30.0, "{d}");
}

#[test]
fn summary_follows_summarize() {
    let empty = Mask::zeros(3, 3);
    let full = mask(3, 3, &["###", "###", "###"]);
    let corner = mask(3, 3, &["#..", "...", "..."]);
    let rows = vec![
        ImageScores::new("a", &full, &full, Some(true)).unwrap(),
        ImageScores::new("b", &corner, &full, Some(false)).unwrap(),
        ImageScores::new("c", &empty, &empty, Some(false)).unwrap(),
        ImageScores::new("d", &corner, &empty, Some(false)).unwrap(),
    ];
    assert!(rows[1].gt_present && !rows[2].gt_present);
    let s = Summary::from_rows(&rows);
    assert_eq!((s.frames, s.positive_frames, s.hd95_frames), (4, 2, 2));
    assert!((s.dice_all - (1.0 + 0.2 + 1.0 + 0.0) / 4.0).abs() < 1e-12);
    assert!((s.dice_positive.unwrap() - 0.6).abs() < 1e-12);
    assert!((s.iou_positive.unwrap() - (1.0 + 1.0 / 9.0) / 2.0).abs() < 1e-12);
    assert_eq!(s.presence_accuracy, Some(0.75));
    let json = serde_json::to_value(&s).unwrap();
    let keys: Vec<&str> = json
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    let mut want = [
        "frames",
        "positive_frames",
        "dice_all",
        "dice_positive",
        "iou_all",
        "iou_positive",
        "hd95_px",
        "hd95_frames",
        "presence_accuracy",
    ];
    want.sort_unstable();
    let mut keys = keys;
    keys.sort_unstable();
    assert_eq!(keys, want);
    let row = serde_json::to_value(&rows[3]).unwrap();
    assert_eq!(
        row,
        serde_json::json!({"name": "d", "dice": 0.0, "iou": 0.0, "hd95": null,
            "gt_present": false, "pred_present": false})
    );
}

#[test]
fn summary_without_presence_flags_or_rows() {
    let m = Mask::zeros(2, 2);
    let rows = vec![
        ImageScores::new("a", &m, &m, Some(false)).unwrap(),
        ImageScores::new("b", &m, &m, None).unwrap(),
    ];
    let s = Summary::from_rows(&rows);
    assert_eq!(s.presence_accuracy, None);
    assert_eq!(s.dice_positive, None);
    assert_eq!(s.hd95_px, None);
    let json = serde_json::to_value(&s).unwrap();
    assert!(json.get("presence_accuracy").is_none());
    assert!(json["dice_positive"].is_null());

    let none = Summary::from_rows(&[]);
    assert_eq!(none.frames, 0);
    assert!(none.dice_all.is_nan() && none.iou_all.is_nan());
    assert_eq!(none.presence_accuracy, None);
    let json = serde_json::to_value(&none).unwrap();
    assert!(json["dice_all"].is_null());
}

#[test]
fn running_summary_equals_the_batch_summary() {
    use super::{ImageScores, RunningSummary, Summary};
    let rows: Vec<ImageScores> = (0..7)
        .map(|i| ImageScores {
            name: format!("{i}"),
            dice: f64::from(i) / 7.0,
            iou: f64::from(i) / 9.0,
            hd95: (i % 2 == 0).then_some(f64::from(i) * 1.5),
            gt_present: i % 3 != 0,
            pred_present: Some(i % 2 == 0),
        })
        .collect();
    let mut running = RunningSummary::default();
    rows.iter().for_each(|r| running.add(r));
    let (a, b) = (running.summary(), Summary::from_rows(&rows));
    assert_eq!(a.frames, b.frames);
    assert_eq!(a.positive_frames, b.positive_frames);
    assert_eq!(a.hd95_frames, b.hd95_frames);
    for (x, y) in [
        (a.dice_all, b.dice_all),
        (a.dice_positive.unwrap(), b.dice_positive.unwrap()),
        (a.iou_all, b.iou_all),
        (a.iou_positive.unwrap(), b.iou_positive.unwrap()),
        (a.hd95_px.unwrap(), b.hd95_px.unwrap()),
        (a.presence_accuracy.unwrap(), b.presence_accuracy.unwrap()),
    ] {
        assert!((x - y).abs() < 1e-12, "{x} vs {y}");
    }
}
