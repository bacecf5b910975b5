//! ResNet, ResNeXt and Wide ResNet, faithful to torchvision's `resnet.py`.
//!
//! - ResNet: He et al., *Deep Residual Learning for Image Recognition*, CVPR 2016.
//! - ResNeXt: Xie et al., *Aggregated Residual Transformations for Deep Neural Networks*, 2017.
//! - Wide ResNet: Zagoruyko & Komodakis, *Wide Residual Networks*, BMVC 2016.
//!
//! Like torchvision this is ResNet v1.5: a bottleneck's stride sits on its 3x3 convolution.
//! Field names equal torchvision's state_dict keys (`conv1`, `bn1`, `layer1.0.downsample.0`,
//! `fc`, ...), so torchvision weights load with no key map at all.
//!
//! ```no_run
//! use model_zoo::resnet::ResNetConfig;
//! # fn main() -> Result<(), model_zoo::ConfigError> {
//! let device = burn::tensor::Device::default();
//! let model = ResNetConfig::resnet50().with_num_classes(10).init(&device)?;
//! # Ok(()) }
//! ```

mod weights;
pub use weights::*;

use crate::layers::{
    Activation, ActivationKind, BatchNorm, BatchNormConfig, add_activation, conv_norm_activation,
    max_pool2d,
};

/// The blocks' ReLU.
const RELU: Activation = Activation::Relu(burn::nn::Relu);
use burn::config::Config;
use burn::module::Module;
use burn::nn::conv::Conv2d;
use burn::nn::pool::{AdaptiveAvgPool2d, AdaptiveAvgPool2dConfig, MaxPool2d, MaxPool2dConfig};
use burn::nn::{Linear, PaddingConfig2d};
use burn::tensor::{Device, Tensor};

use crate::architecture::{Architecture, ImportHooks};
use crate::error::{ConfigError, InputSpec};
use crate::family::Family;
use crate::features::{FeatureInfo, Features, Taps};
use crate::tap;

use crate::layers::{
    conv_config, conv_kaiming_fan_out, fold_batchnorm, linear_torch_default, };

impl Family {
    /// ResNet, ResNeXt and Wide ResNet ([`crate::resnet`]).
    pub const RESNET: Family = Family::new("resnet");
}

/// The residual block a ResNet is built from.
#[derive(Config, Debug, Copy, PartialEq, Eq)]
pub enum BlockKind {
    /// Two 3x3 convolutions (ResNet-18/34); expansion 1.
    Basic,
    /// 1x1 → 3x3 → 1x1 convolutions (ResNet-50 and deeper, ResNeXt, Wide ResNet); expansion 4.
    Bottleneck,
}

impl BlockKind {
    /// Output channels of a block relative to its `planes`.
    pub fn expansion(self) -> usize {
        match self {
            BlockKind::Basic => 1,
            BlockKind::Bottleneck => 4,
        }
    }
}

/// Configuration of a [`ResNet`], with torchvision's options and defaults.
#[derive(Config, Debug)]
pub struct ResNetConfig {
    /// The residual block of every stage.
    pub block: BlockKind,
    /// Blocks in each of the four stages (`[2, 2, 2, 2]` for ResNet-18).
    pub layers: [usize; 4],
    /// Output classes of the final linear layer.
    #[config(default = 1000)]
    pub num_classes: usize,
    /// Zero the last BatchNorm's weight in each residual branch so that every block starts as
    /// the identity (improves training from scratch by 0.2–0.3% according to Goyal et al. 2017).
    #[config(default = false)]
    pub zero_init_residual: bool,
    /// Groups of the 3x3 convolution in each bottleneck (32 for ResNeXt-50 32x4d).
    #[config(default = 1)]
    pub groups: usize,
    /// Channels per group of the bottleneck's 3x3 convolution (4 for ResNeXt-50 32x4d, 128 for
    /// Wide ResNet-50-2).
    #[config(default = 64)]
    pub width_per_group: usize,
    /// For layer2, layer3 and layer4: replace the stride-2 downsampling by dilation (for dense
    /// prediction). Exactly three flags.
    #[config(default = "vec![false, false, false]")]
    pub replace_stride_with_dilation: Vec<bool>,
}

