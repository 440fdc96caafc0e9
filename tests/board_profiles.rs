//! Board profiles: every shipped `board/*.toml` is valid; a broken one is
//! rejected with its file, line and key, both by the schema (the code
//! `build.rs` includes) and by the build script itself.

use std::path::{Path, PathBuf};
use std::process::Command;

use sammix::board::profile;
use sammix::board::schema::{Backend, BackendChoice, CpuLevel, Level, Profile, SinkKind};

const MANIFEST_DIR: &str = env!("CARGO_MANIFEST_DIR");
const SHIPPED: [&str; 5] = ["host", "imx8mp", "jetson-orin-nano", "rk3588", "rpi5"];

fn board_dir() -> PathBuf {
    Path::new(MANIFEST_DIR).join("board")
}

fn read(name: &str) -> String {
    std::fs::read_to_string(board_dir().join(format!("{name}.toml"))).unwrap()
}

fn parse(name: &str) -> Profile {
    let file = format!("board/{name}.toml");
    Profile::parse(&file, &read(name)).unwrap_or_else(|e| panic!("{e}"))
}

/// A fresh folder under the system temp dir.
fn temp_dir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("sammix-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

#[test]
fn every_shipped_profile_parses_and_validates() {
    let mut names: Vec<String> = std::fs::read_dir(board_dir())
        .unwrap()
        .filter_map(|e| {
            let p = e.unwrap().path();
            (p.extension()? == "toml").then(|| p.file_stem().unwrap().to_str().unwrap().to_string())
        })
        .collect();
    names.sort();
    assert_eq!(names, SHIPPED);
    for name in SHIPPED {
        let p = parse(name);
        assert_eq!(p.name, name);
        for cores in [&p.threads.capture, &p.threads.inference, &p.threads.output] {
            assert!(cores.iter().all(|&c| c < p.cpu.cores), "{name}");
        }
    }
}

#[test]
fn shipped_profiles_say_what_the_issue_asks() {
    let host = parse("host");
    assert!(host.gpio.is_none() && host.watchdog.device.is_none());
    assert_eq!(host.cpu.level, CpuLevel::Detect);

    let rpi5 = parse("rpi5");
    assert_eq!(
        (rpi5.cpu.target_cpu.as_ref(), rpi5.cpu.level),
        ("cortex-a76", CpuLevel::NeonDot)
    );
    assert_eq!(rpi5.gpio.as_ref().unwrap().chip, "pinctrl-rp1");

    // RK3588: inference on the A76 cores, cpu4-7.
    let rk = parse("rk3588");
    assert_eq!(rk.threads.inference.as_ref(), [4, 5, 6, 7]);
    assert!(rk.threads.capture.iter().all(|&c| c < 4));

    // i.MX 8M Plus: Cortex-A53, no dot product: the NEON level runs.
    let imx = parse("imx8mp");
    assert_eq!(
        (imx.cpu.target_cpu.as_ref(), imx.cpu.level),
        ("cortex-a53", CpuLevel::Neon)
    );

    let orin = parse("jetson-orin-nano");
    assert_eq!(
        (orin.cpu.target_cpu.as_ref(), orin.cpu.cores),
        ("cortex-a78ae", 6)
    );

    for name in ["rpi5", "rk3588", "imx8mp", "jetson-orin-nano"] {
        let p = parse(name);
        let g = p.gpio.as_ref().unwrap();
        assert_eq!(g.freeze.active, Level::Low, "{name}: button to ground");
        assert_eq!(
            p.watchdog.device.as_deref(),
            Some("/dev/watchdog"),
            "{name}"
        );
        assert_eq!(
            p.capture.device, "/dev/sammix-capture",
            "{name}: the udev rule's name"
        );
        assert_eq!(p.bundle, "/opt/sammix/models/sammix-us-tiny", "{name}");
        assert_eq!(p.sinks[0].kind, SinkKind::Jsonl, "{name}");
    }
}

#[test]
fn the_compiled_profile_is_the_file_it_came_from() {
    let current = profile::current();
    let path = Path::new(MANIFEST_DIR).join(profile::SOURCE);
    let src = std::fs::read_to_string(&path).unwrap();
    assert_eq!(*current, Profile::parse(profile::SOURCE, &src).unwrap());
    let json = current.to_json();
    for key in [
        "board", "cpu", "threads", "capture", "gpio", "watchdog", "bundle", "output",
    ] {
        assert!(json.get(key).is_some(), "{key} missing from {json}");
    }
    assert_eq!(json["board"]["name"], current.name.as_ref());
    assert!(current
        .to_string()
        .starts_with(&format!("board {}:", current.name)));
}

/// rpi5's file with `from` replaced by `to` (which must be there).
fn edit(from: &str, to: &str) -> String {
    let src = read("rpi5");
    assert!(src.contains(from), "{from:?} not in rpi5.toml");
    src.replacen(from, to, 1)
}

/// The 1-based line of the first line of `src` that starts with `text`.
fn line_of(src: &str, text: &str) -> usize {
    1 + src
        .lines()
        .position(|l| l.trim_start().starts_with(text))
        .unwrap()
}

/// Parses `src` as board/rpi5.toml and checks that it fails with a message
/// that names the file, the line of `at` and `key`, and contains `what`.
fn rejects(src: &str, key: &str, at: &str, what: &str) {
    let errors = Profile::parse("board/rpi5.toml", src).unwrap_err();
    let line = line_of(src, at);
    let want = format!("board/rpi5.toml:{line}: `{key}`");
    let all = errors.to_string();
    let hit = errors.0.iter().find(|e| e.key == key);
    let hit = hit.unwrap_or_else(|| panic!("no error for {key}: {all}"));
    assert_eq!(hit.line, Some(line), "{all}");
    let msg = hit.to_string();
    assert!(msg.starts_with(&want), "{msg:?} should start with {want:?}");
    assert!(msg.contains(what), "{msg:?} should say {what:?}");
}

#[test]
fn unknown_keys_are_rejected() {
    let src = edit("debounce_ms = 30", "debounce_ms = 30\nbounce_ms = 5");
    rejects(&src, "gpio.freeze.bounce_ms", "bounce_ms", "unknown key");
    let src = format!("{}\n[extra]\nx = 1\n", read("rpi5"));
    rejects(
        &src,
        "extra",
        "[extra]",
        "unknown key (expected one of: board, cpu",
    );
}

#[test]
fn missing_fields_are_rejected_at_their_table() {
    let src = edit("fps = 30\n", "");
    rejects(
        &src,
        "capture.fps",
        "[capture]",
        "missing (required in [capture])",
    );
    let src = edit("line = 27\n", "");
    rejects(&src, "gpio.status_led.line", "[gpio.status_led]", "missing");
    let src = edit(
        "[bundle]\npath = \"/opt/sammix/models/sammix-us-tiny\"\n",
        "",
    );
    rejects(&src, "bundle", "# ", "missing (required in the file)");
}

#[test]
fn bad_values_are_rejected() {
    // (text in rpi5.toml, its replacement, key, start of the line the error
    // is on, what the message says)
    let cases = [
        (
            "cores = 4",
            "cores = \"4\"",
            "cpu.cores",
            "cores",
            "expected an integer",
        ),
        (
            "fps = 30",
            "fps = 0",
            "capture.fps",
            "fps",
            "0 is out of range 1..=240",
        ),
        (
            "width = 1920",
            "width = 1921",
            "capture.width",
            "width",
            "odd",
        ),
        (
            "format = \"YUYV\"",
            "format = \"YUY\"",
            "capture.format",
            "format",
            "FourCC",
        ),
        (
            "device = \"/dev/sammix-capture\"",
            "device = \"video0\"",
            "capture.device",
            "device = \"video0\"",
            "under /dev/",
        ),
        (
            "level = \"neon-dot\"",
            "level = \"neon-dotprod\"",
            "cpu.level",
            "level",
            "unknown level",
        ),
        (
            "level = \"neon-dot\"",
            "level = \"neon-i8mm\"",
            "cpu.level",
            "level",
            "at most \"neon-dot\"",
        ),
        (
            "level = \"neon-dot\"",
            "level = \"avx2-fma\"",
            "cpu.level",
            "level",
            "cortex-a76 runs at most",
        ),
        (
            "target_features = \"\"",
            "target_features = \"aes\"",
            "cpu.target_features",
            "target_features",
            "+feat",
        ),
        (
            "target_features = \"\"",
            "target_features = \"-dotprod\"",
            "cpu.level",
            "level",
            "needs dotprod",
        ),
        (
            "inference = [1, 2, 3]",
            "inference = [1, 2, 4]",
            "threads.inference",
            "inference",
            "4 is out of range 0..=3",
        ),
        (
            "inference = [1, 2, 3]",
            "inference = [1, 1]",
            "threads.inference",
            "inference",
            "core 1 listed twice",
        ),
        (
            "inference = [1, 2, 3]",
            "inference = []",
            "threads.inference",
            "inference",
            "at least one core",
        ),
        (
            "active = \"low\"",
            "active = \"lo\"",
            "gpio.freeze.active",
            "active = \"lo\"",
            "\"high\" or \"low\"",
        ),
        (
            "debounce_ms = 30",
            "debounce_ms = 0",
            "gpio.freeze.debounce_ms",
            "debounce_ms",
            "out of range",
        ),
        (
            "line = 27",
            "line = 17 # dup",
            "gpio.status_led.line",
            "line = 17 # dup",
            "already used by gpio.freeze",
        ),
        (
            "chip = \"pinctrl-rp1\"",
            "chip = \"pinctrl rp1\"",
            "gpio.chip",
            "chip",
            "no spaces",
        ),
        (
            "device = \"/dev/watchdog\"",
            "device = \"watchdog\"",
            "watchdog.device",
            "device = \"watchdog\"",
            "under /dev/",
        ),
        (
            "pet_interval_ms = 1000",
            "pet_interval_ms = 60000",
            "watchdog.pet_interval_ms",
            "pet_interval_ms",
            "out of range",
        ),
        (
            // Found by fuzzing: a feature starting with a multi-byte
            // character panicked the parser (and so the build script).
            "target_features = \"\"",
            "target_features = \"\u{48c}ha2\"",
            "cpu.target_features",
            "target_features",
            "+feat,-feat",
        ),
        (
            "jsonl:/run",
            "csv:/run",
            "output.sinks",
            "sinks",
            "KIND:PATH",
        ),
        (
            "sinks = [",
            "sinks = [\"masks:/x\", \"masks:/x\", ",
            "output.sinks",
            "sinks",
            "listed twice",
        ),
        (
            "description = \"Rasp",
            "description = \"  \" # \"",
            "board.description",
            "description",
            "empty",
        ),
    ];
    for (from, to, key, at, what) in cases {
        rejects(&edit(from, to), key, at, what);
    }
}

#[test]
fn the_name_must_be_the_file_stem() {
    let err = Profile::parse("board/rpi4.toml", &read("rpi5")).unwrap_err();
    let msg = err.to_string();
    assert!(msg.starts_with("board/rpi4.toml:"), "{msg}");
    assert!(
        msg.contains("`board.name`: \"rpi5\" differs from the file name (rpi4.toml)"),
        "{msg}"
    );
}

#[test]
fn toml_syntax_errors_name_the_line() {
    let src = edit("fps = 30", "fps = ");
    let err = Profile::parse("board/rpi5.toml", &src).unwrap_err();
    let e = &err.0[0];
    assert_eq!((e.line, e.key.as_str()), (Some(line_of(&src, "fps")), ""));
    assert!(e.to_string().contains("TOML syntax"), "{e}");
}

#[test]
fn every_problem_is_reported_in_line_order() {
    let src = edit("fps = 30", "fps = 0").replace("cores = 4", "cores = 0");
    let err = Profile::parse("board/rpi5.toml", &src).unwrap_err();
    let keys: Vec<&str> = err.0.iter().map(|e| e.key.as_str()).collect();
    assert_eq!(keys, ["cpu.cores", "capture.fps"], "{err}");
    let lines: Vec<_> = err.0.iter().map(|e| e.line.unwrap()).collect();
    assert!(lines.windows(2).all(|w| w[0] <= w[1]));
}

/// `[security] trusted_keys`: minisign public keys, checked for their form
/// at build time (the library parses them: `tests/bundle_signatures.rs`).
#[test]
fn trusted_keys_are_minisign_keys_listed_once() {
    let key = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/signing/trusted.pub"),
    )
    .unwrap();
    let key = key.lines().nth(1).unwrap().trim().to_string();
    let with = |keys: &str| format!("{}\n[security]\ntrusted_keys = {keys}\n", read("rpi5"));
    let p = Profile::parse("board/rpi5.toml", &with(&format!("[\"{key}\"]"))).unwrap();
    assert_eq!(p.trusted_keys.len(), 1);
    assert_eq!(p.trusted_keys[0], key);
    assert!(p.to_rust().contains(&format!(
        "trusted_keys: Cow::Borrowed(&[Cow::Borrowed({key:?})])"
    )));
    assert!(p
        .to_string()
        .contains("trusted keys: 1 (only bundles signed by one of them run)"));
    assert!(parse("rpi5").to_string().contains("trusted keys: none"));
    let cases = [
        ("\"RWQ\"".to_string(), "minisign Ed25519 public key"),
        (
            format!("\"{}\"", key.replace("RW", "XX")),
            "starting with RW",
        ),
        (format!("\"{}!\"", &key[..55]), "56 base64 characters"),
        (format!("\"{key}\", \"{key}\""), "listed twice"),
    ];
    for (keys, what) in cases {
        rejects(
            &with(&format!("[{keys}]")),
            "security.trusted_keys",
            "trusted_keys",
            what,
        );
    }
    rejects(
        &with("\"RW\""),
        "security.trusted_keys",
        "trusted_keys",
        "expected an array",
    );
}

