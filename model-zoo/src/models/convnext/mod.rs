//! ConvNeXt Tiny, Small, Base and Large, as torchvision's `convnext_tiny` ... `convnext_large`
//! (`torchvision/models/convnext.py`): the same stages, blocks, LayerNorms (eps 1e-6, on NCHW as
//! `LayerNorm2d` and on NHWC inside the blocks), exact GELU, layer scale, stochastic depth,
//! state_dict keys (`features.1.0.block.3.weight`, `features.1.0.layer_scale`) and
//! initialisation.
//!
//! Liu et al., *A ConvNet for the 2020s* (CVPR 2022). A 4x4 stride-4 patchify stem, four stages
//! of blocks (7x7 depthwise convolution, LayerNorm, 1x1 expansion to 4x as two `Linear`s over
//! channels-last activations with GELU between, a learnt per-channel `layer_scale`), 2x2
//! stride-2 downsampling between stages, and a head of LayerNorm and `Linear` after global
//! average pooling.
//!
//! ```no_run
//! use model_zoo::Architecture;
//! use model_zoo::convnext::ConvNeXtConfig;
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let device = model_zoo::Backend::Flex.device()?;
//! let model = ConvNeXtConfig::convnext_tiny().init(&device)?;
//! let logits = model.forward(burn::tensor::Tensor::zeros([1, 3, 224, 224], &device));
//! assert_eq!(logits.dims(), [1, 1000]);
//! # Ok(()) }
//! ```

mod weights;
pub use weights::*;

use crate::layers::TrunkSlot;
use burn::config::Config;
use burn::module::{Module, Param};
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::{Identity, Initializer, Linear, LinearConfig, PaddingConfig2d};
use burn::tensor::{Device, Tensor};

use crate::architecture::{Architecture, ImportHooks};
use crate::error::{ConfigError, InputSpec};
use crate::family::Family;
use crate::layers::{
    ActivationKind, ImageLayer, Permute, StochasticDepth, VectorLayer, add_scaled_channels_last,
    layer_norm, run_image_layers, zero_bias,
};

impl Family {
    /// ConvNeXt ([`crate::convnext`]).
    pub const CONVNEXT: Family = Family::new("convnext");
}

/// torchvision's LayerNorm epsilon for ConvNeXt.
const EPS: f64 = 1e-6;

/// Which ConvNeXt.
#[derive(Config, Debug, Copy, PartialEq, Eq)]
pub enum ConvNeXtArch {
    /// `convnext_tiny`.
    Tiny,
    /// `convnext_small`.
    Small,
    /// `convnext_base`.
    Base,
    /// `convnext_large`.
    Large,
}

impl ConvNeXtArch {
    /// torchvision's builder's configuration.
    pub fn config(self) -> ConvNeXtConfig {
        let (dims, depths): (Vec<_>, Vec<_>) = self.stages().into_iter().unzip();
        ConvNeXtConfig::new(depths, dims)
    }

    /// Every ConvNeXt, in torchvision's order.
    pub const ALL: [ConvNeXtArch; 4] = [Self::Tiny, Self::Small, Self::Base, Self::Large];

    /// torchvision's builder name.
    pub fn name(self) -> &'static str {
        match self {
            Self::Tiny => "convnext_tiny",
            Self::Small => "convnext_small",
            Self::Base => "convnext_base",
            Self::Large => "convnext_large",
        }
    }

    /// `(channels, blocks)` of the four stages (torchvision's `CNBlockConfig`s).
    pub fn stages(self) -> [(usize, usize); 4] {
        let (width, third) = match self {
            Self::Tiny => (96, 9),
            Self::Small => (96, 27),
            Self::Base => (128, 27),
            Self::Large => (192, 27),
        };
        [
            (width, 3),
            (2 * width, 3),
            (4 * width, third),
            (8 * width, 3),
        ]
    }

    /// The builder's default stochastic depth of the last block: 0.1, 0.4, 0.5, 0.5.
    pub fn default_stochastic_depth(self) -> f64 {
        match self {
            Self::Tiny => 0.1,
            Self::Small => 0.4,
            Self::Base | Self::Large => 0.5,
        }
    }
}

