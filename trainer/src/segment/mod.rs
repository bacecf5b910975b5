//! Training torchvision's segmentation models on a folder of photos and masks, as
//! torchvision's reference script does (`references/segmentation/train.py`): cross-entropy
//! that ignores 255, the aux head's loss weighted 0.5 (its learning rate 10x), SGD with momentum
//! and weight decay under a polynomial decay (power 0.9) per step, random resize, flip and crop;
//! mean IoU and pixel accuracy on the validation masks after every epoch, the best model by
//! mean IoU kept.
//!
//! ```text
//! <data>/train/images/*.png|jpg   <data>/train/masks/*.png   (same names)
//! <data>/val/images/...           <data>/val/masks/...
//! <data>/classes.txt              optional: one class name per line, background first
//!
//! <run>/segmentation.json   the settings            <run>/metrics.csv   one row per epoch
//! <run>/best/model.bpk      the best model          <run>/best/card.json  what it is
//! ```
//!
//! Its own loop rather than Burn's `Learner`: the Learner reports a metric as the mean of its
//! per-batch values, and mean IoU is not a mean over batches (it is one confusion matrix over
//! the whole validation set).

pub mod data;
pub mod demo;
pub mod metrics;

use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::time::Instant;

use burn::module::{Module, ParamGroup};
use burn::optim::decay::WeightDecayConfig;
use burn::optim::lr_scheduler::LrSchedulerConfig;
use burn::optim::lr_scheduler::module_lr_scheduler::{ModuleLearningRate, ModuleLrSchedulerConfig};
use burn::optim::momentum::MomentumConfig;
use burn::optim::{AdamWConfig, GradientsParams, ModuleOptimizer, SgdConfig};
use burn::tensor::{Device, Int, Tensor, TensorData};
use model_zoo::segmentation::{self, SegmentationConfig, SegmentationModel};
use model_zoo::transforms::masks::class_maps;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::artifact::{read_json, write_json};
use crate::data::{epoch_order, sample_seed};
use crate::error::TrainError;
use crate::train::RunOptions;
use data::{MaskSample, MaskTransforms, Prepared, mask_pairs, max_class, prepare};
use metrics::{ConfusionMatrix, masked_cross_entropy};

/// The optimiser of a segmentation run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum SegmentationOptimizer {
    /// SGD with momentum and L2 weight decay: torchvision's reference.
    Sgd,
    /// AdamW (decoupled weight decay): quicker from scratch on small data.
    Adamw,
}

/// Everything a segmentation run depends on (`zoo-train train-segmentation`'s options).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, clap::Args)]
pub struct SegmentationTrainConfig {
    /// The model: deeplabv3_resnet50, deeplabv3_resnet101, deeplabv3_mobilenet_v3_large,
    /// fcn_resnet50, fcn_resnet101 or lraspp_mobilenet_v3_large.
    #[arg(long, default_value = "lraspp_mobilenet_v3_large")]
    pub model: String,
    /// The dataset: `train/{images,masks}` and `val/{images,masks}` (see the module docs).
    #[arg(long)]
    pub data: PathBuf,
    /// Classes, background included (default: the largest index in the training masks, plus
    /// one).
    #[arg(long)]
    pub num_classes: Option<usize>,
    /// Where the weights start: `scratch`; `backbone`, the backbone classifier's ImageNet
    /// weights (torchvision's `weights_backbone`, its reference's default); a published
    /// segmentation weights name (`DEFAULT`), its classifiers reset to `--num-classes`; or a
    /// weight file of this model with `--num-classes` classes.
    #[arg(long, default_value = "scratch")]
    pub init: String,
    /// Epochs.
    #[arg(long, default_value_t = 30)]
    pub epochs: usize,
    /// Images per step.
    #[arg(long, default_value_t = 8)]
    pub batch_size: usize,
    /// Learning rate at the first step (torchvision's reference: 0.02 with SGD).
    #[arg(long, default_value_t = 0.02)]
    pub lr: f64,
    /// The optimiser.
    #[arg(long, value_enum, default_value_t = SegmentationOptimizer::Sgd)]
    pub optimizer: SegmentationOptimizer,
    /// SGD's momentum.
    #[arg(long, default_value_t = 0.9)]
    pub momentum: f64,
    /// Weight decay.
    #[arg(long, default_value_t = 1e-4)]
    pub weight_decay: f64,
    /// Train the auxiliary head too (DeepLabV3 and FCN; torchvision's `--aux-loss`).
    #[arg(long)]
    pub aux_loss: bool,
    /// Weight of the aux head's loss.
    #[arg(long, default_value_t = 0.5)]
    pub aux_weight: f64,
    /// Shorter side at evaluation, and the centre of training's random resize (half to twice
    /// it).
    #[arg(long, default_value_t = 520)]
    pub base_size: usize,
    /// Side of the training crops.
    #[arg(long, default_value_t = 480)]
    pub crop_size: usize,
    /// Smallest random resize of training's shorter side, as a fraction of --base-size
    /// (torchvision's reference: 0.5).
    #[arg(long, default_value_t = 0.5)]
    pub min_scale: f64,
    /// Largest random resize, as a fraction of --base-size (torchvision's reference: 2.0).
    #[arg(long, default_value_t = 2.0)]
    pub max_scale: f64,
    /// Seed of the model's initialisation, the data order and the augmentations.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
}

