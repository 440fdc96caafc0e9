// The board profile schema: types, parsing and validation of `board/*.toml`.
//
// This file (with `schema_parse.rs`, the reading helpers,
// `schema_sections.rs`, one method per table, and `schema_backend.rs`, the
// `[backend]` table, all included at its end) is
// compiled twice: by `build.rs` (`include!`), which checks the profile named
// by `SAMMIX_BOARD` and writes it out as Rust constants, and by the library
// (`sammix::board::schema`), which tests and tools use. So the two can never
// disagree about what a valid profile is. It may use only `std` and `toml`
// (with `parse`), no inner attributes and no `crate::` paths: in `build.rs`
// it lives in a plain module.

use std::borrow::Cow;
use std::fmt;

use toml::de::{DeTable, DeValue};
use toml::Spanned;

/// A board profile: what a deployment on one board needs to know.
///
/// Built from `board/NAME.toml` by [`Profile::parse`]; the profile chosen at
/// build time is a `static` of this type (`sammix::board::profile::PROFILE`).
/// Strings and lists are [`Cow`] so that the generated constant borrows
/// `'static` data and a parsed profile owns its own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Profile {
    /// `board.name`: the file's stem (`rpi5` for `board/rpi5.toml`).
    pub name: Cow<'static, str>,
    /// `board.description`: the board in words.
    pub description: Cow<'static, str>,
    /// `[cpu]`: what to build for and which kernel level runs.
    pub cpu: Cpu,
    /// `[threads]`: the cores each pipeline thread is pinned to.
    pub threads: Threads,
    /// `[capture]`: the capture card and the format asked of it.
    pub capture: Capture,
    /// `[gpio]`: the switch and LEDs; `None` on a board without GPIO.
    pub gpio: Option<Gpio>,
    /// `[watchdog]`: frame-stall detection and the hardware watchdog.
    pub watchdog: Watchdog,
    /// `bundle.path`: the model bundle folder on the device.
    pub bundle: Cow<'static, str>,
    /// `output.sinks`: where results go.
    pub sinks: Cow<'static, [Sink]>,
    /// `security.trusted_keys`: minisign public keys (the base64 line of a
    /// `.pub` file) whose bundle signatures this build accepts. Empty: any
    /// bundle runs, reported as unverified; otherwise only a bundle signed
    /// by one of them (see `docs/security.md`).
    pub trusted_keys: Cow<'static, [Cow<'static, str>]>,
    /// `[backend]`: where the image encoder runs (absent: the CPU).
    pub backend: Backend,
}

/// `[cpu]`: the compilation target and the kernel level.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cpu {
    /// `target_cpu`: rustc's `-C target-cpu` for release builds (`native` on the host).
    pub target_cpu: Cow<'static, str>,
    /// `target_features`: rustc's `-C target-feature` (`""` for none), e.g. `-aes,-sha2`.
    pub target_features: Cow<'static, str>,
    /// `level`: the highest kernel level the board's cores run.
    pub level: CpuLevel,
    /// `cores`: how many cores Linux numbers (`0..cores`).
    pub cores: u16,
}

/// Kernel levels, per instruction set, lowest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum CpuLevel {
    /// Decided at run time by feature detection (development PCs).
    Detect,
    /// Portable Rust only.
    Scalar,
    /// AArch64 Advanced SIMD (every ARMv8-A core).
    Neon,
    /// NEON with the dot-product instructions (`sdot`, ARMv8.2 `dotprod`).
    NeonDot,
    /// NEON with the int8 matrix multiply (`smmla`, ARMv8.6 `i8mm`).
    NeonI8mm,
    /// x86-64 AVX2 and FMA.
    Avx2Fma,
    /// x86-64 AVX-512 VNNI.
    Vnni,
}

impl CpuLevel {
    /// Every level with its name in profiles.
    pub const ALL: [(&'static str, CpuLevel); 7] = [
        ("detect", CpuLevel::Detect),
        ("scalar", CpuLevel::Scalar),
        ("neon", CpuLevel::Neon),
        ("neon-dot", CpuLevel::NeonDot),
        ("neon-i8mm", CpuLevel::NeonI8mm),
        ("avx2-fma", CpuLevel::Avx2Fma),
        ("vnni", CpuLevel::Vnni),
    ];

    /// The name used in profiles.
    pub fn as_str(self) -> &'static str {
        Self::ALL
            .iter()
            .find(|(_, l)| *l == self)
            .map_or("?", |(n, _)| n)
    }

    /// The level of a profile name.
    pub fn from_name(s: &str) -> Option<CpuLevel> {
        Self::ALL.iter().find(|(n, _)| *n == s).map(|(_, l)| *l)
    }

    /// The architecture the level belongs to (`None`: any).
    pub fn arch(self) -> Option<&'static str> {
        match self {
            CpuLevel::Detect | CpuLevel::Scalar => None,
            CpuLevel::Neon | CpuLevel::NeonDot | CpuLevel::NeonI8mm => Some("aarch64"),
            CpuLevel::Avx2Fma | CpuLevel::Vnni => Some("x86_64"),
        }
    }
}

