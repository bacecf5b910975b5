//! MaxViT-T, as torchvision's `maxvit_t` (`torchvision/models/maxvit.py`): the same stem, MBConv
//! blocks with squeeze-excitation, block (window) and grid attention with a relative position
//! bias, the head of LayerNorm, `Linear`, Tanh and `Linear`, BatchNorm settings (eps 1e-3,
//! momentum 0.01), stochastic depth, state_dict keys
//! (`blocks.0.layers.0.layers.MBconv.layers.conv_a.0.weight`) and initialisation.
//!
//! Tu et al., *MaxViT: Multi-Axis Vision Transformer* (ECCV 2022). Each layer is an MBConv,
//! attention within 7x7 windows, then attention over a 7x7 grid spread across the whole map.
//!
//! The attention grids are sized at construction for one input size: 224x224 by default, as
//! torchvision; any size whose every block input divides into 7x7 partitions (448, ...) is
//! [`MaxVitConfig::input_size`] or [`Architecture::for_input_size`] away, with the same weights.
//!
//! ```no_run
//! use model_zoo::Architecture;
//! use model_zoo::maxvit::MaxVitConfig;
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let device = model_zoo::Backend::Flex.device()?;
//! let model = MaxVitConfig::new().init(&device)?;
//! let logits = model.forward(burn::tensor::Tensor::zeros([1, 3, 224, 224], &device));
//! assert_eq!(logits.dims(), [1, 1000]);
//! # Ok(()) }
//! ```

mod weights;
pub use weights::*;

use crate::layers::conv2d;
use crate::layers::{BatchNorm, BatchNormConfig};
use burn::config::Config;
use burn::module::{Module, Param};
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::pool::AvgPool2dConfig;
use burn::nn::{
    Dropout, DropoutConfig, Identity, Initializer, LayerNorm, Linear, LinearConfig, PaddingConfig2d,
};
use burn::tensor::activation::softmax;
use burn::tensor::{Device, Tensor};

use crate::architecture::{Architecture, DerivedBuffer, ImportHooks};
use crate::error::{ConfigError, InputSpec};
use crate::family::Family;
use crate::features::{FeatureInfo, Features, Taps};
use crate::layers::stem_conv;
use crate::layers::{
    ActivationKind, Conv2dNormActivation, ImageLayer, SqueezeExcitation, StochasticDepth,
    VectorLayer, attention_kernel, fold_one, kernels_take, layer_norm, layer_norm_last, linear_last, merge_heads, relative_position_bias,
    relative_position_index, run_image_layers, split_heads,
    zero_bias,
};
use crate::tap;

impl Family {
    /// MaxViT ([`crate::maxvit`]).
    pub const MAXVIT: Family = Family::new("maxvit");
}

/// `maxvit_t`'s stem width, block widths and depths, head width and partition side.
/// BatchNorm `(eps, momentum)`.
const BN: (f64, f64) = (1e-3, 0.01);

/// torchvision's initialisation of MaxViT's convolutions: `normal_(std=0.02)`, zero bias.
const CONV_INIT: Initializer = Initializer::Normal {
    mean: 0.0,
    std: 0.02,
};

fn conv(config: Conv2dConfig, device: &Device) -> Conv2d {
    let conv = config.with_initializer(CONV_INIT).init(device);
    Conv2d {
        bias: zero_bias(conv.bias, device),
        ..conv
    }
}

/// `(h - 1) / 2 + 1`: a 3x3 stride-2 convolution's output side (torchvision's
/// `_get_conv_output_shape` with padding 1).
fn halve(side: usize) -> usize {
    side.saturating_sub(1) / 2 + 1
}

/// The attention grid of each block for `input` (torchvision's `_make_block_input_shapes`).
fn block_grids(input: [usize; 2], blocks: usize) -> Vec<[usize; 2]> {
    let mut size = input.map(halve);
    (0..blocks)
        .map(|_| {
            size = size.map(halve);
            size
        })
        .collect()
}

