//! The command line: argument types and dispatch.

/// `println!` that ends the process quietly when stdout is closed (`sammix
/// info | head`) instead of panicking on the broken pipe.
macro_rules! outln {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        if let Err(e) = writeln!(std::io::stdout().lock(), $($arg)*) {
            if e.kind() == std::io::ErrorKind::BrokenPipe {
                std::process::exit(0);
            }
        }
    }};
}

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand, ValueEnum};
use sammix::backend::BackendChoice;
use sammix::pipeline::DecoderKind;

mod bench;
mod board;
mod bundle;
mod common;
mod eval;
mod info;
mod kpi;
mod report;
mod run;
mod segment;

/// Segment ultrasound or endoscope frames with SAM-Mix on the CPU.
///
/// With no command, `sammix` runs the bundled model on the bundled demo clip
/// (`sammix run`).
#[derive(Debug, Parser)]
#[command(name = "sammix", version, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    /// More log output (-v: info, -vv: debug); RUST_LOG overrides.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    verbose: u8,
}

impl Cli {
    /// The default log filter for the verbosity asked for.
    pub fn log_level(&self) -> &'static str {
        match self.verbose {
            0 => "warn",
            1 => "info",
            _ => "debug",
        }
    }
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Stream a source through the model: per-frame lines and a summary.
    Run(RunArgs),
    /// Segment one image into a mask PNG.
    Segment(SegmentArgs),
    /// Score a folder of images against their masks (JSON summary).
    Eval(EvalArgs),
    /// Check a bundle and describe it: manifest, graphs, files.
    Info(InfoArgs),
    /// Time each stage of a bundle on the demo clip (or another source),
    /// with the native and the tract decoder on the same frames.
    Bench(BenchArgs),
    /// Sign a bundle, verify its signature, or make a signing key
    /// (minisign's format: Ed25519 over the manifest, which pins every
    /// file's sha256).
    #[command(subcommand)]
    Bundle(BundleCommand),
    /// Summarize the clinician's loop per study (a `sammix run --out`
    /// folder, or its corrections.jsonl): frames flagged, corrected and
    /// accepted, clicks, time to accept.
    Kpi(KpiArgs),
}

