//! The data side of a run: a batcher over ImageFolder samples and [`OrderedLoader`], Burn's
//! `DataLoader` whose batches, and every random draw in them, depend only on the seed, the
//! epoch and the sample. Images are decoded and transformed in the loader's worker threads.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, mpsc};

use burn::data::dataloader::{DataLoader, DataLoaderIterator, Progress};
use burn::data::dataset::DatasetError;
use burn::tensor::{Device, Int, Tensor, TensorData};
use rand::SeedableRng;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;

use crate::augment::Transforms;
use crate::augment::batch::MixupCutmix;
use crate::folder::Sample;
use crate::step::ImageBatch;

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
///
/// Each training sample's augmentation draws come from its own generator, seeded by
/// [`sample_seed`] from the run's seed, the epoch and the sample's index in the dataset: the
/// same whatever the batch, the worker or the timing.
#[derive(Debug, Clone)]
pub struct ImageBatcher {
    transforms: Transforms,
    split: Split,
    channels: usize,
    seed: u64,
    /// MixUp/CutMix of the training batches, with the class count.
    mixing: Option<(MixupCutmix, usize)>,
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
            mixing: None,
            skipped: Arc::new(AtomicUsize::new(0)),
        }
    }

    /// Mixes every training batch with MixUp or CutMix (`mixing`, over `classes` classes) as
    /// torchvision's recipe does; its draws come from the seed, the epoch and the batch's first
    /// sample. Off when neither alpha is above 0, and for evaluation.
    pub fn mixing(mut self, mixing: MixupCutmix, classes: usize) -> Self {
        self.mixing = (mixing.enabled() && self.split == Split::Train).then_some((mixing, classes));
        self
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

impl ImageBatcher {
    /// The batch of `items` (each with its index in the dataset) in `epoch` (0-based).
    pub fn batch(&self, items: &[(usize, &Sample)], epoch: usize, device: &Device) -> ImageBatch {
        let size = self.size();
        let mut pixels = Vec::with_capacity(items.len() * self.channels * size * size);
        let mut targets = Vec::with_capacity(items.len());
        for &(index, sample) in items {
            let mut rng = StdRng::seed_from_u64(sample_seed(self.seed, epoch, index));
            if let Some(chw) = self.load(sample, &mut rng) {
                pixels.extend(chw);
                targets.push(sample.label as i64);
            }
        }
        let n = targets.len();
        let shape = [n, self.channels, size, size];
        let mut soft_targets = None;
        if let (Some((mixing, classes)), Some(&(first, _))) = (self.mixing, items.first())
            && n > 0
        {
            let mut rng = StdRng::seed_from_u64(sample_seed(self.seed ^ MIXING_SALT, epoch, first));
            if let Some(mix) = mixing.draw(size, size, &mut rng) {
                let labels: Vec<usize> = targets.iter().map(|&t| t as usize).collect();
                let soft = mix.apply(&mut pixels, shape, &labels, classes);
                // The accuracy counts each row's largest probability, as torchvision's.
                for (target, row) in targets.iter_mut().zip(soft.chunks(classes)) {
                    let best = row
                        .iter()
                        .enumerate()
                        .fold(0, |best, (i, &p)| if p > row[best] { i } else { best });
                    *target = best as i64;
                }
                soft_targets = Some(Tensor::<2>::from_data(
                    TensorData::new(soft, [n, classes]),
                    device,
                ));
            }
        }
        ImageBatch {
            soft_targets,
            ..ImageBatch::new(
                Tensor::from_data(TensorData::new(pixels, shape), device),
                Tensor::<1, Int>::from_data(TensorData::new(targets, [n]), device),
            )
        }
    }
}

/// The gradient scale of batch `index` of an epoch of `batches` batches, in windows of
/// `accumulation` batches: `1 /` the size of its window (the last window may be shorter).
pub fn grad_scale(index: usize, batches: usize, accumulation: usize) -> f32 {
    let accumulation = accumulation.max(1);
    let start = index / accumulation * accumulation;
    1.0 / accumulation.min(batches.saturating_sub(start)).max(1) as f32
}

/// Told apart from the samples' seeds: a batch's mixing draws with `sample_seed(seed ^ this,
/// epoch, first sample)`.
const MIXING_SALT: u64 = 0x6d69_7875_705f_6375;

/// SplitMix64's finaliser: a well-mixed 64-bit value of `x`.
fn mix(mut x: u64) -> u64 {
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

/// The seed of sample `index`'s augmentations in `epoch` of a run seeded `seed`.
pub fn sample_seed(seed: u64, epoch: usize, index: usize) -> u64 {
    mix(mix(mix(seed) ^ epoch as u64) ^ index as u64)
}

/// The order of a dataset of `len` samples in `epoch`: a permutation drawn from `(seed,
/// epoch)` alone, or `0..len` without a seed.
pub fn epoch_order(len: usize, shuffle: Option<u64>, epoch: usize) -> Vec<usize> {
    let mut order: Vec<usize> = (0..len).collect();
    if let Some(seed) = shuffle {
        // `u64::MAX` apart from every sample seed's inner value.
        let mut rng = StdRng::seed_from_u64(mix(mix(seed ^ u64::MAX) ^ epoch as u64));
        order.shuffle(&mut rng);
    }
    order
}

/// Burn's [`DataLoader`] over ImageFolder samples whose epochs repeat exactly: epoch `e`'s
/// order is [`epoch_order`]`(seed, e)`, each sample's augmentations are drawn from
/// [`sample_seed`], and the batches come out in that order however many workers make them (a
/// worker's batch waits for the ones before it). Burn's multi-threaded loader hands out batches
/// as its workers finish them, each worker with its own share of the data and its own random
/// stream, so a run with 2 workers was not repeatable even with a fixed seed.
///
/// Each [`DataLoader::iter`] is the next epoch (from `first_epoch`, so a resumed run draws what
/// the uninterrupted run would have). [`DataLoader::slice`] (a device's share in multi-device
/// training) takes positions of every epoch's order, so the devices share one permutation.
pub struct OrderedLoader {
    samples: Arc<Vec<Sample>>,
    batcher: ImageBatcher,
    batch_size: usize,
    workers: usize,
    shuffle: Option<u64>,
    accumulation: usize,
    device: Device,
    /// Positions `[start, end)` of each epoch's order that this loader yields.
    range: (usize, usize),
    next_epoch: Arc<AtomicUsize>,
}

impl OrderedLoader {
    /// A loader of `samples` in batches of `batch_size`, made by `workers` threads (at least
    /// one), in the dataset's order (see [`Self::shuffled`]), starting at epoch 0.
    pub fn new(
        samples: Vec<Sample>,
        batcher: ImageBatcher,
        batch_size: usize,
        workers: usize,
        device: Device,
    ) -> Self {
        let len = samples.len();
        Self {
            samples: Arc::new(samples),
            batcher,
            batch_size: batch_size.max(1),
            workers: workers.max(1),
            shuffle: None,
            accumulation: 1,
            device,
            range: (0, len),
            next_epoch: Arc::new(AtomicUsize::new(0)),
        }
    }

    /// Each epoch in its own order drawn from `seed`.
    pub fn shuffled(mut self, seed: u64) -> Self {
        self.shuffle = Some(seed);
        self
    }

    /// Batches are summed `accumulation` at a time before an optimiser step (Burn's
    /// `grads_accumulation`, counted from each epoch's first batch, its last window possibly
    /// shorter): each gets the [`ImageBatch::grad_scale`] of its window ([`grad_scale`]).
    pub fn accumulating(mut self, accumulation: usize) -> Self {
        self.accumulation = accumulation.max(1);
        self
    }

    /// The next [`DataLoader::iter`] is epoch `epoch` (0-based).
    pub fn starting_at(self, epoch: usize) -> Self {
        self.next_epoch.store(epoch, Ordering::Relaxed);
        self
    }

    fn with(&self, device: Device, range: (usize, usize)) -> Self {
        Self {
            samples: self.samples.clone(),
            batcher: self.batcher.clone(),
            batch_size: self.batch_size,
            workers: self.workers,
            shuffle: self.shuffle,
            accumulation: self.accumulation,
            device,
            range,
            next_epoch: Arc::new(AtomicUsize::new(self.next_epoch.load(Ordering::Relaxed))),
        }
    }
}

impl DataLoader<ImageBatch> for OrderedLoader {
    fn iter<'a>(&'a self) -> Box<dyn DataLoaderIterator<ImageBatch> + 'a> {
        let epoch = self.next_epoch.fetch_add(1, Ordering::Relaxed);
        let order = epoch_order(self.samples.len(), self.shuffle, epoch);
        let (start, end) = self.range;
        let positions = order[start.min(order.len())..end.min(order.len())].to_vec();
        let batches: Vec<Vec<usize>> = positions
            .chunks(self.batch_size)
            .map(<[usize]>::to_vec)
            .collect();
        Box::new(OrderedIter::new(self, epoch, batches))
    }

    fn num_items(&self) -> usize {
        self.range.1.saturating_sub(self.range.0)
    }

    fn to_device(&self, device: &Device) -> Arc<dyn DataLoader<ImageBatch>> {
        Arc::new(self.with(device.clone(), self.range))
    }

    fn slice(&self, start: usize, end: usize) -> Arc<dyn DataLoader<ImageBatch>> {
        let from = self.range.0;
        let range = (
            (from + start).min(self.range.1),
            (from + end).min(self.range.1),
        );
        Arc::new(self.with(self.device.clone(), range))
    }
}

