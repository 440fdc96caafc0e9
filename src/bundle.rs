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
//!    ([`BundleError::Invalid`]): sizes, per-channel normalization,
//!    thresholds in range, mask tokens, digests, path forms, each file listed
//!    once;
//! 5. no listed path leaves the bundle, by `..`, as an absolute path or
//!    through a symbolic link ([`BundleError::OutsideBundle`]);
//! 6. the files: every listed file exists and has its sha256, and every file
//!    in the folder tree but the manifest is listed. All problems of this
//!    step come in one [`BundleError::Files`].
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
mod manifest;
mod validate;

pub use error::{BundleError, FileProblem, Invalid, TextPos};
pub use files::sha256_file;
pub use manifest::{
    ClassifierInput, DecoderParams, GateParams, GraphEntry, GraphRole, Graphs, InputParams,
    Manifest, Precision, PromptParams, Resize,
};

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
}

impl Bundle {
    /// Opens and checks the bundle in folder `dir` (see the module docs for
    /// what is checked, in which order).
    pub fn open(dir: impl AsRef<Path>) -> Result<Bundle, BundleError> {
        let dir = dir.as_ref();
        if !dir.is_dir() {
            return Err(BundleError::MissingFolder {
                dir: dir.to_path_buf(),
            });
        }
        let manifest_path = dir.join(MANIFEST);
        let manifest = Manifest::read(&manifest_path)?;
        files::check(dir, &manifest_path, &manifest)?;
        Ok(Bundle {
            dir: dir.to_path_buf(),
            manifest_path,
            manifest,
        })
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

#[cfg(test)]
mod tests;
#[cfg(test)]
mod validate_tests;
