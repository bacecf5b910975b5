//! EfficientNet B0–B7 and EfficientNet V2 S/M/L, as torchvision's `efficientnet_b0` ...
//! `efficientnet_v2_l` (`torchvision/models/efficientnet.py`): the same block settings, width
//! and depth scaling, BatchNorm settings (PyTorch's defaults for B0–B4; eps 0.001 and momentum
//! 0.01 for B5–B7, ported from TensorFlow; eps 0.001 for V2), stochastic depth, state_dict keys
//! (`features.2.1.block.3.1.weight`) and initialisation.
//!
//! Tan and Le, *EfficientNet* (ICML 2019) and *EfficientNetV2* (ICML 2021). MBConv blocks
//! (1x1 expansion, depthwise convolution, squeeze-excitation with SiLU, 1x1 projection) and,
//! in V2's first stages, FusedMBConv blocks (one full convolution in place of expansion and
//! depthwise), all with SiLU; the residual branch is dropped per sample in training with a
//! probability growing linearly to `stochastic_depth_prob` over the blocks.
//!
//! ```no_run
//! use model_zoo::Architecture;
//! use model_zoo::efficientnet::EfficientNetConfig;
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let device = model_zoo::Backend::Flex.device()?;
//! let model = EfficientNetConfig::efficientnet_b0().init(&device)?;
//! let logits = model.forward(burn::tensor::Tensor::zeros([1, 3, 224, 224], &device));
//! assert_eq!(logits.dims(), [1, 1000]);
//! # Ok(()) }
//! ```

mod weights;
pub use weights::*;

use crate::layers::TrunkSlot;
use burn::config::Config;
use burn::module::Module;
use burn::nn::{DropoutConfig, Initializer, LinearConfig};
use burn::tensor::{Device, Tensor};

use crate::architecture::{Architecture, ImportHooks};
use crate::error::{ConfigError, InputSpec};
use crate::family::Family;
use crate::layers::{
    ActivationKind, Conv2dNormActivation, ImageLayer, InvertedResidual, SqueezeExcitation,
    VectorLayer, fold_one, linear_slot, make_divisible,
};

impl Family {
    /// EfficientNet B0–B7 and V2 ([`crate::efficientnet`]).
    pub const EFFICIENTNET: Family = Family::new("efficientnet");
}

/// Which EfficientNet.
#[derive(Config, Debug, Copy, PartialEq, Eq)]
pub enum EfficientNetArch {
    /// `efficientnet_b0`.
    B0,
    /// `efficientnet_b1`.
    B1,
    /// `efficientnet_b2`.
    B2,
    /// `efficientnet_b3`.
    B3,
    /// `efficientnet_b4`.
    B4,
    /// `efficientnet_b5`.
    B5,
    /// `efficientnet_b6`.
    B6,
    /// `efficientnet_b7`.
    B7,
    /// `efficientnet_v2_s`.
    V2S,
    /// `efficientnet_v2_m`.
    V2M,
    /// `efficientnet_v2_l`.
    V2L,
}

impl EfficientNetArch {
    /// torchvision's builder's configuration: its `_efficientnet_conf` stages, last channel,
    /// BatchNorm settings and dropout.
    pub fn config(self) -> EfficientNetConfig {
        let (stages, last_channel) = setting(self);
        let (eps, momentum) = self.batch_norm();
        EfficientNetConfig::new(stages)
            .with_last_channel(last_channel)
            .with_bn_eps(eps)
            .with_bn_momentum(momentum)
            .with_dropout(self.default_dropout())
    }

    /// Every EfficientNet, in torchvision's order.
    pub const ALL: [EfficientNetArch; 11] = [
        Self::B0,
        Self::B1,
        Self::B2,
        Self::B3,
        Self::B4,
        Self::B5,
        Self::B6,
        Self::B7,
        Self::V2S,
        Self::V2M,
        Self::V2L,
    ];

