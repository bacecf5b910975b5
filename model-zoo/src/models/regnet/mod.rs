//! RegNet X and Y, as torchvision's `regnet_x_*` and `regnet_y_*` (`torchvision/models/regnet.py`):
//! the same widths and depths, generated from the RegNet parameters as torchvision's
//! `BlockParams.from_init_params` does, the same state_dict keys
//! (`trunk_output.block1.block1-0.f.a.0.weight`) and initialisation.
//!
//! Radosavovic et al., *Designing Network Design Spaces*, CVPR 2020. A stem, four stages of
//! residual bottleneck blocks (1x1, grouped 3x3, squeeze-excitation in RegNet Y, 1x1), global
//! average pooling and a linear classifier.
//!
//! ```no_run
//! use model_zoo::Architecture;
//! use model_zoo::regnet::RegNetConfig;
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let device = model_zoo::Backend::Flex.device()?;
//! let model = RegNetConfig::regnet_y_400mf().init(&device)?;
//! let logits = model.forward(burn::tensor::Tensor::zeros([1, 3, 224, 224], &device));
//! assert_eq!(logits.dims(), [1, 1000]);
//! # Ok(()) }
//! ```

mod weights;
pub use weights::*;

use burn::config::Config;
use burn::module::Module;
use burn::nn::{Initializer, Linear, LinearConfig};
use burn::tensor::{Device, Tensor};

use crate::architecture::{Architecture, ImportHooks};
use crate::error::{ConfigError, InputSpec};
use crate::family::Family;
use crate::features::{FeatureInfo, Features, Taps};
use crate::layers::stem_conv;
use crate::layers::{
    ActivationKind, Conv2dNormActivation, ImageLayer, Numbered, SqueezeExcitation, add_activation, fold_one,
    make_divisible, zero_bias,
};
use crate::tap;
use burn::nn::conv::Conv2d;

impl Family {
    /// RegNet X and Y ([`crate::regnet`]).
    pub const REGNET: Family = Family::new("regnet");
}

/// The RegNet design parameters of torchvision's `BlockParams.from_init_params`.
#[derive(Config, Debug, PartialEq)]
pub struct RegNetParams {
    /// Number of blocks in all stages together.
    pub depth: usize,
    /// Initial width (a multiple of 8).
    pub w_0: usize,
    /// Width slope (at least 0).
    pub w_a: f64,
    /// Width multiplier between stages in log space (above 1).
    pub w_m: f64,
    /// Channels per group of the 3x3 convolution.
    pub group_width: usize,
    /// Bottleneck width relative to the stage width.
    #[config(default = 1.0)]
    pub bottleneck_multiplier: f64,
    /// Squeeze-excitation width relative to the block's input (RegNet Y: 0.25; X: none).
    #[config(default = "None")]
    pub se_ratio: Option<f64>,
}

/// One stage, as `BlockParams` lists it: output width, blocks, group width, bottleneck
/// multiplier (stride 2 for every stage).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StageParams {
    /// Output channels of every block of the stage.
    pub width: usize,
    /// Number of blocks.
    pub depth: usize,
    /// Channels per group of the 3x3 convolution.
    pub group_width: usize,
    /// Bottleneck width relative to `width`.
    pub bottleneck_multiplier: f64,
}

