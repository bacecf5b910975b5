//! torchvision's automatic augmentation policies (`AutoAugment` with its ImageNet, CIFAR-10
//! and SVHN policies, `RandAugment`, `TrivialAugmentWide`, `AugMix`) and `ColorJitter`, drawing
//! from the caller's generator: the operations and their magnitudes as torchvision's
//! `_AUGMENTATION_SPACE`s define them ([`magnitudes`] is checked against them by `cargo xtask
//! parity`), the draws from the zoo's per-sample generator (runs repeat by seed, see
//! [`crate::data::sample_seed`]), not from torch's.

use image::RgbImage;
use rand::Rng;
use rand_distr::{Distribution, Gamma};
use serde::{Deserialize, Serialize};

use super::ops::{self, Op, Resample};

/// An operation of the augmentation spaces, without its magnitude.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// [`Op::Identity`].
    Identity,
    /// [`Op::ShearX`].
    ShearX,
    /// [`Op::ShearY`].
    ShearY,
    /// [`Op::TranslateX`].
    TranslateX,
    /// [`Op::TranslateY`].
    TranslateY,
    /// [`Op::Rotate`].
    Rotate,
    /// [`Op::Brightness`].
    Brightness,
    /// [`Op::Color`].
    Color,
    /// [`Op::Contrast`].
    Contrast,
    /// [`Op::Sharpness`].
    Sharpness,
    /// [`Op::Posterize`].
    Posterize,
    /// [`Op::Solarize`].
    Solarize,
    /// [`Op::AutoContrast`].
    AutoContrast,
    /// [`Op::Equalize`].
    Equalize,
    /// [`Op::Invert`].
    Invert,
}

/// Which policy's augmentation space: their operations and magnitude ranges differ.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Space {
    /// `AutoAugment` (with `Invert`, without `Identity`).
    AutoAugment,
    /// `RandAugment`.
    RandAugment,
    /// `TrivialAugmentWide`: wider ranges.
    TrivialAugmentWide,
    /// `AugMix` with `all_ops` (the four enhancements included).
    AugMix,
}

use Kind::*;

/// `RandAugment`'s and `TrivialAugmentWide`'s 14 operations, in torchvision's order (the
/// order a uniform draw indexes).
const RA_OPS: [Kind; 14] = [
    Identity,
    ShearX,
    ShearY,
    TranslateX,
    TranslateY,
    Rotate,
    Brightness,
    Color,
    Contrast,
    Sharpness,
    Posterize,
    Solarize,
    AutoContrast,
    Equalize,
];

/// `AugMix`'s operations with `all_ops=True`, in torchvision's order.
const AUGMIX_OPS: [Kind; 13] = [
    ShearX,
    ShearY,
    TranslateX,
    TranslateY,
    Rotate,
    Posterize,
    Solarize,
    AutoContrast,
    Equalize,
    Brightness,
    Color,
    Contrast,
    Sharpness,
];

impl Space {
    /// The operations a uniform draw picks from, in torchvision's order.
    pub fn ops(self) -> &'static [Kind] {
        match self {
            Space::RandAugment | Space::TrivialAugmentWide => &RA_OPS,
            Space::AugMix => &AUGMIX_OPS,
            Space::AutoAugment => &[
                ShearX,
                ShearY,
                TranslateX,
                TranslateY,
                Rotate,
                Brightness,
                Color,
                Contrast,
                Sharpness,
                Posterize,
                Solarize,
                AutoContrast,
                Equalize,
                Invert,
            ],
        }
    }
}

/// `torch.linspace(start, end, steps)` in `f32`, as PyTorch's CPU kernel computes it: from the
/// start for the first half, from the end for the second, each a fused multiply-add (as the
/// compiler contracts `start + step * i`; rounded twice, 0.666... of `linspace(1, 0, 10)` is one
/// unit lower than torch's).
fn linspace(start: f32, end: f32, steps: usize) -> Vec<f32> {
    if steps == 1 {
        return vec![start];
    }
    let step = (end - start) / (steps - 1) as f32;
    let half = steps / 2;
    (0..steps)
        .map(|i| {
            if i < half {
                step.mul_add(i as f32, start)
            } else {
                (-step).mul_add((steps - 1 - i) as f32, end)
            }
        })
        .collect()
}

