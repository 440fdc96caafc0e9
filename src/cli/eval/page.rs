//! `sammix eval --report DIR`: the evaluation as a page.

use std::path::{Path, PathBuf};

use anyhow::Context;
use sammix::frame::{Frame, Mask, PixelFormat};
use sammix::image_io;
use sammix::overlay::{self, OverlayStyle};
use sammix::pipeline::Pipeline;
use serde_json::Value;

use super::super::report::{self, esc, Page, BLUE, ORANGE};
use super::Row;

/// Frames shown in the worst-frames section.
const WORST: usize = 20;

/// Makes the report folder and its `worst/` (early, so that a folder that
/// cannot be made stops the command before the frames run).
pub(super) fn create(dir: &Path) -> anyhow::Result<()> {
    report::create_dir(dir)?;
    report::create_dir(&dir.join("worst"))
}

/// Writes `DIR/index.html` (and `report.json`, `worst/*.png`). `json` is
/// the command's JSON report (`rows` in the same order as its `images`);
/// the worst frames run through `pipeline` again for their overlay and CAM.
pub(super) fn write(
    dir: &Path,
    json: Value,
    rows: &[Row],
    files: &[PathBuf],
    masks: &Path,
    pipeline: &mut Pipeline,
) -> anyhow::Result<PathBuf> {
    let mut page = Page::new("sammix eval", json);
    let text = |p: &Page, k: &str| {
        p.json_str(k)
            .map(|s| format!("<code>{}</code>", esc(&s)))
            .unwrap_or_default()
    };
    let meta = format!(
        "Bundle {} ({}, {} decoder) on {}, run end to end by the runtime. {}",
        text(&page, "/bundle"),
        text(&page, "/precision"),
        text(&page, "/decoder"),
        text(&page, "/data"),
        esc(page.json_str("/conventions").as_deref().unwrap_or(""))
    );
    page.p(&meta);

    page.h2("Summary");
    let row = |p: &Page, name: &str, key: &str, d: usize| vec![esc(name), p.num(key, d)];
    let summary = vec![
        row(&page, "frames", "/summary/frames", 0),
        row(&page, "frames with a target", "/summary/positive_frames", 0),
        row(&page, "Dice, all frames", "/summary/dice_all", 3),
        row(
            &page,
            "Dice+, frames with a target",
            "/summary/dice_positive",
            3,
        ),
        row(&page, "IoU, all frames", "/summary/iou_all", 3),
        row(&page, "IoU+", "/summary/iou_positive", 3),
        row(&page, "HD95, px", "/summary/hd95_px", 2),
        row(&page, "presence accuracy", "/summary/presence_accuracy", 3),
    ];
    page.table(&["", "value"], &summary);

    page.h2("Presence");
    let c = |p: &Page, k: &str| p.num(&format!("/presence_confusion/{k}"), 0);
    let confusion = vec![
        vec![
            "target in the frame".to_string(),
            c(&page, "true_present"),
            c(&page, "missed"),
        ],
        vec![
            "no target".to_string(),
            c(&page, "false_present"),
            c(&page, "true_absent"),
        ],
    ];
    page.table(
        &["ground truth", "called present", "called absent"],
        &confusion,
    );

    page.h2("Dice");
    let positive: Vec<f64> = rows
        .iter()
        .filter(|r| r.scores.gt_present)
        .map(|r| r.scores.dice)
        .collect();
    page.chart(&report::histogram(
        &format!("Dice on the {} frames with a target", positive.len()),
        "Dice",
        &[("", &positive, BLUE)],
        (0.0, 1.0),
        20,
    )?);
    let by_size = |flagged: bool| -> Vec<(f64, f64)> {
        rows.iter()
            .filter(|r| r.scores.gt_present && r.review.is_some() == flagged)
            .map(|r| (r.gt_area as f64, r.scores.dice))
            .collect()
    };
    let mut series = vec![("not flagged", by_size(false), BLUE)];
    let flagged = by_size(true);
    if !flagged.is_empty() {
        series.push(("flagged for review", flagged, ORANGE));
    }
    page.chart(&report::scatter(
        "Dice against the target's size",
        ("target pixels in the ground truth (log)", "Dice"),
        &series,
        (0.0, 1.0),
    )?);

    if page.has("/confidence") {
        page.h2("Review flag");
        page.p(&format!(
            "The manifest's <code>[confidence]</code> rules flag {} of {} frames; {} of the {} bad frames \
             (Dice &lt; 0.7) are among them: precision {}, recall {}.",
            page.num("/confidence/flagged", 0),
            page.num("/confidence/frames", 0),
            page.num("/confidence/flagged_bad", 0),
            page.num("/confidence/bad_frames", 0),
            page.num("/confidence/precision", 3),
            page.num("/confidence/recall", 3),
        ));
        let n = page.len("/confidence/reasons");
        let reasons: Vec<Vec<String>> = (0..n)
            .map(|i| {
                vec![
                    esc(&page
                        .json_str(&format!("/confidence/reasons/{i}/reason"))
                        .unwrap_or_default()),
                    page.num(&format!("/confidence/reasons/{i}/flagged"), 0),
                    page.num(&format!("/confidence/reasons/{i}/bad"), 0),
                ]
            })
            .collect();
        page.table(&["reason", "flagged", "of them bad"], &reasons);
    }

    if page.has("/clicks") {
        page.h2("Simulated corrections");
        let n = page.len("/clicks/dice_all");
        let clicks: Vec<Vec<String>> = (0..n)
            .map(|k| {
                vec![
                    k.to_string(),
                    page.num(&format!("/clicks/dice_positive/{k}"), 3),
                    page.num(&format!("/clicks/dice_all/{k}"), 3),
                    page.num(&format!("/clicks/worst/dice/{k}"), 3),
                ]
            })
            .collect();
        page.table(&["clicks", "Dice+", "Dice (all)", "the 20 worst"], &clicks);
        page.p(&format!(
            "{} encoder runs in {} corrections.",
            page.num("/clicks/encoder_runs", 0),
            page.num("/clicks/corrections", 0)
        ));
    }

    page.h2(&format!("The {WORST} worst frames"));
    page.p(
        "Lowest Dice first. Each: the overlay (mask, box, presence; an amber border when flagged \
         for review), the CAM over the frame (black 0, red, yellow, white 1, or the CAM's range where wider), and the ground truth.",
    );
    let worst_dir = dir.join("worst");
    create(dir)?;
    let mut order: Vec<usize> = (0..rows.len()).collect();
    // stable: ties keep the folder's (name) order
    order.sort_by(|&a, &b| rows[a].scores.dice.total_cmp(&rows[b].scores.dice));
    if let Some(&last) = order.get(WORST - 1) {
        let cut = rows[last].scores.dice;
        let tied = rows.iter().filter(|r| r.scores.dice == cut).count();
        let shown = order[..WORST]
            .iter()
            .filter(|&&i| rows[i].scores.dice == cut)
            .count();
        if tied > shown {
            page.p(&format!(
                "{tied} frames score Dice {cut:.3}, the score of the last one shown: the first {shown} of \
                 them by name are here."
            ));
        }
    }
    order.truncate(WORST);
    pipeline.keep_cam(true);
    let style = OverlayStyle::default();
    let (mut mask, mut picture) = (Mask::zeros(1, 1), Frame::zeros(1, 1, PixelFormat::Rgb8));
    let mut cells = String::from("<div class=\"frames\">");
    for (rank, &i) in order.iter().enumerate() {
        let file = &files[i];
        let frame = image_io::read_frame(file)
            .with_context(|| format!("reading {} again for the report", file.display()))?;
        let result = pipeline.process(&frame, &mut mask)?;
        overlay::render(
            &frame,
            &mask,
            result.box_frame,
            result.presence,
            result.review.is_some(),
            &style,
            &mut picture,
        );
        let stem = format!("{:02}", rank + 1);
        let write = |name: String, f: &Frame| -> anyhow::Result<String> {
            let path = worst_dir.join(&name);
            image_io::write_frame_png(&path, f)
                .with_context(|| format!("cannot write {}", path.display()))?;
            Ok(format!("worst/{name}"))
        };
        let over = write(format!("{stem}-overlay.png"), &picture)?;
        cam_picture(&frame, pipeline.cam(), &mut picture);
        let cam = write(format!("{stem}-cam.png"), &picture)?;
        let gt_name = file.file_name().map(PathBuf::from).unwrap_or_default();
        let gt = image_io::read_mask(&masks.join(&gt_name))?;
        let gt_file = format!("{stem}-truth.png");
        image_io::write_mask_png(&worst_dir.join(&gt_file), &gt)?;
        cells.push_str(&format!(
            "<div class=\"frame\"><div class=\"pair\"><img src=\"{over}\" alt=\"overlay\">\
             <img src=\"{cam}\" alt=\"CAM\"><img src=\"worst/{gt_file}\" alt=\"ground truth\"></div>\
             {} · Dice {} · presence {} · {}</div>",
            esc(&rows[i].scores.name),
            page.num(&format!("/images/{i}/dice"), 3),
            page.num(&format!("/images/{i}/presence"), 2),
            esc(&page
                .json_str(&format!("/images/{i}/outcome"))
                .unwrap_or_default()),
        ));
    }
    pipeline.keep_cam(false);
    cells.push_str("</div>");
    page.raw(&cells);
    page.write(dir)
}

