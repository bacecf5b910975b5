//! DenseNet-BC, as torchvision's `densenet121/161/169/201` (`torchvision/models/densenet.py`):
//! the same options and defaults, state_dict keys (`features.denseblock1.denselayer1.norm1`)
//! and initialisation.
//!
//! Huang et al., *Densely Connected Convolutional Networks*, CVPR 2017. Every dense layer sees
//! the concatenation of the block's input and of all earlier layers' outputs (BatchNorm, ReLU,
//! 1x1 convolution to `bn_size * growth_rate` channels, BatchNorm, ReLU, 3x3 convolution to
//! `growth_rate`); transitions halve the channels and the resolution.
//!
//! torchvision's published files spell the dense layers' keys the old way (`norm.1`, `conv.2`);
//! the importer renames them as torchvision's `_load_state_dict` does, and refuses a file that
//! mixes the two spellings (see [`crate::ImportHooks::key_renames`]).
//!
//! ```no_run
//! use model_zoo::Architecture;
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let device = model_zoo::Backend::Flex.device()?;
//! let model = model_zoo::densenet::densenet121(1000, &device)?;
//! let logits = model.forward(burn::tensor::Tensor::zeros([1, 3, 224, 224], &device));
//! assert_eq!(logits.dims(), [1, 1000]);
//! # Ok(()) }
//! ```

mod weights;
pub use weights::*;

use crate::layers::relu;
use crate::layers::{BatchNorm, BatchNormConfig};
use crate::layers::{conv2d, max_pool2d};
use burn::config::Config;
use burn::module::Module;
use burn::nn::PaddingConfig2d;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::pool::{AvgPool2d, AvgPool2dConfig, MaxPool2d, MaxPool2dConfig};
use burn::nn::{Dropout, DropoutConfig, Initializer, Linear};
use burn::tensor::{Device, Tensor};

use crate::architecture::{Architecture, KeyRename, ImportHooks};
use crate::error::{ConfigError, InputSpec};
use crate::family::Family;
use crate::features::{self, FeatureInfo, Taps};
use crate::layers::{
    Numbered, conv_config, fold_batchnorm, linear_torch_default, norm, zero_bias,
};
use crate::tap;

impl Family {
    /// DenseNet ([`crate::densenet`]).
    pub const DENSENET: Family = Family::new("densenet");
}

/// Configuration of a [`DenseNet`], torchvision's `DenseNet(...)` arguments. The builders
/// [`DenseNetConfig::densenet121`] etc. set torchvision's values for each model.
#[derive(Config, Debug)]
pub struct DenseNetConfig {
    /// Channels each dense layer adds (`k` in the paper).
    #[config(default = 32)]
    pub growth_rate: usize,
    /// Dense layers in each of the four blocks.
    #[config(default = "[6, 12, 24, 16]")]
    pub block_config: [usize; 4],
    /// Channels of the stem convolution.
    #[config(default = 64)]
    pub num_init_features: usize,
    /// The bottleneck's width is `bn_size * growth_rate`.
    #[config(default = 4)]
    pub bn_size: usize,
    /// Dropout after each dense layer (training only).
    #[config(default = 0.0)]
    pub drop_rate: f64,
    /// Output classes.
    #[config(default = 1000)]
    pub num_classes: usize,
    /// torchvision's gradient checkpointing of the bottlenecks, which trades compute for
    /// memory in training and changes no output. The zoo does not checkpoint: the option is
    /// accepted so that torchvision's arguments carry over, and has no effect here (inference
    /// never keeps the bottlenecks; training keeps them as `memory_efficient=False` does).
    #[config(default = false)]
    pub memory_efficient: bool,
}

impl DenseNetConfig {
    /// torchvision's `densenet121`: growth 32, blocks (6, 12, 24, 16), 64 stem channels.
    pub fn densenet121() -> Self {
        Self::new()
    }

    /// torchvision's `densenet161`: growth 48, blocks (6, 12, 36, 24), 96 stem channels.
    pub fn densenet161() -> Self {
        Self::new()
            .with_growth_rate(48)
            .with_block_config([6, 12, 36, 24])
            .with_num_init_features(96)
    }

