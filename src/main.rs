//! `sammix`: segment ultrasound or endoscope frames with a SAM-Mix bundle.
//!
//! With no arguments it runs the bundled model on the bundled demo clip and
//! prints what it did (`sammix run`). See `sammix --help`.

use std::process::ExitCode;

use clap::Parser;

mod cli;

fn main() -> ExitCode {
    let args = cli::Cli::parse();
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or(args.log_level()))
        .format_timestamp_millis()
        .init();
    match cli::main(args) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}