#[derive(Debug, Clone, Args)]
struct KpiArgs {
    /// One study each: a `sammix run --out` folder (its corrections.jsonl,
    /// and results.jsonl for the frame counts) or a corrections.jsonl.
    #[arg(required = true, value_name = "LOG")]
    logs: Vec<PathBuf>,
    /// Print as JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Subcommand)]
enum BundleCommand {
    /// Check a bundle, then sign its manifest into sammix.toml.minisig.
    Sign(SignArgs),
    /// Check a bundle's signature against the trusted keys (the board
    /// profile's and --trusted-key); exit 1 if it is not verified.
    Verify(VerifyArgs),
    /// Make a key pair: PREFIX.key (secret, mode 0600) and PREFIX.pub.
    Keygen(KeygenArgs),
}

/// The environment variable holding a secret key's password (else it is
/// asked for on the terminal).
const PASSWORD_ENV: &str = "SAMMIX_SIGNING_PASSWORD";

#[derive(Debug, Clone, Args)]
struct SignArgs {
    /// The bundle folder to sign.
    #[arg(long, value_name = "DIR")]
    bundle: PathBuf,
    /// The minisign secret key file (from `sammix bundle keygen` or
    /// `minisign -G`); an encrypted key's password comes from
    /// $SAMMIX_SIGNING_PASSWORD, else the terminal.
    #[arg(long, value_name = "KEY")]
    secret_key: PathBuf,
    /// The signed (trusted) comment, one line (default:
    /// `timestamp:SECONDS<TAB>file:sammix.toml<TAB>bundle:NAME`).
    #[arg(long, value_name = "TEXT")]
    comment: Option<String>,
}

#[derive(Debug, Clone, Args)]
struct VerifyArgs {
    #[command(flatten)]
    bundle: BundleArg,
    /// Print as JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Clone, Args)]
struct KeygenArgs {
    /// Where to write: PREFIX.key and PREFIX.pub (neither may exist).
    #[arg(value_name = "PREFIX")]
    prefix: PathBuf,
    /// Leave the secret key without a password (for CI and tests; keep such
    /// a key off shared disks). Default: encrypted with
    /// $SAMMIX_SIGNING_PASSWORD, else a password asked for on the terminal.
    #[arg(long)]
    no_password: bool,
}

/// Which bundle to use.
#[derive(Debug, Clone, Args)]
struct BundleArg {
    /// Bundle folder (default: $SAMMIX_BUNDLE, else the bundled
    /// models/sammix-us-tiny).
    #[arg(long, value_name = "DIR")]
    bundle: Option<PathBuf>,
    /// Also trust bundles signed by this minisign public key (a `.pub`
    /// file; repeatable), besides the board profile's
    /// `security.trusted_keys`. With any trusted key, only a bundle signed
    /// by one of them opens.
    #[arg(long = "trusted-key", value_name = "PUB")]
    trusted_keys: Vec<PathBuf>,
}

/// Which engine runs the mask decoder.
#[derive(Debug, Clone, Args)]
struct DecoderArg {
    /// Mask decoder: native (SAM's prompt encoder and mask decoder in Rust
    /// on this CPU's SIMD kernels; weights from decoder.onnx) or tract
    /// (tract's plan of decoder.onnx). Their masks differ only by boundary
    /// pixels where int8 rounding differs (IoU ≥ 0.98 on the bundle's
    /// frames); native is faster and its stage allocates nothing per frame.
    #[arg(long, value_enum, default_value = "native")]
    decoder: DecoderChoice,
}

/// `--decoder` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum DecoderChoice {
    /// The native decoder (sammix::decoder).
    Native,
    /// tract's plan of decoder.onnx.
    Tract,
}

impl From<DecoderChoice> for DecoderKind {
    fn from(c: DecoderChoice) -> DecoderKind {
        match c {
            DecoderChoice::Native => DecoderKind::Native,
            DecoderChoice::Tract => DecoderKind::Tract,
        }
    }
}

/// Where the image encoder runs.
#[derive(Debug, Clone, Default, Args)]
struct BackendArg {
    /// Image encoder backend: cpu (tract), gpu, or auto (the GPU when it
    /// starts, else the CPU). Default: the board profile's
    /// `backend.encoder` (cpu without a [backend] table). A backend that
    /// cannot start, or is lost mid-stream, leaves the encoder to the CPU
    /// with one log line, unless required. The GPU backend (Vulkan) is in
    /// builds with `--features gpu` and runs convolutional encoders.
    #[arg(long, value_enum, value_name = "BACKEND")]
    backend: Option<BackendOption>,
    /// With gpu: fail before the first frame if the backend cannot start,
    /// and stop the stream if it is lost, instead of falling back to the
    /// CPU (as the board profile's `backend.required = true`).
    #[arg(long)]
    backend_required: bool,
}

/// `--backend` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum BackendOption {
    /// tract on the CPU.
    Cpu,
    /// The GPU (not built into this binary yet).
    Gpu,
    /// The GPU when it starts, else the CPU.
    Auto,
}

impl From<BackendOption> for BackendChoice {
    fn from(c: BackendOption) -> BackendChoice {
        match c {
            BackendOption::Cpu => BackendChoice::Cpu,
            BackendOption::Gpu => BackendChoice::Gpu,
            BackendOption::Auto => BackendChoice::Auto,
        }
    }
}

/// On, off, or decided by the source.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Toggle {
    /// Decided by the source.
    Auto,
    /// On.
    On,
    /// Off.
    Off,
}

/// Overlay output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum OverlayFormat {
    /// One Y4M video (4:4:4, full range), `overlay.y4m`.
    Y4m,
    /// One PNG per frame under `overlay/`.
    Png,
    /// No overlay.
    None,
}