#[test]
fn the_backend_table_is_optional_and_checked() {
    // Absent: the encoder on the CPU. Every shipped profile says so.
    for name in SHIPPED {
        assert_eq!(parse(name).backend, Backend::DEFAULT, "{name}");
    }
    let with = |table: &str| format!("{}\n[backend]\n{table}\n", read("rpi5"));
    let p = Profile::parse(
        "board/rpi5.toml",
        &with("encoder = \"gpu\"\nrequired = true"),
    )
    .unwrap();
    assert_eq!(
        p.backend,
        Backend {
            encoder: BackendChoice::Gpu,
            required: true
        }
    );
    assert!(p
        .to_rust()
        .contains("backend: Backend { encoder: BackendChoice::Gpu, required: true }"));
    assert_eq!(p.to_json()["backend"]["encoder"], "gpu");
    assert!(p
        .to_string()
        .contains("backend: encoder on gpu (required: no CPU fallback)"));
    let p = Profile::parse("board/rpi5.toml", &with("encoder = \"auto\"")).unwrap();
    assert_eq!(p.backend.encoder, BackendChoice::Auto);
    assert!(!p.backend.required);

    rejects(
        &with("encoder = \"npu\""),
        "backend.encoder",
        "encoder",
        "unknown backend \"npu\" (expected one of: cpu, gpu, auto)",
    );
    rejects(
        &with("required = false"),
        "backend.encoder",
        "[backend]",
        "missing",
    );
    rejects(
        &with("encoder = \"gpu\"\nrequired = \"yes\""),
        "backend.required",
        "required",
        "expected true or false, found string",
    );
    rejects(
        &with("encoder = \"auto\"\nrequired = true"),
        "backend.required",
        "required",
        "needs encoder = \"gpu\" (\"auto\" falls back to the CPU by definition)",
    );
    rejects(
        &with("encoder = \"gpu\"\ngpu_index = 0"),
        "backend.gpu_index",
        "gpu_index",
        "unknown key (expected one of: encoder, required)",
    );
}

