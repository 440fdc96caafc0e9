//! Corrections: a clinician's clicks on the last processed frame.
//!
//! SAM-Mix's operating model is that the CAM proposes and the clinician
//! corrects. A correction re-runs only the mask decoder, on the embeddings
//! the frame already has, with the frame's dense prompt. The decoders we
//! ship were fine-tuned on box prompts (LiteMedSAM, like MedSAM, was
//! trained on boxes), and clicks given to them as SAM's point prompts made
//! the accurate bundle's masks worse (Dice+ −0.03 a click on 60 held-out
//! frames), so a click edits the boxes instead ([`click_boxes`]):
//!
//! - a positive click outside every CAM box (a lesion the CAM missed) adds
//!   a box of side [`CLICK_BOX`]·S centred on it;
//! - a negative click inside a box moves that box's nearest edge past it
//!   (a box shrunk to nothing is dropped);
//! - a positive click inside a box changes nothing.
//!
//! The dense prompt follows the edited boxes ([`click_dense`]): where a
//! negative click took part of a box away, the CAM's evidence there goes
//! too ("nothing here"), and inside a box a positive click made, the CAM's
//! "nothing here" is lifted to neutral, so the box decides. Without it, a
//! decoder that leans on the dense prompt (the student's rule chose
//! `dense_logit = 8`) kept the mask a negative click had cut off.
//!
//! Clicks accumulate: each call to [`Pipeline::correct`] applies all clicks
//! so far to the frame's CAM boxes. A frame whose encoder did not run (its
//! classifier gated it out before the encoder, `graphs.classifier.input =
//! "image"`) runs the encoder once, counted in [`Correction::encoder_ran`]
//! and [`Pipeline::encoder_runs`]. Both decoders run corrections (each call
//! is an ordinary box prompt).

use std::time::Instant;

use serde::Serialize;

use crate::frame::Mask;
use crate::prompt::margin_px;

use super::decode::Calls;
use super::encode::Embeddings;
use super::{all_finite, Pipeline, PipelineError};

/// The side of the box a positive click outside every CAM box makes, as a
/// fraction of the input size S (0.2: 51 px at S = 256, a typical lesion
/// of the recipe's frames with its margin).
pub const CLICK_BOX: f32 = 0.2;

/// The most clicks on one frame.
pub const MAX_CLICKS: usize = 32;

/// A click on a frame, in frame pixels.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Click {
    /// Column.
    pub x: f32,
    /// Row.
    pub y: f32,
    /// On the target (`true`) or on background.
    pub positive: bool,
}

/// A click that is not `X,Y,+` or `X,Y,-` with finite, non-negative
/// pixel coordinates.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?}: expected X,Y,+ or X,Y,- (pixels; + on the target, - on background)")]
pub struct ClickSyntaxError(pub String);

impl std::str::FromStr for Click {
    type Err = ClickSyntaxError;

    /// `X,Y,+` (on the target) or `X,Y,-` (background), frame pixels;
    /// `1` and `0` also name the sign.
    fn from_str(s: &str) -> Result<Click, ClickSyntaxError> {
        let bad = || ClickSyntaxError(s.chars().take(64).collect());
        let mut parts = s.split(',').map(str::trim);
        let (Some(x), Some(y), Some(sign), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(bad());
        };
        let x: f32 = x.parse().map_err(|_| bad())?;
        let y: f32 = y.parse().map_err(|_| bad())?;
        let positive = match sign {
            "+" | "1" => true,
            "-" | "0" => false,
            _ => return Err(bad()),
        };
        if !(x.is_finite() && y.is_finite() && x >= 0.0 && y >= 0.0) {
            return Err(bad());
        }
        Ok(Click { x, y, positive })
    }
}

/// What one correction did.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Correction {
    /// The frame corrected.
    pub sequence: u64,
    /// Clicks applied (all of them, not only the new ones).
    pub clicks: usize,
    /// The mask's area before, in frame pixels.
    pub mask_area_before: usize,
    /// The corrected mask's area.
    pub mask_area: usize,
    /// Decoder calls made (one per box after the clicks' edits).
    pub decoder_calls: usize,
    /// Whether the encoder had to run (a frame gated out before it).
    pub encoder_ran: bool,
    /// Wall time of the correction, ms.
    pub ms: f64,
}