impl ResNetConfig {
    /// ResNet-18: BasicBlock, `[2, 2, 2, 2]`.
    pub fn resnet18() -> Self {
        Self::new(BlockKind::Basic, [2, 2, 2, 2])
    }
    /// ResNet-34: BasicBlock, `[3, 4, 6, 3]`.
    pub fn resnet34() -> Self {
        Self::new(BlockKind::Basic, [3, 4, 6, 3])
    }
    /// ResNet-50: Bottleneck, `[3, 4, 6, 3]`.
    pub fn resnet50() -> Self {
        Self::new(BlockKind::Bottleneck, [3, 4, 6, 3])
    }
    /// ResNet-101: Bottleneck, `[3, 4, 23, 3]`.
    pub fn resnet101() -> Self {
        Self::new(BlockKind::Bottleneck, [3, 4, 23, 3])
    }
    /// ResNet-152: Bottleneck, `[3, 8, 36, 3]`.
    pub fn resnet152() -> Self {
        Self::new(BlockKind::Bottleneck, [3, 8, 36, 3])
    }
    /// ResNeXt-50 32x4d: ResNet-50 with 32 groups of width 4.
    pub fn resnext50_32x4d() -> Self {
        Self::resnet50().with_groups(32).with_width_per_group(4)
    }
    /// ResNeXt-101 32x8d: ResNet-101 with 32 groups of width 8.
    pub fn resnext101_32x8d() -> Self {
        Self::resnet101().with_groups(32).with_width_per_group(8)
    }
    /// ResNeXt-101 64x4d: ResNet-101 with 64 groups of width 4.
    pub fn resnext101_64x4d() -> Self {
        Self::resnet101().with_groups(64).with_width_per_group(4)
    }
    /// Wide ResNet-50-2: ResNet-50 with bottlenecks twice as wide.
    pub fn wide_resnet50_2() -> Self {
        Self::resnet50().with_width_per_group(128)
    }
    /// Wide ResNet-101-2: ResNet-101 with bottlenecks twice as wide.
    pub fn wide_resnet101_2() -> Self {
        Self::resnet101().with_width_per_group(128)
    }

    /// A short name for error messages: `resnet[Bottleneck; 3,4,6,3; 32x4]`.
    fn describe(&self) -> String {
        let [a, b, c, d] = self.layers;
        format!(
            "resnet[{:?}; {a},{b},{c},{d}; {}x{}]",
            self.block, self.groups, self.width_per_group
        )
    }

    /// Checks the combination of options, as torchvision's constructors do.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let model = self.describe();
        let zero = |field| ConfigError::Zero {
            model: model.clone(),
            field,
        };
        if self.num_classes == 0 {
            return Err(zero("num_classes"));
        }
        if self.groups == 0 {
            return Err(zero("groups"));
        }
        if self.width_per_group == 0 {
            return Err(zero("width_per_group"));
        }
        if self.layers.contains(&0) {
            return Err(zero("layers"));
        }
        if self.replace_stride_with_dilation.len() != 3 {
            return Err(ConfigError::DilationFlags {
                model,
                found: self.replace_stride_with_dilation.len(),
            });
        }
        if self.block == BlockKind::Basic {
            if self.groups != 1 || self.width_per_group != 64 {
                return Err(ConfigError::BasicBlockWidth {
                    model,
                    groups: self.groups,
                    width_per_group: self.width_per_group,
                });
            }
            if self.replace_stride_with_dilation.contains(&true) {
                return Err(ConfigError::BasicBlockDilation { model });
            }
        }
        Ok(())
    }

    /// Builds the model with torchvision's initialisation: Kaiming-normal (fan-out) convolutions,
    /// BatchNorm weight 1 and bias 0, PyTorch's default linear layer, and with
    /// `zero_init_residual` the last BatchNorm weight of every block set to 0.
    pub fn init(&self, device: &Device) -> Result<ResNet, ConfigError> {
        self.validate()?;
        let mut builder = StageBuilder {
            config: self,
            in_planes: 64,
            dilation: 1,
            device,
        };
        let flags = &self.replace_stride_with_dilation;
        let layer1 = builder.stage(64, self.layers[0], 1, false);
        let layer2 = builder.stage(128, self.layers[1], 2, flags[0]);
        let layer3 = builder.stage(256, self.layers[2], 2, flags[1]);
        let layer4 = builder.stage(512, self.layers[3], 2, flags[2]);
        let num_features = 512 * self.block.expansion();
        Ok(ResNet {
            conv1: conv_kaiming_fan_out(conv_config(3, 64, 7, 2, 1), device),
            bn1: Some(BatchNormConfig::new(64).init(device)),
            maxpool: MaxPool2dConfig::new([3, 3])
                .with_strides([2, 2])
                .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
                .init(),
            layer1,
            layer2,
            layer3,
            layer4,
            avgpool: AdaptiveAvgPool2dConfig::new([1, 1]).init(),
            fc: Some(linear_torch_default(num_features, self.num_classes, device)),
        })
    }
}