/// What ConvNeXt accepts: torchvision's `min_size`, 32x32 (the stem and three downsamplings
/// divide the side by 32).
pub const CONVNEXT_INPUT: InputSpec = InputSpec {
    channels: 3,
    min_size: [32, 32],
    exact: false,
};

/// Configuration of a [`ConvNeXt`]: torchvision's `ConvNeXt` arguments (its `block_setting` as
/// timm's `depths` and `dims`), so that any depth and width builds (ConvNeXt-Nano: `new(vec![2,
/// 2, 8, 2], vec![80, 160, 320, 640])`); torchvision's four builders are the presets
/// ([`Self::convnext_tiny`]...).
#[derive(Config, Debug)]
pub struct ConvNeXtConfig {
    /// Blocks of each stage (`[3, 3, 9, 3]` for Tiny).
    pub depths: Vec<usize>,
    /// Channels of each stage (`[96, 192, 384, 768]` for Tiny); a stem (4x4 patchify) before
    /// the first and a 2x2 downsampling before each other.
    pub dims: Vec<usize>,
    /// Output classes.
    #[config(default = 1000)]
    pub num_classes: usize,
    /// Stochastic depth of the last block (`None`: the builder's default, 0.1 to 0.5, for a
    /// builder's shape, else `ConvNeXt`'s, 0); block `i` of `n` gets `i / (n - 1)` of it.
    #[config(default = "None")]
    pub stochastic_depth_prob: Option<f64>,
    /// Initial value of every `layer_scale`.
    #[config(default = 1e-6)]
    pub layer_scale: f64,
}

/// A convolution or linear layer's weight as torchvision initialises ConvNeXt's:
/// `trunc_normal_(std=0.02)`, truncated at ±2, which is 100 standard deviations out and never
/// reached by an `f32` draw, so a plain normal; the bias is zeroed separately.
const WEIGHT_INIT: Initializer = Initializer::Normal {
    mean: 0.0,
    std: 0.02,
};

fn conv(config: Conv2dConfig, device: &Device) -> Conv2d {
    let conv = config.with_initializer(WEIGHT_INIT).init(device);
    Conv2d {
        bias: zero_bias(conv.bias, device),
        ..conv
    }
}

fn linear(d_in: usize, d_out: usize, device: &Device) -> Linear {
    let linear = LinearConfig::new(d_in, d_out)
        .with_initializer(WEIGHT_INIT)
        .init(device);
    Linear {
        bias: zero_bias(linear.bias, device),
        ..linear
    }
}

/// A `k x k` stride-`k` convolution with a bias (the stem and the downsampling layers).
fn patchify(c_in: usize, c_out: usize, k: usize, device: &Device) -> ImageLayer {
    ImageLayer::Conv(conv(
        Conv2dConfig::new([c_in, c_out], [k, k]).with_stride([k, k]),
        device,
    ))
}

impl ConvNeXtConfig {
    /// torchvision's `convnext_tiny`.
    pub fn convnext_tiny() -> Self {
        ConvNeXtArch::Tiny.config()
    }

    /// torchvision's `convnext_small`.
    pub fn convnext_small() -> Self {
        ConvNeXtArch::Small.config()
    }

    /// torchvision's `convnext_base`.
    pub fn convnext_base() -> Self {
        ConvNeXtArch::Base.config()
    }

    /// torchvision's `convnext_large`.
    pub fn convnext_large() -> Self {
        ConvNeXtArch::Large.config()
    }

    /// The builder whose shape this is, if any.
    pub fn arch(&self) -> Option<ConvNeXtArch> {
        ConvNeXtArch::ALL.into_iter().find(|arch| {
            let (dims, depths): (Vec<_>, Vec<_>) = arch.stages().into_iter().unzip();
            dims == self.dims && depths == self.depths
        })
    }

