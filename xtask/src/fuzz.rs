//! `cargo xtask fuzz --seconds N`: the readers' fuzz tests (`import/tests/fuzz.rs`, weight files
//! and images, and `trainer/tests/fuzz.rs`, a run directory's JSON files; both part of
//! `cargo test`) run for N seconds each from a fresh seed instead of their fixed cases. It prints
//! the seed and the counts (cases, reads, errors, panics per reader); a failing seed reproduces
//! with `--seed`.

use std::process::Command;

use anyhow::{Context, Result};
use clap::Args;

#[derive(Args)]
pub struct FuzzArgs {
    /// How long to fuzz.
    #[arg(long, default_value_t = 60.0)]
    seconds: f64,
    /// The mutation stream's seed (default: from the clock, printed).
    #[arg(long)]
    seed: Option<u64>,
}

pub fn run(args: &FuzzArgs) -> Result<bool> {
    let seed = match args.seed {
        Some(seed) => seed,
        None => std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)?
            .as_nanos() as u64,
    };
    println!(
        "fuzzing the readers for {} s each, seed {seed}",
        args.seconds
    );
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut success = true;
    // The weight files and images; then a run directory's JSON files.
    for (package, test) in [
        ("zoo-import", "fuzz_every_reader_errs_without_panicking"),
        (
            "zoo-trainer",
            "fuzz_run_directory_files_err_without_panicking",
        ),
    ] {
        let status = Command::new(&cargo)
            .current_dir(crate::references::workspace_root())
            .args(["test", "-p", package, "--test", "fuzz", test])
            .args(["--", "--nocapture"])
            .env("ZOO_FUZZ_SECONDS", args.seconds.to_string())
            .env("ZOO_FUZZ_SEED", seed.to_string())
            .status()
            .context("running cargo test")?;
        success &= status.success();
    }
    if !success {
        println!(
            "fuzz failed; reproduce with: cargo xtask fuzz --seconds {} --seed {seed}",
            args.seconds
        );
    }
    Ok(success)
}