/// torchvision's `ResNet._make_layer`, with the state it threads between stages.
struct StageBuilder<'a> {
    config: &'a ResNetConfig,
    in_planes: usize,
    dilation: usize,
    device: &'a Device,
}

impl StageBuilder<'_> {
    fn stage(&mut self, planes: usize, blocks: usize, stride: usize, dilate: bool) -> Vec<Block> {
        let config = self.config;
        let device = self.device;
        let expansion = config.block.expansion();
        let previous_dilation = self.dilation;
        let mut stride = stride;
        if dilate {
            self.dilation *= stride;
            stride = 1;
        }
        let out_planes = planes * expansion;
        let downsample = (stride != 1 || self.in_planes != out_planes).then(|| {
            (
                conv_kaiming_fan_out(
                    conv_config(self.in_planes, out_planes, 1, stride, 1),
                    device,
                ),
                Some(BatchNormConfig::new(out_planes).init(device)),
            )
        });
        let mut layer = Vec::with_capacity(blocks);
        layer.push(self.block(planes, stride, previous_dilation, downsample));
        self.in_planes = out_planes;
        for _ in 1..blocks {
            layer.push(self.block(planes, 1, self.dilation, None));
        }
        layer
    }

    fn block(
        &self,
        planes: usize,
        stride: usize,
        dilation: usize,
        downsample: Option<Downsample>,
    ) -> Block {
        let (config, device, in_planes) = (self.config, self.device, self.in_planes);
        // torchvision zeroes the *weight* of the residual branch's last BatchNorm.
        let last_bn = |channels| {
            let bn = BatchNormConfig::new(channels).init(device);
            Some(if config.zero_init_residual {
                let gamma = bn.gamma.map(|g| g.zeros_like());
                BatchNorm { gamma, ..bn }
            } else {
                bn
            })
        };
        match config.block {
            BlockKind::Basic => Block::Basic(BasicBlock {
                conv1: conv_kaiming_fan_out(
                    conv_config(in_planes, planes, 3, stride, dilation),
                    device,
                ),
                bn1: Some(BatchNormConfig::new(planes).init(device)),
                conv2: conv_kaiming_fan_out(conv_config(planes, planes, 3, 1, dilation), device),
                bn2: last_bn(planes),
                downsample,
            }),
            BlockKind::Bottleneck => {
                let width = bottleneck_width(planes, config.width_per_group, config.groups);
                let out = planes * BlockKind::Bottleneck.expansion();
                Block::Bottleneck(Bottleneck {
                    conv1: conv_kaiming_fan_out(conv_config(in_planes, width, 1, 1, 1), device),
                    bn1: Some(BatchNormConfig::new(width).init(device)),
                    conv2: conv_kaiming_fan_out(
                        conv_config(width, width, 3, stride, dilation).with_groups(config.groups),
                        device,
                    ),
                    bn2: Some(BatchNormConfig::new(width).init(device)),
                    conv3: conv_kaiming_fan_out(conv_config(width, out, 1, 1, 1), device),
                    bn3: last_bn(out),
                    downsample,
                })
            }
        }
    }
}