/// Configuration of a [`MaxVit`]: torchvision's `MaxVit` arguments, each `maxvit_t`'s by
/// default (`MaxVitConfig::new()` is `maxvit_t`), so that any depth and width builds.
///
/// torchvision's `attention_dropout` is not offered: `maxvit_t` and its weights use 0.
#[derive(Config, Debug)]
pub struct MaxVitConfig {
    /// Channels of the stem.
    #[config(default = 64)]
    pub stem_channels: usize,
    /// Channels of each block (`[64, 128, 256, 512]`); each block's first layer has stride 2.
    #[config(default = "vec![64, 128, 256, 512]")]
    pub block_channels: Vec<usize>,
    /// Layers of each block (`[2, 2, 5, 2]`).
    #[config(default = "vec![2, 2, 5, 2]")]
    pub block_layers: Vec<usize>,
    /// Width of each attention head (32); it divides every block's channels.
    #[config(default = 32)]
    pub head_dim: usize,
    /// Side of the attention windows and of the grid (7).
    #[config(default = 7)]
    pub partition_size: usize,
    /// Expansion of each MBConv's hidden channels (4).
    #[config(default = 4.0)]
    pub expansion_ratio: f64,
    /// Width of each MBConv's squeeze-excitation, over its output channels (0.25).
    #[config(default = 0.25)]
    pub squeeze_ratio: f64,
    /// Width of each attention layer's MLP over its channels (4).
    #[config(default = 4)]
    pub mlp_ratio: usize,
    /// Output classes.
    #[config(default = 1000)]
    pub num_classes: usize,
    /// The one `[height, width]` the model takes: every block's input must divide into 7x7
    /// partitions.
    #[config(default = "[224, 224]")]
    pub input_size: [usize; 2],
    /// Stochastic depth of the last layer; layer `i` of `n` gets `i / (n - 1)` of it.
    #[config(default = 0.2)]
    pub stochastic_depth_prob: f64,
    /// Dropout after each MLP.
    #[config(default = 0.0)]
    pub mlp_dropout: f64,
}

/// That every block of a MaxViT for `input` divides into partitions.
fn check_input_size(
    name: &str,
    input: [usize; 2],
    blocks: usize,
    partition: usize,
) -> Result<Vec<[usize; 2]>, ConfigError> {
    let grids = block_grids(input, blocks);
    let fits = grids
        .iter()
        .all(|g| g.iter().all(|&s| s > 0 && s.is_multiple_of(partition)));
    ConfigError::check(
        fits,
        name,
        "input_size",
        input[0].max(input[1]) as f64,
        "each block's input must be a multiple of the partition size on both sides (224 or \
         448 for maxvit_t, for instance)",
    )?;
    Ok(grids)
}

impl MaxVitConfig {
    /// torchvision's `maxvit_t`.
    pub fn maxvit_t() -> Self {
        Self::new()
    }