#[derive(Debug, Clone, Args)]
struct RunArgs {
    #[command(flatten)]
    bundle: BundleArg,
    #[command(flatten)]
    decoder: DecoderArg,
    #[command(flatten)]
    backend: BackendArg,
    /// Frame source: file:CLIP.y4m, images:DIR or synthetic[:SEED]
    /// (default: the bundle's demo clip, with its ground-truth masks).
    #[arg(long, value_name = "SPEC")]
    source: Option<String>,
    /// Play the source at its frame rate and always process the newest
    /// frame, dropping the ones inference has no time for (as with a live
    /// capture card). Default for files and folders: every frame, as fast
    /// as possible.
    #[arg(long)]
    realtime: bool,
    /// Frame-to-frame smoothing (presence hysteresis, box smoothing):
    /// auto turns it on for live sources (--realtime, synthetic) and off
    /// for offline runs, whose Dice it would change.
    #[arg(long, value_enum, default_value = "auto")]
    stability: Toggle,
    /// Presence hysteresis when stability is on.
    #[arg(long, default_value_t = 0.1, value_name = "P")]
    hysteresis: f32,
    /// Box smoothing weight (of the previous box) when stability is on; 0
    /// by default: on the demo clip 0.5 cost 7 points of Dice.
    #[arg(long, default_value_t = 0.0, value_name = "W")]
    box_smoothing: f32,
    /// Skip the encoder while the frame stays within this mean absolute
    /// difference (normalized input units) of the last encoded one: a probe
    /// held still. Off by default.
    #[arg(long, value_name = "DIFF")]
    reuse_embedding: Option<f32>,
    /// Follow this file for a clinician's corrections of the frame on
    /// display, one JSON object a line: {"frame": N, "points": ["X,Y,+",
    /// "X,Y,-"]} (only the decoder runs again) or {"frame": N, "accept":
    /// true}. Each request served is logged to OUT/corrections.jsonl (with
    /// --out); `sammix kpi` summarizes the logs. Pause the stream while
    /// clicking: only the last processed frame can be corrected.
    #[arg(long, value_name = "FILE")]
    corrections: Option<PathBuf>,
    /// Run the encoder beside the classifier on a second core while the
    /// target stays in view (same masks; a segmented frame costs
    /// max(classifier, encoder) + decoder): auto when this process may use
    /// two or more cores. Ignored when the bundle's classifier reads the
    /// image embeddings (the encoder runs first there).
    #[arg(long, value_enum, default_value_t = Toggle::Auto, value_name = "WHEN")]
    overlap: Toggle,
    /// Ground-truth masks (PNG, named like the frames: NNNNNN.png for a
    /// clip); Dice is reported when given or when the source has them.
    #[arg(long, value_name = "DIR")]
    truth: Option<PathBuf>,
    /// Board controls (freeze switch, status and fault LEDs, frame
    /// watchdog): auto runs them when the compiled-in board profile has GPIO
    /// lines or a watchdog device, --watchdog is given, or systemd watches
    /// the service (`WatchdogSec=`: `WATCHDOG=1` is sent to `$NOTIFY_SOCKET`
    /// with each pet of the hardware watchdog).
    #[arg(long, value_enum, default_value_t = Toggle::Auto, value_name = "WHEN")]
    controls: Toggle,
    /// Hardware watchdog device to pet while frames keep finishing (default:
    /// the board profile's `watchdog.device`). Opening it arms it; a clean
    /// end disarms it.
    #[arg(long, value_name = "DEVICE")]
    watchdog: Option<PathBuf>,
    /// Pin the capture, inference and output threads to the board profile's
    /// `[threads]` cores: auto pins on a board build, not on the host profile.
    #[arg(long, value_enum, default_value_t = Toggle::Auto, value_name = "WHEN")]
    pin_threads: Toggle,
    /// Write results.jsonl, masks/ and the overlay here.
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    /// Overlay format under --out.
    #[arg(long, value_enum, default_value = "y4m")]
    overlay: OverlayFormat,
    /// Stop after this many frames.
    #[arg(long, value_name = "N")]
    frames: Option<u64>,
    /// No per-frame lines, only the summary.
    #[arg(short, long)]
    quiet: bool,
    /// Print the summary as JSON (per-frame lines are not printed).
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Clone, Args)]
struct SegmentArgs {
    #[command(flatten)]
    bundle: BundleArg,
    #[command(flatten)]
    decoder: DecoderArg,
    /// The image (PNG, grayscale or colour, any size).
    image: PathBuf,
    /// Mask PNG to write (0 background, 255 target; default: IMAGE's name
    /// with `.mask.png`, in the current folder).
    #[arg(long, short, value_name = "PNG")]
    out: Option<PathBuf>,
    /// Also write the overlay as a PNG here.
    #[arg(long, value_name = "PNG")]
    overlay: Option<PathBuf>,
    /// A correction click in image pixels: `X,Y,+` on the target, `X,Y,-`
    /// on background (repeatable). The clicks go on top of the CAM's prompt
    /// and only the mask decoder runs again (native decoder).
    #[arg(long = "point", value_name = "X,Y,+|-", value_parser = parse_click)]
    points: Vec<sammix::pipeline::Click>,
    /// Print the result as JSON.
    #[arg(long)]
    json: bool,
}

