//! The HTML pages of `eval --report DIR` and `bench --report DIR`: one
//! self-contained `index.html` each (charts inline as SVG drawn by
//! `plotters`, pictures as PNG files beside it), nothing fetched at view
//! time.
//!
//! Every number the page shows from the command's JSON report carries that
//! number's JSON pointer (`data-key="/summary/dice_positive"`), so a check
//! can read the rendered page and compare each one with the JSON
//! (`scripts/test-reports.sh` does, in headless Chromium).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{anyhow, Context};
use plotters::prelude::*;
use serde_json::Value;

/// Chart size, pixels.
const CHART: (u32, u32) = (640, 360);

/// Series colours (colour-blind safe: Okabe-Ito).
pub const BLUE: RGBColor = RGBColor(0, 114, 178);
pub const ORANGE: RGBColor = RGBColor(230, 159, 0);
pub const GREEN: RGBColor = RGBColor(0, 158, 115);
pub const PURPLE: RGBColor = RGBColor(204, 121, 167);
pub const RED: RGBColor = RGBColor(213, 94, 0);
pub const SKY: RGBColor = RGBColor(86, 180, 233);

/// A page being written.
pub struct Page {
    title: String,
    body: String,
    /// The JSON report the page's numbers come from.
    json: Value,
}

/// HTML-escapes text.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            _ => out.push(c),
        }
    }
    out
}

impl Page {
    pub fn new(title: &str, json: Value) -> Page {
        Page {
            title: title.to_string(),
            body: String::new(),
            json,
        }
    }

    pub fn h2(&mut self, text: &str) {
        let _ = writeln!(self.body, "<h2>{}</h2>", esc(text));
    }

    /// A paragraph of HTML (escape what comes from outside).
    pub fn p(&mut self, html: &str) {
        let _ = writeln!(self.body, "<p>{html}</p>");
    }

    pub fn raw(&mut self, html: &str) {
        self.body.push_str(html);
        self.body.push('\n');
    }

    /// The number at JSON `pointer`, shown with `decimals` and tagged with
    /// its pointer; "–" (untagged) when the report has none there.
    pub fn num(&self, pointer: &str, decimals: usize) -> String {
        match self.json.pointer(pointer) {
            Some(Value::Number(n)) => {
                let v = n.as_f64().unwrap_or(f64::NAN);
                format!(
                    "<span class=\"n\" data-key=\"{}\" data-decimals=\"{decimals}\">{v:.decimals$}</span>",
                    esc(pointer)
                )
            }
            _ => "–".to_string(),
        }
    }

    /// The string at JSON `pointer` (a number or a bool as written).
    pub fn json_str(&self, pointer: &str) -> Option<String> {
        match self.json.pointer(pointer)? {
            Value::String(s) => Some(s.clone()),
            Value::Null => None,
            v => Some(v.to_string()),
        }
    }

    /// Whether the report holds a value (not null) at `pointer`.
    pub fn has(&self, pointer: &str) -> bool {
        self.json.pointer(pointer).is_some_and(|v| !v.is_null())
    }

    /// The length of the array at `pointer` (0 when there is none).
    pub fn len(&self, pointer: &str) -> usize {
        self.json
            .pointer(pointer)
            .and_then(Value::as_array)
            .map_or(0, Vec::len)
    }

    /// A table; cells are HTML.
    pub fn table(&mut self, head: &[&str], rows: &[Vec<String>]) {
        let mut t = String::from("<table><thead><tr>");
        for h in head {
            let _ = write!(t, "<th>{}</th>", esc(h));
        }
        t.push_str("</tr></thead><tbody>");
        for r in rows {
            t.push_str("<tr>");
            for c in r {
                let _ = write!(t, "<td>{c}</td>");
            }
            t.push_str("</tr>");
        }
        t.push_str("</tbody></table>");
        self.raw(&t);
    }

    /// An inline chart.
    pub fn chart(&mut self, svg: &str) {
        let _ = writeln!(self.body, "<div class=\"chart\">{svg}</div>");
    }

    /// Writes `DIR/index.html` and the JSON beside it (`report.json`).
    pub fn write(self, dir: &Path) -> anyhow::Result<PathBuf> {
        create_dir(dir)?;
        let html = format!(
            "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
             <title>{title}</title><style>{STYLE}</style></head>\n<body><h1>{title}</h1>\n{body}</body></html>\n",
            title = esc(&self.title),
            body = self.body
        );
        let page = dir.join("index.html");
        std::fs::write(&page, html).with_context(|| format!("cannot write {}", page.display()))?;
        let json = dir.join("report.json");
        std::fs::write(
            &json,
            format!("{}\n", serde_json::to_string_pretty(&self.json)?),
        )
        .with_context(|| format!("cannot write {}", json.display()))?;
        Ok(page)
    }
}

/// Makes a report folder (and its parents), naming it when it cannot.
pub fn create_dir(dir: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir)
        .with_context(|| format!("cannot create the report folder {}", dir.display()))
}

