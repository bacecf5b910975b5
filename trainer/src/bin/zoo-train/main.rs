//! `zoo-train`: transfer learning for the zoo's models on an ImageFolder dataset, and the
//! user's other commands: `list` and `info` (the registry, a model's layers), `import`
//! (pretrained weights, verified and converted to Burn's format).

mod import;
mod info;
mod segment;

/// mimalloc, which keeps freed memory for the next forward (`zoo_trainer::alloc`).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use model_zoo::Architecture;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand};
use model_zoo::Backend;
use zoo_trainer::demo::{DemoConfig, generate};
use zoo_trainer::folder::{ImageFolder, verify_images};
use zoo_trainer::plot::plot_confusion;
use zoo_trainer::stats::channel_stats;
use zoo_trainer::train::PreviousRun;
use zoo_trainer::{
    Mode, OptimizerKind, RunOptions, Schedule, TrainConfig, TrainSummary, evaluate, load_trained,
    predict,
};

#[derive(Parser)]
#[command(version, about = "Transfer learning for the burn model zoo")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// Where and how a run executes.
#[derive(clap::Args, Clone)]
struct RunArgs {
    /// Run directory: checkpoints, metrics.csv, curves.png, and best/ (the model for
    /// `predict` and `eval`).
    #[arg(long, default_value = "runs/latest")]
    out: PathBuf,
    /// Backend (those compiled in: see `--help` of `zoo-train`); always with autodiff.
    #[arg(long, default_value = "flex")]
    backend: Backend,
    /// Train data-parallel on this many devices of the backend (devices 0..N), one model
    /// replica each (Burn's multi-device strategy); --batch-size stays the effective batch,
    /// split evenly between them.
    #[arg(long, default_value_t = 1, conflicts_with = "device_ids")]
    devices: usize,
    /// Train data-parallel on these devices of the backend (`0,2`), as --devices does.
    #[arg(long, value_delimiter = ',')]
    device_ids: Vec<usize>,
    /// Plain lines instead of Burn's TUI even on a terminal.
    #[arg(long)]
    no_tui: bool,
}

