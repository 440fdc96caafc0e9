//! Bundle signatures: minisign (Ed25519) over the manifest.
//!
//! The manifest pins every other file of the bundle by its sha256 and no
//! unlisted file is allowed, so one signature over `sammix.toml` covers the
//! whole bundle. The signature is `sammix.toml.minisig` beside it, in
//! minisign's format: `minisign -Vm sammix.toml -p KEY.pub` checks it too.
//!
//! With no trusted key configured nothing is checked and the bundle is
//! reported as unverified. With one or more, a bundle runs only if its
//! signature was made by one of them over the exact manifest bytes that are
//! then parsed (read once, so the file cannot change between the two).

use std::fmt;
use std::fs;
use std::io::{Cursor, ErrorKind, Read, Write};
use std::path::{Path, PathBuf};

use minisign::{KeyPair, PublicKey, PublicKeyBox, SecretKey, SecretKeyBox, SignatureBox};
use serde::Serialize;

use super::{BundleError, MANIFEST};

/// The signature's file name, beside the manifest.
pub const SIGNATURE: &str = "sammix.toml.minisig";

/// The largest signature file read (a minisign signature is ~300 bytes; the
/// trusted comment makes it longer).
const MAX_SIGNATURE_BYTES: u64 = 16 * 1024;

/// The largest key file read.
const MAX_KEY_BYTES: u64 = 16 * 1024;

/// A key that could not be read: where it came from and why.
#[derive(Debug, thiserror::Error)]
#[error("{origin}: {reason}")]
pub struct KeyError {
    /// The key file, or the profile field, it came from.
    pub origin: String,
    /// What is wrong and what was expected.
    pub reason: String,
}

/// A public key whose signatures are trusted.
#[derive(Clone)]
pub struct TrustedKey {
    id: String,
    origin: String,
    key: PublicKey,
}

impl fmt::Debug for TrustedKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TrustedKey({} from {})", self.id, self.origin)
    }
}

/// minisign's key ID: the 8-byte key number as a little-endian u64 in hex.
fn key_id(keynum: &[u8]) -> String {
    let mut b = [0u8; 8];
    let n = keynum.len().min(8);
    b[..n].copy_from_slice(&keynum[..n]);
    format!("{:016X}", u64::from_le_bytes(b))
}

/// Reads at most `limit` bytes of a file as UTF-8; longer files are refused.
fn read_limited(path: &Path, limit: u64, what: &str) -> Result<String, std::io::Error> {
    let mut bytes = Vec::new();
    fs::File::open(path)?
        .take(limit + 1)
        .read_to_end(&mut bytes)?;
    if bytes.len() as u64 > limit {
        return Err(std::io::Error::new(
            ErrorKind::InvalidData,
            format!("longer than {limit} bytes: not a {what}"),
        ));
    }
    String::from_utf8(bytes).map_err(|_| {
        std::io::Error::new(ErrorKind::InvalidData, format!("not UTF-8: not a {what}"))
    })
}

impl TrustedKey {
    /// A key from the base64 line of a minisign `.pub` file; `origin` names
    /// where it was found in errors and reports.
    pub fn from_base64(text: &str, origin: &str) -> Result<TrustedKey, KeyError> {
        let text = text.trim();
        let key = PublicKey::from_base64(text).map_err(|e| KeyError {
            origin: origin.to_string(),
            reason: format!(
                "not a minisign public key ({e}): expected the 56-character base64 line of a .pub file"
            ),
        })?;
        // Ed25519 is the only algorithm minisign has; the bytes say so first.
        let bytes = key.to_bytes();
        if bytes.get(..2) != Some(b"Ed") {
            return Err(KeyError {
                origin: origin.to_string(),
                reason: "not a minisign Ed25519 public key (its algorithm bytes are not `Ed`)"
                    .to_string(),
            });
        }
        Ok(TrustedKey {
            id: key_id(key.keynum()),
            origin: origin.to_string(),
            key,
        })
    }

