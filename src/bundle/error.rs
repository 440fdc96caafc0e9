//! The error type of bundle loading.
//!
//! Every message starts with the file involved (the bundle folder, the
//! manifest, or a file it lists) and names the dotted manifest field and what
//! was expected.

use std::fmt;
use std::path::{Path, PathBuf};

use super::{MANIFEST, SIGNATURE};

/// A position in the manifest text, 1-based (the column counts characters).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TextPos {
    /// Line, from 1.
    pub line: usize,
    /// Column, from 1.
    pub column: usize,
}

impl TextPos {
    /// The position of byte `offset` in `text` (clamped to its end).
    pub fn of_offset(text: &str, offset: usize) -> TextPos {
        let mut offset = offset.min(text.len());
        while !text.is_char_boundary(offset) {
            offset -= 1;
        }
        let before = &text[..offset];
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        TextPos {
            line: before.matches('\n').count() + 1,
            column: before[line_start..].chars().count() + 1,
        }
    }
}

/// `path:line:column`, or `path` when the position is unknown.
fn located(path: &Path, at: &Option<TextPos>) -> String {
    match at {
        Some(p) => format!("{}:{}:{}", path.display(), p.line, p.column),
        None => path.display().to_string(),
    }
}

/// An error opening a bundle. The first one found is reported, in a fixed
/// order: folder, manifest syntax, manifest fields (in schema order), paths,
/// then the files (all file problems together, see [`BundleError::Files`]).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BundleError {
    /// The bundle folder does not exist or is not a directory.
    #[error("{}: no bundle folder here (expected a directory holding {MANIFEST})", dir.display())]
    MissingFolder {
        /// The path given.
        dir: PathBuf,
    },
    /// The folder has no manifest.
    #[error("{}: bundle manifest not found (every bundle folder holds one)", path.display())]
    MissingManifest {
        /// Where the manifest was expected.
        path: PathBuf,
    },
    /// A file or folder could not be read.
    #[error("{}: cannot read: {source}", path.display())]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
    /// The manifest is not valid TOML (or not UTF-8).
    #[error("{}: invalid TOML: {message}", located(path, at))]
    Toml {
        /// The manifest.
        path: PathBuf,
        /// Where the parser stopped, when known.
        at: Option<TextPos>,
        /// The parser's message.
        message: String,
    },
    /// A key that schema 1 does not have.
    #[error("{}: unknown field `{field}`: {expected}", located(path, at))]
    UnknownField {
        /// The manifest.
        path: PathBuf,
        /// The dotted field, for instance `input.sizes`.
        field: String,
        /// Where the key is, when known.
        at: Option<TextPos>,
        /// The keys allowed there (`expected one of ...`).
        expected: String,
    },
    /// A key that schema 1 requires is absent.
    #[error(
        "{}: missing field `{field}` (required by schema 1, see models/README.md)",
        located(path, at)
    )]
    MissingField {
        /// The manifest.
        path: PathBuf,
        /// The dotted field, for instance `prompt.box_margin`.
        field: String,
        /// The table it is missing from, when known.
        at: Option<TextPos>,
    },
    /// A value of the wrong type, or outside what its type holds (a negative
    /// size, a string that names no `resize` or `precision`).
    #[error("{}: field `{field}`: {detail}", located(path, at))]
    WrongType {
        /// The manifest.
        path: PathBuf,
        /// The dotted field, for instance `input.mean[0]`.
        field: String,
        /// Where the value is, when known.
        at: Option<TextPos>,
        /// What was found and what was expected, as serde says it.
        detail: String,
    },
    /// A well-typed value that schema 1 does not allow.
    #[error("{}: field `{field}`: {problem}", path.display())]
    Invalid {
        /// The manifest.
        path: PathBuf,
        /// The dotted field, for instance `prompt.cam_threshold`.
        field: String,
        /// What is wrong.
        problem: Invalid,
    },
    /// A path in the manifest that leads out of the bundle folder.
    #[error(
        "{}: field `{field}`: {entry:?} {reason}: expected a relative path inside the bundle",
        path.display()
    )]
    OutsideBundle {
        /// The manifest.
        path: PathBuf,
        /// The dotted field holding the path.
        field: String,
        /// The path as written in the manifest.
        entry: String,
        /// How it leaves the bundle.
        reason: String,
    },
    /// The files do not match the manifest: every missing, mismatching and
    /// unlisted file, listed entries first (in manifest order), then the
    /// unlisted files (sorted).
    #[error(
        "{}: {} file problem(s): {}",
        path.display(),
        problems.len(),
        ProblemList(problems)
    )]
    Files {
        /// The manifest.
        path: PathBuf,
        /// What is wrong, one entry per file.
        problems: Vec<FileProblem>,
    },
    /// Trusted keys are configured and the bundle has no signature.
    #[error(
        "{}: the bundle is not signed (no {SIGNATURE} beside it): this build runs only bundles \
         signed by trusted key {trusted}",
        path.display()
    )]
    Unsigned {
        /// The manifest.
        path: PathBuf,
        /// The trusted key IDs.
        trusted: String,
    },
    /// The signature file is not a minisign signature.
    #[error("{}: not a minisign signature: {reason}", path.display())]
    BadSignatureFile {
        /// The signature file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// The bundle is signed by a key that is not trusted.
    #[error(
        "{}: signed by key {key_id}, which this build does not trust (trusted: {trusted}): \
         sign the bundle with a trusted key, or add its public key to the board profile's \
         security.trusted_keys",
        path.display()
    )]
    UntrustedKey {
        /// The signature file.
        path: PathBuf,
        /// The key ID the signature names.
        key_id: String,
        /// The trusted key IDs.
        trusted: String,
    },
    /// The signature does not match the manifest: one of them was changed
    /// after signing.
    #[error(
        "{}: the signature by trusted key {key_id} does not match {MANIFEST}: the manifest or \
         its signature was changed after signing ({reason})",
        path.display()
    )]
    SignatureMismatch {
        /// The signature file.
        path: PathBuf,
        /// The key ID.
        key_id: String,
        /// minisign's message.
        reason: String,
    },
}