    /// torchvision's builder name (`efficientnet_b0`, `efficientnet_v2_s`).
    pub fn name(self) -> &'static str {
        match self {
            Self::B0 => "efficientnet_b0",
            Self::B1 => "efficientnet_b1",
            Self::B2 => "efficientnet_b2",
            Self::B3 => "efficientnet_b3",
            Self::B4 => "efficientnet_b4",
            Self::B5 => "efficientnet_b5",
            Self::B6 => "efficientnet_b6",
            Self::B7 => "efficientnet_b7",
            Self::V2S => "efficientnet_v2_s",
            Self::V2M => "efficientnet_v2_m",
            Self::V2L => "efficientnet_v2_l",
        }
    }

    /// `(width_mult, depth_mult)` of the B models; `None` for V2.
    fn scaling(self) -> Option<(f64, f64)> {
        Some(match self {
            Self::B0 => (1.0, 1.0),
            Self::B1 => (1.0, 1.1),
            Self::B2 => (1.1, 1.2),
            Self::B3 => (1.2, 1.4),
            Self::B4 => (1.4, 1.8),
            Self::B5 => (1.6, 2.2),
            Self::B6 => (1.8, 2.6),
            Self::B7 => (2.0, 3.1),
            Self::V2S | Self::V2M | Self::V2L => return None,
        })
    }

    /// The builder's default dropout before the classifier.
    pub fn default_dropout(self) -> f64 {
        match self {
            Self::B0 | Self::B1 | Self::V2S => 0.2,
            Self::B2 | Self::B3 | Self::V2M => 0.3,
            Self::B4 | Self::B5 | Self::V2L => 0.4,
            Self::B6 | Self::B7 => 0.5,
        }
    }

    /// The builder's BatchNorm `(eps, momentum)`.
    pub fn batch_norm(self) -> (f64, f64) {
        match self {
            Self::B0 | Self::B1 | Self::B2 | Self::B3 | Self::B4 => (1e-5, 0.1),
            Self::B5 | Self::B6 | Self::B7 => (1e-3, 0.01),
            Self::V2S | Self::V2M | Self::V2L => (1e-3, 0.1),
        }
    }

    /// What the model accepts: torchvision's `min_size`, 1x1 for B0–B7 and 33x33 for V2.
    pub fn input_spec(self) -> InputSpec {
        let side = if self.scaling().is_some() { 1 } else { 33 };
        InputSpec {
            channels: 3,
            min_size: [side, side],
            exact: false,
        }
    }
}

/// One row of torchvision's `inverted_residual_setting` (`MBConvConfig` or
/// `FusedMBConvConfig`), after width and depth scaling.
#[derive(Config, Debug, Copy, PartialEq)]
pub struct StageSetting {
    /// FusedMBConv (V2's first stages) rather than MBConv.
    pub fused: bool,
    /// Expansion ratio of the hidden channels.
    pub expand_ratio: f64,
    /// Kernel side.
    pub kernel: usize,
    /// Stride of the stage's first block.
    pub stride: usize,
    /// Input channels of the stage.
    pub input_channels: usize,
    /// Output channels of every block.
    pub out_channels: usize,
    /// Number of blocks.
    pub num_layers: usize,
}

impl StageSetting {
    /// `MBConvConfig.adjust_channels`: `_make_divisible(channels * mult, 8)`.
    fn adjust_channels(channels: usize, mult: f64) -> usize {
        make_divisible(channels as f64 * mult, 8)
    }

    /// An `MBConvConfig` row scaled by `width_mult` and `depth_mult`.
    fn mb(row: (f64, usize, usize, usize, usize, usize), width: f64, depth: f64) -> Self {
        let (expand_ratio, kernel, stride, input, out, layers) = row;
        Self {
            fused: false,
            expand_ratio,
            kernel,
            stride,
            input_channels: Self::adjust_channels(input, width),
            out_channels: Self::adjust_channels(out, width),
            num_layers: (layers as f64 * depth).ceil() as usize,
        }
    }

    /// A `FusedMBConvConfig` row (never scaled).
    fn fused(row: (f64, usize, usize, usize, usize, usize)) -> Self {
        Self {
            fused: true,
            ..Self::mb(row, 1.0, 1.0)
        }
    }
}