    /// torchvision's `densenet169`: growth 32, blocks (6, 12, 32, 32), 64 stem channels.
    pub fn densenet169() -> Self {
        Self::new().with_block_config([6, 12, 32, 32])
    }

    /// torchvision's `densenet201`: growth 32, blocks (6, 12, 48, 32), 64 stem channels.
    pub fn densenet201() -> Self {
        Self::new().with_block_config([6, 12, 48, 32])
    }

    /// Builds the model, initialised as torchvision does: convolutions `kaiming_normal_`
    /// (fan-in, ReLU gain), BatchNorm ones and zeros, the classifier PyTorch's default weight
    /// with a zero bias.
    pub fn init(&self, device: &Device) -> Result<DenseNet, ConfigError> {
        let model = "densenet";
        ConfigError::nonzero(model, "num_classes", self.num_classes)?;
        ConfigError::nonzero(model, "growth_rate", self.growth_rate)?;
        ConfigError::nonzero(model, "num_init_features", self.num_init_features)?;
        ConfigError::nonzero(model, "bn_size", self.bn_size)?;
        ConfigError::probability(model, "drop_rate", self.drop_rate)?;
        for &layers in &self.block_config {
            ConfigError::nonzero(model, "block_config", layers)?;
        }
        let mut channels = self.num_init_features;
        let mut blocks = Vec::new();
        let mut transitions = Vec::new();
        for (i, &layers) in self.block_config.iter().enumerate() {
            let block = (0..layers)
                .map(|j| self.dense_layer(channels + j * self.growth_rate, device))
                .collect();
            blocks.push(Numbered::new("denselayer", 1, block));
            channels += layers * self.growth_rate;
            if i < 3 {
                transitions.push(Transition::new(channels, channels / 2, device));
                channels /= 2;
            }
        }
        let [denseblock1, denseblock2, denseblock3, denseblock4]: [_; 4] = blocks
            .try_into()
            .unwrap_or_else(|_| unreachable!("four blocks"));
        let [transition1, transition2, transition3]: [_; 3] = transitions
            .try_into()
            .unwrap_or_else(|_| unreachable!("three transitions"));
        let classifier = linear_torch_default(channels, self.num_classes, device);
        Ok(DenseNet {
            features: Features {
                conv0: kaiming_fan_in(conv_config(3, self.num_init_features, 7, 2, 1), device),
                norm0: Some(BatchNormConfig::new(self.num_init_features).init(device)),
                pool0: MaxPool2dConfig::new([3, 3])
                    .with_strides([2, 2])
                    .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
                    .init(),
                denseblock1,
                transition1,
                denseblock2,
                transition2,
                denseblock3,
                transition3,
                denseblock4,
                norm5: BatchNormConfig::new(channels).init(device),
            },
            classifier: Some(Linear {
                bias: zero_bias(classifier.bias, device),
                ..classifier
            }),
            num_features: channels,
        })
    }

    fn dense_layer(&self, input: usize, device: &Device) -> DenseLayer {
        let bottleneck = self.bn_size * self.growth_rate;
        DenseLayer {
            norm1: BatchNormConfig::new(input).init(device),
            conv1: kaiming_fan_in(conv_config(input, bottleneck, 1, 1, 1), device),
            norm2: Some(BatchNormConfig::new(bottleneck).init(device)),
            conv2: kaiming_fan_in(conv_config(bottleneck, self.growth_rate, 3, 1, 1), device),
            dropout: DropoutConfig::new(self.drop_rate).init(),
        }
    }
}

/// A convolution initialised by `nn.init.kaiming_normal_` with its defaults (fan-in, gain
/// `sqrt(2)`): burn's fan-in is PyTorch's, `in / groups * k * k`.
fn kaiming_fan_in(config: Conv2dConfig, device: &Device) -> Conv2d {
    config
        .with_initializer(Initializer::KaimingNormal {
            gain: std::f64::consts::SQRT_2,
            fan_out_only: false,
        })
        .init(device)
}