/// What to train and how.
#[derive(clap::Args, Clone)]
struct TrainArgs {
    /// Model name from the registry (`zoo-train list`).
    #[arg(long, default_value = "resnet18")]
    model: String,
    /// Start from these weights: one of the model's published weights by name (`DEFAULT`,
    /// `IMAGENET1K_V2`, `PADDLE_IMAGENET`: see `zoo-train list`), taken from the cache,
    /// PyTorch's hub cache or the download; or a file: PyTorch/safetensors/Paddle, or the
    /// burnpack `zoo-train import MODEL` writes. The head is replaced for the dataset's classes.
    #[arg(long)]
    weights: Option<PathBuf>,
    /// ImageFolder of training images (`DIR/<class>/<image>`), or a folder holding `train/`
    /// and `val/`. Required unless --resume.
    #[arg(long)]
    data: Option<PathBuf>,
    /// Separate validation ImageFolder (default: `DATA/val` when DATA has `train/` and `val/`,
    /// else a seeded split of DATA).
    #[arg(long)]
    val: Option<PathBuf>,
    /// Fraction of each class held out for validation when splitting.
    #[arg(long, default_value_t = 0.2)]
    val_fraction: f64,
    /// `finetune` trains every layer; `feature-extract` freezes the backbone (weights and
    /// BatchNorm statistics) and trains the new head.
    #[arg(long, value_enum, default_value = "finetune")]
    mode: Mode,
    /// With feature-extract: unfreeze the whole model after this many epochs.
    #[arg(long)]
    unfreeze_after: Option<usize>,
    #[arg(long, default_value_t = 10)]
    epochs: usize,
    #[arg(long, default_value_t = 32)]
    batch_size: usize,
    /// Average the gradients of this many batches into each optimiser step (an effective
    /// batch of --batch-size x this; each loss divided by the count, as PyTorch's `loss / k`).
    #[arg(long, default_value_t = 1)]
    grad_accumulation: usize,
    #[arg(long, value_enum, default_value = "sgd")]
    optimizer: OptimizerKind,
    /// Peak learning rate.
    #[arg(long, default_value_t = 1e-3)]
    lr: f64,
    /// SGD momentum.
    #[arg(long, default_value_t = 0.9)]
    momentum: f64,
    /// Nesterov momentum (SGD).
    #[arg(long)]
    nesterov: bool,
    #[arg(long, default_value_t = 0.0)]
    weight_decay: f64,
    /// Learning-rate schedule after the warmup (default: torchvision's transfer-learning
    /// tutorial, `StepLR(step_size=7, gamma=0.1)`).
    #[arg(long, value_enum, default_value = "step")]
    schedule: Schedule,
    /// Warmup, in epochs (torchvision's --lr-warmup-epochs; linear from lr x
    /// --lr-warmup-decay unless --lr-warmup-method says constant).
    #[arg(long, default_value_t = 0, alias = "lr-warmup-epochs")]
    warmup_epochs: usize,
    /// Step schedule: epochs between decays by --gamma.
    #[arg(long, default_value_t = 7)]
    step_epochs: usize,
    #[arg(long, default_value_t = 0.1)]
    gamma: f64,
    #[arg(long, default_value_t = 0.0)]
    label_smoothing: f32,
    /// Training crop and evaluation center-crop side (default: the model's pretrained size).
    #[arg(long)]
    image_size: Option<usize>,
    /// Evaluation resize of the shorter side (default: image size x 256/224).
    #[arg(long)]
    resize: Option<usize>,
    /// Input channels of the model: 1 for grey images, more for multi-band ones (the
    /// pretrained RGB input convolution adapted as timm's `adapt_input_conv` does).
    #[arg(long, default_value_t = 3)]
    in_chans: usize,
    /// Dropout of the model (timm's `drop_rate`, torchvision's `dropout`; default: the
    /// family's). Refused for a family without dropout.
    #[arg(long)]
    drop_rate: Option<f64>,
    /// Stochastic depth of the last block (timm's `drop_path_rate`, torchvision's
    /// `stochastic_depth_prob`; default: the family's): ConvNeXt, EfficientNet, Swin, MaxViT.
    #[arg(long)]
    drop_path_rate: Option<f64>,
    /// Normalisation mean, `R,G,B` (default: the weights', ImageNet's); see `zoo-train stats`.
    #[arg(long, value_delimiter = ',')]
    mean: Option<Vec<f32>>,
    /// Normalisation std, `R,G,B`.
    #[arg(long, value_delimiter = ',')]
    std: Option<Vec<f32>>,
    /// RandomResizedCrop's smallest area fraction.
    #[arg(long, default_value_t = 0.08)]
    min_scale: f64,
    /// Data-loading threads.
    #[arg(long, default_value_t = std::thread::available_parallelism().map_or(2, |n| n.get()))]
    workers: usize,
    /// Leave unreadable images out (logged) instead of failing on the first.
    #[arg(long)]
    skip_bad_images: bool,
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// torchvision's and timm's recipe options.
    #[command(flatten, next_help_heading = "Recipe (torchvision's train.py names)")]
    recipe: zoo_trainer::Recipe,
}

