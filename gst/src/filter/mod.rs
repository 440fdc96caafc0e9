//! The element `sammix` (`GstSammix`): its type, and the enumerations of
//! its properties.

use gst::glib;
use gst::prelude::*;

mod imp;

/// `handoff`: which frames go through inference.
#[derive(Debug, Clone, Copy, PartialEq, Eq, glib::Enum)]
#[repr(u32)]
#[enum_type(name = "GstSammixHandoff")]
pub enum Handoff {
    /// Newest when upstream is live, else lossless (asked at the first buffer).
    #[enum_value(
        name = "Newest frame for a live source, else every frame",
        nick = "auto"
    )]
    Auto = 0,
    /// Only when no frame is in inference; the others pass unmarked.
    #[enum_value(name = "Newest frame: never wait for inference", nick = "newest")]
    Newest = 1,
    /// Every frame; upstream waits for inference.
    #[enum_value(name = "Every frame: upstream waits for inference", nick = "lossless")]
    Lossless = 2,
}

/// `stability`: presence hysteresis, as `sammix run --stability`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, glib::Enum)]
#[repr(u32)]
#[enum_type(name = "GstSammixStability")]
pub enum Toggle {
    /// On with the newest-frame handoff (a live source), else off.
    #[enum_value(
        name = "On for a live source (newest handoff), else off",
        nick = "auto"
    )]
    Auto = 0,
    /// On.
    #[enum_value(name = "On", nick = "on")]
    On = 1,
    /// Off.
    #[enum_value(name = "Off", nick = "off")]
    Off = 2,
}

/// `decoder`: which engine runs the mask decoder, as `sammix run --decoder`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, glib::Enum)]
#[repr(u32)]
#[enum_type(name = "GstSammixDecoder")]
pub enum Decoder {
    /// The native mask decoder (SIMD kernels; weights from decoder.onnx).
    #[enum_value(name = "Native mask decoder", nick = "native")]
    Native = 0,
    /// tract's plan of decoder.onnx.
    #[enum_value(name = "tract's plan of decoder.onnx", nick = "tract")]
    Tract = 1,
}

glib::wrapper! {
    /// The `sammix` element.
    pub struct SammixFilter(ObjectSubclass<imp::SammixFilter>) @extends gst::Element, gst::Object;
}

/// Registers the element and its enumerations with the plugin.
pub fn register(plugin: &gst::Plugin) -> Result<(), glib::BoolError> {
    for t in [
        Handoff::static_type(),
        Toggle::static_type(),
        Decoder::static_type(),
    ] {
        t.mark_as_plugin_api(gst::PluginAPIFlags::empty());
    }
    gst::Element::register(
        Some(plugin),
        "sammix",
        gst::Rank::NONE,
        SammixFilter::static_type(),
    )
}