    /// torchvision's builder name for a builder's shape (`convnext_tiny`), else `convnext`.
    pub fn name(&self) -> &'static str {
        self.arch().map_or("convnext", ConvNeXtArch::name)
    }

    /// Builds the model, initialised as torchvision does (see `WEIGHT_INIT`; LayerNorms
    /// ones and zeros, `layer_scale` filled with [`Self::layer_scale`]).
    pub fn init(&self, device: &Device) -> Result<ConvNeXt, ConfigError> {
        let name = self.name();
        let sd = self.stochastic_depth_prob.unwrap_or_else(|| {
            self.arch()
                .map_or(0.0, ConvNeXtArch::default_stochastic_depth)
        });
        ConfigError::nonzero(name, "num_classes", self.num_classes)?;
        ConfigError::check(
            !self.depths.is_empty() && self.depths.len() == self.dims.len(),
            name,
            "depths",
            self.depths.len() as f64,
            "one depth per stage, as many as dims, at least one",
        )?;
        for (field, values) in [("depths", &self.depths), ("dims", &self.dims)] {
            if values.contains(&0) {
                return Err(ConfigError::Zero {
                    model: name.into(),
                    field,
                });
            }
        }
        ConfigError::probability(name, "stochastic_depth_prob", sd)?;
        ConfigError::check(
            self.layer_scale.is_finite(),
            name,
            "layer_scale",
            self.layer_scale,
            "it must be finite",
        )?;
        let stages: Vec<(usize, usize)> = self
            .dims
            .iter()
            .copied()
            .zip(self.depths.iter().copied())
            .collect();
        let total: usize = stages.iter().map(|s| s.1).sum();
        let mut features = vec![Feature::Layer(ImageLayer::Sequential(vec![
            patchify(3, stages[0].0, 4, device),
            ImageLayer::LayerNorm2d(layer_norm(stages[0].0, EPS, device)),
        ]))];
        let mut block_id = 0;
        for (i, &(dim, blocks)) in stages.iter().enumerate() {
            let stage = (0..blocks)
                .map(|_| {
                    let p = sd * block_id as f64 / (total as f64 - 1.0);
                    block_id += 1;
                    CnBlock::new(dim, self.layer_scale, p, device)
                })
                .collect();
            features.push(Feature::Stage(stage));
            if let Some(&(next, _)) = stages.get(i + 1) {
                features.push(Feature::Layer(ImageLayer::Sequential(vec![
                    ImageLayer::LayerNorm2d(layer_norm(dim, EPS, device)),
                    patchify(dim, next, 2, device),
                ])));
            }
        }
        let last = stages[stages.len() - 1].0;
        Ok(ConvNeXt {
            features,
            classifier: vec![
                VectorLayer::LayerNorm(layer_norm(last, EPS, device)),
                VectorLayer::Identity(Identity),
                VectorLayer::Linear(linear(last, self.num_classes, device)),
            ],
            num_features: last,
            name,
        })
    }
}

/// torchvision's `CNBlock`: `x + stochastic_depth(layer_scale * block(x))`.
#[derive(Module, Debug)]
pub struct CnBlock {
    /// Depthwise 7x7 convolution (`block.0`), `Permute` to NHWC, LayerNorm (`block.2`),
    /// `Linear` to 4x (`block.3`), GELU, `Linear` back (`block.5`), `Permute` to NCHW.
    pub block: Vec<ImageLayer>,
    /// Per-channel scale of the branch: `[channels, 1, 1]`.
    pub layer_scale: Param<Tensor<3>>,
    /// Drops the branch per sample in training.
    pub stochastic_depth: StochasticDepth,
}

impl CnBlock {
    fn new(dim: usize, layer_scale: f64, sd: f64, device: &Device) -> Self {
        let depthwise = Conv2dConfig::new([dim, dim], [7, 7])
            .with_groups(dim)
            .with_padding(PaddingConfig2d::Explicit(3, 3, 3, 3));
        Self {
            block: vec![
                ImageLayer::Conv(conv(depthwise, device)),
                ImageLayer::Permute(Permute::TO_CHANNELS_LAST),
                ImageLayer::LayerNorm(layer_norm(dim, EPS, device)),
                ImageLayer::Linear(linear(dim, 4 * dim, device)),
                ImageLayer::Activation(ActivationKind::Gelu.init()),
                ImageLayer::Linear(linear(4 * dim, dim, device)),
                ImageLayer::Permute(Permute::TO_CHANNELS_FIRST),
            ],
            layer_scale: Initializer::Constant { value: layer_scale }.init([dim, 1, 1], device),
            stochastic_depth: StochasticDepth::new(sd),
        }
    }