    /// `maxvit_t` for `maxvit_t`'s shape (input size, classes and rates aside), else `maxvit`.
    pub fn name(&self) -> &'static str {
        let t = Self::new();
        let same = (t.stem_channels, &t.block_channels, &t.block_layers)
            == (self.stem_channels, &self.block_channels, &self.block_layers)
            && (t.head_dim, t.partition_size, t.mlp_ratio)
                == (self.head_dim, self.partition_size, self.mlp_ratio)
            && (t.expansion_ratio, t.squeeze_ratio) == (self.expansion_ratio, self.squeeze_ratio);
        if same { "maxvit_t" } else { "maxvit" }
    }

    /// Builds the model, initialised as torchvision does: convolutions `normal_(std=0.02)`
    /// with zero biases, BatchNorm ones and zeros, `Linear`s and LayerNorms PyTorch's defaults,
    /// bias tables `trunc_normal_(std=0.02)` (truncated at ±2, a plain normal in practice).
    pub fn init(&self, device: &Device) -> Result<MaxVit, ConfigError> {
        let name = self.name();
        ConfigError::nonzero(name, "num_classes", self.num_classes)?;
        for (field, value) in [
            ("stem_channels", self.stem_channels),
            ("head_dim", self.head_dim),
            ("partition_size", self.partition_size),
            ("mlp_ratio", self.mlp_ratio),
        ] {
            ConfigError::nonzero(name, field, value)?;
        }
        let (channels, depths) = (&self.block_channels, &self.block_layers);
        ConfigError::check(
            !channels.is_empty() && channels.len() == depths.len() && !depths.contains(&0),
            name,
            "block_layers",
            depths.len() as f64,
            "one positive layer count per block, as many as block_channels, at least one",
        )?;
        for &c in channels {
            ConfigError::check(
                c > 0 && c.is_multiple_of(self.head_dim),
                name,
                "block_channels",
                c as f64,
                "each must be a positive multiple of head_dim",
            )?;
        }
        let mid = |out: usize| (out as f64 * self.expansion_ratio) as usize;
        let squeeze = |out: usize| (out as f64 * self.squeeze_ratio) as usize;
        ConfigError::check(
            channels.iter().all(|&c| mid(c) > 0 && squeeze(c) > 0),
            name,
            "expansion_ratio",
            self.expansion_ratio,
            "the expansion and squeeze ratios must leave every MBConv a channel",
        )?;
        ConfigError::probability(name, "stochastic_depth_prob", self.stochastic_depth_prob)?;
        ConfigError::probability(name, "mlp_dropout", self.mlp_dropout)?;
        let grids = check_input_size(name, self.input_size, channels.len(), self.partition_size)?;
        let stem_channels = self.stem_channels;
        let stem = vec![
            Conv2dNormActivation::new(3, stem_channels, 3)
                .stride(2)
                .norm(BN.0, BN.1)
                .activation(Some(ActivationKind::Gelu))
                .init_with(CONV_INIT, device),
            ImageLayer::Sequential(vec![ImageLayer::Conv(conv(
                Conv2dConfig::new([stem_channels, stem_channels], [3, 3])
                    .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1)),
                device,
            ))]),
        ];
        let total: usize = depths.iter().sum();
        // numpy's linspace(0, p, total).
        let p = |i: usize| self.stochastic_depth_prob * i as f64 / (total as f64 - 1.0);
        let mut layer_id = 0;
        let mut in_channels = stem_channels;
        let blocks = (0..channels.len())
            .map(|b| {
                let out = channels[b];
                let layers = (0..depths[b])
                    .map(|i| {
                        let sd = p(layer_id);
                        layer_id += 1;
                        let input = if i == 0 { in_channels } else { out };
                        let stride = if i == 0 { 2 } else { 1 };
                        let shape = LayerShape {
                            input,
                            out,
                            stride,
                            mid: mid(out),
                            squeeze: squeeze(out),
                            head_dim: self.head_dim,
                            partition: self.partition_size,
                            mlp: self.mlp_ratio * out,
                        };
                        MaxVitLayer::new(shape, sd, self.mlp_dropout, grids[b], device)
                    })
                    .collect();
                in_channels = out;
                MaxVitBlock { layers }
            })
            .collect();
        let last = channels[channels.len() - 1];
        Ok(MaxVit {
            stem,
            blocks,
            classifier: vec![
                VectorLayer::Identity(Identity),
                VectorLayer::Identity(Identity),
                VectorLayer::LayerNorm(layer_norm(last, 1e-5, device)),
                VectorLayer::Linear(LinearConfig::new(last, last).init(device)),
                VectorLayer::Activation(ActivationKind::Tanh.init()),
                VectorLayer::Linear(
                    LinearConfig::new(last, self.num_classes)
                        .with_bias(false)
                        .init(device),
                ),
            ],
            input_size: self.input_size,
            partition_size: self.partition_size,
            num_features: last,
            name,
        })
    }
}

/// One MaxViT layer's widths: input and output channels, the first convolution's stride, the
/// MBConv's hidden and squeeze widths, the attention's head width and partition side, the MLP's
/// hidden width.
#[derive(Clone, Copy)]
struct LayerShape {
    input: usize,
    out: usize,
    stride: usize,
    mid: usize,
    squeeze: usize,
    head_dim: usize,
    partition: usize,
    mlp: usize,
}

/// torchvision's MaxViT `MBConv`: `proj(x) + stochastic_depth(layers(x))`.
#[derive(Module, Debug)]
pub struct MbConv {
    /// The shortcut: average pool (stride 2) and a 1x1 convolution where the shape changes
    /// (`proj.1`), nothing otherwise.
    pub proj: Vec<ImageLayer>,
    /// Drops the branch per sample in training.
    pub stochastic_depth: StochasticDepth,
    /// The branch.
    pub layers: MbConvLayers,
}