/// The last processed frame, as a correction needs it.
#[derive(Debug, Default)]
pub(crate) struct LastFrame {
    /// The frame, unless it was invalid or none ran yet.
    pub(crate) sequence: Option<u64>,
    pub(crate) size: (usize, usize),
    pub(crate) mask_area: usize,
    /// Whether the encoder's current embeddings
    /// ([`super::encode::EncoderStage::current`]) are this frame's.
    pub(crate) has_emb: bool,
    /// The CAM's boxes (encoder-input pixels).
    pub(crate) boxes: Vec<[f32; 4]>,
    /// Whether the frame had a CAM prompt: its dense prompt is then the
    /// prompt engine's last one (not copied per frame).
    pub(crate) has_dense: bool,
    /// The dense prompt of a frame without one ("nothing here").
    empty_dense: Vec<f32>,
    /// Clicks so far, in encoder-input pixels.
    clicks: Vec<Click>,
    /// The boxes the clicks made of `boxes`.
    edited: Vec<[f32; 4]>,
    /// The dense prompt the clicks made of the frame's.
    edited_dense: Vec<f32>,
}

impl LastFrame {
    /// Forgets the frame before (keeping the buffers).
    pub(crate) fn start(&mut self, size: (usize, usize)) {
        self.sequence = None;
        self.size = size;
        self.mask_area = 0;
        self.has_emb = false;
        self.boxes.clear();
        self.has_dense = false;
        self.clicks.clear();
    }
}

/// The boxes a correction's decoder calls take: `boxes` (the CAM's) edited
/// by `clicks` as the module docs say; everything in encoder-input pixels
/// (`s` the input size). Returns how many of `out` are CAM boxes (they come
/// first; the rest are the positive clicks' boxes).
pub fn click_boxes(
    boxes: &[[f32; 4]],
    clicks: &[Click],
    s: usize,
    out: &mut Vec<[f32; 4]>,
) -> usize {
    out.clear();
    let inside = |c: &Click, b: &[f32; 4]| c.x >= b[0] && c.x <= b[2] && c.y >= b[1] && c.y <= b[3];
    for b in boxes {
        let mut b = *b;
        for c in clicks.iter().filter(|c| !c.positive) {
            if c.x > b[0] && c.x < b[2] && c.y > b[1] && c.y < b[3] {
                let d = [c.x - b[0], c.y - b[1], b[2] - c.x, b[3] - c.y];
                let nearest = (0..4).min_by(|&i, &j| d[i].total_cmp(&d[j])).unwrap_or(0);
                match nearest {
                    0 => b[0] = c.x + 1.0,
                    1 => b[1] = c.y + 1.0,
                    2 => b[2] = c.x - 1.0,
                    _ => b[3] = c.y - 1.0,
                }
            }
        }
        if b[0] < b[2] && b[1] < b[3] {
            out.push(b);
        }
    }
    let from_cam = out.len();
    let s = s as f32;
    let half = CLICK_BOX * s / 2.0;
    for c in clicks {
        if c.positive && !boxes.iter().any(|b| inside(c, b)) {
            out.push([
                (c.x - half).max(0.0),
                (c.y - half).max(0.0),
                (c.x + half).min(s - 1.0),
                (c.y + half).min(s - 1.0),
            ]);
        }
    }
    from_cam
}

/// A frame's CAM boxes and what clicks made of them ([`click_boxes`]).
#[derive(Debug, Clone, Copy)]
pub struct EditedBoxes<'a> {
    /// The CAM's boxes.
    pub cam: &'a [[f32; 4]],
    /// The boxes after the clicks: the CAM's (edited) first, then the
    /// positive clicks' own.
    pub edited: &'a [[f32; 4]],
    /// How many of `edited` are CAM boxes ([`click_boxes`]' return value).
    pub from_cam: usize,
}

/// The dense prompt a correction's decoder calls take: `dense` (the
/// frame's, `n`×`n` logits over the `s`×`s` input) with each cell whose
/// centre lies inside a CAM box but inside none of the edited CAM boxes
/// set to `-logit`, and each cell inside a positive click's box raised to
/// at least 0. Cells elsewhere keep their value, so clicks that edit
/// nothing leave the prompt as it was.
pub fn click_dense(
    dense: &[f32],
    n: usize,
    s: usize,
    boxes: EditedBoxes<'_>,
    logit: f32,
    out: &mut Vec<f32>,
) {
    out.clear();
    out.extend_from_slice(dense);
    if n == 0 || out.len() != n * n {
        return;
    }
    let inside = |b: &[f32; 4], x: f32, y: f32| x >= b[0] && x <= b[2] && y >= b[1] && y <= b[3];
    let (cam_edited, clicked) = boxes
        .edited
        .split_at(boxes.from_cam.min(boxes.edited.len()));
    let cell = s as f32 / n as f32;
    for (r, row) in out.chunks_exact_mut(n).enumerate() {
        // The cell's centre in input pixels (pixel centres at integers).
        let y = (r as f32 + 0.5) * cell - 0.5;
        for (c, v) in row.iter_mut().enumerate() {
            let x = (c as f32 + 0.5) * cell - 0.5;
            if clicked.iter().any(|b| inside(b, x, y)) {
                *v = v.max(0.0);
            } else if boxes.cam.iter().any(|b| inside(b, x, y))
                && !cam_edited.iter().any(|b| inside(b, x, y))
            {
                *v = -logit;
            }
        }
    }
}

