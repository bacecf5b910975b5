//! What a training run is: the model, the data, the optimiser and its schedule. Saved as
//! `train.json` in the run directory, so `--resume` continues with exactly the same settings.

use std::path::{Path, PathBuf};

use burn::optim::decay::WeightDecayConfig;
use burn::optim::lr_scheduler::LrSchedulerConfig;
use burn::optim::lr_scheduler::cosine::CosineAnnealingLrSchedulerConfig;
use burn::optim::lr_scheduler::linear::LinearLrSchedulerConfig;
use burn::optim::lr_scheduler::module_lr_scheduler::ModuleLrScheduler;
use burn::optim::lr_scheduler::sequential::SequentialLrSchedulerConfig;
use burn::optim::lr_scheduler::step::StepLrSchedulerConfig;
use burn::optim::momentum::MomentumConfig;
use burn::optim::{AdamConfig, AdamWConfig, ModuleOptimizer, RmsPropConfig, SgdConfig};
use serde::{Deserialize, Serialize};

use crate::augment::Transforms;
use crate::error::TrainError;
use crate::recipe::{Recipe, WarmupMethod};
use burn::module::ParamGroup;
use model_zoo::registry::Preprocess;

/// Which parameters train.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Mode {
    /// Every parameter trains.
    Finetune,
    /// The backbone is frozen (weights and BatchNorm statistics); only the new head trains.
    FeatureExtract,
}

/// The optimiser.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum OptimizerKind {
    /// SGD, with `momentum` and optionally Nesterov momentum.
    Sgd,
    /// Adam; `weight_decay` is L2 added to the gradient, as in PyTorch's `Adam`.
    Adam,
    /// AdamW: decoupled weight decay.
    Adamw,
    /// RMSprop as torchvision's recipe builds it (the MobileNet V3 recipe's `--opt rmsprop`):
    /// `alpha` 0.9, `eps` 0.0316, `momentum`, L2 `weight_decay`.
    Rmsprop,
}

/// How the learning rate evolves over the optimiser steps, after the warmup.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Schedule {
    /// The same learning rate throughout.
    Constant,
    /// Cosine annealing to zero at the last step (PyTorch's `CosineAnnealingLR`).
    Cosine,
    /// Multiplied by `gamma` every `step_epochs` epochs (PyTorch's `StepLR`).
    Step,
}

/// Everything a training run depends on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainConfig {
    /// Registry name of the model (`resnet18`).
    pub model: String,
    /// Weights to start from (the head is replaced): PyTorch, safetensors, PaddlePaddle
    /// `.pdparams` (told apart by content) or burnpack; `None` trains from
    /// scratch.
    pub weights: Option<PathBuf>,
    /// ImageFolder of the training images.
    pub train_dir: PathBuf,
    /// ImageFolder of the validation images; `None` splits `train_dir` by `val_fraction`.
    pub val_dir: Option<PathBuf>,
    /// Fraction of each class held out for validation when there is no `val_dir`.
    pub val_fraction: f64,
    /// Finetune or feature-extract.
    pub mode: Mode,
    /// In feature-extract mode, unfreeze the backbone after this many epochs.
    pub unfreeze_after: Option<usize>,
    /// Epochs to train.
    pub epochs: usize,
    /// Images per batch.
    pub batch_size: usize,
    /// Batches whose gradients are averaged into one optimiser step (each loss divided by
    /// the window's batch count, as PyTorch's `loss / k`; an epoch's last, shorter window by
    /// its own count).
    pub grad_accumulation: usize,
    /// Optimiser.
    pub optimizer: OptimizerKind,
    /// Peak learning rate.
    pub lr: f64,
    /// SGD momentum (`0` for none).
    pub momentum: f64,
    /// Nesterov momentum for SGD.
    pub nesterov: bool,
    /// Weight decay (L2 for SGD and Adam, decoupled for AdamW).
    pub weight_decay: f64,
    /// Learning-rate schedule after the warmup.
    pub schedule: Schedule,
    /// Warmup, in epochs (its shape and start: `recipe.lr_warmup_method`,
    /// `recipe.lr_warmup_decay`; torchvision's default, linear from `lr / 100`).
    pub warmup_epochs: usize,
    /// For the step schedule: epochs between decays.
    pub step_epochs: usize,
    /// For the step schedule: the decay factor.
    pub gamma: f64,
    /// Label smoothing of the cross-entropy loss.
    pub label_smoothing: f32,
    /// Side of the training crops and of the evaluation center crop; `None` takes the model's
    /// pretrained size (224 for ImageNet models).
    pub image_size: Option<usize>,
    /// Evaluation: shorter side resized to this before the center crop; `None` keeps
    /// torchvision's ratio (256 for 224).
    pub resize: Option<usize>,
    /// Input channels of the model (`--in-chans`): 3 for RGB; 1 for grey images (the
    /// pretrained input convolution summed over RGB), more for multi-band images, the RGB
    /// weights repeated (timm's `adapt_input_conv`). Images are read as RGB and normalised,
    /// then given the model as [`crate::data::to_channels`] lays them out.
    #[serde(default = "rgb")]
    pub in_chans: usize,
    /// timm's `drop_rate` (`--drop-rate`): the family's dropout, torchvision's `dropout`;
    /// `None` keeps the family's default ([`model_zoo::BuildOptions`]).
    #[serde(default)]
    pub drop_rate: Option<f64>,
    /// timm's `drop_path_rate` (`--drop-path-rate`): stochastic depth of the families that have
    /// it (ConvNeXt, EfficientNet, Swin, MaxViT), torchvision's `stochastic_depth_prob`.
    #[serde(default)]
    pub drop_path_rate: Option<f64>,
    /// Per-channel mean; `None` takes the weights' (ImageNet's).
    pub mean: Option<[f32; 3]>,
    /// Per-channel std; `None` takes the weights'.
    pub std: Option<[f32; 3]>,
    /// `RandomResizedCrop`'s smallest area fraction (torchvision: 0.08).
    pub min_scale: f64,
    /// Data-loading threads.
    pub workers: usize,
    /// Leave unreadable images out (logged) instead of failing.
    pub skip_bad_images: bool,
    /// Seed of the split, the shuffling, the augmentations and the initialisation.
    pub seed: u64,
    /// torchvision's recipe options: augmentations, crop sizes, warmup shape, clipping,
    /// norm and bias weight decay, EMA.
    #[serde(default)]
    pub recipe: Recipe,
}