impl RegNetParams {
    /// The stages, computed as torchvision's `from_init_params` does, in `float32` as torch
    /// computes them (round half to even, like `torch.round`), so that every width equals
    /// torchvision's.
    pub fn stages(&self) -> Result<Vec<StageParams>, ConfigError> {
        let invalid = |value: String| ConfigError::Invalid {
            model: "regnet".into(),
            field: "block_params",
            value,
            expected: "torchvision needs w_a >= 0, w_0 > 0 and a multiple of 8, w_m > 1, \
                       depth and group_width >= 1, a positive bottleneck_multiplier",
        };
        let ok = self.w_a >= 0.0
            && self.w_0 > 0
            && self.w_0.is_multiple_of(8)
            && self.w_m > 1.0
            && self.depth > 0
            && self.group_width > 0
            && self.bottleneck_multiplier > 0.0
            && self.se_ratio.is_none_or(|r| r >= 0.0 && r.is_finite());
        if !ok {
            return Err(invalid(format!("{self:?}")));
        }
        const QUANT: f32 = 8.0;
        let (w_0, w_a, w_m) = (self.w_0 as f32, self.w_a as f32, self.w_m as f32);
        let log_w_m = self.w_m.ln() as f32;
        let block_widths: Vec<usize> = (0..self.depth)
            .map(|i| {
                let width = i as f32 * w_a + w_0;
                let capacity = ((width / w_0).ln() / log_w_m).round_ties_even();
                ((w_0 * w_m.powf(capacity) / QUANT).round_ties_even() * QUANT) as usize
            })
            .collect();
        // Stages are runs of equal block width.
        let mut stages: Vec<(usize, usize)> = Vec::new();
        for width in block_widths {
            match stages.last_mut() {
                Some((w, depth)) if *w == width => *depth += 1,
                _ => stages.push((width, 1)),
            }
        }
        // `_adjust_widths_groups_compatibilty`.
        let b = self.bottleneck_multiplier;
        Ok(stages
            .into_iter()
            .map(|(width, depth)| {
                let bottleneck = (width as f64 * b) as usize;
                let group_width = self.group_width.min(bottleneck);
                let bottleneck = make_divisible(bottleneck as f64, group_width);
                StageParams {
                    width: (bottleneck as f64 / b) as usize,
                    depth,
                    group_width,
                    bottleneck_multiplier: b,
                }
            })
            .collect())
    }
}

/// Configuration of a [`RegNet`]: the design parameters, classes and stem width of
/// torchvision's `RegNet(BlockParams.from_init_params(...), ...)`.
#[derive(Config, Debug)]
pub struct RegNetConfig {
    /// The builder's name (`regnet_y_400mf`), for messages.
    pub name: String,
    /// The design parameters.
    pub params: RegNetParams,
    /// Output classes.
    #[config(default = 1000)]
    pub num_classes: usize,
    /// Channels of the stem convolution.
    #[config(default = 32)]
    pub stem_width: usize,
}

/// `(name, depth, w_0, w_a, w_m, group_width, Y)` of torchvision's 15 builders.
const BUILDERS: [(&str, usize, usize, f64, f64, usize, bool); 15] = [
    ("regnet_y_400mf", 16, 48, 27.89, 2.09, 8, true),
    ("regnet_y_800mf", 14, 56, 38.84, 2.4, 16, true),
    ("regnet_y_1_6gf", 27, 48, 20.71, 2.65, 24, true),
    ("regnet_y_3_2gf", 21, 80, 42.63, 2.66, 24, true),
    ("regnet_y_8gf", 17, 192, 76.82, 2.19, 56, true),
    ("regnet_y_16gf", 18, 200, 106.23, 2.48, 112, true),
    ("regnet_y_32gf", 20, 232, 115.89, 2.53, 232, true),
    ("regnet_y_128gf", 27, 456, 160.83, 2.52, 264, true),
    ("regnet_x_400mf", 22, 24, 24.48, 2.54, 16, false),
    ("regnet_x_800mf", 16, 56, 35.73, 2.28, 16, false),
    ("regnet_x_1_6gf", 18, 80, 34.01, 2.25, 24, false),
    ("regnet_x_3_2gf", 25, 88, 26.31, 2.25, 48, false),
    ("regnet_x_8gf", 23, 80, 49.56, 2.88, 120, false),
    ("regnet_x_16gf", 22, 216, 55.59, 2.1, 128, false),
    ("regnet_x_32gf", 23, 320, 69.86, 2.0, 168, false),
];

macro_rules! builders {
    ($($fn:ident),* $(,)?) => {
        $(
            #[doc = concat!("torchvision's `", stringify!($fn), "`.")]
            pub fn $fn() -> Self {
                Self::builder(stringify!($fn))
                    .unwrap_or_else(|| unreachable!("{} is in BUILDERS", stringify!($fn)))
            }
        )*
    };
}

impl RegNetConfig {
    /// torchvision's builder of this name (`regnet_y_400mf`), if there is one.
    pub fn builder(name: &str) -> Option<Self> {
        BUILDERS.iter().find(|b| b.0 == name).map(
            |&(name, depth, w_0, w_a, w_m, group_width, y)| {
                let params = RegNetParams::new(depth, w_0, w_a, w_m, group_width)
                    .with_se_ratio(y.then_some(0.25));
                Self::new(name.to_string(), params)
            },
        )
    }

