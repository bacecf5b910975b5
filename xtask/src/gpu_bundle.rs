//! `cargo xtask gpu-bundle`: everything the GPU check needs on a bare GPU machine (no Rust, no
//! network, Python with torch already there), in one folder under 64 MiB:
//!
//! - `bin/xtask.xz`, `bin/zoo-train.xz`: release builds with the wgpu backend, stripped and
//!   compressed;
//! - `xtask/python/`: the reference and benchmark scripts (`ZOO_ROOT` points there);
//! - `debs/`: Debian's Vulkan loader (`libvulkan1`) and GL dispatch libraries, unpacked by
//!   `run.sh` where the machine has no loader;
//! - `run.sh`: the driver (`xtask/gpu/run.sh`): parity on wgpu against PyTorch on that machine,
//!   inference and training speed beside PyTorch eager CUDA, and a short `zoo-train` run, as
//!   tables under `$OUT`.
//!
//! `--check` then runs `run.sh --quick` here (wgpu on lavapipe), so that the first call on a GPU
//! machine is not the first time the bundle runs.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

use crate::references::workspace_root;

/// What may travel to the GPU machine with the working tree.
const MAX_BUNDLE_BYTES: u64 = 64 << 20;

/// Debian's Vulkan loader, and the GL dispatch libraries NVIDIA's Vulkan driver loads (the
/// lending workplace's list for headless Vulkan on its GPU machines).
const DEBS: [&str; 7] = [
    "libvulkan1",
    "libegl1",
    "libglvnd0",
    "libopengl0",
    "libgl1",
    "libglx0",
    "libgles2",
];

/// Arguments of `cargo xtask gpu-bundle`.
#[derive(clap::Args)]
pub struct GpuBundleArgs {
    /// Where the bundle goes (inside the repository, so that it can travel; git ignores it).
    #[arg(long, default_value = "gpu-bundle")]
    out: PathBuf,
    /// Then run the bundle's quick mode here, on this machine's wgpu adapter (lavapipe).
    #[arg(long)]
    check: bool,
    /// Use binaries already built (`cargo build --release -p xtask -p zoo-trainer --bins`)
    /// instead of building them.
    #[arg(long)]
    no_build: bool,
}

/// Builds the bundle; with `--check`, runs its quick mode.
pub fn run(args: &GpuBundleArgs) -> Result<bool> {
    let root = workspace_root();
    let out = if args.out.is_absolute() {
        args.out.clone()
    } else {
        root.join(&args.out)
    };
    if !args.no_build {
        let status = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
            .current_dir(&root)
            .args([
                "build",
                "--release",
                "-p",
                "xtask",
                "-p",
                "zoo-trainer",
                "--bins",
            ])
            .status()
            .context("running cargo build --release")?;
        if !status.success() {
            bail!("the release build failed ({status})");
        }
    }
    let release = target_dir(&root).join("release");

    if out.exists() {
        std::fs::remove_dir_all(&out).with_context(|| format!("clearing {}", out.display()))?;
    }
    let bin = out.join("bin");
    std::fs::create_dir_all(&bin)?;
    for name in ["xtask", "zoo-train"] {
        let from = release.join(name);
        let to = bin.join(name);
        std::fs::copy(&from, &to).with_context(|| {
            format!(
                "copying {} (build it with `cargo build --release -p xtask -p zoo-trainer --bins`)",
                from.display()
            )
        })?;
        // The bundle must stay under 64 MiB: a stripped binary with burn's three backends is
        // about 90 MiB, xz makes it about 16. `run.sh` unpacks it (xz, or Python's lzma).
        match Command::new("strip").arg(&to).status() {
            Ok(s) if s.success() => {}
            _ => eprintln!("note: could not strip {} (binutils' strip)", to.display()),
        }
        let status = Command::new("xz")
            .args(["-T2", "-6", "-f"])
            .arg(&to)
            .status()
            .context("running xz (Debian's xz-utils) to compress the binaries")?;
        if !status.success() {
            bail!("xz failed on {}", to.display());
        }
    }
    let python = out.join("xtask/python");
    std::fs::create_dir_all(&python)?;
    for entry in std::fs::read_dir(root.join("xtask/python"))? {
        let path = entry?.path();
        let keep = path
            .extension()
            .is_some_and(|e| e == "py" || e == "txt" || e == "sh");
        if keep && let Some(name) = path.file_name() {
            std::fs::copy(&path, python.join(name))?;
        }
    }
    std::fs::copy(root.join("xtask/gpu/run.sh"), out.join("run.sh"))?;
    std::fs::write(out.join("VERSION"), version(&root))?;
    fetch_debs(&root, &out.join("debs"))?;

    let bytes = folder_bytes(&out)?;
    println!(
        "bundle: {} ({:.1} MiB of the 64 MiB that may travel)",
        out.display(),
        bytes as f64 / (1 << 20) as f64
    );
    for entry in walk(&out)? {
        let size = std::fs::metadata(&entry)?.len();
        if size > 1 << 20 {
            println!(
                "  {:>6.1} MiB  {}",
                size as f64 / (1 << 20) as f64,
                entry.strip_prefix(&out).unwrap_or(&entry).display()
            );
        }
    }
    if bytes > MAX_BUNDLE_BYTES {
        bail!("the bundle is over 64 MiB and cannot travel");
    }
    let relative = out
        .strip_prefix(&root)
        .unwrap_or(&out)
        .display()
        .to_string();
    println!(
        "on the GPU machine, from the repository root (carry `{relative}`):\n  bash {relative}/run.sh"
    );
    if args.check {
        println!("\nchecking the bundle's quick mode on this machine's wgpu adapter");
        // Here torch lives in the repository's venv; on a GPU machine it is the system python.
        let python = crate::parity::python(None)?;
        let status = Command::new("bash")
            .arg(out.join("run.sh"))
            .arg("--quick")
            .env("ZOO_PYTHON", python)
            .env("OUT", out.join("check"))
            .env("ZOO_GPU_WORK", out.join("check-work"))
            .status()?;
        let _ = std::fs::remove_dir_all(out.join("check-work"));
        println!(
            "quick mode: {} (tables in {})",
            if status.success() { "passed" } else { "FAILED" },
            out.join("check").display()
        );
        return Ok(status.success());
    }
    Ok(true)
}