/// The branch of an [`MbConv`].
#[derive(Module, Debug)]
pub struct MbConvLayers {
    /// BatchNorm of the input.
    pub pre_norm: BatchNorm,
    /// 1x1 expansion to 4x, BatchNorm, GELU.
    pub conv_a: ImageLayer,
    /// 3x3 depthwise convolution (the stride), BatchNorm, GELU.
    pub conv_b: ImageLayer,
    /// Squeeze-excitation to a quarter of the output width, SiLU and sigmoid.
    pub squeeze_excitation: SqueezeExcitation,
    /// 1x1 projection, with a bias.
    pub conv_c: Conv2d,
}

impl MbConv {
    fn new(shape: LayerShape, sd: f64, device: &Device) -> Self {
        let LayerShape {
            input,
            out,
            stride,
            mid,
            squeeze,
            ..
        } = shape;
        let mut proj = Vec::new();
        if stride != 1 || input != out {
            if stride == 2 {
                proj.push(ImageLayer::AvgPool(
                    AvgPool2dConfig::new([3, 3])
                        .with_strides([2, 2])
                        .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
                        .init(),
                ));
            }
            proj.push(ImageLayer::Conv(conv(
                Conv2dConfig::new([input, out], [1, 1]),
                device,
            )));
        }
        let cna = |i, o, k| {
            Conv2dNormActivation::new(i, o, k)
                .norm(BN.0, BN.1)
                .activation(Some(ActivationKind::Gelu))
        };
        let se_conv = |from, to| conv(Conv2dConfig::new([from, to], [1, 1]), device);
        Self {
            proj,
            stochastic_depth: StochasticDepth::new(sd),
            layers: MbConvLayers {
                pre_norm: BatchNormConfig::new(input)
                    .with_epsilon(BN.0)
                    .with_momentum(BN.1)
                    .init(device),
                conv_a: cna(input, mid, 1).init_with(CONV_INIT, device),
                conv_b: cna(mid, mid, 3)
                    .stride(stride)
                    .depthwise()
                    .init_with(CONV_INIT, device),
                squeeze_excitation: SqueezeExcitation {
                    fc1: se_conv(mid, squeeze),
                    fc2: se_conv(squeeze, mid),
                    activation: ActivationKind::Silu.init(),
                    scale_activation: ActivationKind::Sigmoid.init(),
                },
                conv_c: conv(Conv2dConfig::new([mid, out], [1, 1]), device),
            },
        }
    }

    /// # Shapes
    /// - input: `[batch, in, height, width]`
    /// - output: `[batch, out, height / stride, width / stride]`
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let l = &self.layers;
        let shortcut = if self.proj.is_empty() {
            x.clone()
        } else {
            run_image_layers(&self.proj, x.clone())
        };
        let y = l.pre_norm.forward(x);
        let y = l.conv_b.forward(l.conv_a.forward(y));
        let y = conv2d(&l.conv_c, l.squeeze_excitation.forward(y));
        shortcut + self.stochastic_depth.forward(y)
    }
}

/// torchvision's `RelativePositionalMultiHeadAttention` over the partitions of a map.
#[derive(Module, Debug)]
pub struct RelativeAttention {
    /// Query, key and value: `Linear(C, 3C)`.
    pub to_qkv: Linear,
    /// Output projection.
    pub merge: Linear,
    /// `[(2 * 7 - 1)^2, heads]`.
    pub relative_position_bias_table: Param<Tensor<2>>,
    /// Attention heads (`C / 32`).
    pub num_heads: usize,
}

impl RelativeAttention {
    /// # Shapes
    /// - input and output: `[batch, groups, 49, channels]`, attention within each group
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let [b, g, p, d] = x.dims();
        let heads = self.num_heads;
        let qkv = linear_last(&self.to_qkv, x).reshape([b * g, p, 3 * d]);
        // p tokens a group: a partition of side sqrt(p).
        let side = (p as f64).sqrt().round() as usize;
        let bias = relative_position_bias(self.relative_position_bias_table.val(), side);
        // torchvision scales the keys by the feature width's root, not the head width's.
        let scale = (d as f64).powf(-0.5);
        let kernel_bias = kernels_take(&qkv).then(|| bias.clone().reshape([heads, p, p]));
        let out = match attention_kernel(qkv, heads, scale, None, kernel_bias.as_ref(), None) {
            Ok(out) => out,
            Err(qkv) => {
                let [q, k, v] = split_heads(qkv, heads);
                let scores = q.matmul((k * scale).swap_dims(2, 3)) + bias;
                merge_heads(softmax(scores, 3).matmul(v))
            }
        };
        linear_last(&self.merge, out.reshape([b, g, p, d]))
    }
}

