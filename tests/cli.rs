//! End-to-end tests of the `sammix` binary: each command on the bundled
//! model (`models/sammix-us-scratch`) and its demo clip, on small folders built
//! in a temporary folder, and on broken bundles and sources, where the binary
//! must exit with code 2 (not 101, a panic) and an `error: ` line that names
//! the file or field at fault.
//!
//! This runs a debug build: every test keeps to a few frames.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use prost::Message;
use sammix::bundle::{sha256_file, MANIFEST};
use sammix::frame::{Frame, Mask, PixelFormat};
use sammix::y4m::{Colorspace, Y4mWriter};
use sammix::{image_io, npy};
use serde_json::Value;
use tract_onnx::pb;
use tract_onnx::pb::tensor_shape_proto::{dimension, Dimension};

// ---------------------------------------------------------------------------
// Running the binary

/// The repository root.
fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The from-scratch bundle these tests' numbers were written against (the
/// default one, `models/sammix-us-tiny`, has a test of its own:
/// `the_default_bundle_is_the_student`).
fn real_bundle() -> PathBuf {
    root().join("models/sammix-us-scratch")
}

/// A path as a command-line argument.
fn arg(path: &Path) -> &str {
    path.to_str().expect("a temporary path that is not UTF-8")
}

/// What a run of the binary did.
struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

/// `sammix ARGS` in the repository root, with none of `$SAMMIX_BUNDLE`,
/// `$RUST_LOG` or systemd's variables from the caller's environment.
fn command(args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_sammix"));
    cmd.args(args).current_dir(root());
    for var in [
        "SAMMIX_BUNDLE",
        "RUST_LOG",
        "NOTIFY_SOCKET",
        "WATCHDOG_USEC",
        "WATCHDOG_PID",
    ] {
        cmd.env_remove(var);
    }
    cmd
}