    /// The names of torchvision's RegNet builders, Y then X, smallest first.
    pub fn builder_names() -> impl Iterator<Item = &'static str> {
        BUILDERS.iter().map(|b| b.0)
    }

    builders!(
        regnet_y_400mf,
        regnet_y_800mf,
        regnet_y_1_6gf,
        regnet_y_3_2gf,
        regnet_y_8gf,
        regnet_y_16gf,
        regnet_y_32gf,
        regnet_y_128gf,
        regnet_x_400mf,
        regnet_x_800mf,
        regnet_x_1_6gf,
        regnet_x_3_2gf,
        regnet_x_8gf,
        regnet_x_16gf,
        regnet_x_32gf,
    );

    /// Builds the model, initialised as torchvision does: convolutions `normal_(0,
    /// sqrt(2 / fan_out))` (squeeze-excitation biases PyTorch's default), BatchNorm ones and
    /// zeros, the classifier `normal_(0, 0.01)` with a zero bias.
    pub fn init(&self, device: &Device) -> Result<RegNet, ConfigError> {
        ConfigError::nonzero(&self.name, "num_classes", self.num_classes)?;
        ConfigError::nonzero(&self.name, "stem_width", self.stem_width)?;
        let stages = self.params.stages()?;
        let cna = Conv2dNormActivation::new;
        let mut width_in = self.stem_width;
        let mut trunk = Vec::new();
        for (s, stage) in stages.iter().enumerate() {
            let blocks = (0..stage.depth)
                .map(|i| {
                    let block_in = if i == 0 { width_in } else { stage.width };
                    let stride = if i == 0 { 2 } else { 1 };
                    ResBottleneckBlock::new(block_in, stride, stage, self.params.se_ratio, device)
                })
                .collect();
            trunk.push(Numbered::new(format!("block{}-", s + 1), 0, blocks));
            width_in = stage.width;
        }
        let fc = LinearConfig::new(width_in, self.num_classes)
            .with_initializer(Initializer::Normal {
                mean: 0.0,
                std: 0.01,
            })
            .init(device);
        Ok(RegNet {
            stem: cna(3, self.stem_width, 3).stride(2).init(device),
            trunk_output: Numbered::new("block", 1, trunk),
            fc: Some(Linear {
                bias: zero_bias(fc.bias, device),
                ..fc
            }),
            num_features: width_in,
            name: self.name.clone(),
        })
    }
}

/// torchvision's `BottleneckTransform` (`f`): 1x1 (`a`), grouped 3x3 with the stride (`b`),
/// squeeze-excitation (`se`, RegNet Y), 1x1 without activation (`c`).
#[derive(Module, Debug)]
pub struct BottleneckTransform {
    /// 1x1 convolution, BatchNorm, ReLU.
    pub a: ImageLayer,
    /// Grouped 3x3 convolution, BatchNorm, ReLU.
    pub b: ImageLayer,
    /// Squeeze-excitation (ReLU, sigmoid), RegNet Y only.
    pub se: Option<SqueezeExcitation>,
    /// 1x1 convolution and BatchNorm.
    pub c: ImageLayer,
}

/// torchvision's `ResBottleneckBlock`: `relu(proj(x) + f(x))`, `proj` a strided 1x1
/// convolution with BatchNorm where the shape changes, else the identity.
#[derive(Module, Debug)]
pub struct ResBottleneckBlock {
    /// Projection of the input (1x1 convolution and BatchNorm), when the shape changes.
    pub proj: Option<ImageLayer>,
    /// The bottleneck transform.
    pub f: BottleneckTransform,
}

impl ResBottleneckBlock {
    fn new(
        width_in: usize,
        stride: usize,
        stage: &StageParams,
        se_ratio: Option<f64>,
        device: &Device,
    ) -> Self {
        let width_out = stage.width;
        let cna = Conv2dNormActivation::new;
        // Python's `int(round(...))`: half to even.
        let w_b = (width_out as f64 * stage.bottleneck_multiplier).round_ties_even() as usize;
        let groups = w_b / stage.group_width;
        let se = se_ratio.filter(|&r| r > 0.0).map(|r| {
            let squeeze = (r * width_in as f64).round_ties_even() as usize;
            SqueezeExcitation::new(
                w_b,
                squeeze,
                ActivationKind::Relu,
                ActivationKind::Sigmoid,
                device,
            )
            .with_default_bias(device)
        });
        Self {
            proj: (width_in != width_out || stride != 1).then(|| {
                cna(width_in, width_out, 1)
                    .stride(stride)
                    .activation(None)
                    .init(device)
            }),
            f: BottleneckTransform {
                a: cna(width_in, w_b, 1).init(device),
                b: cna(w_b, w_b, 3).stride(stride).groups(groups).init(device),
                se,
                c: cna(w_b, width_out, 1).activation(None).init(device),
            },
        }
    }