impl TrainArgs {
    fn config(&self) -> Result<TrainConfig> {
        let data = self
            .data
            .clone()
            .context("--data is required (or --resume to continue a run)")?;
        let (train_dir, val_dir) = match &self.val {
            Some(val) => (data, Some(val.clone())),
            None if data.join("train").is_dir() && data.join("val").is_dir() => {
                (data.join("train"), Some(data.join("val")))
            }
            None => (data, None),
        };
        let triple = |v: &Option<Vec<f32>>, what: &str| -> Result<Option<[f32; 3]>> {
            v.as_ref()
                .map(|v| {
                    <[f32; 3]>::try_from(v.as_slice())
                        .map_err(|_| anyhow::anyhow!("--{what} takes three values, R,G,B"))
                })
                .transpose()
        };
        let weights = self
            .weights
            .as_deref()
            .map(|w| resolve_weights(&self.model, w, &zoo_import::WeightsCache::from_env()))
            .transpose()?;
        Ok(TrainConfig {
            model: self.model.clone(),
            weights,
            train_dir,
            val_dir,
            val_fraction: self.val_fraction,
            mode: self.mode,
            unfreeze_after: self.unfreeze_after,
            epochs: self.epochs,
            batch_size: self.batch_size,
            grad_accumulation: self.grad_accumulation,
            optimizer: self.optimizer,
            lr: self.lr,
            momentum: self.momentum,
            nesterov: self.nesterov,
            weight_decay: self.weight_decay,
            schedule: self.schedule,
            warmup_epochs: self.warmup_epochs,
            step_epochs: self.step_epochs,
            gamma: self.gamma,
            label_smoothing: self.label_smoothing,
            image_size: self.image_size,
            resize: self.resize,
            in_chans: self.in_chans,
            drop_rate: self.drop_rate,
            drop_path_rate: self.drop_path_rate,
            mean: triple(&self.mean, "mean")?,
            std: triple(&self.std, "std")?,
            min_scale: self.min_scale,
            workers: self.workers,
            skip_bad_images: self.skip_bad_images,
            seed: self.seed,
            recipe: self.recipe.clone(),
        })
    }
}

#[derive(Subcommand)]
enum Command {
    /// Generates the demo dataset and trains a model on it from scratch (LeNet-5 unless
    /// --model says otherwise): the whole workflow in one command, offline, in about two minutes
    /// on two CPU cores.
    Quickstart {
        /// Where the demo dataset goes (kept and reused if already there).
        #[arg(long, default_value = "data/shapes")]
        data: PathBuf,
        #[command(flatten)]
        run: RunArgs,
        /// Epochs.
        #[arg(long, default_value_t = 100)]
        epochs: usize,
        /// Model (any registry name; resnet18 takes about 90 s an epoch here instead of 2).
        #[arg(long, default_value = "lenet5")]
        model: String,
        /// Training and evaluation image side (the demo images are 64x64).
        #[arg(long, default_value_t = 32)]
        image_size: usize,
        /// Seed of the initialisation, the data order and the augmentations: the same seed
        /// gives the same run.
        #[arg(long, default_value_t = 42)]
        seed: u64,
    },
    /// Trains (or, with --resume, continues) a run.
    Train {
        #[command(flatten)]
        args: Box<TrainArgs>,
        #[command(flatten)]
        run: RunArgs,
        /// Continue the run in --out from its last checkpoint with the settings it started
        /// with (train.json); the training flags are then ignored, and --data refused.
        #[arg(long)]
        resume: bool,
    },
    /// Accuracy and confusion matrix of a trained model on an ImageFolder (printed, and saved
    /// as confusion.png beside the model unless --plot says otherwise).
    Eval {
        /// A run directory or its best/ directory.
        #[arg(long, default_value = "runs/latest")]
        model: PathBuf,
        /// The ImageFolder to evaluate on, with the model's classes.
        data: PathBuf,
        /// Where to draw the confusion matrix.
        #[arg(long)]
        plot: Option<PathBuf>,
        #[arg(long, default_value = "flex")]
        backend: Backend,
        #[arg(long, default_value_t = 64)]
        batch_size: usize,
        #[arg(long)]
        skip_bad_images: bool,
    },
    /// Top-k classes of images, with their probabilities.
    Predict {
        /// A run directory or its best/ directory.
        #[arg(long, default_value = "runs/latest")]
        model: PathBuf,
        /// Image files.
        #[arg(required = true)]
        images: Vec<PathBuf>,
        #[arg(long, short, default_value_t = 3)]
        k: usize,
        #[arg(long, default_value = "flex")]
        backend: Backend,
    },
    /// Lists the zoo's models with parameters, GFLOPs and pretrained weights.
    List(info::ListArgs),
    /// Prints a model's module tree with the parameter count of every layer.
    Info(info::InfoArgs),
    /// Downloads a model's published weights (verified by SHA-256, cached; PyTorch's hub cache
    /// is used when it holds them) or takes a file (--from), converts them to Burn's format and
    /// checks that they load and run.
    Import(import::ImportArgs),
    /// Draws the offline demo dataset (shapes) as an ImageFolder of PNGs.
    DemoData {
        /// Where to write it (`<out>/train/<class>/*.png`, `<out>/val/<class>/*.png`).
        #[arg(long, default_value = "data/shapes")]
        out: PathBuf,
        /// Number of classes (2 to 10).
        #[arg(long, default_value_t = 6)]
        classes: usize,
        /// Training images per class.
        #[arg(long, default_value_t = 400)]
        train_per_class: usize,
        /// Validation images per class.
        #[arg(long, default_value_t = 100)]
        val_per_class: usize,
        /// Image side in pixels.
        #[arg(long, default_value_t = 64)]
        size: u32,
        /// Seed.
        #[arg(long, default_value_t = 0)]
        seed: u64,
    },
    /// Segments photos with a pretrained segmentation model (or a weight file): a mask in VOC's
    /// colours, an overlay and an index mask per photo, and the share of each class.
    Segment(segment::SegmentArgs),
    /// Trains a segmentation model on photos and masks (`<data>/train/{images,masks}`,
    /// `<data>/val/{images,masks}`), with mean IoU and pixel accuracy every epoch.
    TrainSegmentation(Box<segment::TrainSegmentationArgs>),
    /// Masks of photos from a trained segmentation run.
    PredictMasks(segment::PredictMasksArgs),
    /// Draws the offline segmentation demo (shapes on backgrounds, with their masks).
    DemoMasks(segment::DemoMasksArgs),
    /// Per-channel mean and std of an ImageFolder, for `Normalize(mean, std)`.
    Stats {
        /// The ImageFolder root (`DIR/<class>/<image>`).
        dir: PathBuf,
        /// Worker threads.
        #[arg(long, default_value_t = std::thread::available_parallelism().map_or(2, |n| n.get()))]
        workers: usize,
        /// Leave unreadable images out (listed) instead of failing on the first.
        #[arg(long)]
        skip_bad_images: bool,
    },
}

