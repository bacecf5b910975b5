//! SqueezeNet 1.0 and 1.1, as torchvision's `squeezenet1_0` and `squeezenet1_1`
//! (`torchvision/models/squeezenet.py`): Fire modules, ceil-mode max-pools, and a convolutional
//! classifier; torchvision's keys, options and initialisation.

mod weights;
pub use weights::*;

use crate::layers::relu;
use crate::layers::adaptive_avg_pool2d_with;
use burn::config::Config;
use burn::module::{Module, ParamGroup};
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::pool::{AdaptiveAvgPool2dConfig, MaxPool2dConfig};
use burn::nn::{DropoutConfig, Initializer, PaddingConfig2d};
use burn::tensor::{Device, Tensor};

use crate::architecture::{Architecture, ImportHooks};
use crate::error::{ConfigError, InputSpec};
use crate::family::Family;
use crate::features::{FeatureInfo, Features, Taps, run_sequence, sequence_info};
use crate::layers::conv2d;
use crate::layers::stem_conv;
use crate::layers::{ImageLayer, run_image_layers, zero_bias};

impl Family {
    /// SqueezeNet 1.0 and 1.1 ([`crate::squeezenet`]).
    pub const SQUEEZENET: Family = Family::new("squeezenet");
}

/// Which SqueezeNet.
#[derive(Config, Debug, Copy, PartialEq, Eq)]
pub enum SqueezeNetVersion {
    /// `squeezenet1_0`: the paper's network, 7x7 stem.
    V1_0,
    /// `squeezenet1_1`: 3x3 stem and earlier pooling, 2.4x less computation.
    V1_1,
}

/// Configuration of a [`SqueezeNet`], torchvision's `SqueezeNet(version, num_classes, dropout)`.
#[derive(Config, Debug)]
pub struct SqueezeNetConfig {
    /// 1.0 or 1.1.
    pub version: SqueezeNetVersion,
    /// Output classes.
    #[config(default = 1000)]
    pub num_classes: usize,
    /// Dropout probability before the classifier.
    #[config(default = 0.5)]
    pub dropout: f64,
}

/// The Fire module: a 1x1 squeeze, then 1x1 and 3x3 expansions concatenated, each with ReLU.
#[derive(Module, Debug)]
pub struct Fire {
    /// 1x1 squeeze convolution.
    pub squeeze: Conv2d,
    /// 1x1 expansion.
    pub expand1x1: Conv2d,
    /// 3x3 expansion (padding 1).
    pub expand3x3: Conv2d,
}

impl Fire {
    fn new(input: usize, squeeze: usize, expand1x1: usize, expand3x3: usize, d: &Device) -> Self {
        Self {
            squeeze: conv(Conv2dConfig::new([input, squeeze], [1, 1]), d),
            expand1x1: conv(Conv2dConfig::new([squeeze, expand1x1], [1, 1]), d),
            expand3x3: conv(
                Conv2dConfig::new([squeeze, expand3x3], [3, 3])
                    .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1)),
                d,
            ),
        }
    }

    /// # Shapes
    /// - input: `[batch, input, height, width]`
    /// - output: `[batch, expand1x1 + expand3x3, height, width]`
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let x = relu(conv2d(&self.squeeze, x));
        Tensor::cat(
            vec![
                relu(conv2d(&self.expand1x1, x.clone())),
                relu(conv2d(&self.expand3x3, x)),
            ],
            1,
        )
    }
}

/// torchvision's init for every convolution but the last: `kaiming_uniform_` (gain sqrt(2),
/// fan-in), zero bias.
fn conv(config: Conv2dConfig, device: &Device) -> Conv2d {
    let conv = config
        .with_initializer(Initializer::KaimingUniform {
            gain: 2f64.sqrt(),
            fan_out_only: false,
        })
        .init(device);
    Conv2d {
        bias: zero_bias(conv.bias, device),
        ..conv
    }
}