/// The highest level an Arm core is known to run (Arm's technical reference
/// manuals: A53/A72 are ARMv8.0, A55/A76/A78/N1 ARMv8.2 with `dotprod`,
/// A710/N2 ARMv9 with `i8mm`). `None` for cores not in the table.
pub fn known_core_level(target_cpu: &str) -> Option<CpuLevel> {
    match target_cpu {
        "cortex-a53" | "cortex-a72" => Some(CpuLevel::Neon),
        "cortex-a55" | "cortex-a76" | "cortex-a76ae" | "cortex-a78" | "cortex-a78ae"
        | "cortex-a78c" | "neoverse-n1" => Some(CpuLevel::NeonDot),
        "cortex-a710" | "neoverse-n2" => Some(CpuLevel::NeonI8mm),
        _ => None,
    }
}

/// `[threads]`: Linux core numbers for each pipeline thread.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Threads {
    /// `capture`: the capture thread's cores.
    pub capture: Cow<'static, [u16]>,
    /// `inference`: the inference thread's (or threads') cores.
    pub inference: Cow<'static, [u16]>,
    /// `output`: the output thread's cores.
    pub output: Cow<'static, [u16]>,
}

/// `[capture]`: a V4L2 capture device and the format asked of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Capture {
    /// `device`: the device node (`/dev/sammix-capture` with the udev rule).
    pub device: Cow<'static, str>,
    /// `format`: the V4L2 FourCC (`YUYV`, `MJPG`, `NV12`…).
    pub format: [u8; 4],
    /// `width` in pixels.
    pub width: u32,
    /// `height` in pixels.
    pub height: u32,
    /// `fps`: frames per second.
    pub fps: u32,
}

impl Capture {
    /// The FourCC as text.
    pub fn format_str(&self) -> &str {
        std::str::from_utf8(&self.format).unwrap_or("????")
    }
}

/// `[gpio]`: one GPIO character device and the lines used on it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Gpio {
    /// `chip`: `/dev/gpiochipN`, or a chip label (`pinctrl-rp1`) looked up at start.
    pub chip: Cow<'static, str>,
    /// `[gpio.freeze]`: the freeze push button.
    pub freeze: InputLine,
    /// `[gpio.status_led]`: the status LED.
    pub status_led: OutputLine,
    /// `[gpio.fault_led]`: the fault LED.
    pub fault_led: OutputLine,
}

/// An input line (a switch).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InputLine {
    /// `line`: the offset on the chip.
    pub line: u32,
    /// `active`: the level read while the switch is pressed.
    pub active: Level,
    /// `debounce_ms`: how long a new level must hold before it counts.
    pub debounce_ms: u32,
}

/// An output line (an LED).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OutputLine {
    /// `line`: the offset on the chip.
    pub line: u32,
    /// `active`: the level that lights the LED.
    pub active: Level,
}

/// A logic level.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    /// Logic high.
    High,
    /// Logic low.
    Low,
}

impl Level {
    /// `high` or `low`.
    pub fn as_str(self) -> &'static str {
        match self {
            Level::High => "high",
            Level::Low => "low",
        }
    }
}

/// `[watchdog]`: frame-stall detection and the hardware watchdog it feeds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Watchdog {
    /// `device`: the hardware watchdog (`/dev/watchdog`); absent: none.
    pub device: Option<Cow<'static, str>>,
    /// `frame_timeout_ms`: no frame finished for this long is a fault.
    pub frame_timeout_ms: u32,
    /// `pet_interval_ms`: how often the device is petted while healthy.
    pub pet_interval_ms: u32,
}

/// One entry of `output.sinks` (`KIND:PATH`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sink {
    /// What is written.
    pub kind: SinkKind,
    /// Where (a file or a folder, by kind).
    pub path: Cow<'static, str>,
}

/// What a sink writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SinkKind {
    /// `jsonl:FILE`: one JSON object per frame.
    Jsonl,
    /// `masks:DIR`: one mask PNG per frame.
    Masks,
    /// `overlay-y4m:FILE`: the overlay video (a file or a FIFO to a player).
    OverlayY4m,
    /// `overlay-png:DIR`: one overlay PNG per frame.
    OverlayPng,
}

impl SinkKind {
    /// Every kind with its name in profiles.
    pub const ALL: [(&'static str, SinkKind); 4] = [
        ("jsonl", SinkKind::Jsonl),
        ("masks", SinkKind::Masks),
        ("overlay-y4m", SinkKind::OverlayY4m),
        ("overlay-png", SinkKind::OverlayPng),
    ];

    /// The name used in profiles.
    pub fn as_str(self) -> &'static str {
        Self::ALL
            .iter()
            .find(|(_, k)| *k == self)
            .map_or("?", |(n, _)| n)
    }
}

/// One problem in a profile: the file, the line, the dotted key and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProfileError {
    /// The profile file as given to [`Profile::parse`].
    pub file: String,
    /// 1-based line, when known.
    pub line: Option<usize>,
    /// The dotted key (`gpio.freeze.debounce_ms`); empty for a syntax error.
    pub key: String,
    /// What is wrong and what was expected.
    pub message: String,
}

