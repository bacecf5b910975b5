//! ShuffleNet V2, as torchvision's `shufflenet_v2_x0_5`, `_x1_0`, `_x1_5` and `_x2_0`
//! (`torchvision/models/shufflenetv2.py`): channel split, depthwise convolutions, channel
//! shuffle; torchvision's keys, options and (PyTorch's default) initialisation.

mod weights;
pub use weights::*;

use crate::layers::{BatchNormConfig, max_pool2d};
use burn::config::Config;
use burn::module::Module;
use burn::nn::conv::Conv2dConfig;
use burn::nn::pool::{MaxPool2d, MaxPool2dConfig};
use burn::nn::{Linear, LinearConfig, PaddingConfig2d};
use burn::tensor::{Device, Tensor};

use crate::architecture::{Architecture, ImportHooks};
use crate::error::{ConfigError, InputSpec};
use crate::family::Family;
use crate::features::{FeatureInfo, Features, Taps};
use crate::layers::stem_conv;
use crate::layers::{ImageLayer, fold_layers, run_image_layers};
use crate::tap;
use burn::nn::conv::Conv2d;

impl Family {
    /// ShuffleNet V2 ([`crate::shufflenet_v2`]).
    pub const SHUFFLENET_V2: Family = Family::new("shufflenet_v2");
}

/// Configuration of a [`ShuffleNetV2`], torchvision's `ShuffleNetV2(stages_repeats,
/// stages_out_channels, num_classes)`.
#[derive(Config, Debug)]
pub struct ShuffleNetV2Config {
    /// Blocks in stages 2, 3 and 4.
    pub stages_repeats: [usize; 3],
    /// Channels of the stem, stages 2-4 and the last 1x1 convolution.
    pub stages_out_channels: [usize; 5],
    /// Output classes.
    #[config(default = 1000)]
    pub num_classes: usize,
}

impl ShuffleNetV2Config {
    /// torchvision's `shufflenet_v2_x0_5`.
    pub fn x0_5() -> Self {
        Self::new([4, 8, 4], [24, 48, 96, 192, 1024])
    }

    /// torchvision's `shufflenet_v2_x1_0`.
    pub fn x1_0() -> Self {
        Self::new([4, 8, 4], [24, 116, 232, 464, 1024])
    }

    /// torchvision's `shufflenet_v2_x1_5`.
    pub fn x1_5() -> Self {
        Self::new([4, 8, 4], [24, 176, 352, 704, 1024])
    }

    /// torchvision's `shufflenet_v2_x2_0`.
    pub fn x2_0() -> Self {
        Self::new([4, 8, 4], [24, 244, 488, 976, 2048])
    }

    /// Builds the model with PyTorch's default initialisation (torchvision sets none).
    pub fn init(&self, device: &Device) -> Result<ShuffleNetV2, ConfigError> {
        let model = "shufflenet_v2";
        ConfigError::nonzero(model, "num_classes", self.num_classes)?;
        let smallest = |values: &[usize]| values.iter().copied().min().unwrap_or(0);
        ConfigError::nonzero(model, "stages_repeats", smallest(&self.stages_repeats))?;
        ConfigError::nonzero(
            model,
            "stages_out_channels",
            smallest(&self.stages_out_channels),
        )?;
        if let Some(&odd) = self.stages_out_channels[1..4].iter().find(|&&c| c % 2 != 0) {
            return Err(ConfigError::Invalid {
                model: "shufflenet_v2".into(),
                field: "stages_out_channels",
                value: odd.to_string(),
                expected: "the channels of stages 2-4 must be even (each block splits them in two)",
            });
        }
        let [stem, .., last] = self.stages_out_channels;
        let mut input = stem;
        let mut stages = Vec::new();
        for (&repeats, &output) in self
            .stages_repeats
            .iter()
            .zip(&self.stages_out_channels[1..4])
        {
            let mut stage = vec![ShuffleBlock::new(input, output, 2, device)];
            for _ in 1..repeats {
                stage.push(ShuffleBlock::new(output, output, 1, device));
            }
            stages.push(stage);
            input = output;
        }
        let [stage2, stage3, stage4]: [Vec<ShuffleBlock>; 3] = stages
            .try_into()
            .unwrap_or_else(|_| unreachable!("three stages"));
        Ok(ShuffleNetV2 {
            conv1: vec![
                conv(3, stem, 3, 2, device),
                bn(stem, device),
                ImageLayer::relu(),
            ],
            maxpool: MaxPool2dConfig::new([3, 3])
                .with_strides([2, 2])
                .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
                .init(),
            stage2,
            stage3,
            stage4,
            conv5: vec![
                conv(input, last, 1, 1, device),
                bn(last, device),
                ImageLayer::relu(),
            ],
            fc: Some(LinearConfig::new(last, self.num_classes).init(device)),
        })
    }
}