/// One slot of `features`: a layer or a Fire module.
// Slots are a few hundred bytes of layer description each, next to megabytes of weights.
#[allow(clippy::large_enum_variant)]
#[derive(Module, Debug)]
pub enum Feature {
    /// Convolution, ReLU or max-pool.
    Layer(ImageLayer),
    /// A Fire module.
    Fire(Fire),
}

/// SqueezeNet. Build it with [`SqueezeNetConfig`].
#[derive(Module, Debug)]
pub struct SqueezeNet {
    /// Stem, Fire modules and max-pools.
    pub features: Vec<Feature>,
    /// `Dropout`, final 1x1 convolution to the classes, `ReLU`, global average pool.
    pub classifier: Vec<ImageLayer>,
    /// 1.0 or 1.1.
    #[module(skip)]
    pub version: SqueezeNetVersion,
}

impl SqueezeNetConfig {
    /// torchvision's `squeezenet1_0`.
    pub fn v1_0() -> Self {
        Self::new(SqueezeNetVersion::V1_0)
    }

    /// torchvision's `squeezenet1_1`.
    pub fn v1_1() -> Self {
        Self::new(SqueezeNetVersion::V1_1)
    }

    /// Builds the model, initialised as torchvision does: `kaiming_uniform_` convolutions,
    /// the final one `normal_(0, 0.01)`, zero biases.
    pub fn init(&self, device: &Device) -> Result<SqueezeNet, ConfigError> {
        let name = version_name(self.version);
        ConfigError::nonzero(name, "num_classes", self.num_classes)?;
        ConfigError::probability(name, "dropout", self.dropout)?;
        let d = device;
        let pool = || {
            Feature::Layer(ImageLayer::MaxPool(
                MaxPool2dConfig::new([3, 3])
                    .with_strides([2, 2])
                    .with_ceil_mode(true)
                    .init(),
            ))
        };
        let relu = || Feature::Layer(ImageLayer::relu());
        let fire = |i, s, e| Feature::Fire(Fire::new(i, s, e, e, d));
        let features = match self.version {
            SqueezeNetVersion::V1_0 => vec![
                Feature::Layer(ImageLayer::Conv(conv(
                    Conv2dConfig::new([3, 96], [7, 7]).with_stride([2, 2]),
                    d,
                ))),
                relu(),
                pool(),
                fire(96, 16, 64),
                fire(128, 16, 64),
                fire(128, 32, 128),
                pool(),
                fire(256, 32, 128),
                fire(256, 48, 192),
                fire(384, 48, 192),
                fire(384, 64, 256),
                pool(),
                fire(512, 64, 256),
            ],
            SqueezeNetVersion::V1_1 => vec![
                Feature::Layer(ImageLayer::Conv(conv(
                    Conv2dConfig::new([3, 64], [3, 3]).with_stride([2, 2]),
                    d,
                ))),
                relu(),
                pool(),
                fire(64, 16, 64),
                fire(128, 16, 64),
                pool(),
                fire(128, 32, 128),
                fire(256, 32, 128),
                pool(),
                fire(256, 48, 192),
                fire(384, 48, 192),
                fire(384, 64, 256),
                fire(512, 64, 256),
            ],
        };
        let final_conv = Conv2dConfig::new([512, self.num_classes], [1, 1])
            .with_initializer(Initializer::Normal {
                mean: 0.0,
                std: 0.01,
            })
            .init(d);
        let final_conv = Conv2d {
            bias: zero_bias(final_conv.bias, d),
            ..final_conv
        };
        Ok(SqueezeNet {
            features,
            classifier: classifier(self.dropout, final_conv),
            version: self.version,
        })
    }
}