impl fmt::Display for ProfileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file)?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
        }
        if self.key.is_empty() {
            write!(f, ": {}", self.message)
        } else {
            write!(f, ": `{}`: {}", self.key, self.message)
        }
    }
}

impl std::error::Error for ProfileError {}

/// Every problem found in one profile (never empty), in line order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProfileErrors(pub Vec<ProfileError>);

impl fmt::Display for ProfileErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ProfileErrors {}

impl Profile {
    /// Parses and validates a profile. `file` is its path, used in messages;
    /// its stem must be the profile's `board.name`.
    pub fn parse(file: &str, src: &str) -> Result<Profile, ProfileErrors> {
        let mut p = Parser {
            file,
            src,
            errors: Vec::new(),
        };
        let root = match DeTable::parse(src) {
            Ok(t) => t,
            Err(e) => {
                let line = e.span().map(|s| p.line(s.start));
                return Err(ProfileErrors(vec![ProfileError {
                    file: file.to_string(),
                    line,
                    key: String::new(),
                    message: format!("TOML syntax: {}", e.message().trim()),
                }]));
            }
        };
        let profile = p.profile(root.get_ref());
        match profile {
            Some(profile) if p.errors.is_empty() => Ok(profile),
            _ => {
                if p.errors.is_empty() {
                    p.err(0, "", "invalid profile".to_string());
                }
                p.errors.sort_by_key(|e| e.line);
                Err(ProfileErrors(p.errors))
            }
        }
    }
}

impl Profile {
    /// This profile as a Rust expression of type `Profile` that borrows only
    /// `'static` data (`build.rs` writes it into `$OUT_DIR/board.rs`). Names
    /// are unqualified: the including module imports the schema types.
    pub fn to_rust(&self) -> String {
        fn s(v: &str) -> String {
            format!("Cow::Borrowed({v:?})")
        }
        fn list(v: &[u16]) -> String {
            let items: Vec<String> = v.iter().map(|n| format!("{n}u16")).collect();
            format!("Cow::Borrowed(&[{}])", items.join(", "))
        }
        fn lvl(l: Level) -> String {
            format!("Level::{l:?}")
        }
        let c = &self.cpu;
        let t = &self.threads;
        let cap = &self.capture;
        let gpio = match &self.gpio {
            None => "None".to_string(),
            Some(g) => format!(
                "Some(Gpio {{ chip: {}, freeze: InputLine {{ line: {}, active: {}, debounce_ms: {} }}, \
                 status_led: OutputLine {{ line: {}, active: {} }}, \
                 fault_led: OutputLine {{ line: {}, active: {} }} }})",
                s(&g.chip),
                g.freeze.line,
                lvl(g.freeze.active),
                g.freeze.debounce_ms,
                g.status_led.line,
                lvl(g.status_led.active),
                g.fault_led.line,
                lvl(g.fault_led.active),
            ),
        };
        let w = &self.watchdog;
        let device = w
            .device
            .as_deref()
            .map_or("None".to_string(), |d| format!("Some({})", s(d)));
        let sinks: Vec<String> = self
            .sinks
            .iter()
            .map(|k| {
                format!(
                    "Sink {{ kind: SinkKind::{:?}, path: {} }}",
                    k.kind,
                    s(&k.path)
                )
            })
            .collect();
        let keys: Vec<String> = self.trusted_keys.iter().map(|k| s(k)).collect();
        let b = &self.backend;
        format!(
            "Profile {{\n    name: {},\n    description: {},\n    \
             cpu: Cpu {{ target_cpu: {}, target_features: {}, level: CpuLevel::{:?}, cores: {} }},\n    \
             threads: Threads {{ capture: {}, inference: {}, output: {} }},\n    \
             capture: Capture {{ device: {}, format: {:?}, width: {}, height: {}, fps: {} }},\n    \
             gpio: {gpio},\n    \
             watchdog: Watchdog {{ device: {device}, frame_timeout_ms: {}, pet_interval_ms: {} }},\n    \
             bundle: {},\n    sinks: Cow::Borrowed(&[{}]),\n    trusted_keys: Cow::Borrowed(&[{}]),\n    \
             backend: Backend {{ encoder: BackendChoice::{:?}, required: {} }},\n}}",
            s(&self.name),
            s(&self.description),
            s(&c.target_cpu),
            s(&c.target_features),
            c.level,
            c.cores,
            list(&t.capture),
            list(&t.inference),
            list(&t.output),
            s(&cap.device),
            cap.format,
            cap.width,
            cap.height,
            cap.fps,
            w.frame_timeout_ms,
            w.pet_interval_ms,
            s(&self.bundle),
            sinks.join(", "),
            keys.join(", "),
            b.encoder,
            b.required,
        )
    }
}

include!("schema_parse.rs");
include!("schema_sections.rs");
include!("schema_backend.rs");