/// Why a well-typed manifest value is refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum Invalid {
    /// A schema version other than 1.
    #[error("unsupported schema version {found}: expected {}", super::SCHEMA)]
    Schema {
        /// The version found.
        found: i64,
    },
    /// `input.size` is not a positive multiple of 16.
    #[error("expected a positive multiple of 16, found {found}")]
    Size {
        /// The value found.
        found: u32,
    },
    /// `4 × input.embedding_size` does not divide `input.size`: the dense
    /// prompt (4E×4E) averages the S×S prompt mask over whole blocks.
    #[error(
        "expected an E whose 4E divides input.size = {size} (the dense prompt averages \
         S×S into 4E×4E blocks), found {found}"
    )]
    EmbeddingSize {
        /// `input.size`.
        size: u32,
        /// The value found.
        found: u32,
    },
    /// An integer below its minimum.
    #[error("expected at least {min}, found {found}")]
    TooSmall {
        /// The minimum.
        min: u32,
        /// The value found.
        found: u32,
    },
    /// An integer outside its range.
    #[error("expected an integer in {min}..={max}, found {found}")]
    IntOutOfRange {
        /// The least value allowed.
        min: u32,
        /// The greatest value allowed.
        max: u32,
        /// The value found.
        found: u32,
    },
    /// `input.color = "rgb"` with `input.channels` other than 3.
    #[error(
        "`rgb` takes the frame's R, G and B, one per channel: expected input.channels = 3, \
         found {channels} (a model trained on gray frames is `gray`, whatever its channels)"
    )]
    RgbChannels {
        /// `input.channels`.
        channels: u32,
    },
    /// A per-channel list whose length is not `input.channels`.
    #[error("expected {expected} value(s), one per input.channels, found {found}")]
    Length {
        /// `input.channels`.
        expected: usize,
        /// The length found.
        found: usize,
    },
    /// NaN or an infinity (or a float too large for `f32`).
    #[error("expected a finite number, found {found}")]
    NonFinite {
        /// The value found.
        found: f32,
    },
    /// A float outside its range.
    #[error("expected a value {expected}, found {found}")]
    OutOfRange {
        /// The values allowed: `in (0, 1]`, `> 0`.
        expected: &'static str,
        /// The value found.
        found: f32,
    },
    /// `decoder.mask_tokens` is empty.
    #[error("expected at least one mask token (0..=3)")]
    NoMaskTokens,
    /// A mask token that the decoder does not output.
    #[error("expected a mask token in 0..=3, found {found}")]
    MaskToken {
        /// The token found.
        found: u32,
    },
    /// A mask token listed twice.
    #[error("mask token {token} is listed twice: expected distinct tokens")]
    DuplicateMaskToken {
        /// The token.
        token: u32,
    },
    /// A digest that is not 64 lowercase hexadecimal digits.
    #[error("expected a sha256 digest of 64 lowercase hex digits, found {found:?}")]
    Sha256 {
        /// The value found.
        found: String,
    },
    /// A path not written as `/`-separated names.
    #[error(
        "expected a relative path of `/`-separated names (no empty or `.` component, \
         no backslash), found {found:?}"
    )]
    PathForm {
        /// The path found.
        found: String,
    },
    /// A file listed twice (by two graphs, or by a graph and `checksums`).
    #[error("{found:?} is already listed by `{first}`: expected each file once")]
    DuplicatePath {
        /// The path.
        found: String,
        /// The field that lists it first.
        first: String,
    },
    /// `checksums` lists the manifest itself.
    #[error("expected every file but {MANIFEST} itself, found {MANIFEST}")]
    ListsManifest,
}

/// One file that does not match the manifest.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FileProblem {
    /// A listed file is absent.
    #[error("`{field}`: {entry:?} is listed but missing")]
    Missing {
        /// The dotted field that lists it.
        field: String,
        /// Its path in the bundle.
        entry: String,
    },
    /// A listed path is a folder or a special file.
    #[error("`{field}`: {entry:?} is not a regular file")]
    NotAFile {
        /// The dotted field that lists it.
        field: String,
        /// Its path in the bundle.
        entry: String,
    },
    /// A listed file whose sha256 differs from the manifest's.
    #[error("`{field}`: {entry:?} has sha256 {found}, expected {expected}")]
    Mismatch {
        /// The dotted field holding the expected digest.
        field: String,
        /// Its path in the bundle.
        entry: String,
        /// The manifest's digest.
        expected: String,
        /// The file's digest.
        found: String,
    },
    /// A file in the bundle that the manifest does not list.
    #[error("extra file {entry:?}: expected every file to be listed in `graphs` or `checksums`")]
    Extra {
        /// Its path in the bundle.
        entry: String,
    },
}

impl FileProblem {
    /// The file's path in the bundle, as the manifest writes it.
    pub fn entry(&self) -> &str {
        match self {
            FileProblem::Missing { entry, .. }
            | FileProblem::NotAFile { entry, .. }
            | FileProblem::Mismatch { entry, .. }
            | FileProblem::Extra { entry } => entry,
        }
    }
}

/// Displays problems separated by `; `.
struct ProblemList<'a>(&'a [FileProblem]);

impl fmt::Display for ProblemList<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, p) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{p}")?;
        }
        Ok(())
    }
}