/// Runs `sammix ARGS` (see [`command`]).
fn sammix(args: &[&str]) -> Run {
    let out = command(args)
        .output()
        .expect("cannot start the sammix binary");
    Run {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Runs `sammix ARGS`, which must succeed.
fn success(args: &[&str]) -> Run {
    let r = sammix(args);
    assert_eq!(
        r.code,
        Some(0),
        "sammix {args:?} failed\n--- stdout\n{}\n--- stderr\n{}",
        r.stdout,
        r.stderr
    );
    r
}

/// Runs `sammix ARGS`, which must fail with exit code 2 and an `error: `
/// message; the message (stderr).
fn failure(args: &[&str]) -> String {
    let r = sammix(args);
    assert_ne!(r.code, Some(101), "sammix {args:?} panicked:\n{}", r.stderr);
    assert_eq!(
        r.code,
        Some(2),
        "sammix {args:?}: exit code\n--- stdout\n{}\n--- stderr\n{}",
        r.stdout,
        r.stderr
    );
    assert!(
        r.stderr.starts_with("error: "),
        "sammix {args:?}: stderr does not start with `error: `:\n{}",
        r.stderr
    );
    eprintln!("sammix {args:?}: {}", r.stderr.trim_end());
    r.stderr
}

/// Asserts that `text` holds every one of `needles`.
fn assert_contains(text: &str, needles: &[&str]) {
    for n in needles {
        assert!(text.contains(n), "{n:?} is not in:\n{text}");
    }
}

/// Parses `text` as JSON.
fn json(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("not JSON ({e}):\n{text}"))
}

/// `v` as a number.
fn num(v: &Value) -> f64 {
    v.as_f64().unwrap_or_else(|| panic!("not a number: {v}"))
}

// ---------------------------------------------------------------------------
// Temporary folders

/// A folder under the system's temporary folder, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> TempDir {
        let dir = std::env::temp_dir().join(format!("sammix-cli-{}-{name}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }

    fn join(&self, rel: &str) -> PathBuf {
        self.0.join(rel)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// The images of [`image_folder`], by the reference frame they copy.
const IMAGES: [(&str, &str); 3] = [("a", "frame_000"), ("b", "frame_001"), ("c", "frame_002")];

/// `DIR/images/{a,b,c}.png`, the reference frames, and `DIR/masks/` of the
/// same names, the reference pipeline's masks (`final_mask.npy`), as
/// ground truth.
fn image_folder(tmp: &TempDir) -> PathBuf {
    let reference = real_bundle().join("reference");
    let dir = tmp.join("data");
    fs::create_dir_all(dir.join("images")).unwrap();
    fs::create_dir_all(dir.join("masks")).unwrap();
    for (name, frame) in IMAGES {
        fs::copy(
            reference.join(format!("{frame}_frame.png")),
            dir.join("images").join(format!("{name}.png")),
        )
        .unwrap();
        let (shape, values) =
            npy::read_typed::<u8>(reference.join(frame).join("final_mask.npy")).unwrap();
        assert_eq!(shape.len(), 2, "{frame}/final_mask.npy: shape {shape:?}");
        let mask = Mask::from_bytes(shape[1], shape[0], &values).unwrap();
        image_io::write_mask_png(&dir.join("masks").join(format!("{name}.png")), &mask).unwrap();
    }
    dir
}

// ---------------------------------------------------------------------------
// run

#[test]
fn run_writes_lines_summary_results_masks_and_y4m_overlay() {
    let tmp = TempDir::new("run-y4m");
    let out = tmp.join("out");
    let r = success(&["run", "--frames", "6", "--out", arg(&out)]);

    let frame_lines: Vec<&str> = r
        .stdout
        .lines()
        .filter(|l| {
            let t = l.trim_start();
            t.len() > 6
                && t.as_bytes()[..6].iter().all(u8::is_ascii_digit)
                && t[6..].starts_with(' ')
        })
        .collect();
    assert_eq!(frame_lines.len(), 6, "per-frame lines:\n{}", r.stdout);
    for (i, l) in frame_lines.iter().enumerate() {
        assert!(l.trim_start().starts_with(&format!("{i:06} ")), "{l}");
    }
    // The summary: frames and rate, latency, scores.
    assert_contains(
        &r.stdout,
        &["6 frames in ", "latency", "p50", "vs ground truth: Dice"],
    );
    assert!(
        r.stdout
            .lines()
            .any(|l| l.starts_with("latency") && l.contains("p50")),
        "no latency line:\n{}",
        r.stdout
    );

    let results = fs::read_to_string(out.join("results.jsonl")).unwrap();
    let lines: Vec<Value> = results.lines().map(json).collect();
    assert_eq!(lines.len(), 6, "{results}");
    for (i, l) in lines.iter().enumerate() {
        for key in [
            "name",
            "presence",
            "outcome",
            "times",
            "latency_ms",
            "dropped",
            "dice",
            "mask_area",
        ] {
            assert!(l.get(key).is_some(), "line {i} has no {key:?}: {l}");
        }
        assert_eq!(l["name"], format!("{i:06}"));
        assert_eq!(l["dropped"], 0);
        assert!(num(&l["latency_ms"]) > 0.0, "{l}");
        assert!(num(&l["dice"]) >= 0.0, "{l}");
        let times = &l["times"];
        for stage in [
            "preprocess_ms",
            "classifier_ms",
            "prompt_ms",
            "encoder_ms",
            "decoder_ms",
            "postprocess_ms",
            "total_ms",
        ] {
            assert!(num(&times[stage]) >= 0.0, "line {i}: times.{stage}: {l}");
        }
        assert!(num(&times["classifier_ms"]) > 0.0, "{l}");
    }

    for (i, line) in lines.iter().enumerate() {
        let path = out.join(format!("masks/{i:06}.png"));
        let mask = image_io::read_mask(&path).unwrap();
        assert_eq!((mask.width(), mask.height()), (256, 256));
        assert_eq!(
            mask.area() as u64,
            line["mask_area"].as_u64().unwrap(),
            "{}",
            path.display()
        );
    }
    assert!(!out.join("masks/000006.png").exists());

    let y4m = fs::read(out.join("overlay.y4m")).unwrap();
    assert!(y4m.starts_with(b"YUV4MPEG2 W256 H256"), "{:?}", &y4m[..40]);
    let header = y4m.iter().position(|&b| b == b'\n').unwrap() + 1;
    let frame = 6 + 3 * 256 * 256;
    assert_eq!(y4m.len(), header + 6 * frame);
    for i in 0..6 {
        let at = header + i * frame;
        assert_eq!(&y4m[at..at + 6], b"FRAME\n", "frame {i} at byte {at}");
    }
}

#[test]
fn run_json_summary_with_png_overlays() {
    let tmp = TempDir::new("run-json");
    let out = tmp.join("out");
    let r = success(&[
        "run",
        "--frames",
        "3",
        "--json",
        "--overlay",
        "png",
        "--out",
        arg(&out),
    ]);
    let v = json(&r.stdout);
    assert_eq!(v["frames"], 3);
    assert!(num(&v["fps"]) > 0.0, "{v}");
    assert!(num(&v["latency_ms"]["p50"]) > 0.0, "{v}");
    assert_eq!(v["latency_ms"]["n"], 3);
    assert!(v["accuracy"]["dice_all"].is_number(), "{v}");
    assert_eq!(v["accuracy"]["frames"], 3);
    let outcomes = ["segmented", "absent", "no_prompt"].map(|k| v[k].as_u64().unwrap());
    assert_eq!(outcomes.iter().sum::<u64>(), 3, "{v}");
    for i in 0..3 {
        assert!(out.join(format!("overlay/{i:06}.png")).is_file(), "{i}");
        assert!(out.join(format!("masks/{i:06}.png")).is_file(), "{i}");
    }
    assert!(!out.join("overlay.y4m").exists());
    assert_eq!(
        fs::read_to_string(out.join("results.jsonl"))
            .unwrap()
            .lines()
            .count(),
        3
    );
}

#[test]
fn run_on_an_image_folder_with_masks() {
    let tmp = TempDir::new("run-images");
    let data = image_folder(&tmp);
    let source = format!("images:{}", arg(&data));
    let r = success(&["run", "--source", &source]);
    assert_contains(&r.stdout, &["3 frames in ", "vs ground truth: Dice"]);
    for (name, _) in IMAGES {
        assert!(
            r.stdout
                .lines()
                .any(|l| l.trim_start().starts_with(&format!("{name}  P ")) && l.contains("dice ")),
            "no line for {name} with its Dice:\n{}",
            r.stdout
        );
    }
}

/// `--decoder tract` and `--decoder native` on the demo clip: the same
/// frames gated and segmented, masks that agree, the decoder reported.
#[test]
fn run_with_either_decoder() {
    let tmp = TempDir::new("run-decoders");
    let mut runs = Vec::new();
    for decoder in ["native", "tract"] {
        let out = tmp.join(decoder);
        let r = success(&[
            "run",
            "--bundle",
            arg(&real_bundle()),
            "--decoder",
            decoder,
            "--frames",
            "4",
            "--json",
            "--overlay",
            "none",
            "--out",
            arg(&out),
        ]);
        let v = json(&r.stdout);
        assert_eq!(v["decoder"], decoder, "{v}");
        assert_eq!(v["frames"], 4, "{v}");
        let results = fs::read_to_string(out.join("results.jsonl")).unwrap();
        let lines: Vec<Value> = results.lines().map(json).collect();
        let masks: Vec<Mask> = (0..4)
            .map(|i| image_io::read_mask(&out.join(format!("masks/{i:06}.png"))).unwrap())
            .collect();
        runs.push((lines, masks));
    }
    let (native, tract) = (&runs[0], &runs[1]);
    let mut segmented = 0;
    for i in 0..4 {
        let (a, b) = (&native.0[i], &tract.0[i]);
        assert_eq!(a["outcome"], b["outcome"], "frame {i}");
        assert_eq!(a["presence"], b["presence"], "frame {i}");
        assert_eq!(a["box_input"], b["box_input"], "frame {i}");
        let (ma, mb) = (&native.1[i], &tract.1[i]);
        let inter = ma
            .data()
            .iter()
            .zip(mb.data())
            .filter(|(x, y)| **x != 0 && **y != 0)
            .count();
        let union = ma
            .data()
            .iter()
            .zip(mb.data())
            .filter(|(x, y)| **x != 0 || **y != 0)
            .count();
        if union > 0 {
            segmented += 1;
            let iou = inter as f64 / union as f64;
            assert!(iou >= 0.95, "frame {i}: native vs tract mask IoU {iou}");
        }
    }
    assert!(
        segmented > 0,
        "no frame segmented in the first 4 of the clip"
    );
}

#[test]
fn segment_with_the_tract_decoder() {
    let tmp = TempDir::new("segment-tract");
    let image = real_bundle().join("reference/frame_000_frame.png");
    let mut areas = Vec::new();
    for decoder in ["tract", "native"] {
        let mask_path = tmp.join(&format!("{decoder}.png"));
        let r = success(&[
            "segment",
            arg(&image),
            "--decoder",
            decoder,
            "--out",
            arg(&mask_path),
            "--json",
        ]);
        let v = json(&r.stdout);
        assert_eq!(v["decoder"], decoder, "{v}");
        assert_eq!(v["outcome"], "segmented", "{v}");
        areas.push(num(&v["mask_area"]));
    }
    assert!(
        (areas[0] - areas[1]).abs() <= 0.02 * areas[0],
        "mask areas tract {} vs native {}",
        areas[0],
        areas[1]
    );
}

#[test]
fn an_unknown_decoder_is_refused() {
    for command in ["run", "segment"] {
        let mut args = vec![command, "--decoder", "onnxruntime"];
        if command == "segment" {
            args.push("image.png");
        }
        let err = failure(&args);
        assert_contains(
            &err,
            &[
                "invalid value 'onnxruntime' for '--decoder <DECODER>'",
                "[possible values: native, tract]",
            ],
        );
    }
}

/// Lines of `text` that hold `needle`.
#[cfg(not(feature = "gpu"))]
fn lines_with<'a>(text: &'a str, needle: &str) -> Vec<&'a str> {
    text.lines().filter(|l| l.contains(needle)).collect()
}

/// A build without the GPU backend: `--backend gpu` runs the encoder on the
/// CPU with one warning naming why, and says so in the summary.
#[cfg(not(feature = "gpu"))]
#[test]
fn run_with_the_gpu_backend_not_built_falls_back_to_the_cpu() {
    let r = success(&[
        "run",
        "--backend",
        "gpu",
        "--frames",
        "2",
        "--json",
        "--overlay",
        "none",
    ]);
    let warned = lines_with(&r.stderr, "encoder backend");
    assert_eq!(warned.len(), 1, "one line, not {warned:?}");
    assert_contains(
        warned[0],
        &[
            "WARN",
            "encoder backend gpu cannot start: not built into this binary (this binary was built without the GPU backend",
            "running the encoder on the CPU (tract)",
        ],
    );
    let v = json(&r.stdout);
    assert_eq!(v["encoder_backend"], "cpu", "{v}");
    assert_eq!(v["frames"], 2, "{v}");
    assert!(
        v["encoder_fallback"]
            .as_str()
            .is_some_and(|s| s.starts_with("gpu cannot start: not built into this binary")),
        "{v}"
    );
    // `auto` falls back too, said at info level (it asks for no GPU by name).
    let r = success(&["run", "--backend", "auto", "--frames", "1", "--quiet"]);
    assert!(
        lines_with(&r.stderr, "encoder backend").is_empty(),
        "{}",
        r.stderr
    );
    let r = success(&["-v", "run", "--backend", "auto", "--frames", "1", "--quiet"]);
    let said = lines_with(&r.stderr, "encoder backend auto");
    assert_eq!(said.len(), 1, "{}", r.stderr);
    assert_contains(
        said[0],
        &[
            "INFO",
            "the gpu cannot start: not built into this binary",
            "on the CPU (tract)",
        ],
    );
    assert_contains(&r.stdout, &["encoder on the CPU (tract): gpu cannot start"]);
    // The CPU asked for: no fallback to report.
    let r = success(&[
        "run",
        "--backend",
        "cpu",
        "--frames",
        "1",
        "--json",
        "--overlay",
        "none",
    ]);
    let v = json(&r.stdout);
    assert_eq!(v["encoder_backend"], "cpu", "{v}");
    assert!(v["encoder_fallback"].is_null(), "{v}");
    assert!(
        lines_with(&r.stderr, "encoder backend").is_empty(),
        "{}",
        r.stderr
    );
}

/// A required backend that cannot start stops `run` and `eval` before
/// their first frame, naming what requires it.
#[test]
fn a_required_gpu_backend_not_built_is_refused() {
    let tmp = TempDir::new("backend-required");
    let data = image_folder(&tmp);
    for args in [
        vec!["run", "--backend", "gpu", "--backend-required"],
        vec![
            "eval",
            "--data",
            arg(&data),
            "--backend",
            "gpu",
            "--backend-required",
        ],
    ] {
        let err = failure(&args);
        assert_contains(
            &err,
            &[
                "error: encoder backend gpu: cannot start: not built into this binary",
                "required by --backend-required, so the encoder does not fall back to the CPU",
            ],
        );
        assert_eq!(err.lines().count(), 1, "{err}");
    }
    let err = failure(&["run", "--backend", "cpu", "--backend-required"]);
    assert_contains(
        &err,
        &["--backend-required needs the gpu backend", "asked: cpu"],
    );
    let err = failure(&["run", "--backend", "npu"]);
    assert_contains(
        &err,
        &[
            "invalid value 'npu' for '--backend <BACKEND>'",
            "[possible values: cpu, gpu, auto]",
        ],
    );
}

#[test]
fn run_with_a_source_kind_not_in_this_build() {
    let err = failure(&["run", "--source", "v4l:/dev/video0"]);
    // Without the `v4l` feature the spec parses, and opening says how to get it.
    assert_contains(&err, &["/dev/video0", "no V4L2 capture", "--features v4l"]);
}

#[test]
fn run_with_an_unknown_source() {
    let err = failure(&["run", "--source", "nonsense.mp4"]);
    assert_contains(
        &err,
        &["nonsense.mp4", "expected file:CLIP.y4m, images:DIR"],
    );
}

#[test]
fn run_with_a_missing_clip() {
    let err = failure(&["run", "--source", "file:/nonexistent.y4m"]);
    assert_contains(&err, &["/nonexistent.y4m", "cannot read"]);
}

#[test]
fn a_missing_file_says_the_os_error_once() {
    let err = failure(&["run", "--source", "file:/nonexistent.y4m"]);
    assert_eq!(err.matches("(os error 2)").count(), 1, "{err}");

    let tmp = TempDir::new("os-error-once");
    let data = image_folder(&tmp);
    fs::remove_file(data.join("masks/b.png")).unwrap();
    let err = failure(&["eval", "--data", arg(&data)]);
    assert_eq!(err.matches("(os error 2)").count(), 1, "{err}");
}

#[test]
fn run_on_a_truncated_clip() {
    let tmp = TempDir::new("run-truncated");
    let clip = fs::read(real_bundle().join("demo/clip.y4m")).unwrap();
    let header = clip.iter().position(|&b| b == b'\n').unwrap() + 1;
    // The header, FRAME, and part of frame 0's 256×256 Y plane.
    assert!(header + 6 < 1000 && 1000 < header + 6 + 256 * 256);
    let path = tmp.join("truncated.y4m");
    fs::write(&path, &clip[..1000]).unwrap();
    let source = format!("file:{}", arg(&path));
    let err = failure(&["run", "--source", &source, "--quiet"]);
    assert_contains(&err, &[arg(&path), "frame 0", "truncated"]);
}

// ---------------------------------------------------------------------------
// segment

#[test]
fn segment_one_image() {
    let tmp = TempDir::new("segment");
    let image = real_bundle().join("reference/frame_000_frame.png");
    let mask_path = tmp.join("m.png");
    let overlay_path = tmp.join("o.png");
    let bundle = real_bundle();
    let r = success(&[
        "segment",
        "--bundle",
        arg(&bundle),
        arg(&image),
        "--out",
        arg(&mask_path),
        "--overlay",
        arg(&overlay_path),
        "--json",
    ]);
    let v = json(&r.stdout);
    let presence = num(&v["presence"]);
    assert!((0.0..=1.0).contains(&presence), "{v}");
    assert!(presence >= 0.5, "frame_000 has a lesion: {v}");
    assert_eq!(v["outcome"], "segmented");
    let area = v["mask_area"].as_u64().unwrap();
    assert!(area > 0, "{v}");
    assert_eq!(v["mask"], arg(&mask_path));

    let mask = image_io::read_mask(&mask_path).unwrap();
    assert_eq!((mask.width(), mask.height()), (256, 256));
    assert_eq!(mask.area() as u64, area);
    let overlay = image_io::read_frame(&overlay_path).unwrap();
    assert_eq!((overlay.width(), overlay.height()), (256, 256));

    // A correction: a negative click inside the mask.
    let r = success(&[
        "segment",
        "--bundle",
        arg(&bundle),
        arg(&image),
        "--out",
        arg(&mask_path),
        "--point",
        "160,110,-",
        "--json",
    ]);
    let v = json(&r.stdout);
    let c = &v["correction"];
    assert_eq!(c["clicks"], 1, "{v}");
    assert_eq!(c["mask_area_before"].as_u64(), Some(area), "{v}");
    assert_eq!(c["encoder_ran"], false, "{v}");
    let after = c["mask_area"].as_u64().unwrap();
    assert!(after < area, "{v}");
    assert_eq!(
        image_io::read_mask(&mask_path).unwrap().area() as u64,
        after
    );
    let e = failure(&["segment", arg(&image), "--point", "5,5"]);
    assert_contains(&e, &["\"5,5\"", "X,Y,+ or X,Y,-"]);
    let e = failure(&["segment", arg(&image), "--point", "900,5,+"]);
    assert_contains(&e, &["outside the 256x256 frame"]);
}

// ---------------------------------------------------------------------------
// eval

/// Whether the reference frames have a lesion, from `reference/index.json`.
fn reference_presence() -> Vec<(String, bool)> {
    let index = json(&fs::read_to_string(real_bundle().join("reference/index.json")).unwrap());
    index["frames"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["frame"].as_str().unwrap().to_string(),
                f["present_ground_truth"].as_bool().unwrap(),
            )
        })
        .collect()
}

