//! AlexNet, faithful to torchvision's `alexnet.py` (the single-GPU variant of "One weird trick
//! for parallelizing convolutional neural networks", Krizhevsky 2014, which torchvision follows
//! rather than the 2012 paper).
//!
//! `features` and `classifier` are `Vec`s with one entry per torchvision `nn.Sequential` slot,
//! so parameters sit at torchvision's keys (`features.0`, `features.3`, ..., `classifier.1`,
//! `classifier.4`, `classifier.6`) by construction.

use burn::config::Config;
use burn::module::Module;
use burn::nn::conv::Conv2dConfig;
use burn::nn::pool::{AdaptiveAvgPool2d, AdaptiveAvgPool2dConfig, MaxPool2dConfig};
use burn::nn::{DropoutConfig, PaddingConfig2d, Relu};
use burn::tensor::{Device, Tensor};

use crate::error::{ConfigError, InputError, InputSpec};
use crate::layers::{
    ImageLayer, VectorLayer, last_linear, linear_torch_default, replace_last_linear,
    run_image_layers, run_vector_layers,
};

/// Configuration of an [`AlexNet`].
#[derive(Config, Debug)]
pub struct AlexNetConfig {
    /// Output classes.
    #[config(default = 1000)]
    pub num_classes: usize,
    /// Dropout probability before each hidden linear layer.
    #[config(default = 0.5)]
    pub dropout: f64,
}

/// What AlexNet accepts: 63x63 is the smallest input whose last max-pool still has a 3x3 window.
pub const ALEXNET_INPUT: InputSpec = InputSpec {
    channels: 3,
    min_size: [63, 63],
};

/// torchvision's AlexNet: five convolutions (64, 192, 384, 256, 256 channels), adaptive average
/// pooling to 6x6, and a 9216 → 4096 → 4096 → classes classifier with dropout.
#[derive(Module, Debug)]
pub struct AlexNet {
    /// Convolutions, ReLUs and max-pools, at torchvision's indices.
    pub features: Vec<ImageLayer>,
    /// `AdaptiveAvgPool2d((6, 6))`.
    pub avgpool: AdaptiveAvgPool2d,
    /// Dropout, linear and ReLU slots, at torchvision's indices.
    pub classifier: Vec<VectorLayer>,
}

impl AlexNetConfig {
    /// Builds the model, initialised as PyTorch's defaults (torchvision's AlexNet does no
    /// initialisation of its own).
    pub fn init(&self, device: &Device) -> Result<AlexNet, ConfigError> {
        if self.num_classes == 0 {
            return Err(ConfigError::Zero {
                model: "alexnet".into(),
                field: "num_classes",
            });
        }
        let conv = |c_in, c_out, k: usize, stride, pad| {
            ImageLayer::Conv(
                Conv2dConfig::new([c_in, c_out], [k, k])
                    .with_stride([stride, stride])
                    .with_padding(PaddingConfig2d::Explicit(pad, pad, pad, pad))
                    .init(device),
            )
        };
        let pool = || ImageLayer::MaxPool(MaxPool2dConfig::new([3, 3]).with_strides([2, 2]).init());
        let features = vec![
            conv(3, 64, 11, 4, 2),
            ImageLayer::Relu(Relu),
            pool(),
            conv(64, 192, 5, 1, 2),
            ImageLayer::Relu(Relu),
            pool(),
            conv(192, 384, 3, 1, 1),
            ImageLayer::Relu(Relu),
            conv(384, 256, 3, 1, 1),
            ImageLayer::Relu(Relu),
            conv(256, 256, 3, 1, 1),
            ImageLayer::Relu(Relu),
            pool(),
        ];
        let dropout = || VectorLayer::Dropout(DropoutConfig::new(self.dropout).init());
        let classifier = vec![
            dropout(),
            VectorLayer::Linear(linear_torch_default(256 * 6 * 6, 4096, device)),
            VectorLayer::Relu(Relu),
            dropout(),
            VectorLayer::Linear(linear_torch_default(4096, 4096, device)),
            VectorLayer::Relu(Relu),
            VectorLayer::Linear(linear_torch_default(4096, self.num_classes, device)),
        ];
        Ok(AlexNet {
            features,
            avgpool: AdaptiveAvgPool2dConfig::new([6, 6]).init(),
            classifier,
        })
    }
}

impl AlexNet {
    /// What this model accepts: 3 channels, at least 63x63.
    pub fn input_spec(&self) -> InputSpec {
        ALEXNET_INPUT
    }

    /// Pooled features before the classifier, flattened.
    ///
    /// # Shapes
    /// - input: `[batch, 3, height, width]`, at least 63x63
    /// - output: `[batch, 9216]` (256 channels x 6 x 6)
    pub fn forward_features(&self, x: Tensor<4>) -> Tensor<2> {
        let x = run_image_layers(&self.features, x);
        self.avgpool.forward(x).flatten(1, 3)
    }

    /// Logits.
    ///
    /// # Shapes
    /// - input: `[batch, 3, height, width]`, at least 63x63
    /// - output: `[batch, num_classes]`
    ///
    /// # Panics
    /// On an input that [`Self::try_forward`] rejects, with the same message.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<2> {
        crate::error::or_panic(self.try_forward(x))
    }

    /// Logits, or an error naming what is wrong with the input.
    pub fn try_forward(&self, x: Tensor<4>) -> Result<Tensor<2>, InputError> {
        self.input_spec().check("alexnet", x.dims())?;
        Ok(run_vector_layers(
            &self.classifier,
            self.forward_features(x),
        ))
    }

    /// Width of the pooled features (9216).
    pub fn num_features(&self) -> usize {
        256 * 6 * 6
    }

    /// Classes of the last linear layer.
    pub fn num_classes(&self) -> usize {
        last_linear(&self.classifier).map_or(0, |(_, _, out)| out)
    }

    /// Replaces the last linear layer (`classifier.6`) by a freshly initialised one for
    /// `num_classes` classes, as `model.classifier[6] = nn.Linear(4096, n)` does in PyTorch.
    pub fn reset_classifier(
        mut self,
        num_classes: usize,
        device: &Device,
    ) -> Result<Self, ConfigError> {
        self.classifier = replace_last_linear(self.classifier, "alexnet", num_classes, device)?;
        Ok(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::device::test_device as device;

    #[test]
    fn parameter_count_equals_torchvision() {
        // sum(p.numel() for p in torchvision.models.alexnet().parameters())
        let model = AlexNetConfig::new().init(&device()).unwrap();
        assert_eq!(crate::num_parameters(&model), 61_100_840);
    }

    #[test]
    fn any_size_from_63_and_a_clear_error_below() {
        let device = device();
        let model = AlexNetConfig::new()
            .with_num_classes(7)
            .init(&device)
            .unwrap();
        for [h, w] in [[63, 63], [64, 100], [224, 224]] {
            let logits = model.forward(Tensor::zeros([1, 3, h, w], &device));
            assert_eq!(logits.dims(), [1, 7], "{h}x{w}");
        }
        let err = model
            .try_forward(Tensor::zeros([1, 3, 62, 80], &device))
            .unwrap_err();
        assert!(err.to_string().contains("at least 63x63"), "{err}");
        let model = model.reset_classifier(3, &device).unwrap();
        assert_eq!(model.num_classes(), 3);
        assert_eq!(
            model
                .forward_features(Tensor::zeros([2, 3, 63, 63], &device))
                .dims(),
            [2, 9216]
        );
    }
}