fn options(run: &RunArgs) -> RunOptions {
    RunOptions {
        dir: run.out.clone(),
        backend: run.backend,
        devices: if run.device_ids.is_empty() {
            (0..run.devices.max(1)).collect()
        } else {
            run.device_ids.clone()
        },
        tui: !run.no_tui,
        quiet: false,
    }
}

fn report(summary: &TrainSummary) {
    println!(
        "best: epoch {} with validation accuracy {:.1}% (loss {:.4}), saved in {}",
        summary.best.epoch,
        summary.best.val_accuracy,
        summary.best.val_loss,
        summary.best_dir.display()
    );
    if summary.skipped_images > 0 {
        println!("{} unreadable images were skipped", summary.skipped_images);
    }
    println!("{:.0} s in all", summary.seconds);
}

fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Quickstart {
            data,
            run,
            epochs,
            model,
            image_size,
            seed,
        } => {
            zoo_trainer::train::stop_on_signals()?;
            let root = generate(&data, &DemoConfig::default())?;
            let mut config = TrainConfig::new(model, root.join("train"));
            config.val_dir = Some(root.join("val"));
            config.epochs = epochs;
            config.batch_size = 32;
            config.optimizer = OptimizerKind::Adamw;
            config.lr = 3e-3;
            // timm's AdamW weight decay: with torchvision's PIL-resampled training crops, 1e-4
            // left LeNet-5 at 96.7-97.2% (three seeds), 0.05 at 97.7-98.8%.
            config.weight_decay = 0.05;
            config.schedule = Schedule::Cosine;
            // One warmup epoch, where there is more than one.
            config.warmup_epochs = usize::from(epochs > 1);
            config.label_smoothing = 0.1;
            config.image_size = Some(image_size);
            // Crops of at least 70% of the image: at 35%, LeNet-5 ended at 89-94% (the crop
            // often cut the shape); at 70% and 100 epochs, at 97% and more.
            config.min_scale = 0.7;
            config.mean = Some([0.5, 0.5, 0.5]);
            config.std = Some([0.25, 0.25, 0.25]);
            config.seed = seed;
            let options = options(&run);
            let summary = match zoo_trainer::train::make_way(&config, &options)? {
                PreviousRun::Unfinished(epoch) => {
                    println!(
                        "{} holds this quickstart's run, stopped after epoch {epoch}: continuing it",
                        options.dir.display()
                    );
                    zoo_trainer::resume(&options)?
                }
                previous => {
                    if let PreviousRun::SetAside(aside) = previous {
                        println!(
                            "{} held another run (other settings, or finished): moved to {}",
                            options.dir.display(),
                            aside.display()
                        );
                    }
                    zoo_trainer::train(&config, &options)?
                }
            };
            report(&summary);
            println!(
                "try: cargo run -p zoo-trainer -- predict --model {} {}",
                options.dir.display(),
                root.join("val").join("circle").join("00000.png").display()
            );
        }
        Command::Train { args, run, resume } => {
            let options = options(&run);
            // Ctrl-C stops after the batch in flight and says how to resume; a second one at once.
            zoo_trainer::train::stop_on_signals()?;
            let summary = if resume {
                if args.data.is_some() {
                    bail!(
                        "--resume continues with the run's own settings ({}): drop --data and \
                         the other training flags",
                        zoo_trainer::rundir::RunDir::new(&run.out)
                            .config_file()
                            .display()
                    );
                }
                zoo_trainer::resume(&options)?
            } else {
                zoo_trainer::train(&args.config()?, &options)?
            };
            report(&summary);
        }
        Command::Eval {
            model,
            data,
            plot,
            backend,
            batch_size,
            skip_bad_images,
        } => {
            let mut trained = load_trained(&model, &backend.device()?)?;
            // Inference only: BatchNorms folded into their convolutions (ResNets), one pass less.
            trained.model = trained.model.fold_batchnorm();
            let workers = std::thread::available_parallelism().map_or(2, |n| n.get());
            let evaluation = evaluate(&trained, &data, batch_size, workers, skip_bad_images)?;
            for (path, reason) in &evaluation.skipped {
                eprintln!("skipped {}: {reason}", path.display());
            }
            println!(
                "{} on {}: {} images, top-1 {:.2}%, top-{} {:.2}%\n",
                trained.card.model,
                data.display(),
                evaluation.images,
                evaluation.accuracy,
                5.min(evaluation.classes.len()),
                evaluation.top5
            );
            print!("{}", evaluation.table());
            let plot = plot.unwrap_or_else(|| {
                let dir = if zoo_trainer::rundir::RunDir::new(&model).best_dir().is_dir() {
                    zoo_trainer::rundir::RunDir::new(&model).best_dir()
                } else {
                    model.clone()
                };
                dir.join("confusion.png")
            });
            plot_confusion(&plot, &evaluation.confusion, &evaluation.classes)?;
            println!("confusion matrix drawn in {}", plot.display());
        }
        Command::Predict {
            model,
            images,
            k,
            backend,
        } => {
            let mut trained = load_trained(&model, &backend.device()?)?;
            // Inference only: BatchNorms folded into their convolutions (ResNets), one pass less.
            trained.model = trained.model.fold_batchnorm();
            let k = k.clamp(1, trained.classes.len());
            for path in &images {
                let top = predict(&trained, &[path.as_path()], k)?;
                println!("{}:", path.display());
                for (name, p) in &top[0] {
                    println!("  {:6.2}%  {name}", 100.0 * p);
                }
            }
        }
        Command::List(args) => found(info::list(&args)?, "no model matches")?,
        Command::Info(args) => found(info::info(&args)?, "not found")?,
        Command::Import(args) => found(import::run(&args)?, "import failed")?,
        Command::DemoData {
            out,
            classes,
            train_per_class,
            val_per_class,
            size,
            seed,
        } => {
            let config = DemoConfig {
                classes,
                train_per_class,
                val_per_class,
                size,
                seed,
            };
            let root = generate(&out, &config)?;
            println!(
                "demo dataset: {} classes, {} training and {} validation images of {size}x{size} in {}",
                classes,
                classes * train_per_class,
                classes * val_per_class,
                root.display()
            );
        }
        Command::Segment(args) => segment::segment_photos(&args)?,
        Command::TrainSegmentation(args) => segment::train(&args)?,
        Command::PredictMasks(args) => segment::predict(&args)?,
        Command::DemoMasks(args) => segment::demo(&args)?,
        Command::Stats {
            dir,
            workers,
            skip_bad_images,
        } => {
            let folder = ImageFolder::open(&dir)?;
            let (samples, bad) = verify_images(folder.samples, workers, skip_bad_images)?;
            for (path, reason) in &bad {
                eprintln!("skipped {}: {reason}", path.display());
            }
            let stats = channel_stats(&samples, workers)?;
            println!(
                "{} images, {} classes, {} pixels per channel",
                stats.images,
                folder.classes.len(),
                stats.pixels
            );
            println!(
                "mean = [{:.4}, {:.4}, {:.4}]",
                stats.mean[0], stats.mean[1], stats.mean[2]
            );
            println!(
                "std  = [{:.4}, {:.4}, {:.4}]",
                stats.std[0], stats.std[1], stats.std[2]
            );
        }
    }
    Ok(())
}

