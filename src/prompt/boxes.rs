//! Box prompts: from the CAM's components (one box per kept component,
//! largest first) and from a decoder's low-resolution mask (refinement).
//! Pure functions on caller-owned buffers, so that tests can replay the
//! recipe's vectors through them; none allocates.
//!
//! Every box is grown the same way: its inclusive bounds, `box_margin × S`
//! ([`margin_px`]) added on each side, clamped to [0, S−1] ([`grow_box`]).

/// The most boxes one frame can prompt with (`prompt.max_boxes` ≤ this).
pub const MAX_BOXES: usize = 4;

/// Up to [`MAX_BOXES`] boxes (x0, y0, x1, y1), in order: a fixed-capacity
/// list, no heap.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Boxes {
    len: usize,
    items: [[f32; 4]; MAX_BOXES],
}

impl Boxes {
    /// No box.
    pub const fn new() -> Boxes {
        Boxes {
            len: 0,
            items: [[0.0; 4]; MAX_BOXES],
        }
    }

    /// Appends `b`; `false` (and nothing stored) when the list is full.
    pub fn push(&mut self, b: [f32; 4]) -> bool {
        if self.len == MAX_BOXES {
            return false;
        }
        self.items[self.len] = b;
        self.len += 1;
        true
    }

    /// Removes every box.
    pub fn clear(&mut self) {
        self.len = 0;
    }

    /// The boxes, in order.
    pub fn as_slice(&self) -> &[[f32; 4]] {
        &self.items[..self.len]
    }

    /// How many boxes.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether there is none.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The boxes, in order, to change in place.
    pub fn as_mut_slice(&mut self) -> &mut [[f32; 4]] {
        &mut self.items[..self.len]
    }

    /// The first box, to change in place.
    pub fn first_mut(&mut self) -> Option<&mut [f32; 4]> {
        self.as_mut_slice().first_mut()
    }

    /// The first box (the largest component's), if any.
    pub fn first(&self) -> Option<[f32; 4]> {
        self.as_slice().first().copied()
    }
}

/// The margin in input pixels: `box_margin × S`, computed in f64 and
/// rounded to f32 once (as the recipe does in Python floats).
pub fn margin_px(box_margin: f32, input_size: usize) -> f32 {
    (f64::from(box_margin) * input_size as f64) as f32
}

/// Inclusive bounds (x0, y0, x1, y1) grown by `margin` on each side and
/// clamped to [0, `input_size` − 1].
pub fn grow_box(bounds: [f32; 4], margin: f32, input_size: usize) -> [f32; 4] {
    let hi = input_size.saturating_sub(1) as f32;
    [
        (bounds[0] - margin).max(0.0),
        (bounds[1] - margin).max(0.0),
        (bounds[2] + margin).min(hi),
        (bounds[3] + margin).min(hi),
    ]
}

/// Labels the 8-connected components of the `size`×`size` foreground
/// `is_fg(i)` (`i` row-major) in raster order of their first pixel:
/// `labels[i]` is k ≥ 1 for the k-th component, 0 for background;
/// `sizes[k]` is its pixel count (`sizes[0]` = 0). `labels` holds `size²`
/// values (fewer: nothing is labelled); `sizes` and `stack` are cleared and
/// reused (no allocation once their capacity suffices: `size²/2 + 2` and
/// `size²`).
pub fn label_components(
    size: usize,
    is_fg: impl Fn(usize) -> bool,
    labels: &mut [u32],
    sizes: &mut Vec<usize>,
    stack: &mut Vec<u32>,
) {
    let s = size;
    labels.fill(0);
    sizes.clear();
    sizes.push(0);
    if labels.len() < s * s {
        return;
    }
    for start in 0..s * s {
        if labels[start] != 0 || !is_fg(start) {
            continue;
        }
        let label = sizes.len() as u32;
        let mut count = 0usize;
        labels[start] = label;
        stack.clear();
        stack.push(start as u32);
        while let Some(p) = stack.pop() {
            count += 1;
            let (py, px) = (p as usize / s, p as usize % s);
            for ny in py.saturating_sub(1)..=(py + 1).min(s - 1) {
                for nx in px.saturating_sub(1)..=(px + 1).min(s - 1) {
                    let q = ny * s + nx;
                    if labels[q] == 0 && is_fg(q) {
                        labels[q] = label;
                        stack.push(q as u32);
                    }
                }
            }
        }
        sizes.push(count);
    }
}

