//! The options of torchvision's classification recipe (`references/classification/train.py`)
//! and timm's that `zoo-train` takes, with torchvision's names and defaults: the training
//! augmentations ([`crate::augment`]), the crop sizes and interpolation, the warmup's shape,
//! gradient clipping, the weight decay of norms and biases, the EMA of the weights. A
//! `train.json` written before these existed reads as all of them off.

use serde::{Deserialize, Serialize};

use crate::augment::Resampling;
use crate::augment::batch::MixupCutmix;
use crate::augment::policy::{AutoAugment, ColorJitter};

/// torchvision's `--auto-augment` policies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum AutoAugmentName {
    /// `TrivialAugmentWide`.
    #[value(name = "ta_wide")]
    TaWide,
    /// `RandAugment(magnitude=--ra-magnitude)`.
    Ra,
    /// `AugMix(severity=--augmix-severity)`.
    Augmix,
    /// `AutoAugment(IMAGENET)`.
    Imagenet,
    /// `AutoAugment(CIFAR10)`.
    Cifar10,
    /// `AutoAugment(SVHN)`.
    Svhn,
}

/// How the learning rate warms up (`--lr-warmup-method`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum WarmupMethod {
    /// From `lr * decay` up to `lr` (`LinearLR`), step by step.
    #[default]
    Linear,
    /// `lr * decay` throughout the warmup (`ConstantLR`).
    Constant,
}

/// The recipe's options. Defaults: torchvision's, every augmentation and regulariser off.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, clap::Args)]
#[serde(default)]
pub struct Recipe {
    /// Automatic augmentation after the crop and flip (torchvision's policies on uint8 images,
    /// their geometric operations bilinear).
    #[arg(long, value_enum)]
    pub auto_augment: Option<AutoAugmentName>,
    /// RandAugment's magnitude bin, of 31.
    #[arg(long, default_value_t = 9)]
    pub ra_magnitude: usize,
    /// AugMix's severity, 1 to 10.
    #[arg(long, default_value_t = 3)]
    pub augmix_severity: usize,
    /// Probability of RandomErasing (after normalisation; rectangles of 2-33% of the image,
    /// set to 0).
    #[arg(long, default_value_t = 0.0)]
    pub random_erase: f64,
    /// timm's colour jitter: brightness, contrast and saturation factors drawn from
    /// `[1 - x, 1 + x]`, in a random order. Exclusive with --auto-augment (timm drops it then).
    #[arg(long, default_value_t = 0.0)]
    pub color_jitter: f64,
    /// MixUp's alpha (0: off). With --cutmix-alpha too, each batch gets one of the two.
    #[arg(long, default_value_t = 0.0)]
    pub mixup_alpha: f64,
    /// CutMix's alpha (0: off).
    #[arg(long, default_value_t = 0.0)]
    pub cutmix_alpha: f64,
    /// Resampling of the training crops and the evaluation resize (default: the weights'
    /// transform's, bilinear for most).
    #[arg(long, value_enum)]
    pub interpolation: Option<Resampling>,
    /// Side of the training crops (default: --image-size, else the model's size).
    #[arg(long)]
    pub train_crop_size: Option<usize>,
    /// Evaluation: the shorter side resized to this (default: --resize).
    #[arg(long)]
    pub val_resize_size: Option<usize>,
    /// Evaluation: the center crop's side (default: --image-size, else the model's size).
    #[arg(long)]
    pub val_crop_size: Option<usize>,
    /// Shape of the warmup (--warmup-epochs).
    #[arg(long, value_enum, default_value = "linear")]
    pub lr_warmup_method: WarmupMethod,
    /// The warmup's starting fraction of --lr.
    #[arg(long, default_value_t = 0.01)]
    pub lr_warmup_decay: f64,
    /// Scales the gradients so that their global L2 norm is at most this
    /// (`clip_grad_norm_`, over every parameter at once: Burn's own gradient clipping is per
    /// parameter tensor, see [`crate::step::clip_grad_norm`]).
    #[arg(long)]
    pub clip_grad_norm: Option<f32>,
    /// Weight decay of the normalisation layers' weights and biases (default: --weight-decay).
    #[arg(long)]
    pub norm_weight_decay: Option<f64>,
    /// Weight decay of every bias, the norms' included (default: theirs).
    #[arg(long)]
    pub bias_weight_decay: Option<f64>,
    /// Keep an exponential moving average of the weights (and BatchNorm statistics), validate
    /// and save it rather than the raw weights.
    #[arg(long)]
    pub model_ema: bool,
    /// Optimiser steps between EMA updates.
    #[arg(long, default_value_t = 32)]
    pub model_ema_steps: usize,
    /// EMA decay per image seen, as torchvision scales it: the per-update decay is
    /// `1 - min(1, (1 - decay) * batch * steps / epochs)`.
    #[arg(long, default_value_t = 0.99998)]
    pub model_ema_decay: f64,
    /// Mixed precision: refused, Burn 0.22 has none for training (no autocast, no gradient
    /// scaler); zoo-train trains in f32 on every backend.
    #[arg(long)]
    pub amp: bool,
}