impl Pipeline {
    /// Re-segments the last processed frame with `clicks` (frame pixels)
    /// editing its CAM boxes; the mask (frame size) goes to `mask`. Clicks
    /// accumulate over calls until the next frame (see the module docs).
    pub fn correct(
        &mut self,
        clicks: &[Click],
        mask: &mut Mask,
    ) -> Result<Correction, PipelineError> {
        let start = Instant::now();
        let Some(sequence) = self.last.sequence else {
            return Err(PipelineError::Frame {
                sequence: 0,
                problem: "no frame to correct: process a frame first (an invalid frame cannot \
                          be corrected)"
                    .into(),
            });
        };
        let (w, h) = self.last.size;
        let s = self.manifest.input.size as usize;
        if self.last.clicks.len() + clicks.len() > MAX_CLICKS {
            return Err(PipelineError::Frame {
                sequence,
                problem: format!("more than {MAX_CLICKS} clicks on one frame"),
            });
        }
        for c in clicks {
            let inside = c.x.is_finite()
                && c.y.is_finite()
                && (0.0..w as f32).contains(&c.x)
                && (0.0..h as f32).contains(&c.y);
            if !inside {
                return Err(PipelineError::Frame {
                    sequence,
                    problem: format!("click at ({}, {}) is outside the {w}x{h} frame", c.x, c.y),
                });
            }
        }
        if self.last.clicks.is_empty() && clicks.is_empty() {
            return Err(PipelineError::Frame {
                sequence,
                problem: "a correction needs at least one click".into(),
            });
        }
        for c in clicks {
            // Frame pixel centres to input pixel centres (box_to_frame's inverse).
            self.last.clicks.push(Click {
                x: (c.x + 0.5) * s as f32 / w as f32 - 0.5,
                y: (c.y + 0.5) * s as f32 / h as f32 - 0.5,
                positive: c.positive,
            });
        }
        let mut encoder_ran = false;
        if !self.last.has_emb {
            let mut reused = false;
            self.encoder
                .embeddings(&self.input, Embeddings::ToEncode, sequence, &mut reused)?;
            encoder_ran = !reused;
            self.last.has_emb = true;
        }
        let Some(emb) = self.encoder.current() else {
            return Err(PipelineError::Frame {
                sequence,
                problem: "the frame's image embeddings are gone: correction not applied".into(),
            });
        };
        let m = &self.manifest;
        let dense_size = 4 * m.input.embedding_size as usize;
        let last = &mut self.last;
        let dense: &[f32] = if last.has_dense {
            &self.prompt.last_prompt().dense
        } else {
            // No CAM prompt on this frame: "nothing here", the recipe's
            // dense prompt for a frame without one.
            last.empty_dense.clear();
            last.empty_dense
                .resize(dense_size * dense_size, -m.prompt.dense_logit);
            &last.empty_dense
        };
        let from_cam = click_boxes(&last.boxes, &last.clicks, s, &mut last.edited);
        let boxes = EditedBoxes {
            cam: &last.boxes,
            edited: &last.edited,
            from_cam,
        };
        click_dense(
            dense,
            dense_size,
            s,
            boxes,
            m.prompt.dense_logit,
            &mut last.edited_dense,
        );
        let dense = &last.edited_dense;
        let calls = Calls {
            boxes: &last.edited,
            dense,
            mask_tokens: &m.decoder.mask_tokens,
            mask_threshold: m.decoder.mask_threshold,
            refine_rounds: 0,
            input_size: s,
            margin: margin_px(m.prompt.box_margin, s),
        };
        let ran = self
            .decoders
            .run_box_list(emb, &last.edited, dense, &calls, sequence);
        let (decoder_calls, logits) = ran?;
        mask.reset(w, h);
        if decoder_calls > 0 {
            if !all_finite(logits) {
                return Err(PipelineError::Frame {
                    sequence,
                    problem: "the decoder's logits hold NaN or Inf: correction not applied".into(),
                });
            }
            self.mask_resizer
                .resize(logits, dense_size, m.decoder.mask_threshold, mask);
        }
        let before = self.last.mask_area;
        self.last.mask_area = mask.area();
        Ok(Correction {
            sequence,
            clicks: self.last.clicks.len(),
            mask_area_before: before,
            mask_area: self.last.mask_area,
            decoder_calls,
            encoder_ran,
            ms: start.elapsed().as_secs_f64() * 1e3,
        })
    }

