//! Checks against vivid: formats, colour, negotiation errors, unplugging.

use std::time::{Duration, Instant};

use sammix::frame::{Frame, PixelFormat};
use sammix::source::v4l::{V4lSource, V4lSpec};
use sammix::source::FrameSource;

use crate::common::{diff, grab, min_max, opts, read, spec, Check, Ctx, VIVID_SYSFS};

/// vivid YUYV, NV12 and GREY at two sizes: right size, not constant,
/// numbered, a frame rate. NV12's Y equals YUYV's byte for byte. vivid makes
/// GREY differently (full-range BT.709 luma of its RGB pattern, where YUYV
/// has limited-range BT.601 Y), so GREY is checked against the BT.709 luma
/// of vivid's own RGB3 frame: the Y plane reaches the frame unchanged.
pub fn formats(c: &Ctx) -> Check {
    let mut notes = Vec::new();
    for size in [(320, 180), (640, 360)] {
        let mut lumas = Vec::new();
        for code in [b"YUYV", b"NV12", b"GREY"] {
            let s = spec(&c.vivid, size, code);
            let (frame, src) = grab(&s, PixelFormat::Gray8, 3)?;
            let (lo, hi) = min_max(frame.data());
            if hi - lo < 64 {
                return Err(format!("{s}: nearly constant frame ({lo}..{hi})"));
            }
            let Some(rate) = src.frame_rate() else {
                return Err(format!("{s}: no frame rate"));
            };
            lumas.push((s, frame, rate));
        }
        let [(yuyv_spec, yuyv, rate), (nv12_spec, nv12, _), (grey_spec, grey, _)] = &lumas[..]
        else {
            return Err("three captures expected".into());
        };
        let (n, max) = diff(yuyv.data(), nv12.data());
        if n > 0 {
            return Err(format!(
                "{nv12_spec}: Y differs from {yuyv_spec} at {n} pixels (max {max})"
            ));
        }
        let (rgb, _) = grab(&spec(&c.vivid, size, b"RGB3"), PixelFormat::Rgb8, 3)?;
        let max709 = grey
            .data()
            .iter()
            .zip(rgb.data().chunks_exact(3))
            .map(|(&g, p)| {
                let l =
                    0.2126 * f64::from(p[0]) + 0.7152 * f64::from(p[1]) + 0.0722 * f64::from(p[2]);
                (f64::from(g) - l).abs()
            })
            .fold(0.0, f64::max);
        if max709 > 1.5 {
            return Err(format!(
                "{grey_spec}: differs from the BT.709 luma of RGB3 by up to {max709:.1}"
            ));
        }
        notes.push(format!(
            "{}x{} at {}/{} fps: NV12 Y = YUYV Y; GREY = BT.709 luma of RGB3 within {max709:.1}",
            size.0, size.1, rate.0, rate.1
        ));
    }
    Ok(notes.join("; "))
}

/// YUYV → RGB (BT.601, limited range, as vivid reports) against vivid's
/// own RGB24 of the same pattern.
pub fn rgb(c: &Ctx) -> Check {
    let size = (320, 180);
    let (yuv, src) = grab(&spec(&c.vivid, size, b"YUYV"), PixelFormat::Rgb8, 3)?;
    let colour = src.colour();
    drop(src);
    let (rgb, _) = grab(&spec(&c.vivid, size, b"RGB3"), PixelFormat::Rgb8, 3)?;
    let (n, max) = diff(yuv.data(), rgb.data());
    let mean = yuv
        .data()
        .iter()
        .zip(rgb.data())
        .map(|(a, b)| f64::from(a.abs_diff(*b)))
        .sum::<f64>()
        / yuv.data().len() as f64;
    // 4:2:2 chroma smears the colour-bar edges: allow a few wide misses
    // there, but the mean must be tiny.
    if mean > 1.5 {
        return Err(format!(
            "YUYV→RGB vs RGB3: mean |diff| {mean:.2}, max {max} ({colour:?})"
        ));
    }
    Ok(format!(
        "{colour:?}: {n} samples differ, max {max}, mean {mean:.2}"
    ))
}