/// `X,Y,+` or `X,Y,-` → a click.
fn parse_click(s: &str) -> Result<sammix::pipeline::Click, String> {
    s.parse()
        .map_err(|e: sammix::pipeline::ClickSyntaxError| e.to_string())
}

#[derive(Debug, Clone, Args)]
struct EvalArgs {
    #[command(flatten)]
    bundle: BundleArg,
    #[command(flatten)]
    decoder: DecoderArg,
    #[command(flatten)]
    backend: BackendArg,
    /// Folder with images/*.png and masks/*.png of the same names.
    #[arg(long, value_name = "DIR")]
    data: PathBuf,
    /// Also write the JSON summary to this file.
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
    /// After each image, simulate up to N correction clicks (the largest
    /// wrong region's centre: positive on a missed one, negative on a false
    /// one) and report Dice after each, on all images and on the 20 worst.
    #[arg(long, value_name = "N", default_value_t = 0)]
    clicks: u32,
    /// Also write an HTML page to DIR (index.html: Dice histogram, Dice
    /// against lesion size, presence confusion, the 20 worst frames with
    /// their overlay, CAM and ground truth).
    #[arg(long, value_name = "DIR")]
    report: Option<PathBuf>,
}

#[derive(Debug, Clone, Args)]
struct InfoArgs {
    #[command(flatten)]
    bundle: BundleArg,
    /// Print the board profile compiled into this binary (SAMMIX_BOARD at
    /// build time) instead of the bundle.
    #[arg(long)]
    board: bool,
    /// Print as JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Clone, Args)]
struct BenchArgs {
    #[command(flatten)]
    bundle: BundleArg,
    /// Frame source (default: the bundle's demo clip).
    #[arg(long, value_name = "SPEC")]
    source: Option<String>,
    /// Timed frames (the source is read once and cycled); each runs twice,
    /// once per decoder.
    #[arg(long, default_value_t = 200)]
    iterations: usize,
    /// Untimed frames first.
    #[arg(long, default_value_t = 10)]
    warmup: usize,
    /// Print as JSON.
    #[arg(long)]
    json: bool,
    /// Also write an HTML page to DIR (index.html: a latency histogram per
    /// stage, both decoders, and the frame timeline).
    #[arg(long, value_name = "DIR")]
    report: Option<PathBuf>,
}

/// Runs the command; the exit code for a clean finish.
pub fn main(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        None => run::run(RunArgs {
            bundle: BundleArg {
                bundle: None,
                trusted_keys: Vec::new(),
            },
            decoder: DecoderArg {
                decoder: DecoderChoice::Native,
            },
            backend: BackendArg::default(),
            source: None,
            realtime: false,
            stability: Toggle::Auto,
            hysteresis: 0.1,
            box_smoothing: 0.0,
            reuse_embedding: None,
            corrections: None,
            overlap: Toggle::Auto,
            truth: None,
            controls: Toggle::Auto,
            watchdog: None,
            pin_threads: Toggle::Auto,
            out: None,
            overlay: OverlayFormat::Y4m,
            frames: None,
            quiet: false,
            json: false,
        }),
        Some(Command::Run(a)) => run::run(a),
        Some(Command::Segment(a)) => segment::segment(a),
        Some(Command::Eval(a)) => eval::eval(a),
        Some(Command::Info(a)) => info::info(a),
        Some(Command::Bench(a)) => bench::bench(a),
        Some(Command::Bundle(BundleCommand::Sign(a))) => bundle::sign(a),
        Some(Command::Bundle(BundleCommand::Verify(a))) => bundle::verify(a),
        Some(Command::Bundle(BundleCommand::Keygen(a))) => bundle::keygen(a),
        Some(Command::Kpi(a)) => kpi::kpi(a),
    }
}