/// A bias-free `kernel x kernel` convolution, `groups` groups, padding `(kernel - 1) / 2`.
fn conv_with_groups(
    input: usize,
    output: usize,
    kernel: usize,
    stride: usize,
    groups: usize,
    device: &Device,
) -> ImageLayer {
    let pad = (kernel - 1) / 2;
    ImageLayer::Conv(
        Conv2dConfig::new([input, output], [kernel, kernel])
            .with_stride([stride, stride])
            .with_padding(PaddingConfig2d::Explicit(pad, pad, pad, pad))
            .with_groups(groups)
            .with_bias(false)
            .init(device),
    )
}

fn conv(input: usize, output: usize, kernel: usize, stride: usize, d: &Device) -> ImageLayer {
    conv_with_groups(input, output, kernel, stride, 1, d)
}

fn depthwise(channels: usize, stride: usize, device: &Device) -> ImageLayer {
    conv_with_groups(channels, channels, 3, stride, channels, device)
}

fn bn(channels: usize, device: &Device) -> ImageLayer {
    ImageLayer::BatchNorm(BatchNormConfig::new(channels).init(device))
}

/// torchvision's ShuffleNet V2 `InvertedResidual`: with stride 1, half the channels pass
/// through and `branch2` transforms the other half; with stride 2, `branch1` and `branch2` both
/// downsample the whole input. The halves are concatenated and the channels shuffled.
#[derive(Module, Debug)]
pub struct ShuffleBlock {
    /// Stride 2 only: depthwise 3x3, BN, 1x1, BN, ReLU (empty with stride 1).
    pub branch1: Vec<ImageLayer>,
    /// 1x1, BN, ReLU, depthwise 3x3, BN, 1x1, BN, ReLU.
    pub branch2: Vec<ImageLayer>,
    /// 1 or 2.
    pub stride: usize,
}

impl ShuffleBlock {
    fn new(input: usize, output: usize, stride: usize, device: &Device) -> Self {
        let branch = output / 2;
        let branch1 = if stride > 1 {
            vec![
                depthwise(input, stride, device),
                bn(input, device),
                conv(input, branch, 1, 1, device),
                bn(branch, device),
                ImageLayer::relu(),
            ]
        } else {
            Vec::new()
        };
        let branch2_input = if stride > 1 { input } else { branch };
        Self {
            branch1,
            branch2: vec![
                conv(branch2_input, branch, 1, 1, device),
                bn(branch, device),
                ImageLayer::relu(),
                depthwise(branch, stride, device),
                bn(branch, device),
                conv(branch, branch, 1, 1, device),
                bn(branch, device),
                ImageLayer::relu(),
            ],
            stride,
        }
    }

    /// # Shapes
    /// - input: `[batch, input, height, width]`
    /// - output: `[batch, output, height / stride, width / stride]` (rounded up)
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let out = if self.stride == 1 {
            let channels = x.dims()[1];
            let half = channels / 2;
            let x1 = x.clone().narrow(1, 0, half);
            let x2 = x.narrow(1, half, channels - half);
            Tensor::cat(vec![x1, run_image_layers(&self.branch2, x2)], 1)
        } else {
            Tensor::cat(
                vec![
                    run_image_layers(&self.branch1, x.clone()),
                    run_image_layers(&self.branch2, x),
                ],
                1,
            )
        };
        channel_shuffle(out, 2)
    }

    fn fold_batchnorm(self) -> Self {
        Self {
            branch1: fold_layers(self.branch1),
            branch2: fold_layers(self.branch2),
            ..self
        }
    }
}

/// torchvision's `channel_shuffle`: `[b, g * c, h, w]` viewed as `[b, g, c, h, w]`, groups and
/// channels transposed, flattened back.
pub fn channel_shuffle(x: Tensor<4>, groups: usize) -> Tensor<4> {
    let [b, channels, h, w] = x.dims();
    x.reshape([b, groups, channels / groups, h, w])
        .swap_dims(1, 2)
        .reshape([b, channels, h, w])
}

/// ShuffleNet V2. Build it with [`ShuffleNetV2Config`].
#[derive(Module, Debug)]
pub struct ShuffleNetV2 {
    /// Stem: 3x3 stride-2 convolution, BN, ReLU.
    pub conv1: Vec<ImageLayer>,
    /// 3x3 stride-2 max-pool, padding 1.
    pub maxpool: MaxPool2d,
    /// Stage 2.
    pub stage2: Vec<ShuffleBlock>,
    /// Stage 3.
    pub stage3: Vec<ShuffleBlock>,
    /// Stage 4.
    pub stage4: Vec<ShuffleBlock>,
    /// Last 1x1 convolution, BN, ReLU.
    pub conv5: Vec<ImageLayer>,
    /// Classifier.
    pub fc: Option<Linear>,
}

/// What ShuffleNet V2 accepts: 3 channels, any size (torchvision's `min_size` is 1x1).
pub const SHUFFLENET_V2_INPUT: InputSpec = InputSpec {
    channels: 3,
    min_size: [1, 1],
    exact: false,
};