const STYLE: &str = "body{font-family:sans-serif;margin:1.5em;max-width:1400px;color:#222}\
h1{font-size:1.4em}h2{font-size:1.15em;margin-top:1.6em;border-bottom:1px solid #ccc}\
table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ccc;padding:.25em .6em;text-align:right}\
th{background:#f2f2f2}.chart{display:inline-block;margin:.3em}\
.frames{display:flex;flex-wrap:wrap;gap:.8em}.frame{font-size:.8em;text-align:center}\
.frame img{width:192px;height:192px;image-rendering:pixelated;display:block}\
.pair{display:flex;gap:2px}";

/// A named series of points, in its colour.
pub type Series<'a> = (&'a str, Vec<(f64, f64)>, RGBColor);

fn plot_err(e: impl std::fmt::Display) -> anyhow::Error {
    anyhow!("drawing a chart: {e}")
}

/// Bin edges and counts of `values` over [lo, hi] in `bins` bins (values
/// outside are clamped into the end bins).
pub fn bin_counts(values: &[f64], lo: f64, hi: f64, bins: usize) -> Vec<usize> {
    let mut counts = vec![0usize; bins.max(1)];
    let width = (hi - lo) / counts.len() as f64;
    for &v in values.iter().filter(|v| v.is_finite()) {
        let i = if width > 0.0 {
            ((v - lo) / width).floor()
        } else {
            0.0
        };
        let i = (i.max(0.0) as usize).min(counts.len() - 1);
        counts[i] += 1;
    }
    counts
}

/// Overlaid histograms of each series over [lo, hi].
pub fn histogram(
    caption: &str,
    x_label: &str,
    series: &[(&str, &[f64], RGBColor)],
    (lo, hi): (f64, f64),
    bins: usize,
) -> anyhow::Result<String> {
    let counts: Vec<Vec<usize>> = series
        .iter()
        .map(|(_, v, _)| bin_counts(v, lo, hi, bins))
        .collect();
    let top = counts.iter().flatten().copied().max().unwrap_or(0).max(1);
    let width = (hi - lo) / bins as f64;
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, CHART).into_drawing_area();
        root.fill(&WHITE).map_err(plot_err)?;
        let mut chart = ChartBuilder::on(&root)
            .caption(caption, ("sans-serif", 18))
            .margin(10)
            .x_label_area_size(40)
            .y_label_area_size(50)
            .build_cartesian_2d(lo..hi, 0usize..top + top / 10 + 1)
            .map_err(plot_err)?;
        chart
            .configure_mesh()
            .x_desc(x_label)
            .y_desc("frames")
            .disable_x_mesh()
            .draw()
            .map_err(plot_err)?;
        for ((name, _, color), c) in series.iter().zip(&counts) {
            let style = color.mix(0.55).filled();
            chart
                .draw_series(c.iter().enumerate().filter(|(_, &n)| n > 0).map(|(i, &n)| {
                    let x0 = lo + i as f64 * width;
                    Rectangle::new([(x0, 0), (x0 + width, n)], style)
                }))
                .map_err(plot_err)?
                .label(*name)
                .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 10, y + 5)], style));
        }
        if series.len() > 1 || !series.is_empty() && !series[0].0.is_empty() {
            chart
                .configure_series_labels()
                .border_style(BLACK)
                .background_style(WHITE.mix(0.8))
                .draw()
                .map_err(plot_err)?;
        }
        root.present().map_err(plot_err)?;
    }
    Ok(svg)
}

/// Points (x, y) with a log-scaled x axis when `log_x`.
pub fn scatter(
    caption: &str,
    (x_label, y_label): (&str, &str),
    series: &[Series],
    y_range: (f64, f64),
) -> anyhow::Result<String> {
    let xs = series.iter().flat_map(|(_, p, _)| p.iter().map(|p| p.0));
    let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
    for x in xs.filter(|x| x.is_finite() && *x > 0.0) {
        lo = lo.min(x);
        hi = hi.max(x);
    }
    if !lo.is_finite() {
        (lo, hi) = (1.0, 10.0);
    }
    let (lo, hi) = (lo / 1.2, (hi * 1.2).max(lo * 2.0));
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, CHART).into_drawing_area();
        root.fill(&WHITE).map_err(plot_err)?;
        let mut chart = ChartBuilder::on(&root)
            .caption(caption, ("sans-serif", 18))
            .margin(10)
            .x_label_area_size(40)
            .y_label_area_size(50)
            .build_cartesian_2d((lo..hi).log_scale(), y_range.0..y_range.1)
            .map_err(plot_err)?;
        chart
            .configure_mesh()
            .x_desc(x_label)
            .y_desc(y_label)
            .x_label_formatter(&|v| format!("{v:.0}"))
            .draw()
            .map_err(plot_err)?;
        for (name, points, color) in series {
            let style = color.mix(0.7).filled();
            chart
                .draw_series(
                    points
                        .iter()
                        .filter(|p| p.0 > 0.0 && p.0.is_finite() && p.1.is_finite())
                        .map(|&p| Circle::new(p, 3, style)),
                )
                .map_err(plot_err)?
                .label(*name)
                .legend(move |(x, y)| Circle::new((x + 5, y), 3, style));
        }
        chart
            .configure_series_labels()
            .border_style(BLACK)
            .background_style(WHITE.mix(0.8))
            .draw()
            .map_err(plot_err)?;
        root.present().map_err(plot_err)?;
    }
    Ok(svg)
}

