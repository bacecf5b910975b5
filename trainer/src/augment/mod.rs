//! Training and evaluation transforms as torchvision's classification recipe defines them
//! (`references/classification/presets.py`).
//!
//! Training: `RandomResizedCrop(size, scale=(0.08, 1), ratio=(3/4, 4/3), interpolation)`,
//! `RandomHorizontalFlip()`, then, where asked, timm's `ColorJitter` or one of torchvision's
//! automatic augmentations ([`policy`], the operations in [`ops`]), `PILToTensor()`,
//! `ConvertImageDtype(float)`, `Normalize(mean, std)`, `RandomErasing(p)` ([`batch`]); MixUp
//! or CutMix on the batch ([`batch::MixupCutmix`]). Evaluation: `Resize(resize,
//! interpolation)`, `CenterCrop(crop)`, `ToTensor()`, `Normalize(mean, std)`, the zoo's
//! `transforms` module.

pub mod batch;
pub mod ops;
pub mod policy;

use image::{RgbImage, imageops};
use model_zoo::registry::{Interpolation, Preprocess};
use model_zoo::transforms::{normalize, resize_and_crop, resize_to, to_chw};
use rand::Rng;
use serde::{Deserialize, Serialize};

use batch::RandomErasing;
use ops::Resample;
use policy::{AutoAugment, ColorJitter};

/// The resampling of the training crops and the evaluation resize: `model_zoo`'s
/// [`Interpolation`] as `--interpolation`, `train.json` and `preprocess.json` name it (the
/// library's enum has neither `clap` nor `serde`, which an inference-only user does not need).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum Resampling {
    /// PIL's bilinear, antialiased (torchvision's default).
    #[default]
    Bilinear,
    /// PIL's bicubic, antialiased.
    Bicubic,
}

impl Resampling {
    /// The library's name for it.
    pub fn interpolation(self) -> Interpolation {
        match self {
            Resampling::Bilinear => Interpolation::Bilinear,
            Resampling::Bicubic => Interpolation::Bicubic,
        }
    }

    /// The trainer's name for the library's.
    pub fn from_interpolation(interpolation: Interpolation) -> Self {
        match interpolation {
            Interpolation::Bilinear => Resampling::Bilinear,
            Interpolation::Bicubic => Resampling::Bicubic,
        }
    }
}

/// How images become tensors, for training and for evaluation. Saved beside a trained model
/// (`preprocess.json`) so that `predict` needs nothing else.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Transforms {
    /// Side of the training crop (`RandomResizedCrop(size)`).
    pub train_size: usize,
    /// Evaluation: shorter side resized to this.
    pub resize: usize,
    /// Evaluation: center crop side.
    pub crop: usize,
    /// Per-channel mean (RGB), after scaling to `[0, 1]`.
    pub mean: [f32; 3],
    /// Per-channel standard deviation (RGB).
    pub std: [f32; 3],
    /// `RandomResizedCrop`'s area fraction range.
    pub scale: (f64, f64),
    /// `RandomResizedCrop`'s aspect-ratio range.
    pub ratio: (f64, f64),
    /// Probability of a horizontal flip.
    pub flip: f64,
    /// The resampling of the training crops and the evaluation resize (`--interpolation`),
    /// and of the automatic augmentations' geometric operations (bilinear; nearest where
    /// torchvision's tensor kernels have no bicubic, see [`Transforms::resample`]).
    #[serde(default)]
    pub interpolation: Resampling,
    /// torchvision's `--auto-augment`.
    #[serde(default)]
    pub auto_augment: Option<AutoAugment>,
    /// timm's `--color-jitter`.
    #[serde(default)]
    pub color_jitter: Option<ColorJitter>,
    /// `RandomErasing`'s probability (`--random-erase`), `0` for none.
    #[serde(default)]
    pub random_erase: f64,
}

/// The largest image side a transform may produce. torchvision's largest pretrained size is 518
/// (ViT-H/14 SWAG); a typo such as `22400` would otherwise allocate gigabytes per image, and a
/// damaged `preprocess.json` could ask for anything.
pub const MAX_SIDE: usize = 4096;

