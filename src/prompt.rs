//! CAM → prompt: the task-guidance rule of SAM-Mix, identical to the recipe's
//! `sammix_recipe/prompt.py` (the bundle's reference vectors replay it in
//! `tests/reference_prompt.rs`).
//!
//! 1. The CAM (h×w, the target class) → ReLU. Maximum ≤ 0: no prompt.
//! 2. Bilinear upsample to the encoder input size S×S (align_corners =
//!    false: PyTorch's half-pixel rule, source coordinates clamped at 0).
//! 3. Threshold: `up >= cam_threshold × max(up)`.
//! 4. 8-connected components, numbered in raster order of their first
//!    pixel; components under `min_component_px` are dropped; none left: no
//!    prompt. The largest kept one (ties: the first in raster order) gives
//!    the box.
//! 5. Box = its inclusive pixel bounds grown by `box_margin × S` on each
//!    side, clamped to [0, S−1]; the corners go to the decoder with labels 2
//!    and 3.
//! 6. Dense prompt = the mask of *all* kept components, area-averaged to
//!    4E×4E, mapped to logits `s × (2f − 1)`.
//! 7. With `max_boxes` > 1: one box per kept component, largest first (ties:
//!    the first in raster order), at most `max_boxes`, each grown and
//!    clamped as in step 5 ([`component_boxes`]); every box is a decoder
//!    call with the same dense prompt.
//! 8. Refinement, `refine_rounds` per box, runs in the pipeline on the
//!    decoder's output ([`box_from_low_res`]).
//!
//! Arithmetic is f32 in the same order as the recipe, so boxes and masks come
//! out bit-identical. A [`PromptEngine`] owns every buffer it needs: once
//! built, computing a prompt allocates nothing.

use crate::bundle::PromptParams;
use crate::resize::{self, Tap};

mod boxes;

pub use boxes::{
    box_from_low_res, component_boxes, grow_box, label_components, largest_components, margin_px,
    Boxes, MAX_BOXES,
};

/// The labels of the box corners for the SAM decoder's `point_labels`.
pub const BOX_LABELS: [f32; 2] = [2.0, 3.0];

/// A CAM whose size does not match what the engine was built for.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("CAM of {got} values, expected {height}x{width} = {expected}")]
pub struct CamShapeError {
    /// CAM height the engine expects.
    pub height: usize,
    /// CAM width the engine expects.
    pub width: usize,
    /// `height × width`.
    pub expected: usize,
    /// Values given.
    pub got: usize,
}

/// A prompt for the SAM decoder, in encoder-input pixels.
#[derive(Debug, Clone, PartialEq)]
pub struct Prompt {
    /// Box (x0, y0, x1, y1), inclusive pixel coordinates of the S×S input:
    /// the largest kept component's (the first of `boxes`).
    pub bbox: [f32; 4],
    /// One box per kept component, largest first, at most `max_boxes`.
    pub boxes: Boxes,
    /// Pixels of the largest kept component (the one the box frames).
    pub box_component_px: usize,
    /// Kept components of the thresholded CAM, S×S, 0 or 1.
    pub mask: Vec<u8>,
    /// The dense prompt (`mask_input`), 4E×4E logits.
    pub dense: Vec<f32>,
}

impl Prompt {
    /// The box corners as the decoder's `point_coords` (x0, y0, x1, y1).
    pub fn point_coords(&self) -> [f32; 4] {
        self.bbox
    }
}

/// Computes prompts from CAMs of one fixed size, reusing its buffers.
#[derive(Debug, Clone)]
pub struct PromptEngine {
    params: PromptParams,
    cam_h: usize,
    cam_w: usize,
    size: usize,
    dense_size: usize,
    up: Vec<f32>,
    labels: Vec<u32>,
    sizes: Vec<usize>,
    stack: Vec<u32>,
    axis_y: Vec<Tap>,
    axis_x: Vec<Tap>,
    prompt: Prompt,
}