/// Sizes and formats vivid refuses, a missing node: errors that say what
/// the device offers, naming it.
pub fn negotiation_errors(c: &Ctx) -> Check {
    let expect = |spec: V4lSpec, needles: &[&str]| -> Result<String, String> {
        match V4lSource::open(&spec, opts(PixelFormat::Gray8)) {
            Ok(_) => Err(format!("{spec}: opened")),
            Err(e) => {
                let text = e.to_string();
                match needles.iter().find(|n| !text.contains(*n)) {
                    Some(n) => Err(format!("{spec}: {n:?} not in: {text}")),
                    None => Ok(text),
                }
            }
        }
    };
    let dev = c.vivid.to_string_lossy().into_owned();
    let odd = expect(
        spec(&c.vivid, (123, 45), b"YUYV"),
        &[&dev, "123x45", "640x360", "NV12"],
    )?;
    let mjpg = expect(
        spec(&c.vivid, (640, 360), b"MJPG"),
        &[&dev, "MJPG is not one of its formats", "YUYV"],
    )?;
    let gone = expect(
        V4lSpec::device("/dev/video99"),
        &["/dev/video99", "cannot open"],
    )?;
    // No size or format: whatever the device has, as long as it is ours.
    let mut any = V4lSource::open(&V4lSpec::device(&c.vivid), opts(PixelFormat::Gray8))
        .map_err(|e| e.to_string())?;
    let mut frame = Frame::zeros(1, 1, PixelFormat::Gray8);
    read(&mut any, &mut frame)?;
    println!("    {odd}\n    {mjpg}\n    {gone}");
    Ok(format!("default format {}", any.layout()))
}

fn vivid_bind(what: &str) -> Result<(), String> {
    std::fs::write(format!("{VIVID_SYSFS}/{what}"), "vivid.0")
        .map_err(|e| format!("{VIVID_SYSFS}/{what}: {e}"))
}

/// vivid is unbound mid-stream and bound again 1.5 s later: the source
/// reopens it and goes on numbering.
pub fn unplug_reconnect(c: &Ctx) -> Check {
    let mut o = opts(PixelFormat::Gray8);
    o.reconnect_for = Duration::from_secs(8);
    let s = spec(&c.vivid, (320, 180), b"YUYV");
    let mut src = V4lSource::open(&s, o).map_err(|e| e.to_string())?;
    let mut frame = Frame::zeros(1, 1, PixelFormat::Gray8);
    for _ in 0..2 {
        read(&mut src, &mut frame)?;
    }
    let before = frame.sequence;
    let plug = std::thread::spawn(|| {
        vivid_bind("unbind")?;
        std::thread::sleep(Duration::from_millis(1500));
        vivid_bind("bind")
    });
    let at = Instant::now();
    let mut results = Vec::new();
    for _ in 0..3 {
        results.push(src.next_frame(&mut frame).map(|_| frame.sequence));
    }
    plug.join()
        .map_err(|_| "plug thread panicked".to_string())??;
    let seqs: Vec<u64> = results
        .into_iter()
        .collect::<Result<_, _>>()
        .map_err(|e| e.to_string())?;
    if src.reconnects() != 1 || seqs[0] <= before {
        return Err(format!(
            "reconnects {}, sequences {before} then {seqs:?}",
            src.reconnects()
        ));
    }
    Ok(format!(
        "back after {:.1} s, sequences {before} then {seqs:?}, dropped {}",
        at.elapsed().as_secs_f64(),
        src.dropped()
    ))
}

