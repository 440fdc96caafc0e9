//! `[input]`: the model input's size, channels, colour, normalisation and
//! resize, as the manifest declares them.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::frame::PixelFormat;

/// `[input]`: what the classifier and the encoder take.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct InputParams {
    /// S: the classifier and the encoder take 1×C×S×S `f32`; a positive
    /// multiple of 16.
    pub size: u32,
    /// C: the model's input channels.
    pub channels: u32,
    /// What the channels hold: the frame's luma in every one
    /// ([`InputColor::Gray`], the default when absent) or its R, G, B in
    /// channel order ([`InputColor::Rgb`], with C = 3).
    #[serde(default)]
    pub color: InputColor,
    /// E: the encoder outputs 1×256×E×E and the decoder takes a 4E×4E
    /// dense prompt. It is the graphs' (SAM ViT-B: 1024 → 64; LiteMedSAM:
    /// 256 → 64), checked against them at load; here at least 1, with 4E
    /// dividing S.
    pub embedding_size: u32,
    /// Per channel, in 0..255 pixel units: `x = (pixel − mean) / std`.
    pub mean: Vec<f32>,
    /// Per channel, positive.
    pub std: Vec<f32>,
    /// How a frame is brought to S×S.
    pub resize: Resize,
}

/// What a model takes from a frame's colour (`input.color`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum InputColor {
    /// `gray`: the frame's luma in every channel; an RGB frame gives BT.601
    /// full-range luma `0.299 R + 0.587 G + 0.114 B` (a model trained on
    /// gray frames, whatever its channel count).
    #[default]
    Gray,
    /// `rgb`: the frame's R, G and B in channels 0, 1 and 2 (requires
    /// `input.channels = 3`); a gray frame is replicated.
    Rgb,
}

impl InputColor {
    /// The manifest's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            InputColor::Gray => "gray",
            InputColor::Rgb => "rgb",
        }
    }

    /// The pixel format sources should deliver for such a model:
    /// [`PixelFormat::Gray8`] for `gray`, [`PixelFormat::Rgb8`] for `rgb`.
    pub fn pixel_format(self) -> PixelFormat {
        match self {
            InputColor::Gray => PixelFormat::Gray8,
            InputColor::Rgb => PixelFormat::Rgb8,
        }
    }
}

impl fmt::Display for InputColor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How a frame is resized to the model input.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Resize {
    /// Bilinear, `align_corners = false`, aspect ratio not kept.
    Bilinear,
}

impl Resize {
    /// The manifest's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Resize::Bilinear => "bilinear",
        }
    }
}

impl fmt::Display for Resize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