/// The labels of the `max_boxes` (at most [`MAX_BOXES`]) largest components
/// of at least `min_component_px` pixels, largest first; ties keep the
/// lower label (the first in raster order of its first pixel), as the
/// single-box rule picks its largest. Returns the labels and how many.
pub fn largest_components(
    sizes: &[usize],
    min_component_px: usize,
    max_boxes: usize,
) -> ([u32; MAX_BOXES], usize) {
    let cap = max_boxes.min(MAX_BOXES);
    let mut top = [(0u32, 0usize); MAX_BOXES];
    let mut len = 0;
    for (k, &n) in sizes.iter().enumerate().skip(1) {
        if n < min_component_px || cap == 0 {
            continue;
        }
        // After every kept one at least as large: ties stay in label order.
        let at = top[..len].iter().position(|&(_, m)| n > m).unwrap_or(len);
        if at == cap {
            continue;
        }
        let end = len.min(cap - 1);
        top.copy_within(at..end, at + 1);
        top[at] = (k as u32, n);
        len = (len + 1).min(cap);
    }
    let mut labels = [0u32; MAX_BOXES];
    for (l, &(k, _)) in labels.iter_mut().zip(&top[..len]) {
        *l = k;
    }
    (labels, len)
}

/// One box per kept component of a labelling ([`label_components`]), the
/// largest first, at most `max_boxes` ([`largest_components`]): each its
/// tight inclusive pixel bounds grown by `margin` and clamped
/// ([`grow_box`]). `labels` is `input_size`×`input_size`; empty when no
/// component is kept.
pub fn component_boxes(
    labels: &[u32],
    sizes: &[usize],
    input_size: usize,
    min_component_px: usize,
    max_boxes: usize,
    margin: f32,
) -> Boxes {
    let (chosen, n) = largest_components(sizes, min_component_px, max_boxes);
    let chosen = &chosen[..n];
    let mut bounds = [[usize::MAX, usize::MAX, 0, 0]; MAX_BOXES];
    let s = input_size.max(1);
    for (i, &l) in labels.iter().enumerate() {
        if l == 0 {
            continue;
        }
        if let Some(j) = chosen.iter().position(|&c| c == l) {
            let (y, x) = (i / s, i % s);
            let b = &mut bounds[j];
            *b = [b[0].min(x), b[1].min(y), b[2].max(x), b[3].max(y)];
        }
    }
    let mut boxes = Boxes::new();
    for b in &bounds[..n] {
        let b = [b[0] as f32, b[1] as f32, b[2] as f32, b[3] as f32];
        boxes.push(grow_box(b, margin, input_size));
    }
    boxes
}

/// The refinement box of a decoder's chosen low-resolution logits (`n`×`n`,
/// row-major): the inclusive bounds of `logits > threshold`, mapped to the
/// `input_size`² input (scale = S / n: `[xmin·scale, ymin·scale,
/// (xmax + 1)·scale − 1, (ymax + 1)·scale − 1]`), grown by `margin` and
/// clamped ([`grow_box`]). `None` when no logit is above the threshold
/// (NaN counts as below).
pub fn box_from_low_res(
    logits: &[f32],
    n: usize,
    threshold: f32,
    input_size: usize,
    margin: f32,
) -> Option<[f32; 4]> {
    if n == 0 {
        return None;
    }
    let mut b = [usize::MAX, usize::MAX, 0, 0];
    let mut any = false;
    for (y, row) in logits.chunks_exact(n).take(n).enumerate() {
        for (x, &v) in row.iter().enumerate() {
            if v > threshold {
                any = true;
                b = [b[0].min(x), b[1].min(y), b[2].max(x), b[3].max(y)];
            }
        }
    }
    if !any {
        return None;
    }
    let scale = input_size as f32 / n as f32;
    let bounds = [
        b[0] as f32 * scale,
        b[1] as f32 * scale,
        (b[2] + 1) as f32 * scale - 1.0,
        (b[3] + 1) as f32 * scale - 1.0,
    ];
    Some(grow_box(bounds, margin, input_size))
}

#[cfg(test)]
mod tests;
