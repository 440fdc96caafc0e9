//! Bundle signatures: a bundle signed by the minisign tool verifies here;
//! one signed here verifies with the same key; every tampering we try is
//! refused with a message naming the file and the key; without a trusted
//! key the bundle opens, reported unverified.
//!
//! `tests/data/signing/` holds a bundle folder with placeholder graphs
//! (hashed, never loaded), signed by `minisign -S` with `trusted.key`, and a
//! second key pair, `other`, that no test trusts (both made by `sammix
//! bundle keygen --no-password`, which the minisign tool reads too). The
//! keys are test keys without a password: never use them for anything else.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use sammix::board::Profile;
use sammix::bundle::signature::{self, SignError, SignatureFound, SigningKey};
use sammix::bundle::{
    Bundle, BundleError, FileProblem, Provenance, TrustedKey, TrustedKeys, MANIFEST, SIGNATURE,
};

fn data() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/signing")
}

fn key(name: &str) -> TrustedKey {
    TrustedKey::from_file(&data().join(format!("{name}.pub"))).unwrap_or_else(|e| panic!("{e}"))
}

fn keys(names: &[&str]) -> TrustedKeys {
    let mut k = TrustedKeys::none();
    for n in names {
        k.add(key(n));
    }
    k
}

fn signing_key(name: &str) -> SigningKey {
    SigningKey::from_file(&data().join(format!("{name}.key")), None)
        .unwrap_or_else(|e| panic!("{e}"))
}

/// A copy of the signed fixture bundle in a temporary folder (removed on
/// drop).
struct Copy(PathBuf);

