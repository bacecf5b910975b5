//! Burn datasets and batchers over ImageFolder samples: images are decoded and transformed in
//! the data loader's worker threads.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use burn::data::dataloader::batcher::Batcher;
use burn::data::dataset::{Dataset, DatasetError};
use burn::tensor::{Device, Int, Tensor, TensorData};
use rand::SeedableRng;
use rand::rngs::StdRng;

use crate::augment::Transforms;
use crate::folder::Sample;
use crate::step::ImageBatch;

/// A list of samples as a Burn [`Dataset`].
#[derive(Debug, Clone)]
pub struct SampleDataset {
    samples: Vec<Sample>,
}

impl SampleDataset {
    /// The dataset of these samples.
    pub fn new(samples: Vec<Sample>) -> Self {
        Self { samples }
    }
}

impl Dataset<Sample> for SampleDataset {
    fn get(&self, index: usize) -> Result<Sample, DatasetError> {
        // Out of range panics, as the trait documents; decoding happens in the batcher.
        Ok(self.samples[index].clone())
    }

    fn len(&self) -> usize {
        self.samples.len()
    }
}

/// Which transform a batcher applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Split {
    /// Random resized crop and flip.
    Train,
    /// Resize and center crop.
    Eval,
}

/// Decodes, transforms and stacks images. An image that fails to decode (it was checked when
/// the dataset was opened, so it changed since) is left out of its batch with a warning; the
/// count is kept in [`ImageBatcher::skipped`].
#[derive(Debug, Clone)]
pub struct ImageBatcher {
    transforms: Transforms,
    split: Split,
    channels: usize,
    seed: u64,
    calls: Arc<AtomicU64>,
    skipped: Arc<AtomicUsize>,
}

impl ImageBatcher {
    /// A batcher with these transforms for a model of `channels` input channels (see
    /// [`to_channels`]); `seed` drives the training augmentations.
    pub fn new(transforms: Transforms, split: Split, channels: usize, seed: u64) -> Self {
        Self {
            transforms,
            split,
            channels,
            seed,
            calls: Arc::new(AtomicU64::new(0)),
            skipped: Arc::new(AtomicUsize::new(0)),
        }
    }

    /// Images left out so far because they could not be read.
    pub fn skipped(&self) -> usize {
        self.skipped.load(Ordering::Relaxed)
    }

    /// The side of the images this batcher produces.
    pub fn size(&self) -> usize {
        match self.split {
            Split::Train => self.transforms.train_size,
            Split::Eval => self.transforms.crop,
        }
    }

    /// Decodes and transforms one sample, `None` (logged) when it cannot be read.
    fn load(&self, sample: &Sample, rng: &mut StdRng) -> Option<Vec<f32>> {
        match model_zoo::transforms::load_image(&sample.path) {
            Ok(image) => {
                let rgb = image.to_rgb8();
                let chw = match self.split {
                    Split::Train => self.transforms.train(&rgb, rng),
                    Split::Eval => self.transforms.eval(&rgb),
                };
                Some(to_channels(chw, self.channels))
            }
            Err(err) => {
                self.skipped.fetch_add(1, Ordering::Relaxed);
                log::warn!("skipping unreadable image: {err}");
                eprintln!("warning: skipping unreadable image: {err}");
                None
            }
        }
    }
}

/// A normalised RGB image (CHW) laid out for a model of `channels` input channels, as the
/// pretrained weights were adapted for it ([`model_zoo::layers::adapt_input_conv`]): 3, as it
/// is; 1, the mean of the three (a grey image's value, for the input convolution summed over
/// RGB); more, R, G, B repeated (the channels timm repeats the RGB weights over).
pub fn to_channels(rgb: Vec<f32>, channels: usize) -> Vec<f32> {
    if channels == 3 {
        return rgb;
    }
    let plane = rgb.len() / 3;
    let (r, rest) = rgb.split_at(plane);
    let (g, b) = rest.split_at(plane);
    if channels == 1 {
        return r
            .iter()
            .zip(g)
            .zip(b)
            .map(|((r, g), b)| (r + g + b) / 3.0)
            .collect();
    }
    let planes = [r, g, b];
    (0..channels)
        .flat_map(|c| planes[c % 3].iter().copied())
        .collect()
}

impl Batcher<Sample, ImageBatch> for ImageBatcher {
    fn batch(&self, items: Vec<Sample>, device: &Device) -> ImageBatch {
        // Each batch gets its own stream of augmentation randomness.
        let call = self.calls.fetch_add(1, Ordering::Relaxed);
        let mut rng = StdRng::seed_from_u64(self.seed ^ call.wrapping_mul(0x9E37_79B9_7F4A_7C15));
        let size = self.size();
        let mut pixels = Vec::with_capacity(items.len() * self.channels * size * size);
        let mut targets = Vec::with_capacity(items.len());
        for sample in &items {
            if let Some(chw) = self.load(sample, &mut rng) {
                pixels.extend(chw);
                targets.push(sample.label as i64);
            }
        }
        let n = targets.len();
        ImageBatch {
            images: Tensor::from_data(
                TensorData::new(pixels, [n, self.channels, size, size]),
                device,
            ),
            targets: Tensor::<1, Int>::from_data(TensorData::new(targets, [n]), device),
        }
    }
}