    /// A key from a minisign `.pub` file (a comment line, then the base64
    /// line) or a file holding only the base64 line.
    pub fn from_file(path: &Path) -> Result<TrustedKey, KeyError> {
        let origin = path.display().to_string();
        let text =
            read_limited(path, MAX_KEY_BYTES, "minisign public key").map_err(|e| KeyError {
                origin: origin.clone(),
                reason: format!("cannot read the public key: {e}"),
            })?;
        let line = text
            .lines()
            .map(str::trim)
            .find(|l| !l.is_empty() && !l.starts_with("untrusted comment:"))
            .unwrap_or("");
        TrustedKey::from_base64(line, &origin)
    }

    /// minisign's key ID (16 hex digits), as `minisign -V` prints it.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Where the key was configured.
    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// The base64 line of the key (what a board profile lists).
    pub fn to_base64(&self) -> String {
        self.key.to_base64()
    }
}

/// The keys whose signatures are accepted; empty: signatures are not
/// checked.
#[derive(Debug, Clone, Default)]
pub struct TrustedKeys {
    keys: Vec<TrustedKey>,
}

impl TrustedKeys {
    /// No key: bundles open unverified.
    pub fn none() -> TrustedKeys {
        TrustedKeys::default()
    }

    /// The keys of a board profile's `security.trusted_keys`.
    pub fn from_profile(profile: &crate::board::Profile) -> Result<TrustedKeys, KeyError> {
        let mut keys = TrustedKeys::none();
        for (i, k) in profile.trusted_keys.iter().enumerate() {
            let origin = format!("board profile {}: security.trusted_keys[{i}]", profile.name);
            keys.add(TrustedKey::from_base64(k, &origin)?);
        }
        Ok(keys)
    }

    /// Adds a key (one already present, same ID and key, is not added twice).
    pub fn add(&mut self, key: TrustedKey) {
        let same = |k: &TrustedKey| k.id == key.id && k.key.to_bytes() == key.key.to_bytes();
        if !self.keys.iter().any(same) {
            self.keys.push(key);
        }
    }

    /// Whether no key is configured.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// The keys, in the order added.
    pub fn keys(&self) -> &[TrustedKey] {
        &self.keys
    }

    /// The key IDs, comma-separated.
    fn ids(&self) -> String {
        let ids: Vec<&str> = self.keys.iter().map(|k| k.id.as_str()).collect();
        ids.join(", ")
    }
}

/// What is known about who made a bundle.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum Provenance {
    /// Signed by a trusted key, and the signature matches the manifest.
    Verified {
        /// The key's ID.
        key_id: String,
        /// Where the key was configured.
        key_origin: String,
        /// The signed comment (`timestamp:…<TAB>file:sammix.toml<TAB>bundle:…`).
        trusted_comment: String,
    },
    /// No trusted key is configured, so nothing was checked.
    Unverified {
        /// What the bundle holds.
        signature: SignatureFound,
    },
}

/// The signature file of a bundle opened without trusted keys.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "found", rename_all = "snake_case")]
pub enum SignatureFound {
    /// No `sammix.toml.minisig`.
    Absent,
    /// A signature by this key ID (not checked).
    Present {
        /// The key ID it names.
        key_id: String,
    },
    /// A file that is not a minisign signature.
    Unreadable {
        /// Why.
        reason: String,
    },
}

impl fmt::Display for Provenance {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Provenance::Verified {
                key_id, key_origin, ..
            } => write!(f, "verified: signed by trusted key {key_id} ({key_origin})"),
            Provenance::Unverified { signature } => {
                write!(f, "unverified (no trusted key configured): ")?;
                match signature {
                    SignatureFound::Absent => write!(f, "the bundle is not signed"),
                    SignatureFound::Present { key_id } => {
                        write!(f, "signed by key {key_id}, not checked")
                    }
                    SignatureFound::Unreadable { reason } => {
                        write!(f, "{SIGNATURE} is not a minisign signature ({reason})")
                    }
                }
            }
        }
    }
}

