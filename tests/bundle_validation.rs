//! `Bundle::open` on bundles built in a temporary folder: a valid one, then
//! one per failure. Each failure is checked by its error variant and by its
//! message, which must name the file and the manifest field.
//!
//! The last test opens the real bundle (`$SAMMIX_REFERENCE_BUNDLE`, by default
//! `models/sammix-us-scratch`) and fails when it is missing or invalid.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use sammix::bundle::{
    sha256_file, Bundle, BundleError, FileProblem, GraphRole, Invalid, Precision, MANIFEST,
};
use BundleError::{
    Files, MissingField, MissingFolder, MissingManifest, OutsideBundle, Toml, UnknownField,
    WrongType,
};

/// A folder under the system's temporary folder, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> TempDir {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let dir =
            std::env::temp_dir().join(format!("sammix-bundle-{}-{n}-{name}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// The files of the test bundle: path → contents.
const FILES: [(&str, &[u8]); 5] = [
    ("classifier.onnx", b"not really a classifier"),
    ("encoder.onnx", b"not really an encoder"),
    ("decoder.onnx", b"not really a decoder"),
    ("MODEL_CARD.md", b"# test bundle\n"),
    ("demo/clip.y4m", b"YUV4MPEG2 W4 H4 F1:1 Cmono\n"),
];

fn sha(path: &Path) -> String {
    sha256_file(path).unwrap()
}

/// A bundle folder with valid files and a manifest written from its files.
struct TestBundle {
    tmp: TempDir,
}

impl TestBundle {
    fn new(name: &str) -> TestBundle {
        let tmp = TempDir::new(name);
        for (rel, bytes) in FILES {
            let path = tmp.0.join(rel);
            fs::create_dir_all(path.parent().unwrap()).unwrap();
            fs::write(path, bytes).unwrap();
        }
        let b = TestBundle { tmp };
        b.write_manifest(&b.manifest_text());
        b
    }

    fn dir(&self) -> &Path {
        &self.tmp.0
    }

    fn manifest_path(&self) -> PathBuf {
        self.dir().join(MANIFEST)
    }

    /// The manifest the recipe would write for the current files.
    fn manifest_text(&self) -> String {
        let d = self.dir();
        format!(
            r#"schema = 1
name = "test-bundle"
description = "a bundle built by tests/bundle_validation.rs"

[input]
size = 256
channels = 1
embedding_size = 16
mean = [127.5]
std = [64.0]
resize = "bilinear"

[prompt]
cam_threshold = 0.5
min_component_px = 16
box_margin = 0.02
dense_logit = 8.0

[gate]
presence_threshold = 0.5

[decoder]
mask_tokens = [1, 2, 3]
mask_threshold = 0.0

[graphs.classifier]
file = "classifier.onnx"
precision = "int8-dynamic"
sha256 = "{}"

[graphs.encoder]
file = "encoder.onnx"
precision = "int8-dynamic"
sha256 = "{}"

[graphs.decoder]
file = "decoder.onnx"
precision = "f32"
sha256 = "{}"

[checksums]
"MODEL_CARD.md" = "{}"
"demo/clip.y4m" = "{}"
"#,
            sha(&d.join("classifier.onnx")),
            sha(&d.join("encoder.onnx")),
            sha(&d.join("decoder.onnx")),
            sha(&d.join("MODEL_CARD.md")),
            sha(&d.join("demo/clip.y4m")),
        )
    }

    fn write_manifest(&self, text: &str) {
        fs::write(self.manifest_path(), text).unwrap();
    }

    /// Rewrites the manifest with `from` replaced by `to` (which must occur).
    fn edit(&self, from: &str, to: &str) {
        let text = fs::read_to_string(self.manifest_path()).unwrap();
        assert!(text.contains(from), "{from:?} is not in the manifest");
        self.write_manifest(&text.replacen(from, to, 1));
    }

    /// Replaces the first line that sets the key `line` sets.
    fn set(&self, line: &str) {
        let key = line.split(" = ").next().unwrap();
        let text = fs::read_to_string(self.manifest_path()).unwrap();
        let old = text
            .lines()
            .find(|l| l.starts_with(&format!("{key} = ")))
            .unwrap_or_else(|| panic!("{key} is not in the manifest"));
        self.write_manifest(&text.replacen(old, line, 1));
    }

    fn open_err(&self) -> BundleError {
        match Bundle::open(self.dir()) {
            Ok(_) => panic!("{} was accepted", self.dir().display()),
            Err(e) => e,
        }
    }
}

/// Asserts that the error matches the pattern and that its message holds
/// each of the parts (the file, the field, what was expected).
macro_rules! assert_err {
    ($e:expr, $pat:pat $(if $guard:expr)?, [$($part:expr),* $(,)?]) => {{
        let e: &BundleError = &$e;
        assert!(matches!(e, $pat $(if $guard)?), "unexpected error {e:?}");
        let msg = e.to_string();
        for part in [$($part),*] {
            assert!(msg.contains(part), "{part:?} is not in the message: {msg}");
        }
    }};
}

#[test]
fn opens_a_valid_bundle() {
    let b = TestBundle::new("valid");
    let bundle = Bundle::open(b.dir()).unwrap();
    assert_eq!(bundle.dir(), b.dir());
    assert_eq!(bundle.manifest_path(), b.manifest_path());
    let m = bundle.manifest();
    assert_eq!((m.name.as_str(), m.input.size), ("test-bundle", 256));
    assert_eq!(m.graphs.decoder.precision, Precision::F32);
    assert_eq!(bundle.classifier_path(), b.dir().join("classifier.onnx"));
    assert_eq!(bundle.encoder_path(), b.dir().join("encoder.onnx"));
    assert_eq!(bundle.decoder_path(), b.dir().join("decoder.onnx"));
    for role in GraphRole::ALL {
        assert!(bundle.graph_path(role).is_file(), "{role}");
    }
    let clip = b.dir().join("demo").join("clip.y4m");
    assert_eq!(bundle.path_of("demo/clip.y4m"), clip);
    assert_eq!(bundle.into_manifest().checksums.len(), 2);
}

#[test]
fn missing_folder() {
    let tmp = TempDir::new("missing-folder");
    let dir = tmp.0.join("nowhere");
    let e = Bundle::open(&dir).unwrap_err();
    assert_err!(e, MissingFolder { dir: d } if *d == dir, ["nowhere", MANIFEST]);
    // A file is not a bundle folder either.
    let file = tmp.0.join("file");
    fs::write(&file, b"").unwrap();
    assert_err!(
        Bundle::open(&file).unwrap_err(),
        MissingFolder { .. },
        ["file"]
    );
}

#[test]
fn missing_manifest() {
    let b = TestBundle::new("missing-manifest");
    fs::remove_file(b.manifest_path()).unwrap();
    let path = b.manifest_path().display().to_string();
    assert_err!(b.open_err(), MissingManifest { .. }, [&path, "not found"]);
}

#[test]
fn bad_toml() {
    let b = TestBundle::new("bad-toml");
    b.set("box_margin = 0.02 0.03");
    let at = format!("{}:16:", b.manifest_path().display());
    assert_err!(b.open_err(), Toml { at: Some(p), .. } if p.line == 16, [&at, "invalid TOML"]);
}

#[test]
fn unknown_field() {
    let b = TestBundle::new("unknown-field");
    b.edit("[prompt]\n", "[prompt]\ncam_treshold = 0.5\n");
    assert_err!(b.open_err(), UnknownField { field, .. } if field == "prompt.cam_treshold",
        [MANIFEST, "prompt.cam_treshold", "`cam_threshold`"]);
}

#[test]
fn missing_field() {
    let b = TestBundle::new("missing-field");
    b.edit("mask_threshold = 0.0\n", "");
    assert_err!(b.open_err(), MissingField { field, .. } if field == "decoder.mask_threshold",
        [MANIFEST, "decoder.mask_threshold"]);
}

#[test]
fn wrong_type() {
    let b = TestBundle::new("wrong-type");
    b.set("min_component_px = \"16\"");
    assert_err!(b.open_err(), WrongType { field, .. } if field == "prompt.min_component_px",
        [MANIFEST, "prompt.min_component_px", "expected a non-negative integer"]);
    let b = TestBundle::new("wrong-enum");
    b.edit("precision = \"f32\"", "precision = \"fp32\"");
    assert_err!(b.open_err(), WrongType { field, .. } if field == "graphs.decoder.precision",
        [MANIFEST, "graphs.decoder.precision", "`int8-qdq`"]);
}

#[test]
fn bad_schema() {
    let b = TestBundle::new("bad-schema");
    b.set("schema = 2");
    assert_err!(
        b.open_err(),
        BundleError::Invalid {
            problem: Invalid::Schema { found: 2 },
            ..
        },
        [MANIFEST, "`schema`", "expected 1"]
    );
}

#[test]
fn bad_values() {
    let cases = [
        ("size = 250", "input.size", "multiple of 16"),
        ("embedding_size = 48", "input.embedding_size", "4E divides"),
        ("embedding_size = 0", "input.embedding_size", "at least 1"),
        ("std = [0.0]", "input.std[0]", "> 0"),
        ("mean = [1.0, 2.0]", "input.mean", "one per input.channels"),
        ("cam_threshold = 0.0", "prompt.cam_threshold", "(0, 1]"),
        (
            "min_component_px = 0",
            "prompt.min_component_px",
            "at least 1",
        ),
        ("box_margin = 0.5", "prompt.box_margin", "[0, 0.5)"),
        ("dense_logit = nan", "prompt.dense_logit", "finite"),
        (
            "presence_threshold = 2.0",
            "gate.presence_threshold",
            "[0, 1]",
        ),
        ("mask_tokens = [1, 2, 2]", "decoder.mask_tokens[2]", "twice"),
        ("mask_tokens = [1, 4]", "decoder.mask_tokens[1]", "0..=3"),
        ("mask_tokens = []", "decoder.mask_tokens", "at least one"),
    ];
    for (i, (line, field, expected)) in cases.into_iter().enumerate() {
        let b = TestBundle::new(&format!("bad-value-{i}"));
        b.set(line);
        assert_err!(b.open_err(), BundleError::Invalid { field: f, .. } if f == field,
            [MANIFEST, field, expected]);
    }
    // A digest that is not 64 lowercase hex digits.
    let b = TestBundle::new("bad-digest");
    let digest = sha(&b.dir().join("encoder.onnx"));
    b.edit(&digest, &digest.to_uppercase());
    assert_err!(
        b.open_err(),
        BundleError::Invalid {
            problem: Invalid::Sha256 { .. },
            ..
        },
        [MANIFEST, "`graphs.encoder.sha256`", "64 lowercase hex"]
    );
}

#[test]
fn sha_mismatch() {
    let b = TestBundle::new("sha-mismatch");
    fs::write(b.dir().join("encoder.onnx"), b"tampered").unwrap();
    let found = sha(&b.dir().join("encoder.onnx"));
    assert_err!(b.open_err(), Files { problems, .. } if matches!(&problems[..],
        [FileProblem::Mismatch { field, entry, found: f, .. }]
            if field == "graphs.encoder.sha256" && entry == "encoder.onnx" && *f == found),
        [MANIFEST, "\"encoder.onnx\"", "`graphs.encoder.sha256`", &found]);

    let b = TestBundle::new("sha-mismatch-checksum");
    fs::write(
        b.dir().join("demo/clip.y4m"),
        b"YUV4MPEG2 W8 H8 F1:1 Cmono\n",
    )
    .unwrap();
    assert_err!(b.open_err(),
        Files { problems, .. } if matches!(&problems[..], [FileProblem::Mismatch { .. }]),
        [MANIFEST, "`checksums.\"demo/clip.y4m\"`", "has sha256"]);
}

#[test]
fn missing_graph_file() {
    let b = TestBundle::new("missing-graph");
    fs::remove_file(b.dir().join("decoder.onnx")).unwrap();
    assert_err!(b.open_err(), Files { problems, .. } if matches!(&problems[..],
        [FileProblem::Missing { field, entry }]
            if field == "graphs.decoder.file" && entry == "decoder.onnx"),
        [MANIFEST, "\"decoder.onnx\"", "`graphs.decoder.file`", "missing"]);
}

#[test]
fn missing_checksum_file() {
    let b = TestBundle::new("missing-checksum");
    fs::remove_file(b.dir().join("MODEL_CARD.md")).unwrap();
    assert_err!(b.open_err(),
        Files { problems, .. } if matches!(&problems[..], [FileProblem::Missing { .. }]),
        [MANIFEST, "`checksums.\"MODEL_CARD.md\"`", "missing"]);
}

#[test]
fn extra_file() {
    let b = TestBundle::new("extra-file");
    fs::write(b.dir().join("demo/notes.txt"), b"not listed").unwrap();
    assert_err!(b.open_err(),
        Files { problems, .. } if matches!(&problems[..], [FileProblem::Extra { .. }]),
        [MANIFEST, "extra file \"demo/notes.txt\"", "`checksums`"]);
    // The manifest is exempt only at the root.
    let b = TestBundle::new("extra-manifest");
    fs::write(b.dir().join("demo").join(MANIFEST), b"").unwrap();
    assert_err!(
        b.open_err(),
        Files { .. },
        ["extra file \"demo/sammix.toml\""]
    );
}

#[test]
fn every_file_problem_is_listed_at_once() {
    let b = TestBundle::new("all-problems");
    fs::write(b.dir().join("classifier.onnx"), b"tampered").unwrap();
    fs::remove_file(b.dir().join("demo/clip.y4m")).unwrap();
    fs::create_dir(b.dir().join("encoder.onnx.d")).unwrap();
    for extra in ["zz.bin", "a.bin", "encoder.onnx.d/x"] {
        fs::write(b.dir().join(extra), b"").unwrap();
    }
    let e = b.open_err();
    let Files { problems, .. } = &e else {
        panic!("expected Files, got {e:?}")
    };
    let entries: Vec<&str> = problems.iter().map(FileProblem::entry).collect();
    // Listed files in manifest order, then unlisted ones sorted.
    let expected = [
        "classifier.onnx",
        "demo/clip.y4m",
        "a.bin",
        "encoder.onnx.d/x",
        "zz.bin",
    ];
    assert_eq!(entries, expected);
    assert_err!(e, Files { .. }, [MANIFEST, "5 file problem(s)"]);
}

#[test]
fn listed_folder_is_not_a_file() {
    let b = TestBundle::new("listed-folder");
    fs::remove_file(b.dir().join("MODEL_CARD.md")).unwrap();
    fs::create_dir(b.dir().join("MODEL_CARD.md")).unwrap();
    assert_err!(b.open_err(),
        Files { problems, .. } if matches!(&problems[..], [FileProblem::NotAFile { .. }]),
        [MANIFEST, "`checksums.\"MODEL_CARD.md\"`", "not a regular file"]);
}

#[test]
fn path_escaping_the_bundle() {
    for (i, (path, reason)) in [("../encoder.onnx", "`..`"), ("/etc/passwd", "absolute")]
        .into_iter()
        .enumerate()
    {
        let b = TestBundle::new(&format!("escape-{i}"));
        b.edit("file = \"encoder.onnx\"", &format!("file = {path:?}"));
        assert_err!(b.open_err(), OutsideBundle { field, .. } if field == "graphs.encoder.file",
            [MANIFEST, "`graphs.encoder.file`", path, reason]);
    }
}

#[cfg(unix)]
#[test]
fn symlink_leading_outside_the_bundle() {
    use std::os::unix::fs::symlink;

    let outside = TempDir::new("outside");
    fs::write(outside.0.join("secret"), b"outside").unwrap();
    // A listed file that is a link to a file outside.
    let b = TestBundle::new("symlink-file");
    fs::remove_file(b.dir().join("MODEL_CARD.md")).unwrap();
    symlink(outside.0.join("secret"), b.dir().join("MODEL_CARD.md")).unwrap();
    assert_err!(b.open_err(), OutsideBundle { field, .. } if field == "checksums.\"MODEL_CARD.md\"",
        [MANIFEST, "\"MODEL_CARD.md\"", "symbolic link"]);

    // A listed file in a folder that is a link to a folder outside.
    let b = TestBundle::new("symlink-folder");
    fs::copy(b.dir().join("demo/clip.y4m"), outside.0.join("clip.y4m")).unwrap();
    fs::remove_dir_all(b.dir().join("demo")).unwrap();
    symlink(&outside.0, b.dir().join("demo")).unwrap();
    assert_err!(b.open_err(), OutsideBundle { field, .. } if field == "checksums.\"demo/clip.y4m\"",
        [MANIFEST, "\"demo/clip.y4m\"", "symbolic link"]);

    // A link that stays inside is followed.
    let b = TestBundle::new("symlink-inside");
    fs::create_dir(b.dir().join("docs")).unwrap();
    symlink("../MODEL_CARD.md", b.dir().join("docs/card.md")).unwrap();
    let card = sha(&b.dir().join("MODEL_CARD.md"));
    b.edit(
        "[checksums]\n",
        &format!("[checksums]\n\"docs/card.md\" = \"{card}\"\n"),
    );
    Bundle::open(b.dir()).unwrap();
}

/// The bundle shipped in the repository opens and validates.
#[test]
fn opens_the_reference_bundle() {
    let dir = std::env::var_os("SAMMIX_REFERENCE_BUNDLE")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("models/sammix-us-scratch"));
    let bundle = Bundle::open(&dir).unwrap_or_else(|e| panic!("{e}"));
    let m = bundle.manifest();
    assert!(m.input.embedding_size > 0);
    assert_eq!(m.input.size % (4 * m.input.embedding_size), 0);
    for role in GraphRole::ALL {
        assert!(bundle.graph_path(role).is_file(), "{role}");
    }
}