#[test]
fn eval_scores_a_folder() {
    let tmp = TempDir::new("eval");
    let data = image_folder(&tmp);
    let file = tmp.join("report.json");
    let bundle = real_bundle();
    let r = success(&[
        "eval",
        "--bundle",
        arg(&bundle),
        "--data",
        arg(&data),
        "--out",
        arg(&file),
    ]);
    let v = json(&r.stdout);
    assert!(v.get("clicks").is_none(), "no clicks asked for: {v}");
    assert_eq!(v["encoder_backend"], "cpu", "{v}");

    let presence = reference_presence();
    let present: Vec<bool> = IMAGES
        .iter()
        .map(|(_, frame)| {
            presence
                .iter()
                .find(|(f, _)| *f == format!("{frame}_frame.png"))
                .unwrap_or_else(|| panic!("{frame} is not in reference/index.json"))
                .1
        })
        .collect();
    assert_eq!(present, [true, true, false], "reference/index.json changed");

    let s = &v["summary"];
    assert_eq!(s["frames"], 3, "{v}");
    assert_eq!(s["positive_frames"], 2, "{v}");
    // The ground truth is the reference pipeline's own masks.
    assert!(num(&s["dice_all"]) > 0.95, "{v}");
    assert!(v["conventions"].as_str().unwrap().contains("Dice"), "{v}");
    let rows = v["images"].as_array().unwrap();
    let names: Vec<&str> = rows.iter().map(|r| r["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["a", "b", "c"]);
    for (row, want) in rows.iter().zip(present) {
        assert_eq!(row["gt_present"], want, "{row}");
    }

    let written = fs::read_to_string(&file).unwrap();
    assert_eq!(json(&written), v);
}

#[test]
fn eval_without_masks() {
    let tmp = TempDir::new("eval-no-masks");
    let data = image_folder(&tmp);
    fs::remove_dir_all(data.join("masks")).unwrap();
    let err = failure(&["eval", "--data", arg(&data)]);
    assert_contains(&err, &[arg(&data), "images/ and masks/"]);
}

#[test]
fn eval_with_a_mask_missing() {
    let tmp = TempDir::new("eval-mask-missing");
    let data = image_folder(&tmp);
    let missing = data.join("masks/b.png");
    fs::remove_file(&missing).unwrap();
    let err = failure(&["eval", "--data", arg(&data)]);
    assert_contains(&err, &[arg(&missing)]);
}

// ---------------------------------------------------------------------------
// info and bench

#[test]
fn info_describes_the_bundle() {
    let r = success(&["info", "--bundle", arg(&real_bundle())]);
    assert_contains(
        &r.stdout,
        &[
            "bundle sammix-us-scratch",
            "classifier: classifier.onnx",
            "encoder: encoder.onnx",
            "decoder: decoder.onnx",
            "low_res_masks",
            "decoder: native by default",
            "encoder backend: CPU (tract) (board profile: cpu; --backend cpu|gpu|auto)",
            "native decoder: int8 weights, 4 masks of 64×64, kernels ",
            // E, the graphs' (any E whose 4E divides S).
            "embeddings 256×16×16, dense prompt 64×64",
            // `input.color`, absent here: the luma.
            "color gray (the frame's luma in every channel)",
            "classifier input: image (the classifier gates the encoder)",
            // The prompt rule's later parts, at their defaults.
            "dense_logit 8, max_boxes 1, refine_rounds 0",
        ],
    );
    // The image input of the classifier and of the encoder.
    assert_eq!(
        r.stdout.matches("F32 1×1×256×256").count(),
        2,
        "{}",
        r.stdout
    );
}

/// With no `--bundle` (and no `$SAMMIX_BUNDLE`) the commands run
/// `models/sammix-us-tiny`, the real-time student: one gray channel, E = 32,
/// its classifier on the encoder's embeddings. It segments its own reference
/// frame, and a negative click inside the mask takes pixels off it.
#[test]
fn the_default_bundle_is_the_student() {
    let v = json(&success(&["info", "--json"]).stdout);
    assert_eq!(v["manifest"]["name"], "sammix-us-tiny", "{v}");
    assert_eq!(v["manifest"]["input"]["embedding_size"], 32, "{v}");
    assert_eq!(v["manifest"]["input"]["channels"], 1, "{v}");
    assert_eq!(
        v["graphs"]["classifier"]["input"], "image_embeddings",
        "{v}"
    );

    let tmp = TempDir::new("default-bundle");
    let image = root().join("models/sammix-us-tiny/reference/frame_000_frame.png");
    let mask_path = tmp.join("m.png");
    let first =
        json(&success(&["segment", arg(&image), "--out", arg(&mask_path), "--json"]).stdout);
    assert_eq!(first["outcome"], "segmented", "{first}");
    let mask = image_io::read_mask(&mask_path).unwrap();
    let area = mask.area() as u64;
    assert!(area > 0, "{first}");
    // The click at the mask's centroid.
    let (mut sx, mut sy) = (0u64, 0u64);
    for y in 0..mask.height() {
        for x in 0..mask.width() {
            if mask.get(x, y) {
                sx += x as u64;
                sy += y as u64;
            }
        }
    }
    let point = format!("{},{},-", sx / area, sy / area);
    let v = json(
        &success(&[
            "segment",
            arg(&image),
            "--out",
            arg(&mask_path),
            "--point",
            &point,
            "--json",
        ])
        .stdout,
    );
    let c = &v["correction"];
    assert_eq!(c["mask_area_before"].as_u64(), Some(area), "{v}");
    assert_eq!(c["encoder_ran"], false, "{v}");
    assert!(c["mask_area"].as_u64().unwrap() < area, "{point}: {v}");
}

#[test]
fn info_json() {
    let r = success(&["info", "--bundle", arg(&real_bundle()), "--json"]);
    let v = json(&r.stdout);
    let outputs = v["graphs"]["decoder"]["outputs"].as_array().unwrap();
    let low = outputs
        .iter()
        .find(|o| o["name"] == "low_res_masks")
        .unwrap_or_else(|| panic!("no low_res_masks: {outputs:?}"));
    assert_eq!(low["type"], "F32");
    assert_eq!(low["shape"], serde_json::json!([1, 4, 64, 64]));
    assert_eq!(v["manifest"]["name"], "sammix-us-scratch");
    assert_eq!(v["manifest"]["input"]["embedding_size"], 16);
    assert_eq!(v["manifest"]["input"]["color"], "gray");
    assert_eq!(v["graphs"]["classifier"]["input"], "image");
    assert_eq!(v["manifest"]["prompt"]["max_boxes"], 1);
    assert_eq!(v["manifest"]["prompt"]["refine_rounds"], 0);
    assert_eq!(v["manifest"]["graphs"]["classifier"]["input"], "image");
    assert_eq!(v["decoder_default"], "native");
    assert_eq!(v["encoder_backend"], "cpu");
    assert!(v["encoder_fallback"].is_null(), "{v}");
    for role in ["classifier", "encoder", "decoder"] {
        assert!(v["graphs"][role]["sha256"].is_string(), "{role}");
    }
    // No trusted key in the host profile: nothing checked, and said so.
    assert_eq!(v["signature"]["status"], "unverified", "{v}");
    assert_eq!(v["signature"]["signature"]["found"], "absent", "{v}");
}

/// A `w`×`h` colour clip of two frames (full-range 4:2:0, as the
/// endoscopy bundle's demo clip): two colours side by side, in 2×2-aligned
/// blocks so the chroma averages nothing away; the picture it holds.
fn colour_clip(path: &Path, w: usize, h: usize) -> Frame {
    let mut picture = Frame::zeros(w, h, PixelFormat::Rgb8);
    for (i, px) in picture.data_mut().chunks_exact_mut(3).enumerate() {
        let left = i % w < w / 2;
        px.copy_from_slice(if left {
            &[200, 60, 40]
        } else {
            &[40, 160, 170]
        });
    }
    let mut clip = Y4mWriter::create(path, w, h, (25, 1), Colorspace::Yuv420Jpeg).unwrap();
    for _ in 0..2 {
        clip.write_frame(&picture).unwrap();
    }
    clip.finish().unwrap();
    picture
}

/// Of the overlay's pixels outside the mask, the fraction within 3 levels
/// of `picture`'s colour, and the fraction that are gray (R = G = B).
fn overlay_colours(out: &Path, picture: &Frame) -> (f64, f64) {
    let overlay = image_io::read_frame(&out.join("overlay/000000.png")).unwrap();
    let mask = image_io::read_mask(&out.join("masks/000000.png")).unwrap();
    assert_eq!(overlay.format(), PixelFormat::Rgb8);
    let (mut outside, mut coloured, mut gray) = (0, 0, 0);
    for (i, (o, p)) in overlay
        .data()
        .chunks_exact(3)
        .zip(picture.data().chunks_exact(3))
        .enumerate()
    {
        if mask.data()[i] != 0 {
            continue;
        }
        outside += 1;
        coloured += usize::from(o.iter().zip(p).all(|(&a, &b)| a.abs_diff(b) <= 3));
        gray += usize::from(o[0] == o[1] && o[1] == o[2]);
    }
    assert!(outside > 0);
    (
        coloured as f64 / outside as f64,
        gray as f64 / outside as f64,
    )
}

/// `input.color` end to end: a colour clip is read in colour for an `rgb`
/// bundle (the frames, and so the overlay, keep their colours) and as its
/// Y plane for a `gray` one, and `sammix info` says which the bundle is.
/// On the 3-channel LiteMedSAM bundle, trained on gray frames: as shipped it
/// is `gray`; a copy saying `rgb` stands in for the endoscopy bundle.
#[test]
fn an_rgb_bundle_reads_a_colour_clip_in_colour_and_a_gray_one_in_gray() {
    let medsam = root().join("models/sammix-us-medsam");
    if !medsam.join(MANIFEST).is_file() {
        eprintln!(
            "SKIPPED: no {} (build it with the recipe)",
            medsam.display()
        );
        return;
    }
    let tmp = TempDir::new("colour");
    let clip = tmp.join("clip.y4m");
    let picture = colour_clip(&clip, 128, 96);
    let source = format!("file:{}", arg(&clip));
    let rgb = BrokenBundle::of(&medsam, "rgb");
    rgb.edit("channels = 3\n", "channels = 3\ncolor = \"rgb\"\n");
    for (bundle, color) in [(medsam.as_path(), "gray"), (rgb.dir(), "rgb")] {
        let info = success(&["info", "--bundle", arg(bundle)]);
        assert_contains(
            &info.stdout,
            &["input: 3×256×256", &format!("color {color} (")],
        );

        let out = tmp.join(&format!("out-{color}"));
        let args = ["run", "--bundle", arg(bundle), "--source", &source];
        let more = [
            "--frames",
            "2",
            "--overlay",
            "png",
            "--json",
            "--out",
            arg(&out),
        ];
        let r = success(&[&args[..], &more[..]].concat());
        assert_eq!(json(&r.stdout)["frames"], 2);
        let (coloured, gray) = overlay_colours(&out, &picture);
        eprintln!(
            "{color} bundle: {coloured:.3} of the overlay in the clip's colours, {gray:.3} gray"
        );
        // (the label's white on black is gray on either)
        if color == "rgb" {
            assert!(coloured >= 0.6 && gray < 0.3, "{coloured} {gray}");
        } else {
            assert!(coloured == 0.0 && gray >= 0.6, "{coloured} {gray}");
        }
    }
}

// ---------------------------------------------------------------------------
// bundle sign / verify / keygen

/// The real bundle copied into `tmp/bundle` (its files are all listed, so
/// the copy opens as the original does).
fn bundle_copy(tmp: &TempDir) -> PathBuf {
    fn copy(from: &Path, to: &Path) {
        fs::create_dir_all(to).unwrap();
        for e in fs::read_dir(from).unwrap() {
            let e = e.unwrap();
            let t = to.join(e.file_name());
            if e.file_type().unwrap().is_dir() {
                copy(&e.path(), &t);
            } else {
                fs::copy(e.path(), t).unwrap();
            }
        }
    }
    let dir = tmp.join("bundle");
    copy(&real_bundle(), &dir);
    dir
}

#[test]
fn a_trusted_key_refuses_unsigned_and_foreign_bundles_and_runs_signed_ones() {
    let tmp = TempDir::new("signed");
    let b = bundle_copy(&tmp);
    let keys = root().join("tests/data/signing");
    let trusted = keys.join("trusted.pub");
    let other = keys.join("other.pub");

    let r = success(&["info", "--bundle", arg(&b)]);
    assert_contains(&r.stdout, &["signature: unverified", "not signed"]);
    // Unsigned, with a trusted key: every command that opens it refuses.
    for cmd in ["info", "run"] {
        let e = failure(&[cmd, "--bundle", arg(&b), "--trusted-key", arg(&trusted)]);
        assert_contains(&e, &["sammix.toml", "not signed", "sammix.toml.minisig"]);
    }
    let e = failure(&["bundle", "verify", "--bundle", arg(&b)]);
    assert_contains(&e, &["no trusted key", "--trusted-key"]);

    let r = success(&[
        "bundle",
        "sign",
        "--bundle",
        arg(&b),
        "--secret-key",
        arg(&keys.join("trusted.key")),
    ]);
    assert_contains(
        &r.stdout,
        &["signed", "sammix.toml.minisig", "bundle:sammix-us-scratch"],
    );
    let r = success(&[
        "bundle",
        "verify",
        "--bundle",
        arg(&b),
        "--trusted-key",
        arg(&trusted),
    ]);
    assert_contains(
        &r.stdout,
        &["verified: signed by trusted key", "trusted.pub"],
    );
    let r = success(&["info", "--bundle", arg(&b), "--trusted-key", arg(&trusted)]);
    assert_contains(&r.stdout, &["signature: verified"]);
    let r = success(&[
        "run",
        "--bundle",
        arg(&b),
        "--trusted-key",
        arg(&trusted),
        "--frames",
        "2",
        "--quiet",
    ]);
    assert_contains(&r.stdout, &["2 frames"]);

    // Signed by a key this run does not trust.
    let e = failure(&["run", "--bundle", arg(&b), "--trusted-key", arg(&other)]);
    assert_contains(
        &e,
        &[
            "sammix.toml.minisig",
            "does not trust",
            "security.trusted_keys",
        ],
    );
    // Tampered after signing.
    let m = fs::read_to_string(b.join("sammix.toml")).unwrap();
    fs::write(
        b.join("sammix.toml"),
        m.replace("presence_threshold = 0.5", "presence_threshold = 0.1"),
    )
    .unwrap();
    let e = failure(&["info", "--bundle", arg(&b), "--trusted-key", arg(&trusted)]);
    assert_contains(&e, &["sammix.toml.minisig", "does not match sammix.toml"]);
    let e = failure(&[
        "bundle",
        "verify",
        "--bundle",
        arg(&b),
        "--trusted-key",
        arg(&trusted),
    ]);
    assert_contains(&e, &["is not verified", "does not match"]);
}

#[test]
fn keygen_writes_a_pair_that_signs_and_refuses_to_overwrite() {
    let tmp = TempDir::new("keygen");
    let prefix = tmp.join("release");
    let r = success(&["bundle", "keygen", "--no-password", arg(&prefix)]);
    assert_contains(
        &r.stdout,
        &["release.key", "release.pub", "trusted_keys: \"RW"],
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = fs::metadata(tmp.join("release.key"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "the secret key is readable by others");
    }
    let e = failure(&["bundle", "keygen", "--no-password", arg(&prefix)]);
    assert_contains(&e, &["release.key", "cannot write"]);
    let e = failure(&[
        "bundle",
        "sign",
        "--bundle",
        arg(&tmp.join("nowhere")),
        "--secret-key",
        arg(&tmp.join("release.key")),
    ]);
    assert_contains(&e, &["refusing to sign", "nowhere"]);
}

#[test]
fn bench_json() {
    let r = success(&["bench", "--iterations", "3", "--warmup", "1", "--json"]);
    let v = json(&r.stdout);
    assert_eq!(v["iterations"], 3);
    assert_eq!(v["warmup"], 1);
    // Both decoders timed on the same frames, and the kernels named.
    assert_eq!(v["decoder_default"], "native", "{v}");
    for decoder in ["native", "tract"] {
        let stages = &v["stages"][decoder];
        assert_eq!(
            stages["segmented"].as_u64().unwrap() + stages["gated"].as_u64().unwrap(),
            3,
            "{v}"
        );
        assert_eq!(stages["classifier_ms"]["n"], 3, "{v}");
        assert!(num(&stages["classifier_ms"]["p50"]) > 0.0, "{v}");
        assert_eq!(stages["segmented"], v["stages"]["native"]["segmented"]);
        if stages["segmented"].as_u64().unwrap() > 0 {
            assert!(num(&v["decoder_median_ms"][decoder]) > 0.0, "{v}");
        }
    }
    assert!(v["kernels"]["name"].is_string(), "{v}");
    assert!(v["kernels"]["gemm_i8"].is_string(), "{v}");
    assert_eq!(v["agreement"]["outcome_differs"], 0, "{v}");
    assert!(num(&v["agreement"]["min_mask_iou"]) >= 0.95, "{v}");
}

// ---------------------------------------------------------------------------
// Broken bundles

/// A copy of the real bundle's manifest and three graphs in a temporary
/// folder; the manifest's `[checksums]` table is emptied, so the other
/// files need not be copied.
struct BrokenBundle {
    tmp: TempDir,
}

impl BrokenBundle {
    fn new(name: &str) -> BrokenBundle {
        BrokenBundle::of(&real_bundle(), name)
    }

    /// The same from the bundle in `real`.
    fn of(real: &Path, name: &str) -> BrokenBundle {
        let tmp = TempDir::new(&format!("bundle-{name}"));
        let text = fs::read_to_string(real.join(MANIFEST)).unwrap();
        let at = text.find("\n[checksums]\n").expect("no [checksums] table") + 1;
        fs::write(tmp.join(MANIFEST), format!("{}[checksums]\n", &text[..at])).unwrap();
        for file in ["classifier.onnx", "encoder.onnx", "decoder.onnx"] {
            fs::copy(real.join(file), tmp.join(file)).unwrap();
        }
        BrokenBundle { tmp }
    }

    fn dir(&self) -> &Path {
        &self.tmp.0
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.tmp.join(rel)
    }

    /// Rewrites the manifest with `from` replaced by `to` (which must occur).
    fn edit(&self, from: &str, to: &str) -> &BrokenBundle {
        let path = self.path(MANIFEST);
        let text = fs::read_to_string(&path).unwrap();
        assert!(text.contains(from), "{from:?} is not in the manifest");
        fs::write(&path, text.replacen(from, to, 1)).unwrap();
        self
    }

    /// Replaces graph `role` (`classifier.onnx` for `classifier`, ...) by
    /// `bytes`, with its new sha256 in `graphs.<role>.sha256`.
    fn replace(&self, role: &str, bytes: &[u8]) -> &BrokenBundle {
        let path = self.path(&format!("{role}.onnx"));
        fs::write(&path, bytes).unwrap();
        let digest = sha256_file(&path).unwrap();
        let manifest = self.path(MANIFEST);
        let mut text = fs::read_to_string(&manifest).unwrap();
        let table = format!("[graphs.{role}]\n");
        let table_at = text.find(&table).unwrap_or_else(|| panic!("no {table}"));
        let key = "sha256 = \"";
        let at = table_at + text[table_at..].find(key).expect("no sha256") + key.len();
        text.replace_range(at..at + 64, &digest);
        fs::write(&manifest, text).unwrap();
        self
    }

    /// `sammix info --bundle DIR`, which must fail; its message.
    fn info_err(&self) -> String {
        failure(&["info", "--bundle", arg(self.dir())])
    }
}

#[test]
fn the_broken_bundle_fixture_is_valid_until_broken() {
    let b = BrokenBundle::new("valid");
    success(&["info", "--bundle", arg(b.dir())]);
}

#[test]
fn bundle_folder_missing() {
    let tmp = TempDir::new("bundle-missing");
    let dir = tmp.join("no-such-bundle");
    let err = failure(&["info", "--bundle", arg(&dir)]);
    assert_contains(&err, &[arg(&dir), "no bundle folder here"]);
}

#[test]
fn bundle_without_manifest() {
    let b = BrokenBundle::new("no-manifest");
    fs::remove_file(b.path(MANIFEST)).unwrap();
    let err = b.info_err();
    assert_contains(&err, &[arg(&b.path(MANIFEST)), "bundle manifest not found"]);
}

#[test]
fn bundle_manifest_with_a_toml_syntax_error() {
    let b = BrokenBundle::new("toml-syntax");
    b.edit("name = \"sammix-us-scratch\"", "name = \"sammix-us-scratch");
    let err = b.info_err();
    let at = format!("{}:3:", arg(&b.path(MANIFEST)));
    assert_contains(&err, &[&at, "invalid TOML"]);
}

#[test]
fn bundle_manifest_with_an_unknown_field() {
    let b = BrokenBundle::new("unknown-field");
    b.edit("[gate]\n", "[gate]\nbogus_knob = 1\n");
    let err = b.info_err();
    assert_contains(
        &err,
        &[arg(&b.path(MANIFEST)), "unknown field `gate.bogus_knob`"],
    );
}

#[test]
fn bundle_manifest_with_a_missing_field() {
    let b = BrokenBundle::new("missing-field");
    b.edit("min_component_px = 48", "");
    let err = b.info_err();
    assert_contains(
        &err,
        &[
            arg(&b.path(MANIFEST)),
            "missing field `prompt.min_component_px`",
        ],
    );
}

#[test]
fn bundle_manifest_with_a_wrong_type() {
    let b = BrokenBundle::new("wrong-type");
    b.edit("box_margin = 0.03", "box_margin = \"wide\"");
    let err = b.info_err();
    assert_contains(
        &err,
        &[
            arg(&b.path(MANIFEST)),
            "field `prompt.box_margin`",
            "invalid type",
        ],
    );
}

#[test]
fn bundle_manifest_with_rgb_on_one_channel() {
    let b = BrokenBundle::new("rgb-one-channel");
    b.edit("channels = 1", "channels = 1\ncolor = \"rgb\"");
    let err = b.info_err();
    assert_contains(
        &err,
        &[
            arg(&b.path(MANIFEST)),
            "field `input.color`",
            "expected input.channels = 3, found 1",
        ],
    );
    b.edit("color = \"rgb\"", "color = \"bgr\"");
    let err = b.info_err();
    assert_contains(
        &err,
        &[
            "field `input.color`",
            "unknown variant `bgr`, expected `gray` or `rgb`",
        ],
    );
}

#[test]
fn bundle_graph_with_a_sha256_mismatch() {
    let b = BrokenBundle::new("sha256");
    let real = sha256_file(&b.path("classifier.onnx")).unwrap();
    let wrong = format!(
        "{}{}",
        if real.starts_with('0') { '1' } else { '0' },
        &real[1..]
    );
    b.edit(&real, &wrong);
    let err = b.info_err();
    assert_contains(
        &err,
        &[
            "`graphs.classifier.sha256`",
            "\"classifier.onnx\" has sha256",
            &wrong,
        ],
    );
}

#[test]
fn bundle_graph_file_missing() {
    let b = BrokenBundle::new("graph-missing");
    fs::remove_file(b.path("decoder.onnx")).unwrap();
    let err = b.info_err();
    assert_contains(
        &err,
        &[
            "`graphs.decoder.file`",
            "\"decoder.onnx\" is listed but missing",
        ],
    );
}

#[test]
fn bundle_with_an_unlisted_file() {
    let b = BrokenBundle::new("unlisted");
    fs::write(b.path("notes.txt"), "not in the manifest\n").unwrap();
    let err = b.info_err();
    assert_contains(&err, &["extra file \"notes.txt\""]);
}

#[test]
fn bundle_graph_that_is_not_onnx() {
    let b = BrokenBundle::new("garbage");
    b.replace("encoder", b"this is not an ONNX model at all");
    let err = b.info_err();
    assert_contains(
        &err,
        &[arg(&b.path("encoder.onnx")), "cannot load ONNX graph"],
    );
}

#[test]
fn bundle_graph_on_which_tract_panics() {
    // a constant Gather index out of range: tract 0.23.9 panics in constant folding
    let hostile = root().join("tests/data/hostile/classifier_that_panics.onnx");
    let b = BrokenBundle::new("tract-panic");
    b.replace("classifier", &fs::read(hostile).unwrap());
    let err = b.info_err();
    assert_contains(
        &err,
        &[
            arg(&b.path("classifier.onnx")),
            "contained panic",
            "index out of bounds",
        ],
    );
    assert!(
        !err.contains("panicked at"),
        "the panic hook printed:\n{err}"
    );
}

/// `sammix run` over the three reference images with a bundle whose graphs
/// are replaced by `tests/data/nan/` ones: every frame is invalid, named by
/// the output that held NaN or Inf; the run goes to its end and says so.
fn run_with_nan_graphs(name: &str, replaced: &[(&str, &str)], output: &str) {
    let b = BrokenBundle::new(name);
    for (role, file) in replaced {
        let path = root().join(format!("tests/data/nan/{file}.onnx"));
        b.replace(role, &fs::read(path).unwrap());
    }
    let tmp = TempDir::new(&format!("run-{name}"));
    let data = image_folder(&tmp);
    let out = tmp.join("out");
    let source = format!("images:{}", arg(&data));
    let r = success(&[
        "run",
        "--bundle",
        arg(b.dir()),
        "--source",
        &source,
        "--out",
        arg(&out),
    ]);
    assert_contains(
        &r.stdout,
        &["3 frames in ", "invalid: 3 frames", "NaN or Inf"],
    );
    assert_contains(&r.stderr, &[output, "holds NaN or Inf", "logged once"]);
    assert_eq!(
        r.stderr.matches("holds NaN or Inf").count(),
        1,
        "one warning a burst:\n{}",
        r.stderr
    );
    let lines = fs::read_to_string(out.join("results.jsonl")).unwrap();
    assert_eq!(lines.lines().count(), 3);
    for line in lines.lines() {
        let v = json(line);
        assert_eq!(v["outcome"], "invalid", "{line}");
        assert_eq!(v["invalid_output"], output, "{line}");
        assert_eq!(v["mask_area"], 0, "{line}");
    }
}

#[test]
fn run_with_a_classifier_giving_nan_logits() {
    run_with_nan_graphs(
        "nan-logits",
        &[("classifier", "classifier_nan_logits")],
        "classifier logits",
    );
}

#[test]
fn run_with_a_classifier_giving_an_infinite_cam() {
    run_with_nan_graphs(
        "inf-cam",
        &[("classifier", "classifier_inf_cam")],
        "classifier cam",
    );
}

#[test]
fn run_with_an_encoder_giving_infinite_embeddings() {
    run_with_nan_graphs(
        "inf-embeddings",
        &[
            ("classifier", "classifier_always_present"),
            ("encoder", "encoder_inf"),
        ],
        "encoder image_embeddings",
    );
}

#[test]
fn bundle_with_classifier_and_encoder_swapped() {
    let b = BrokenBundle::new("swapped");
    let real = real_bundle();
    b.replace("classifier", &fs::read(real.join("encoder.onnx")).unwrap())
        .replace("encoder", &fs::read(real.join("classifier.onnx")).unwrap());
    let err = b.info_err();
    assert_contains(
        &err,
        &[
            arg(&b.path("classifier.onnx")),
            "no output \"logits\"",
            "\"image_embeddings\"",
        ],
    );
}

/// An f32 tensor type, of this shape when given.
fn f32_info(name: &str, dims: Option<&[i64]>) -> pb::ValueInfoProto {
    let shape = dims.map(|dims| pb::TensorShapeProto {
        dim: dims
            .iter()
            .map(|&v| Dimension {
                value: Some(dimension::Value::DimValue(v)),
                ..Default::default()
            })
            .collect(),
    });
    pb::ValueInfoProto {
        name: name.to_string(),
        r#type: Some(pb::TypeProto {
            value: Some(pb::type_proto::Value::TensorType(pb::type_proto::Tensor {
                elem_type: 1,
                shape,
            })),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// An encoder whose embeddings have 128 channels where the contract wants
/// 256: `image` (1×1×256×256) pooled 16×16 and broadcast to 1×128×16×16.
fn encoder_of_128_channels() -> Vec<u8> {
    let ints = |name: &str, ints: &[i64]| pb::AttributeProto {
        name: name.to_string(),
        r#type: 7,
        ints: ints.to_vec(),
        ..Default::default()
    };
    let node = |op: &str, inputs: &[&str], output: &str, attribute| pb::NodeProto {
        op_type: op.to_string(),
        name: output.to_string(),
        input: inputs.iter().map(|s| s.to_string()).collect(),
        output: vec![output.to_string()],
        attribute,
        ..Default::default()
    };
    let graph = pb::GraphProto {
        name: "cli-test".to_string(),
        input: vec![f32_info("image", Some(&[1, 1, 256, 256]))],
        output: vec![f32_info("image_embeddings", None)],
        initializer: vec![pb::TensorProto {
            name: "shape".to_string(),
            dims: vec![4],
            data_type: 7,
            int64_data: vec![1, 128, 16, 16],
            ..Default::default()
        }],
        node: vec![
            node(
                "AveragePool",
                &["image"],
                "small",
                vec![ints("kernel_shape", &[16, 16]), ints("strides", &[16, 16])],
            ),
            node("Expand", &["small", "shape"], "image_embeddings", vec![]),
        ],
        ..Default::default()
    };
    pb::ModelProto {
        ir_version: 8,
        opset_import: vec![pb::OperatorSetIdProto {
            domain: String::new(),
            version: 17,
        }],
        graph: Some(graph),
        ..Default::default()
    }
    .encode_to_vec()
}

#[test]
fn bundle_encoder_with_embeddings_of_the_wrong_shape() {
    let b = BrokenBundle::new("embed-128");
    b.replace("encoder", &encoder_of_128_channels());
    let err = b.info_err();
    assert_contains(
        &err,
        &[
            arg(&b.path("encoder.onnx")),
            "output \"image_embeddings\"",
            "1×128×16×16",
            "1×256×16×16",
        ],
    );
}

#[test]
fn run_pets_the_watchdog_while_frames_finish_and_disarms_it_at_the_end() {
    // A plain file stands in for /dev/watchdog: every pet is a byte 0, the
    // magic close a `V` (tests/../examples/watchdog_check.rs drives the
    // kernel's softdog in a VM).
    let dir = TempDir::new("watchdog");
    let dog = dir.join("watchdog");
    fs::write(&dog, b"").unwrap();
    let r = success(&["run", "--frames", "6", "--watchdog", arg(&dog)]);
    assert_contains(&r.stdout, &["controls: board host", "6 frames in "]);
    let pets = fs::read(&dog).unwrap();
    let (last, before) = pets.split_last().expect("the watchdog was never written");
    assert_eq!(*last, b'V', "not disarmed at the end: {pets:?}");
    assert!(
        !before.is_empty() && before.iter().all(|&b| b == 0),
        "{pets:?}"
    );
}

#[test]
fn run_watchdog_errors_name_the_device() {
    let missing = root().join("no-such-dir/watchdog");
    let err = failure(&["run", "--frames", "1", "--watchdog", arg(&missing)]);
    assert_contains(&err, &["watchdog device", "no-such-dir/watchdog"]);
    let err = failure(&["run", "--controls", "off", "--watchdog", "/dev/null"]);
    assert_contains(&err, &["--watchdog needs the board controls"]);
}

#[test]
fn run_pins_its_threads_to_the_profile_cores_when_asked() {
    // The host profile names cores 0, 1, 0: on a machine without core 1 the
    // inference thread stays unpinned with a warning, never an error.
    let r = success(&["run", "--frames", "3", "--pin-threads", "on", "-q", "-v"]);
    assert_contains(&r.stderr, &["capture thread pinned to cores [0]"]);
    assert!(
        r.stderr.contains("inference thread pinned to cores [1]")
            || r.stderr
                .contains("inference thread: pinning to cores [1] failed"),
        "{}",
        r.stderr
    );
    let r = success(&["run", "--frames", "3", "-q", "-v"]);
    assert!(
        !r.stderr.contains("pinned"),
        "host profile pins by default:\n{}",
        r.stderr
    );
}

/// The datagrams waiting on `socket`, in order (they wait in its queue
/// until read; this does not wait for more).
fn pending(socket: &std::os::unix::net::UnixDatagram) -> Vec<String> {
    socket.set_nonblocking(true).unwrap();
    let mut messages = Vec::new();
    let mut buf = [0u8; 512];
    while let Ok(n) = socket.recv(&mut buf) {
        messages.push(String::from_utf8_lossy(&buf[..n]).into_owned());
    }
    messages
}

/// Runs `sammix ARGS` as systemd would start it with `Type=notify`:
/// `$NOTIFY_SOCKET` names a socket bound here, plus `env`; returns the run
/// and the notifications it sent, in order.
fn under_systemd(args: &[&str], env: &[(&str, &str)]) -> (Run, Vec<String>) {
    use std::os::unix::net::UnixDatagram;
    use std::sync::atomic::{AtomicUsize, Ordering};
    static RUNS: AtomicUsize = AtomicUsize::new(0);
    let tmp = TempDir::new(&format!("notify-{}", RUNS.fetch_add(1, Ordering::Relaxed)));
    let path = tmp.join("notify");
    let socket = UnixDatagram::bind(&path).unwrap();
    let mut cmd = command(args);
    cmd.env("NOTIFY_SOCKET", &path);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("cannot start the sammix binary");
    let run = Run {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    };
    (run, pending(&socket))
}

#[test]
fn run_tells_systemd_it_is_ready_and_feeds_its_watchdog() {
    let args = ["run", "--frames", "6", "--quiet"];
    // Type=notify with WatchdogSec=10: ready, petted, a clean stop.
    let (r, msgs) = under_systemd(&args, &[("WATCHDOG_USEC", "10000000")]);
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    assert_eq!(
        msgs.first().map(String::as_str),
        Some("READY=1"),
        "{msgs:?}"
    );
    assert!(msgs.iter().any(|m| m == "WATCHDOG=1"), "{msgs:?}");
    assert_eq!(
        msgs.last().map(String::as_str),
        Some("STOPPING=1"),
        "{msgs:?}"
    );
    // Type=notify without a watchdog: ready, nothing else on the host profile.
    let (r, msgs) = under_systemd(&args, &[]);
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    assert_eq!(msgs, ["READY=1"]);
    // The watchdog is another process's (WATCHDOG_PID): not petted.
    let (r, msgs) = under_systemd(
        &args,
        &[("WATCHDOG_USEC", "10000000"), ("WATCHDOG_PID", "1")],
    );
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    assert_eq!(msgs, ["READY=1"]);
}

#[test]
fn run_with_a_bad_notify_socket_names_it() {
    let (r, msgs) = under_systemd(
        &["run", "--frames", "1"],
        &[("NOTIFY_SOCKET", "run/notify")],
    );
    assert_eq!(r.code, Some(2), "{}", r.stderr);
    assert_contains(&r.stderr, &["NOTIFY_SOCKET=run/notify", "absolute"]);
    assert!(msgs.is_empty());
    let (r, _) = under_systemd(&["run", "--frames", "1"], &[("WATCHDOG_USEC", "soon")]);
    assert_eq!(r.code, Some(2), "{}", r.stderr);
    assert_contains(&r.stderr, &["WATCHDOG_USEC=soon", "microseconds"]);
}

#[test]
fn sigterm_ends_a_live_run_cleanly() {
    use std::os::unix::net::UnixDatagram;
    use std::time::{Duration, Instant};
    let tmp = TempDir::new("sigterm");
    let path = tmp.join("notify");
    let socket = UnixDatagram::bind(&path).unwrap();
    socket
        .set_read_timeout(Some(Duration::from_secs(120)))
        .unwrap();
    // An endless live source, as a capture card is, under systemd.
    let mut child = command(&[
        "run",
        "--source",
        "synthetic:3",
        "--json",
        "--overlay",
        "none",
        "--out",
    ])
    .arg(tmp.join("out"))
    .env("NOTIFY_SOCKET", &path)
    .env("WATCHDOG_USEC", "10000000")
    .stdout(std::process::Stdio::piped())
    .stderr(std::process::Stdio::piped())
    .spawn()
    .unwrap();
    let mut buf = [0u8; 256];
    let mut messages = Vec::new();
    let n = socket.recv(&mut buf).expect("READY=1 from sammix");
    messages.push(String::from_utf8_lossy(&buf[..n]).into_owned());
    assert_eq!(messages[0], "READY=1");
    // Once a frame is through (debug builds are slow), stop it as systemd does.
    let results = tmp.join("out/results.jsonl");
    let deadline = Instant::now() + Duration::from_secs(120);
    while fs::read_to_string(&results).map_or(true, |t| t.lines().next().is_none()) {
        assert!(Instant::now() < deadline, "no frame within 120 s");
        assert!(
            child.try_wait().unwrap().is_none(),
            "sammix ended by itself"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let pid = child.id().to_string();
    assert!(Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap()
        .success());
    let deadline = Instant::now() + Duration::from_secs(60);
    while child.try_wait().unwrap().is_none() {
        assert!(
            Instant::now() < deadline,
            "sammix did not stop after SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let summary = json(&String::from_utf8_lossy(&out.stdout));
    assert!(num(&summary["frames"]) >= 1.0, "{summary}");
    messages.extend(pending(&socket));
    // The clean end: the watchdogs are told, not left to fire.
    assert_eq!(
        messages.last().map(String::as_str),
        Some("STOPPING=1"),
        "{messages:?}"
    );
}

#[test]
fn eval_with_simulated_clicks() {
    let tmp = TempDir::new("eval-clicks");
    let data = image_folder(&tmp);
    let r = success(&["eval", "--data", arg(&data), "--clicks", "2"]);
    let v = json(&r.stdout);
    let c = &v["clicks"];
    assert_eq!(c["clicks"], 2, "{v}");
    for key in ["dice_all", "dice_positive"] {
        let d: Vec<f64> = c[key].as_array().unwrap().iter().map(num).collect();
        assert_eq!(d.len(), 3, "{key}: {c}");
        assert!(d.iter().all(|x| (0.0..=1.0).contains(x)), "{key}: {c}");
    }
    // Before any click, the summary's own Dice.
    assert!(
        (num(&c["dice_all"][0]) - num(&v["summary"]["dice_all"])).abs() < 1e-9,
        "{v}"
    );
    assert_eq!(c["worst"]["images"].as_array().unwrap().len(), 3, "{c}");
    assert!(c["rule"].as_str().unwrap().contains("largest"), "{c}");
}

// ---------------------------------------------------------------------------
// corrections in a stream, and their KPIs

/// A session scripted ahead of the run: each request is served once its
/// frame is the one on display (a request for a frame never shown is
/// rejected at the end, a line that is not a request is skipped), logged to
/// corrections.jsonl, the corrected frame's mask rewritten; `sammix kpi`
/// counts them.
#[test]
fn run_serves_a_scripted_correction_session_and_kpi_sums_it() {
    let tmp = TempDir::new("run-corrections");
    let out = tmp.join("out");
    let script = tmp.join("clicks.jsonl");
    fs::write(
        &script,
        concat!(
            "{\"frame\": 1, \"points\": [\"128,128,+\"]}\n",
            "{\"frame\": 1, \"accept\": true}\n",
            "not a request\n",
            "{\"frame\": 3, \"accept\": true}\n",
            "{\"frame\": 0, \"accept\": true}\n",
            "{\"frame\": 9, \"accept\": true}\n",
        ),
    )
    .unwrap();
    let r = success(&[
        "run",
        "--frames",
        "6",
        "--corrections",
        arg(&script),
        "--out",
        arg(&out),
    ]);
    assert_contains(
        &r.stdout,
        &["000001  corrected: 1 click(s)", "000003  accepted"],
    );

    let lines: Vec<Value> = fs::read_to_string(out.join("corrections.jsonl"))
        .unwrap()
        .lines()
        .map(json)
        .collect();
    let served: Vec<(u64, &str, bool)> = lines
        .iter()
        .map(|l| {
            (
                l["frame"].as_u64().unwrap(),
                l["kind"].as_str().unwrap(),
                l["rejected"].is_null(),
            )
        })
        .collect();
    assert_eq!(
        served,
        [
            (0, "accept", true),
            (1, "clicks", true),
            (1, "accept", true),
            (3, "accept", true),
            (9, "accept", false),
        ],
        "{lines:?}"
    );
    let clicks = &lines[1];
    assert_eq!(clicks["name"], "000001");
    assert_eq!(clicks["points"].as_array().unwrap().len(), 1, "{clicks}");
    let correction = &clicks["correction"];
    assert_eq!(correction["clicks"], 1, "{clicks}");
    assert!(
        correction["decoder_calls"].as_u64().unwrap() >= 1,
        "{clicks}"
    );
    assert!(
        num(&clicks["dice"]) >= 0.0,
        "the demo clip has ground truth: {clicks}"
    );
    // the frame's mask on disk is the corrected one
    let mask = image_io::read_mask(&out.join("masks/000001.png")).unwrap();
    assert_eq!(
        mask.area() as u64,
        correction["mask_area"].as_u64().unwrap()
    );
    // an acceptance of the frame on display knows when it was shown
    assert!(
        num(&lines[3]["at_ms"]) >= num(&lines[3]["shown_ms"]),
        "{}",
        lines[3]
    );
    assert!(
        lines[4]["rejected"]
            .as_str()
            .unwrap()
            .contains("frame 9 was not processed"),
        "{}",
        lines[4]
    );

    let kpi = json(&success(&["kpi", "--json", arg(&out)]).stdout);
    let s = &kpi[0];
    assert_eq!(s["frames"], 6, "{s}");
    assert_eq!(s["requests"], 5, "{s}");
    assert_eq!(s["corrections"], 1, "{s}");
    assert_eq!(s["clicks"], 1, "{s}");
    assert_eq!(s["frames_corrected"], 1, "{s}");
    assert_eq!(s["frames_accepted"], 3, "{s}");
    assert_eq!(s["accepted_as_proposed"], 2, "{s}");
    assert_eq!(s["rejected"], 1, "{s}");
    assert_eq!(s["time_to_accept_ms"]["n"], 3, "{s}");
    assert!(num(&s["dice_after_correction"]) >= 0.0, "{s}");
    let table = success(&["kpi", arg(&out)]).stdout;
    assert_contains(&table, &["study", "frames", "flagged", "accept p50 ms"]);
}

#[test]
fn kpi_names_what_it_cannot_read() {
    let tmp = TempDir::new("kpi-bad");
    let missing = tmp.join("nothing-here");
    assert_contains(
        &failure(&["kpi", arg(&missing)]),
        &["nothing-here", "no such file"],
    );
    let empty = tmp.join("empty");
    fs::create_dir_all(&empty).unwrap();
    assert_contains(
        &failure(&["kpi", arg(&empty)]),
        &["empty", "expected a `sammix run --out` folder"],
    );
}

// ---------------------------------------------------------------------------
// report pages (scripts/test-reports.sh renders them in headless Chromium)

#[test]
fn eval_and_bench_write_report_pages() {
    let tmp = TempDir::new("reports");
    let data = image_folder(&tmp);
    let dir = tmp.join("eval");
    let r = success(&["eval", "--data", arg(&data), "--report", arg(&dir)]);
    let v = json(&r.stdout);
    let page = fs::read_to_string(dir.join("index.html")).unwrap();
    let dice = num(&v["summary"]["dice_all"]);
    assert_contains(
        &page,
        &[
            &format!("data-key=\"/summary/dice_all\" data-decimals=\"3\">{dice:.3}<"),
            "<svg",
            "worst/01-overlay.png",
            "worst/01-cam.png",
            "worst/01-truth.png",
        ],
    );
    assert_eq!(
        json(&fs::read_to_string(dir.join("report.json")).unwrap()),
        v
    );
    for i in 1..=3 {
        for kind in ["overlay", "cam", "truth"] {
            let p = dir.join(format!("worst/{i:02}-{kind}.png"));
            assert!(p.is_file(), "{}", p.display());
        }
    }
    // the presence confusion adds up to the frames
    let c = &v["presence_confusion"];
    let total: u64 = ["true_present", "missed", "false_present", "true_absent"]
        .iter()
        .map(|k| c[k].as_u64().unwrap())
        .sum();
    assert_eq!(total, 3, "{c}");

    let dir = tmp.join("bench");
    let r = success(&[
        "bench",
        "--iterations",
        "3",
        "--warmup",
        "1",
        "--json",
        "--report",
        arg(&dir),
    ]);
    let v = json(&r.stdout);
    let page = fs::read_to_string(dir.join("index.html")).unwrap();
    assert_contains(
        &page,
        &[
            "data-key=\"/stages/native/decoder_ms/p50\"",
            "Timeline",
            "<svg",
        ],
    );
    assert_eq!(
        json(&fs::read_to_string(dir.join("report.json")).unwrap()),
        v
    );
}

#[test]
fn a_report_folder_that_cannot_be_made_is_named() {
    let tmp = TempDir::new("report-bad");
    let data = image_folder(&tmp);
    let file = tmp.join("a-file");
    fs::write(&file, b"x").unwrap();
    let dir = file.join("report");
    assert_contains(
        &failure(&["eval", "--data", arg(&data), "--report", arg(&dir)]),
        &["cannot create the report folder", "a-file"],
    );
}