impl SegmentationTrainConfig {
    /// The defaults for a dataset in `data`.
    pub fn new(model: &str, data: impl Into<PathBuf>) -> Self {
        use clap::Parser;
        #[derive(Parser)]
        struct Defaults {
            #[command(flatten)]
            config: SegmentationTrainConfig,
        }
        let mut config = Defaults::parse_from(["x", "--data", "."]).config;
        config.model = model.to_string();
        config.data = data.into();
        config
    }

    fn validate(&self) -> Result<(), TrainError> {
        let info = segmentation::model_info(&self.model)?;
        let bad = |what: String| Err(TrainError::Config(what));
        if self.epochs == 0 || self.epochs > 100_000 {
            return bad(format!("--epochs must be 1 to 100000, not {}", self.epochs));
        }
        if self.batch_size == 0 || self.batch_size > 4096 {
            return bad(format!(
                "--batch-size must be 1 to 4096, not {}",
                self.batch_size
            ));
        }
        if !(self.lr.is_finite() && self.lr > 0.0) {
            return bad(format!("--lr must be positive, not {}", self.lr));
        }
        for (name, value) in [
            ("--momentum", self.momentum),
            ("--weight-decay", self.weight_decay),
            ("--aux-weight", self.aux_weight),
        ] {
            if !(value.is_finite() && value >= 0.0) {
                return bad(format!("{name} must be a non-negative number, not {value}"));
            }
        }
        for (name, value) in [
            ("--base-size", self.base_size),
            ("--crop-size", self.crop_size),
        ] {
            if !(16..=4096).contains(&value) {
                return bad(format!("{name} must be 16 to 4096 pixels, not {value}"));
            }
        }
        if !(self.min_scale > 0.0 && self.min_scale <= self.max_scale && self.max_scale <= 8.0) {
            return bad(format!(
                "--min-scale and --max-scale must satisfy 0 < min <= max <= 8, not {} and {}",
                self.min_scale, self.max_scale
            ));
        }
        if self.aux_loss && !info.arch.supports_aux() {
            return bad(format!("{} has no aux head: drop --aux-loss", self.model));
        }
        Ok(())
    }
}

/// What a trained segmentation model is, saved beside it (`best/card.json`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SegmentationCard {
    /// The model's registry name.
    pub model: String,
    /// Classes, background first.
    pub classes: Vec<String>,
    /// Whether the saved model has its aux head.
    pub aux_loss: bool,
    /// The evaluation transform: the shorter side resized to it.
    pub base_size: usize,
    /// Normalisation mean.
    pub mean: [f32; 3],
    /// Normalisation standard deviation.
    pub std: [f32; 3],
    /// The epoch it comes from.
    pub epoch: usize,
    /// Its validation mean IoU, percent.
    pub miou: f64,
    /// Its validation pixel accuracy, percent.
    pub pixel_acc: f64,
}

/// One epoch of a segmentation run (a row of `metrics.csv`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SegmentationEpoch {
    /// 1-based epoch.
    pub epoch: usize,
    /// Mean training loss (the aux head's weighted in).
    pub train_loss: f64,
    /// Mean validation loss (`out` only).
    pub val_loss: f64,
    /// Validation pixel accuracy, percent.
    pub pixel_acc: f64,
    /// Validation mean IoU, percent.
    pub miou: f64,
    /// Learning rate of the epoch's last step.
    pub lr: f64,
    /// Wall-clock seconds.
    pub seconds: f64,
}