impl Default for Recipe {
    fn default() -> Self {
        Self {
            auto_augment: None,
            ra_magnitude: 9,
            augmix_severity: 3,
            random_erase: 0.0,
            color_jitter: 0.0,
            mixup_alpha: 0.0,
            cutmix_alpha: 0.0,
            interpolation: None,
            train_crop_size: None,
            val_resize_size: None,
            val_crop_size: None,
            lr_warmup_method: WarmupMethod::Linear,
            lr_warmup_decay: 0.01,
            clip_grad_norm: None,
            norm_weight_decay: None,
            bias_weight_decay: None,
            model_ema: false,
            model_ema_steps: 32,
            model_ema_decay: 0.99998,
            amp: false,
        }
    }
}

impl Recipe {
    /// The automatic augmentation with its settings.
    pub fn auto_augment(&self) -> Option<AutoAugment> {
        self.auto_augment.map(|name| match name {
            AutoAugmentName::TaWide => AutoAugment::TaWide,
            AutoAugmentName::Ra => AutoAugment::Ra {
                magnitude: self.ra_magnitude,
            },
            AutoAugmentName::Augmix => AutoAugment::Augmix {
                severity: self.augmix_severity,
            },
            AutoAugmentName::Imagenet => AutoAugment::Imagenet,
            AutoAugmentName::Cifar10 => AutoAugment::Cifar10,
            AutoAugmentName::Svhn => AutoAugment::Svhn,
        })
    }

    /// timm's colour jitter, `None` when off.
    pub fn color_jitter(&self) -> Option<ColorJitter> {
        (self.color_jitter > 0.0).then(|| ColorJitter::uniform(self.color_jitter))
    }

    /// MixUp and CutMix.
    pub fn mixup_cutmix(&self) -> MixupCutmix {
        MixupCutmix {
            mixup_alpha: self.mixup_alpha,
            cutmix_alpha: self.cutmix_alpha,
        }
    }

    /// Rejects settings that cannot run, naming the option (the augmentations' own ranges are
    /// checked with the transforms).
    pub fn validate(&self) -> Result<(), String> {
        if self.amp {
            return Err(
                "--amp: Burn 0.22 has no mixed-precision training (no autocast, no \
                        gradient scaler); zoo-train trains in f32 on every backend"
                    .into(),
            );
        }
        self.mixup_cutmix().validate()?;
        if !(self.color_jitter.is_finite() && self.color_jitter >= 0.0) {
            return Err(format!(
                "--color-jitter must be >= 0, not {}",
                self.color_jitter
            ));
        }
        if !(self.lr_warmup_decay > 0.0 && self.lr_warmup_decay <= 1.0) {
            return Err(format!(
                "--lr-warmup-decay must be in (0, 1], not {}",
                self.lr_warmup_decay
            ));
        }
        if let Some(norm) = self.clip_grad_norm.filter(|n| !(n.is_finite() && *n > 0.0)) {
            return Err(format!("--clip-grad-norm must be positive, not {norm}"));
        }
        for (flag, decay) in [
            ("--norm-weight-decay", self.norm_weight_decay),
            ("--bias-weight-decay", self.bias_weight_decay),
        ] {
            if let Some(decay) = decay.filter(|d| !(d.is_finite() && *d >= 0.0)) {
                return Err(format!("{flag} must be >= 0, not {decay}"));
            }
        }
        if self.model_ema_steps == 0 {
            return Err("--model-ema-steps must be at least 1".into());
        }
        if !(0.0..1.0).contains(&self.model_ema_decay) {
            return Err(format!(
                "--model-ema-decay must be in [0, 1), not {}",
                self.model_ema_decay
            ));
        }
        Ok(())
    }

    /// The EMA's decay per update, as torchvision's recipe derives it from `--model-ema-decay`
    /// (a decay per image), the effective batch, the steps between updates and the epochs:
    /// `alpha = min(1, (1 - decay) * batch * steps / epochs)`, decay `1 - alpha`.
    pub fn ema_update_decay(&self, effective_batch: usize, epochs: usize) -> f64 {
        let adjust = effective_batch as f64 * self.model_ema_steps as f64 / epochs.max(1) as f64;
        1.0 - ((1.0 - self.model_ema_decay) * adjust).min(1.0)
    }
}
