//! `sammix bundle sign | verify | keygen`: bundle signatures (minisign).

use std::process::ExitCode;

use anyhow::Context;
use sammix::bundle::signature::{self, Protection, SigningKey};
use sammix::bundle::{Bundle, Provenance};
use serde_json::json;

use super::{common, KeygenArgs, SignArgs, VerifyArgs, PASSWORD_ENV};

fn password() -> Option<String> {
    std::env::var(PASSWORD_ENV).ok()
}

pub fn sign(args: SignArgs) -> anyhow::Result<ExitCode> {
    let key = SigningKey::from_file(&args.secret_key, password())?;
    let signed = signature::sign(&args.bundle, &key, args.comment.as_deref())?;
    outln!(
        "signed {} with key {}: {}",
        args.bundle.display(),
        signed.key_id,
        signed.path.display()
    );
    outln!("  trusted comment: {}", signed.trusted_comment);
    Ok(ExitCode::SUCCESS)
}

pub fn verify(args: VerifyArgs) -> anyhow::Result<ExitCode> {
    let dir = common::bundle_dir(&args.bundle);
    let keys = common::trusted_keys(&args.bundle)?;
    if keys.is_empty() {
        anyhow::bail!(
            "no trusted key: give one with --trusted-key KEY.pub or list it in the board \
             profile's security.trusted_keys"
        );
    }
    let bundle = Bundle::open_trusted(&dir, &keys)
        .with_context(|| format!("bundle {} is not verified", dir.display()))?;
    let p = bundle.provenance();
    if args.json {
        outln!(
            "{}",
            serde_json::to_string_pretty(&json!({
                "bundle": dir.display().to_string(),
                "name": bundle.manifest().name,
                "signature": p,
            }))?
        );
    } else {
        outln!("bundle {} ({}): {p}", bundle.manifest().name, dir.display());
        if let Provenance::Verified {
            trusted_comment, ..
        } = p
        {
            outln!("  trusted comment: {trusted_comment}");
        }
        outln!("  every file's sha256 matches the signed manifest");
    }
    Ok(ExitCode::SUCCESS)
}

pub fn keygen(args: KeygenArgs) -> anyhow::Result<ExitCode> {
    let protection = match (args.no_password, password()) {
        (true, _) => Protection::None,
        (false, Some(p)) => Protection::Password(p),
        (false, None) => Protection::AskOnTerminal,
    };
    let public = SigningKey::generate(&args.prefix, protection)?;
    outln!(
        "key {}: secret key {}, public key {}",
        public.id(),
        args.prefix.with_extension("key").display(),
        public.origin()
    );
    outln!(
        "  for a board profile's [security] trusted_keys: \"{}\"",
        public.to_base64()
    );
    Ok(ExitCode::SUCCESS)
}