impl ShuffleNetV2 {
    /// The unpooled features (`conv5`'s output), tapping the stages of
    /// [`Architecture::feature_info`].
    fn trunk(&self, x: Tensor<4>, taps: &mut Taps) -> Option<Tensor<4>> {
        let x = run_image_layers(&self.conv1, x);
        tap!(taps, 0, x.clone());
        let mut x = max_pool2d(&self.maxpool, x);
        tap!(taps, 1, x.clone());
        for (i, stage) in [&self.stage2, &self.stage3, &self.stage4]
            .into_iter()
            .enumerate()
        {
            for block in stage {
                x = block.forward(x);
            }
            tap!(taps, i + 2, x.clone());
        }
        let x = run_image_layers(&self.conv5, x);
        tap!(taps, 5, x.clone());
        Some(x)
    }
}

impl Architecture for ShuffleNetV2 {
    crate::layers::classifier_head!(fc);

    fn family(&self) -> Family {
        Family::SHUFFLENET_V2
    }

    fn input_spec(&self) -> InputSpec {
        InputSpec {
            channels: self.in_chans(),
            ..SHUFFLENET_V2_INPUT
        }
    }

    fn input_conv(&self) -> (&'static str, &Conv2d) {
        (
            "conv1.0",
            stem_conv(self.conv1.first().and_then(ImageLayer::first_conv)),
        )
    }

    fn input_conv_mut(&mut self) -> &mut Conv2d {
        stem_conv(self.conv1.first_mut().and_then(ImageLayer::first_conv_mut))
    }

    /// `conv1`, `maxpool`, `stage2` to `stage4` and `conv5`; reductions 2, 4, 8, 16, 32, 32.
    fn feature_info(&self) -> Vec<FeatureInfo> {
        let (_, stem) = ImageLayer::chain(&self.conv1, 3);
        let stage = |blocks: &[ShuffleBlock]| {
            blocks
                .last()
                .map_or(0, |block| 2 * ImageLayer::chain(&block.branch2, 0).1)
        };
        let stage4 = stage(&self.stage4);
        vec![
            FeatureInfo::new("conv1", stem, 2),
            FeatureInfo::new("maxpool", stem, 4),
            FeatureInfo::new("stage2", stage(&self.stage2), 8),
            FeatureInfo::new("stage3", stage(&self.stage3), 16),
            FeatureInfo::new("stage4", stage4, 32),
            FeatureInfo::new("conv5", ImageLayer::chain(&self.conv5, stage4).1, 32),
        ]
    }

    fn forward_features_tapped(&self, x: Tensor<4>, taps: &mut Taps) -> Option<Features> {
        self.trunk(x, taps).map(Features::Map)
    }

    /// torchvision's `x.mean([2, 3])`, then `fc`.
    fn forward_head(&self, features: Features, pre_logits: bool) -> Tensor<2> {
        let x = features.expect_map("shufflenet_v2");
        let x = crate::layers::adaptive_avg_pool2d_with(x, [1, 1]).flatten(1, 3);
        if pre_logits {
            return x;
        }
        crate::layers::ClassifierHead::classify(&self.fc, x)
    }

    fn num_features(&self) -> usize {
        self.feature_info().last().map_or(0, |f| f.channels)
    }

    fn can_fold_batchnorm(&self) -> bool {
        ImageLayer::can_fold(&self.conv1)
    }

    fn fold_batchnorm(self) -> Self {
        let stage = |blocks: Vec<ShuffleBlock>| {
            blocks
                .into_iter()
                .map(ShuffleBlock::fold_batchnorm)
                .collect()
        };
        Self {
            conv1: fold_layers(self.conv1),
            stage2: stage(self.stage2),
            stage3: stage(self.stage3),
            stage4: stage(self.stage4),
            conv5: fold_layers(self.conv5),
            ..self
        }
    }
}

impl ImportHooks for ShuffleNetV2 {
    fn classifier_prefixes(&self) -> &'static [&'static str] {
        &["fc."]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::device::test_device as device;

    #[test]
    fn channel_shuffle_interleaves_the_halves() {
        let device = device();
        let x =
            Tensor::<1>::from_floats([0.0, 1.0, 2.0, 3.0, 4.0, 5.0], &device).reshape([1, 6, 1, 1]);
        let y = channel_shuffle(x, 2)
            .into_data()
            .try_to_vec::<f32>()
            .unwrap();
        assert_eq!(y, [0.0, 3.0, 1.0, 4.0, 2.0, 5.0]);
    }

    #[test]
    fn shapes_for_several_sizes() {
        let device = device();
        let model = ShuffleNetV2Config::x0_5()
            .with_num_classes(4)
            .init(&device)
            .unwrap();
        for [h, w] in [[224, 224], [45, 31], [1, 1]] {
            let x = Tensor::<4>::zeros([2, 3, h, w], &device);
            assert_eq!(model.forward(x).dims(), [2, 4]);
        }
        assert!(
            ShuffleNetV2Config::new([4, 8, 4], [24, 47, 96, 192, 1024])
                .init(&device)
                .is_err()
        );
    }
}