/// torchvision's `_DenseLayer`: `conv2(relu(norm2(conv1(relu(norm1(x))))))` on the
/// concatenation `x` of everything before it in the block.
#[derive(Module, Debug)]
pub struct DenseLayer {
    /// BatchNorm of the concatenated input.
    pub norm1: BatchNorm,
    /// 1x1 bottleneck to `bn_size * growth_rate` channels.
    pub conv1: Conv2d,
    /// BatchNorm of the bottleneck; `None` once folded into `conv1`.
    pub norm2: Option<BatchNorm>,
    /// 3x3 convolution to `growth_rate` channels.
    pub conv2: Conv2d,
    /// Dropout of the new features (`drop_rate`, training only).
    pub dropout: Dropout,
}

impl DenseLayer {
    /// The layer's new features.
    ///
    /// # Shapes
    /// - input: `[batch, channels so far, height, width]`
    /// - output: `[batch, growth_rate, height, width]`
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let x = conv2d(&self.conv1, relu(self.norm1.forward(x)));
        let x = conv2d(&self.conv2, relu(norm(&self.norm2, x)));
        self.dropout.forward(x)
    }

    fn fold_batchnorm(self) -> Self {
        match &self.norm2 {
            Some(bn) => Self {
                conv1: fold_batchnorm(self.conv1, bn),
                norm2: None,
                ..self
            },
            None => self,
        }
    }
}

/// A dense block: its layers' outputs concatenated to its input, in order.
///
/// # Shapes
/// - input: `[batch, c, height, width]`
/// - output: `[batch, c + layers * growth_rate, height, width]`
fn dense_block(layers: &Numbered<DenseLayer>, x: Tensor<4>) -> Tensor<4> {
    let mut features = vec![x];
    for layer in layers.iter() {
        let new = layer.forward(Tensor::cat(features.clone(), 1));
        features.push(new);
    }
    Tensor::cat(features, 1)
}

/// torchvision's `_Transition`: BatchNorm, ReLU, 1x1 convolution, 2x2 average pool.
#[derive(Module, Debug)]
pub struct Transition {
    /// BatchNorm of the block's output.
    pub norm: BatchNorm,
    /// 1x1 convolution to half the channels.
    pub conv: Conv2d,
    /// 2x2 stride-2 average pool.
    pub pool: AvgPool2d,
}

impl Transition {
    fn new(input: usize, output: usize, device: &Device) -> Self {
        Self {
            norm: BatchNormConfig::new(input).init(device),
            conv: kaiming_fan_in(conv_config(input, output, 1, 1, 1), device),
            pool: AvgPool2dConfig::new([2, 2]).with_strides([2, 2]).init(),
        }
    }

    /// # Shapes
    /// - input: `[batch, c, height, width]`
    /// - output: `[batch, c / 2, height / 2, width / 2]` (rounded down)
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        self.pool
            .forward(conv2d(&self.conv, relu(self.norm.forward(x))))
    }
}

/// torchvision's `features` sequence, field by field.
#[derive(Module, Debug)]
pub struct Features {
    /// 7x7 stride-2 stem convolution.
    pub conv0: Conv2d,
    /// Its BatchNorm; `None` once folded into `conv0`.
    pub norm0: Option<BatchNorm>,
    /// 3x3 stride-2 max-pool.
    pub pool0: MaxPool2d,
    /// First dense block.
    pub denseblock1: Numbered<DenseLayer>,
    /// First transition.
    pub transition1: Transition,
    /// Second dense block.
    pub denseblock2: Numbered<DenseLayer>,
    /// Second transition.
    pub transition2: Transition,
    /// Third dense block.
    pub denseblock3: Numbered<DenseLayer>,
    /// Third transition.
    pub transition3: Transition,
    /// Fourth dense block.
    pub denseblock4: Numbered<DenseLayer>,
    /// The final BatchNorm (followed by ReLU in `forward`).
    pub norm5: BatchNorm,
}