    /// # Shapes
    /// - input and output: `[batch, channels, height, width]`
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        // The branch stays channels-last: the scale, the permute back and the add are one pass
        // (`add_scaled_channels_last`).
        if let Some((ImageLayer::Permute(last), body)) = self.block.split_last()
            && last.dims == Permute::TO_CHANNELS_FIRST.dims
        {
            let branch = self
                .stochastic_depth
                .forward(run_image_layers(body, x.clone()));
            let [channels, _, _] = self.layer_scale.dims();
            return add_scaled_channels_last(x, branch, self.layer_scale.val().reshape([channels]));
        }
        let branch = run_image_layers(&self.block, x.clone()) * self.layer_scale.val().unsqueeze();
        x + self.stochastic_depth.forward(branch)
    }
}

/// One slot of `features`: the stem or a downsampling layer, or a stage of blocks.
// Slots are a few hundred bytes of layer description each, next to megabytes of weights.
#[allow(clippy::large_enum_variant)]
#[derive(Module, Debug)]
pub enum Feature {
    /// The stem (`Conv2d`, `LayerNorm2d`) or a downsampling layer (`LayerNorm2d`, `Conv2d`).
    Layer(ImageLayer),
    /// A stage (`features.N.M`).
    Stage(Vec<CnBlock>),
}

impl TrunkSlot for Feature {
    crate::layers::slot_layer!(Feature::Layer);

    /// A stage keeps the size and channels of its input.
    fn chain(&self, channels: usize) -> (usize, usize) {
        match self {
            Feature::Layer(layer) => (layer.stride(), layer.out_channels(channels)),
            Feature::Stage(_) => (1, channels),
        }
    }

    fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        match self {
            Feature::Layer(layer) => layer.forward(x),
            Feature::Stage(blocks) => blocks.iter().fold(x, |x, block| block.forward(x)),
        }
    }

    /// ConvNeXt has no BatchNorm.
    fn fold_batchnorm(self) -> Self {
        self
    }

    fn can_fold(&self) -> bool {
        false
    }
}

/// ConvNeXt. Build it with [`ConvNeXtConfig`].
#[derive(Module, Debug)]
pub struct ConvNeXt {
    /// Stem, stages and downsampling layers.
    pub features: Vec<Feature>,
    /// `LayerNorm`, flatten, `Linear`.
    pub classifier: Vec<VectorLayer>,
    /// Channels of the last stage (768 for Tiny).
    pub num_features: usize,
    /// torchvision's builder name (`convnext_tiny`), or `convnext` for another shape.
    #[module(skip)]
    pub name: &'static str,
}

/// The classifier's slots before its `Linear`: the head LayerNorm and the flatten.
const HEAD_NORM: usize = 2;

impl Architecture for ConvNeXt {
    crate::layers::classifier_head!(classifier, keep: HEAD_NORM, pool);
    crate::layers::slot_features!(features, stem: "features.0.0");

    fn family(&self) -> Family {
        Family::CONVNEXT
    }

    /// The stem's 4x4 patches and each later stage's 2x2 downsampling need a 1x1 map: 32x32
    /// for four stages (torchvision's `min_size`).
    fn input_spec(&self) -> InputSpec {
        let stages = self
            .features
            .iter()
            .filter(|f| matches!(f, Feature::Stage(_)))
            .count();
        let side = 4 << stages.saturating_sub(1);
        InputSpec {
            channels: self.in_chans(),
            min_size: [side, side],
            ..CONVNEXT_INPUT
        }
    }

    fn display_name(&self) -> &str {
        self.name
    }

    fn num_features(&self) -> usize {
        self.num_features
    }

}