/// `_efficientnet_conf`: the stages and the last convolution's width (`None`: four times the
/// last stage's).
pub fn setting(arch: EfficientNetArch) -> (Vec<StageSetting>, Option<usize>) {
    type Row = (f64, usize, usize, usize, usize, usize);
    if let Some((width, depth)) = arch.scaling() {
        let rows: [Row; 7] = [
            (1.0, 3, 1, 32, 16, 1),
            (6.0, 3, 2, 16, 24, 2),
            (6.0, 5, 2, 24, 40, 2),
            (6.0, 3, 2, 40, 80, 3),
            (6.0, 5, 1, 80, 112, 3),
            (6.0, 5, 2, 112, 192, 4),
            (6.0, 3, 1, 192, 320, 1),
        ];
        let stages = rows
            .iter()
            .map(|&r| StageSetting::mb(r, width, depth))
            .collect();
        return (stages, None);
    }
    let (fused, mb): (&[Row], &[Row]) = match arch {
        EfficientNetArch::V2S => (
            &[
                (1.0, 3, 1, 24, 24, 2),
                (4.0, 3, 2, 24, 48, 4),
                (4.0, 3, 2, 48, 64, 4),
            ],
            &[
                (4.0, 3, 2, 64, 128, 6),
                (6.0, 3, 1, 128, 160, 9),
                (6.0, 3, 2, 160, 256, 15),
            ],
        ),
        EfficientNetArch::V2M => (
            &[
                (1.0, 3, 1, 24, 24, 3),
                (4.0, 3, 2, 24, 48, 5),
                (4.0, 3, 2, 48, 80, 5),
            ],
            &[
                (4.0, 3, 2, 80, 160, 7),
                (6.0, 3, 1, 160, 176, 14),
                (6.0, 3, 2, 176, 304, 18),
                (6.0, 3, 1, 304, 512, 5),
            ],
        ),
        _ => (
            &[
                (1.0, 3, 1, 32, 32, 4),
                (4.0, 3, 2, 32, 64, 7),
                (4.0, 3, 2, 64, 96, 7),
            ],
            &[
                (4.0, 3, 2, 96, 192, 10),
                (6.0, 3, 1, 192, 224, 19),
                (6.0, 3, 2, 224, 384, 25),
                (6.0, 3, 1, 384, 640, 7),
            ],
        ),
    };
    let stages = fused
        .iter()
        .map(|&r| StageSetting::fused(r))
        .chain(mb.iter().map(|&r| StageSetting::mb(r, 1.0, 1.0)))
        .collect();
    (stages, Some(1280))
}

/// Configuration of an [`EfficientNet`]: torchvision's `EfficientNet` arguments (its
/// `inverted_residual_setting` as [`StageSetting`]s, `last_channel`, the BatchNorm's settings), so
/// that any stack of MBConv and FusedMBConv stages builds; torchvision's eleven builders are the
/// presets ([`Self::efficientnet_b0`]..., [`EfficientNetArch::config`]).
#[derive(Config, Debug)]
pub struct EfficientNetConfig {
    /// The stages, each a row of MBConv or FusedMBConv blocks (at least one; each stage's input
    /// channels the previous one's output, the first's the stem's).
    pub stages: Vec<StageSetting>,
    /// Channels of the last 1x1 convolution (`None`: four times the last stage's, as B0–B7).
    #[config(default = "None")]
    pub last_channel: Option<usize>,
    /// BatchNorm epsilon (PyTorch's 1e-5; 1e-3 for B5–B7 and V2).
    #[config(default = 1e-5)]
    pub bn_eps: f64,
    /// BatchNorm momentum (PyTorch's 0.1; 0.01 for B5–B7).
    #[config(default = 0.1)]
    pub bn_momentum: f64,
    /// Output classes.
    #[config(default = 1000)]
    pub num_classes: usize,
    /// Dropout before the classifier (the builders': 0.2 to 0.5).
    #[config(default = 0.2)]
    pub dropout: f64,
    /// Stochastic depth of the last block (earlier blocks get proportionally less).
    #[config(default = 0.2)]
    pub stochastic_depth_prob: f64,
}