/// Channels of a bottleneck's 3x3 convolution: `int(planes * width_per_group / 64) * groups`,
/// computed in integers exactly as torchvision's float expression truncates.
pub fn bottleneck_width(planes: usize, width_per_group: usize, groups: usize) -> usize {
    planes * width_per_group / 64 * groups
}

/// A residual block: one of torchvision's `BasicBlock` or `Bottleneck`.
// A stage is a `Vec<Block>` of one kind; boxing would only add an indirection per block.
#[allow(clippy::large_enum_variant)]
#[derive(Module, Debug)]
pub enum Block {
    /// Two 3x3 convolutions.
    Basic(BasicBlock),
    /// 1x1 → 3x3 (grouped, strided, dilated) → 1x1.
    Bottleneck(Bottleneck),
}

impl Block {
    /// The block's stride (its strided convolution's; 1 where a stage was dilated instead).
    pub fn stride(&self) -> usize {
        match self {
            Block::Basic(block) => block.conv1.stride[0],
            Block::Bottleneck(block) => block.conv2.stride[0],
        }
    }

    /// The block's output channels.
    pub fn out_channels(&self) -> usize {
        let last = match self {
            Block::Basic(block) => &block.conv2,
            Block::Bottleneck(block) => &block.conv3,
        };
        last.weight.lazy_shape().dims::<4>()[0]
    }

    /// # Shapes
    /// - input: `[batch, in_planes, h, w]`
    /// - output: `[batch, planes * expansion, h / stride, w / stride]`
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        match self {
            Block::Basic(block) => block.forward(x),
            Block::Bottleneck(block) => block.forward(x),
        }
    }
}

/// The projection shortcut: a strided 1x1 convolution then BatchNorm. A tuple, so that its keys
/// are torchvision's `downsample.0.*` and `downsample.1.*`.
pub type Downsample = (Conv2d, Option<BatchNorm>);

fn shortcut(downsample: &Option<Downsample>, x: Tensor<4>) -> Tensor<4> {
    match downsample {
        Some((conv, bn)) => conv_norm_activation(conv, bn.as_ref(), None, x),
        None => x,
    }
}

/// torchvision's `BasicBlock` (ResNet-18/34).
#[derive(Module, Debug)]
pub struct BasicBlock {
    /// 3x3, carries the block's stride.
    pub conv1: Conv2d,
    /// BatchNorm after `conv1`.
    pub bn1: Option<BatchNorm>,
    /// 3x3.
    pub conv2: Conv2d,
    /// BatchNorm after `conv2` (zeroed by `zero_init_residual`).
    pub bn2: Option<BatchNorm>,
    /// Projection shortcut when the shape changes.
    pub downsample: Option<Downsample>,
}

impl BasicBlock {
    /// # Shapes
    /// - input: `[batch, in_planes, h, w]`
    /// - output: `[batch, planes, h / stride, w / stride]`
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let identity = shortcut(&self.downsample, x.clone());
        let out = conv_norm_activation(&self.conv1, self.bn1.as_ref(), Some(&RELU), x);
        let out = conv_norm_activation(&self.conv2, self.bn2.as_ref(), None, out);
        add_activation(out, identity, Some(ActivationKind::Relu))
    }
}