/// What a finished segmentation run reports.
#[derive(Debug, Clone)]
pub struct SegmentationSummary {
    /// The best epoch's card.
    pub best: SegmentationCard,
    /// Where it is saved.
    pub best_dir: PathBuf,
    /// Every epoch.
    pub history: Vec<SegmentationEpoch>,
}

const CARD_FILE: &str = "card.json";
const MODEL_FILE: &str = "model.bpk";

/// The class names: `classes.txt` in the dataset root where it is there (one per line), else
/// `class0`, `class1`, ... An error where the file lists another count than `num_classes`.
fn class_names(data: &Path, num_classes: usize) -> Result<Vec<String>, TrainError> {
    let file = data.join("classes.txt");
    if !file.is_file() {
        return Ok((0..num_classes).map(|i| format!("class{i}")).collect());
    }
    let text = std::fs::read_to_string(&file).map_err(|e| TrainError::io(&file, e))?;
    let names: Vec<String> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(String::from)
        .collect();
    if names.len() != num_classes {
        return Err(TrainError::Dataset(format!(
            "{} names {} classes, the run has {num_classes}",
            file.display(),
            names.len()
        )));
    }
    Ok(names)
}

/// The model the run starts from (see [`SegmentationTrainConfig::init`]).
fn initial_model(
    config: &SegmentationTrainConfig,
    num_classes: usize,
    device: &Device,
) -> Result<SegmentationModel, TrainError> {
    let info = segmentation::model_info(&config.model)?;
    let fresh = SegmentationConfig::new(info.arch)
        .with_num_classes(num_classes)
        .with_aux_loss(config.aux_loss);
    let hub = |e: zoo_import::HubError| TrainError::Training(format!("{}: {e}", config.init));
    let model = match config.init.as_str() {
        "scratch" => fresh.init(device)?,
        "backbone" => zoo_import::WeightsCache::from_env()
            .segmentation_with_backbone(&fresh, "IMAGENET1K_V1", device)
            .map_err(hub)?,
        init if Path::new(init).is_file() => {
            let model =
                zoo_import::hub::segmentation_from_file(info, num_classes, Path::new(init), device)
                    .map_err(hub)?;
            with_aux(model, config.aux_loss, device)?
        }
        weights => {
            let published = info.weights(weights)?;
            let model = zoo_import::WeightsCache::from_env()
                .load_segmentation(&config.model, weights, device)
                .map_err(hub)?;
            let model = if published.num_classes() == num_classes {
                model
            } else {
                model.reset_classifier(num_classes, device)?
            };
            with_aux(model, config.aux_loss, device)?
        }
    };
    Ok(model)
}

/// `model` with the aux head or without, as the run asks: dropped, or added fresh.
fn with_aux(
    model: SegmentationModel,
    aux: bool,
    device: &Device,
) -> Result<SegmentationModel, TrainError> {
    Ok(if aux {
        model.with_aux(device)?
    } else {
        model.without_aux()
    })
}

/// A batch as tensors: the photos `[n, 3, h, w]` and the masks `[n, h, w]`.
fn batch_tensors(items: &[Prepared], device: &Device) -> (Tensor<4>, Tensor<3, Int>) {
    let [h, w] = items[0].size;
    let n = items.len();
    let images: Vec<f32> = items.iter().flat_map(|p| p.image.iter().copied()).collect();
    let masks: Vec<i64> = items
        .iter()
        .flat_map(|p| p.mask.iter().map(|&m| i64::from(m)))
        .collect();
    (
        Tensor::from_data(TensorData::new(images, [n, 3, h, w]), device),
        Tensor::from_data(TensorData::new(masks, [n, h, w]), device),
    )
}

/// Reads and transforms `samples` on rayon's threads.
fn prepare_all(
    samples: &[&MaskSample],
    transforms: &MaskTransforms,
    seeds: Option<Vec<u64>>,
) -> Result<Vec<Prepared>, TrainError> {
    samples
        .par_iter()
        .enumerate()
        .map(|(i, s)| prepare(s, transforms, seeds.as_ref().map(|seeds| seeds[i])))
        .collect()
}