impl EfficientNetConfig {
    /// torchvision's `efficientnet_b0`.
    pub fn efficientnet_b0() -> Self {
        EfficientNetArch::B0.config()
    }

    /// torchvision's `efficientnet_b1`.
    pub fn efficientnet_b1() -> Self {
        EfficientNetArch::B1.config()
    }

    /// torchvision's `efficientnet_b2`.
    pub fn efficientnet_b2() -> Self {
        EfficientNetArch::B2.config()
    }

    /// torchvision's `efficientnet_b3`.
    pub fn efficientnet_b3() -> Self {
        EfficientNetArch::B3.config()
    }

    /// torchvision's `efficientnet_b4`.
    pub fn efficientnet_b4() -> Self {
        EfficientNetArch::B4.config()
    }

    /// torchvision's `efficientnet_b5`.
    pub fn efficientnet_b5() -> Self {
        EfficientNetArch::B5.config()
    }

    /// torchvision's `efficientnet_b6`.
    pub fn efficientnet_b6() -> Self {
        EfficientNetArch::B6.config()
    }

    /// torchvision's `efficientnet_b7`.
    pub fn efficientnet_b7() -> Self {
        EfficientNetArch::B7.config()
    }

    /// torchvision's `efficientnet_v2_s`.
    pub fn efficientnet_v2_s() -> Self {
        EfficientNetArch::V2S.config()
    }

    /// torchvision's `efficientnet_v2_m`.
    pub fn efficientnet_v2_m() -> Self {
        EfficientNetArch::V2M.config()
    }

    /// torchvision's `efficientnet_v2_l`.
    pub fn efficientnet_v2_l() -> Self {
        EfficientNetArch::V2L.config()
    }

    /// The builder whose configuration this is (classes, dropout and stochastic depth aside),
    /// if any.
    pub fn arch(&self) -> Option<EfficientNetArch> {
        EfficientNetArch::ALL.into_iter().find(|arch| {
            let preset = arch.config();
            preset.stages == self.stages
                && preset.last_channel == self.last_channel
                && (preset.bn_eps, preset.bn_momentum) == (self.bn_eps, self.bn_momentum)
        })
    }