impl PromptEngine {
    /// An engine for `cam_h × cam_w` CAMs, an `input_size`² encoder input and
    /// a `dense_size`² dense prompt (4E). `input_size` must be a multiple of
    /// `dense_size` (the bundle validation checks this).
    pub fn new(
        params: PromptParams,
        cam_h: usize,
        cam_w: usize,
        input_size: usize,
        dense_size: usize,
    ) -> PromptEngine {
        let n = input_size * input_size;
        PromptEngine {
            params,
            cam_h,
            cam_w,
            size: input_size,
            dense_size,
            up: vec![0.0; n],
            labels: vec![0; n],
            sizes: Vec::with_capacity(n / 2 + 2),
            stack: Vec::with_capacity(n),
            axis_y: resize::axis(cam_h, input_size),
            axis_x: resize::axis(cam_w, input_size),
            prompt: Prompt {
                bbox: [0.0; 4],
                boxes: Boxes::new(),
                box_component_px: 0,
                mask: vec![0; n],
                dense: vec![0.0; dense_size * dense_size],
            },
        }
    }

    /// The encoder input size S.
    pub fn input_size(&self) -> usize {
        self.size
    }

    /// The rule's parameters.
    pub fn params(&self) -> &PromptParams {
        &self.params
    }

    /// The prompt of the last call that gave one (its buffers are reused:
    /// the next [`PromptEngine::compute`] overwrites it).
    pub fn last_prompt(&self) -> &Prompt {
        &self.prompt
    }

    /// The upsampled CAM of the last call (S×S, after ReLU), for overlays
    /// and debugging; meaningful only after a call that got past step 1.
    pub fn upsampled(&self) -> &[f32] {
        &self.up
    }

    /// Applies the rule to `cam` (row-major `cam_h × cam_w`): `Ok(None)`
    /// when it gives no prompt.
    pub fn compute(&mut self, cam: &[f32]) -> Result<Option<&Prompt>, CamShapeError> {
        let expected = self.cam_h * self.cam_w;
        if cam.len() != expected {
            return Err(CamShapeError {
                height: self.cam_h,
                width: self.cam_w,
                expected,
                got: cam.len(),
            });
        }
        // 1. ReLU; a CAM without a positive value (or with NaN only) gives
        // nothing (NaN values count as 0, so the maxima are never NaN).
        let cam_max = cam.iter().fold(0.0f32, |m, &v| if v > m { v } else { m });
        if cam_max <= 0.0 {
            return Ok(None);
        }
        // 2. Upsample the ReLU'd CAM.
        self.upsample(cam);
        let peak = self
            .up
            .iter()
            .fold(0.0f32, |m, &v| if v > m { v } else { m });
        if peak <= 0.0 {
            return Ok(None);
        }
        // 3.–4. Threshold and label.
        let threshold = self.params.cam_threshold * peak;
        let up = &self.up;
        label_components(
            self.size,
            |i| up[i] >= threshold,
            &mut self.labels,
            &mut self.sizes,
            &mut self.stack,
        );
        // 5. (and 7.) Boxes from the largest kept components.
        let min = self.params.min_component_px as usize;
        let margin = margin_px(self.params.box_margin, self.size);
        // The manifest keeps it in 1..=MAX_BOXES; unchecked params too.
        let max_boxes = (self.params.max_boxes as usize).clamp(1, MAX_BOXES);
        let boxes = component_boxes(&self.labels, &self.sizes, self.size, min, max_boxes, margin);
        let Some(first) = boxes.first() else {
            return Ok(None);
        };
        let (largest, _) = largest_components(&self.sizes, min, 1);
        self.prompt.bbox = first;
        self.prompt.boxes = boxes;
        self.prompt.box_component_px = self.sizes[largest[0] as usize];
        self.keep_mask();
        // 6. Dense prompt.
        self.dense();
        Ok(Some(&self.prompt))
    }

    fn upsample(&mut self, cam: &[f32]) {
        let relu = |v: f32| if v > 0.0 { v } else { 0.0 };
        resize::bilinear(
            cam,
            self.cam_w,
            &self.axis_y,
            &self.axis_x,
            &mut self.up,
            relu,
        );
    }

    /// Writes the kept-components mask.
    fn keep_mask(&mut self) {
        let min = self.params.min_component_px as usize;
        for (&l, m) in self.labels.iter().zip(&mut self.prompt.mask) {
            *m = u8::from(l != 0 && self.sizes[l as usize] >= min);
        }
    }

