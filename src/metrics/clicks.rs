//! Simulated clicks: where a clinician correcting a mask would click next.
//!
//! The convention of interactive-segmentation benchmarks: among the
//! 8-connected regions where the mask is wrong (target missed, or
//! background taken), the largest; a click at its most interior pixel
//! (farthest from the region's edge, exact Euclidean distance; ties: the
//! first in raster order), positive on a missed region, negative on a false
//! one.

use crate::frame::Mask;
use crate::pipeline::Click;

use super::edt::squared_distance_to;
use super::MetricsError;

/// The next click on `pred` against `gt` (same size), or `None` when the
/// mask is already right.
pub fn next_click(pred: &Mask, gt: &Mask) -> Result<Option<Click>, MetricsError> {
    if (pred.width(), pred.height()) != (gt.width(), gt.height()) {
        return Err(MetricsError::SizeMismatch {
            pred_width: pred.width(),
            pred_height: pred.height(),
            gt_width: gt.width(),
            gt_height: gt.height(),
        });
    }
    let (w, h) = (pred.width(), pred.height());
    // 1: missed target, 2: false target, 0: right.
    let wrong: Vec<u8> = pred
        .data()
        .iter()
        .zip(gt.data())
        .map(|(&p, &g)| match (p != 0, g != 0) {
            (false, true) => 1,
            (true, false) => 2,
            _ => 0,
        })
        .collect();
    let mut label = vec![0u32; w * h];
    let mut best: Option<(usize, u32, u8)> = None; // (size, label, kind)
    let mut stack = Vec::new();
    let mut next = 0u32;
    for start in 0..w * h {
        if wrong[start] == 0 || label[start] != 0 {
            continue;
        }
        next += 1;
        let kind = wrong[start];
        let mut size = 0usize;
        label[start] = next;
        stack.push(start);
        while let Some(i) = stack.pop() {
            size += 1;
            let (x, y) = (i % w, i / w);
            for dy in -1i64..=1 {
                for dx in -1i64..=1 {
                    let (nx, ny) = (x as i64 + dx, y as i64 + dy);
                    if nx < 0 || ny < 0 || nx >= w as i64 || ny >= h as i64 {
                        continue;
                    }
                    let j = ny as usize * w + nx as usize;
                    if wrong[j] == kind && label[j] == 0 {
                        label[j] = next;
                        stack.push(j);
                    }
                }
            }
        }
        if best.is_none_or(|(s, _, _)| size > s) {
            best = Some((size, next, kind));
        }
    }
    let Some((_, region, kind)) = best else {
        return Ok(None);
    };
    let outside: Vec<bool> = label.iter().map(|&l| l != region).collect();
    let d = squared_distance_to(&outside, w, h);
    let mut pick = (0usize, -1.0f64);
    for (i, &l) in label.iter().enumerate() {
        if l == region && d[i] > pick.1 {
            pick = (i, d[i]);
        }
    }
    Ok(Some(Click {
        x: (pick.0 % w) as f32,
        y: (pick.0 / w) as f32,
        positive: kind == 1,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mask(w: usize, h: usize, on: impl Fn(usize, usize) -> bool) -> Mask {
        let mut m = Mask::zeros(w, h);
        for y in 0..h {
            for x in 0..w {
                m.data_mut()[y * w + x] = u8::from(on(x, y));
            }
        }
        m
    }

    #[test]
    fn the_largest_wrong_region_gets_a_click_at_its_centre() {
        // Ground truth: a 9×9 square at (2..11, 2..11) and a 3×3 at (20..23, 2..5).
        let gt = mask(32, 16, |x, y| {
            ((2..11).contains(&x) && (2..11).contains(&y))
                || ((20..23).contains(&x) && (2..5).contains(&y))
        });
        // Predicted: only the small one, plus a 4×4 false region.
        let pred = mask(32, 16, |x, y| {
            ((20..23).contains(&x) && (2..5).contains(&y))
                || ((26..30).contains(&x) && (10..14).contains(&y))
        });
        let c = next_click(&pred, &gt).unwrap().unwrap();
        assert_eq!((c.x, c.y, c.positive), (6.0, 6.0, true));
        // Once the square is found, the false region is next: a negative click.
        let pred2 = mask(32, 16, |x, y| {
            gt.data()[y * 32 + x] != 0 || ((26..30).contains(&x) && (10..14).contains(&y))
        });
        let c = next_click(&pred2, &gt).unwrap().unwrap();
        assert!(!c.positive);
        assert!(
            (26.0..30.0).contains(&c.x) && (10.0..14.0).contains(&c.y),
            "{c:?}"
        );
        assert_eq!(next_click(&gt, &gt).unwrap(), None);
        assert!(next_click(&Mask::zeros(3, 3), &gt).is_err());
    }
}