/// Lines over a shared x axis.
pub fn lines(
    caption: &str,
    (x_label, y_label): (&str, &str),
    series: &[Series],
) -> anyhow::Result<String> {
    let (mut x_hi, mut y_hi) = (1.0f64, 0.0f64);
    for (_, p, _) in series {
        for &(x, y) in p {
            x_hi = x_hi.max(x);
            if y.is_finite() {
                y_hi = y_hi.max(y);
            }
        }
    }
    let y_hi = if y_hi > 0.0 { y_hi * 1.1 } else { 1.0 };
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (CHART.0 * 2, CHART.1)).into_drawing_area();
        root.fill(&WHITE).map_err(plot_err)?;
        let mut chart = ChartBuilder::on(&root)
            .caption(caption, ("sans-serif", 18))
            .margin(10)
            .x_label_area_size(40)
            .y_label_area_size(60)
            .build_cartesian_2d(0.0..x_hi, 0.0..y_hi)
            .map_err(plot_err)?;
        chart
            .configure_mesh()
            .x_desc(x_label)
            .y_desc(y_label)
            .draw()
            .map_err(plot_err)?;
        for (name, points, color) in series {
            let color = *color;
            chart
                .draw_series(LineSeries::new(
                    points.iter().copied(),
                    color.stroke_width(1),
                ))
                .map_err(plot_err)?
                .label(*name)
                .legend(move |(x, y)| PathElement::new([(x, y), (x + 14, y)], color));
        }
        chart
            .configure_series_labels()
            .border_style(BLACK)
            .background_style(WHITE.mix(0.8))
            .draw()
            .map_err(plot_err)?;
        root.present().map_err(plot_err)?;
    }
    Ok(svg)
}

/// A heat map colour for v in [0, 1] (black → red → yellow → white).
pub fn heat(v: f32) -> [u8; 3] {
    let v = if v.is_finite() {
        v.clamp(0.0, 1.0)
    } else {
        0.0
    };
    let ch = |x: f32| (x.clamp(0.0, 1.0) * 255.0).round() as u8;
    [ch(v * 3.0), ch(v * 3.0 - 1.0), ch(v * 3.0 - 2.0)]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bins_clamp_the_ends_and_skip_what_is_not_a_number() {
        let c = bin_counts(
            &[0.0, 0.05, 0.5, 0.99, 1.0, 1.5, -1.0, f64::NAN],
            0.0,
            1.0,
            10,
        );
        assert_eq!(c, [3, 0, 0, 0, 0, 1, 0, 0, 0, 3]);
    }

    #[test]
    fn a_number_carries_its_pointer_and_an_absent_one_none() {
        let page = Page::new("t", serde_json::json!({"a": {"b": 0.12345}, "c": null}));
        assert_eq!(
            page.num("/a/b", 3),
            "<span class=\"n\" data-key=\"/a/b\" data-decimals=\"3\">0.123</span>"
        );
        assert_eq!(page.num("/c", 3), "–");
        assert_eq!(page.num("/nothing", 3), "–");
    }

    #[test]
    fn text_from_outside_is_escaped() {
        assert_eq!(esc("<a href=\"x\">&"), "&lt;a href=&quot;x&quot;&gt;&amp;");
    }

    #[test]
    fn charts_are_svg_with_their_captions() {
        let h = histogram(
            "Dice",
            "Dice",
            &[("lesion", &[0.1, 0.5, 0.9], BLUE)],
            (0.0, 1.0),
            10,
        )
        .unwrap();
        assert!(h.starts_with("<svg") && h.contains("Dice"), "{h}");
        let s = scatter(
            "size",
            ("px", "Dice"),
            &[("frames", vec![(10.0, 0.5), (1000.0, 0.9)], BLUE)],
            (0.0, 1.0),
        )
        .unwrap();
        assert!(s.contains("<circle"), "{s}");
        let l = lines(
            "t",
            ("frame", "ms"),
            &[("a", vec![(0.0, 1.0), (1.0, 2.0)], RED)],
        )
        .unwrap();
        assert!(l.contains("<polyline") || l.contains("<path"), "{l}");
    }

    #[test]
    fn the_heat_map_runs_from_black_to_white() {
        assert_eq!(heat(0.0), [0, 0, 0]);
        assert_eq!(heat(1.0), [255, 255, 255]);
        assert_eq!(heat(f32::NAN), [0, 0, 0]);
    }
}