#[test]
fn generated_code_borrows_static_data() {
    let rust = parse("rpi5").to_rust();
    assert!(rust.starts_with("Profile {"), "{rust}");
    for piece in [
        "name: Cow::Borrowed(\"rpi5\")",
        "level: CpuLevel::NeonDot",
        "inference: Cow::Borrowed(&[1u16, 2u16, 3u16])",
        "format: [89, 85, 89, 86]",
        "freeze: InputLine { line: 17, active: Level::Low, debounce_ms: 30 }",
        "device: Some(Cow::Borrowed(\"/dev/watchdog\"))",
        "Sink { kind: SinkKind::Jsonl, path: Cow::Borrowed(\"/run/sammix/results.jsonl\") }",
    ] {
        assert!(rust.contains(piece), "{piece} not in {rust}");
    }
}

/// Runs the compiled build script as cargo would, with `SAMMIX_BOARD=board`
/// and a fresh `OUT_DIR`; returns (success, stdout, OUT_DIR).
fn build_script(board: &str, tag: &str) -> (bool, String, PathBuf) {
    let out = temp_dir(tag);
    let output = Command::new(env!("SAMMIX_BUILD_SCRIPT"))
        .env("CARGO_MANIFEST_DIR", MANIFEST_DIR)
        .env("OUT_DIR", &out)
        .env("SAMMIX_BOARD", board)
        .env("CARGO_CFG_TARGET_ARCH", "aarch64")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    (output.status.success(), stdout, out)
}