/// torchvision's `Bottleneck` (ResNet-50 and deeper, ResNeXt, Wide ResNet).
#[derive(Module, Debug)]
pub struct Bottleneck {
    /// 1x1 reduction to the bottleneck width.
    pub conv1: Conv2d,
    /// BatchNorm after `conv1`.
    pub bn1: Option<BatchNorm>,
    /// 3x3, grouped, carries the stride (v1.5) and the dilation.
    pub conv2: Conv2d,
    /// BatchNorm after `conv2`.
    pub bn2: Option<BatchNorm>,
    /// 1x1 expansion to `planes * 4`.
    pub conv3: Conv2d,
    /// BatchNorm after `conv3` (zeroed by `zero_init_residual`).
    pub bn3: Option<BatchNorm>,
    /// Projection shortcut when the shape changes.
    pub downsample: Option<Downsample>,
}

impl BasicBlock {
    fn fold_batchnorm(self) -> Self {
        let (conv1, bn1) = fold(self.conv1, self.bn1);
        let (conv2, bn2) = fold(self.conv2, self.bn2);
        Self {
            conv1,
            bn1,
            conv2,
            bn2,
            downsample: fold_downsample(self.downsample),
        }
    }
}

impl Bottleneck {
    fn fold_batchnorm(self) -> Self {
        let (conv1, bn1) = fold(self.conv1, self.bn1);
        let (conv2, bn2) = fold(self.conv2, self.bn2);
        let (conv3, bn3) = fold(self.conv3, self.bn3);
        Self {
            conv1,
            bn1,
            conv2,
            bn2,
            conv3,
            bn3,
            downsample: fold_downsample(self.downsample),
        }
    }
}

fn fold(conv: Conv2d, bn: Option<BatchNorm>) -> (Conv2d, Option<BatchNorm>) {
    match bn {
        Some(bn) => (fold_batchnorm(conv, &bn), None),
        None => (conv, None),
    }
}

fn fold_downsample(downsample: Option<Downsample>) -> Option<Downsample> {
    downsample.map(|(conv, bn)| fold(conv, bn))
}

impl Block {
    fn fold_batchnorm(self) -> Self {
        match self {
            Block::Basic(block) => Block::Basic(block.fold_batchnorm()),
            Block::Bottleneck(block) => Block::Bottleneck(block.fold_batchnorm()),
        }
    }
}

impl Bottleneck {
    /// # Shapes
    /// - input: `[batch, in_planes, h, w]`
    /// - output: `[batch, planes * 4, h / stride, w / stride]`
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let identity = shortcut(&self.downsample, x.clone());
        let out = conv_norm_activation(&self.conv1, self.bn1.as_ref(), Some(&RELU), x);
        let out = conv_norm_activation(&self.conv2, self.bn2.as_ref(), Some(&RELU), out);
        let out = conv_norm_activation(&self.conv3, self.bn3.as_ref(), None, out);
        add_activation(out, identity, Some(ActivationKind::Relu))
    }
}

/// A ResNet, ResNeXt or Wide ResNet classifier. Build it with [`ResNetConfig`].
#[derive(Module, Debug)]
pub struct ResNet {
    /// Stem: 7x7 stride-2 convolution.
    pub conv1: Conv2d,
    /// Stem BatchNorm.
    pub bn1: Option<BatchNorm>,
    /// Stem: 3x3 stride-2 max-pool.
    pub maxpool: MaxPool2d,
    /// Stage 1 (stride 4 overall, 64 planes).
    pub layer1: Vec<Block>,
    /// Stage 2 (stride 8, 128 planes).
    pub layer2: Vec<Block>,
    /// Stage 3 (stride 16, 256 planes).
    pub layer3: Vec<Block>,
    /// Stage 4 (stride 32, 512 planes).
    pub layer4: Vec<Block>,
    /// Global average pooling, so that any input size works.
    pub avgpool: AdaptiveAvgPool2d,
    /// Classifier.
    pub fc: Option<Linear>,
}

/// What every ResNet accepts. Each stage at most halves the spatial size rounding up
/// (`floor((h - 1) / 2) + 1`), so even a 1x1 image survives to the pooling, as in torchvision.
/// Images below 32x32 reach the last stage as 1x1 and carry little information.
pub const RESNET_INPUT: InputSpec = InputSpec {
    channels: 3,
    min_size: [1, 1],
    exact: false,
};

