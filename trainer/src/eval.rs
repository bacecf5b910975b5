//! Using a trained model: accuracy and confusion matrix on an ImageFolder, top-k predictions
//! for single images.

use model_zoo::Architecture;
use std::path::{Path, PathBuf};

use burn::module::Module;
use burn::tensor::activation::softmax;
use burn::tensor::{Tensor, TensorData};

use crate::artifact::TrainedModel;
use crate::error::TrainError;
use crate::folder::{ImageFolder, verify_images};

/// Accuracy and confusion matrix of a model on a dataset.
#[derive(Debug, Clone, PartialEq)]
pub struct Evaluation {
    /// Class names, rows and columns of `confusion`.
    pub classes: Vec<String>,
    /// `confusion[true][predicted]` counts.
    pub confusion: Vec<Vec<usize>>,
    /// Images evaluated.
    pub images: usize,
    /// Top-1 accuracy, percent.
    pub accuracy: f64,
    /// Top-5 accuracy (top-k with k = min(5, classes)), percent.
    pub top5: f64,
    /// Unreadable images left out.
    pub skipped: Vec<(PathBuf, String)>,
}

impl Evaluation {
    /// The confusion matrix as an aligned text table with per-class recall.
    pub fn table(&self) -> String {
        let width = self
            .classes
            .iter()
            .map(|c| c.len())
            .max()
            .unwrap_or(4)
            .max(6);
        let cell = self
            .confusion
            .iter()
            .flatten()
            .map(|c| c.to_string().len())
            .max()
            .unwrap_or(1)
            .max(4);
        let mut out = format!("{:>width$} |", "true \\ predicted");
        let short = |name: &str| name.chars().take(cell).collect::<String>();
        for name in &self.classes {
            out.push_str(&format!(" {:>cell$}", short(name)));
        }
        out.push_str(" | recall\n");
        for (name, row) in self.classes.iter().zip(&self.confusion) {
            out.push_str(&format!("{name:>width$} |", width = width.max(16)));
            for count in row {
                out.push_str(&format!(" {count:>cell$}"));
            }
            let total: usize = row.iter().sum();
            let right = row.get(self.classes.iter().position(|c| c == name).unwrap_or(0));
            let recall = 100.0 * right.copied().unwrap_or(0) as f64 / total.max(1) as f64;
            out.push_str(&format!(" | {recall:5.1}%\n"));
        }
        out
    }
}

/// Runs `trained` (in eval mode) over every image of the ImageFolder `dir`, whose classes must be
/// the model's, `batch_size` images at a time.
pub fn evaluate(
    trained: &TrainedModel,
    dir: &Path,
    batch_size: usize,
    workers: usize,
    skip_bad: bool,
) -> Result<Evaluation, TrainError> {
    let folder = ImageFolder::open(dir)?;
    if folder.classes != trained.classes {
        return Err(TrainError::Dataset(format!(
            "{} has classes [{}] but the model was trained on [{}]",
            dir.display(),
            folder.classes.names.join(", "),
            trained.classes.names.join(", ")
        )));
    }
    let (samples, skipped) = verify_images(folder.samples, workers, skip_bad)?;
    let n = trained.classes.len();
    let k = 5.min(n);
    let mut confusion = vec![vec![0usize; n]; n];
    let mut top5_hits = 0usize;
    for chunk in samples.chunks(batch_size.max(1)) {
        let paths: Vec<&Path> = chunk.iter().map(|s| s.path.as_path()).collect();
        let probabilities = classify(trained, &paths)?;
        for (sample, probs) in chunk.iter().zip(probabilities) {
            let ranked = rank(&probs);
            confusion[sample.label][ranked[0]] += 1;
            if ranked[..k].contains(&sample.label) {
                top5_hits += 1;
            }
        }
    }
    let images = samples.len();
    let correct: usize = (0..n).map(|i| confusion[i][i]).sum();
    Ok(Evaluation {
        classes: trained.classes.names.clone(),
        confusion,
        images,
        accuracy: 100.0 * correct as f64 / images.max(1) as f64,
        top5: 100.0 * top5_hits as f64 / images.max(1) as f64,
        skipped,
    })
}

/// Class indices from most to least probable.
fn rank(probs: &[f32]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..probs.len()).collect();
    order.sort_by(|&a, &b| probs[b].total_cmp(&probs[a]));
    order
}

/// Softmax probabilities of each image (evaluation transform of the model's `preprocess.json`).
pub fn classify(trained: &TrainedModel, paths: &[&Path]) -> Result<Vec<Vec<f32>>, TrainError> {
    let t = &trained.transforms;
    let channels = trained.card.in_chans;
    let mut pixels = Vec::with_capacity(paths.len() * channels * t.crop * t.crop);
    for path in paths {
        let image = model_zoo::transforms::load_image(path).map_err(|e| TrainError::Image {
            path: path.to_path_buf(),
            message: e.message,
        })?;
        pixels.extend(crate::data::to_channels(t.eval(&image.to_rgb8()), channels));
    }
    let device = trained
        .model
        .devices()
        .first()
        .cloned()
        .ok_or_else(|| TrainError::Config("the model has no device".into()))?;
    let x = Tensor::<4>::from_data(
        TensorData::new(pixels, [paths.len(), channels, t.crop, t.crop]),
        &device,
    );
    let probs = softmax(
        trained
            .model
            .try_forward(x)
            .map_err(|e| TrainError::Training(e.to_string()))?,
        1,
    );
    let n = trained.classes.len();
    let values: Vec<f32> = model_zoo::read_back(probs, "the predictions")
        .map_err(|e| TrainError::Training(e.to_string()))?
        .try_into_vec::<f32>()
        .map_err(|e| TrainError::Training(format!("reading the predictions: {e:?}")))?;
    Ok(values.chunks(n).map(<[f32]>::to_vec).collect())
}

/// The `k` most probable classes of each image, as `(class name, probability)`.
pub fn predict(
    trained: &TrainedModel,
    paths: &[&Path],
    k: usize,
) -> Result<Vec<Vec<(String, f32)>>, TrainError> {
    Ok(classify(trained, paths)?
        .into_iter()
        .map(|probs| {
            rank(&probs)
                .into_iter()
                .take(k)
                .map(|i| (trained.classes.names[i].clone(), probs[i]))
                .collect()
        })
        .collect())
}
