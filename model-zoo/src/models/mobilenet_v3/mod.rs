//! MobileNet V3 (Large and Small), as torchvision's `mobilenet_v3_large` and
//! `mobilenet_v3_small` (`torchvision/models/mobilenetv3.py`): the same options and defaults
//! (`width_mult`, `reduced_tail`, `dilated`, `dropout`), state_dict keys, BatchNorm (eps 0.001,
//! momentum 0.01) and initialisation.

mod weights;
pub use weights::*;

use burn::config::Config;
use burn::module::Module;
use burn::nn::{DropoutConfig, Initializer, LinearConfig};
use burn::tensor::Device;

use crate::architecture::{Architecture, ImportHooks};
use crate::error::{ConfigError, InputSpec};
use crate::family::Family;
use crate::layers::{
    ActivationKind, Conv2dNormActivation, ImageLayer, InvertedResidual, SqueezeExcitation,
    VectorLayer, linear_slot, make_divisible,
};

impl Family {
    /// MobileNet V3, Large and Small ([`crate::mobilenet_v3`]).
    pub const MOBILENET_V3: Family = Family::new("mobilenet_v3");
}

/// Which MobileNet V3.
#[derive(Config, Debug, Copy, PartialEq, Eq)]
pub enum MobileNetV3Arch {
    /// `mobilenet_v3_large`.
    Large,
    /// `mobilenet_v3_small`.
    Small,
}

impl MobileNetV3Arch {
    /// torchvision's builder name: `mobilenet_v3_large` or `mobilenet_v3_small`.
    pub fn name(self) -> &'static str {
        match self {
            MobileNetV3Arch::Large => "mobilenet_v3_large",
            MobileNetV3Arch::Small => "mobilenet_v3_small",
        }
    }
}

/// One row of torchvision's `inverted_residual_setting` (`InvertedResidualConfig`), before
/// width scaling: a block's channels, kernel, squeeze-excitation, activation, stride and
/// dilation (a dilated block's stride is 1, as torchvision's `InvertedResidual` makes it).
#[derive(Config, Debug, Copy, PartialEq, Eq)]
pub struct BlockSetting {
    /// Input channels.
    pub input_channels: usize,
    /// Depthwise kernel side.
    pub kernel: usize,
    /// Channels of the expansion (the input's: no expansion convolution).
    pub expanded_channels: usize,
    /// Output channels.
    pub out_channels: usize,
    /// Squeeze-excitation after the depthwise convolution.
    pub use_se: bool,
    /// Hard-swish activation (else ReLU).
    pub use_hs: bool,
    /// Stride of the depthwise convolution.
    pub stride: usize,
    /// Dilation of the depthwise convolution.
    pub dilation: usize,
}

/// Configuration of a [`MobileNetV3`]: torchvision's `MobileNetV3` arguments (its
/// `inverted_residual_setting` and `last_channel`) with its builders' `width_mult`,
/// `reduced_tail` and `dilated`, so that any stack of blocks builds; the two builders are the
/// presets ([`Self::large`], [`Self::small`]).
#[derive(Config, Debug)]
pub struct MobileNetV3Config {
    /// The blocks, before width scaling (at least one; the stem's output is the first block's
    /// input).
    pub blocks: Vec<BlockSetting>,
    /// Width of the classifier's hidden layer, before width scaling (1280 for Large, 1024 for
    /// Small).
    pub last_channel: usize,
    /// Output classes.
    #[config(default = 1000)]
    pub num_classes: usize,
    /// Width multiplier of every layer's channels (rounded to multiples of 8).
    #[config(default = 1.0)]
    pub width_mult: f64,
    /// Halve the channels of the last stage (the blocks from the last stride-2 one on) and of
    /// `last_channel` (torchvision's `reduced_tail`, for detection backbones).
    #[config(default = false)]
    pub reduced_tail: bool,
    /// Dilate the last stage by 2 instead of striding it (torchvision's `dilated`, for
    /// segmentation backbones).
    #[config(default = false)]
    pub dilated: bool,
    /// Dropout probability in the classifier.
    #[config(default = 0.2)]
    pub dropout: f64,
}