/// The magnitudes of `kind` in `space` for `bins` bins on an image of `height` x `width`, and
/// whether a draw flips their sign; `None` for the operations without one.
pub fn magnitudes(
    space: Space,
    kind: Kind,
    bins: usize,
    height: u32,
    width: u32,
) -> Option<(Vec<f64>, bool)> {
    let wide = space == Space::TrivialAugmentWide;
    let lin = |end: f32| {
        Some((
            linspace(0.0, end, bins)
                .into_iter()
                .map(f64::from)
                .collect(),
            true,
        ))
    };
    // `(top - (arange(bins) / ((bins - 1) / div))).round().int()`.
    let posterize = |top: f32, div: f64| {
        let d = ((bins as f64 - 1.0) / div) as f32;
        let values = (0..bins)
            .map(|i| f64::from((top - i as f32 / d).round_ties_even()))
            .collect();
        Some((values, false))
    };
    match kind {
        Identity | AutoContrast | Equalize | Invert => None,
        ShearX | ShearY if wide => lin(0.99),
        ShearX | ShearY => lin(0.3),
        TranslateX | TranslateY if wide => lin(32.0),
        TranslateX | TranslateY if space == Space::AugMix => {
            let side = if kind == TranslateX { width } else { height };
            lin((f64::from(side) / 3.0) as f32)
        }
        TranslateX | TranslateY => {
            let side = if kind == TranslateX { width } else { height };
            lin((150.0 / 331.0 * f64::from(side)) as f32)
        }
        Rotate if wide => lin(135.0),
        Rotate => lin(30.0),
        Brightness | Color | Contrast | Sharpness if wide => lin(0.99),
        Brightness | Color | Contrast | Sharpness => lin(0.9),
        Posterize if wide => posterize(8.0, 6.0),
        Posterize if space == Space::AugMix => posterize(4.0, 4.0),
        Posterize => posterize(8.0, 4.0),
        Solarize => Some((
            linspace(1.0, 0.0, bins)
                .into_iter()
                .map(f64::from)
                .collect(),
            false,
        )),
    }
}

impl Kind {
    /// This operation with `magnitude`.
    pub fn with(self, magnitude: f64) -> Op {
        match self {
            Identity => Op::Identity,
            ShearX => Op::ShearX(magnitude),
            ShearY => Op::ShearY(magnitude),
            TranslateX => Op::TranslateX(magnitude),
            TranslateY => Op::TranslateY(magnitude),
            Rotate => Op::Rotate(magnitude),
            Brightness => Op::Brightness(magnitude),
            Color => Op::Color(magnitude),
            Contrast => Op::Contrast(magnitude),
            Sharpness => Op::Sharpness(magnitude),
            Posterize => Op::Posterize(magnitude.clamp(0.0, 8.0) as u8),
            Solarize => Op::Solarize(magnitude),
            AutoContrast => Op::AutoContrast,
            Equalize => Op::Equalize,
            Invert => Op::Invert,
        }
    }
}

/// `_AutoAugmentBase`'s draw of one operation at magnitude bin `bin` (of `bins`): the
/// magnitude, negated with probability 1/2 where the operation is signed (`rand() <= 0.5`).
fn draw(
    space: Space,
    kind: Kind,
    bin: Option<usize>,
    bins: usize,
    size: (u32, u32),
    rng: &mut impl Rng,
) -> Op {
    let magnitude = match magnitudes(space, kind, bins, size.0, size.1) {
        Some((values, signed)) => {
            let bin = bin.unwrap_or_else(|| rng.random_range(0..bins));
            let m = values[bin.min(values.len() - 1)];
            if signed && rng.random::<f64>() <= 0.5 {
                -m
            } else {
                m
            }
        }
        None => 0.0,
    };
    kind.with(magnitude)
}

/// torchvision's `AutoAugmentPolicy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AutoAugmentPolicy {
    /// Learned on ImageNet.
    Imagenet,
    /// Learned on CIFAR-10.
    Cifar10,
    /// Learned on SVHN.
    Svhn,
}

type SubPolicy = [(Kind, f64, Option<usize>); 2];

