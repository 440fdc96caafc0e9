//! Intersection over union of two masks (non-zero: target); two empty
//! masks count as 1. Shared through `#[path]` by the tests that compare
//! masks of two engines.

use sammix::frame::Mask;

pub fn mask_iou(a: &Mask, b: &Mask) -> f64 {
    let (mut inter, mut union) = (0usize, 0usize);
    for (&x, &y) in a.data().iter().zip(b.data()) {
        inter += usize::from(x != 0 && y != 0);
        union += usize::from(x != 0 || y != 0);
    }
    if union == 0 {
        1.0
    } else {
        inter as f64 / union as f64
    }
}