#[test]
fn build_script_compiles_every_shipped_profile() {
    for name in SHIPPED {
        let (ok, stdout, out) = build_script(name, &format!("bs-{name}"));
        assert!(ok, "{name}: {stdout}");
        assert!(
            stdout.contains(&format!("cargo::rustc-cfg=sammix_board=\"{name}\"")),
            "{stdout}"
        );
        let check = "cargo::rustc-check-cfg=cfg(sammix_board, values(\"host\", \"imx8mp\", \
                     \"jetson-orin-nano\", \"rk3588\", \"rpi5\"))";
        assert!(stdout.contains(check), "{stdout}");
        assert!(stdout.contains("cargo::rerun-if-env-changed=SAMMIX_BOARD"));
        assert!(stdout.contains("cargo::rerun-if-changed=board"));
        let rs = std::fs::read_to_string(out.join("board.rs")).unwrap();
        assert!(rs.contains(&format!(
            "pub static PROFILE: Profile = {}",
            parse(name).to_rust()
        )));
        assert!(rs.contains(&format!("pub const SOURCE: &str = \"board/{name}.toml\"")));
        std::fs::remove_dir_all(out).unwrap();
    }
}

#[test]
fn build_script_fails_on_a_broken_profile_naming_file_line_and_key() {
    let dir = temp_dir("broken");
    let file = dir.join("broken-test-profile.toml");
    let src = read("rpi5")
        .replace("name = \"rpi5\"", "name = \"broken-test-profile\"")
        .replace("debounce_ms = 30", "debounce_ms = 30\nbounce_ms = 5");
    std::fs::write(&file, &src).unwrap();
    let path = file.to_str().unwrap();
    let (ok, stdout, out) = build_script(path, "bs-broken");
    assert!(!ok, "{stdout}");
    let want = format!(
        "cargo::error={path}:{}: `gpio.freeze.bounce_ms`: unknown key",
        line_of(&src, "bounce_ms")
    );
    assert!(stdout.contains(&want), "{want} not in {stdout}");
    assert!(
        stdout.contains(&format!("cargo::rerun-if-changed={path}")),
        "{stdout}"
    );
    assert!(!out.join("board.rs").exists());
    for d in [dir, out] {
        std::fs::remove_dir_all(d).unwrap();
    }
}

