//! MNASNet (the B1 variant), as torchvision's `mnasnet0_5`, `mnasnet0_75`, `mnasnet1_0` and
//! `mnasnet1_3` (`torchvision/models/mnasnet.py`): keys, options, BatchNorm momentum
//! (`1 - 0.9997`, PyTorch's convention) and initialisation, and the first version's fixed-width
//! stem that torchvision's `_load_from_state_dict` restores for old weight files.

mod weights;
pub use weights::*;

use std::collections::HashMap;

use crate::layers::TrunkSlot;
use crate::layers::BatchNormConfig;
use burn::config::Config;
use burn::module::Module;
use burn::nn::conv::Conv2dConfig;
use burn::nn::{DropoutConfig, Initializer, LinearConfig};
use burn::tensor::{Device, Tensor};

use crate::architecture::{Architecture, ImportHooks};
use crate::error::{ConfigError, InputSpec};
use crate::family::Family;
use crate::features::Features;
use crate::layers::{
    ImageLayer, VectorLayer, conv_kaiming_fan_out, fold_layers, linear_slot, residual, run_vector_layers,
};

impl Family {
    /// MNASNet ([`crate::mnasnet`]).
    pub const MNASNET: Family = Family::new("mnasnet");
}

/// torchvision's `_BN_MOMENTUM`: TensorFlow's decay 0.9997 in PyTorch's convention.
const BN_MOMENTUM: f64 = 1.0 - 0.9997;

/// Configuration of an [`MnasNet`], torchvision's `MNASNet(alpha, num_classes, dropout)`.
#[derive(Config, Debug)]
pub struct MnasNetConfig {
    /// Depth multiplier of every layer's channels (0.5, 0.75, 1.0, 1.3 for the builders).
    pub alpha: f64,
    /// Output classes.
    #[config(default = 1000)]
    pub num_classes: usize,
    /// Dropout probability before the classifier.
    #[config(default = 0.2)]
    pub dropout: f64,
    /// The first version's stem (32, 32 and 16 channels whatever `alpha`), which weight files
    /// saved with version 1 of torchvision's MNASNet hold. Set by the importer when a file
    /// needs it, as torchvision's `_load_from_state_dict` does; `alpha = 1` is the same either
    /// way.
    #[config(default = false)]
    pub v1_stem: bool,
}

/// torchvision's `_round_to_multiple_of(val, divisor, 0.9)`: round to a multiple of `divisor`,
/// up unless that is no more than 10% above the smaller multiple.
fn round_to_multiple_of(val: f64, divisor: usize) -> usize {
    let new_val = ((val + divisor as f64 / 2.0) as usize / divisor * divisor).max(divisor);
    if new_val as f64 >= 0.9 * val {
        new_val
    } else {
        new_val + divisor
    }
}

/// torchvision's `_get_depths(alpha)`.
pub fn depths(alpha: f64) -> [usize; 8] {
    [32, 16, 24, 40, 80, 96, 192, 320].map(|d| round_to_multiple_of(d as f64 * alpha, 8))
}

/// torchvision's `_InvertedResidual`: 1x1 expansion, depthwise `kernel x kernel`, 1x1
/// projection, each with BatchNorm (ReLU after the first two), plus the input when stride is 1
/// and the channels agree.
#[derive(Module, Debug)]
pub struct MnasBlock {
    /// torchvision's `layers.N`.
    pub layers: Vec<ImageLayer>,
    /// Whether the input is added to the output.
    pub apply_residual: bool,
}

/// One slot of `layers`: a stem layer or a stack of blocks.
// Slots are a few hundred bytes of layer description each, next to megabytes of weights.
#[allow(clippy::large_enum_variant)]
#[derive(Module, Debug)]
pub enum Stage {
    /// Convolution, BatchNorm or ReLU.
    Layer(ImageLayer),
    /// torchvision's `_stack`: blocks `0`, `1`, ...
    Stack(Vec<MnasBlock>),
}

impl TrunkSlot for Stage {
    crate::layers::slot_layer!(Stage::Layer);

    fn chain(&self, channels: usize) -> (usize, usize) {
        match self {
            Stage::Layer(layer) => (layer.stride(), layer.out_channels(channels)),
            Stage::Stack(blocks) => blocks.iter().fold((1, channels), |(s, c), block| {
                let (bs, bc) = ImageLayer::chain(&block.layers, c);
                (s * bs, bc)
            }),
        }
    }

    fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        match self {
            Stage::Layer(layer) => layer.forward(x),
            Stage::Stack(blocks) => blocks.iter().fold(x, |x, block| {
                residual(&block.layers, block.apply_residual, x)
            }),
        }
    }

    /// Plain layers fold as a run across slots (MNASNet's convolution and BatchNorm are
    /// separate slots: see `MnasNet::fold_batchnorm`); a stack folds block by block.
    fn fold_batchnorm(self) -> Self {
        match self {
            Stage::Stack(blocks) => Stage::Stack(
                blocks
                    .into_iter()
                    .map(|block| MnasBlock {
                        layers: fold_layers(block.layers),
                        ..block
                    })
                    .collect(),
            ),
            layer => layer,
        }
    }

    fn can_fold(&self) -> bool {
        match self {
            Stage::Layer(_) => false,
            Stage::Stack(blocks) => blocks.iter().any(|b| ImageLayer::can_fold(&b.layers)),
        }
    }
}

/// MNASNet. Build it with [`MnasNetConfig`].
#[derive(Module, Debug)]
pub struct MnasNet {
    /// Stem, six stacks, the last 1x1 convolution to 1280 channels.
    pub layers: Vec<Stage>,
    /// `Dropout`, `Linear(1280, num_classes)`.
    pub classifier: Vec<VectorLayer>,
    /// Whether this model has the first version's stem.
    pub v1_stem: bool,
    /// The depth multiplier it was built with.
    #[module(skip)]
    pub alpha: f64,
}

/// What MNASNet accepts: 3 channels, any size (torchvision's `min_size` is 1x1).
pub const MNASNET_INPUT: InputSpec = InputSpec {
    channels: 3,
    min_size: [1, 1],
    exact: false,
};

impl MnasNetConfig {
    /// Builds the model, initialised as torchvision does: convolutions
    /// `kaiming_normal_(mode="fan_out")`, BatchNorm ones and zeros, the linear layer
    /// `kaiming_uniform_(mode="fan_out", nonlinearity="sigmoid")` with a zero bias.
    pub fn init(&self, device: &Device) -> Result<MnasNet, ConfigError> {
        ConfigError::positive("mnasnet", "alpha", self.alpha)?;
        ConfigError::probability("mnasnet", "dropout", self.dropout)?;
        ConfigError::nonzero("mnasnet", "num_classes", self.num_classes)?;
        let d = depths(self.alpha);
        let (stem, stem_out) = if self.v1_stem { (32, 16) } else { (d[0], d[1]) };
        let conv = |i, o, k, s, groups| {
            let pad = k / 2;
            ImageLayer::Conv(conv_kaiming_fan_out(
                Conv2dConfig::new([i, o], [k, k])
                    .with_stride([s, s])
                    .with_padding(burn::nn::PaddingConfig2d::Explicit(pad, pad, pad, pad))
                    .with_groups(groups)
                    .with_bias(false),
                device,
            ))
        };
        let bn = |c| {
            ImageLayer::BatchNorm(
                BatchNormConfig::new(c)
                    .with_momentum(BN_MOMENTUM)
                    .init(device),
            )
        };
        let block = |i: usize, o: usize, k: usize, s: usize, t: usize| {
            let mid = i * t;
            MnasBlock {
                layers: vec![
                    conv(i, mid, 1, 1, 1),
                    bn(mid),
                    ImageLayer::relu(),
                    conv(mid, mid, k, s, mid),
                    bn(mid),
                    ImageLayer::relu(),
                    conv(mid, o, 1, 1, 1),
                    bn(o),
                ],
                apply_residual: i == o && s == 1,
            }
        };
        let stack = |i: usize, o: usize, k: usize, s: usize, t: usize, repeats: usize| {
            let mut blocks = vec![block(i, o, k, s, t)];
            blocks.extend((1..repeats).map(|_| block(o, o, k, 1, t)));
            Stage::Stack(blocks)
        };
        let layer = Stage::Layer;
        let layers = vec![
            layer(conv(3, stem, 3, 2, 1)),
            layer(bn(stem)),
            layer(ImageLayer::relu()),
            layer(conv(stem, stem, 3, 1, stem)),
            layer(bn(stem)),
            layer(ImageLayer::relu()),
            layer(conv(stem, stem_out, 1, 1, 1)),
            layer(bn(stem_out)),
            stack(stem_out, d[2], 3, 2, 3, 3),
            stack(d[2], d[3], 5, 2, 3, 3),
            stack(d[3], d[4], 5, 2, 6, 3),
            stack(d[4], d[5], 3, 1, 6, 2),
            stack(d[5], d[6], 5, 2, 6, 4),
            stack(d[6], d[7], 3, 1, 6, 1),
            layer(conv(d[7], 1280, 1, 1, 1)),
            layer(bn(1280)),
            layer(ImageLayer::relu()),
        ];
        let linear = LinearConfig::new(1280, self.num_classes).with_initializer(
            Initializer::KaimingUniform {
                gain: 1.0,
                fan_out_only: true,
            },
        );
        Ok(MnasNet {
            layers,
            classifier: vec![
                VectorLayer::Dropout(DropoutConfig::new(self.dropout).init()),
                linear_slot(linear, true, device),
            ],
            v1_stem: self.v1_stem,
            alpha: self.alpha,
        })
    }
}

