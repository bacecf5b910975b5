//! Segment photos with a pretrained segmentation model of the zoo, on any compiled backend.
//!
//! ```text
//! cargo run --release -p zoo-examples --example segment -- \
//!     [--model deeplabv3_resnet50] [--weights DEFAULT|FILE] [--backend flex|wgpu|…] [--out DIR] IMAGE...
//! ```
//!
//! For each photo: torchvision's eval transform for the weights (the shorter side resized to
//! 520, normalised), the model, the class of every pixel, then `<out>/<stem>_mask.png` (the
//! classes in Pascal VOC's colours, at the photo's size), `<out>/<stem>_overlay.png` (the mask
//! over the photo) and `<out>/<stem>_classes.png` (the class indices, VOC's
//! `SegmentationClass` layout), and the share of pixels of each class found.

/// mimalloc rather than the system allocator (docs/src/speed.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{Context, Result};
use clap::Parser;
use model_zoo::Backend;
use model_zoo::transforms::load_image;
use model_zoo::transforms::masks::{save_outputs, segment};
use zoo_import::hub::load_segmenter;

#[derive(Parser)]
#[command(about = "Segment photos with a pretrained model of the burn model zoo")]
struct Args {
    /// Model name: deeplabv3_resnet50, deeplabv3_resnet101, deeplabv3_mobilenet_v3_large,
    /// fcn_resnet50, fcn_resnet101 or lraspp_mobilenet_v3_large.
    #[arg(long, default_value = "deeplabv3_resnet50")]
    model: String,
    /// Published weights by name (`DEFAULT`, `COCO_WITH_VOC_LABELS_V1`), downloaded and
    /// converted on first use, or a weight file (`.bpk`, `.pth`, `.safetensors`).
    #[arg(long, default_value = "DEFAULT")]
    weights: String,
    /// Classes of a weight file's model.
    #[arg(long, default_value_t = 21)]
    num_classes: usize,
    /// Backend to run on.
    #[arg(long, default_value_t = model_zoo::available_backends()[0])]
    backend: Backend,
    /// Where the masks go.
    #[arg(long, default_value = "masks")]
    out: PathBuf,
    /// Shorter side the photos are resized to (default: the weights' transform, 520; a model
    /// trained by `zoo-train train-segmentation` takes its `--base-size`).
    #[arg(long)]
    resize: Option<usize>,
    /// Opacity of the mask in the overlay.
    #[arg(long, default_value_t = 0.6)]
    alpha: f32,
    /// Photos to segment (PNG, JPEG, BMP, WebP).
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
    let device = args.backend.device()?;
    let started = Instant::now();
    let mut segmenter = load_segmenter(&args.model, &args.weights, args.num_classes, &device)?;
    if let Some(resize) = args.resize {
        segmenter.transform.resize = resize;
    }
    println!(
        "{} on {} (loaded in {:.2}s; resize {})",
        segmenter.source,
        args.backend,
        started.elapsed().as_secs_f32(),
        segmenter.transform.resize
    );
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("creating {}", args.out.display()))?;
    let mut all_done = true;
    for path in &args.images {
        let photo = match load_image(path) {
            Ok(photo) => photo,
            Err(err) => {
                eprintln!("skipping: {err}");
                all_done = false;
                continue;
            }
        };
        let started = Instant::now();
        let segmented = segment(&segmenter.model, &photo, &segmenter.transform)?;
        let seconds = started.elapsed().as_secs_f32();
        let stem = path
            .file_stem()
            .map_or_else(|| "image".into(), |s| s.to_string_lossy().into_owned());
        save_outputs(
            &args.out,
            &stem,
            &photo.to_rgb8(),
            &segmented.map,
            args.alpha,
        )
        .with_context(|| format!("writing the masks of {}", path.display()))?;
        println!(
            "\n{} ({}x{}, {seconds:.2}s): {}/{stem}_mask.png",
            path.display(),
            photo.width(),
            photo.height(),
            args.out.display()
        );
        let mut shares: Vec<(usize, f64)> = segmented.shares.into_iter().enumerate().collect();
        shares.sort_by(|a, b| b.1.total_cmp(&a.1));
        for (class, share) in shares.into_iter().filter(|(_, s)| *s >= 0.001) {
            let name = segmenter
                .class_names
                .and_then(|names| names.get(class).copied())
                .unwrap_or("?");
            println!("  {:>6.2}%  {name} ({class})", share * 100.0);
        }
    }
    Ok(all_done)
}