impl ImportHooks for ConvNeXt {
    fn classifier_prefixes(&self) -> &'static [&'static str] {
        &["classifier.2."]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::InputError;
    use crate::device::test_device as device;

    #[test]
    fn any_depths_and_dims_build_and_the_presets_are_values_of_them() {
        let device = device();
        // timm's convnext_nano shape, and a three-stage one; torchvision has neither.
        let nano = ConvNeXtConfig::new(vec![2, 2, 8, 2], vec![80, 160, 320, 640])
            .with_num_classes(5)
            .init(&device)
            .unwrap();
        assert_eq!((nano.name, nano.num_features), ("convnext", 640));
        // sum(p.numel()) of torchvision's ConvNeXt([CNBlockConfig(80, 160, 2), CNBlockConfig(160,
        // 320, 2), CNBlockConfig(320, 640, 8), CNBlockConfig(640, None, 2)], num_classes=5).
        assert_eq!(crate::num_parameters(&nano), 14_955_765);
        let three = ConvNeXtConfig::new(vec![1, 1, 1], vec![8, 16, 32])
            .init(&device)
            .unwrap();
        assert_eq!(crate::num_parameters(&three), 50_128);
        assert_eq!(three.input_spec().min_size, [16, 16]);
        assert_eq!(three.feature_info().len(), 3);
        let x = Tensor::zeros([1, 3, 16, 16], &device);
        assert_eq!(three.forward(x).dims(), [1, 1000]);
        assert_eq!(ConvNeXtConfig::convnext_base().name(), "convnext_base");
        let err = ConvNeXtConfig::new(vec![1, 1], vec![8])
            .init(&device)
            .unwrap_err();
        assert!(err.to_string().contains("depths"), "{err}");
    }

    #[test]
    fn keys_and_shapes_are_torchvision_s() {
        let device = device();
        let model = ConvNeXtConfig::convnext_tiny()
            .init(&device)
            .unwrap();
        let keys = crate::layers::torch_shapes(&model);
        for (key, shape) in [
            ("features.0.0.weight", vec![96, 3, 4, 4]),
            ("features.0.1.weight", vec![96]),
            ("features.1.0.block.0.weight", vec![96, 1, 7, 7]),
            ("features.1.0.block.2.bias", vec![96]),
            ("features.1.0.block.3.weight", vec![384, 96]),
            ("features.1.0.block.5.weight", vec![96, 384]),
            ("features.1.2.layer_scale", vec![96, 1, 1]),
            ("features.2.0.weight", vec![96]),
            ("features.2.1.weight", vec![192, 96, 2, 2]),
            ("features.5.8.block.0.bias", vec![384]),
            ("features.7.2.layer_scale", vec![768, 1, 1]),
            ("classifier.0.weight", vec![768]),
            ("classifier.2.weight", vec![1000, 768]),
        ] {
            assert_eq!(keys.get(key), Some(&shape), "{key}");
        }
        assert_eq!(keys.len(), 4 + 18 * 9 + 3 * 4 + 4);
    }

    #[test]
    fn shapes_minimum_and_classifier() {
        let device = device();
        let model = ConvNeXtConfig::convnext_tiny()
            .with_num_classes(5)
            .init(&device)
            .unwrap();
        let x = Tensor::<4>::zeros([2, 3, 64, 40], &device);
        assert_eq!(model.forward(x.clone()).dims(), [2, 5]);
        assert_eq!(model.forward_pooled(x).dims(), [2, 768]);
        let x = Tensor::<4>::zeros([1, 3, 31, 40], &device);
        assert!(matches!(
            model.try_forward(x),
            Err(InputError::TooSmall { min: [32, 32], .. })
        ));
        let model = model.reset_classifier(3, &device).unwrap();
        assert_eq!(model.num_classes(), 3);
        let x = Tensor::<4>::zeros([1, 3, 32, 32], &device);
        assert_eq!(model.forward(x).dims(), [1, 3]);
    }

    #[test]
    fn invalid_options_are_errors() {
        let device = device();
        for (config, field) in [
            (
                ConvNeXtConfig::convnext_tiny().with_stochastic_depth_prob(Some(1.0)),
                "stochastic_depth_prob",
            ),
            (
                ConvNeXtConfig::convnext_tiny().with_layer_scale(f64::NAN),
                "layer_scale",
            ),
        ] {
            match config.init(&device) {
                Err(ConfigError::Invalid { field: f, .. }) => assert_eq!(f, field),
                other => panic!("{field}: {other:?}"),
            }
        }
    }
}