/// The input channels of a `train.json` written before `in_chans` existed: RGB.
fn rgb() -> usize {
    3
}

/// The most epochs a run may ask for, so that epochs times steps always fits a `usize`.
pub const MAX_EPOCHS: usize = 1_000_000;

/// The most data-loading threads a run may ask for: each is an OS thread, and a damaged
/// `train.json` asking for a billion would fail to spawn them.
pub const MAX_WORKERS: usize = 256;

impl TrainConfig {
    /// torchvision's transfer-learning tutorial for `model` on the ImageFolder `train_dir`:
    /// SGD with momentum 0.9, lr 0.001 divided by 10 every 7 epochs (`StepLR(step_size=7,
    /// gamma=0.1)`); here 10 epochs, batch 32, 20% held out for validation.
    pub fn new(model: impl Into<String>, train_dir: impl Into<PathBuf>) -> Self {
        Self {
            model: model.into(),
            weights: None,
            train_dir: train_dir.into(),
            val_dir: None,
            val_fraction: 0.2,
            mode: Mode::Finetune,
            unfreeze_after: None,
            epochs: 10,
            batch_size: 32,
            grad_accumulation: 1,
            optimizer: OptimizerKind::Sgd,
            lr: 1e-3,
            momentum: 0.9,
            nesterov: false,
            weight_decay: 0.0,
            schedule: Schedule::Step,
            warmup_epochs: 0,
            step_epochs: 7,
            gamma: 0.1,
            label_smoothing: 0.0,
            image_size: None,
            resize: None,
            in_chans: 3,
            drop_rate: None,
            drop_path_rate: None,
            mean: None,
            std: None,
            min_scale: 0.08,
            workers: std::thread::available_parallelism().map_or(2, |n| n.get()),
            skip_bad_images: false,
            seed: 42,
            recipe: Recipe::default(),
        }
    }

    /// What the model is built with for `num_classes` classes: the run's input channels and
    /// drop rates.
    pub fn build_options(&self, num_classes: usize) -> model_zoo::BuildOptions {
        model_zoo::BuildOptions {
            num_classes,
            in_chans: self.in_chans,
            drop_rate: self.drop_rate,
            drop_path_rate: self.drop_path_rate,
        }
    }

