//! The zoo's models as Burn `Learner` models: a [`Classifier`] wraps any [`Model`] with its
//! loss, for `burn::train`'s training and validation steps.

use burn::module::{Module, ModuleVisitor, Param};
use burn::nn::loss::CrossEntropyLossConfig;
use burn::optim::lr_scheduler::module_lr_scheduler::ModuleLearningRate;
use burn::optim::{GradientsParams, ModuleOptimizer, MultiGradientsParams};
use burn::tensor::activation::log_softmax;
use burn::tensor::{Int, Tensor};
use burn::train::{ClassificationOutput, InferenceStep, TrainOutput, TrainStep};
use model_zoo::Architecture;
use model_zoo::Model;

use crate::ema::Ema;

/// A batch of images and their class indices.
#[derive(Debug, Clone)]
pub struct ImageBatch {
    /// Normalised images, `[batch, 3, height, width]`.
    pub images: Tensor<4>,
    /// Class indices, `[batch]` (with `soft_targets`, each row's largest, for the accuracy
    /// as torchvision's recipe counts it).
    pub targets: Tensor<1, Int>,
    /// Class probabilities, `[batch, classes]`, where MixUp or CutMix mixed the batch: the
    /// loss is then the cross-entropy with these.
    pub soft_targets: Option<Tensor<2>>,
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
            soft_targets: None,
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
    /// `--clip-grad-norm`: the gradients' global L2 norm is clipped to this after each
    /// backward pass ([`clip_grad_norm`]); `0` for none.
    pub clip_grad_norm: f32,
    /// `--model-ema`: the moving average of the weights, updated after the optimiser steps
    /// and used for validation.
    pub ema: Option<Ema>,
}

impl Classifier {
    /// `model` with cross-entropy (and `label_smoothing`), its gradients unscaled.
    pub fn new(model: Model, label_smoothing: f32) -> Self {
        Self {
            model,
            label_smoothing,
            loss_scale: 1.0,
            clip_grad_norm: 0.0,
            ema: None,
        }
    }

    /// Logits and the cross-entropy loss of a batch, with the model as it is (training or eval
    /// behaviour is decided by the device: autodiff means training).
    pub fn forward_classification(&self, batch: ImageBatch) -> ClassificationOutput {
        self.classify(&self.model, batch)
    }

    /// The model validation runs: the moving average where there is one.
    pub fn validated_model(&self) -> &Model {
        self.ema.as_ref().map_or(&self.model, |ema| &ema.model)
    }

    fn classify(&self, model: &Model, batch: ImageBatch) -> ClassificationOutput {
        let logits = model.forward(batch.images);
        let loss = match batch.soft_targets {
            Some(soft) => soft_cross_entropy(logits.clone(), soft, self.label_smoothing),
            None => {
                let mut loss = CrossEntropyLossConfig::new();
                if self.label_smoothing > 0.0 {
                    loss = loss.with_smoothing(Some(self.label_smoothing));
                }
                loss.init(&logits.device())
                    .forward(logits.clone(), batch.targets.clone())
            }
        };
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
        let mut output = TrainOutput::new(self, grads, item);
        if self.clip_grad_norm > 0.0 {
            clip_grad_norm(self, &mut output.grads, self.clip_grad_norm);
        }
        output
    }

    fn optimize(
        self,
        optim: &mut ModuleOptimizer,
        lr_module: ModuleLearningRate,
        grads: GradientsParams,
    ) -> Self {
        optim.step(lr_module, self, grads).after_step()
    }

    fn optimize_multi(
        self,
        optim: &mut ModuleOptimizer,
        lr_module: ModuleLearningRate,
        grads: MultiGradientsParams,
    ) -> Self {
        optim.step_multi(lr_module, self, grads).after_step()
    }
}

impl Classifier {
    /// After an optimiser step: the moving average's update.
    fn after_step(mut self) -> Self {
        if let Some(ema) = self.ema.take() {
            self.ema = Some(ema.after_step(&self.model));
        }
        self
    }
}

/// PyTorch's `cross_entropy` with class probabilities as targets, `[batch, classes]`, and
/// label smoothing `epsilon` (the targets become `t * (1 - epsilon) + epsilon / classes`):
/// `-(t * log_softmax(logits)).sum(1).mean()`.
pub fn soft_cross_entropy(logits: Tensor<2>, targets: Tensor<2>, epsilon: f32) -> Tensor<1> {
    let classes = logits.dims()[1] as f32;
    let targets = if epsilon > 0.0 {
        targets * (1.0 - epsilon) + epsilon / classes
    } else {
        targets
    };
    (log_softmax(logits, 1) * targets).sum_dim(1).mean().neg()
}

/// `torch.nn.utils.clip_grad_norm_(module.parameters(), max_norm)`: the L2 norm of all of
/// `grads` at once, and every gradient scaled by `max_norm / (norm + 1e-6)` where that is
/// below 1. Returns the norm before clipping. (Burn's `GradientClipping::Norm` clips each
/// parameter's gradient by its own norm, which is not torchvision's recipe.)
pub fn clip_grad_norm<M: Module>(module: &M, grads: &mut GradientsParams, max_norm: f32) -> f32 {
    struct SquaredNorm<'a> {
        grads: &'a GradientsParams,
        sum: Option<Tensor<1>>,
    }
    impl ModuleVisitor for SquaredNorm<'_> {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            if let Some(grad) = self.grads.get::<D>(param.id) {
                let squares = grad.square().sum();
                self.sum = Some(match self.sum.take() {
                    Some(sum) => sum + squares,
                    None => squares,
                });
            }
        }
    }
    struct Scale<'a> {
        grads: &'a mut GradientsParams,
        factor: f32,
    }
    impl ModuleVisitor for Scale<'_> {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            if let Some(grad) = self.grads.remove::<D>(param.id) {
                self.grads.register(param.id, grad * self.factor);
            }
        }
    }
    let mut squared = SquaredNorm { grads, sum: None };
    module.visit(&mut squared);
    let Some(sum) = squared.sum else {
        return 0.0;
    };
    let norm = sum.sqrt().into_scalar::<f32>();
    let factor = max_norm / (norm + 1e-6);
    if factor < 1.0 {
        module.visit(&mut Scale { grads, factor });
    }
    norm
}

impl InferenceStep for Classifier {
    type Input = ImageBatch;
    type Output = ClassificationOutput;

    fn step(&self, batch: ImageBatch) -> ClassificationOutput {
        self.classify(self.validated_model(), batch)
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
