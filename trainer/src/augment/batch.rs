//! The augmentations after normalisation: `RandomErasing` on one image, `MixUp` and `CutMix`
//! on a batch, as `torchvision.transforms.v2` defines them (torchvision's classification
//! recipe applies one of MixUp and CutMix, chosen uniformly, to every training batch).

use rand::Rng;
use rand_distr::{Beta, Distribution};
use serde::{Deserialize, Serialize};

/// `RandomErasing(p, scale=(0.02, 0.33), ratio=(0.3, 3.3), value=0)`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct RandomErasing {
    /// Probability that an image gets a rectangle erased.
    pub p: f64,
    /// The rectangle's area as a fraction of the image's.
    pub scale: (f64, f64),
    /// The rectangle's aspect ratio (height / width).
    pub ratio: (f64, f64),
}

impl RandomErasing {
    /// torchvision's defaults with probability `p` (its recipe's `--random-erase P`).
    pub fn new(p: f64) -> Self {
        Self {
            p,
            scale: (0.02, 0.33),
            ratio: (0.3, 3.3),
        }
    }

    /// Rejects a probability outside `[0, 1]` and ranges that are empty or not finite.
    pub fn validate(&self) -> Result<(), String> {
        if !(0.0..=1.0).contains(&self.p) {
            return Err(format!("--random-erase must be in [0, 1], not {}", self.p));
        }
        let (s0, s1) = self.scale;
        let (r0, r1) = self.ratio;
        if !(0.0 <= s0
            && s0 <= s1
            && s1 <= 1.0
            && r0.is_finite()
            && 0.0 < r0
            && r0 <= r1
            && r1.is_finite())
        {
            return Err(format!(
                "random erasing's scale must be in [0, 1] and its ratio positive, low <= high; not {:?} and {:?}",
                self.scale, self.ratio
            ));
        }
        Ok(())
    }

    /// `make_params`: the rectangle `(top, left, height, width)` to erase from an image of
    /// `height` x `width`, or `None` (not drawn with probability `1 - p`, or no rectangle
    /// fitting in ten tries).
    pub fn params(&self, height: usize, width: usize, rng: &mut impl Rng) -> Option<[usize; 4]> {
        if rng.random::<f64>() >= self.p {
            return None;
        }
        let area = (height * width) as f64;
        let (log_lo, log_hi) = (self.ratio.0.ln(), self.ratio.1.ln());
        for _ in 0..10 {
            let erase_area = area * rng.random_range(self.scale.0..=self.scale.1);
            let aspect = rng.random_range(log_lo..=log_hi).exp();
            // Python's `int(round(x))`: ties to even.
            let h = (erase_area * aspect).sqrt().round_ties_even() as usize;
            let w = (erase_area / aspect).sqrt().round_ties_even() as usize;
            if !(h < height && w < width) {
                continue;
            }
            let top = rng.random_range(0..=height - h);
            let left = rng.random_range(0..=width - w);
            return Some([top, left, h, w]);
        }
        None
    }
}

/// `erase`: `chw[.., top..top + h, left..left + w] = value` on a `[channels, height, width]`
/// image.
pub fn erase(chw: &mut [f32], height: usize, width: usize, rect: [usize; 4], value: f32) {
    let [top, left, h, w] = rect;
    for plane in chw.chunks_mut(height * width) {
        for row in plane.chunks_mut(width).skip(top).take(h) {
            row[left..left + w].fill(value);
        }
    }
}

/// One batch's mixing, as drawn by [`MixupCutmix::draw`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Mixing {
    /// `MixUp` with this `lam`: `lam * x + (1 - lam) * x_previous`.
    Mixup(f64),
    /// `CutMix` of this box `(x1, y1, x2, y2)`: the previous image's pixels pasted in, the
    /// labels mixed by the area kept.
    Cutmix([usize; 4]),
}

/// torchvision's recipe's `--mixup-alpha` and `--cutmix-alpha`: `RandomChoice` of `MixUp` and
/// `CutMix` (those with an alpha above 0) on every batch.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct MixupCutmix {
    /// `MixUp(alpha)`, `0` for none.
    pub mixup_alpha: f64,
    /// `CutMix(alpha)`, `0` for none.
    pub cutmix_alpha: f64,
}

impl MixupCutmix {
    /// Rejects alphas that are negative or not finite.
    pub fn validate(&self) -> Result<(), String> {
        for (name, a) in [("mixup", self.mixup_alpha), ("cutmix", self.cutmix_alpha)] {
            if !(a.is_finite() && a >= 0.0) {
                return Err(format!("--{name}-alpha must be >= 0, not {a}"));
            }
        }
        Ok(())
    }

    /// Whether a batch is mixed at all.
    pub fn enabled(&self) -> bool {
        self.mixup_alpha > 0.0 || self.cutmix_alpha > 0.0
    }

    /// The mixing of one batch of `height` x `width` images.
    pub fn draw(&self, height: usize, width: usize, rng: &mut impl Rng) -> Option<Mixing> {
        let choices: Vec<(bool, f64)> = [(false, self.mixup_alpha), (true, self.cutmix_alpha)]
            .into_iter()
            .filter(|(_, a)| *a > 0.0)
            .collect();
        if choices.is_empty() {
            return None;
        }
        let (cutmix, alpha) = choices[rng.random_range(0..choices.len())];
        let lam: f64 = Beta::new(alpha, alpha).expect("alpha > 0").sample(rng);
        if !cutmix {
            return Some(Mixing::Mixup(lam));
        }
        let (w, h) = (width as i64, height as i64);
        let r_x = rng.random_range(0..w);
        let r_y = rng.random_range(0..h);
        let r = 0.5 * (1.0 - lam).sqrt();
        let r_w_half = (r * w as f64) as i64;
        let r_h_half = (r * h as f64) as i64;
        let x1 = (r_x - r_w_half).max(0) as usize;
        let y1 = (r_y - r_h_half).max(0) as usize;
        let x2 = (r_x + r_w_half).min(w) as usize;
        let y2 = (r_y + r_h_half).min(h) as usize;
        Some(Mixing::Cutmix([x1, y1, x2, y2]))
    }
}