/// torchvision's `PolynomialLR(power=0.9)` at step `step` of `total`.
fn poly_lr(lr: f64, step: usize, total: usize) -> f64 {
    lr * (1.0 - step as f64 / total.max(1) as f64).max(0.0).powf(0.9)
}

/// Trains a segmentation model as `config` says, into `options.dir`; returns the best epoch's
/// card and every epoch's numbers. Ctrl-C (with [`crate::train::stop_on_signals`]) stops at the
/// next step with `best/` as the complete epochs left it.
pub fn train_segmentation(
    config: &SegmentationTrainConfig,
    options: &RunOptions,
) -> Result<SegmentationSummary, TrainError> {
    config.validate()?;
    if options.devices.len() > 1 {
        return Err(TrainError::Config(
            "segmentation trains on one device: pass one --devices".into(),
        ));
    }
    let train = mask_pairs(&config.data.join("train"))?;
    let val = mask_pairs(&config.data.join("val"))?;
    let num_classes = match config.num_classes {
        Some(n) => n,
        None => max_class(&train)? + 1,
    };
    if !(2..=255).contains(&num_classes) {
        return Err(TrainError::Config(format!(
            "a segmentation run has 2 to 255 classes (255 marks ignored pixels), not {num_classes}"
        )));
    }
    let classes = class_names(&config.data, num_classes)?;
    let info = segmentation::model_info(&config.model)?;
    let transform = info
        .default_weights()
        .map(|w| w.transform)
        .ok_or_else(|| TrainError::Config(format!("{} has no published transform", info.name)))?;
    let transforms = MaskTransforms {
        base_size: config.base_size,
        crop_size: config.crop_size,
        scale: [config.min_scale, config.max_scale],
        mean: transform.mean,
        std: transform.std,
    };

    let device = options.backend.device()?;
    device.seed(config.seed);
    let train_device = device.clone().autodiff();
    let mut model = initial_model(config, num_classes, &train_device)?;
    std::fs::create_dir_all(&options.dir).map_err(|e| TrainError::io(&options.dir, e))?;
    write_json(&options.dir.join("segmentation.json"), config)?;

    let mut optimizer = match config.optimizer {
        SegmentationOptimizer::Sgd => SgdConfig::new()
            .with_momentum(Some(MomentumConfig {
                momentum: config.momentum,
                dampening: 0.0,
                nesterov: false,
            }))
            .with_weight_decay(
                (config.weight_decay > 0.0)
                    .then(|| WeightDecayConfig::new(config.weight_decay as f32)),
            )
            .init(),
        SegmentationOptimizer::Adamw => AdamWConfig::new()
            .with_weight_decay(config.weight_decay as f32)
            .init(),
    };
    // torchvision's reference gives the aux head 10x the learning rate.
    let aux_group = model
        .aux_classifier
        .as_ref()
        .map(|aux| ParamGroup::ids_from_module(aux.clone()));
    let per_epoch = if train.len() >= config.batch_size {
        train.len() / config.batch_size
    } else {
        1
    };
    let total_steps = per_epoch * config.epochs;
    let started_run = Instant::now();
    let mut history: Vec<SegmentationEpoch> = Vec::new();
    let mut best: Option<SegmentationCard> = None;
    let best_dir = options.dir.join("best");
    let stop = crate::train::stop_flag();
    for epoch in 1..=config.epochs {
        let started = Instant::now();
        let order = epoch_order(train.len(), Some(config.seed), epoch);
        let (mut loss_sum, mut steps, mut lr) = (0.0f64, 0usize, config.lr);
        for batch in order.chunks(config.batch_size).take(per_epoch) {
            if stop.load(Ordering::Relaxed) {
                return Err(TrainError::Training(format!(
                    "stopped by Ctrl-C or SIGTERM during epoch {epoch}; {} holds the best \
                     complete epoch",
                    best_dir.display()
                )));
            }
            let samples: Vec<&MaskSample> = batch.iter().map(|&i| &train[i]).collect();
            let seeds = batch
                .iter()
                .map(|&i| sample_seed(config.seed, epoch, i))
                .collect();
            let items = prepare_all(&samples, &transforms, Some(seeds))?;
            let (x, y) = batch_tensors(&items, &train_device);
            let output = model
                .try_forward_with_aux(x)
                .map_err(|e| TrainError::Training(e.to_string()))?;
            let mut loss = masked_cross_entropy(output.out, y.clone());
            if let Some(aux) = output.aux {
                loss = loss + masked_cross_entropy(aux, y) * config.aux_weight;
            }
            let value = model_zoo::read_back(loss.clone(), "the training loss")?
                .convert::<f64>()
                .try_to_vec::<f64>()
                .map_err(|e| TrainError::Training(format!("{e:?}")))?[0];
            if !value.is_finite() {
                return Err(TrainError::Training(format!(
                    "the loss is {value} at epoch {epoch}: lower --lr"
                )));
            }
            let grads = GradientsParams::from_grads(loss.backward(), &model);
            lr = poly_lr(config.lr, (epoch - 1) * per_epoch + steps, total_steps);
            let mut schedule = ModuleLrSchedulerConfig::new(LrSchedulerConfig::Constant(lr));
            if let Some(group) = &aux_group {
                schedule =
                    schedule.with_group(group.clone(), LrSchedulerConfig::Constant(10.0 * lr));
            }
            let mut scheduler = schedule
                .init()
                .map_err(|e| TrainError::Training(format!("learning rate: {e}")))?;
            model = optimizer_step(&mut optimizer, scheduler.step(), model, grads);
            loss_sum += value;
            steps += 1;
        }
        let (val_loss, confusion) = validate(
            &model.valid(),
            &val,
            &transforms,
            config.batch_size,
            num_classes,
            &device,
        )?;
        let record = SegmentationEpoch {
            epoch,
            train_loss: loss_sum / steps.max(1) as f64,
            val_loss,
            pixel_acc: 100.0 * confusion.pixel_accuracy(),
            miou: 100.0 * confusion.mean_iou(),
            lr,
            seconds: started.elapsed().as_secs_f64(),
        };
        history.push(record);
        write_metrics(&options.dir.join("metrics.csv"), &history)?;
        if !options.quiet {
            println!(
                "epoch {epoch}/{}: train loss {:.4}, val loss {:.4}, mIoU {:.2}%, pixel acc {:.2}%, lr {:.2e} ({:.1}s)",
                config.epochs,
                record.train_loss,
                record.val_loss,
                record.miou,
                record.pixel_acc,
                record.lr,
                record.seconds
            );
        }
        if best.as_ref().is_none_or(|b| record.miou > b.miou) {
            let card = SegmentationCard {
                model: config.model.clone(),
                classes: classes.clone(),
                aux_loss: model.has_aux(),
                base_size: config.base_size,
                mean: transforms.mean,
                std: transforms.std,
                epoch,
                miou: record.miou,
                pixel_acc: record.pixel_acc,
            };
            save_segmenter(&best_dir, &model.valid(), &card)?;
            best = Some(card);
        }
    }
    if !options.quiet {
        println!(
            "best: epoch {} with mIoU {:.2}% in {}; {:.0}s in all",
            best.as_ref().map_or(0, |b| b.epoch),
            best.as_ref().map_or(0.0, |b| b.miou),
            best_dir.display(),
            started_run.elapsed().as_secs_f64()
        );
    }
    Ok(SegmentationSummary {
        best: best.unwrap_or_else(|| unreachable!("at least one epoch ran")),
        best_dir,
        history,
    })
}