/// Bytes a base64 line decodes to, if its length is a valid padded one.
fn base64_len(line: &str) -> Option<usize> {
    let l = line.trim();
    if l.is_empty() || !l.len().is_multiple_of(4) {
        return None;
    }
    let pad = l.bytes().rev().take_while(|&b| b == b'=').count();
    (pad <= 2).then(|| l.len() / 4 * 3 - pad)
}

/// Parses a signature file. The lengths minisign's verification assumes
/// (a 74-byte signature line, a 64-byte global signature) are checked here
/// first: the `minisign` crate (0.10) panics on a global signature of
/// another length (found by fuzzing); the parse and the verification also
/// run under `catch_unwind` ([`contained`]), so a panic left in the crate is
/// an error, not a crash.
fn parse_signature(text: &str) -> Result<SignatureBox, String> {
    let lines: Vec<&str> = text.lines().collect();
    if lines.len() >= 4 {
        let want = [(1, 2 + 8 + 64, "signature"), (3, 64, "global signature")];
        for (i, len, what) in want {
            match base64_len(lines[i]) {
                Some(n) if n == len => {}
                Some(n) => return Err(format!("its {what} line holds {n} bytes, expected {len}")),
                None => return Err(format!("its {what} line is not base64")),
            }
        }
    }
    contained(|| SignatureBox::from_string(text).map_err(|e| e.to_string()))
}

/// Runs `f`, turning a panic inside the `minisign` crate into an error.
fn contained<T>(f: impl FnOnce() -> Result<T, String>) -> Result<T, String> {
    crate::graph::contain_panic(f)
        .unwrap_or_else(|m| Err(format!("the minisign crate panicked on this file ({m})")))
}

/// Checks the signature of the manifest bytes `manifest` of the bundle at
/// `dir` against `keys` (see the module docs).
pub(super) fn check(
    dir: &Path,
    manifest_path: &Path,
    manifest: &[u8],
    keys: &TrustedKeys,
) -> Result<Provenance, BundleError> {
    let path = dir.join(SIGNATURE);
    let text = match read_limited(&path, MAX_SIGNATURE_BYTES, "minisign signature") {
        Ok(t) => Some(t),
        Err(e) if e.kind() == ErrorKind::NotFound => None,
        Err(e) if e.kind() == ErrorKind::InvalidData => {
            if keys.is_empty() {
                return Ok(Provenance::Unverified {
                    signature: SignatureFound::Unreadable {
                        reason: e.to_string(),
                    },
                });
            }
            return Err(BundleError::BadSignatureFile {
                path,
                reason: e.to_string(),
            });
        }
        Err(source) => return Err(BundleError::Io { path, source }),
    };
    if keys.is_empty() {
        let signature = match text.as_deref().map(parse_signature) {
            None => SignatureFound::Absent,
            Some(Ok(sig)) => SignatureFound::Present {
                key_id: key_id(sig.keynum()),
            },
            Some(Err(reason)) => SignatureFound::Unreadable { reason },
        };
        return Ok(Provenance::Unverified { signature });
    }
    let Some(text) = text else {
        return Err(BundleError::Unsigned {
            path: manifest_path.to_path_buf(),
            trusted: keys.ids(),
        });
    };
    let sig = parse_signature(&text).map_err(|reason| BundleError::BadSignatureFile {
        path: path.clone(),
        reason,
    })?;
    let id = key_id(sig.keynum());
    let candidates: Vec<&TrustedKey> = keys.keys.iter().filter(|k| k.id == id).collect();
    if candidates.is_empty() {
        return Err(BundleError::UntrustedKey {
            path,
            key_id: id,
            trusted: keys.ids(),
        });
    }
    let mut reason = String::new();
    for key in candidates {
        let verified = contained(|| {
            minisign::verify(&key.key, &sig, Cursor::new(manifest), true, false, false)
                .map_err(|e| e.to_string())
        });
        match verified {
            Ok(()) => {
                return Ok(Provenance::Verified {
                    key_id: id,
                    key_origin: key.origin.clone(),
                    trusted_comment: sig.trusted_comment().unwrap_or_default(),
                })
            }
            Err(e) => reason = e,
        }
    }
    Err(BundleError::SignatureMismatch {
        path,
        key_id: id,
        reason,
    })
}