impl Copy {
    fn new(name: &str) -> Copy {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let dir =
            std::env::temp_dir().join(format!("sammix-sign-{}-{n}-{name}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        for e in fs::read_dir(data().join("bundle")).unwrap() {
            let e = e.unwrap();
            fs::copy(e.path(), dir.join(e.file_name())).unwrap();
        }
        Copy(dir)
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.0.join(rel)
    }

    fn read(&self, rel: &str) -> String {
        fs::read_to_string(self.path(rel)).unwrap()
    }

    fn write(&self, rel: &str, text: &str) {
        fs::write(self.path(rel), text).unwrap();
    }
}

impl Drop for Copy {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

fn refused(dir: &Path, keys: &TrustedKeys) -> BundleError {
    match Bundle::open_trusted(dir, keys) {
        Ok(b) => panic!("opened, {}", b.provenance()),
        Err(e) => e,
    }
}

fn assert_names(e: &BundleError, needles: &[&str]) {
    let msg = e.to_string();
    for n in needles {
        assert!(msg.contains(n), "{n:?} not in: {msg}");
    }
}

#[test]
fn a_bundle_signed_by_the_minisign_tool_verifies() {
    let b = Bundle::open_trusted(data().join("bundle"), &keys(&["trusted"])).unwrap();
    match b.provenance() {
        Provenance::Verified {
            key_id,
            key_origin,
            trusted_comment,
        } => {
            assert_eq!(key_id, key("trusted").id());
            assert!(key_origin.ends_with("trusted.pub"), "{key_origin}");
            assert_eq!(
                trusted_comment,
                "timestamp:1796400000\tfile:sammix.toml\tsigned by the minisign tool"
            );
        }
        p => panic!("{p}"),
    }
    assert_eq!(b.manifest().name, "signature-fixture");
}

#[test]
fn without_a_trusted_key_a_bundle_opens_unverified() {
    let b = Bundle::open(data().join("bundle")).unwrap();
    assert_eq!(
        b.provenance(),
        &Provenance::Unverified {
            signature: SignatureFound::Present {
                key_id: key("trusted").id().to_string()
            }
        }
    );
    let c = Copy::new("unsigned-open");
    fs::remove_file(c.path(SIGNATURE)).unwrap();
    let b = Bundle::open(&c.0).unwrap();
    assert_eq!(
        b.provenance(),
        &Provenance::Unverified {
            signature: SignatureFound::Absent
        }
    );
    assert!(b.provenance().to_string().contains("not signed"));
    c.write(SIGNATURE, "garbage\n");
    let b = Bundle::open(&c.0).unwrap();
    assert!(matches!(
        b.provenance(),
        Provenance::Unverified {
            signature: SignatureFound::Unreadable { .. }
        }
    ));
}

#[test]
fn an_unsigned_bundle_is_refused_when_a_key_is_trusted() {
    let c = Copy::new("unsigned");
    fs::remove_file(c.path(SIGNATURE)).unwrap();
    let e = refused(&c.0, &keys(&["trusted"]));
    assert!(matches!(e, BundleError::Unsigned { .. }), "{e:?}");
    assert_names(
        &e,
        &[MANIFEST, SIGNATURE, "not signed", key("trusted").id()],
    );
}

#[test]
fn a_bundle_re_signed_by_another_key_is_refused() {
    let c = Copy::new("re-signed");
    signature::sign(&c.0, &signing_key("other"), None).unwrap();
    let e = refused(&c.0, &keys(&["trusted"]));
    assert!(matches!(e, BundleError::UntrustedKey { .. }), "{e:?}");
    assert_names(
        &e,
        &[
            SIGNATURE,
            key("other").id(),
            key("trusted").id(),
            "does not trust",
        ],
    );
    // The same bundle verifies where that key is trusted.
    Bundle::open_trusted(&c.0, &keys(&["other"])).unwrap();
}

/// Every change to the manifest or its signature after signing.
#[test]
fn every_tampering_is_refused() {
    let trusted = keys(&["trusted"]);
    type Tamper = fn(&Copy);
    let cases: &[(&str, Tamper)] = &[
        ("a manifest value changed", |c| {
            let m = c
                .read(MANIFEST)
                .replace("cam_threshold = 0.4", "cam_threshold = 0.9");
            c.write(MANIFEST, &m);
        }),
        ("a comment appended to the manifest", |c| {
            c.write(MANIFEST, &(c.read(MANIFEST) + "# harmless?\n"));
        }),
        ("a graph's digest re-pinned in the manifest", |c| {
            c.write("decoder.onnx", "another decoder\n");
            let old = sammix::bundle::sha256_file(&data().join("bundle/decoder.onnx")).unwrap();
            let new = sammix::bundle::sha256_file(&c.path("decoder.onnx")).unwrap();
            c.write(MANIFEST, &c.read(MANIFEST).replace(&old, &new));
        }),
        ("the trusted comment edited", |c| {
            let s = c
                .read(SIGNATURE)
                .replace("timestamp:1796400000", "timestamp:1999999999");
            c.write(SIGNATURE, &s);
        }),
        ("one signature character changed", |c| {
            let s = c.read(SIGNATURE);
            let mut lines: Vec<String> = s.lines().map(str::to_string).collect();
            let sig = &mut lines[1];
            let last = sig.len() - 10;
            let ch = if &sig[last..=last] == "A" { "B" } else { "A" };
            sig.replace_range(last..=last, ch);
            c.write(SIGNATURE, &(lines.join("\n") + "\n"));
        }),
        (
            "the signature of another manifest by the trusted key",
            |c| {
                let other = Copy::new("other-manifest");
                let m = other
                    .read(MANIFEST)
                    .replace("signature-fixture", "another-bundle");
                other.write(MANIFEST, &m);
                signature::sign(&other.0, &signing_key("trusted"), None).unwrap();
                fs::copy(other.path(SIGNATURE), c.path(SIGNATURE)).unwrap();
            },
        ),
    ];
    for (what, tamper) in cases {
        let c = Copy::new("tamper");
        tamper(&c);
        let e = refused(&c.0, &trusted);
        assert!(
            matches!(e, BundleError::SignatureMismatch { .. }),
            "{what}: {e:?}"
        );
        assert_names(&e, &[SIGNATURE, key("trusted").id(), "does not match"]);
    }
}

#[test]
fn a_file_changed_after_signing_is_refused_by_its_digest() {
    let trusted = keys(&["trusted"]);
    let c = Copy::new("graph");
    c.write("encoder.onnx", "a swapped encoder\n");
    let e = refused(&c.0, &trusted);
    match &e {
        BundleError::Files { problems, .. } => assert!(
            matches!(&problems[..], [FileProblem::Mismatch { entry, .. }] if entry == "encoder.onnx"),
            "{problems:?}"
        ),
        e => panic!("{e:?}"),
    }
    let c = Copy::new("extra");
    c.write("extra.onnx", "a file the manifest does not list\n");
    let e = refused(&c.0, &trusted);
    assert_names(&e, &["extra file \"extra.onnx\""]);
}

#[test]
fn malformed_signature_files_are_refused_by_name() {
    let trusted = keys(&["trusted"]);
    let c = Copy::new("garbage");
    for text in [
        String::new(),
        "not a signature\n".to_string(),
        "untrusted comment: x\n!!!not base64!!!\ntrusted comment: x\nAAAA\n".to_string(),
        "untrusted comment: x\nAAAA\ntrusted comment: x\nAAAA\n".to_string(),
        format!(
            "untrusted comment: {}\n",
            "x".repeat(20_000) // longer than any signature
        ),
    ] {
        c.write(SIGNATURE, &text);
        let e = refused(&c.0, &trusted);
        assert!(
            matches!(e, BundleError::BadSignatureFile { .. }),
            "{text:.40?}: {e:?}"
        );
        assert_names(&e, &[SIGNATURE, "not a minisign signature"]);
    }
    // A global signature of 33 bytes, not 64: the minisign crate (0.10)
    // panicked on it (found by fuzzing).
    let good = fs::read_to_string(data().join("bundle").join(SIGNATURE)).unwrap();
    let mut lines: Vec<String> = good.lines().map(str::to_string).collect();
    lines[3] = "A".repeat(44);
    c.write(SIGNATURE, &(lines.join("\n") + "\n"));
    let e = refused(&c.0, &trusted);
    assert!(matches!(e, BundleError::BadSignatureFile { .. }), "{e:?}");
    assert_names(&e, &["global signature line holds 33 bytes, expected 64"]);
    // Not UTF-8.
    fs::write(c.path(SIGNATURE), [0xff, 0xfe, 0x00, 0x80]).unwrap();
    assert!(matches!(
        refused(&c.0, &trusted),
        BundleError::BadSignatureFile { .. }
    ));
}

#[test]
fn signed_here_verifies_and_rotation_accepts_either_key() {
    let c = Copy::new("sign");
    let signed = signature::sign(&c.0, &signing_key("other"), Some("release 7")).unwrap();
    assert_eq!(signed.key_id, key("other").id());
    assert_eq!(signed.path, c.path(SIGNATURE));
    // Both keys trusted (a rotation): a bundle signed by either opens.
    let both = keys(&["trusted", "other"]);
    match Bundle::open_trusted(&c.0, &both).unwrap().provenance() {
        Provenance::Verified {
            key_id,
            trusted_comment,
            ..
        } => {
            assert_eq!(key_id, key("other").id());
            assert_eq!(trusted_comment, "release 7");
        }
        p => panic!("{p}"),
    }
    Bundle::open_trusted(data().join("bundle"), &both).unwrap();
    // The default comment names the bundle.
    let signed = signature::sign(&c.0, &signing_key("trusted"), None).unwrap();
    assert!(signed.trusted_comment.starts_with("timestamp:"));
    assert!(signed
        .trusted_comment
        .ends_with("\tfile:sammix.toml\tbundle:signature-fixture"));
    Bundle::open_trusted(&c.0, &keys(&["trusted"])).unwrap();
}

#[test]
fn a_bundle_that_fails_its_checks_is_not_signed() {
    let c = Copy::new("broken");
    c.write("classifier.onnx", "changed before signing\n");
    let before = c.read(SIGNATURE);
    match signature::sign(&c.0, &signing_key("trusted"), None) {
        Err(SignError::Bundle(BundleError::Files { .. })) => {}
        r => panic!("{r:?}"),
    }
    assert_eq!(c.read(SIGNATURE), before, "the old signature was replaced");
    let e = signature::sign(&c.0, &signing_key("trusted"), Some("two\nlines")).unwrap_err();
    assert!(e.to_string().contains("refusing to sign"), "{e}");
}

#[test]
fn keys_that_are_not_minisign_keys_are_refused_by_origin() {
    for bad in [
        "",
        "RWQ",
        "not base64 at all, but exactly fifty-six characters long!",
        // 56 base64 characters whose bytes do not start with `Ed`.
        "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
    ] {
        let e = TrustedKey::from_base64(bad, "profile x: security.trusted_keys[0]").unwrap_err();
        let msg = e.to_string();
        assert!(
            msg.starts_with("profile x: security.trusted_keys[0]: not a minisign"),
            "{msg}"
        );
    }
    let e = TrustedKey::from_file(&data().join("trusted.key")).unwrap_err();
    assert!(e.to_string().contains("trusted.key"), "{e}");
    // A passwordless key made by the minisign tool (0.11): refused by name,
    // with the way out (its checksum differs from what the crate computes).
    let e = SigningKey::from_file(&data().join("minisign-tool-nopassword.key"), None)
        .err()
        .expect("the crate reads minisign -W keys now: drop this case and the note");
    let msg = e.to_string();
    assert!(msg.contains("minisign-tool-nopassword.key"), "{msg}");
    assert!(msg.contains("sammix bundle keygen"), "{msg}");
    let e = SigningKey::from_file(&data().join("trusted.pub"), None)
        .err()
        .expect("a public key is not a secret key");
    assert!(e.to_string().contains("trusted.pub"), "{e}");
}

/// Every shipped board profile's keys are keys (the build script checks
/// only their form).
#[test]
fn every_board_profile_key_parses() {
    let boards = Path::new(env!("CARGO_MANIFEST_DIR")).join("board");
    for e in fs::read_dir(&boards).unwrap() {
        let path = e.unwrap().path();
        if path.extension().and_then(|x| x.to_str()) != Some("toml") {
            continue;
        }
        let text = fs::read_to_string(&path).unwrap();
        let p = Profile::parse(&path.display().to_string(), &text).unwrap();
        let keys = TrustedKeys::from_profile(&p).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(keys.keys().len(), p.trusted_keys.len());
    }
    let mut p = sammix::board::profile::current().clone();
    p.trusted_keys = vec![key("trusted").to_base64().into()].into();
    let k = TrustedKeys::from_profile(&p).unwrap();
    assert_eq!(k.keys()[0].id(), key("trusted").id());
    assert!(k.keys()[0].origin().contains("security.trusted_keys[0]"));
}
