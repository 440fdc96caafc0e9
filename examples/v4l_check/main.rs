//! The `v4l:` source against real V4L2 drivers, run inside the throw-away
//! VM of `scripts/test-v4l-vm.sh` (two vivid instances with their on-screen
//! text off: single-planar on `/dev/video0`, multi-planar on `/dev/video1`;
//! v4l2loopback on `/dev/video10`).
//!
//! ```text
//! v4l_check [--vivid /dev/video0] [--vivid-mplane /dev/video1] [--loop /dev/video10] [--only NAME]...
//!           [--sammix BIN --bundle DIR [--demo-frames N]]
//! ```
//!
//! Prints one `ok`/`FAIL` line per check with its time and exits 0 when
//! all pass (1 when one fails, 3 when the watchdog fires). Checks that
//! unbind vivid run last. `loopback_demo_clip` runs the `sammix` binary
//! (built with `--features v4l`) on the bundle's demo clip: without
//! `--sammix` and `--bundle` it is skipped (a `skip` line), or fails when
//! named with `--only`. Needs root (sysfs bind/unbind) and the cargo
//! feature `v4l`.

use std::process::ExitCode;
use std::time::{Duration, Instant};

mod bars;
mod common;
mod demo_clip;
mod demo_feed;
mod loopback;
mod mplane;
mod vivid;

use common::{CheckFn, Ctx, WATCHDOG};
use demo_clip::DemoSetup;

const USAGE: &str =
    "usage: v4l_check [--vivid DEV] [--vivid-mplane DEV] [--loop DEV] [--only NAME]... \
                     [--sammix BIN --bundle DIR [--demo-frames N]]";

fn main() -> ExitCode {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("warn"))
        .write_style(env_logger::WriteStyle::Never)
        .init();
    let mut args = std::env::args().skip(1);
    let mut ctx = Ctx {
        vivid: "/dev/video0".into(),
        vivid_mplane: "/dev/video1".into(),
        lo: "/dev/video10".into(),
        demo: None,
    };
    let mut only = Vec::new();
    let (mut sammix, mut bundle, mut demo_frames) = (None, None, 40);
    while let Some(a) = args.next() {
        match (a.as_str(), args.next()) {
            ("--vivid", Some(v)) => ctx.vivid = v.into(),
            ("--vivid-mplane", Some(v)) => ctx.vivid_mplane = v.into(),
            ("--loop", Some(v)) => ctx.lo = v.into(),
            ("--only", Some(v)) => only.push(v),
            ("--sammix", Some(v)) => sammix = Some(v.into()),
            ("--bundle", Some(v)) => bundle = Some(v.into()),
            ("--demo-frames", Some(v)) => match v.parse() {
                Ok(n) if n > 0 => demo_frames = n,
                _ => {
                    eprintln!("--demo-frames {v}: expected a whole number above 0\n{USAGE}");
                    return ExitCode::from(2);
                }
            },
            _ => {
                eprintln!("{USAGE}");
                return ExitCode::from(2);
            }
        }
    }
    match (sammix, bundle) {
        (Some(sammix), Some(bundle)) => {
            ctx.demo = Some(DemoSetup {
                sammix,
                bundle,
                frames: demo_frames,
            });
        }
        (None, None) => {}
        _ => {
            eprintln!("--sammix and --bundle go together\n{USAGE}");
            return ExitCode::from(2);
        }
    }
    let watchdog = WATCHDOG + ctx.demo.as_ref().map_or(Duration::ZERO, DemoSetup::budget);
    std::thread::spawn(move || {
        std::thread::sleep(watchdog);
        println!("FAIL watchdog: the checks did not end within {watchdog:?}");
        std::process::exit(3);
    });
    let checks: [(&str, CheckFn); 13] = [
        ("vivid_formats", vivid::formats),
        ("vivid_mplane_formats", mplane::formats),
        ("vivid_rgb", vivid::rgb),
        ("vivid_rgb24_720p", bars::rgb24),
        ("vivid_yuyv_720p_rgb", bars::yuyv),
        ("vivid_mplane_720p_rgb", bars::mplane),
        ("negotiation_errors", vivid::negotiation_errors),
        ("loopback_exact", loopback::exact),
        ("loopback_writer_stops", loopback::writer_stops),
        (demo_clip::NAME, demo_clip::loopback_demo_clip),
        ("vivid_unplug_reconnect", vivid::unplug_reconnect),
        (
            "vivid_back_with_another_format",
            vivid::back_with_another_format,
        ),
        ("vivid_unplug_gone", vivid::unplug_gone),
    ];
    let all = Instant::now();
    let mut failed = 0;
    for (name, check) in checks {
        if !only.is_empty() && !only.iter().any(|o| o == name) {
            continue;
        }
        if name == demo_clip::NAME && ctx.demo.is_none() && only.is_empty() {
            println!("skip {name}: needs --sammix BIN and --bundle DIR");
            continue;
        }
        let t = Instant::now();
        let r = check(&ctx);
        let s = t.elapsed().as_secs_f64();
        match r {
            Ok(note) => println!("ok   {name} ({s:.2} s): {note}"),
            Err(why) => {
                failed += 1;
                println!("FAIL {name} ({s:.2} s): {why}");
            }
        }
    }
    println!(
        "v4l_check: {} in {:.1} s",
        if failed == 0 {
            "all passed".to_string()
        } else {
            format!("{failed} failed")
        },
        all.elapsed().as_secs_f64()
    );
    if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