/// DenseNet. Build it with [`DenseNetConfig`].
#[derive(Module, Debug)]
pub struct DenseNet {
    /// Stem, four dense blocks with transitions between them, final BatchNorm.
    pub features: Features,
    /// `num_features -> num_classes`; `None` without its head.
    pub classifier: Option<Linear>,
    /// Channels of the last block (1024 for densenet121).
    pub num_features: usize,
}

/// What DenseNet accepts: torchvision's `min_size` (29x29); below it the third transition's
/// pool has nothing left.
pub const DENSENET_INPUT: InputSpec = InputSpec {
    channels: 3,
    min_size: [29, 29],
    exact: false,
};

/// torchvision's `_load_state_dict` rename of the published files' dense-layer keys:
/// `denselayer1.norm.1.weight` is `denselayer1.norm1.weight`.
pub const DENSENET_KEY_RENAMES: &[KeyRename] = &[KeyRename {
    old: r"^(.*denselayer\d+\.(?:norm|relu|conv))\.((?:[12])\.(?:weight|bias|running_mean|running_var))$",
    replacement: "${1}${2}",
    // `num_batches_tracked` is left out, as by torchvision's pattern: a file written by
    // renaming torchvision's way keeps it in the current spelling.
    current: r"denselayer\d+\.(?:norm|conv)[12]\.(?:weight|bias|running_mean|running_var)$",
}];

impl DenseNet {
    /// The unpooled features (`relu(features(x))`, as torchvision's forward), tapping the
    /// stages of [`Architecture::feature_info`].
    fn trunk(&self, x: Tensor<4>, taps: &mut Taps) -> Option<Tensor<4>> {
        let f = &self.features;
        let x = relu(norm(&f.norm0, conv2d(&f.conv0, x)));
        tap!(taps, 0, x.clone());
        let mut x = max_pool2d(&f.pool0, x);
        let blocks = [&f.denseblock1, &f.denseblock2, &f.denseblock3];
        let transitions = [&f.transition1, &f.transition2, &f.transition3];
        for (i, (block, transition)) in blocks.into_iter().zip(transitions).enumerate() {
            let out = dense_block(block, x);
            tap!(taps, i + 1, out.clone());
            x = transition.forward(out);
        }
        let x = f.norm5.forward(dense_block(&f.denseblock4, x));
        tap!(taps, 4, x.clone());
        Some(relu(x))
    }
}

impl Architecture for DenseNet {
    crate::layers::classifier_head!(classifier, pool);

    fn family(&self) -> Family {
        Family::DENSENET
    }

    fn input_spec(&self) -> InputSpec {
        InputSpec {
            channels: self.in_chans(),
            ..DENSENET_INPUT
        }
    }

    fn input_conv(&self) -> (&'static str, &Conv2d) {
        ("features.conv0", &self.features.conv0)
    }

    fn input_conv_mut(&mut self) -> &mut Conv2d {
        &mut self.features.conv0
    }

    /// `features.relu0` (the stem, before its max-pool), `features.denseblock1` to `3`, and
    /// `features.norm5` (before the final ReLU, as timm's); reductions 2 to 32.
    fn feature_info(&self) -> Vec<FeatureInfo> {
        let f = &self.features;
        let block_out = |t: &Transition| t.conv.weight.lazy_shape().dims::<4>()[1];
        vec![
            FeatureInfo::new(
                "features.relu0",
                f.conv0.weight.lazy_shape().dims::<4>()[0],
                2,
            ),
            FeatureInfo::new("features.denseblock1", block_out(&f.transition1), 4),
            FeatureInfo::new("features.denseblock2", block_out(&f.transition2), 8),
            FeatureInfo::new("features.denseblock3", block_out(&f.transition3), 16),
            FeatureInfo::new("features.norm5", self.num_features(), 32),
        ]
    }

    fn forward_features_tapped(&self, x: Tensor<4>, taps: &mut Taps) -> Option<features::Features> {
        self.trunk(x, taps).map(features::Features::Map)
    }

    fn num_features(&self) -> usize {
        self.num_features
    }

    /// The stem's `norm0` and each dense layer's `norm2` follow a convolution directly; the
    /// other BatchNorms act on concatenations and stay.
    fn can_fold_batchnorm(&self) -> bool {
        self.features.norm0.is_some()
    }