    /// torchvision's builder name for a builder's shape (`efficientnet_b0`), else
    /// `efficientnet`.
    pub fn name(&self) -> &'static str {
        self.arch().map_or("efficientnet", EfficientNetArch::name)
    }

    /// Builds the model, initialised as torchvision does: convolutions
    /// `kaiming_normal_(mode="fan_out")` with zero biases, BatchNorm ones and zeros, the
    /// classifier uniform in `±1/sqrt(num_classes)` with a zero bias.
    pub fn init(&self, device: &Device) -> Result<EfficientNet, ConfigError> {
        let name = self.name();
        let dropout = self.dropout;
        ConfigError::nonzero(name, "num_classes", self.num_classes)?;
        let stages = &self.stages;
        ConfigError::check(
            !stages.is_empty(),
            name,
            "stages",
            0.0,
            "at least one stage",
        )?;
        for stage in stages {
            for (field, value) in [
                ("stages.kernel", stage.kernel),
                ("stages.stride", stage.stride),
                ("stages.input_channels", stage.input_channels),
                ("stages.out_channels", stage.out_channels),
                ("stages.num_layers", stage.num_layers),
            ] {
                ConfigError::nonzero(name, field, value)?;
            }
            ConfigError::check(
                stage.expand_ratio.is_finite() && stage.expand_ratio > 0.0,
                name,
                "stages.expand_ratio",
                stage.expand_ratio,
                "it must be positive",
            )?;
        }
        if let Some(channels) = self.last_channel {
            ConfigError::nonzero(name, "last_channel", channels)?;
        }
        ConfigError::probability(name, "dropout", dropout)?;
        ConfigError::probability(name, "stochastic_depth_prob", self.stochastic_depth_prob)?;
        let (eps, momentum) = (self.bn_eps, self.bn_momentum);
        let cna = |i, o, k| {
            Conv2dNormActivation::new(i, o, k)
                .norm(eps, momentum)
                .activation(Some(ActivationKind::Silu))
        };
        let last_channel = self.last_channel;
        let total: usize = stages.iter().map(|s| s.num_layers).sum();
        let mut features = vec![Feature::Layer(
            cna(3, stages[0].input_channels, 3).stride(2).init(device),
        )];
        let mut block_id = 0;
        for stage in stages {
            let blocks = (0..stage.num_layers)
                .map(|i| {
                    let (input, stride) = if i == 0 {
                        (stage.input_channels, stage.stride)
                    } else {
                        (stage.out_channels, 1)
                    };
                    let sd = self.stochastic_depth_prob * block_id as f64 / total as f64;
                    block_id += 1;
                    let expanded = StageSetting::adjust_channels(input, stage.expand_ratio);
                    let out = stage.out_channels;
                    let mut block = Vec::new();
                    if stage.fused {
                        if expanded != input {
                            block.push(
                                cna(input, expanded, stage.kernel)
                                    .stride(stride)
                                    .init(device),
                            );
                            block.push(cna(expanded, out, 1).activation(None).init(device));
                        } else {
                            block.push(cna(input, out, stage.kernel).stride(stride).init(device));
                        }
                    } else {
                        if expanded != input {
                            block.push(cna(input, expanded, 1).init(device));
                        }
                        block.push(
                            cna(expanded, expanded, stage.kernel)
                                .stride(stride)
                                .depthwise()
                                .init(device),
                        );
                        block.push(ImageLayer::SqueezeExcitation(SqueezeExcitation::new(
                            expanded,
                            (input / 4).max(1),
                            ActivationKind::Silu,
                            ActivationKind::Sigmoid,
                            device,
                        )));
                        block.push(cna(expanded, out, 1).activation(None).init(device));
                    }
                    InvertedResidual::new(block, stride == 1 && input == out, sd)
                })
                .collect();
            features.push(Feature::Stage(blocks));
        }
        let last_input = stages[stages.len() - 1].out_channels;
        let last_output = last_channel.unwrap_or(4 * last_input);
        features.push(Feature::Layer(cna(last_input, last_output, 1).init(device)));
        let range = 1.0 / (self.num_classes as f64).sqrt();
        let linear = LinearConfig::new(last_output, self.num_classes).with_initializer(
            Initializer::Uniform {
                min: -range,
                max: range,
            },
        );
        Ok(EfficientNet {
            features,
            classifier: vec![
                VectorLayer::Dropout(DropoutConfig::new(dropout).init()),
                linear_slot(linear, true, device),
            ],
            num_features: last_output,
            min_size: if stages.iter().any(|s| s.fused) { 33 } else { 1 },
            name,
        })
    }
}

/// One slot of `features`: the stem and the last 1x1 convolution, or a stage of blocks.
// Slots are a few hundred bytes of layer description each, next to megabytes of weights.
#[allow(clippy::large_enum_variant)]
#[derive(Module, Debug)]
pub enum Feature {
    /// A `Conv2dNormActivation`.
    Layer(ImageLayer),
    /// A stage: MBConv or FusedMBConv blocks (`features.N.M.block`).
    Stage(Vec<InvertedResidual>),
}

impl TrunkSlot for Feature {
    crate::layers::slot_layer!(Feature::Layer);

    fn chain(&self, channels: usize) -> (usize, usize) {
        match self {
            Feature::Layer(layer) => (layer.stride(), layer.out_channels(channels)),
            Feature::Stage(blocks) => blocks.iter().fold((1, channels), |(s, c), block| {
                let (bs, bc) = ImageLayer::chain(&block.block, c);
                (s * bs, bc)
            }),
        }
    }

    fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        match self {
            Feature::Layer(layer) => layer.forward(x),
            Feature::Stage(blocks) => blocks.iter().fold(x, |x, block| block.forward(x)),
        }
    }

    fn fold_batchnorm(self) -> Self {
        match self {
            Feature::Layer(layer) => Feature::Layer(fold_one(layer)),
            Feature::Stage(blocks) => Feature::Stage(
                blocks
                    .into_iter()
                    .map(InvertedResidual::fold_batchnorm)
                    .collect(),
            ),
        }
    }

    fn can_fold(&self) -> bool {
        match self {
            Feature::Layer(layer) => ImageLayer::can_fold(std::slice::from_ref(layer)),
            Feature::Stage(_) => false,
        }
    }
}

/// EfficientNet (B0–B7, V2). Build it with [`EfficientNetConfig`].
#[derive(Module, Debug)]
pub struct EfficientNet {
    /// Stem, stages, last 1x1 convolution.
    pub features: Vec<Feature>,
    /// `Dropout`, `Linear`.
    pub classifier: Vec<VectorLayer>,
    /// Channels of the last convolution (1280 for B0 and V2).
    pub num_features: usize,
    /// The smallest input side: torchvision's `min_size`, 1 for MBConv stages only (B0–B7), 33
    /// where there are FusedMBConv stages (V2).
    pub min_size: usize,
    /// torchvision's builder name (`efficientnet_b0`), or `efficientnet` for another shape.
    #[module(skip)]
    pub name: &'static str,
}

impl Architecture for EfficientNet {
    crate::layers::classifier_head!(classifier, pool);
    crate::layers::slot_features!(features, stem: "features.0.0", fold);

    fn family(&self) -> Family {
        Family::EFFICIENTNET
    }

    fn input_spec(&self) -> InputSpec {
        InputSpec {
            channels: self.in_chans(),
            min_size: [self.min_size, self.min_size],
            exact: false,
        }
    }

    fn display_name(&self) -> &str {
        self.name
    }

    fn num_features(&self) -> usize {
        self.num_features
    }

}