/// vivid is unbound for good: a clear error naming the device once the
/// reconnect window is over.
pub fn unplug_gone(c: &Ctx) -> Check {
    let mut o = opts(PixelFormat::Gray8);
    o.reconnect_for = Duration::from_secs(2);
    let s = spec(&c.vivid, (320, 180), b"GREY");
    let mut src = V4lSource::open(&s, o).map_err(|e| e.to_string())?;
    let mut frame = Frame::zeros(1, 1, PixelFormat::Gray8);
    read(&mut src, &mut frame)?;
    vivid_bind("unbind")?;
    let at = Instant::now();
    for _ in 0..20 {
        if let Err(e) = src.next_frame(&mut frame) {
            let text = e.to_string();
            let waited = at.elapsed();
            let named = text.contains(&*c.vivid.to_string_lossy()) && text.contains("went away");
            if !named || waited > Duration::from_secs(6) {
                return Err(format!("after {waited:?}: {text}"));
            }
            return Ok(format!("after {:.1} s: {text}", waited.as_secs_f64()));
        }
    }
    Err("frames keep coming after unbind".into())
}

/// vivid is unbound mid-stream and comes back on another input (its TV
/// input, where the frame size follows the TV standard and the capture
/// scaler is off, `ccs_cap_mode=0`): the source's reopen asks for the
/// negotiated 320x180 YUYV, is refused, and the stream stops with the format
/// error naming the device and what it now gives, at the first try after
/// the device is back.
pub fn back_with_another_format(c: &Ctx) -> Check {
    let mut o = opts(PixelFormat::Gray8);
    // One try while it is away, the next well after it is back.
    o.reconnect_every = Duration::from_secs(3);
    o.reconnect_for = Duration::from_secs(8);
    let s = spec(&c.vivid, (320, 180), b"YUYV");
    let mut src = V4lSource::open(&s, o).map_err(|e| e.to_string())?;
    let mut frame = Frame::zeros(1, 1, PixelFormat::Gray8);
    read(&mut src, &mut frame)?;
    let device = c.vivid.clone();
    let plug = std::thread::spawn(move || -> Result<Instant, String> {
        vivid_bind("unbind")?;
        std::thread::sleep(Duration::from_millis(1000));
        vivid_bind("bind")?;
        // The node appears as the driver registers it: try for up to 1 s.
        let mut last = String::new();
        for _ in 0..20 {
            let out = std::process::Command::new("v4l2-ctl")
                .arg("-d")
                .arg(&device)
                .args(["-i", "1"])
                .output()
                .map_err(|e| format!("v4l2-ctl: {e}"))?;
            if out.status.success() {
                return Ok(Instant::now());
            }
            last = String::from_utf8_lossy(&out.stderr).into_owned();
            std::thread::sleep(Duration::from_millis(50));
        }
        Err(format!("v4l2-ctl -i 1 failed: {last}"))
    });
    let at = Instant::now();
    let result = (0..20).find_map(|_| src.next_frame(&mut frame).err());
    let stopped = Instant::now();
    let back = plug
        .join()
        .map_err(|_| "plug thread panicked".to_string())??;
    // The checks after this one capture from the webcam input again.
    let restored = std::process::Command::new("v4l2-ctl")
        .arg("-d")
        .arg(&c.vivid)
        .args(["-i", "0"])
        .status()
        .map_err(|e| format!("v4l2-ctl: {e}"))?;
    if !restored.success() {
        return Err("v4l2-ctl -i 0 failed: the webcam input is not back".into());
    }
    let Some(e) = result else {
        return Err("frames keep coming after the device changed".into());
    };
    let text = e.to_string();
    let dev = c.vivid.to_string_lossy();
    for needle in [&*dev, "asked for 320x180 YUYV", "the driver gave"] {
        if !text.contains(needle) {
            return Err(format!("{needle:?} not in: {text}"));
        }
    }
    let after_back = stopped.saturating_duration_since(back);
    Ok(format!(
        "stopped {:.1} s after the unplug, {:.1} s after it came back on input 1 \
         (the next reopen try): {text}",
        stopped.duration_since(at).as_secs_f64(),
        after_back.as_secs_f64()
    ))
}