/// One slot of a partition attention's `attn_layer` sequence.
// Three slots a layer, next to megabytes of weights.
#[allow(clippy::large_enum_variant)]
#[derive(Module, Debug)]
pub enum AttentionSlot {
    /// LayerNorm (`attn_layer.0`).
    Norm(LayerNorm),
    /// The attention (`attn_layer.1`).
    Attention(RelativeAttention),
    /// Dropout (`attn_layer.2`, 0 in every builder).
    Dropout(Dropout),
}

/// torchvision's `PartitionAttentionLayer`: the map cut into 7x7 windows (block attention) or
/// a 7x7 grid strided across it (grid attention), pre-norm attention and MLP within each.
#[derive(Module, Debug)]
pub struct PartitionAttention {
    /// LayerNorm, attention, dropout.
    pub attn_layer: Vec<AttentionSlot>,
    /// LayerNorm, `Linear` to 4x, GELU, `Linear` back, dropout.
    pub mlp_layer: Vec<ImageLayer>,
    /// Drops each branch per sample in training.
    pub stochastic_dropout: StochasticDepth,
    /// Grid attention (else window attention).
    pub grid: bool,
    /// The `[height, width]` of the map this layer sees.
    pub grid_size: [usize; 2],
    /// Side of the windows and of the grid (7).
    pub partition_size: usize,
}

impl PartitionAttention {
    fn new(
        shape: LayerShape,
        grid: bool,
        grid_size: [usize; 2],
        sd: f64,
        dropout: f64,
        device: &Device,
    ) -> Self {
        let (dim, partition, heads) = (shape.out, shape.partition, shape.out / shape.head_dim);
        Self {
            attn_layer: vec![
                AttentionSlot::Norm(layer_norm(dim, 1e-5, device)),
                AttentionSlot::Attention(RelativeAttention {
                    to_qkv: LinearConfig::new(dim, 3 * dim).init(device),
                    merge: LinearConfig::new(dim, dim).init(device),
                    relative_position_bias_table: Initializer::Normal {
                        mean: 0.0,
                        std: 0.02,
                    }
                    .init([(2 * partition - 1).pow(2), heads], device),
                    num_heads: heads,
                }),
                AttentionSlot::Dropout(DropoutConfig::new(0.0).init()),
            ],
            mlp_layer: vec![
                ImageLayer::LayerNorm(layer_norm(dim, 1e-5, device)),
                ImageLayer::Linear(LinearConfig::new(dim, shape.mlp).init(device)),
                ImageLayer::Activation(ActivationKind::Gelu.init()),
                ImageLayer::Linear(LinearConfig::new(shape.mlp, dim).init(device)),
                ImageLayer::Dropout(DropoutConfig::new(dropout).init()),
            ],
            stochastic_dropout: StochasticDepth::new(sd),
            grid,
            grid_size,
            partition_size: partition,
        }
    }

    /// The side of the partitions `WindowPartition` cuts: 7 for windows, the map's side over
    /// 7 for the grid (whose groups are then swapped with the positions).
    fn partition_side(&self) -> usize {
        if self.grid {
            self.grid_size[0] / self.partition_size
        } else {
            self.partition_size
        }
    }

    /// # Shapes
    /// - input and output: `[batch, channels, grid_size[0], grid_size[1]]`
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let [b, c, h, w] = x.dims();
        let p = self.partition_side();
        let (gh, gw) = (h / p, w / p);
        // WindowPartition: [B, C, H, W] -> [B, (H/p)(W/p), p*p, C].
        let x = x
            .reshape([b, c, gh, p, gw, p])
            .permute([0, 2, 4, 3, 5, 1])
            .reshape([b, gh * gw, p * p, c]);
        let x = if self.grid { x.swap_dims(1, 2) } else { x };
        let attn = self
            .attn_layer
            .iter()
            .fold(x.clone(), |y, slot| match slot {
                AttentionSlot::Norm(norm) => layer_norm_last(norm, y),
                AttentionSlot::Attention(attention) => attention.forward(y),
                AttentionSlot::Dropout(dropout) => dropout.forward(y),
            });
        let x = x + self.stochastic_dropout.forward(attn);
        let x = x.clone()
            + self
                .stochastic_dropout
                .forward(run_image_layers(&self.mlp_layer, x));
        let x = if self.grid { x.swap_dims(1, 2) } else { x };
        // WindowDepartition.
        x.reshape([b, gh, gw, p, p, c])
            .permute([0, 5, 1, 3, 2, 4])
            .reshape([b, c, h, w])
    }
}

