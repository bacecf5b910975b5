//! Classify images with a pretrained model of the zoo, on any compiled backend.
//!
//! ```text
//! cargo run --release -p zoo-examples --example classify -- \
//!     --model resnet50 [--weights DEFAULT|IMAGENET1K_V1|PADDLE_IMAGENET|FILE] [--backend flex|wgpu|…] IMAGE...
//! ```
//!
//! Prints the top-5 classes of each image with their softmax probabilities, and the time taken.
//! Images go through torchvision's eval transform for the weights (resize the shorter side with
//! antialiased bilinear, center crop, normalise) and run in batches.

/// mimalloc rather than the system allocator: a forward's large buffers are reused instead of
/// handed back to the kernel and faulted in again (docs/src/speed.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use model_zoo::Architecture;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::Result;
use clap::Parser;
use model_zoo::Backend;
use model_zoo::transforms::{images_to_tensor, load_image};
use zoo_examples::{load_classifier, top_k};

#[derive(Parser)]
#[command(about = "Classify images with a pretrained model of the burn model zoo")]
struct Args {
    /// Model name (`zoo-train list` shows them).
    #[arg(long, default_value = "resnet50")]
    model: String,
    /// Published weights by name (`DEFAULT`, `IMAGENET1K_V1`, ..., `PADDLE_IMAGENET`),
    /// downloaded and converted on first use, or a weight file (`.bpk` from `zoo-train import`,
    /// `.pth`, `.safetensors`, or PaddlePaddle's `.pdparams`).
    #[arg(long, default_value = "DEFAULT")]
    weights: String,
    /// Classes of a weight file's classifier.
    #[arg(long, default_value_t = 1000)]
    num_classes: usize,
    /// Backend to run on.
    #[arg(long, default_value_t = model_zoo::available_backends()[0])]
    backend: Backend,
    /// Images per forward pass.
    #[arg(long, default_value_t = 8)]
    batch_size: usize,
    /// Classes to print per image.
    #[arg(long, default_value_t = 5)]
    top: usize,
    /// Images to classify (PNG, JPEG, BMP, WebP).
    #[arg(required = true)]
    images: Vec<PathBuf>,
}

fn main() -> ExitCode {
    match run(&Args::parse()) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: &Args) -> Result<bool> {
    let info = model_zoo::model_info(&args.model)?;
    let device = args.backend.device()?;

    let started = Instant::now();
    let mut classifier = load_classifier(info, &args.weights, args.num_classes, &device)?;
    // Inference only: BatchNorms folded into their convolutions (ResNets; the other families as
    // they are): one pass less per layer; see `cargo xtask bench`.
    classifier.model = classifier.model.fold_batchnorm();
    println!(
        "{} on {} (loaded in {:.2}s; resize {}, crop {})",
        classifier.source,
        args.backend,
        started.elapsed().as_secs_f32(),
        classifier.preprocess.resize,
        classifier.preprocess.crop
    );

    let mut all_read = true;
    let (mut images_done, mut preprocess_s, mut inference_s) = (0usize, 0f32, 0f32);
    for chunk in args.images.chunks(args.batch_size.max(1)) {
        let started = Instant::now();
        let mut paths = Vec::new();
        let mut images = Vec::new();
        for path in chunk {
            match load_image(path) {
                Ok(image) => {
                    paths.push(path);
                    images.push(image);
                }
                Err(err) => {
                    eprintln!("skipping: {err}");
                    all_read = false;
                }
            }
        }
        if images.is_empty() {
            continue;
        }
        let x = images_to_tensor(&images, &classifier.preprocess, &device);
        preprocess_s += started.elapsed().as_secs_f32();

        let started = Instant::now();
        let logits = classifier.model.try_forward(x)?;
        // Reading the result back waits for the device, so the time includes the whole pass.
        let best = top_k(logits, args.top)?;
        inference_s += started.elapsed().as_secs_f32();
        images_done += images.len();

        for (path, classes) in paths.iter().zip(best) {
            println!("\n{}", path.display());
            for (class, probability) in classes {
                let name = classifier
                    .class_names
                    .and_then(|names| names.get(class).copied())
                    .unwrap_or("?");
                println!("  {:>6.2}%  {name} ({class})", probability * 100.0);
            }
        }
    }
    if images_done > 0 {
        println!(
            "\n{images_done} images: preprocessing {:.3}s, inference {:.3}s ({:.1} img/s, batch {})",
            preprocess_s,
            inference_s,
            images_done as f32 / inference_s.max(f32::EPSILON),
            args.batch_size
        );
    }
    Ok(all_read)
}