fn classifier(dropout: f64, final_conv: Conv2d) -> Vec<ImageLayer> {
    vec![
        ImageLayer::Dropout(DropoutConfig::new(dropout).init()),
        ImageLayer::Conv(final_conv),
        ImageLayer::relu(),
        ImageLayer::AdaptiveAvgPool(AdaptiveAvgPool2dConfig::new([1, 1]).init()),
    ]
}

fn version_name(version: SqueezeNetVersion) -> &'static str {
    match version {
        SqueezeNetVersion::V1_0 => "squeezenet1_0",
        SqueezeNetVersion::V1_1 => "squeezenet1_1",
    }
}

/// What SqueezeNet 1.0 accepts: 21x21 at least (torchvision's `min_size`).
pub const SQUEEZENET1_0_INPUT: InputSpec = InputSpec {
    channels: 3,
    min_size: [21, 21],
    exact: false,
};

/// What SqueezeNet 1.1 accepts: 17x17 at least (torchvision's `min_size`).
pub const SQUEEZENET1_1_INPUT: InputSpec = InputSpec {
    channels: 3,
    min_size: [17, 17],
    exact: false,
};

impl SqueezeNet {
    fn final_conv(&self) -> Option<&Conv2d> {
        self.classifier.iter().find_map(|layer| match layer {
            ImageLayer::Conv(conv) => Some(conv),
            _ => None,
        })
    }

    /// Each feature's `(stride, output channels)`.
    fn elements(&self) -> Vec<(usize, usize)> {
        let mut channels = 3;
        self.features
            .iter()
            .map(|feature| match feature {
                Feature::Layer(layer) => {
                    channels = layer.out_channels(channels);
                    (layer.stride(), channels)
                }
                Feature::Fire(fire) => {
                    channels = [&fire.expand1x1, &fire.expand3x3]
                        .iter()
                        .map(|conv| conv.weight.lazy_shape().dims::<4>()[0])
                        .sum();
                    (1, channels)
                }
            })
            .collect()
    }

    /// The unpooled features (`features`' output), tapping the stages of
    /// [`Architecture::feature_info`].
    fn trunk(&self, x: Tensor<4>, taps: &mut Taps) -> Option<Tensor<4>> {
        let ends = taps.ends(|| self.elements());
        run_sequence(
            &self.features,
            x,
            &ends,
            0,
            taps,
            |feature, x| match feature {
                Feature::Layer(layer) => layer.forward(x),
                Feature::Fire(fire) => fire.forward(x),
            },
        )
    }
}

impl Architecture for SqueezeNet {
    fn family(&self) -> Family {
        Family::SQUEEZENET
    }

    fn input_spec(&self) -> InputSpec {
        let spec = {
            match self.version {
                SqueezeNetVersion::V1_0 => SQUEEZENET1_0_INPUT,
                SqueezeNetVersion::V1_1 => SQUEEZENET1_1_INPUT,
            }
        };
        InputSpec {
            channels: self.in_chans(),
            ..spec
        }
    }

    fn display_name(&self) -> &str {
        version_name(self.version)
    }

    fn input_conv(&self) -> (&'static str, &Conv2d) {
        (
            "features.0",
            stem_conv(match self.features.first() {
                Some(Feature::Layer(layer)) => layer.first_conv(),
                _ => None,
            }),
        )
    }

    fn input_conv_mut(&mut self) -> &mut Conv2d {
        stem_conv(match self.features.first_mut() {
            Some(Feature::Layer(layer)) => layer.first_conv_mut(),
            _ => None,
        })
    }

    /// `features.N` before each max-pool after the stem, and the last (1.0: `features.1`, `.5`,
    /// `.10`, `.12`; 1.1: `.1`, `.4`, `.7`, `.12`; reductions 2 to 16).
    fn feature_info(&self) -> Vec<FeatureInfo> {
        sequence_info("features", &self.elements(), 1)
    }

    fn forward_features_tapped(&self, x: Tensor<4>, taps: &mut Taps) -> Option<Features> {
        self.trunk(x, taps).map(Features::Map)
    }

