//! The zoo's models as Burn `Learner` models: a [`Classifier`] wraps any [`Model`] with its
//! loss, for `burn::train`'s training and validation steps.

use burn::module::Module;
use burn::nn::loss::CrossEntropyLossConfig;
use burn::tensor::{Int, Tensor};
use burn::train::{ClassificationOutput, InferenceStep, TrainOutput, TrainStep};
use model_zoo::Model;

/// A batch of images and their class indices.
#[derive(Debug, Clone)]
pub struct ImageBatch {
    /// Normalised images, `[batch, 3, height, width]`.
    pub images: Tensor<4>,
    /// Class indices, `[batch]`.
    pub targets: Tensor<1, Int>,
}

/// A zoo model trained for classification with cross-entropy (and optional label smoothing).
#[derive(Module, Debug)]
pub struct Classifier {
    /// The network.
    pub model: Model,
    /// Label smoothing of the loss, `0` for none.
    pub label_smoothing: f32,
}

impl Classifier {
    /// Logits and the cross-entropy loss of a batch, with the model as it is (training or eval
    /// behaviour is decided by the device: autodiff means training).
    pub fn forward_classification(&self, batch: ImageBatch) -> ClassificationOutput {
        let logits = self.model.forward(batch.images);
        let mut loss = CrossEntropyLossConfig::new();
        if self.label_smoothing > 0.0 {
            loss = loss.with_smoothing(Some(self.label_smoothing));
        }
        let loss = loss
            .init(&logits.device())
            .forward(logits.clone(), batch.targets.clone());
        ClassificationOutput::new(loss, logits, batch.targets)
    }
}

impl TrainStep for Classifier {
    type Input = ImageBatch;
    type Output = ClassificationOutput;

    fn step(&self, batch: ImageBatch) -> TrainOutput<ClassificationOutput> {
        let item = self.forward_classification(batch);
        TrainOutput::new(self, item.loss.backward(), item)
    }
}

impl InferenceStep for Classifier {
    type Input = ImageBatch;
    type Output = ClassificationOutput;

    fn step(&self, batch: ImageBatch) -> ClassificationOutput {
        self.forward_classification(batch)
    }
}
