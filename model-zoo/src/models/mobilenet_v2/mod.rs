//! MobileNet V2, as torchvision's `mobilenet_v2` (`torchvision/models/mobilenetv2.py`): the
//! same options and defaults, state_dict keys and initialisation.
//!
//! ```no_run
//! use model_zoo::Architecture;
//! use model_zoo::mobilenet_v2::MobileNetV2Config;
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let device = model_zoo::Backend::Flex.device()?;
//! let model = MobileNetV2Config::new().with_width_mult(0.75).init(&device)?;
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
    ActivationKind, Conv2dNormActivation, ImageLayer, VectorLayer, fold_layers, fold_one,
    linear_slot, make_divisible, residual,
};

impl Family {
    /// MobileNet V2 ([`crate::mobilenet_v2`]).
    pub const MOBILENET_V2: Family = Family::new("mobilenet_v2");
}

/// torchvision's default `inverted_residual_setting`: `[t, c, n, s]` = expansion, output
/// channels, repeats, stride of the first repeat.
pub const DEFAULT_SETTING: [[usize; 4]; 7] = [
    [1, 16, 1, 1],
    [6, 24, 2, 2],
    [6, 32, 3, 2],
    [6, 64, 4, 2],
    [6, 96, 3, 1],
    [6, 160, 3, 2],
    [6, 320, 1, 1],
];

/// Configuration of a [`MobileNetV2`], torchvision's `MobileNetV2(...)` arguments.
#[derive(Config, Debug)]
pub struct MobileNetV2Config {
    /// Output classes.
    #[config(default = 1000)]
    pub num_classes: usize,
    /// Width multiplier: every layer's channels are scaled by it (then rounded).
    #[config(default = 1.0)]
    pub width_mult: f64,
    /// Channels are rounded to a multiple of this (1 turns rounding off).
    #[config(default = 8)]
    pub round_nearest: usize,
    /// Dropout probability before the classifier.
    #[config(default = 0.2)]
    pub dropout: f64,
    /// The network's `[t, c, n, s]` rows (see [`DEFAULT_SETTING`], used when `None`).
    #[config(default = "None")]
    pub inverted_residual_setting: Option<Vec<[usize; 4]>>,
}

/// MobileNet V2's inverted residual block: torchvision's `conv` sequence (1x1 expansion unless
/// the ratio is 1, 3x3 depthwise, both with BatchNorm and ReLU6, then a linear 1x1 projection
/// and its BatchNorm), and the input added back when stride is 1 and the channels agree.
#[derive(Module, Debug)]
pub struct InvertedResidual {
    /// torchvision's `conv.N`.
    pub conv: Vec<ImageLayer>,
    /// Whether the input is added to the output.
    pub use_res_connect: bool,
}

/// One slot of `features`: a `Conv2dNormActivation` (first and last) or a block.
// Slots are a few hundred bytes of layer description each, next to megabytes of weights.
#[allow(clippy::large_enum_variant)]
#[derive(Module, Debug)]
pub enum Feature {
    /// The stem and the last 1x1 convolution.
    Layer(ImageLayer),
    /// An inverted residual block.
    Block(InvertedResidual),
}

impl TrunkSlot for Feature {
    crate::layers::slot_layer!(Feature::Layer);

    fn chain(&self, channels: usize) -> (usize, usize) {
        match self {
            Feature::Layer(layer) => (layer.stride(), layer.out_channels(channels)),
            Feature::Block(block) => ImageLayer::chain(&block.conv, channels),
        }
    }

    fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        match self {
            Feature::Layer(layer) => layer.forward(x),
            Feature::Block(block) => residual(&block.conv, block.use_res_connect, x),
        }
    }

    fn fold_batchnorm(self) -> Self {
        match self {
            Feature::Layer(layer) => Feature::Layer(fold_one(layer)),
            Feature::Block(block) => Feature::Block(InvertedResidual {
                conv: fold_layers(block.conv),
                ..block
            }),
        }
    }

    fn can_fold(&self) -> bool {
        match self {
            Feature::Layer(layer) => ImageLayer::can_fold(std::slice::from_ref(layer)),
            Feature::Block(block) => ImageLayer::can_fold(&block.conv),
        }
    }
}

/// MobileNet V2. Build it with [`MobileNetV2Config`].
#[derive(Module, Debug)]
pub struct MobileNetV2 {
    /// Stem, 17 inverted residual blocks (for the default setting), last 1x1 convolution.
    pub features: Vec<Feature>,
    /// `Dropout`, `Linear`.
    pub classifier: Vec<VectorLayer>,
    /// Channels of the last convolution (1280 unless `width_mult > 1`).
    pub last_channel: usize,
}

/// What MobileNet V2 accepts: 3 channels, any size (torchvision's `min_size` is 1x1).
pub const MOBILENET_V2_INPUT: InputSpec = InputSpec {
    channels: 3,
    min_size: [1, 1],
    exact: false,
};

impl MobileNetV2Config {
    fn invalid(field: &'static str, value: String, expected: &'static str) -> ConfigError {
        ConfigError::Invalid {
            model: "mobilenet_v2".into(),
            field,
            value,
            expected,
        }
    }