impl AutoAugmentPolicy {
    /// The 25 sub-policies: two (operation, probability, magnitude bin) each, as torchvision's
    /// `AutoAugment._get_policies`.
    pub fn sub_policies(self) -> [SubPolicy; 25] {
        match self {
            AutoAugmentPolicy::Imagenet => [
                [(Posterize, 0.4, Some(8)), (Rotate, 0.6, Some(9))],
                [(Solarize, 0.6, Some(5)), (AutoContrast, 0.6, None)],
                [(Equalize, 0.8, None), (Equalize, 0.6, None)],
                [(Posterize, 0.6, Some(7)), (Posterize, 0.6, Some(6))],
                [(Equalize, 0.4, None), (Solarize, 0.2, Some(4))],
                [(Equalize, 0.4, None), (Rotate, 0.8, Some(8))],
                [(Solarize, 0.6, Some(3)), (Equalize, 0.6, None)],
                [(Posterize, 0.8, Some(5)), (Equalize, 1.0, None)],
                [(Rotate, 0.2, Some(3)), (Solarize, 0.6, Some(8))],
                [(Equalize, 0.6, None), (Posterize, 0.4, Some(6))],
                [(Rotate, 0.8, Some(8)), (Color, 0.4, Some(0))],
                [(Rotate, 0.4, Some(9)), (Equalize, 0.6, None)],
                [(Equalize, 0.0, None), (Equalize, 0.8, None)],
                [(Invert, 0.6, None), (Equalize, 1.0, None)],
                [(Color, 0.6, Some(4)), (Contrast, 1.0, Some(8))],
                [(Rotate, 0.8, Some(8)), (Color, 1.0, Some(2))],
                [(Color, 0.8, Some(8)), (Solarize, 0.8, Some(7))],
                [(Sharpness, 0.4, Some(7)), (Invert, 0.6, None)],
                [(ShearX, 0.6, Some(5)), (Equalize, 1.0, None)],
                [(Color, 0.4, Some(0)), (Equalize, 0.6, None)],
                [(Equalize, 0.4, None), (Solarize, 0.2, Some(4))],
                [(Solarize, 0.6, Some(5)), (AutoContrast, 0.6, None)],
                [(Invert, 0.6, None), (Equalize, 1.0, None)],
                [(Color, 0.6, Some(4)), (Contrast, 1.0, Some(8))],
                [(Equalize, 0.8, None), (Equalize, 0.6, None)],
            ],
            AutoAugmentPolicy::Cifar10 => [
                [(Invert, 0.1, None), (Contrast, 0.2, Some(6))],
                [(Rotate, 0.7, Some(2)), (TranslateX, 0.3, Some(9))],
                [(Sharpness, 0.8, Some(1)), (Sharpness, 0.9, Some(3))],
                [(ShearY, 0.5, Some(8)), (TranslateY, 0.7, Some(9))],
                [(AutoContrast, 0.5, None), (Equalize, 0.9, None)],
                [(ShearY, 0.2, Some(7)), (Posterize, 0.3, Some(7))],
                [(Color, 0.4, Some(3)), (Brightness, 0.6, Some(7))],
                [(Sharpness, 0.3, Some(9)), (Brightness, 0.7, Some(9))],
                [(Equalize, 0.6, None), (Equalize, 0.5, None)],
                [(Contrast, 0.6, Some(7)), (Sharpness, 0.6, Some(5))],
                [(Color, 0.7, Some(7)), (TranslateX, 0.5, Some(8))],
                [(Equalize, 0.3, None), (AutoContrast, 0.4, None)],
                [(TranslateY, 0.4, Some(3)), (Sharpness, 0.2, Some(6))],
                [(Brightness, 0.9, Some(6)), (Color, 0.2, Some(8))],
                [(Solarize, 0.5, Some(2)), (Invert, 0.0, None)],
                [(Equalize, 0.2, None), (AutoContrast, 0.6, None)],
                [(Equalize, 0.2, None), (Equalize, 0.6, None)],
                [(Color, 0.9, Some(9)), (Equalize, 0.6, None)],
                [(AutoContrast, 0.8, None), (Solarize, 0.2, Some(8))],
                [(Brightness, 0.1, Some(3)), (Color, 0.7, Some(0))],
                [(Solarize, 0.4, Some(5)), (AutoContrast, 0.9, None)],
                [(TranslateY, 0.9, Some(9)), (TranslateY, 0.7, Some(9))],
                [(AutoContrast, 0.9, None), (Solarize, 0.8, Some(3))],
                [(Equalize, 0.8, None), (Invert, 0.1, None)],
                [(TranslateY, 0.7, Some(9)), (AutoContrast, 0.9, None)],
            ],
            AutoAugmentPolicy::Svhn => [
                [(ShearX, 0.9, Some(4)), (Invert, 0.2, None)],
                [(ShearY, 0.9, Some(8)), (Invert, 0.7, None)],
                [(Equalize, 0.6, None), (Solarize, 0.6, Some(6))],
                [(Invert, 0.9, None), (Equalize, 0.6, None)],
                [(Equalize, 0.6, None), (Rotate, 0.9, Some(3))],
                [(ShearX, 0.9, Some(4)), (AutoContrast, 0.8, None)],
                [(ShearY, 0.9, Some(8)), (Invert, 0.4, None)],
                [(ShearY, 0.9, Some(5)), (Solarize, 0.2, Some(6))],
                [(Invert, 0.9, None), (AutoContrast, 0.8, None)],
                [(Equalize, 0.6, None), (Rotate, 0.9, Some(3))],
                [(ShearX, 0.9, Some(4)), (Solarize, 0.3, Some(3))],
                [(ShearY, 0.8, Some(8)), (Invert, 0.7, None)],
                [(Equalize, 0.9, None), (TranslateY, 0.6, Some(6))],
                [(Invert, 0.9, None), (Equalize, 0.6, None)],
                [(Contrast, 0.3, Some(3)), (Rotate, 0.8, Some(4))],
                [(Invert, 0.8, None), (TranslateY, 0.0, Some(2))],
                [(ShearY, 0.7, Some(6)), (Solarize, 0.4, Some(8))],
                [(Invert, 0.6, None), (Rotate, 0.8, Some(4))],
                [(ShearY, 0.3, Some(7)), (TranslateX, 0.9, Some(3))],
                [(ShearX, 0.1, Some(6)), (Invert, 0.6, None)],
                [(Solarize, 0.7, Some(2)), (TranslateY, 0.6, Some(7))],
                [(ShearY, 0.8, Some(4)), (Invert, 0.8, None)],
                [(ShearX, 0.7, Some(9)), (TranslateY, 0.8, Some(3))],
                [(ShearY, 0.8, Some(5)), (AutoContrast, 0.7, None)],
                [(ShearX, 0.7, Some(2)), (Invert, 0.1, None)],
            ],
        }
    }
}