#[test]
fn build_script_lists_the_profiles_for_an_unknown_name() {
    let (ok, stdout, out) = build_script("rpi6", "bs-unknown");
    assert!(!ok);
    assert!(
        stdout.contains("SAMMIX_BOARD=rpi6: cannot read board/rpi6.toml"),
        "{stdout}"
    );
    assert!(stdout.contains("(profiles in board/: host, imx8mp, jetson-orin-nano, rk3588, rpi5)"));
    std::fs::remove_dir_all(out).unwrap();
}

/// The whole path: `cargo build --lib` with `SAMMIX_BOARD` naming a broken
/// profile fails, and cargo shows the file, line and key. Same target folder
/// and profile as this test run, so only the build script reruns (and fails
/// before anything else builds).
#[test]
fn cargo_build_fails_on_a_broken_profile() {
    let dir = temp_dir("cargo-build");
    let file = dir.join("broken-test-profile.toml");
    let src = read("rpi5")
        .replace("name = \"rpi5\"", "name = \"broken-test-profile\"")
        .replace("fps = 30", "fps = 0");
    std::fs::write(&file, &src).unwrap();
    // This binary is TARGET_DIR[/TRIPLE]/PROFILE/deps/board_profiles-HASH:
    // build the library the same way, so that nothing but the build script runs.
    let exe = std::env::current_exe().unwrap();
    let profile_dir = exe.ancestors().nth(2).unwrap();
    let up = profile_dir.parent().unwrap();
    // A target triple has at least two dashes (x86_64-unknown-linux-gnu);
    // a target folder's own name ("target") does not.
    let is_triple = up
        .file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| n.matches('-').count() >= 2 && !up.join("CACHEDIR.TAG").exists());
    let (layout_root, triple) = if is_triple {
        (up.parent().unwrap(), up.file_name())
    } else {
        (up, None)
    };
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| layout_root.to_path_buf());
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_string());
    let mut command = Command::new(cargo);
    command.args(["build", "--lib", "--quiet", "--manifest-path"]);
    command.arg(Path::new(MANIFEST_DIR).join("Cargo.toml"));
    if let Some(triple) = triple {
        command.arg("--target").arg(triple);
    }
    if profile_dir.file_name().is_some_and(|n| n == "release") {
        command.arg("--release");
    }
    let started = std::time::Instant::now();
    let output = command
        .env("CARGO_TARGET_DIR", &target)
        .env("SAMMIX_BOARD", &file)
        .output()
        .unwrap();
    eprintln!(
        "cargo build with a broken profile: {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "{stderr}");
    let want = format!(
        "{}:{}: `capture.fps`: 0 is out of range",
        file.display(),
        line_of(&src, "fps")
    );
    assert!(stderr.contains(&want), "{want} not in {stderr}");
    std::fs::remove_dir_all(dir).unwrap();
}