impl MnasNet {
    fn dropout(&self) -> f64 {
        self.classifier
            .iter()
            .find_map(|layer| match layer {
                VectorLayer::Dropout(dropout) => Some(dropout.prob),
                _ => None,
            })
            .unwrap_or(0.2)
    }
}

impl Architecture for MnasNet {
    crate::layers::classifier_head!(classifier);
    crate::layers::slot_features!(layers, stem: "layers.0");

    fn family(&self) -> Family {
        Family::MNASNET
    }

    fn input_spec(&self) -> InputSpec {
        InputSpec {
            channels: self.in_chans(),
            ..MNASNET_INPUT
        }
    }

    /// torchvision's `x.mean([2, 3])`, then `classifier`.
    fn forward_head(&self, features: Features, pre_logits: bool) -> Tensor<2> {
        let x = features.expect_map("mnasnet");
        let x = {
            let [b, c, _, _] = x.dims();
            x.mean_dims(&[2, 3]).reshape([b, c])
        };
        if pre_logits {
            return x;
        }
        run_vector_layers(&self.classifier, x)
    }

    fn num_features(&self) -> usize {
        1280
    }

    fn can_fold_batchnorm(&self) -> bool {
        self.layers.windows(2).any(|pair| {
            matches!(
                pair,
                [
                    Stage::Layer(ImageLayer::Conv(_)),
                    Stage::Layer(ImageLayer::BatchNorm(_))
                ]
            )
        })
    }

    fn fold_batchnorm(self) -> Self {
        // Convolution and BatchNorm are separate slots of `layers`: each run of plain layers
        // folds as one sequence (keeping its slots), each stack's blocks on their own.
        let mut layers = Vec::with_capacity(self.layers.len());
        let mut run = Vec::new();
        let flush = |run: &mut Vec<ImageLayer>, layers: &mut Vec<Stage>| {
            layers.extend(
                fold_layers(std::mem::take(run))
                    .into_iter()
                    .map(Stage::Layer),
            );
        };
        for stage in self.layers {
            match stage {
                Stage::Layer(layer) => run.push(layer),
                stack => {
                    flush(&mut run, &mut layers);
                    layers.push(TrunkSlot::fold_batchnorm(stack));
                }
            }
        }
        flush(&mut run, &mut layers);
        Self { layers, ..self }
    }

}

impl ImportHooks for MnasNet {
    fn classifier_prefixes(&self) -> &'static [&'static str] {
        &["classifier.1."]
    }

    /// The whole `classifier` sequence: the pre-logits are the pooled features.
    fn head_prefixes(&self) -> &'static [&'static str] {
        &["classifier."]
    }

    /// Rebuilds the model with the first version's stem when the file's stem convolution
    /// (`layers.0.weight`) has its 32 output channels and this model's does not, as
    /// torchvision's `_load_from_state_dict` does for version-1 files (the published
    /// `mnasnet0_5` weights).
    fn conform_to(
        self,
        shapes: &HashMap<String, Vec<usize>>,
        device: &Device,
    ) -> Result<Self, ConfigError> {
        let file_stem = shapes
            .get("layers.0.weight")
            .and_then(|s| s.first().copied());
        let own_stem = depths(self.alpha)[0];
        if self.v1_stem || self.alpha == 1.0 || file_stem != Some(32) || own_stem == 32 {
            return Ok(self);
        }
        MnasNetConfig::new(self.alpha)
            .with_num_classes(self.num_classes())
            .with_dropout(self.dropout())
            .with_v1_stem(true)
            .init(device)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::device::test_device as device;

    #[test]
    fn depths_are_torchvision_s() {
        assert_eq!(depths(0.5), [16, 8, 16, 24, 40, 48, 96, 160]);
        assert_eq!(depths(1.0), [32, 16, 24, 40, 80, 96, 192, 320]);
        assert_eq!(depths(1.3), [40, 24, 32, 56, 104, 128, 248, 416]);
    }

    #[test]
    fn a_version_1_file_rebuilds_the_stem() {
        let device = device();
        let model = MnasNetConfig::new(0.5).init(&device).unwrap();
        let mut shapes = HashMap::new();
        shapes.insert("layers.0.weight".to_string(), vec![32, 3, 3, 3]);
        let model = model.conform_to(&shapes, &device).unwrap();
        assert!(model.v1_stem);
        let x = Tensor::<4>::zeros([1, 3, 64, 48], &device);
        assert_eq!(model.forward(x).dims(), [1, 1000]);
        // A version-2 file keeps the model.
        shapes.insert("layers.0.weight".to_string(), vec![16, 3, 3, 3]);
        let model = MnasNetConfig::new(0.5).init(&device).unwrap();
        assert!(!model.conform_to(&shapes, &device).unwrap().v1_stem);
    }
}