    /// Applies the block.
    ///
    /// # Shapes
    /// - input: `[batch, width_in, height, width]`
    /// - output: `[batch, width_out, height / stride, width / stride]` (rounded up)
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let f = &self.f;
        let mut y = f.b.forward(f.a.forward(x.clone()));
        if let Some(se) = &f.se {
            y = se.forward(y);
        }
        let y = f.c.forward(y);
        let shortcut = match &self.proj {
            Some(proj) => proj.forward(x),
            None => x,
        };
        add_activation(y, shortcut, Some(ActivationKind::Relu))
    }

    fn fold_batchnorm(self) -> Self {
        let f = self.f;
        Self {
            proj: self.proj.map(fold_one),
            f: BottleneckTransform {
                a: fold_one(f.a),
                b: fold_one(f.b),
                c: fold_one(f.c),
                ..f
            },
        }
    }
}

/// RegNet. Build it with [`RegNetConfig`].
#[derive(Module, Debug)]
pub struct RegNet {
    /// 3x3 stride-2 convolution, BatchNorm, ReLU.
    pub stem: ImageLayer,
    /// The stages `block1..`, each of blocks `block{s}-0..`.
    pub trunk_output: Numbered<Numbered<ResBottleneckBlock>>,
    /// `num_features -> num_classes`.
    pub fc: Option<Linear>,
    /// Channels of the last stage.
    pub num_features: usize,
    /// The builder's name, for messages.
    pub name: String,
}

/// What RegNet accepts: torchvision's `min_size`, 1x1.
pub const REGNET_INPUT: InputSpec = InputSpec {
    channels: 3,
    min_size: [1, 1],
    exact: false,
};

impl RegNet {
    /// The unpooled features (`trunk_output`'s), tapping the stages of
    /// [`Architecture::feature_info`].
    fn trunk(&self, x: Tensor<4>, taps: &mut Taps) -> Option<Tensor<4>> {
        let mut x = self.stem.forward(x);
        tap!(taps, 0, x.clone());
        for (i, stage) in self.trunk_output.iter().enumerate() {
            for block in stage.iter() {
                x = block.forward(x);
            }
            tap!(taps, i + 1, x.clone());
        }
        Some(x)
    }
}

impl Architecture for RegNet {
    crate::layers::classifier_head!(fc, pool);

    fn family(&self) -> Family {
        Family::REGNET
    }

    fn input_spec(&self) -> InputSpec {
        InputSpec {
            channels: self.in_chans(),
            ..REGNET_INPUT
        }
    }

    fn display_name(&self) -> &str {
        &self.name
    }

    fn input_conv(&self) -> (&'static str, &Conv2d) {
        ("stem.0", stem_conv(self.stem.first_conv()))
    }

    fn input_conv_mut(&mut self) -> &mut Conv2d {
        stem_conv(self.stem.first_conv_mut())
    }

    /// `stem`, then `trunk_output.block1` to `block4`; reductions 2 to 32.
    fn feature_info(&self) -> Vec<FeatureInfo> {
        let mut reduction = self.stem.stride();
        let mut info = vec![FeatureInfo::new(
            "stem",
            self.stem.out_channels(3),
            reduction,
        )];
        for (i, stage) in self.trunk_output.iter().enumerate() {
            let blocks: Vec<&ResBottleneckBlock> = stage.iter().collect();
            reduction *= blocks.first().map_or(1, |block| block.f.b.stride());
            let channels = blocks.last().map_or(0, |block| block.f.c.out_channels(0));
            info.push(FeatureInfo::new(
                format!("trunk_output.block{}", i + 1),
                channels,
                reduction,
            ));
        }
        info
    }

    fn forward_features_tapped(&self, x: Tensor<4>, taps: &mut Taps) -> Option<Features> {
        self.trunk(x, taps).map(Features::Map)
    }

    fn num_features(&self) -> usize {
        self.num_features
    }

    fn can_fold_batchnorm(&self) -> bool {
        ImageLayer::can_fold(std::slice::from_ref(&self.stem))
    }