mod parts {
    // The field names are state_dict keys, `MBconv` as torchvision spells it; the lint would
    // also fire inside the code `derive(Module)` generates, so it is allowed for the module.
    #![allow(non_snake_case)]

    use super::{MbConv, PartitionAttention};
    use burn::module::Module;

    /// The three parts of a [`super::MaxVitLayer`], named as torchvision's `nn.Sequential` of
    /// an `OrderedDict` names them.
    #[derive(Module, Debug)]
    pub struct MaxVitLayerParts {
        /// The MBConv.
        pub MBconv: MbConv,
        /// Block attention.
        pub window_attention: PartitionAttention,
        /// Grid attention.
        pub grid_attention: PartitionAttention,
    }
}
pub use parts::MaxVitLayerParts;

/// torchvision's `MaxVitLayer`.
#[derive(Module, Debug)]
pub struct MaxVitLayer {
    /// MBConv, window attention, grid attention.
    pub layers: MaxVitLayerParts,
}

impl MaxVitLayer {
    fn new(
        shape: LayerShape,
        sd: f64,
        dropout: f64,
        grid_size: [usize; 2],
        device: &Device,
    ) -> Self {
        Self {
            layers: MaxVitLayerParts {
                MBconv: MbConv::new(shape, sd, device),
                window_attention: PartitionAttention::new(
                    shape, false, grid_size, sd, dropout, device,
                ),
                grid_attention: PartitionAttention::new(shape, true, grid_size, sd, dropout, device),
            },
        }
    }

    fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let l = &self.layers;
        l.grid_attention
            .forward(l.window_attention.forward(l.MBconv.forward(x)))
    }
}

/// torchvision's `MaxVitBlock`: layers of one width, the first with stride 2.
#[derive(Module, Debug)]
pub struct MaxVitBlock {
    /// The layers.
    pub layers: Vec<MaxVitLayer>,
}

/// MaxViT. Build it with [`MaxVitConfig`].
#[derive(Module, Debug)]
pub struct MaxVit {
    /// 3x3 stride-2 convolution, BatchNorm, GELU; 3x3 convolution with a bias.
    pub stem: Vec<ImageLayer>,
    /// Four blocks.
    pub blocks: Vec<MaxVitBlock>,
    /// Average pool and flatten (parameter-free slots), LayerNorm, `Linear`, Tanh, `Linear`.
    pub classifier: Vec<VectorLayer>,
    /// The one `[height, width]` the model takes.
    pub input_size: [usize; 2],
    /// Side of the attention windows and grid.
    pub partition_size: usize,
    /// Channels of the last block.
    pub num_features: usize,
    /// `maxvit_t`, or `maxvit` for another shape.
    #[module(skip)]
    pub name: &'static str,
}

/// The classifier's slots before its last `Linear`.
const HEAD: usize = 5;

impl MaxVit {
    /// The unpooled features (`blocks.3`'s output), tapping the stages of
    /// [`Architecture::feature_info`].
    fn trunk(&self, x: Tensor<4>, taps: &mut Taps) -> Option<Tensor<4>> {
        let mut x = run_image_layers(&self.stem, x);
        tap!(taps, 0, x.clone());
        for (i, block) in self.blocks.iter().enumerate() {
            x = block.layers.iter().fold(x, |x, layer| layer.forward(x));
            tap!(taps, i + 1, x.clone());
        }
        Some(x)
    }

    fn attention_layers(&self) -> impl Iterator<Item = (String, &PartitionAttention)> {
        self.blocks.iter().enumerate().flat_map(|(b, block)| {
            block.layers.iter().enumerate().flat_map(move |(l, layer)| {
                let prefix = format!("blocks.{b}.layers.{l}.layers");
                [
                    (
                        format!("{prefix}.window_attention"),
                        &layer.layers.window_attention,
                    ),
                    (
                        format!("{prefix}.grid_attention"),
                        &layer.layers.grid_attention,
                    ),
                ]
            })
        })
    }
}