type Job = Box<dyn FnOnce() + Send>;

/// One epoch of an [`OrderedLoader`]: up to `2 x workers` batches in the making, each with its
/// own one-shot channel, taken in order.
struct OrderedIter {
    jobs: Option<mpsc::Sender<Job>>,
    workers: Vec<std::thread::JoinHandle<()>>,
    /// Each batch in the making: its sample count and where it arrives.
    pending: VecDeque<(usize, mpsc::Receiver<ImageBatch>)>,
    batches: std::vec::IntoIter<Vec<usize>>,
    /// Makes batch `index` of the epoch from its samples' indices.
    make: Arc<dyn Fn(usize, Vec<usize>) -> ImageBatch + Send + Sync>,
    /// Batches handed out so far.
    started: usize,
    window: usize,
    done: usize,
    total: usize,
}

impl OrderedIter {
    fn new(loader: &OrderedLoader, epoch: usize, batches: Vec<Vec<usize>>) -> Self {
        let total = batches.iter().map(Vec::len).sum();
        let (samples, batcher, device) = (
            loader.samples.clone(),
            loader.batcher.clone(),
            loader.device.clone(),
        );
        let (count, accumulation) = (batches.len(), loader.accumulation);
        let make = Arc::new(move |index: usize, indices: Vec<usize>| {
            let items: Vec<(usize, &Sample)> = indices.iter().map(|&i| (i, &samples[i])).collect();
            ImageBatch {
                grad_scale: grad_scale(index, count, accumulation),
                ..batcher.batch(&items, epoch, &device)
            }
        });
        let (jobs, queue) = mpsc::channel::<Job>();
        let queue = Arc::new(Mutex::new(queue));
        let workers = (0..loader.workers.min(batches.len()).max(1))
            .map(|_| {
                let queue = queue.clone();
                std::thread::spawn(move || {
                    loop {
                        // The lock is held while waiting for the next job only.
                        let job = match queue.lock() {
                            Ok(queue) => queue.recv(),
                            Err(_) => return,
                        };
                        match job {
                            Ok(job) => job(),
                            Err(_) => return,
                        }
                    }
                })
            })
            .collect();
        let mut iter = Self {
            jobs: Some(jobs),
            workers,
            pending: VecDeque::new(),
            batches: batches.into_iter(),
            make,
            started: 0,
            window: 2 * loader.workers,
            done: 0,
            total,
        };
        iter.fill();
        iter
    }

