//! `zoo-train`'s segmentation commands: `segment` (a pretrained model or a weight file on
//! photos), `train-segmentation`, `predict-masks` (a trained run on photos) and `demo-masks`
//! (the offline dataset of shapes with their masks).

use std::path::PathBuf;

use anyhow::{Context, Result};
use model_zoo::Backend;
use model_zoo::transforms::load_image;
use model_zoo::transforms::masks::{save_outputs, segment};
use zoo_trainer::RunOptions;
use zoo_trainer::segment::demo::{MaskDemoConfig, generate_masks};
use zoo_trainer::segment::{SegmentationTrainConfig, predict_masks, train_segmentation};

/// `zoo-train segment`.
#[derive(clap::Args)]
pub struct SegmentArgs {
    /// deeplabv3_resnet50, deeplabv3_resnet101, deeplabv3_mobilenet_v3_large, fcn_resnet50,
    /// fcn_resnet101 or lraspp_mobilenet_v3_large.
    #[arg(long, default_value = "deeplabv3_resnet50")]
    model: String,
    /// Published weights (`DEFAULT`, downloaded and converted on first use) or a weight file
    /// (`.pth`, `.safetensors`, `.bpk`).
    #[arg(long, default_value = "DEFAULT")]
    weights: String,
    /// Classes of a weight file's model.
    #[arg(long, default_value_t = 21)]
    num_classes: usize,
    #[arg(long, default_value = "flex")]
    backend: Backend,
    /// Where the masks go.
    #[arg(long, default_value = "masks")]
    out: PathBuf,
    /// Shorter side the photos are resized to (default: the weights' transform, 520).
    #[arg(long)]
    resize: Option<usize>,
    /// Photos.
    #[arg(required = true)]
    images: Vec<PathBuf>,
}

/// `zoo-train predict-masks`.
#[derive(clap::Args)]
pub struct PredictMasksArgs {
    /// A segmentation run directory or its best/ directory.
    #[arg(long, default_value = "runs/segmentation")]
    model: PathBuf,
    /// Where the masks go.
    #[arg(long, default_value = "masks")]
    out: PathBuf,
    #[arg(long, default_value = "flex")]
    backend: Backend,
    /// Photos.
    #[arg(required = true)]
    images: Vec<PathBuf>,
}

/// `zoo-train demo-masks`.
#[derive(clap::Args)]
pub struct DemoMasksArgs {
    /// Where to write it.
    #[arg(long, default_value = "data/shape-masks")]
    out: PathBuf,
    /// Shape kinds (the classes are these and the background).
    #[arg(long, default_value_t = 3)]
    shapes: usize,
    /// Training images.
    #[arg(long, default_value_t = 240)]
    train: usize,
    /// Validation images.
    #[arg(long, default_value_t = 60)]
    val: usize,
    /// Image side.
    #[arg(long, default_value_t = 64)]
    size: u32,
    #[arg(long, default_value_t = 0)]
    seed: u64,
}

/// `zoo-train train-segmentation`.
#[derive(clap::Args)]
pub struct TrainSegmentationArgs {
    #[command(flatten)]
    config: SegmentationTrainConfig,
    /// Run directory: segmentation.json, metrics.csv, best/.
    #[arg(long, default_value = "runs/segmentation")]
    out: PathBuf,
    #[arg(long, default_value = "flex")]
    backend: Backend,
}

fn print_shares(shares: &[f64], names: Option<&[String]>) {
    let mut order: Vec<(usize, f64)> = shares.iter().copied().enumerate().collect();
    order.sort_by(|a, b| b.1.total_cmp(&a.1));
    for (class, share) in order.into_iter().filter(|(_, s)| *s >= 0.001) {
        let name = names.and_then(|n| n.get(class)).map_or("?", String::as_str);
        println!("  {:>6.2}%  {name} ({class})", share * 100.0);
    }
}

pub fn segment_photos(args: &SegmentArgs) -> Result<()> {
    let device = args.backend.device()?;
    let mut segmenter =
        zoo_import::hub::load_segmenter(&args.model, &args.weights, args.num_classes, &device)?;
    if let Some(resize) = args.resize {
        segmenter.transform.resize = resize;
    }
    let names: Option<Vec<String>> = segmenter
        .class_names
        .map(|n| n.iter().map(|s| s.to_string()).collect());
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("creating {}", args.out.display()))?;
    for path in &args.images {
        let photo = load_image(path)?;
        let segmented = segment(&segmenter.model, &photo, &segmenter.transform)?;
        let stem = path
            .file_stem()
            .map_or_else(|| "image".into(), |s| s.to_string_lossy().into_owned());
        save_outputs(&args.out, &stem, &photo.to_rgb8(), &segmented.map, 0.6)
            .with_context(|| format!("writing the masks of {}", path.display()))?;
        println!("{}: {}/{stem}_mask.png", path.display(), args.out.display());
        print_shares(&segmented.shares, names.as_deref());
    }
    Ok(())
}

pub fn train(args: &TrainSegmentationArgs) -> Result<()> {
    zoo_trainer::train::stop_on_signals()?;
    let options = RunOptions {
        dir: args.out.clone(),
        backend: args.backend,
        devices: vec![0],
        tui: false,
        quiet: false,
    };
    let summary = train_segmentation(&args.config, &options)?;
    println!(
        "best model: epoch {}, mIoU {:.2}%, pixel accuracy {:.2}%, in {}",
        summary.best.epoch,
        summary.best.miou,
        summary.best.pixel_acc,
        summary.best_dir.display()
    );
    Ok(())
}

pub fn predict(args: &PredictMasksArgs) -> Result<()> {
    let device = args.backend.device()?;
    let (model, card) = zoo_trainer::segment::load_segmenter(&args.model, &device)?;
    for (path, shares) in predict_masks(&model, &card, &args.images, &args.out)? {
        println!("{}: masks in {}", path.display(), args.out.display());
        print_shares(&shares, Some(&card.classes));
    }
    Ok(())
}

pub fn demo(args: &DemoMasksArgs) -> Result<()> {
    let config = MaskDemoConfig {
        shapes: args.shapes,
        train: args.train,
        val: args.val,
        size: args.size,
        seed: args.seed,
    };
    let root = generate_masks(&args.out, &config)?;
    println!(
        "mask demo: {} classes (background and {} shapes), {} training and {} validation images \
         of {}x{} with their masks in {}",
        args.shapes + 1,
        args.shapes,
        args.train,
        args.val,
        args.size,
        args.size,
        root.display()
    );
    Ok(())
}
