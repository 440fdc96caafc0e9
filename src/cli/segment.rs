//! `sammix segment`: one image to a mask PNG.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use sammix::frame::{Frame, Mask, PixelFormat};
use sammix::image_io;
use sammix::overlay::{self, OverlayStyle};

use super::common;
use super::SegmentArgs;

pub fn segment(args: SegmentArgs) -> anyhow::Result<ExitCode> {
    let (_bundle, mut pipeline) = common::open(
        &args.bundle,
        args.decoder.decoder.into(),
        &Default::default(),
    )?;
    let frame = image_io::read_frame(&args.image)?;
    let mut mask = Mask::zeros(1, 1);
    let result = pipeline.process(&frame, &mut mask)?;
    let correction = if args.points.is_empty() {
        None
    } else {
        Some(
            pipeline
                .correct(&args.points, &mut mask)
                .with_context(|| format!("correcting {}", args.image.display()))?,
        )
    };
    let out = args.out.clone().unwrap_or_else(|| {
        let stem = args
            .image
            .file_stem()
            .map_or_else(|| "image".into(), |s| s.to_string_lossy().into_owned());
        PathBuf::from(format!("{stem}.mask.png"))
    });
    image_io::write_mask_png(&out, &mask)
        .with_context(|| format!("mask for {}", args.image.display()))?;
    if let Some(path) = &args.overlay {
        let mut picture = Frame::zeros(1, 1, PixelFormat::Rgb8);
        overlay::render(
            &frame,
            &mask,
            result.box_frame,
            result.presence,
            result.review.is_some(),
            &OverlayStyle::default(),
            &mut picture,
        );
        image_io::write_frame_png(path, &picture)?;
    }
    if args.json {
        let mut v = serde_json::to_value(&result)?;
        v["image"] = args.image.display().to_string().into();
        v["mask"] = out.display().to_string().into();
        v["decoder"] = pipeline.decoder().as_str().into();
        if let Some(c) = &correction {
            v["correction"] = serde_json::to_value(c)?;
            v["mask_area"] = c.mask_area.into();
        }
        outln!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        outln!(
            "{}: presence {:.3}, {:?}, mask area {} px ({} decoder) -> {}",
            args.image.display(),
            result.presence,
            result.outcome,
            result.mask_area,
            pipeline.decoder(),
            out.display()
        );
        if let Some(c) = &correction {
            outln!(
                "  corrected with {} click(s): mask area {} -> {} px, {} decoder call(s), encoder {}, {:.1} ms",
                c.clicks,
                c.mask_area_before,
                c.mask_area,
                c.decoder_calls,
                if c.encoder_ran { "ran" } else { "not run" },
                c.ms
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}