impl ResNet {
    /// Whether [`Self::fold_batchnorm`] was applied.
    pub fn is_folded(&self) -> bool {
        self.bn1.is_none()
    }

    /// `layer1` to `layer4`.
    fn stages(&self) -> [&[Block]; 4] {
        [&self.layer1, &self.layer2, &self.layer3, &self.layer4]
    }

    /// The unpooled features (`layer4`'s output), tapping the stages of
    /// [`Architecture::feature_info`].
    fn trunk(&self, x: Tensor<4>, taps: &mut Taps) -> Option<Tensor<4>> {
        let x = conv_norm_activation(&self.conv1, self.bn1.as_ref(), Some(&RELU), x);
        tap!(taps, 0, x.clone());
        let mut x = max_pool2d(&self.maxpool, x);
        for (i, stage) in self.stages().into_iter().enumerate() {
            for block in stage {
                x = block.forward(x);
            }
            tap!(taps, i + 1, x.clone());
        }
        Some(x)
    }
}

impl Architecture for ResNet {
    crate::layers::classifier_head!(fc, pool);

    fn family(&self) -> Family {
        Family::RESNET
    }

    fn can_fold_batchnorm(&self) -> bool {
        !self.is_folded()
    }

    /// What this model accepts: 3 channels, at least [`RESNET_INPUT`]'s size.
    fn input_spec(&self) -> InputSpec {
        InputSpec {
            channels: self.in_chans(),
            ..RESNET_INPUT
        }
    }

    fn input_conv(&self) -> (&'static str, &Conv2d) {
        ("conv1", &self.conv1)
    }

    fn input_conv_mut(&mut self) -> &mut Conv2d {
        &mut self.conv1
    }

    /// `relu` (the stem, before the max-pool), then `layer1` to `layer4`; reductions 2 to 32
    /// where no stage is dilated.
    fn feature_info(&self) -> Vec<FeatureInfo> {
        let mut reduction = self.conv1.stride[0];
        let mut info = vec![FeatureInfo::new(
            "relu",
            self.conv1.weight.lazy_shape().dims::<4>()[0],
            reduction,
        )];
        reduction *= self.maxpool.stride[0];
        for (i, stage) in self.stages().into_iter().enumerate() {
            reduction *= stage.first().map_or(1, Block::stride);
            let channels = stage.last().map_or(0, Block::out_channels);
            info.push(FeatureInfo::new(
                format!("layer{}", i + 1),
                channels,
                reduction,
            ));
        }
        info
    }

    fn forward_features_tapped(&self, x: Tensor<4>, taps: &mut Taps) -> Option<Features> {
        self.trunk(x, taps).map(Features::Map)
    }

    /// The inference form of this model: every BatchNorm folded into the convolution before it
    /// (`w' = w * gamma / sqrt(var + eps)`, `b' = beta - mean * gamma / sqrt(var + eps)`), which
    /// removes a full pass over each activation. Same logits in eval mode (checked against
    /// PyTorch by `cargo xtask parity`); not for training, and its keys differ (convolutions
    /// gain a bias, BatchNorms are gone), so fold after loading weights, not before.
    fn fold_batchnorm(self) -> Self {
        let (conv1, bn1) = fold(self.conv1, self.bn1);
        let fold_stage = |stage: Vec<Block>| {
            stage
                .into_iter()
                .map(Block::fold_batchnorm)
                .collect::<Vec<_>>()
        };
        Self {
            conv1,
            bn1,
            layer1: fold_stage(self.layer1),
            layer2: fold_stage(self.layer2),
            layer3: fold_stage(self.layer3),
            layer4: fold_stage(self.layer4),
            ..self
        }
    }

    /// Width of the pooled features, the classifier's input.
    fn num_features(&self) -> usize {
        self.feature_info().last().map_or(0, |f| f.channels)
    }

}

