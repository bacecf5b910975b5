//! Per-channel mean and standard deviation of a dataset, as practitioners compute them before
//! training to fill `Normalize(mean, std)`.

use std::path::Path;

use crate::error::TrainError;
use crate::folder::Sample;

/// Mean and standard deviation of each RGB channel, on the `[0, 1]` scale of `ToTensor()`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ChannelStats {
    /// Per-channel mean.
    pub mean: [f32; 3],
    /// Per-channel standard deviation (population, over every pixel of every image).
    pub std: [f32; 3],
    /// Images read.
    pub images: usize,
    /// Pixels per channel read.
    pub pixels: u64,
}

/// Computes the statistics over every pixel of every image, in float64, with `threads` workers.
/// An unreadable image is an error naming it.
pub fn channel_stats(samples: &[Sample], threads: usize) -> Result<ChannelStats, TrainError> {
    if samples.is_empty() {
        return Err(TrainError::Dataset(
            "no image to compute statistics of".into(),
        ));
    }
    let threads = threads.clamp(1, samples.len());
    let chunk = samples.len().div_ceil(threads);
    let partials: Vec<Result<Sums, TrainError>> = std::thread::scope(|s| {
        let handles: Vec<_> = samples
            .chunks(chunk)
            .map(|part| s.spawn(move || sums(part)))
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join().unwrap_or_else(|_| {
                    Err(TrainError::Dataset("a statistics worker panicked".into()))
                })
            })
            .collect()
    });
    let (mut sum, mut sum_sq, mut count) = ([0.0f64; 3], [0.0f64; 3], 0u64);
    for partial in partials {
        let (s, q, n) = partial?;
        for c in 0..3 {
            sum[c] += s[c];
            sum_sq[c] += q[c];
        }
        count += n;
    }
    let n = count as f64;
    let mean = [0, 1, 2].map(|c| sum[c] / n);
    let std = [0, 1, 2].map(|c| (sum_sq[c] / n - mean[c] * mean[c]).max(0.0).sqrt());
    Ok(ChannelStats {
        mean: mean.map(|v| v as f32),
        std: std.map(|v| v as f32),
        images: samples.len(),
        pixels: count,
    })
}

/// Per-channel sums of values and of squares, and the pixel count, of some images.
type Sums = ([f64; 3], [f64; 3], u64);

fn sums(samples: &[Sample]) -> Result<Sums, TrainError> {
    let (mut sum, mut sum_sq, mut count) = ([0.0f64; 3], [0.0f64; 3], 0u64);
    for sample in samples {
        let image = load(&sample.path)?;
        for pixel in image.pixels() {
            for c in 0..3 {
                let v = f64::from(pixel[c]) / 255.0;
                sum[c] += v;
                sum_sq[c] += v * v;
            }
        }
        count += u64::from(image.width()) * u64::from(image.height());
    }
    Ok((sum, sum_sq, count))
}

fn load(path: &Path) -> Result<image::RgbImage, TrainError> {
    model_zoo::transforms::load_image(path)
        .map(|i| i.to_rgb8())
        .map_err(|e| TrainError::Image {
            path: e.path,
            message: e.message,
        })
}