    /// Rejects settings that cannot train, naming the setting.
    pub fn validate(&self) -> Result<(), TrainError> {
        let bad = |what: String| Err(TrainError::Config(what));
        if !(1..=model_zoo::MAX_IN_CHANS).contains(&self.in_chans) {
            return bad(format!(
                "--in-chans must be in 1..={}, not {}",
                model_zoo::MAX_IN_CHANS,
                self.in_chans
            ));
        }
        if !(1..=MAX_EPOCHS).contains(&self.epochs) {
            return bad(format!(
                "--epochs must be in 1..={MAX_EPOCHS}, not {}",
                self.epochs
            ));
        }
        if self.batch_size == 0 {
            return bad("--batch-size must be at least 1".into());
        }
        if self.grad_accumulation == 0 {
            return bad("--grad-accumulation must be at least 1".into());
        }
        if !(self.lr > 0.0 && self.lr <= 1.0) {
            return bad(format!("--lr must be in (0, 1], not {}", self.lr));
        }
        if !(0.0..1.0).contains(&self.momentum) {
            return bad(format!(
                "--momentum must be in [0, 1), not {}",
                self.momentum
            ));
        }
        if self.nesterov && (self.optimizer != OptimizerKind::Sgd || self.momentum == 0.0) {
            return bad("--nesterov needs --optimizer sgd and a momentum above 0".into());
        }
        if self.weight_decay < 0.0 {
            return bad(format!(
                "--weight-decay must be >= 0, not {}",
                self.weight_decay
            ));
        }
        if !(0.0..1.0).contains(&self.label_smoothing) {
            return bad(format!(
                "--label-smoothing must be in [0, 1), not {}",
                self.label_smoothing
            ));
        }
        if !(self.min_scale > 0.0 && self.min_scale <= 1.0) {
            return bad(format!(
                "--min-scale must be in (0, 1], not {}",
                self.min_scale
            ));
        }
        if self.warmup_epochs >= self.epochs && self.warmup_epochs > 0 {
            return bad(format!(
                "--warmup-epochs ({}) must be fewer than --epochs ({})",
                self.warmup_epochs, self.epochs
            ));
        }
        if self.schedule == Schedule::Step && !(1..=MAX_EPOCHS).contains(&self.step_epochs) {
            return bad(format!(
                "--step-epochs must be in 1..={MAX_EPOCHS}, not {}",
                self.step_epochs
            ));
        }
        if let Some(n) = self.unfreeze_after {
            if self.mode != Mode::FeatureExtract {
                return bad("--unfreeze-after needs --mode feature-extract".into());
            }
            if n == 0 || n >= self.epochs {
                return bad(format!(
                    "--unfreeze-after must be between 1 and --epochs - 1 ({}), not {n}",
                    self.epochs - 1
                ));
            }
        }
        let max_side = crate::augment::MAX_SIDE;
        for (flag, side) in [
            ("--image-size", self.image_size),
            ("--resize", self.resize),
            ("--train-crop-size", self.recipe.train_crop_size),
            ("--val-resize-size", self.recipe.val_resize_size),
            ("--val-crop-size", self.recipe.val_crop_size),
        ] {
            if let Some(side) = side.filter(|side| !(1..=max_side).contains(side)) {
                return bad(format!("{flag} must be in 1..={max_side}, not {side}"));
            }
        }
        if let Some(mean) = self.mean.filter(|mean| !mean.iter().all(|m| m.is_finite())) {
            return bad(format!("--mean must be finite, not {mean:?}"));
        }
        if let Some(std) = self
            .std
            .filter(|std| !std.iter().all(|s| s.is_finite() && *s > 0.0))
        {
            return bad(format!("--std must be positive and finite, not {std:?}"));
        }
        if self.val_dir.is_none() && !(self.val_fraction > 0.0 && self.val_fraction < 1.0) {
            return bad(format!(
                "--val-fraction must be in (0, 1), not {}",
                self.val_fraction
            ));
        }
        if !(self.gamma.is_finite() && self.gamma > 0.0) {
            return bad(format!(
                "--gamma must be positive and finite, not {}",
                self.gamma
            ));
        }
        self.recipe.validate().map_err(TrainError::Config)?;
        if self.recipe.clip_grad_norm.is_some() && self.grad_accumulation > 1 {
            return bad(
                "--clip-grad-norm with --grad-accumulation: the norm would be one batch's, not \
                 the step's (torchvision's recipe has no accumulation); use one or the other"
                    .into(),
            );
        }
        if self.workers > MAX_WORKERS {
            return bad(format!(
                "--workers must be at most {MAX_WORKERS}, not {}",
                self.workers
            ));
        }
        Ok(())
    }