/// Cargo's target directory: `$CARGO_TARGET_DIR`, else `target/` in the workspace.
fn target_dir(root: &Path) -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target"))
}

/// The commit the bundle was built from, for the report.
fn version(root: &Path) -> String {
    Command::new("git")
        .current_dir(root)
        .args(["describe", "--always", "--dirty"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_else(|| "unknown".into())
}

/// Downloads Debian's Vulkan loader as `.deb` files (cached in the target directory), for
/// x86-64 whatever this machine is.
fn fetch_debs(root: &Path, into: &Path) -> Result<()> {
    let cache = target_dir(root).join("gpu-debs");
    std::fs::create_dir_all(&cache)?;
    let cached = |name: &str| -> Result<Option<PathBuf>> {
        Ok(std::fs::read_dir(&cache)?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .find(|p| {
                p.file_name()
                    .is_some_and(|f| f.to_string_lossy().starts_with(&format!("{name}_")))
            }))
    };
    let lists = cache.join("lists");
    std::fs::create_dir_all(lists.join("partial"))?;
    let apt = |args: &[&str]| -> Result<bool> {
        Ok(Command::new("apt-get")
            .current_dir(&cache)
            .args([
                "-qq",
                "-oAPT::Architecture=amd64",
                "-oAPT::Architectures=amd64",
            ])
            .arg(format!("-oDir::State::Lists={}", lists.display()))
            .args(args)
            .status()
            .context("running apt-get (the bundle needs Debian's libvulkan1)")?
            .success())
    };
    if DEBS.iter().any(|d| cached(d).ok().flatten().is_none()) {
        if !apt(&["update"])? {
            bail!("apt-get update failed: the bundle needs Debian's libvulkan1");
        }
        for deb in DEBS {
            if !apt(&["download", deb])? {
                bail!("apt-get download {deb} failed");
            }
        }
    }
    std::fs::create_dir_all(into)?;
    for deb in DEBS {
        let file = cached(deb)?.with_context(|| format!("{deb}: no .deb downloaded"))?;
        std::fs::copy(&file, into.join(file.file_name().context("deb name")?))?;
    }
    Ok(())
}

fn walk(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            files.extend(walk(&path)?);
        } else {
            files.push(path);
        }
    }
    Ok(files)
}

fn folder_bytes(dir: &Path) -> Result<u64> {
    walk(dir)?
        .iter()
        .map(|p| Ok(std::fs::metadata(p)?.len()))
        .sum()
}
