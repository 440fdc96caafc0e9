//! Checking the bundle's files against a validated manifest: every listed
//! file resolves inside the bundle, exists and has its digest, and no other
//! file is present.

use std::collections::BTreeSet;
use std::fs;
use std::io::{ErrorKind, Read};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use super::manifest::join;
use super::{BundleError, FileProblem, GraphRole, Manifest, MANIFEST, SIGNATURE};

/// Bytes read at a time while hashing.
const CHUNK: usize = 1 << 16;

/// A file the manifest lists.
struct Listed<'m> {
    /// The field holding its path.
    file_field: String,
    /// The field holding its digest.
    sha_field: String,
    entry: &'m str,
    sha256: &'m str,
}

/// The graphs, then `checksums` in key order.
fn listed(manifest: &Manifest) -> Vec<Listed<'_>> {
    let graphs = GraphRole::ALL.into_iter().map(|role| {
        let g = manifest.graphs.get(role);
        Listed {
            file_field: format!("graphs.{role}.file"),
            sha_field: format!("graphs.{role}.sha256"),
            entry: &g.file,
            sha256: &g.sha256,
        }
    });
    let others = manifest.checksums.iter().map(|(entry, sha256)| {
        let field = join("checksums", entry);
        Listed {
            file_field: field.clone(),
            sha_field: field,
            entry,
            sha256,
        }
    });
    graphs.chain(others).collect()
}

/// `dir` joined with a `/`-separated path.
pub(super) fn resolve(dir: &Path, entry: &str) -> PathBuf {
    let mut path = dir.to_path_buf();
    path.extend(entry.split('/'));
    path
}

fn io_error(path: &Path) -> impl FnOnce(std::io::Error) -> BundleError + '_ {
    move |source| BundleError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Checks the files of the bundle at `dir` against `manifest` (read from
/// `manifest_path`, already validated).
pub(super) fn check(
    dir: &Path,
    manifest_path: &Path,
    manifest: &Manifest,
) -> Result<(), BundleError> {
    let listed = listed(manifest);
    let root = fs::canonicalize(dir).map_err(io_error(dir))?;

    // Symbolic links must not lead out of the bundle: refused before reading.
    for l in &listed {
        let path = resolve(dir, l.entry);
        match fs::canonicalize(&path) {
            Ok(real) if !real.starts_with(&root) => {
                return Err(BundleError::OutsideBundle {
                    path: manifest_path.to_path_buf(),
                    field: l.file_field.clone(),
                    entry: l.entry.to_string(),
                    reason: format!("leads to {} through a symbolic link", real.display()),
                });
            }
            // Missing files (and dangling links) are reported below.
            _ => {}
        }
    }

    let mut problems = Vec::new();
    for l in &listed {
        let path = resolve(dir, l.entry);
        let meta = match fs::metadata(&path) {
            Ok(meta) => meta,
            Err(e) if matches!(e.kind(), ErrorKind::NotFound | ErrorKind::NotADirectory) => {
                problems.push(FileProblem::Missing {
                    field: l.file_field.clone(),
                    entry: l.entry.to_string(),
                });
                continue;
            }
            Err(e) => return Err(io_error(&path)(e)),
        };
        if !meta.is_file() {
            problems.push(FileProblem::NotAFile {
                field: l.file_field.clone(),
                entry: l.entry.to_string(),
            });
            continue;
        }
        let found = sha256_file(&path)?;
        if found != l.sha256 {
            problems.push(FileProblem::Mismatch {
                field: l.sha_field.clone(),
                entry: l.entry.to_string(),
                expected: l.sha256.to_string(),
                found,
            });
        }
    }

    let known: BTreeSet<&str> = listed.iter().map(|l| l.entry).collect();
    let mut present = Vec::new();
    walk(dir, "", true, &mut present)?;
    present.sort();
    problems.extend(
        present
            .into_iter()
            .filter(|(entry, utf8)| {
                !*utf8
                    || (entry != MANIFEST && entry != SIGNATURE && !known.contains(entry.as_str()))
            })
            .map(|(entry, _)| FileProblem::Extra { entry }),
    );

    if problems.is_empty() {
        Ok(())
    } else {
        Err(BundleError::Files {
            path: manifest_path.to_path_buf(),
            problems,
        })
    }
}

/// Every entry under `dir` that is not a folder (files, links, special
/// files), as `/`-separated paths below `prefix`, with whether the path is
/// UTF-8 (one that is not is shown lossily and can match no manifest entry).
/// Symbolic links are not followed, so the walk stays inside the bundle and
/// ends.
fn walk(
    dir: &Path,
    prefix: &str,
    utf8: bool,
    out: &mut Vec<(String, bool)>,
) -> Result<(), BundleError> {
    let entries = fs::read_dir(dir).map_err(io_error(dir))?;
    for entry in entries {
        let entry = entry.map_err(io_error(dir))?;
        let name = entry.file_name();
        let utf8 = utf8 && name.to_str().is_some();
        let name = name.to_string_lossy();
        let rel = if prefix.is_empty() {
            name.into_owned()
        } else {
            format!("{prefix}/{name}")
        };
        let path = entry.path();
        let kind = entry.file_type().map_err(io_error(&path))?;
        if kind.is_dir() {
            walk(&path, &rel, utf8, out)?;
        } else {
            out.push((rel, utf8));
        }
    }
    Ok(())
}

/// The sha256 of a file as 64 lowercase hex digits, read in chunks.
pub fn sha256_file(path: &Path) -> Result<String, BundleError> {
    let file = fs::File::open(path).map_err(io_error(path))?;
    sha256_of(file).map_err(io_error(path))
}

/// The sha256 of what `reader` yields, read in chunks of [`CHUNK`] bytes.
fn sha256_of(mut reader: impl Read) -> std::io::Result<String> {
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; CHUNK];
    loop {
        match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => hasher.update(&buf[..n]),
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    }
    Ok(hex(&hasher.finalize()))
}

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for &b in bytes {
        s.push(char::from(DIGITS[usize::from(b >> 4)]));
        s.push(char::from(DIGITS[usize::from(b & 0xf)]));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sha256_matches_the_fips_vectors() {
        let sha = |bytes: &[u8]| sha256_of(bytes).unwrap();
        assert_eq!(
            sha(b""),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert_eq!(
            sha(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        // Many chunks, the last one partial.
        assert_eq!(
            sha(&vec![b'a'; 1_000_000]),
            "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0"
        );
    }

    #[test]
    fn unreadable_files_are_io_errors() {
        let path = Path::new("/nonexistent/sammix/file.onnx");
        match sha256_file(path) {
            Err(BundleError::Io { path: p, .. }) => assert_eq!(p, path),
            other => panic!("expected Io, got {other:?}"),
        }
    }
}