    /// `classifier` (dropout, 1x1 convolution to the classes, ReLU, global average pooling);
    /// the pre-logits are the features' global average (512 channels), which the classifier's
    /// convolution does not take.
    fn forward_head(&self, features: Features, pre_logits: bool) -> Tensor<2> {
        let x = features.expect_map("squeezenet");
        if pre_logits || self.classifier.is_empty() {
            return adaptive_avg_pool2d_with(x, [1, 1]).flatten(1, 3);
        }
        run_image_layers(&self.classifier, x).flatten(1, 3)
    }

    fn num_features(&self) -> usize {
        512
    }

    fn num_classes(&self) -> usize {
        self.final_conv().map_or(0, |conv| conv.weight.dims()[0])
    }

    /// Replaces the final convolution (`classifier.1`) by a new `Conv2d(512, num_classes, 1)`
    /// with PyTorch's default initialisation, as `model.classifier[1] = nn.Conv2d(...)` does.
    fn reset_classifier(
        mut self,
        num_classes: usize,
        device: &Device,
    ) -> Result<Self, ConfigError> {
        ConfigError::nonzero(version_name(self.version), "num_classes", num_classes)?;
        if self.final_conv().is_none() {
            return Err(crate::layers::removed_head(version_name(self.version)));
        }
        let dropout = self
            .classifier
            .iter()
            .find_map(|layer| match layer {
                ImageLayer::Dropout(dropout) => Some(dropout.prob),
                _ => None,
            })
            .unwrap_or(0.5);
        let conv = Conv2dConfig::new([512, num_classes], [1, 1]).init(device);
        self.classifier = classifier(dropout, conv);
        Ok(self)
    }

    /// `classifier.1`, the final convolution.
    fn classifier_group(&self) -> ParamGroup {
        self.final_conv()
            .map(|conv| ParamGroup::ids_from_module(conv.clone()))
            .unwrap_or_else(|| ParamGroup::from_ids(Vec::new()))
    }

    /// Without `classifier` (its dropout, convolution, ReLU and pooling).
    fn without_head(mut self) -> Self {
        self.classifier = Vec::new();
        self
    }

}

impl ImportHooks for SqueezeNet {
    fn classifier_prefixes(&self) -> &'static [&'static str] {
        &["classifier.1."]
    }

    fn head_prefixes(&self) -> &'static [&'static str] {
        &["classifier."]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::InputError;
    use crate::device::test_device as device;

    #[test]
    fn parameter_counts_and_sizes_equal_torchvision() {
        let device = device();
        for (config, params) in [
            (SqueezeNetConfig::v1_0(), 1_248_424),
            (SqueezeNetConfig::v1_1(), 1_235_496),
        ] {
            let model = config.init(&device).unwrap();
            assert_eq!(crate::num_parameters(&model), params);
            let [h, w] = model.input_spec().min_size;
            for [h, w] in [[h, w], [224, 224], [97, 130]] {
                let x = Tensor::<4>::zeros([2, 3, h, w], &device);
                assert_eq!(model.forward(x.clone()).dims(), [2, 1000]);
                assert_eq!(model.forward_pooled(x).dims(), [2, 512]);
            }
            let x = Tensor::<4>::zeros([1, 3, h - 1, w], &device);
            assert!(matches!(
                model.try_forward(x),
                Err(InputError::TooSmall { .. })
            ));
        }
    }

    #[test]
    fn reset_classifier_keeps_the_backbone() {
        let device = device();
        let model = SqueezeNetConfig::v1_1().init(&device).unwrap();
        let model = model.reset_classifier(3, &device).unwrap();
        assert_eq!(model.num_classes(), 3);
        let x = Tensor::<4>::zeros([1, 3, 64, 64], &device);
        assert_eq!(model.forward(x).dims(), [1, 3]);
        assert!(model.reset_classifier(0, &device).is_err());
    }
}