impl ImportHooks for EfficientNet {
    fn classifier_prefixes(&self) -> &'static [&'static str] {
        &["classifier.1."]
    }

    /// The whole `classifier` sequence: the pre-logits are the pooled features.
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
    fn any_stack_of_stages_builds_and_the_presets_are_values_of_it() {
        let device = device();
        // torchvision's EfficientNet([MBConvConfig(1, 3, 1, 32, 16, 1), MBConvConfig(6, 3, 2,
        // 16, 24, 2)], dropout=0.2, num_classes=10), and one with a FusedMBConv stage and
        // last_channel=256: sum(p.numel()) of each.
        let mb = |e, k, s, i, o, n| StageSetting::new(false, e, k, s, i, o, n);
        let small = EfficientNetConfig::new(vec![mb(1.0, 3, 1, 32, 16, 1), mb(6.0, 3, 2, 16, 24, 2)])
            .with_num_classes(10)
            .init(&device)
            .unwrap();
        assert_eq!((small.name, small.num_features, small.min_size), ("efficientnet", 96, 1));
        assert_eq!(crate::num_parameters(&small), 22_556);
        let x = Tensor::<4>::zeros([2, 3, 20, 20], &device);
        assert_eq!(small.forward(x).dims(), [2, 10]);
        let fused = StageSetting::new(true, 1.0, 3, 1, 24, 24, 2);
        let mixed = EfficientNetConfig::new(vec![fused, mb(4.0, 3, 2, 24, 48, 1)])
            .with_last_channel(Some(256))
            .init(&device)
            .unwrap();
        assert_eq!((mixed.num_features, mixed.min_size), (256, 33));
        assert_eq!(crate::num_parameters(&mixed), 290_470);
        assert_eq!(EfficientNetConfig::efficientnet_v2_m().name(), "efficientnet_v2_m");
        let err = EfficientNetConfig::new(vec![]).init(&device).unwrap_err();
        assert!(err.to_string().contains("stages"), "{err}");
    }

    #[test]
    fn depths_and_widths_equal_torchvision_s() {
        // [(out_channels, num_layers)] of torchvision's `_efficientnet_conf`.
        let rows = |arch| {
            setting(arch)
                .0
                .iter()
                .map(|s| (s.out_channels, s.num_layers))
                .collect::<Vec<_>>()
        };
        assert_eq!(
            rows(EfficientNetArch::B1),
            [
                (16, 2),
                (24, 3),
                (40, 3),
                (80, 4),
                (112, 4),
                (192, 5),
                (320, 2)
            ]
        );
        assert_eq!(
            rows(EfficientNetArch::B7),
            [
                (32, 4),
                (48, 7),
                (80, 7),
                (160, 10),
                (224, 10),
                (384, 13),
                (640, 4)
            ]
        );
        assert_eq!(setting(EfficientNetArch::V2S).1, Some(1280));
    }

    #[test]
    fn keys_and_norms_are_torchvision_s() {
        let device = device();
        let model = EfficientNetArch::B0.config()
            .init(&device)
            .unwrap();
        let keys = crate::layers::torch_shapes(&model);
        for (key, shape) in [
            ("features.0.0.weight", vec![32, 3, 3, 3]),
            ("features.1.0.block.0.0.weight", vec![32, 1, 3, 3]),
            ("features.1.0.block.1.fc1.weight", vec![8, 32, 1, 1]),
            ("features.1.0.block.2.0.weight", vec![16, 32, 1, 1]),
            ("features.2.0.block.0.0.weight", vec![96, 16, 1, 1]),
            ("features.2.1.block.2.fc2.bias", vec![144]),
            ("features.8.1.running_var", vec![1280]),
            ("classifier.1.weight", vec![1000, 1280]),
        ] {
            assert_eq!(keys.get(key), Some(&shape), "{key}");
        }
        let v2 = EfficientNetArch::V2S.config()
            .init(&device)
            .unwrap();
        let keys = crate::layers::torch_shapes(&v2);
        // FusedMBConv with expansion 1: one convolution; with 4: convolution and projection.
        assert_eq!(
            keys.get("features.1.0.block.0.0.weight"),
            Some(&vec![24, 24, 3, 3])
        );
        assert_eq!(
            keys.get("features.2.0.block.1.0.weight"),
            Some(&vec![48, 96, 1, 1])
        );
        assert_eq!(EfficientNetArch::B5.batch_norm(), (1e-3, 0.01));
        assert_eq!(EfficientNetArch::B4.batch_norm(), (1e-5, 0.1));
    }

    #[test]
    fn shapes_for_several_sizes_and_v2_minimum() {
        let device = device();
        let model = EfficientNetArch::B0.config()
            .with_num_classes(5)
            .init(&device)
            .unwrap();
        for [h, w] in [[64, 48], [1, 1]] {
            let x = Tensor::<4>::zeros([2, 3, h, w], &device);
            assert_eq!(model.forward(x).dims(), [2, 5]);
        }
        let v2 = EfficientNetArch::V2S.config()
            .with_num_classes(5)
            .init(&device)
            .unwrap();
        let x = Tensor::<4>::zeros([1, 3, 33, 40], &device);
        assert_eq!(v2.forward(x).dims(), [1, 5]);
        let x = Tensor::<4>::zeros([1, 3, 32, 40], &device);
        assert!(matches!(
            v2.try_forward(x),
            Err(InputError::TooSmall { min: [33, 33], .. })
        ));
    }

    #[test]
    fn invalid_options_are_errors() {
        let device = device();
        for (config, field) in [
            (
                EfficientNetArch::B0.config().with_dropout(1.0),
                "dropout",
            ),
            (
                EfficientNetArch::B0.config().with_stochastic_depth_prob(-0.1),
                "stochastic_depth_prob",
            ),
        ] {
            match config.init(&device) {
                Err(ConfigError::Invalid { field: f, .. }) => assert_eq!(f, field),
                other => panic!("{field}: {other:?}"),
            }
        }
    }
}
