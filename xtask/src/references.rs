//! The reference files the parity checks compare with: running the Python script that writes
//! them, and reading them back (`manifest.json`, little-endian `f32` arrays).

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};
use serde_json::Value;

/// The repository, where `xtask/python` lives: `$ZOO_ROOT` when set (the GPU bundle sets it to
/// the bundle's folder), else the checkout this binary was built from.
pub fn workspace_root() -> PathBuf {
    match std::env::var_os("ZOO_ROOT") {
        Some(root) => PathBuf::from(root),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join(".."),
    }
}

/// Runs `xtask/python/<script> --out <out> <args>` with `python`; the script leaves references
/// that are already current as they are.
pub fn run_reference_script(
    python: &Path,
    script: &str,
    out: &Path,
    args: &[String],
) -> Result<()> {
    let script = workspace_root().join("xtask/python").join(script);
    let status = Command::new(python)
        .arg(&script)
        .arg("--out")
        .arg(out)
        .args(args)
        .status()
        .with_context(|| format!("running {} {}", python.display(), script.display()))?;
    if !status.success() {
        bail!("{} failed ({status})", script.display());
    }
    Ok(())
}

pub fn read_manifest(dir: &Path) -> Result<Value> {
    let path = dir.join("manifest.json");
    let text =
        std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))
}

pub fn read_f32(path: &Path, shape: &[usize]) -> Result<Vec<f32>> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let expected = shape.iter().product::<usize>() * 4;
    if bytes.len() != expected {
        bail!(
            "{}: {} bytes, expected {expected} for shape {shape:?}",
            path.display(),
            bytes.len()
        );
    }
    Ok(bytes
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect())
}