    /// The optimiser, as Burn's type-erased [`ModuleOptimizer`]: `--weight-decay` for every
    /// parameter, then, as torchvision's `set_weight_decay` groups them, `--norm-weight-decay`
    /// for the normalisation layers' weights and biases (the zoo's and Burn's norms name them
    /// `gamma` and `beta`) and `--bias-weight-decay` for every bias (the norms' included, as
    /// torchvision's `bias` key takes them first): Burn's parameter groups, the last matching
    /// group deciding.
    pub fn optimizer(&self) -> ModuleOptimizer {
        let mut optimizer = match self.optimizer {
            OptimizerKind::Sgd => self.sgd(self.weight_decay).init(),
            OptimizerKind::Adam => self.adam(self.weight_decay).init(),
            OptimizerKind::Adamw => self.adamw(self.weight_decay).init(),
            OptimizerKind::Rmsprop => self.rmsprop(self.weight_decay).init(),
        };
        let groups = [
            (r"(^|\.)(gamma|beta)$", self.recipe.norm_weight_decay),
            (r"(^|\.)(bias|beta)$", self.recipe.bias_weight_decay),
        ];
        for (pattern, decay) in groups {
            let Some(decay) = decay else { continue };
            let group = ParamGroup::from_regex(pattern).expect("a valid pattern");
            optimizer = match self.optimizer {
                OptimizerKind::Sgd => optimizer.with_group(group, self.sgd(decay).build(), None),
                OptimizerKind::Adam => optimizer.with_group(group, self.adam(decay).build(), None),
                OptimizerKind::Adamw => {
                    optimizer.with_group(group, self.adamw(decay).build(), None)
                }
                OptimizerKind::Rmsprop => {
                    optimizer.with_group(group, self.rmsprop(decay).build(), None)
                }
            };
        }
        optimizer
    }

    fn sgd(&self, weight_decay: f64) -> SgdConfig {
        SgdConfig::new()
            .with_weight_decay(
                (weight_decay > 0.0).then(|| WeightDecayConfig::new(weight_decay as f32)),
            )
            .with_momentum((self.momentum > 0.0).then_some(MomentumConfig {
                momentum: self.momentum,
                dampening: 0.0,
                nesterov: self.nesterov,
            }))
    }

    fn adam(&self, weight_decay: f64) -> AdamConfig {
        AdamConfig::new().with_epsilon(1e-8).with_weight_decay(
            (weight_decay > 0.0).then(|| WeightDecayConfig::new(weight_decay as f32)),
        )
    }

    fn rmsprop(&self, weight_decay: f64) -> RmsPropConfig {
        RmsPropConfig::new()
            .with_alpha(0.9)
            .with_epsilon(0.0316)
            .with_momentum(self.momentum as f32)
            .with_weight_decay(
                (weight_decay > 0.0).then(|| WeightDecayConfig::new(weight_decay as f32)),
            )
    }

    fn adamw(&self, weight_decay: f64) -> AdamWConfig {
        AdamWConfig::new()
            .with_epsilon(1e-8)
            .with_weight_decay(weight_decay as f32)
    }

    /// The learning-rate schedule over `steps_per_epoch` optimiser steps per epoch.
    pub fn lr_scheduler(&self, steps_per_epoch: usize) -> Result<ModuleLrScheduler, TrainError> {
        let steps_per_epoch = steps_per_epoch.max(1);
        let steps = |epochs: usize| {
            epochs.checked_mul(steps_per_epoch).ok_or_else(|| {
                TrainError::Config(format!(
                    "{epochs} epochs of {steps_per_epoch} steps are more steps than this machine \
                     can count"
                ))
            })
        };
        let warmup = steps(self.warmup_epochs)?;
        let rest = steps(self.epochs.saturating_sub(self.warmup_epochs))?;
        let main: LrSchedulerConfig = match self.schedule {
            Schedule::Constant => LrSchedulerConfig::Constant(self.lr),
            Schedule::Cosine => CosineAnnealingLrSchedulerConfig::new(self.lr, rest).into(),
            Schedule::Step => StepLrSchedulerConfig::new(self.lr, steps(self.step_epochs)?)
                .with_gamma(self.gamma)
                .into(),
        };
        let start = self.lr * self.recipe.lr_warmup_decay;
        let warmup_schedule: LrSchedulerConfig = match self.recipe.lr_warmup_method {
            WarmupMethod::Linear => {
                LinearLrSchedulerConfig::new(start, self.lr, warmup.max(1)).into()
            }
            WarmupMethod::Constant => LrSchedulerConfig::Constant(start),
        };
        // Warmup or not, one sequential schedule, so that the saved scheduler state always has
        // the same shape; a single milestone at step 0 is not allowed, hence the `max(1)`.
        let (schedulers, milestones) = if warmup > 0 {
            (vec![warmup_schedule, main], vec![warmup])
        } else {
            (vec![main], vec![])
        };
        SequentialLrSchedulerConfig::new(schedulers, milestones)
            .init()
            .map_err(|e| TrainError::Config(format!("learning-rate schedule: {e}")))
    }