impl MobileNetV3Arch {
    /// torchvision's builder's configuration (`_mobilenet_v3_conf`).
    pub fn config(self) -> MobileNetV3Config {
        let (re, hs) = (false, true);
        let row = |i, k, e, o, se, hs, s| BlockSetting::new(i, k, e, o, se, hs, s, 1);
        let (blocks, last_channel) = match self {
            MobileNetV3Arch::Large => (
                vec![
                    row(16, 3, 16, 16, false, re, 1),
                    row(16, 3, 64, 24, false, re, 2),
                    row(24, 3, 72, 24, false, re, 1),
                    row(24, 5, 72, 40, true, re, 2),
                    row(40, 5, 120, 40, true, re, 1),
                    row(40, 5, 120, 40, true, re, 1),
                    row(40, 3, 240, 80, false, hs, 2),
                    row(80, 3, 200, 80, false, hs, 1),
                    row(80, 3, 184, 80, false, hs, 1),
                    row(80, 3, 184, 80, false, hs, 1),
                    row(80, 3, 480, 112, true, hs, 1),
                    row(112, 3, 672, 112, true, hs, 1),
                    row(112, 5, 672, 160, true, hs, 2),
                    row(160, 5, 960, 160, true, hs, 1),
                    row(160, 5, 960, 160, true, hs, 1),
                ],
                1280,
            ),
            MobileNetV3Arch::Small => (
                vec![
                    row(16, 3, 16, 16, true, re, 2),
                    row(16, 3, 72, 24, false, re, 2),
                    row(24, 3, 88, 24, false, re, 1),
                    row(24, 5, 96, 40, true, hs, 2),
                    row(40, 5, 240, 40, true, hs, 1),
                    row(40, 5, 240, 40, true, hs, 1),
                    row(40, 5, 120, 48, true, hs, 1),
                    row(48, 5, 144, 48, true, hs, 1),
                    row(48, 5, 288, 96, true, hs, 2),
                    row(96, 5, 576, 96, true, hs, 1),
                    row(96, 5, 576, 96, true, hs, 1),
                ],
                1024,
            ),
        };
        MobileNetV3Config::new(blocks, last_channel)
    }
}

impl MobileNetV3Config {
    /// torchvision's `mobilenet_v3_large`.
    pub fn large() -> Self {
        MobileNetV3Arch::Large.config()
    }

    /// torchvision's `mobilenet_v3_small`.
    pub fn small() -> Self {
        MobileNetV3Arch::Small.config()
    }

    /// The builder whose blocks these are (width, tail and dilation aside), if any.
    pub fn arch(&self) -> Option<MobileNetV3Arch> {
        [MobileNetV3Arch::Large, MobileNetV3Arch::Small]
            .into_iter()
            .find(|arch| {
                let preset = arch.config();
                (&preset.blocks, preset.last_channel) == (&self.blocks, self.last_channel)
            })
    }