    fn dense(&mut self) {
        let d = self.dense_size;
        let k = self.size / d;
        let area = (k * k) as f32;
        let logit = self.params.dense_logit;
        for dy in 0..d {
            for dx in 0..d {
                let mut count = 0u32;
                for y in dy * k..(dy + 1) * k {
                    let row =
                        &self.prompt.mask[y * self.size + dx * k..y * self.size + (dx + 1) * k];
                    count += row.iter().map(|&v| u32::from(v)).sum::<u32>();
                }
                let frac = count as f32 / area;
                self.prompt.dense[dy * d + dx] = logit * (2.0 * frac - 1.0);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params() -> PromptParams {
        PromptParams {
            cam_threshold: 0.4,
            min_component_px: 48,
            box_margin: 0.03,
            dense_logit: 8.0,
            max_boxes: 1,
            refine_rounds: 0,
        }
    }

    #[test]
    fn no_prompt_for_non_positive_or_nan_cams() {
        let mut e = PromptEngine::new(params(), 4, 4, 64, 16);
        assert!(e.compute(&[0.0; 16]).unwrap().is_none());
        assert!(e.compute(&[-1.0; 16]).unwrap().is_none());
        assert!(e.compute(&[f32::NAN; 16]).unwrap().is_none());
        let err = e.compute(&[1.0; 15]).unwrap_err();
        assert_eq!(err.to_string(), "CAM of 15 values, expected 4x4 = 16");
    }

    #[test]
    fn flat_cam_prompts_the_whole_image() {
        let mut e = PromptEngine::new(params(), 4, 4, 64, 16);
        let p = e.compute(&[1.0; 16]).unwrap().unwrap();
        assert_eq!(p.bbox, [0.0, 0.0, 63.0, 63.0]);
        assert_eq!(p.box_component_px, 64 * 64);
        assert!(p.dense.iter().all(|&v| v == 8.0));
    }

    #[test]
    fn small_components_are_dropped() {
        // One hot CAM cell upsampled ×4 covers far fewer than 48 px... with a
        // 16×16 input: raise the minimum instead.
        let mut p = params();
        p.min_component_px = 10_000;
        let mut e = PromptEngine::new(p, 4, 4, 64, 16);
        assert!(e.compute(&[1.0; 16]).unwrap().is_none());
    }

    #[test]
    fn box_comes_from_the_largest_component_and_dense_from_all() {
        // Two separate hot cells of an 8×8 CAM, the right one hotter so both
        // pass 0.4 × max, the left one larger (2 cells).
        let mut cam = [0.0f32; 64];
        cam[3 * 8 + 1] = 1.0;
        cam[4 * 8 + 1] = 1.0;
        cam[3 * 8 + 6] = 1.0;
        let mut p = params();
        p.min_component_px = 1;
        p.box_margin = 0.0;
        let mut e = PromptEngine::new(p, 8, 8, 64, 16);
        let pr = e.compute(&cam).unwrap().unwrap().clone();
        assert!(pr.bbox[0] < 16.0 && pr.bbox[2] < 24.0, "{:?}", pr.bbox);
        let right: u32 = (0..64)
            .flat_map(|y| (40..64).map(move |x| y * 64 + x))
            .map(|i| u32::from(pr.mask[i]))
            .sum();
        assert!(right > 0, "the smaller component is in the dense prompt");
        assert_eq!(pr.boxes.as_slice(), &[pr.bbox], "max_boxes = 1: one box");

        // Step 7: a box per component, the larger first; the rest the same.
        let mut p = params();
        p.min_component_px = 1;
        p.box_margin = 0.0;
        p.max_boxes = 3;
        let mut e = PromptEngine::new(p, 8, 8, 64, 16);
        let two = e.compute(&cam).unwrap().unwrap().clone();
        assert_eq!(two.boxes.len(), 2);
        assert_eq!(two.boxes.first(), Some(pr.bbox));
        assert_eq!(two.bbox, pr.bbox);
        let right_box = two.boxes.as_slice()[1];
        assert!(right_box[0] >= 40.0, "{right_box:?}");
        assert_eq!((two.mask, two.dense), (pr.mask, pr.dense));
    }
}