impl Architecture for MaxVit {
    crate::layers::classifier_head!(classifier, keep: HEAD, pool);

    fn family(&self) -> Family {
        Family::MAXVIT
    }

    /// Exactly `input_size`.
    fn input_spec(&self) -> InputSpec {
        InputSpec {
            channels: self.in_chans(),
            min_size: self.input_size,
            exact: true,
        }
    }

    fn display_name(&self) -> &str {
        self.name
    }

    fn input_conv(&self) -> (&'static str, &Conv2d) {
        (
            "stem.0.0",
            stem_conv(self.stem.first().and_then(ImageLayer::first_conv)),
        )
    }

    fn input_conv_mut(&mut self) -> &mut Conv2d {
        stem_conv(self.stem.first_mut().and_then(ImageLayer::first_conv_mut))
    }

    /// `stem`, then `blocks.0` to `blocks.3`; reductions 2 to 32.
    fn feature_info(&self) -> Vec<FeatureInfo> {
        let (mut reduction, stem) = ImageLayer::chain(&self.stem, 3);
        let mut info = vec![FeatureInfo::new("stem", stem, reduction)];
        for (i, block) in self.blocks.iter().enumerate() {
            fn mbconv(layer: &MaxVitLayer) -> &MbConvLayers {
                &layer.layers.MBconv.layers
            }
            reduction *= block
                .layers
                .first()
                .map_or(1, |l| mbconv(l).conv_b.stride());
            let channels = block
                .layers
                .last()
                .map_or(0, |l| mbconv(l).conv_c.weight.lazy_shape().dims::<4>()[0]);
            info.push(FeatureInfo::new(format!("blocks.{i}"), channels, reduction));
        }
        info
    }

    fn forward_features_tapped(&self, x: Tensor<4>, taps: &mut Taps) -> Option<Features> {
        self.trunk(x, taps).map(Features::Map)
    }

    fn for_input_size(mut self, size: [usize; 2]) -> Result<Self, ConfigError> {
        let grids = check_input_size(self.name, size, self.blocks.len(), self.partition_size)?;
        for (block, grid) in self.blocks.iter_mut().zip(grids) {
            for layer in &mut block.layers {
                layer.layers.window_attention.grid_size = grid;
                layer.layers.grid_attention.grid_size = grid;
            }
        }
        self.input_size = size;
        Ok(self)
    }

    fn num_features(&self) -> usize {
        self.num_features
    }

    /// The stem's and each MBConv's `conv_a` and `conv_b` BatchNorms (the `pre_norm`
    /// precedes its convolution and stays).
    fn can_fold_batchnorm(&self) -> bool {
        ImageLayer::can_fold(&self.stem)
    }

    fn fold_batchnorm(self) -> Self {
        let blocks = self
            .blocks
            .into_iter()
            .map(|block| MaxVitBlock {
                layers: block
                    .layers
                    .into_iter()
                    .map(|layer| {
                        let parts = layer.layers;
                        let mb = parts.MBconv;
                        MaxVitLayer {
                            layers: MaxVitLayerParts {
                                MBconv: MbConv {
                                    layers: MbConvLayers {
                                        conv_a: fold_one(mb.layers.conv_a),
                                        conv_b: fold_one(mb.layers.conv_b),
                                        ..mb.layers
                                    },
                                    ..mb
                                },
                                ..parts
                            },
                        }
                    })
                    .collect(),
            })
            .collect();
        Self {
            stem: self.stem.into_iter().map(fold_one).collect(),
            blocks,
            ..self
        }
    }

}