impl Transforms {
    /// Rejects transforms that cannot run: a size of 0 or above [`MAX_SIDE`], a resize below the
    /// crop, a mean that is not finite, a std that is not positive and finite, a crop scale or
    /// aspect-ratio range that is empty, not positive or not finite, a flip probability outside
    /// `[0, 1]`. The message names the field.
    pub fn validate(&self) -> Result<(), String> {
        for (name, side) in [
            ("train_size", self.train_size),
            ("resize", self.resize),
            ("crop", self.crop),
        ] {
            if !(1..=MAX_SIDE).contains(&side) {
                return Err(format!("{name} must be in 1..={MAX_SIDE}, not {side}"));
            }
        }
        if self.resize < self.crop {
            return Err(format!(
                "resize ({}) must be at least crop ({})",
                self.resize, self.crop
            ));
        }
        if !self.mean.iter().all(|m| m.is_finite()) {
            return Err(format!("mean must be finite, not {:?}", self.mean));
        }
        if !self.std.iter().all(|s| s.is_finite() && *s > 0.0) {
            return Err(format!(
                "std must be positive and finite, not {:?}",
                self.std
            ));
        }
        for (name, (lo, hi)) in [("scale", self.scale), ("ratio", self.ratio)] {
            if !(lo.is_finite() && hi.is_finite() && 0.0 < lo && lo <= hi) {
                return Err(format!(
                    "{name} must be a range 0 < low <= high, finite, not ({lo}, {hi})"
                ));
            }
        }
        if !(0.0..=1.0).contains(&self.flip) {
            return Err(format!("flip must be in [0, 1], not {}", self.flip));
        }
        if let Some(policy) = &self.auto_augment {
            policy.validate()?;
        }
        if let Some(jitter) = &self.color_jitter {
            jitter.validate()?;
            if self.auto_augment.is_some() {
                // timm leaves the colour jitter out when an automatic augmentation is on; a
                // run that asks for both is told rather than silently given one.
                return Err(
                    "--color-jitter and --auto-augment are exclusive (timm drops the jitter \
                     when an automatic augmentation is on)"
                        .into(),
                );
            }
        }
        RandomErasing::new(self.random_erase).validate()?;
        Ok(())
    }

    /// torchvision's recipe around an evaluation transform: train crops of `preprocess.crop`.
    pub fn from_preprocess(preprocess: &Preprocess) -> Self {
        Self {
            train_size: preprocess.crop,
            resize: preprocess.resize,
            crop: preprocess.crop,
            mean: preprocess.mean,
            std: preprocess.std,
            scale: (0.08, 1.0),
            ratio: (3.0 / 4.0, 4.0 / 3.0),
            flip: 0.5,
            interpolation: Resampling::from_interpolation(preprocess.interpolation),
            auto_augment: None,
            color_jitter: None,
            random_erase: 0.0,
        }
    }

    /// How the automatic augmentations' geometric operations sample: torchvision's recipe
    /// passes its `--interpolation` to them; bilinear is bilinear, and bicubic, which
    /// torchvision's tensor kernels do not have, samples bilinearly too.
    pub fn resample(&self) -> Resample {
        match self.interpolation {
            Resampling::Bilinear | Resampling::Bicubic => Resample::Bilinear,
        }
    }

    /// The evaluation transform as the zoo's [`Preprocess`].
    pub fn eval_preprocess(&self) -> Preprocess {
        Preprocess {
            resize: self.resize,
            crop: self.crop,
            interpolation: self.interpolation.interpolation(),
            mean: self.mean,
            std: self.std,
        }
    }

    /// Training transform of one image: a normalised `[3, train_size, train_size]` in CHW order.
    pub fn train(&self, image: &RgbImage, rng: &mut impl Rng) -> Vec<f32> {
        let (left, top, width, height) =
            random_resized_crop_params(image.width(), image.height(), self.scale, self.ratio, rng);
        let crop = imageops::crop_imm(image, left, top, width, height).to_image();
        let size = self.train_size as u32;
        let mut out = resize_to(&crop, size, size, self.interpolation.interpolation());
        if rng.random_bool(self.flip.clamp(0.0, 1.0)) {
            imageops::flip_horizontal_in_place(&mut out);
        }
        if let Some(jitter) = &self.color_jitter {
            out = jitter.apply(&out, rng);
        }
        if let Some(policy) = &self.auto_augment {
            out = policy.apply(&out, self.resample(), rng);
        }
        let mut chw = to_chw(&out);
        normalize(&mut chw, self.mean, self.std);
        let side = size as usize;
        if let Some(rect) = RandomErasing::new(self.random_erase).params(side, side, rng) {
            batch::erase(&mut chw, side, side, rect, 0.0);
        }
        chw
    }