fn optimizer_step(
    optimizer: &mut ModuleOptimizer,
    lr: ModuleLearningRate,
    model: SegmentationModel,
    grads: GradientsParams,
) -> SegmentationModel {
    optimizer.step(lr, model, grads)
}

/// The validation pass: the mean loss over the images and the confusion matrix of `out`.
/// Images go in batches of up to `batch_size` of the same size (after the evaluation resize).
fn validate(
    model: &SegmentationModel,
    samples: &[MaskSample],
    transforms: &MaskTransforms,
    batch_size: usize,
    num_classes: usize,
    device: &Device,
) -> Result<(f64, ConfusionMatrix), TrainError> {
    let mut confusion = ConfusionMatrix::new(num_classes);
    let (mut loss_sum, mut images) = (0.0, 0usize);
    for chunk in samples.chunks(batch_size.max(1)) {
        let refs: Vec<&MaskSample> = chunk.iter().collect();
        let items = prepare_all(&refs, transforms, None)?;
        let mut start = 0;
        while start < items.len() {
            let size = items[start].size;
            let end = start + items[start..].iter().take_while(|p| p.size == size).count();
            let group = &items[start..end];
            let (x, y) = batch_tensors(group, device);
            let scores = model
                .try_forward(x)
                .map_err(|e| TrainError::Training(e.to_string()))?;
            let loss = model_zoo::read_back(
                masked_cross_entropy(scores.clone(), y),
                "the validation loss",
            )?
            .convert::<f64>()
            .try_to_vec::<f64>()
            .map_err(|e| TrainError::Training(format!("{e:?}")))?[0];
            loss_sum += loss * group.len() as f64;
            images += group.len();
            let maps = class_maps(scores).map_err(|e| TrainError::Training(e.to_string()))?;
            for (map, item) in maps.iter().zip(group) {
                confusion.add(&map.classes, &item.mask);
            }
            start = end;
        }
    }
    Ok((loss_sum / images.max(1) as f64, confusion))
}