/// The `--auto-augment` policies of torchvision's classification recipe, with their settings.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "policy", rename_all = "snake_case")]
pub enum AutoAugment {
    /// `TrivialAugmentWide(num_magnitude_bins=31)`.
    TaWide,
    /// `RandAugment(num_ops=2, magnitude, num_magnitude_bins=31)`.
    Ra {
        /// `--ra-magnitude` (torchvision: 9).
        magnitude: usize,
    },
    /// `AugMix(severity, mixture_width=3, chain_depth=-1, alpha=1, all_ops=True)`.
    Augmix {
        /// `--augmix-severity` (torchvision: 3), 1 to 10.
        severity: usize,
    },
    /// `AutoAugment(AutoAugmentPolicy.IMAGENET)`.
    Imagenet,
    /// `AutoAugment(AutoAugmentPolicy.CIFAR10)`.
    Cifar10,
    /// `AutoAugment(AutoAugmentPolicy.SVHN)`.
    Svhn,
}

/// `RandAugment`'s and `TrivialAugmentWide`'s bin count.
const BINS: usize = 31;
/// `AutoAugment`'s and `AugMix`'s (`_PARAMETER_MAX`).
const AA_BINS: usize = 10;

impl AutoAugment {
    /// Rejects settings torchvision rejects: a RandAugment magnitude outside the 31 bins, an
    /// AugMix severity outside 1..=10.
    pub fn validate(&self) -> Result<(), String> {
        match *self {
            AutoAugment::Ra { magnitude } if magnitude >= BINS => Err(format!(
                "--ra-magnitude must be below {BINS}, not {magnitude}"
            )),
            AutoAugment::Augmix { severity } if !(1..=AA_BINS).contains(&severity) => Err(format!(
                "--augmix-severity must be in 1..={AA_BINS}, not {severity}"
            )),
            _ => Ok(()),
        }
    }