    /// The run's transforms: the model's pretrained preprocessing (ImageNet's when it has
    /// none), resized to `image_size` with torchvision's 256/224 ratio, with the given mean/std.
    pub fn transforms(&self) -> Result<Transforms, TrainError> {
        let config = self;
        let info = model_zoo::model_info(&config.model)?;
        let preprocess = info
            .default_weights()
            .map(|w| w.preprocess)
            .unwrap_or(Preprocess {
                resize: info.image_size * 256 / 224,
                crop: info.image_size,
                ..Preprocess::default()
            });
        let mut t = Transforms::from_preprocess(&preprocess);
        if let Some(size) = config.image_size {
            t.train_size = size;
            t.crop = size;
            t.resize = config.resize.unwrap_or_else(|| {
                (size as f64 * preprocess.resize as f64 / preprocess.crop as f64).round() as usize
            });
        } else if let Some(resize) = config.resize {
            t.resize = resize;
        }
        if t.resize < t.crop {
            return Err(TrainError::Config(format!(
                "--resize ({}) must be at least the crop size ({})",
                t.resize, t.crop
            )));
        }
        // torchvision's separate sizes, over --image-size and --resize.
        let recipe = &config.recipe;
        if let Some(size) = recipe.train_crop_size {
            t.train_size = size;
        }
        if let Some(size) = recipe.val_crop_size {
            t.crop = size;
        }
        if let Some(size) = recipe.val_resize_size {
            t.resize = size;
        }
        if let Some(interpolation) = recipe.interpolation {
            t.interpolation = interpolation;
        }
        t.auto_augment = recipe.auto_augment();
        t.color_jitter = recipe.color_jitter();
        t.random_erase = recipe.random_erase;
        if t.resize < t.crop {
            return Err(TrainError::Config(format!(
                "the evaluation resize ({}) must be at least its crop ({})",
                t.resize, t.crop
            )));
        }
        if let Some(mean) = config.mean {
            t.mean = mean;
        }
        if let Some(std) = config.std {
            t.std = std;
        }
        t.scale = (config.min_scale, 1.0);
        t.validate()
            .map_err(|e| TrainError::Config(format!("the transforms of {}: {e}", config.model)))?;
        let spec = info.input;
        let [min_h, min_w] = spec.min_size;
        // A model of one size only (ViT) is checked once built, as a weight file may set its
        // size (the SWAG files' 384 or 512): see `check_input_size`.
        if spec.exact && t.train_size != t.crop {
            return Err(TrainError::Config(format!(
                "{} takes one input size: the training crop ({}) and the evaluation crop ({}) \
                 must be equal",
                config.model, t.train_size, t.crop
            )));
        }
        if !spec.exact && (t.train_size.min(t.crop) < min_h || t.train_size.min(t.crop) < min_w) {
            return Err(TrainError::Config(format!(
                "{} needs images of at least {min_h}x{min_w}; the training crop is {}, the \
                 evaluation crop {}",
                config.model, t.train_size, t.crop
            )));
        }
        Ok(t)
    }

    /// Writes the configuration as JSON, atomically.
    pub fn save(&self, path: &Path) -> Result<(), TrainError> {
        crate::artifact::write_json(path, self)
    }

    /// Reads a configuration written by [`Self::save`], checked as a new run's would be
    /// ([`Self::validate`], the model's name and its transforms): any error names the file.
    pub fn load(path: &Path) -> Result<Self, TrainError> {
        let config: Self = crate::artifact::read_json(path)?;
        config
            .validate()
            .and_then(|()| config.transforms().map(|_| ()))
            .map_err(|e| TrainError::Json {
                path: path.to_path_buf(),
                message: e.to_string(),
            })?;
        Ok(config)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `new` is the tutorial's recipe: lr 0.001 for 7 epochs, then 0.0001 (SGD, momentum 0.9).
    #[test]
    fn new_is_torchvisions_transfer_learning_recipe() {
        let config = TrainConfig::new("resnet18", "data");
        assert_eq!(
            (config.optimizer, config.momentum, config.lr),
            (OptimizerKind::Sgd, 0.9, 1e-3)
        );
        let steps_per_epoch = 5;
        let mut scheduler = config.lr_scheduler(steps_per_epoch).unwrap();
        let lrs: Vec<f64> = (0..config.epochs * steps_per_epoch)
            .map(|_| scheduler.step().base())
            .collect();
        for (step, lr) in lrs.iter().enumerate() {
            let want = if step < 7 * steps_per_epoch {
                1e-3
            } else {
                1e-4
            };
            assert!(
                (lr - want).abs() < 1e-12,
                "step {step}: lr {lr}, want {want}"
            );
        }
    }
}
