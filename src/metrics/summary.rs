//! Per-image scores and their summary over a set, like `summarize()` in
//! `models/recipe/sammix_recipe/metrics.py`.

use serde::Serialize;

use super::{dice, hd95, iou, MetricsError};
use crate::frame::Mask;

/// The scores of one image: a row of `sammix eval`'s table.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ImageScores {
    /// The image's name (its file name, say).
    pub name: String,
    /// [`dice`] of the predicted mask.
    pub dice: f64,
    /// [`iou`] of the predicted mask.
    pub iou: f64,
    /// [`hd95`] in pixels; `None` unless both masks are non-empty.
    pub hd95: Option<f64>,
    /// Whether the ground truth has a target pixel (the frame is positive).
    pub gt_present: bool,
    /// Whether the model said the target is present (its presence head, not
    /// the mask); `None` when not given.
    pub pred_present: Option<bool>,
}

impl ImageScores {
    /// Scores `pred` against `gt`, which must have the same size.
    pub fn new(
        name: impl Into<String>,
        pred: &Mask,
        gt: &Mask,
        pred_present: Option<bool>,
    ) -> Result<ImageScores, MetricsError> {
        Ok(ImageScores {
            name: name.into(),
            dice: dice(pred, gt)?,
            iou: iou(pred, gt)?,
            hd95: hd95(pred, gt)?,
            gt_present: !gt.is_empty(),
            pred_present,
        })
    }
}

/// Mean scores over a set of images, with the keys and conventions of the
/// recipe's `summarize()`; serialized, it is the same JSON object.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Summary {
    /// Number of images.
    pub frames: usize,
    /// Number of images whose ground truth is non-empty.
    pub positive_frames: usize,
    /// Mean Dice over all images (NaN, serialized as `null`, for no image).
    pub dice_all: f64,
    /// Mean Dice over the positive images; `None` when there is none.
    pub dice_positive: Option<f64>,
    /// Mean IoU over all images (NaN, serialized as `null`, for no image).
    pub iou_all: f64,
    /// Mean IoU over the positive images; `None` when there is none.
    pub iou_positive: Option<f64>,
    /// Mean HD95 in pixels over the images where it is defined; `None` when
    /// it is nowhere.
    pub hd95_px: Option<f64>,
    /// Number of images where HD95 is defined.
    pub hd95_frames: usize,
    /// Fraction of images whose predicted presence matches the ground
    /// truth's; present only when every image has
    /// [`ImageScores::pred_present`] (and there is at least one image), left
    /// out of the JSON otherwise, as `summarize()` leaves it out without
    /// `present_pred`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub presence_accuracy: Option<f64>,
}

/// The mean of `values`; `None` when empty.
fn mean(values: impl Iterator<Item = f64>) -> Option<f64> {
    let (sum, n) = values.fold((0.0, 0usize), |(s, n), v| (s + v, n + 1));
    (n > 0).then(|| sum / n as f64)
}

impl Summary {
    /// Summarizes per-image scores.
    pub fn from_rows(rows: &[ImageScores]) -> Summary {
        let positive = || rows.iter().filter(|r| r.gt_present);
        let hd: Vec<f64> = rows.iter().filter_map(|r| r.hd95).collect();
        let presence_accuracy = rows
            .iter()
            .map(|r| r.pred_present.map(|p| p == r.gt_present))
            .collect::<Option<Vec<bool>>>()
            .and_then(|hits| mean(hits.into_iter().map(|h| f64::from(u8::from(h)))));
        Summary {
            frames: rows.len(),
            positive_frames: positive().count(),
            dice_all: mean(rows.iter().map(|r| r.dice)).unwrap_or(f64::NAN),
            dice_positive: mean(positive().map(|r| r.dice)),
            iou_all: mean(rows.iter().map(|r| r.iou)).unwrap_or(f64::NAN),
            iou_positive: mean(positive().map(|r| r.iou)),
            hd95_px: mean(hd.iter().copied()),
            hd95_frames: hd.len(),
            presence_accuracy,
        }
    }
}

/// A [`Summary`] kept up to date frame by frame in constant memory (a
/// stream of any length); the same numbers as [`Summary::from_rows`] over
/// the same rows, up to floating-point summation order.
#[derive(Debug, Clone, Default)]
pub struct RunningSummary {
    frames: usize,
    positive: usize,
    dice: f64,
    dice_pos: f64,
    iou: f64,
    iou_pos: f64,
    hd95: f64,
    hd95_frames: usize,
    presence_hits: usize,
    presence_frames: usize,
}

impl RunningSummary {
    /// Adds one image's scores.
    pub fn add(&mut self, r: &ImageScores) {
        self.add_parts(r.dice, r.iou, r.hd95, r.gt_present, r.pred_present);
    }

    /// Adds one image's scores given as parts (no name needed).
    pub fn add_parts(
        &mut self,
        dice: f64,
        iou: f64,
        hd95: Option<f64>,
        gt_present: bool,
        pred_present: Option<bool>,
    ) {
        self.frames += 1;
        self.dice += dice;
        self.iou += iou;
        if gt_present {
            self.positive += 1;
            self.dice_pos += dice;
            self.iou_pos += iou;
        }
        if let Some(h) = hd95 {
            self.hd95 += h;
            self.hd95_frames += 1;
        }
        if let Some(p) = pred_present {
            self.presence_frames += 1;
            self.presence_hits += usize::from(p == gt_present);
        }
    }

    /// The summary so far.
    pub fn summary(&self) -> Summary {
        let div = |s: f64, n: usize| (n > 0).then(|| s / n as f64);
        Summary {
            frames: self.frames,
            positive_frames: self.positive,
            dice_all: div(self.dice, self.frames).unwrap_or(f64::NAN),
            dice_positive: div(self.dice_pos, self.positive),
            iou_all: div(self.iou, self.frames).unwrap_or(f64::NAN),
            iou_positive: div(self.iou_pos, self.positive),
            hd95_px: div(self.hd95, self.hd95_frames),
            hd95_frames: self.hd95_frames,
            presence_accuracy: if self.presence_frames == self.frames {
                div(self.presence_hits as f64, self.frames)
            } else {
                None
            },
        }
    }
}