    /// torchvision's builder name for a builder's blocks, else `mobilenet_v3`.
    fn name(&self) -> &'static str {
        self.arch().map_or("mobilenet_v3", MobileNetV3Arch::name)
    }

    /// The blocks and hidden width after `reduced_tail` and `dilated` (before width scaling):
    /// the last stage, from the last stride-2 block on, halved and dilated by 2, as
    /// `_mobilenet_v3_conf` writes its last three rows.
    fn setting(&self) -> (Vec<BlockSetting>, usize) {
        let r = if self.reduced_tail { 2 } else { 1 };
        let d = if self.dilated { 2 } else { 1 };
        let tail = self.blocks.iter().rposition(|b| b.stride > 1).unwrap_or(0);
        let blocks = self
            .blocks
            .iter()
            .enumerate()
            .map(|(i, &b)| match i.cmp(&tail) {
                std::cmp::Ordering::Less => b,
                std::cmp::Ordering::Equal => BlockSetting {
                    out_channels: b.out_channels / r,
                    dilation: b.dilation * d,
                    ..b
                },
                std::cmp::Ordering::Greater => BlockSetting {
                    input_channels: b.input_channels / r,
                    expanded_channels: b.expanded_channels / r,
                    out_channels: b.out_channels / r,
                    dilation: b.dilation * d,
                    ..b
                },
            })
            .collect();
        (blocks, self.last_channel / r)
    }

    /// Builds the model, initialised as torchvision does: convolutions
    /// `kaiming_normal_(mode="fan_out")` with zero biases, BatchNorm ones and zeros, linear
    /// layers `normal_(0, 0.01)` with zero biases.
    pub fn init(&self, device: &Device) -> Result<MobileNetV3, ConfigError> {
        let model = self.name();
        ConfigError::nonzero(model, "num_classes", self.num_classes)?;
        ConfigError::positive(model, "width_mult", self.width_mult)?;
        ConfigError::probability(model, "dropout", self.dropout)?;
        let adjust = |c: usize| make_divisible(c as f64 * self.width_mult, 8);
        let cna = |i, o, k| Conv2dNormActivation::new(i, o, k).norm(1e-3, 0.01);
        ConfigError::check(!self.blocks.is_empty(), model, "blocks", 0.0, "at least one block")?;
        for b in &self.blocks {
            for (field, value) in [
                ("blocks.input_channels", b.input_channels),
                ("blocks.kernel", b.kernel),
                ("blocks.expanded_channels", b.expanded_channels),
                ("blocks.out_channels", b.out_channels),
                ("blocks.stride", b.stride),
                ("blocks.dilation", b.dilation),
            ] {
                ConfigError::nonzero(model, field, value)?;
            }
        }
        ConfigError::nonzero(model, "last_channel", self.last_channel)?;
        let (rows, last_channel) = self.setting();
        let first = adjust(rows[0].input_channels);
        let mut features = vec![
            cna(3, first, 3)
                .stride(2)
                .activation(Some(ActivationKind::Hardswish))
                .init(device),
        ];
        for &BlockSetting {
            input_channels: input,
            kernel,
            expanded_channels: expanded,
            out_channels: output,
            use_se,
            use_hs,
            stride,
            dilation,
        } in &rows
        {
            let (input, expanded, output) = (adjust(input), adjust(expanded), adjust(output));
            let activation = Some(if use_hs {
                ActivationKind::Hardswish
            } else {
                ActivationKind::Relu
            });
            let mut block = Vec::new();
            if expanded != input {
                block.push(cna(input, expanded, 1).activation(activation).init(device));
            }
            block.push(
                cna(expanded, expanded, kernel)
                    .stride(if dilation > 1 { 1 } else { stride })
                    .dilation(dilation)
                    .depthwise()
                    .activation(activation)
                    .init(device),
            );
            if use_se {
                block.push(ImageLayer::SqueezeExcitation(SqueezeExcitation::new(
                    expanded,
                    make_divisible((expanded / 4) as f64, 8),
                    ActivationKind::Relu,
                    ActivationKind::Hardsigmoid,
                    device,
                )));
            }
            block.push(cna(expanded, output, 1).activation(None).init(device));
            features.push(ImageLayer::InvertedResidual(InvertedResidual::new(
                block,
                stride == 1 && input == output,
                0.0,
            )));
        }
        let last_input = adjust(rows[rows.len() - 1].out_channels);
        let last_output = 6 * last_input;
        features.push(
            cna(last_input, last_output, 1)
                .activation(Some(ActivationKind::Hardswish))
                .init(device),
        );
        let last_channel = adjust(last_channel);
        let linear = |i, o| {
            let config = LinearConfig::new(i, o).with_initializer(Initializer::Normal {
                mean: 0.0,
                std: 0.01,
            });
            linear_slot(config, true, device)
        };
        Ok(MobileNetV3 {
            features,
            classifier: vec![
                linear(last_output, last_channel),
                VectorLayer::Activation(ActivationKind::Hardswish.init()),
                VectorLayer::Dropout(DropoutConfig::new(self.dropout).init()),
                linear(last_channel, self.num_classes),
            ],
            num_features: last_output,
            name: model,
        })
    }
}

/// MobileNet V3. Build it with [`MobileNetV3Config`].
#[derive(Module, Debug)]
pub struct MobileNetV3 {
    /// Stem, inverted residual blocks, last 1x1 convolution.
    pub features: Vec<ImageLayer>,
    /// `Linear`, `Hardswish`, `Dropout`, `Linear`.
    pub classifier: Vec<VectorLayer>,
    /// Channels of the pooled features (960 for Large, 576 for Small).
    pub num_features: usize,
    /// torchvision's builder name (`mobilenet_v3_large`), or `mobilenet_v3` for other blocks.
    #[module(skip)]
    pub name: &'static str,
}

/// What MobileNet V3 accepts: 3 channels, any size (torchvision's `min_size` is 1x1).
pub const MOBILENET_V3_INPUT: InputSpec = InputSpec {
    channels: 3,
    min_size: [1, 1],
    exact: false,
};

impl Architecture for MobileNetV3 {
    crate::layers::classifier_head!(classifier, pool);
    crate::layers::image_features!(stem: "features.0.0");

    fn family(&self) -> Family {
        Family::MOBILENET_V3
    }

    fn input_spec(&self) -> InputSpec {
        InputSpec {
            channels: self.in_chans(),
            ..MOBILENET_V3_INPUT
        }
    }