    /// Encoder runs since the pipeline was made (frames and corrections).
    pub fn encoder_runs(&self) -> u64 {
        self.encoder.runs
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const fn click(x: f32, y: f32, positive: bool) -> Click {
        Click { x, y, positive }
    }

    #[test]
    fn clicks_edit_the_boxes() {
        let boxes = [[10.0, 10.0, 100.0, 60.0]];
        let mut out = Vec::new();
        // A positive click inside: nothing changes.
        click_boxes(&boxes, &[click(50.0, 30.0, true)], 256, &mut out);
        assert_eq!(out, boxes);
        // A negative click near the right edge moves it left of the click.
        click_boxes(&boxes, &[click(90.0, 30.0, false)], 256, &mut out);
        assert_eq!(out, [[10.0, 10.0, 89.0, 60.0]]);
        // A negative click outside every box changes nothing.
        click_boxes(&boxes, &[click(200.0, 200.0, false)], 256, &mut out);
        assert_eq!(out, boxes);
        // A positive click outside: a box of side 0.2·S on it, clamped.
        click_boxes(&boxes, &[click(250.0, 128.0, true)], 256, &mut out);
        let half = CLICK_BOX * 256.0 / 2.0;
        assert_eq!(
            out,
            [boxes[0], [250.0 - half, 128.0 - half, 255.0, 128.0 + half]]
        );
        // A box shrunk to nothing goes.
        click_boxes(
            &[[10.0, 10.0, 12.0, 12.0]],
            &[click(11.0, 11.0, false)],
            256,
            &mut out,
        );
        assert!(out.is_empty());
    }

    #[test]
    fn the_dense_prompt_follows_the_edited_boxes() {
        // 8×8 cells over a 16×16 input: cell (r, c) is centred at (2c + 0.5, 2r + 0.5).
        let (n, s, logit) = (8, 16, 4.0);
        let dense: Vec<f32> = (0..n * n)
            .map(|i| if i % 2 == 0 { 2.0 } else { -1.0 })
            .collect();
        let cam = [[0.0, 0.0, 7.0, 7.0]];
        let mut edited = Vec::new();
        let mut out = Vec::new();
        let cell = |out: &[f32], r: usize, c: usize| out[r * n + c];
        // A positive click inside the box edits nothing: the prompt is the frame's.
        let from_cam = click_boxes(&cam, &[click(3.0, 3.0, true)], s, &mut edited);
        let boxes = EditedBoxes {
            cam: &cam,
            edited: &edited,
            from_cam,
        };
        click_dense(&dense, n, s, boxes, logit, &mut out);
        assert_eq!(out, dense);
        // A negative click near the right edge: the box ends at x = 5, the
        // cells it lost (centres 6.5) say "nothing here", the rest stay.
        let from_cam = click_boxes(&cam, &[click(6.0, 3.0, false)], s, &mut edited);
        assert_eq!(edited, [[0.0, 0.0, 5.0, 7.0]]);
        let boxes = EditedBoxes {
            cam: &cam,
            edited: &edited,
            from_cam,
        };
        click_dense(&dense, n, s, boxes, logit, &mut out);
        for r in 0..n {
            for c in 0..n {
                let lost = r < 4 && c == 3;
                let want = if lost { -logit } else { cell(&dense, r, c) };
                assert_eq!(cell(&out, r, c), want, "cell ({r}, {c})");
            }
        }
        // A positive click far from the box: its own box, where negative
        // cells are lifted to 0 and positive ones kept.
        let from_cam = click_boxes(&cam, &[click(12.0, 12.0, true)], s, &mut edited);
        assert_eq!(from_cam, 1);
        let boxes = EditedBoxes {
            cam: &cam,
            edited: &edited,
            from_cam,
        };
        click_dense(&dense, n, s, boxes, logit, &mut out);
        // Its box is 12 ± 1.6: cells centred at 10.5 and 12.5 are inside.
        assert_eq!(cell(&out, 6, 6), 2.0);
        assert_eq!(cell(&out, 5, 5), 0.0);
        assert_eq!(cell(&dense, 5, 5), -1.0);
        assert_eq!(cell(&out, 7, 7), cell(&dense, 7, 7));
        assert_eq!(cell(&out, 0, 0), cell(&dense, 0, 0));
    }
}
