//! `cargo xtask`: the maintainer's commands. The user's (`list`, `info`, `import`) are
//! `zoo-train`'s (`zoo_trainer::cli`).
//!
//! - `cargo xtask parity resnet50` / `cargo xtask parity --all`: compare every compiled backend's
//!   logits with real PyTorch (see [`parity`]); `--all` also reads a few hundred `torch.save`
//!   files back bit for bit (see [`torch_files`]).
//! - `cargo run --release -p xtask -- bench [--quick]`: speed and memory beside PyTorch's;
//!   `bench --ops [--models ...]`: any model op by op beside PyTorch, each op's share of the gap.
//! - `cargo xtask fuzz [--seconds N]`: the readers' fuzz test for N seconds from a fresh seed.
//! - `cargo xtask gpu-bundle [--check]`: a release bundle that runs the GPU check (parity, speed,
//!   training) on a bare GPU machine (see [`gpu_bundle`]).

mod augment;
mod bench;
mod bench_ops;
mod fuzz;
mod gpu_bundle;
mod paddle_parity;
mod parity;
mod references;
mod segmentation;
mod torch_files;
mod train_step;
mod transforms;

/// mimalloc, which keeps freed memory for the next forward (`zoo_trainer::alloc`).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "cargo xtask", about = "burn model zoo maintainer commands")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Check logits against PyTorch (torchvision, random weights, randomised BatchNorm) on
    /// every compiled backend; exits non-zero on any failure.
    Parity(parity::ParityArgs),
    /// Inference and training speed, import time and peak memory, beside PyTorch's measured in
    /// the same run (use a release build: `cargo run --release -p xtask -- bench`).
    Bench(bench::BenchArgs),
    /// Build the GPU check's bundle (release binaries, scripts, Vulkan loader; under 64 MiB) to
    /// run on a bare GPU machine; `--check` runs its quick mode here on lavapipe.
    GpuBundle(gpu_bundle::GpuBundleArgs),
    /// Damage weight files and images in seeded ways for N seconds and read them: no panic, every
    /// error naming its file (the fuzz test of `cargo test`, longer and from a fresh seed).
    Fuzz(fuzz::FuzzArgs),
}

fn main() -> std::process::ExitCode {
    zoo_trainer::alloc::keep_freed_memory();
    let cli = Cli::parse();
    let outcome = match cli.command {
        Command::Parity(args) => parity::run(&args),
        Command::Bench(args) => bench::run(&args),
        Command::GpuBundle(args) => gpu_bundle::run(&args),
        Command::Fuzz(args) => fuzz::run(&args),
    };
    match outcome {
        Ok(true) => std::process::ExitCode::SUCCESS,
        Ok(false) => std::process::ExitCode::FAILURE,
        Err(err) => {
            eprintln!("error: {err:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