    /// Hands the next batches to the workers until `window` are in the making.
    fn fill(&mut self) {
        while self.pending.len() < self.window {
            let Some(indices) = self.batches.next() else {
                break;
            };
            let (send, receive) = mpsc::channel();
            let (len, index) = (indices.len(), self.started);
            self.started += 1;
            let make = self.make.clone();
            let job: Job = Box::new(move || {
                // The receiver is gone only when the epoch was dropped early.
                let _ = send.send(make(index, indices));
            });
            match &self.jobs {
                Some(jobs) if jobs.send(job).is_ok() => self.pending.push_back((len, receive)),
                _ => break,
            }
        }
    }
}

impl Iterator for OrderedIter {
    type Item = Result<ImageBatch, DatasetError>;

    fn next(&mut self) -> Option<Self::Item> {
        let (len, receive) = self.pending.pop_front()?;
        let batch = match receive.recv() {
            Ok(batch) => batch,
            Err(_) => {
                return Some(Err(DatasetError::new(std::io::Error::other(
                    "a data-loading worker stopped (it panicked): see the message above",
                ))));
            }
        };
        // Samples, not images: an unreadable image left out still counts as done.
        self.done += len;
        self.fill();
        Some(Ok(batch))
    }
}

impl DataLoaderIterator<ImageBatch> for OrderedIter {
    fn progress(&self) -> Progress {
        Progress::new(self.done, self.total, None)
    }
}

impl Drop for OrderedIter {
    fn drop(&mut self) {
        // No more jobs: each worker ends after the one it is on.
        self.jobs = None;
        self.pending.clear();
        for worker in self.workers.drain(..) {
            let _ = worker.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Windows of 3 over 8 batches: 3, 3 and a last window of 2.
    #[test]
    fn each_window_averages_its_own_batches() {
        let scales: Vec<f32> = (0..8).map(|i| grad_scale(i, 8, 3)).collect();
        let third = 1.0 / 3.0;
        assert_eq!(scales, [third, third, third, third, third, third, 0.5, 0.5]);
        assert!((0..5).all(|i| grad_scale(i, 5, 1) == 1.0));
        assert_eq!(grad_scale(0, 1, 4), 1.0);
    }
}