    /// Builds the model, initialised as torchvision does: convolutions
    /// `kaiming_normal_(mode="fan_out")`, BatchNorm ones and zeros, the linear layer
    /// `normal_(0, 0.01)` with a zero bias.
    pub fn init(&self, device: &Device) -> Result<MobileNetV2, ConfigError> {
        let model = "mobilenet_v2";
        ConfigError::nonzero(model, "num_classes", self.num_classes)?;
        ConfigError::nonzero(model, "round_nearest", self.round_nearest)?;
        ConfigError::positive(model, "width_mult", self.width_mult)?;
        ConfigError::probability(model, "dropout", self.dropout)?;
        let setting = self
            .inverted_residual_setting
            .clone()
            .unwrap_or_else(|| DEFAULT_SETTING.to_vec());
        if setting.is_empty() {
            return Err(Self::invalid(
                "inverted_residual_setting",
                "empty".into(),
                "it needs at least one [t, c, n, s] row",
            ));
        }
        for &[t, c, n, s] in &setting {
            if t == 0 || c == 0 || n == 0 || !(1..=2).contains(&s) {
                return Err(Self::invalid(
                    "inverted_residual_setting",
                    format!("{:?}", [t, c, n, s]),
                    "each row needs t, c, n >= 1 and a stride s of 1 or 2",
                ));
            }
        }

        let divisible = |v: f64| make_divisible(v, self.round_nearest);
        let cna =
            |i, o, k| Conv2dNormActivation::new(i, o, k).activation(Some(ActivationKind::Relu6));
        let mut input = divisible(32.0 * self.width_mult);
        let last_channel = divisible(1280.0 * self.width_mult.max(1.0));
        let mut features = vec![Feature::Layer(cna(3, input, 3).stride(2).init(device))];
        for [t, c, n, s] in setting {
            let output = divisible(c as f64 * self.width_mult);
            for i in 0..n {
                let stride = if i == 0 { s } else { 1 };
                let hidden = input * t;
                let mut conv = Vec::new();
                if t != 1 {
                    conv.push(cna(input, hidden, 1).init(device));
                }
                conv.push(
                    cna(hidden, hidden, 3)
                        .stride(stride)
                        .depthwise()
                        .init(device),
                );
                // torchvision's projection is a bare `Conv2d` and `BatchNorm2d` in `conv`.
                conv.extend(
                    Conv2dNormActivation::new(hidden, output, 1)
                        .activation(None)
                        .init_layers(device),
                );
                features.push(Feature::Block(InvertedResidual {
                    conv,
                    use_res_connect: stride == 1 && input == output,
                }));
                input = output;
            }
        }
        features.push(Feature::Layer(cna(input, last_channel, 1).init(device)));
        let linear = LinearConfig::new(last_channel, self.num_classes).with_initializer(
            Initializer::Normal {
                mean: 0.0,
                std: 0.01,
            },
        );
        Ok(MobileNetV2 {
            features,
            classifier: vec![
                VectorLayer::Dropout(DropoutConfig::new(self.dropout).init()),
                linear_slot(linear, true, device),
            ],
            last_channel,
        })
    }
}

impl Architecture for MobileNetV2 {
    crate::layers::classifier_head!(classifier, pool);
    crate::layers::slot_features!(features, stem: "features.0.0", fold);

    fn family(&self) -> Family {
        Family::MOBILENET_V2
    }

    fn input_spec(&self) -> InputSpec {
        InputSpec {
            channels: self.in_chans(),
            ..MOBILENET_V2_INPUT
        }
    }

    fn num_features(&self) -> usize {
        self.last_channel
    }

}

impl ImportHooks for MobileNetV2 {
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
    use crate::device::test_device as device;

    #[test]
    fn parameter_counts_equal_torchvision() {
        let device = device();
        // sum(p.numel() for p in mobilenet_v2(width_mult=0.5, num_classes=10).parameters()).
        let half = MobileNetV2Config::new()
            .with_width_mult(0.5)
            .with_num_classes(10)
            .init(&device)
            .unwrap();
        assert_eq!(crate::num_parameters(&half), 700_490);
    }

    #[test]
    fn keys_are_torchvision_s() {
        let model = mobilenet_v2(1000, &device()).unwrap();
        let keys: Vec<String> = crate::layers::torch_shapes(&model).into_keys().collect();
        for key in [
            "features.0.0.weight",
            "features.0.1.running_var",
            "features.1.conv.0.0.weight",
            "features.1.conv.1.weight",
            "features.1.conv.2.weight",
            "features.2.conv.0.0.weight",
            "features.2.conv.3.bias",
            "features.18.1.running_mean",
            "classifier.1.weight",
        ] {
            assert!(keys.iter().any(|k| k == key), "{key} missing");
        }
    }

    #[test]
    fn shapes_for_several_sizes() {
        let device = device();
        let model = mobilenet_v2(7, &device).unwrap();
        for [h, w] in [[224, 224], [97, 64], [1, 1]] {
            let x = Tensor::<4>::zeros([2, 3, h, w], &device);
            assert_eq!(model.forward(x).dims(), [2, 7]);
        }
        assert_eq!(model.num_features(), 1280);
    }

    #[test]
    fn invalid_options_are_errors() {
        let device = device();
        for (config, field) in [
            (MobileNetV2Config::new().with_width_mult(0.0), "width_mult"),
            (MobileNetV2Config::new().with_dropout(1.5), "dropout"),
            (
                MobileNetV2Config::new().with_inverted_residual_setting(Some(vec![])),
                "inverted_residual_setting",
            ),
            (
                MobileNetV2Config::new().with_inverted_residual_setting(Some(vec![[6, 24, 2, 3]])),
                "inverted_residual_setting",
            ),
        ] {
            match config.init(&device) {
                Err(ConfigError::Invalid { field: f, .. }) => assert_eq!(f, field),
                other => panic!("{field}: {other:?}"),
            }
        }
        assert!(matches!(
            MobileNetV2Config::new().with_round_nearest(0).init(&device),
            Err(ConfigError::Zero { .. })
        ));
    }
}