    fn display_name(&self) -> &str {
        self.name
    }

    fn num_features(&self) -> usize {
        self.num_features
    }

}

impl ImportHooks for MobileNetV3 {
    fn classifier_prefixes(&self) -> &'static [&'static str] {
        &["classifier.3."]
    }

    /// The whole `classifier` sequence: the pre-logits are the pooled features.
    fn head_prefixes(&self) -> &'static [&'static str] {
        &["classifier."]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::Tensor;
    use crate::device::test_device as device;

    #[test]
    fn any_stack_of_blocks_builds_and_the_presets_are_values_of_it() {
        let device = device();
        // torchvision's MobileNetV3([InvertedResidualConfig(16, 3, 16, 16, True, "RE", 2, 1,
        // 1.0), InvertedResidualConfig(16, 5, 64, 32, False, "HS", 2, 1, 1.0),
        // InvertedResidualConfig(32, 3, 96, 32, True, "HS", 1, 1, 1.0)], last_channel=256,
        // num_classes=7): sum(p.numel()).
        let blocks = vec![
            BlockSetting::new(16, 3, 16, 16, true, false, 2, 1),
            BlockSetting::new(16, 5, 64, 32, false, true, 2, 1),
            BlockSetting::new(32, 3, 96, 32, true, true, 1, 1),
        ];
        let config = MobileNetV3Config::new(blocks, 256).with_num_classes(7);
        let model = config.init(&device).unwrap();
        assert_eq!((model.name, model.num_features), ("mobilenet_v3", 192));
        assert_eq!(crate::num_parameters(&model), 76_119);
        assert_eq!(model.forward(Tensor::zeros([1, 3, 24, 24], &device)).dims(), [1, 7]);
        // The tail rule on other blocks: the last stride-2 block on, halved.
        let (rows, last) = config.with_reduced_tail(true).setting();
        assert_eq!((rows[1].out_channels, rows[2].input_channels, last), (16, 16, 128));
        assert_eq!(MobileNetV3Config::small().name(), "mobilenet_v3_small");
        let err = MobileNetV3Config::new(vec![], 1280).init(&device).unwrap_err();
        assert!(err.to_string().contains("blocks"), "{err}");
    }

    #[test]
    fn parameter_counts_equal_torchvision() {
        let device = device();
        let count =
            |config: MobileNetV3Config| crate::num_parameters(&config.init(&device).unwrap());
        // sum(p.numel()) of torchvision's builders with these options.
        assert_eq!(
            count(
                MobileNetV3Config::large()
                    .with_width_mult(0.75)
                    .with_num_classes(10)
            ),
            2_426_186
        );
        assert_eq!(
            count(
                MobileNetV3Config::small()
                    .with_reduced_tail(true)
                    .with_dilated(true)
            ),
            1_099_672
        );
    }

    #[test]
    fn keys_are_torchvision_s() {
        let model = mobilenet_v3_small(1000, &device()).unwrap();
        let keys: Vec<String> = crate::layers::torch_shapes(&model).into_keys().collect();
        for key in [
            "features.0.0.weight",
            "features.1.block.0.0.weight",
            "features.1.block.1.fc1.weight",
            "features.1.block.1.fc2.bias",
            "features.1.block.2.1.running_var",
            "features.12.0.weight",
            "classifier.0.weight",
            "classifier.3.bias",
        ] {
            assert!(keys.iter().any(|k| k == key), "{key} missing");
        }
    }

    #[test]
    fn shapes_for_several_sizes_and_dilation() {
        let device = device();
        for config in [
            MobileNetV3Config::small(),
            MobileNetV3Config::large().with_dilated(true),
        ] {
            let model = config.with_num_classes(5).init(&device).unwrap();
            for [h, w] in [[224, 160], [33, 47], [1, 1]] {
                let x = Tensor::<4>::zeros([1, 3, h, w], &device);
                assert_eq!(model.forward(x).dims(), [1, 5]);
            }
        }
    }

    #[test]
    fn invalid_options_are_errors() {
        let device = device();
        assert!(matches!(
            MobileNetV3Config::large()
                .with_width_mult(-1.0)
                .init(&device),
            Err(ConfigError::Invalid {
                field: "width_mult",
                ..
            })
        ));
        assert!(matches!(
            MobileNetV3Config::small().with_num_classes(0).init(&device),
            Err(ConfigError::Zero { .. })
        ));
    }
}