/// The CAM as a heat map over the frame (half each), nearest-neighbour
/// scaled to the frame's size, colours over [0, 1] or the CAM's own range
/// where it is wider (a CAM of logits); the frame alone when there is no
/// CAM.
fn cam_picture(frame: &Frame, cam: Option<(usize, usize, &[f32])>, out: &mut Frame) {
    let (w, h) = (frame.width(), frame.height());
    out.reset(w, h, PixelFormat::Rgb8);
    let gray = |x: usize, y: usize| -> u8 {
        match frame.format() {
            PixelFormat::Gray8 => frame.data()[y * w + x],
            _ => {
                let p = &frame.data()[(y * w + x) * 3..][..3];
                ((u16::from(p[0]) + u16::from(p[1]) + u16::from(p[2])) / 3) as u8
            }
        }
    };
    // probabilities on [0, 1]; a CAM of logits on its own wider range
    let (lo, hi) = cam.map_or((0.0, 1.0), |(_, _, v)| {
        v.iter()
            .filter(|x| x.is_finite())
            .fold((0.0f32, 1.0f32), |(lo, hi), &x| (lo.min(x), hi.max(x)))
    });
    let data = out.data_mut();
    for y in 0..h {
        for x in 0..w {
            let g = gray(x, y);
            let px = &mut data[(y * w + x) * 3..][..3];
            match cam {
                Some((ch, cw, v)) => {
                    let t = (v[(y * ch / h) * cw + x * cw / w] - lo) / (hi - lo);
                    let heat = report::heat(t);
                    for (o, hc) in px.iter_mut().zip(heat) {
                        *o = ((u16::from(g) + u16::from(hc)) / 2) as u8;
                    }
                }
                None => px.fill(g),
            }
        }
    }
}
