//! Opening a bundle: a folder holding the manifest `sammix.toml` (schema 1,
//! `models/README.md`), three ONNX graphs and the files that document and
//! check them.
//!
//! [`Bundle::open`] checks, in this order, and reports the first failure:
//!
//! 1. the folder exists and holds `sammix.toml`;
//! 2. the manifest is UTF-8 TOML ([`BundleError::Toml`], with line and
//!    column) whose `schema` is 1;
//! 3. its key tree is schema 1's exactly: no unknown key, none missing, every
//!    value of its type ([`BundleError::UnknownField`],
//!    [`BundleError::MissingField`], [`BundleError::WrongType`]);
//! 4. the values are ones schema 1 allows, in schema order
//!    ([`BundleError::Invalid`]): sizes, colour and channels, per-channel
//!    normalization, thresholds in range, mask tokens, digests, path forms,
//!    each file listed once;
//! 5. no listed path leaves the bundle, by `..`, as an absolute path or
//!    through a symbolic link ([`BundleError::OutsideBundle`]);
//! 6. the files: every listed file exists and has its sha256, and every file
//!    in the folder tree but the manifest and its signature is listed. All
//!    problems of this step come in one [`BundleError::Files`].
//!
//! [`Bundle::open_trusted`] checks the manifest's signature first
//! ([`signature`]: minisign, Ed25519) against the keys given, before
//! parsing the bytes it verified; [`Bundle::open`] trusts no key and reports
//! the bundle as unverified ([`Bundle::provenance`]).
//!
//! The graphs are not loaded here: their inputs and outputs are checked
//! against the contract where they are loaded.
//!
//! ```no_run
//! use sammix::bundle::{Bundle, GraphRole};
//!
//! let bundle = Bundle::open("models/sammix-us-tiny")?;
//! println!("{}: input {}²", bundle.manifest().name, bundle.manifest().input.size);
//! let encoder = bundle.graph_path(GraphRole::Encoder);
//! # Ok::<(), sammix::bundle::BundleError>(())
//! ```

use std::path::{Path, PathBuf};

mod error;
mod files;
mod input;
mod manifest;
pub mod signature;
mod validate;

pub use error::{BundleError, FileProblem, Invalid, TextPos};
pub use files::sha256_file;
pub use input::{InputColor, InputParams, Resize};
pub use manifest::{
    ClassifierInput, ConfidenceParams, DecoderParams, GateParams, GraphEntry, GraphRole, Graphs,
    Manifest, Precision, PromptParams,
};
pub use signature::{Provenance, TrustedKey, TrustedKeys, SIGNATURE};

/// The manifest's file name, at the bundle's root.
pub const MANIFEST: &str = "sammix.toml";

/// The manifest schema version this runtime reads.
pub const SCHEMA: u32 = 1;

/// A bundle whose manifest and files have been checked.
#[derive(Debug, Clone)]
pub struct Bundle {
    dir: PathBuf,
    manifest_path: PathBuf,
    manifest: Manifest,
    provenance: Provenance,
}

impl Bundle {
    /// Opens and checks the bundle in folder `dir` (see the module docs for
    /// what is checked, in which order), trusting no signing key: the
    /// bundle is [`Provenance::Unverified`].
    pub fn open(dir: impl AsRef<Path>) -> Result<Bundle, BundleError> {
        Bundle::open_trusted(dir, &TrustedKeys::none())
    }

    /// Opens and checks the bundle in folder `dir`; with `keys` not empty,
    /// only if its manifest is signed by one of them
    /// ([`BundleError::Unsigned`], [`BundleError::UntrustedKey`],
    /// [`BundleError::SignatureMismatch`], [`BundleError::BadSignatureFile`]
    /// otherwise). The signature is checked first, on the manifest bytes
    /// that are then parsed.
    pub fn open_trusted(dir: impl AsRef<Path>, keys: &TrustedKeys) -> Result<Bundle, BundleError> {
        let dir = dir.as_ref();
        let (manifest_path, bytes) = read_manifest_bytes(dir)?;
        let provenance = signature::check(dir, &manifest_path, &bytes, keys)?;
        let manifest = Manifest::from_bytes(&bytes, &manifest_path)?;
        files::check(dir, &manifest_path, &manifest)?;
        Ok(Bundle {
            dir: dir.to_path_buf(),
            manifest_path,
            manifest,
            provenance,
        })
    }

    /// Who made the bundle, as far as its signature says.
    pub fn provenance(&self) -> &Provenance {
        &self.provenance
    }

    /// The bundle folder, as given to [`Bundle::open`].
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The manifest file.
    pub fn manifest_path(&self) -> &Path {
        &self.manifest_path
    }

    /// The parsed and validated manifest.
    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    /// The manifest, giving up the bundle.
    pub fn into_manifest(self) -> Manifest {
        self.manifest
    }

    /// The path of one graph file.
    pub fn graph_path(&self, role: GraphRole) -> PathBuf {
        self.path_of(&self.manifest.graphs.get(role).file)
    }

    /// The classifier graph file.
    pub fn classifier_path(&self) -> PathBuf {
        self.graph_path(GraphRole::Classifier)
    }

    /// The encoder graph file.
    pub fn encoder_path(&self) -> PathBuf {
        self.graph_path(GraphRole::Encoder)
    }

    /// The decoder graph file.
    pub fn decoder_path(&self) -> PathBuf {
        self.graph_path(GraphRole::Decoder)
    }

    /// A `/`-separated path in the bundle (as the manifest writes them) as a
    /// path on this system. It is not checked: use it for files the manifest
    /// lists.
    pub fn path_of(&self, entry: &str) -> PathBuf {
        files::resolve(&self.dir, entry)
    }
}

/// The manifest's path in bundle folder `dir` and its bytes.
fn read_manifest_bytes(dir: &Path) -> Result<(PathBuf, Vec<u8>), BundleError> {
    if !dir.is_dir() {
        return Err(BundleError::MissingFolder {
            dir: dir.to_path_buf(),
        });
    }
    let path = dir.join(MANIFEST);
    let bytes = manifest::read_bytes(&path)?;
    Ok((path, bytes))
}

#[cfg(test)]
mod tests;
#[cfg(test)]
mod validate_tests;