impl Mixing {
    /// The labels' weight of each image's own class (`lam`, or CutMix's `lam_adjusted`: the
    /// fraction of the image left).
    pub fn lam(&self, height: usize, width: usize) -> f64 {
        match *self {
            Mixing::Mixup(lam) => lam,
            Mixing::Cutmix([x1, y1, x2, y2]) => {
                1.0 - ((x2 - x1) * (y2 - y1)) as f64 / (width * height) as f64
            }
        }
    }

    /// Mixes a batch in place (`[n, channels, height, width]`, each image with the one before
    /// it, the first with the last: `roll(1, 0)`) and returns its soft labels, `[n, classes]`.
    pub fn apply(
        &self,
        images: &mut [f32],
        shape: [usize; 4],
        labels: &[usize],
        classes: usize,
    ) -> Vec<f32> {
        let [n, _, height, width] = shape;
        let per_image = images.len() / n.max(1);
        let previous = images.to_vec();
        let rolled = |i: usize| {
            let j = (i + n - 1) % n;
            &previous[j * per_image..(j + 1) * per_image]
        };
        match *self {
            Mixing::Mixup(lam) => {
                let (keep, take) = (lam as f32, (1.0 - lam) as f32);
                for i in 0..n {
                    let other = rolled(i);
                    let image = &mut images[i * per_image..(i + 1) * per_image];
                    for (v, &o) in image.iter_mut().zip(other) {
                        *v = o * take + *v * keep;
                    }
                }
            }
            Mixing::Cutmix([x1, y1, x2, y2]) => {
                for i in 0..n {
                    let other = rolled(i);
                    let image = &mut images[i * per_image..(i + 1) * per_image];
                    for (plane, other) in image
                        .chunks_mut(height * width)
                        .zip(other.chunks(height * width))
                    {
                        for y in y1..y2 {
                            let row = y * width;
                            plane[row + x1..row + x2].copy_from_slice(&other[row + x1..row + x2]);
                        }
                    }
                }
            }
        }
        mix_labels(labels, classes, self.lam(height, width))
    }
}

/// `_mixup_label`: one-hot labels `lam * y + (1 - lam) * y_previous`, `[n, classes]`.
pub fn mix_labels(labels: &[usize], classes: usize, lam: f64) -> Vec<f32> {
    let n = labels.len();
    let (keep, take) = (lam as f32, (1.0 - lam) as f32);
    let mut out = vec![0f32; n * classes];
    for (i, &label) in labels.iter().enumerate() {
        let previous = labels[(i + n - 1) % n];
        out[i * classes + previous] += take;
        out[i * classes + label] += keep;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    #[test]
    fn erased_rectangles_fit_and_follow_scale_and_p() {
        let mut rng = StdRng::seed_from_u64(3);
        let erasing = RandomErasing::new(1.0);
        let mut drawn = 0;
        for _ in 0..500 {
            if let Some([top, left, h, w]) = erasing.params(40, 30, &mut rng) {
                drawn += 1;
                assert!(top + h <= 40 && left + w <= 30 && h > 0 && w > 0);
                let fraction = (h * w) as f64 / 1200.0;
                assert!((0.005..0.45).contains(&fraction), "{fraction}");
            }
        }
        assert!(drawn > 400, "{drawn}");
        assert!((0..100).all(|_| RandomErasing::new(0.0).params(40, 30, &mut rng).is_none()));
        let mut chw = vec![1.0f32; 2 * 4 * 5];
        erase(&mut chw, 4, 5, [1, 2, 2, 3], 0.0);
        assert_eq!(chw.iter().filter(|&&v| v == 0.0).count(), 2 * 2 * 3);
        assert_eq!(chw[5 + 2], 0.0);
        assert_eq!(chw[5 + 1], 1.0);
    }

    #[test]
    fn mixed_labels_are_distributions_and_boxes_fit() {
        let mut rng = StdRng::seed_from_u64(4);
        let mix = MixupCutmix {
            mixup_alpha: 0.2,
            cutmix_alpha: 1.0,
        };
        let (mut mixups, mut cutmixes) = (0, 0);
        for _ in 0..200 {
            let mixing = mix.draw(12, 9, &mut rng).unwrap();
            match mixing {
                Mixing::Mixup(lam) => {
                    mixups += 1;
                    assert!((0.0..=1.0).contains(&lam));
                }
                Mixing::Cutmix([x1, y1, x2, y2]) => {
                    cutmixes += 1;
                    assert!(x1 <= x2 && x2 <= 9 && y1 <= y2 && y2 <= 12);
                }
            }
            let mut images = vec![0.0f32; 3 * 2 * 12 * 9];
            let soft = mixing.apply(&mut images, [3, 2, 12, 9], &[0, 2, 2], 4);
            for row in soft.chunks(4) {
                assert!((row.iter().sum::<f32>() - 1.0).abs() < 1e-6, "{row:?}");
            }
        }
        assert!(mixups > 60 && cutmixes > 60, "{mixups} {cutmixes}");
        assert!(
            MixupCutmix {
                mixup_alpha: 0.0,
                cutmix_alpha: 0.0
            }
            .draw(4, 4, &mut rng)
            .is_none()
        );
        assert!(
            MixupCutmix {
                mixup_alpha: -1.0,
                cutmix_alpha: 0.0
            }
            .validate()
            .is_err()
        );
    }
}