    fn fold_batchnorm(self) -> Self {
        let trunk = self.trunk_output;
        let stages = trunk
            .items
            .into_iter()
            .map(|stage| Numbered {
                items: stage
                    .items
                    .into_iter()
                    .map(ResBottleneckBlock::fold_batchnorm)
                    .collect(),
                ..stage
            })
            .collect();
        Self {
            stem: fold_one(self.stem),
            trunk_output: Numbered {
                items: stages,
                ..trunk
            },
            ..self
        }
    }
}

impl ImportHooks for RegNet {
    fn classifier_prefixes(&self) -> &'static [&'static str] {
        &["fc."]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::device::test_device as device;

    /// `[(width, depth, group_width)]` of `BlockParams.from_init_params` for each builder, from
    /// torchvision 0.29.
    #[test]
    fn stages_equal_torchvision_s() {
        for (name, expected) in [
            (
                "regnet_y_400mf",
                [(48, 1, 8), (104, 3, 8), (208, 6, 8), (440, 6, 8)],
            ),
            (
                "regnet_y_1_6gf",
                [(48, 2, 24), (120, 6, 24), (336, 17, 24), (888, 2, 24)],
            ),
            (
                "regnet_y_128gf",
                [
                    (528, 2, 264),
                    (1056, 7, 264),
                    (2904, 17, 264),
                    (7392, 1, 264),
                ],
            ),
            (
                "regnet_x_400mf",
                [(32, 1, 16), (64, 2, 16), (160, 7, 16), (400, 12, 16)],
            ),
            (
                "regnet_x_32gf",
                [
                    (336, 2, 168),
                    (672, 7, 168),
                    (1344, 13, 168),
                    (2520, 1, 168),
                ],
            ),
        ] {
            let stages = RegNetConfig::builder(name)
                .unwrap()
                .params
                .stages()
                .unwrap();
            let found: Vec<_> = stages
                .iter()
                .map(|s| (s.width, s.depth, s.group_width))
                .collect();
            assert_eq!(found, expected, "{name}");
        }
    }

    #[test]
    fn keys_are_torchvision_s() {
        let model = RegNetConfig::regnet_y_400mf().init(&device()).unwrap();
        let keys = crate::layers::torch_shapes(&model);
        for (key, shape) in [
            ("stem.0.weight", vec![32, 3, 3, 3]),
            ("stem.1.running_var", vec![32]),
            (
                "trunk_output.block1.block1-0.proj.0.weight",
                vec![48, 32, 1, 1],
            ),
            (
                "trunk_output.block1.block1-0.f.a.0.weight",
                vec![48, 32, 1, 1],
            ),
            (
                "trunk_output.block1.block1-0.f.b.0.weight",
                vec![48, 8, 3, 3],
            ),
            (
                "trunk_output.block1.block1-0.f.se.fc1.weight",
                vec![8, 48, 1, 1],
            ),
            ("trunk_output.block1.block1-0.f.se.fc2.bias", vec![48]),
            ("trunk_output.block4.block4-5.f.c.1.weight", vec![440]),
            ("fc.weight", vec![1000, 440]),
        ] {
            assert_eq!(keys.get(key), Some(&shape), "{key}");
        }
    }

    #[test]
    fn shapes_for_several_sizes() {
        let device = device();
        let model = RegNetConfig::regnet_x_400mf()
            .with_num_classes(7)
            .init(&device)
            .unwrap();
        for [h, w] in [[64, 48], [1, 1]] {
            let x = Tensor::<4>::zeros([2, 3, h, w], &device);
            assert_eq!(model.forward(x).dims(), [2, 7]);
        }
        assert_eq!(model.num_features(), 400);
    }

    #[test]
    fn invalid_params_are_errors() {
        let device = device();
        for params in [
            RegNetParams::new(16, 48, 27.89, 1.0, 8),
            RegNetParams::new(16, 44, 27.89, 2.09, 8),
            RegNetParams::new(16, 48, -1.0, 2.09, 8),
            RegNetParams::new(0, 48, 27.89, 2.09, 8),
            RegNetParams::new(16, 48, 27.89, 2.09, 0),
        ] {
            let err = RegNetConfig::new("custom".into(), params.clone())
                .init(&device)
                .unwrap_err();
            assert!(
                matches!(
                    err,
                    ConfigError::Invalid {
                        field: "block_params",
                        ..
                    }
                ),
                "{params:?}: {err}"
            );
        }
    }
}