    /// The policy applied to `image` with draws from `rng`; geometric operations sample with
    /// `resample` (torchvision's recipe passes its `--interpolation`).
    pub fn apply(&self, image: &RgbImage, resample: Resample, rng: &mut impl Rng) -> RgbImage {
        let size = (image.height(), image.width());
        match *self {
            AutoAugment::TaWide => {
                let space = Space::TrivialAugmentWide;
                let kind = space.ops()[rng.random_range(0..space.ops().len())];
                draw(space, kind, None, BINS, size, rng).apply(image, resample)
            }
            AutoAugment::Ra { magnitude } => {
                let space = Space::RandAugment;
                let mut image = image.clone();
                for _ in 0..2 {
                    let kind = space.ops()[rng.random_range(0..space.ops().len())];
                    image =
                        draw(space, kind, Some(magnitude), BINS, size, rng).apply(&image, resample);
                }
                image
            }
            AutoAugment::Imagenet | AutoAugment::Cifar10 | AutoAugment::Svhn => {
                let learned = match self {
                    AutoAugment::Imagenet => AutoAugmentPolicy::Imagenet,
                    AutoAugment::Cifar10 => AutoAugmentPolicy::Cifar10,
                    _ => AutoAugmentPolicy::Svhn,
                };
                let policies = learned.sub_policies();
                let policy = policies[rng.random_range(0..policies.len())];
                let mut image = image.clone();
                for (kind, probability, bin) in policy {
                    if rng.random::<f64>() > probability {
                        continue;
                    }
                    let bin = bin.or(Some(0));
                    image = draw(Space::AutoAugment, kind, bin, AA_BINS, size, rng)
                        .apply(&image, resample);
                }
                image
            }
            AutoAugment::Augmix { severity } => {
                // `validate` refuses a severity outside 1..=10; a library caller that skipped it
                // gets the nearest valid one rather than a panic.
                let severity = severity.clamp(1, AA_BINS);
                let weights = augmix_weights(3, 1.0, rng);
                let chains: Vec<Vec<Op>> = (0..3)
                    .map(|_| {
                        let depth = rng.random_range(1..=3);
                        (0..depth)
                            .map(|_| {
                                let ops = Space::AugMix.ops();
                                let kind = ops[rng.random_range(0..ops.len())];
                                let bin = rng.random_range(0..severity);
                                draw(Space::AugMix, kind, Some(bin), AA_BINS, size, rng)
                            })
                            .collect()
                    })
                    .collect();
                augmix(image, &weights, &chains, resample)
            }
        }
    }
}

/// A Dirichlet draw with every parameter `alpha` (normalised Gamma draws).
fn dirichlet(n: usize, alpha: f64, rng: &mut impl Rng) -> Vec<f64> {
    let gamma = Gamma::new(alpha, 1.0).expect("alpha > 0");
    loop {
        let draws: Vec<f64> = (0..n).map(|_| gamma.sample(rng)).collect();
        let sum: f64 = draws.iter().sum();
        if sum > 0.0 {
            return draws.into_iter().map(|d| d / sum).collect();
        }
    }
}

/// `AugMix`'s weights: the original image's (`m[0]` of a Beta draw as a two-way Dirichlet),
/// then each chain's (a Dirichlet over the chains times `m[1]`), in `f32` as torch samples them.
fn augmix_weights(width: usize, alpha: f64, rng: &mut impl Rng) -> Vec<f32> {
    let m = dirichlet(2, alpha, rng);
    let (m0, m1) = (m[0] as f32, m[1] as f32);
    let mut weights = vec![m0];
    weights.extend(
        dirichlet(width, alpha, rng)
            .into_iter()
            .map(|w| w as f32 * m1),
    );
    weights
}

/// `AugMix.forward`'s mixing: `weights[0] * image + Σ weights[1 + i] * chain_i(image)` in
/// `f32`, each chain's operations applied in turn, truncated to `uint8`.
pub fn augmix(
    image: &RgbImage,
    weights: &[f32],
    chains: &[Vec<Op>],
    resample: Resample,
) -> RgbImage {
    let mut mix: Vec<f32> = image
        .as_raw()
        .iter()
        .map(|&v| weights[0] * v as f32)
        .collect();
    for (chain, &weight) in chains.iter().zip(&weights[1..]) {
        let aug = chain
            .iter()
            .fold(image.clone(), |aug, op| op.apply(&aug, resample));
        for (m, &v) in mix.iter_mut().zip(aug.as_raw()) {
            *m += weight * v as f32;
        }
    }
    let data = mix.into_iter().map(|v| v.clamp(0.0, 255.0) as u8).collect();
    RgbImage::from_raw(image.width(), image.height(), data).expect("same size")
}

/// torchvision's `ColorJitter(brightness, contrast, saturation, hue)`: each set adjustment's
/// factor drawn uniformly from `[max(0, 1 - x), 1 + x]` (hue from `[-hue, hue]`), the four
/// applied in a random order. timm's `--color-jitter x` is brightness, contrast and
/// saturation `x`, no hue.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ColorJitter {
    /// Brightness jitter, `0` for none.
    pub brightness: f64,
    /// Contrast jitter.
    pub contrast: f64,
    /// Saturation jitter.
    pub saturation: f64,
    /// Hue jitter, in `[0, 0.5]`.
    pub hue: f64,
}