fn write_metrics(path: &Path, history: &[SegmentationEpoch]) -> Result<(), TrainError> {
    let mut text = String::from("epoch,train_loss,val_loss,pixel_acc,miou,lr,seconds\n");
    for r in history {
        text.push_str(&format!(
            "{},{:.6},{:.6},{:.4},{:.4},{:.6e},{:.2}\n",
            r.epoch, r.train_loss, r.val_loss, r.pixel_acc, r.miou, r.lr, r.seconds
        ));
    }
    crate::artifact::write_atomically(path, text.as_bytes())
}

/// Saves a trained model and its card into `dir`, staged and renamed into place (the card
/// last), so a failed write leaves the previous best whole.
pub fn save_segmenter(
    dir: &Path,
    model: &SegmentationModel,
    card: &SegmentationCard,
) -> Result<(), TrainError> {
    crate::artifact::save_staged(dir, &[MODEL_FILE, CARD_FILE], |staged| {
        zoo_import::save_burnpack(model, staged.join(MODEL_FILE))?;
        write_json(&staged.join(CARD_FILE), card)
    })
}

/// A model saved by a segmentation run (`<run>/best`, or the run directory), with its card.
pub fn load_segmenter(
    dir: &Path,
    device: &Device,
) -> Result<(SegmentationModel, SegmentationCard), TrainError> {
    let dir = if dir.join(CARD_FILE).is_file() {
        dir.to_path_buf()
    } else {
        dir.join("best")
    };
    let card: SegmentationCard = read_json(&dir.join(CARD_FILE))?;
    let info = segmentation::model_info(&card.model)?;
    let model = SegmentationConfig::new(info.arch)
        .with_num_classes(card.classes.len())
        .with_aux_loss(card.aux_loss)
        .init(device)?;
    let model = zoo_import::load_burnpack(model, dir.join(MODEL_FILE))?;
    Ok((model.without_aux(), card))
}

/// Segments `images` with a model loaded by [`load_segmenter`] (and its card) and writes each one's coloured mask,
/// overlay and index mask into `out` (see [`model_zoo::transforms::masks::save_outputs`]);
/// returns each image's class shares.
pub fn predict_masks(
    model: &SegmentationModel,
    card: &SegmentationCard,
    images: &[PathBuf],
    out: &Path,
) -> Result<Vec<(PathBuf, Vec<f64>)>, TrainError> {
    let transform = segmentation::SegmentationTransform {
        resize: card.base_size,
        interpolation: model_zoo::registry::Interpolation::Bilinear,
        mean: card.mean,
        std: card.std,
    };
    std::fs::create_dir_all(out).map_err(|e| TrainError::io(out, e))?;
    let mut results = Vec::new();
    for path in images {
        let photo = model_zoo::transforms::load_image(path).map_err(|e| TrainError::Image {
            path: path.clone(),
            message: e.to_string(),
        })?;
        let segmented = model_zoo::transforms::masks::segment(model, &photo, &transform)
            .map_err(|e| TrainError::Training(e.to_string()))?;
        let stem = path
            .file_stem()
            .map_or_else(|| "image".into(), |s| s.to_string_lossy().into_owned());
        model_zoo::transforms::masks::save_outputs(
            out,
            &stem,
            &photo.to_rgb8(),
            &segmented.map,
            0.6,
        )
        .map_err(|e| TrainError::Image {
            path: out.join(&stem),
            message: e.to_string(),
        })?;
        results.push((path.clone(), segmented.shares));
    }
    Ok(results)
}
