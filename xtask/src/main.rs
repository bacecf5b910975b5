//! `cargo xtask`: maintainer and power-user commands.
//!
//! - `cargo xtask parity resnet50` / `cargo xtask parity --all`: compare every compiled backend's
//!   logits with real PyTorch (see [`parity`]).

mod parity;

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
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let outcome = match cli.command {
        Command::Parity(args) => parity::run(&args),
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
