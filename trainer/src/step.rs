//! The zoo's models as Burn `Learner` models: a [`Classifier`] wraps any [`Model`] with its
//! loss, for `burn::train`'s training and validation steps.

use burn::module::Module;
use burn::nn::loss::CrossEntropyLossConfig;
use burn::tensor::{Int, Tensor};
use burn::train::{ClassificationOutput, InferenceStep, TrainOutput, TrainStep};
use model_zoo::Architecture;
use model_zoo::Model;

/// A batch of images and their class indices.
#[derive(Debug, Clone)]
pub struct ImageBatch {
    /// Normalised images, `[batch, 3, height, width]`.
    pub images: Tensor<4>,
    /// Class indices, `[batch]`.
    pub targets: Tensor<1, Int>,
    /// What the batch's loss is multiplied by before the backward pass (the reported loss is
    /// not): `1 / n` in a window of `n` batches whose gradients Burn sums before one optimiser
    /// step (`--grad-accumulation`), so that the step follows the mean loss of the window, as
    /// PyTorch's recipes do (`loss / k`). The epoch's last window may hold fewer batches: each
    /// of them then weighs `1 /` their count ([`crate::data::OrderedLoader`] sets it).
    pub grad_scale: f32,
}

impl ImageBatch {
    /// A batch whose gradients are not scaled.
    pub fn new(images: Tensor<4>, targets: Tensor<1, Int>) -> Self {
        Self {
            images,
            targets,
            grad_scale: 1.0,
        }
    }
}

/// A zoo model trained for classification with cross-entropy (and optional label smoothing).
#[derive(Module, Debug)]
pub struct Classifier {
    /// The network.
    pub model: Model,
    /// Label smoothing of the loss, `0` for none.
    pub label_smoothing: f32,
    /// The loss is multiplied by this before the backward pass: `1 / devices` when training
    /// data-parallel, since Burn sums the replicas' gradients, so that they add up to the
    /// gradient of the mean loss over the whole (effective) batch. Reported losses are unscaled.
    pub loss_scale: f32,
}

impl Classifier {
    /// `model` with cross-entropy (and `label_smoothing`), its gradients unscaled.
    pub fn new(model: Model, label_smoothing: f32) -> Self {
        Self {
            model,
            label_smoothing,
            loss_scale: 1.0,
        }
    }

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
        let scale = self.loss_scale * batch.grad_scale;
        let item = self.forward_classification(batch);
        let grads = if scale == 1.0 {
            item.loss.backward()
        } else {
            (item.loss.clone() * scale).backward()
        };
        TrainOutput::new(self, grads, item)
    }
}

impl InferenceStep for Classifier {
    type Input = ImageBatch;
    type Output = ClassificationOutput;

    fn step(&self, batch: ImageBatch) -> ClassificationOutput {
        self.forward_classification(batch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::{Distribution, TensorData};

    /// Data-parallel replicas each scale their loss by `1 / devices`, so that Burn's sum of
    /// their gradients is the gradient of the mean loss: the scale must reach the gradients.
    #[test]
    fn the_loss_scale_scales_the_gradients_not_the_reported_loss() {
        let device = model_zoo::Backend::Flex.device().unwrap().autodiff();
        let model = model_zoo::create("lenet5", 3, &device).unwrap();
        let images = Tensor::<4>::random([4, 3, 32, 32], Distribution::Default, &device);
        let targets =
            Tensor::<1, Int>::from_data(TensorData::new(vec![0i64, 1, 2, 1], [4]), &device);
        let batch = ImageBatch::new(images, targets);
        let whole = Classifier::new(model.clone(), 0.0);
        let half = Classifier {
            loss_scale: 0.5,
            ..Classifier::new(model, 0.0)
        };
        let conv1 = |c: &Classifier, batch: ImageBatch| {
            let output = TrainStep::step(c, batch);
            let Model::LeNet5(lenet) = &c.model else {
                unreachable!()
            };
            let grad = output
                .grads
                .get::<4>(lenet.conv1.weight.id)
                .expect("conv1 has a gradient");
            let loss = output.item.loss.into_data().try_to_vec::<f32>().unwrap()[0];
            (grad.into_data().try_to_vec::<f32>().unwrap(), loss)
        };
        let (g1, l1) = conv1(&whole, batch.clone());
        let (g2, l2) = conv1(&half, batch);
        assert_eq!(l1, l2);
        let norm: f32 = g1.iter().map(|g| g.abs()).sum();
        assert!(norm > 0.0);
        for (a, b) in g1.iter().zip(&g2) {
            assert!((a * 0.5 - b).abs() <= 1e-6 * norm, "{a} {b}");
        }
    }
}
