//! After the decoder: the mask token with the best predicted IoU, its
//! logits resized to the frame and thresholded, the box mapped back to the
//! frame.

use crate::frame::Mask;
use crate::resize::{self, Tap};

/// Turns a decoder's low-resolution mask logits (n×n) into a binary mask of
/// any size: bilinear (align_corners = false) straight to the mask's size,
/// then `> threshold`. Keeps its tap tables and row buffer between calls.
#[derive(Debug, Clone, Default)]
pub struct MaskResizer {
    key: (usize, usize, usize),
    ys: Vec<Tap>,
    xs: Vec<Tap>,
    row: Vec<f32>,
}

impl MaskResizer {
    /// Fills `mask` (its current size) from `logits` (n×n, row-major).
    pub fn resize(&mut self, logits: &[f32], n: usize, threshold: f32, mask: &mut Mask) {
        let (w, h) = (mask.width(), mask.height());
        if self.key != (n, w, h) {
            resize::axis_into(n, h, &mut self.ys);
            resize::axis_into(n, w, &mut self.xs);
            self.key = (n, w, h);
        }
        self.row.resize(w, 0.0);
        for (row, ty) in mask.data_mut().chunks_exact_mut(w).zip(&self.ys) {
            resize::bilinear(
                logits,
                n,
                std::slice::from_ref(ty),
                &self.xs,
                &mut self.row,
                |v| v,
            );
            for (m, &v) in row.iter_mut().zip(&self.row) {
                *m = u8::from(v > threshold);
            }
        }
    }
}

/// The mask token of `tokens` with the best predicted IoU (ties: the first
/// listed). `tokens` must be non-empty and index inside `iou`.
pub fn best_token(tokens: &[u32], iou: &[f32]) -> usize {
    let mut best = tokens[0] as usize;
    for &t in &tokens[1..] {
        if iou[t as usize] > iou[best] {
            best = t as usize;
        }
    }
    best
}

/// An input-pixel box mapped to frame pixels (the inverse of the half-pixel
/// resize: input pixel centre i sits at frame coordinate (i + ½)·F/S − ½).
pub fn box_to_frame(b: [f32; 4], s: usize, w: usize, h: usize) -> [f32; 4] {
    let (sx, sy) = (w as f32 / s as f32, h as f32 / s as f32);
    let map = |v: f32, k: f32, n: usize| ((v + 0.5) * k - 0.5).clamp(0.0, (n - 1) as f32);
    [
        map(b[0], sx, w),
        map(b[1], sy, h),
        map(b[2], sx, w),
        map(b[3], sy, h),
    ]
}