    fn fold_batchnorm(self) -> Self {
        let f = self.features;
        let fold = |block: Numbered<DenseLayer>| Numbered {
            items: block
                .items
                .into_iter()
                .map(DenseLayer::fold_batchnorm)
                .collect(),
            ..block
        };
        let (conv0, norm0) = match f.norm0 {
            Some(bn) => (fold_batchnorm(f.conv0, &bn), None),
            None => (f.conv0, None),
        };
        Self {
            features: Features {
                conv0,
                norm0,
                denseblock1: fold(f.denseblock1),
                denseblock2: fold(f.denseblock2),
                denseblock3: fold(f.denseblock3),
                denseblock4: fold(f.denseblock4),
                ..f
            },
            ..self
        }
    }
}

impl ImportHooks for DenseNet {
    fn classifier_prefixes(&self) -> &'static [&'static str] {
        &["classifier."]
    }

    fn key_renames(&self) -> &'static [KeyRename] {
        DENSENET_KEY_RENAMES
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::InputError;
    use crate::device::test_device as device;

    #[test]
    fn parameter_count_of_a_small_densenet_equals_torchvision() {
        let device = device();
        // sum(p.numel() for p in DenseNet(growth_rate=12, block_config=(2, 2, 2, 2),
        //     num_init_features=16, bn_size=2, num_classes=10).parameters()).
        let small = DenseNetConfig::new()
            .with_growth_rate(12)
            .with_block_config([2, 2, 2, 2])
            .with_num_init_features(16)
            .with_bn_size(2)
            .with_num_classes(10)
            .init(&device)
            .unwrap();
        assert_eq!(crate::num_parameters(&small), 32_624);
    }

    #[test]
    fn keys_are_torchvision_s() {
        let model = densenet121(1000, &device()).unwrap();
        let keys = crate::layers::torch_shapes(&model);
        for (key, shape) in [
            ("features.conv0.weight", vec![64, 3, 7, 7]),
            ("features.norm0.running_var", vec![64]),
            ("features.denseblock1.denselayer1.norm1.weight", vec![64]),
            (
                "features.denseblock1.denselayer1.conv1.weight",
                vec![128, 64, 1, 1],
            ),
            (
                "features.denseblock1.denselayer6.conv2.weight",
                vec![32, 128, 3, 3],
            ),
            (
                "features.denseblock3.denselayer24.norm2.running_mean",
                vec![128],
            ),
            ("features.transition1.conv.weight", vec![128, 256, 1, 1]),
            ("features.norm5.bias", vec![1024]),
            ("classifier.weight", vec![1000, 1024]),
        ] {
            assert_eq!(keys.get(key), Some(&shape), "{key}");
        }
        assert!(!keys.keys().any(|k| k.contains("denselayer0")));
    }

    #[test]
    fn sizes_from_29_and_a_clear_error_below() {
        let device = device();
        let model = DenseNetConfig::new()
            .with_growth_rate(8)
            .with_block_config([1, 1, 1, 1])
            .with_num_init_features(8)
            .with_num_classes(5)
            .init(&device)
            .unwrap();
        for [h, w] in [[29, 29], [64, 48]] {
            let x = Tensor::<4>::zeros([2, 3, h, w], &device);
            assert_eq!(model.forward(x).dims(), [2, 5]);
        }
        let small = Tensor::<4>::zeros([1, 3, 28, 40], &device);
        assert!(matches!(
            model.try_forward(small),
            Err(InputError::TooSmall { .. })
        ));
    }

    #[test]
    fn invalid_options_are_errors() {
        let device = device();
        assert!(matches!(
            DenseNetConfig::new().with_drop_rate(1.5).init(&device),
            Err(ConfigError::Invalid {
                field: "drop_rate",
                ..
            })
        ));
        assert!(matches!(
            DenseNetConfig::new()
                .with_block_config([6, 0, 24, 16])
                .init(&device),
            Err(ConfigError::Zero {
                field: "block_config",
                ..
            })
        ));
    }
}
