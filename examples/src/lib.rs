//! Helpers shared by the examples: choosing weights from a name or a file, and reading the top
//! classes out of logits.

use std::path::Path;

use anyhow::{Context, Result};
use burn::tensor::Device;
use burn::tensor::activation::softmax;
use model_zoo::registry::{Categories, Preprocess};
use model_zoo::{Model, ModelInfo, WeightsSource};
use zoo_import::hub::import_file;
use zoo_import::{WeightFormat, WeightsCache, load_burnpack};

/// A model with the preprocessing and class names that go with its weights.
pub struct Classifier {
    /// The model, in eval mode (BatchNorm on running statistics).
    pub model: Model,
    /// The eval transform the weights expect.
    pub preprocess: Preprocess,
    /// Class names, when the weights' label set is known.
    pub class_names: Option<&'static [&'static str]>,
    /// Where the weights came from, for messages.
    pub source: String,
}

/// `model` with `weights`: a torchvision weights name (`DEFAULT`, `IMAGENET1K_V2`), downloaded
/// and converted on first use, or a file (`.bpk` from `zoo-train import`, `.pth`,
/// `.safetensors`) holding `num_classes` classes.
pub fn load_classifier(
    info: &ModelInfo,
    weights: &str,
    num_classes: usize,
    device: &Device,
) -> Result<Classifier> {
    let path = Path::new(weights);
    if !zoo_import::hub::names_a_file(weights) {
        let descriptor = info.weights(weights)?;
        let model = WeightsCache::from_env().load(info.name, weights, device)?;
        return Ok(Classifier {
            model,
            preprocess: descriptor.preprocess,
            class_names: Some(descriptor.categories.names()),
            source: format!("{} {}", info.name, descriptor.name),
        });
    }
    let model = if path.extension().is_some_and(|e| e == "bpk") {
        load_burnpack(info.create(num_classes, device)?, path)?
    } else {
        import_file(info, num_classes, path, device)?
    };
    // A file carries no transform: a `.pdparams` file takes the one of the model's Paddle
    // weights (resize 256), any other the one of its default torchvision weights.
    let paddle = matches!(WeightFormat::detect(path), Ok(WeightFormat::Pdparams));
    let preprocess = info
        .weights
        .iter()
        .find(|w| paddle && w.source == WeightsSource::PaddleVision)
        .or_else(|| info.default_weights())
        .map(|w| w.preprocess)
        .unwrap_or_default();
    let class_names =
        (num_classes == Categories::ImageNet1K.len()).then(|| Categories::ImageNet1K.names());
    Ok(Classifier {
        model,
        preprocess,
        class_names,
        source: path.display().to_string(),
    })
}

/// The `k` most probable classes of each row of `logits` (`[batch, classes]`), as
/// `(class index, probability)` from softmax, most probable first.
pub fn top_k(logits: burn::tensor::Tensor<2>, k: usize) -> Result<Vec<Vec<(usize, f32)>>> {
    let [batch, classes] = logits.dims();
    let probabilities: Vec<f32> = model_zoo::read_back(softmax(logits, 1), "probabilities")?
        .try_to_vec::<f32>()
        .map_err(|e| anyhow::anyhow!("reading probabilities: {e:?}"))
        .context("top_k")?;
    Ok((0..batch)
        .map(|row| {
            let row = &probabilities[row * classes..(row + 1) * classes];
            let mut order: Vec<usize> = (0..classes).collect();
            order.sort_by(|&a, &b| row[b].total_cmp(&row[a]));
            order.into_iter().take(k).map(|i| (i, row[i])).collect()
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::{Tensor, TensorData};

    #[test]
    fn top_k_orders_softmax_probabilities() {
        let device = model_zoo::available_backends()[0].device().unwrap();
        let logits = Tensor::<2>::from_data(
            TensorData::new(vec![0.0f32, 2.0, 1.0, 5.0, 5.0, -1.0], [2, 3]),
            &device,
        );
        let best = top_k(logits, 2).unwrap();
        // softmax([0, 2, 1]) = [0.090, 0.665, 0.245]
        assert_eq!(best[0][0].0, 1);
        assert_eq!(best[0][1].0, 2);
        assert!((best[0][0].1 - 0.665_241).abs() < 1e-5);
        assert!((best[0][1].1 - 0.244_728).abs() < 1e-5);
        // A tie keeps both, each with 1 / (2 + e^-6) = 0.499381.
        assert_eq!(best[1].len(), 2);
        assert!((best[1][0].1 - 0.499_381).abs() < 1e-5);
    }
}