impl ImportHooks for MaxVit {
    fn classifier_prefixes(&self) -> &'static [&'static str] {
        &["classifier.5."]
    }

    /// Each attention's `relative_position_index`, `[49, 49]` for 7x7 partitions.
    fn derived_buffers(&self) -> Vec<DerivedBuffer> {
        let n = self.partition_size * self.partition_size;
        let index: Vec<f64> = relative_position_index(self.partition_size)
            .into_iter()
            .map(|i| i as f64)
            .collect();
        self.attention_layers()
            .map(|(prefix, _)| DerivedBuffer {
                key: format!("{prefix}.attn_layer.1.relative_position_index"),
                shape: vec![n, n],
                values: index.clone(),
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::InputError;
    use crate::device::test_device as device;

    #[test]
    fn any_depth_and_width_builds_and_maxvit_t_is_the_default() {
        let device = device();
        // torchvision's MaxVit(input_size=(64, 64), stem_channels=16, partition_size=4,
        // block_channels=[32, 64], block_layers=[1, 1], head_dim=32, stochastic_depth_prob=0.2,
        // num_classes=5): sum(p.numel()).
        let config = MaxVitConfig::new()
            .with_stem_channels(16)
            .with_block_channels(vec![32, 64])
            .with_block_layers(vec![1, 1])
            .with_partition_size(4)
            .with_input_size([64, 64])
            .with_num_classes(5);
        let model = config.init(&device).unwrap();
        assert_eq!((model.name, model.num_features()), ("maxvit", 64));
        assert_eq!(crate::num_parameters(&model), 182_270);
        assert_eq!(model.derived_buffers()[0].shape, [16, 16]);
        assert_eq!(model.forward(Tensor::zeros([1, 3, 64, 64], &device)).dims(), [1, 5]);
        assert_eq!(model.feature_info().len(), 3);
        assert_eq!(MaxVitConfig::maxvit_t().name(), "maxvit_t");
        let err = config.with_block_channels(vec![32, 48]).init(&device).unwrap_err();
        assert!(err.to_string().contains("block_channels"), "{err}");
    }

    #[test]
    fn keys_shapes_and_count_are_torchvision_s() {
        let device = device();
        let model = MaxVitConfig::new().init(&device).unwrap();
        let keys = crate::layers::torch_shapes(&model);
        let l = "blocks.0.layers.0.layers";
        for (key, shape) in [
            ("stem.0.0.weight".to_string(), vec![64, 3, 3, 3]),
            ("stem.0.1.running_var".into(), vec![64]),
            ("stem.1.0.bias".into(), vec![64]),
            (format!("{l}.MBconv.proj.1.weight"), vec![64, 64, 1, 1]),
            (format!("{l}.MBconv.layers.pre_norm.weight"), vec![64]),
            (
                format!("{l}.MBconv.layers.conv_a.0.weight"),
                vec![256, 64, 1, 1],
            ),
            (
                format!("{l}.MBconv.layers.conv_b.0.weight"),
                vec![256, 1, 3, 3],
            ),
            (
                format!("{l}.MBconv.layers.squeeze_excitation.fc1.weight"),
                vec![16, 256, 1, 1],
            ),
            (format!("{l}.MBconv.layers.conv_c.bias"), vec![64]),
            (
                format!("{l}.window_attention.attn_layer.1.to_qkv.weight"),
                vec![192, 64],
            ),
            (
                format!("{l}.grid_attention.attn_layer.1.relative_position_bias_table"),
                vec![169, 2],
            ),
            (
                format!("{l}.grid_attention.mlp_layer.3.weight"),
                vec![64, 256],
            ),
            ("classifier.2.weight".into(), vec![512]),
            ("classifier.3.weight".into(), vec![512, 512]),
            ("classifier.5.weight".into(), vec![1000, 512]),
        ] {
            assert_eq!(keys.get(&key), Some(&shape), "{key}");
        }
        assert!(!keys.contains_key("classifier.5.bias"));
        assert!(!keys.contains_key("blocks.0.layers.1.layers.MBconv.proj.0.weight"));
        assert_eq!(crate::num_parameters(&model), 30_919_624);
        assert_eq!(model.derived_buffers().len(), 2 * 11);
    }

    #[test]
    fn one_size_at_a_time() {
        assert_eq!(
            block_grids([224, 224], 4),
            [[56, 56], [28, 28], [14, 14], [7, 7]]
        );
        let device = device();
        let model = MaxVitConfig::new()
            .with_num_classes(3)
            .init(&device)
            .unwrap();
        let x = Tensor::<4>::zeros([1, 3, 192, 224], &device);
        assert!(matches!(
            model.try_forward(x),
            Err(InputError::WrongSize {
                expected: [224, 224],
                ..
            })
        ));
        assert!(model.for_input_size([200, 200]).is_err());
        let bad = MaxVitConfig::new()
            .with_input_size([256, 256])
            .init(&device);
        assert!(matches!(
            bad,
            Err(ConfigError::Invalid {
                field: "input_size",
                ..
            })
        ));
    }
}