/// How a new secret key is stored.
#[derive(Debug, Clone)]
pub enum Protection {
    /// Without a password (CI, tests).
    None,
    /// Encrypted with this password (scrypt, as minisign does).
    Password(String),
    /// Encrypted with a password asked for on the terminal.
    AskOnTerminal,
}

/// A secret key to sign bundles with.
pub struct SigningKey {
    key: SecretKey,
    public: PublicKey,
}

/// An error reading, making or using a signing key.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SignError {
    /// The key file cannot be read or is not a minisign secret key (or the
    /// password is wrong).
    #[error("{}: {reason}", path.display())]
    Key {
        /// The secret key file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// The bundle does not pass its checks: it is not signed.
    #[error("refusing to sign: {0}")]
    Bundle(#[from] BundleError),
    /// A file could not be written.
    #[error("{}: cannot write: {source}", path.display())]
    Write {
        /// The file.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
    /// minisign failed to make a key or a signature.
    #[error("minisign: {0}")]
    Minisign(String),
}

impl SigningKey {
    /// Reads a minisign secret key file. An encrypted key needs its
    /// password: `password`, else it is asked for on the terminal.
    pub fn from_file(path: &Path, password: Option<String>) -> Result<SigningKey, SignError> {
        let err = |reason: String| SignError::Key {
            path: path.to_path_buf(),
            reason,
        };
        let text = read_limited(path, MAX_KEY_BYTES, "minisign secret key")
            .map_err(|e| err(format!("cannot read the secret key: {e}")))?;
        let sk_box = SecretKeyBox::from_string(&text)
            .map_err(|e| err(format!("not a minisign secret key: {e}")))?;
        // The key's second line is base64 of `Ed`, then the KDF: two zero
        // bytes (`RWQAA…`) for a key without a password, `Sc` (scrypt,
        // `RWRTY…`) for an encrypted one.
        let encrypted = text
            .lines()
            .nth(1)
            .is_some_and(|l| l.trim_start().starts_with("RWRTY"));
        let key = if encrypted {
            SecretKey::from_box(sk_box, password)
                .map_err(|e| err(format!("not a usable minisign secret key: {e}")))?
        } else {
            SecretKey::from_unencrypted_box(sk_box).map_err(|e| {
                err(format!(
                    "not a usable minisign secret key: {e} (the minisign crate does not read the \
                     passwordless keys of `minisign -G -W` 0.11: make the key with `sammix bundle \
                     keygen`, or give it a password)"
                ))
            })?
        };
        let public = PublicKey::from_secret_key(&key)
            .map_err(|e| err(format!("not a usable minisign secret key: {e}")))?;
        Ok(SigningKey { key, public })
    }

    /// Makes a key pair and writes `PREFIX.key` (the secret key, mode 0600,
    /// protected as `protection` says) and `PREFIX.pub`; existing files are
    /// not overwritten.
    pub fn generate(prefix: &Path, protection: Protection) -> Result<TrustedKey, SignError> {
        let pair = match protection {
            Protection::Password(p) => KeyPair::generate_encrypted_keypair(Some(p)),
            Protection::AskOnTerminal => KeyPair::generate_encrypted_keypair(None),
            Protection::None => KeyPair::generate_unencrypted_keypair(),
        }
        .map_err(|e| SignError::Minisign(e.to_string()))?;
        let pk_text = pair
            .pk
            .to_box()
            .map_err(|e| SignError::Minisign(e.to_string()))?
            .into_string();
        write_pair(prefix, &pair.sk, &pk_text)
    }

    /// The public key of this secret key.
    pub fn public_key(&self) -> TrustedKey {
        TrustedKey {
            id: key_id(self.public.keynum()),
            origin: "the signing key".to_string(),
            key: self.public.clone(),
        }
    }
}

fn write_pair(prefix: &Path, sk: &SecretKey, pk_text: &str) -> Result<TrustedKey, SignError> {
    let sk_text = sk
        .to_box(None)
        .map_err(|e| SignError::Minisign(e.to_string()))?
        .into_string();
    let key_path = prefix.with_extension("key");
    let pub_path = prefix.with_extension("pub");
    write_new(&key_path, sk_text.as_bytes(), true)?;
    write_new(&pub_path, pk_text.as_bytes(), false)?;
    let pk = PublicKeyBox::from_string(pk_text)
        .and_then(PublicKeyBox::into_public_key)
        .map_err(|e| SignError::Minisign(e.to_string()))?;
    Ok(TrustedKey {
        id: key_id(pk.keynum()),
        origin: pub_path.display().to_string(),
        key: pk,
    })
}

/// Writes a file that must not exist yet (`secret`: readable by its owner
/// only).
fn write_new(path: &Path, bytes: &[u8], secret: bool) -> Result<(), SignError> {
    let mut opts = fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    if secret {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    #[cfg(not(unix))]
    let _ = secret;
    let werr = |source| SignError::Write {
        path: path.to_path_buf(),
        source,
    };
    let mut f = opts.open(path).map_err(werr)?;
    f.write_all(bytes).map_err(werr)?;
    f.sync_all().map_err(werr)
}

/// A signature made by [`sign`].
#[derive(Debug, Clone)]
pub struct Signed {
    /// The signature file written.
    pub path: PathBuf,
    /// The signing key's ID.
    pub key_id: String,
    /// The signed comment.
    pub trusted_comment: String,
}

/// Signs the bundle at `dir`: its manifest is read once, checked with every
/// file it lists (a bundle that fails its checks is not signed), and those
/// bytes are signed into `sammix.toml.minisig` (written beside, then
/// renamed over any previous signature). `comment` replaces the default
/// trusted comment `timestamp:…<TAB>file:sammix.toml<TAB>bundle:NAME`.
pub fn sign(dir: &Path, key: &SigningKey, comment: Option<&str>) -> Result<Signed, SignError> {
    let (manifest_path, bytes) = super::read_manifest_bytes(dir)?;
    let manifest = super::Manifest::from_bytes(&bytes, &manifest_path)?;
    super::files::check(dir, &manifest_path, &manifest)?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let comment = comment.map_or_else(
        || format!("timestamp:{now}\tfile:{MANIFEST}\tbundle:{}", manifest.name),
        str::to_string,
    );
    if comment.contains(['\n', '\r']) {
        return Err(SignError::Minisign(
            "the trusted comment must be one line".to_string(),
        ));
    }
    let sig = minisign::sign(
        Some(&key.public),
        &key.key,
        Cursor::new(&bytes),
        Some(&comment),
        Some("signature from sammix bundle sign"),
    )
    .map_err(|e| SignError::Minisign(e.to_string()))?;
    let path = dir.join(SIGNATURE);
    let tmp = dir.join(format!(".{SIGNATURE}.tmp"));
    let _ = fs::remove_file(&tmp);
    write_new(&tmp, sig.into_string().as_bytes(), false)?;
    fs::rename(&tmp, &path).map_err(|source| SignError::Write {
        path: path.clone(),
        source,
    })?;
    Ok(Signed {
        path,
        key_id: key_id(key.public.keynum()),
        trusted_comment: comment,
    })
}