    /// Evaluation transform of one image: `[3, crop, crop]`, CHW.
    pub fn eval(&self, image: &RgbImage) -> Vec<f32> {
        let preprocess = self.eval_preprocess();
        let mut chw = to_chw(&resize_and_crop(
            &image::DynamicImage::ImageRgb8(image.clone()),
            &preprocess,
        ));
        normalize(&mut chw, self.mean, self.std);
        chw
    }
}

/// torchvision's `RandomResizedCrop.get_params`: `(left, top, width, height)`. Ten tries at a
/// random area fraction in `scale` and a log-uniform aspect ratio in `ratio`; then the central
/// crop clamped to `ratio`.
pub fn random_resized_crop_params(
    width: u32,
    height: u32,
    scale: (f64, f64),
    ratio: (f64, f64),
    rng: &mut impl Rng,
) -> (u32, u32, u32, u32) {
    let area = f64::from(width) * f64::from(height);
    let (log_lo, log_hi) = (ratio.0.ln(), ratio.1.ln());
    for _ in 0..10 {
        let target_area = area * rng.random_range(scale.0..=scale.1);
        let aspect = rng.random_range(log_lo..=log_hi).exp();
        let w = (target_area * aspect).sqrt().round_ties_even() as i64;
        let h = (target_area / aspect).sqrt().round_ties_even() as i64;
        if 0 < w && w <= i64::from(width) && 0 < h && h <= i64::from(height) {
            let (w, h) = (w as u32, h as u32);
            let top = rng.random_range(0..=height - h);
            let left = rng.random_range(0..=width - w);
            return (left, top, w, h);
        }
    }
    let in_ratio = f64::from(width) / f64::from(height);
    let (w, h) = if in_ratio < ratio.0.min(ratio.1) {
        (
            width,
            (f64::from(width) / ratio.0.min(ratio.1)).round_ties_even() as u32,
        )
    } else if in_ratio > ratio.0.max(ratio.1) {
        (
            (f64::from(height) * ratio.0.max(ratio.1)).round_ties_even() as u32,
            height,
        )
    } else {
        (width, height)
    };
    ((width - w) / 2, (height - h) / 2, w, h)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    #[test]
    fn crops_stay_inside_and_follow_scale_and_ratio() {
        let mut rng = StdRng::seed_from_u64(1);
        for _ in 0..500 {
            let (l, t, w, h) =
                random_resized_crop_params(64, 48, (0.08, 1.0), (0.75, 4.0 / 3.0), &mut rng);
            assert!(l + w <= 64 && t + h <= 48 && w > 0 && h > 0);
            let fraction = f64::from(w * h) / f64::from(64 * 48);
            assert!(fraction > 0.05 && fraction <= 1.0, "{fraction}");
        }
        // A very wide image falls back to the central crop at the largest ratio.
        let (l, t, w, h) =
            random_resized_crop_params(400, 10, (0.99, 1.0), (0.75, 4.0 / 3.0), &mut rng);
        assert_eq!((w, h), (13, 10));
        assert_eq!((l, t), ((400 - 13) / 2, 0));
    }

    #[test]
    fn train_and_eval_shapes() {
        let transforms = Transforms {
            train_size: 32,
            resize: 36,
            crop: 32,
            ..Transforms::from_preprocess(&Preprocess::default())
        };
        let image = RgbImage::from_pixel(50, 40, image::Rgb([255, 0, 128]));
        let mut rng = StdRng::seed_from_u64(0);
        assert_eq!(transforms.train(&image, &mut rng).len(), 3 * 32 * 32);
        let eval = transforms.eval(&image);
        assert_eq!(eval.len(), 3 * 32 * 32);
        // A uniform image stays uniform: red channel (1 - 0.485) / 0.229.
        assert!((eval[0] - (1.0 - 0.485) / 0.229).abs() < 1e-5);
    }
}
