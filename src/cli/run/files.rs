//! `sammix run --out`: results.jsonl, the masks, the overlay and the
//! corrections log, written so that a failed write loses only what it
//! could not write.

use std::path::{Path, PathBuf};

use anyhow::Context;
use sammix::frame::{Frame, Mask, PixelFormat};
use sammix::image_io;
use sammix::overlay::{self, OverlayStyle};
use sammix::stream::lines::LineFile;
use sammix::y4m::{Colorspace, Y4mWriter};

use super::super::OverlayFormat;
use super::{CorrectionLine, Line, SinkResult};

/// Output files under `--out`.
///
/// A file that cannot be written (disk full, a file system turned
/// read-only, an I/O error) does not stop the stream: the frame's line,
/// mask or overlay is lost and counted ([`Files::failures`]), one warning
/// per burst, and writing resumes when the disk lets it. `results.jsonl`
/// holds whole lines only ([`LineFile`]); a mask PNG that fails half
/// written is removed; the Y4M overlay stops at its first failure (a video
/// cannot skip a frame), the PNG overlay goes on like the masks.
pub(super) struct Files {
    dir: PathBuf,
    results: LineFile,
    overlay: OverlayFormat,
    /// Frames with at least one output not written.
    pub(super) failures: u64,
    /// In a burst of failures (warned once).
    failing: bool,
    /// The first failure, for the summary.
    pub(super) first_failure: Option<String>,
    y4m: Option<Y4mWriter>,
    picture: Frame,
    style: OverlayStyle,
    rate: (u32, u32),
    /// `corrections.jsonl`, made at the first correction request.
    corrections: Option<LineFile>,
}

impl Files {
    pub(super) fn create(
        dir: &Path,
        overlay: OverlayFormat,
        rate: (u32, u32),
    ) -> anyhow::Result<Files> {
        for sub in ["masks", "overlay"] {
            if sub == "masks" || overlay == OverlayFormat::Png {
                let d = dir.join(sub);
                std::fs::create_dir_all(&d)
                    .with_context(|| format!("cannot create {}", d.display()))?;
            }
        }
        let path = dir.join("results.jsonl");
        let results =
            LineFile::create(&path).with_context(|| format!("cannot create {}", path.display()))?;
        Ok(Files {
            dir: dir.to_path_buf(),
            results,
            overlay,
            failures: 0,
            failing: false,
            first_failure: None,
            y4m: None,
            picture: Frame::zeros(1, 1, PixelFormat::Rgb8),
            style: OverlayStyle::default(),
            rate,
            corrections: None,
        })
    }

    /// Writes the frame's line, mask and overlay; a write that fails is
    /// counted and the stream goes on (see [`Files`]). Only a line that
    /// cannot be serialized (a bug) is an error.
    pub(super) fn write(&mut self, frame: &Frame, mask: &Mask, line: &Line) -> SinkResult {
        let mut failed: Option<String> = None;
        if let Err(e) = self
            .results
            .append(|buf| serde_json::to_writer(&mut *buf, line))?
        {
            failed = Some(e.to_string());
        }
        let mask_path = self.dir.join("masks").join(format!("{}.png", line.name));
        if let Err(e) = image_io::write_mask_png(&mask_path, mask) {
            let _ = std::fs::remove_file(&mask_path);
            failed.get_or_insert_with(|| e.to_string());
        }
        if let Err(e) = self.write_overlay(frame, mask, line) {
            failed.get_or_insert(e);
        }
        match failed {
            Some(e) => {
                self.failures += 1;
                if !self.failing {
                    log::warn!(
                        "frame {}: {e}; the stream goes on, frames whose output cannot be written are counted",
                        line.name
                    );
                }
                self.failing = true;
                self.first_failure.get_or_insert(e);
            }
            None if self.failing => {
                log::warn!(
                    "frame {}: output written again ({} frames not written so far)",
                    line.name,
                    self.failures
                );
                self.failing = false;
            }
            None => {}
        }
        Ok(())
    }

    /// Logs a served correction request and, when clicks were applied,
    /// replaces the frame's mask and PNG overlay with the corrected ones
    /// (an overlay video keeps the frame as streamed). A write that fails
    /// is warned about and the stream goes on.
    pub(super) fn write_correction(
        &mut self,
        line: &CorrectionLine,
        corrected: Option<(&Frame, &Mask)>,
    ) {
        let path = self.dir.join("corrections.jsonl");
        if self.corrections.is_none() {
            match LineFile::create(&path) {
                Ok(f) => self.corrections = Some(f),
                Err(e) => log::warn!("cannot create {}: {e}", path.display()),
            }
        }
        if let Some(f) = &mut self.corrections {
            match f.append(|buf| serde_json::to_writer(&mut *buf, line)) {
                Ok(Ok(())) => {}
                Ok(Err(e)) => log::warn!("{}: correction not logged: {e}", path.display()),
                Err(e) => log::warn!("{}: correction not serialized: {e}", path.display()),
            }
        }
        let Some((frame, mask)) = corrected else {
            return;
        };
        let mask_path = self.dir.join("masks").join(format!("{}.png", line.name));
        if let Err(e) = image_io::write_mask_png(&mask_path, mask) {
            log::warn!("{}: corrected mask not written: {e}", mask_path.display());
        }
        if self.overlay == OverlayFormat::Png {
            overlay::render(
                frame,
                mask,
                None,
                line.presence,
                false,
                &self.style,
                &mut self.picture,
            );
            let path = self.dir.join("overlay").join(format!("{}.png", line.name));
            if let Err(e) = image_io::write_frame_png(&path, &self.picture) {
                log::warn!("{}: corrected overlay not written: {e}", path.display());
            }
        }
    }

    fn write_overlay(&mut self, frame: &Frame, mask: &Mask, line: &Line) -> Result<(), String> {
        if self.overlay == OverlayFormat::None {
            return Ok(());
        }
        let r = &line.record.result;
        overlay::render(
            frame,
            mask,
            r.box_frame,
            r.presence,
            r.review.is_some(),
            &self.style,
            &mut self.picture,
        );
        if self.overlay == OverlayFormat::Png {
            let path = self.dir.join("overlay").join(format!("{}.png", line.name));
            return image_io::write_frame_png(&path, &self.picture).map_err(|e| {
                let _ = std::fs::remove_file(&path);
                e.to_string()
            });
        }
        let (w, h) = (frame.width(), frame.height());
        if self.y4m.is_none() {
            let path = self.dir.join("overlay.y4m");
            let writer = Y4mWriter::create(&path, w, h, self.rate, Colorspace::Yuv444);
            self.y4m = Some(writer.map_err(|e| {
                self.overlay = OverlayFormat::None;
                format!("{e} (no overlay video from here on)")
            })?);
        }
        if let Some(y4m) = &mut self.y4m {
            if let Err(e) = y4m.write_frame(&self.picture) {
                // A video cannot skip a frame: it ends here.
                self.overlay = OverlayFormat::None;
                return Err(format!(
                    "{e} (frame {}; the overlay video ends here; one video needs one frame size \
                     and a disk with room; --overlay png goes on frame by frame)",
                    line.name
                ));
            }
        }
        Ok(())
    }

    pub(super) fn finish(&mut self) -> SinkResult {
        let results = self.dir.join("results.jsonl");
        if let Err(e) = self.results.sync() {
            log::warn!("{}: cannot flush to disk: {e}", results.display());
        }
        if let Some(y4m) = self.y4m.take() {
            if let Err(e) = y4m.finish() {
                log::warn!("{}: {e}", self.dir.join("overlay.y4m").display());
            }
        }
        Ok(())
    }
}