impl ColorJitter {
    /// timm's `--color-jitter x`.
    pub fn uniform(x: f64) -> Self {
        Self {
            brightness: x,
            contrast: x,
            saturation: x,
            hue: 0.0,
        }
    }

    /// Rejects negative or non-finite jitters, and a hue above 0.5.
    pub fn validate(&self) -> Result<(), String> {
        for (name, v) in [
            ("brightness", self.brightness),
            ("contrast", self.contrast),
            ("saturation", self.saturation),
            ("hue", self.hue),
        ] {
            if !(v.is_finite() && v >= 0.0) {
                return Err(format!("colour jitter {name} must be >= 0, not {v}"));
            }
        }
        if self.hue > 0.5 {
            return Err(format!(
                "colour jitter hue must be <= 0.5, not {}",
                self.hue
            ));
        }
        Ok(())
    }

    /// The jitter applied to `image`.
    pub fn apply(&self, image: &RgbImage, rng: &mut impl Rng) -> RgbImage {
        let mut order = [0usize, 1, 2, 3];
        rand::seq::SliceRandom::shuffle(&mut order[..], rng);
        let factor = |x: f64, rng: &mut dyn rand::RngCore| -> Option<f64> {
            (x > 0.0).then(|| rng.random_range((1.0 - x).max(0.0)..=1.0 + x))
        };
        let mut image = image.clone();
        for which in order {
            image = match which {
                0 => match factor(self.brightness, rng) {
                    Some(f) => ops::adjust_brightness(&image, f),
                    None => image,
                },
                1 => match factor(self.contrast, rng) {
                    Some(f) => ops::adjust_contrast(&image, f),
                    None => image,
                },
                2 => match factor(self.saturation, rng) {
                    Some(f) => ops::adjust_saturation(&image, f),
                    None => image,
                },
                _ if self.hue > 0.0 => ops::hue(&image, rng.random_range(-self.hue..=self.hue)),
                _ => image,
            };
        }
        image
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    fn photo() -> RgbImage {
        RgbImage::from_fn(23, 17, |x, y| {
            image::Rgb([(x * 11) as u8, (y * 15) as u8, ((x * y) % 256) as u8])
        })
    }

    /// Every policy keeps the image's size, and repeats from the same seed.
    #[test]
    fn policies_keep_the_size_and_repeat_by_seed() {
        let image = photo();
        let policies = [
            AutoAugment::TaWide,
            AutoAugment::Ra { magnitude: 9 },
            AutoAugment::Augmix { severity: 3 },
            AutoAugment::Imagenet,
            AutoAugment::Cifar10,
            AutoAugment::Svhn,
        ];
        for policy in policies {
            let mut changed = 0;
            for seed in 0..20 {
                let a = policy.apply(&image, Resample::Bilinear, &mut StdRng::seed_from_u64(seed));
                let b = policy.apply(&image, Resample::Bilinear, &mut StdRng::seed_from_u64(seed));
                assert_eq!(a.dimensions(), image.dimensions(), "{policy:?}");
                assert_eq!(a, b, "{policy:?} seed {seed}");
                changed += usize::from(a != image);
            }
            assert!(changed >= 10, "{policy:?} changed {changed} of 20 images");
        }
        let jitter = ColorJitter {
            hue: 0.1,
            ..ColorJitter::uniform(0.4)
        };
        let a = jitter.apply(&image, &mut StdRng::seed_from_u64(1));
        assert_eq!(a, jitter.apply(&image, &mut StdRng::seed_from_u64(1)));
        assert_ne!(a, image);
    }

    #[test]
    fn settings_outside_torchvisions_ranges_are_refused() {
        assert!(AutoAugment::Ra { magnitude: 31 }.validate().is_err());
        assert!(AutoAugment::Ra { magnitude: 30 }.validate().is_ok());
        assert!(AutoAugment::Augmix { severity: 0 }.validate().is_err());
        assert!(AutoAugment::Augmix { severity: 11 }.validate().is_err());
        assert!(
            ColorJitter {
                hue: 0.6,
                ..ColorJitter::uniform(0.0)
            }
            .validate()
            .is_err()
        );
        assert!(ColorJitter::uniform(-0.1).validate().is_err());
    }
}