/// A command that found nothing fails the process (its output said why).
fn found(ok: bool, what: &str) -> Result<()> {
    if ok { Ok(()) } else { bail!("{what}") }
}

/// `--weights`: a file as given, or a name of `model`'s published weights (`DEFAULT`,
/// `IMAGENET1K_V1`, `PADDLE_IMAGENET`), resolved to its file through `cache` (the zoo's cache,
/// then PyTorch's hub cache, then the download, verified). A value that is neither an existing
/// file nor a weights name is returned as it is, for the loader to name it.
fn resolve_weights(
    model: &str,
    weights: &Path,
    cache: &zoo_import::WeightsCache,
) -> Result<PathBuf> {
    let name = weights.to_str().filter(|name| {
        !weights.exists()
            && !name.is_empty()
            && name
                .chars()
                .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
    });
    let Some(name) = name else {
        return Ok(weights.to_path_buf());
    };
    let info = model_zoo::model_info(model)?;
    let descriptor = info
        .weights(name)
        .with_context(|| format!("--weights {name}: no such file, nor weights of {model}"))?;
    cache
        .fetch(descriptor)
        .with_context(|| format!("--weights {name} of {model}"))
}

fn main() -> ExitCode {
    zoo_trainer::alloc::keep_freed_memory();
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A weights name resolves to its file in the cache (no download: the file is there); a
    /// path is kept; an unknown name lists the model's weights.
    #[test]
    fn weights_by_name_or_path() {
        let root = tempfile::tempdir().unwrap();
        let cache = zoo_import::WeightsCache::new(root.path())
            .with_torch_hub(None)
            .with_progress(false);
        let info = model_zoo::model_info("resnet18").unwrap();
        let descriptor = info.weights("DEFAULT").unwrap();
        let cached = cache.published_path(descriptor);
        std::fs::create_dir_all(cached.parent().unwrap()).unwrap();
        std::fs::write(&cached, b"weights").unwrap();
        assert_eq!(
            resolve_weights("resnet18", Path::new("DEFAULT"), &cache).unwrap(),
            cached
        );
        assert_eq!(
            resolve_weights("resnet18", Path::new("IMAGENET1K_V1"), &cache).unwrap(),
            cached,
            "DEFAULT is IMAGENET1K_V1 for resnet18"
        );
        let file = Path::new("runs/x/best/model.bpk");
        assert_eq!(resolve_weights("resnet18", file, &cache).unwrap(), file);
        let err = resolve_weights("resnet18", Path::new("IMAGENET22K"), &cache).unwrap_err();
        let message = format!("{err:#}");
        assert!(message.contains("IMAGENET1K_V1"), "{message}");
    }
}
