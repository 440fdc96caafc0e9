//! Segmentation metrics, with the conventions of the Python recipe
//! (`models/recipe/sammix_recipe/metrics.py`), so that `sammix eval` and the
//! training notebooks report the same numbers.
//!
//! - [`dice`] and [`iou`] of an empty prediction on an empty ground truth
//!   are 1; a non-empty prediction on an empty ground truth scores 0.
//! - [`hd95`], the 95th percentile of the symmetric surface distances in
//!   pixels, is defined only where both masks are non-empty. The surface of
//!   a mask is the mask minus its erosion by the full 3×3 square with
//!   pixels outside the image counted as background (so target pixels on
//!   the image border are surface); distances are exact Euclidean distances
//!   to the nearest surface pixel of the other mask, both directions pooled;
//!   the percentile interpolates linearly like `np.percentile(d, 95)`.
//! - [`ImageScores`] holds one image's scores and [`Summary::from_rows`]
//!   averages them like `summarize()`, field for field.
//!
//! The distance transform is the exact O(N) one of Felzenszwalb and
//! Huttenlocher, so a 1080p mask costs a few passes over its pixels.
//!
//! ```
//! use sammix::frame::Mask;
//! use sammix::metrics::{dice, hd95, iou};
//!
//! let pred = Mask::from_bytes(5, 1, &[1, 1, 1, 0, 0])?;
//! let gt = Mask::from_bytes(5, 1, &[0, 0, 1, 1, 0])?;
//! assert_eq!(dice(&pred, &gt)?, 0.4);
//! assert_eq!(iou(&pred, &gt)?, 0.25);
//! // Distances 2, 1, 0 (from the prediction) and 0, 1 (from the truth).
//! let hd = hd95(&pred, &gt)?.expect("both masks are non-empty");
//! assert!((hd - 1.8).abs() < 1e-12);
//! assert_eq!(hd95(&pred, &Mask::zeros(5, 1))?, None);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use crate::frame::Mask;

mod clicks;
mod edt;
mod summary;

pub use clicks::next_click;
pub use summary::{ImageScores, RunningSummary, Summary};

/// The quantile [`hd95`] reports.
const HD_QUANTILE: f64 = 0.95;

/// Why a metric could not be computed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MetricsError {
    /// The prediction and the ground truth do not have the same size.
    #[error("prediction is {pred_width}x{pred_height} but ground truth is {gt_width}x{gt_height}")]
    SizeMismatch {
        /// Width of the prediction.
        pred_width: usize,
        /// Height of the prediction.
        pred_height: usize,
        /// Width of the ground truth.
        gt_width: usize,
        /// Height of the ground truth.
        gt_height: usize,
    },
}

fn check_sizes(pred: &Mask, gt: &Mask) -> Result<(), MetricsError> {
    if pred.width() != gt.width() || pred.height() != gt.height() {
        return Err(MetricsError::SizeMismatch {
            pred_width: pred.width(),
            pred_height: pred.height(),
            gt_width: gt.width(),
            gt_height: gt.height(),
        });
    }
    Ok(())
}

/// Pixel counts of `pred`, `gt` and their intersection.
fn counts(pred: &Mask, gt: &Mask) -> Result<(usize, usize, usize), MetricsError> {
    check_sizes(pred, gt)?;
    let (mut p, mut g, mut both) = (0, 0, 0);
    for (&a, &b) in pred.data().iter().zip(gt.data()) {
        let (a, b) = (a != 0, b != 0);
        p += usize::from(a);
        g += usize::from(b);
        both += usize::from(a && b);
    }
    Ok((p, g, both))
}

/// The Dice coefficient `2 |P ∩ G| / (|P| + |G|)`; 1 when both are empty.
pub fn dice(pred: &Mask, gt: &Mask) -> Result<f64, MetricsError> {
    let (p, g, both) = counts(pred, gt)?;
    if p + g == 0 {
        return Ok(1.0);
    }
    Ok(2.0 * both as f64 / (p + g) as f64)
}

/// The intersection over union `|P ∩ G| / |P ∪ G|`; 1 when both are empty.
pub fn iou(pred: &Mask, gt: &Mask) -> Result<f64, MetricsError> {
    let (p, g, both) = counts(pred, gt)?;
    let union = p + g - both;
    if union == 0 {
        return Ok(1.0);
    }
    Ok(both as f64 / union as f64)
}

/// The 95th percentile Hausdorff distance in pixels; `None` unless both
/// masks have a target pixel.
pub fn hd95(pred: &Mask, gt: &Mask) -> Result<Option<f64>, MetricsError> {
    check_sizes(pred, gt)?;
    if pred.is_empty() || gt.is_empty() {
        return Ok(None);
    }
    let (w, h) = (pred.width(), pred.height());
    let sp = edt::surface(pred);
    let sg = edt::surface(gt);
    let to_g = edt::squared_distance_to(&sg, w, h);
    let to_p = edt::squared_distance_to(&sp, w, h);
    let mut d: Vec<f64> = sp
        .iter()
        .zip(&to_g)
        .chain(sg.iter().zip(&to_p))
        .filter(|(&on_surface, _)| on_surface)
        .map(|(_, &d2)| d2.sqrt())
        .collect();
    Ok(percentile_linear(&mut d, HD_QUANTILE))
}

/// The `q` quantile of `values` the way numpy's default (`linear`) method
/// computes it, reordering `values`; `None` when empty.
fn percentile_linear(values: &mut [f64], q: f64) -> Option<f64> {
    let n = values.len();
    if n == 0 {
        return None;
    }
    // numpy: virtual index n q + (alpha + q (1 - alpha - beta)) - 1 with
    // alpha = beta = 1, evaluated in the same order (q (n - 1) up to rounding).
    let virtual_index = (n as f64 * q + (1.0 - q) - 1.0).clamp(0.0, (n - 1) as f64);
    let lo = virtual_index.floor();
    let t = virtual_index - lo;
    let lo = lo as usize;
    let (_, &mut a, above) = values.select_nth_unstable_by(lo, f64::total_cmp);
    let b = above.iter().copied().min_by(f64::total_cmp).unwrap_or(a);
    // numpy's `_lerp`: from the nearer end, for symmetric rounding.
    let diff = b - a;
    Some(if t >= 0.5 {
        b - diff * (1.0 - t)
    } else {
        a + diff * t
    })
}

#[cfg(test)]
mod golden_tests;
#[cfg(test)]
mod tests;