impl ImportHooks for ResNet {
    fn classifier_prefixes(&self) -> &'static [&'static str] {
        &["fc."]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::InputError;
    use burn::tensor::Distribution;

    use crate::device::test_device as device;


    #[test]
    fn bottleneck_width_truncates_like_torchvision() {
        assert_eq!(bottleneck_width(64, 64, 1), 64);
        assert_eq!(bottleneck_width(64, 4, 32), 128); // resnext50_32x4d layer1
        assert_eq!(bottleneck_width(512, 128, 1), 1024); // wide_resnet50_2 layer4
        assert_eq!(bottleneck_width(64, 100, 1), 100); // int(64 * 100/64) = 100
        assert_eq!(bottleneck_width(64, 65, 2), 130);
        assert_eq!(bottleneck_width(128, 65, 1), 130); // int(128 * 1.015625) = 130
    }

    #[test]
    fn invalid_combinations_are_typed_errors() {
        let device = device();
        let err = ResNetConfig::resnet18()
            .with_groups(2)
            .init(&device)
            .unwrap_err();
        assert!(
            matches!(err, ConfigError::BasicBlockWidth { groups: 2, .. }),
            "{err}"
        );
        let err = ResNetConfig::resnet34()
            .with_width_per_group(128)
            .init(&device)
            .unwrap_err();
        assert!(matches!(
            err,
            ConfigError::BasicBlockWidth {
                width_per_group: 128,
                ..
            }
        ));
        let err = ResNetConfig::resnet18()
            .with_replace_stride_with_dilation(vec![false, false, true])
            .init(&device)
            .unwrap_err();
        assert!(matches!(err, ConfigError::BasicBlockDilation { .. }));
        let err = ResNetConfig::resnet50()
            .with_replace_stride_with_dilation(vec![false, true])
            .init(&device)
            .unwrap_err();
        assert!(
            err.to_string().contains("should have 3 elements, got 2"),
            "{err}"
        );
        let err = ResNetConfig::resnet50()
            .with_num_classes(0)
            .init(&device)
            .unwrap_err();
        assert!(matches!(
            err,
            ConfigError::Zero {
                field: "num_classes",
                ..
            }
        ));
    }

    #[test]
    fn any_input_size_and_dilation() {
        let device = device();
        let model = ResNetConfig::resnet18()
            .with_num_classes(7)
            .init(&device)
            .unwrap();
        for [h, w] in [[1, 1], [33, 17], [64, 96]] {
            let x = Tensor::<4>::random([2, 3, h, w], Distribution::Normal(0.0, 1.0), &device);
            assert_eq!(model.forward(x).dims(), [2, 7], "{h}x{w}");
        }
        // Dilation keeps layer3/4 at stride 8; the features and logits keep their shapes.
        let model = ResNetConfig::resnet50()
            .with_num_classes(5)
            .with_replace_stride_with_dilation(vec![false, true, true])
            .init(&device)
            .unwrap();
        let x = Tensor::<4>::random([1, 3, 40, 40], Distribution::Normal(0.0, 1.0), &device);
        assert_eq!(model.forward_pooled(x.clone()).dims(), [1, 2048]);
        assert_eq!(model.forward(x).dims(), [1, 5]);
    }

    #[test]
    fn bad_inputs_are_errors() {
        let device = device();
        let model = ResNetConfig::resnet18().init(&device).unwrap();
        let gray = Tensor::<4>::zeros([1, 1, 32, 32], &device);
        let err = model.try_forward(gray).unwrap_err();
        assert!(
            matches!(
                err,
                InputError::Channels {
                    expected: 3,
                    found: 1,
                    ..
                }
            ),
            "{err}"
        );
        let empty = Tensor::<4>::zeros([1, 3, 0, 32], &device);
        let err = model.try_forward(empty).unwrap_err();
        assert!(err.to_string().contains("at least 1x1"), "{err}");
    }

    #[test]
    fn reset_classifier_keeps_backbone() {
        let device = device();
        let model = ResNetConfig::resnet18().init(&device).unwrap();
        let x = Tensor::<4>::random([1, 3, 32, 32], Distribution::Normal(0.0, 1.0), &device);
        let before = model.forward_pooled(x.clone());
        let model = model.reset_classifier(10, &device).unwrap();
        assert_eq!((model.num_features(), model.num_classes()), (512, 10));
        let after = model.forward_pooled(x.clone());
        after
            .into_data()
            .assert_approx_eq::<f32>(&before.into_data(), burn::tensor::Tolerance::absolute(0.0));
        assert_eq!(model.forward(x).dims(), [1, 10]);
    }

    #[test]
    fn folded_batchnorm_gives_the_same_logits() {
        use burn::module::{ModuleMapper, Param};
        // Random BatchNorm statistics and affine parameters (every 1-D tensor but fc's bias).
        struct Randomise;
        impl ModuleMapper for Randomise {
            fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
                let (id, tensor, mapper) = param.consume();
                let tensor = if D == 1 {
                    let device = tensor.device();
                    Tensor::random(tensor.shape(), Distribution::Uniform(0.5, 1.5), &device)
                } else {
                    tensor
                };
                Param::from_mapped_value(id, tensor, mapper)
            }
        }
        let device = device();
        for config in [ResNetConfig::resnet18(), ResNetConfig::resnext50_32x4d()] {
            let model = config.init(&device).unwrap().map(&mut Randomise);
            let x = Tensor::<4>::random([2, 3, 64, 48], Distribution::Normal(0.0, 1.0), &device);
            let expected = model.forward(x.clone());
            let folded = model.fold_batchnorm();
            assert!(folded.is_folded());
            assert!(folded.conv1.bias.is_some());
            let got = folded.forward(x);
            let scale = expected.clone().abs().max().into_scalar::<f32>().max(1e-3);
            let diff = (got - expected).abs().max().into_scalar::<f32>();
            assert!(diff <= 1e-4 * scale, "max diff {diff} at scale {scale}");
        }
    }

    #[test]
    fn initialisation_follows_torchvision() {
        let device = device();
        let model = ResNetConfig::resnet50()
            .with_zero_init_residual(true)
            .init(&device)
            .unwrap();
        let Block::Bottleneck(block) = &model.layer2[1] else {
            panic!("bottleneck expected")
        };
        assert_eq!(
            block
                .bn3
                .as_ref()
                .unwrap()
                .gamma
                .val()
                .abs()
                .max()
                .into_scalar::<f32>(),
            0.0
        );
        assert_eq!(
            block
                .bn2
                .as_ref()
                .unwrap()
                .gamma
                .val()
                .min()
                .into_scalar::<f32>(),
            1.0
        );
        assert_eq!(
            block
                .bn2
                .as_ref()
                .unwrap()
                .beta
                .val()
                .abs()
                .max()
                .into_scalar::<f32>(),
            0.0
        );
        // Kaiming normal with PyTorch's fan-out, out * k * k: the stem's std is
        // sqrt(2 / (64 * 7 * 7)) = 0.02525.
        let std = weight_std(model.conv1.weight.val());
        assert!((std - 0.02525).abs() < 0.001, "stem std {std}");
        // Grouped: resnext50_32x4d's first 3x3 is [128, 4, 3, 3]; PyTorch's fan-out ignores the
        // groups, so std = sqrt(2 / (128 * 9)) = 0.04167 (burn's initialiser would give 0.2357).
        let model = ResNetConfig::resnext50_32x4d().init(&device).unwrap();
        let Block::Bottleneck(block) = &model.layer1[0] else {
            panic!("bottleneck expected")
        };
        assert_eq!(block.conv2.weight.dims(), [128, 4, 3, 3]);
        let std = weight_std(block.conv2.weight.val());
        assert!((std - 0.04167).abs() < 0.002, "grouped conv std {std}");
    }

    fn weight_std(w: Tensor<4>) -> f32 {
        let mean = w.clone().mean().into_scalar::<f32>();
        w.sub_scalar(mean)
            .powi_scalar(2)
            .mean()
            .sqrt()
            .into_scalar::<f32>()
    }
}
