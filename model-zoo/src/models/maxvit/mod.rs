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

use crate::layers::adaptive_avg_pool2d_with;
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
    relative_position_index, run_image_layers, run_vector_layers, split_heads,
    zero_bias,
};
use crate::tap;

impl Family {
    /// MaxViT ([`crate::maxvit`]).
    pub const MAXVIT: Family = Family::new("maxvit");
}

/// `maxvit_t`'s stem width, block widths and depths, head width and partition side.
const STEM: usize = 64;
const BLOCK_CHANNELS: [usize; 4] = [64, 128, 256, 512];
const BLOCK_LAYERS: [usize; 4] = [2, 2, 5, 2];
const HEAD_DIM: usize = 32;
const PARTITION: usize = 7;
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
fn block_grids(input: [usize; 2]) -> [[usize; 2]; 4] {
    let mut size = input.map(halve);
    [0; 4].map(|_| {
        size = size.map(halve);
        size
    })
}

/// Configuration of a [`MaxVit`]: `maxvit_t`'s arguments.
///
/// torchvision's `attention_dropout` is not offered: `maxvit_t` and its weights use 0.
#[derive(Config, Debug)]
pub struct MaxVitConfig {
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
fn check_input_size(input: [usize; 2]) -> Result<[[usize; 2]; 4], ConfigError> {
    let grids = block_grids(input);
    let fits = grids
        .iter()
        .all(|g| g.iter().all(|&s| s > 0 && s.is_multiple_of(PARTITION)));
    ConfigError::check(
        fits,
        "maxvit_t",
        "input_size",
        input[0].max(input[1]) as f64,
        "each block's input must be a multiple of 7 on both sides (224 or 448, for instance)",
    )?;
    Ok(grids)
}

impl MaxVitConfig {
    /// Builds the model, initialised as torchvision does: convolutions `normal_(std=0.02)`
    /// with zero biases, BatchNorm ones and zeros, `Linear`s and LayerNorms PyTorch's defaults,
    /// bias tables `trunc_normal_(std=0.02)` (truncated at ±2, a plain normal in practice).
    pub fn init(&self, device: &Device) -> Result<MaxVit, ConfigError> {
        let name = "maxvit_t";
        ConfigError::nonzero(name, "num_classes", self.num_classes)?;
        ConfigError::probability(name, "stochastic_depth_prob", self.stochastic_depth_prob)?;
        ConfigError::probability(name, "mlp_dropout", self.mlp_dropout)?;
        let grids = check_input_size(self.input_size)?;
        let stem = vec![
            Conv2dNormActivation::new(3, STEM, 3)
                .stride(2)
                .norm(BN.0, BN.1)
                .activation(Some(ActivationKind::Gelu))
                .init_with(CONV_INIT, device),
            ImageLayer::Sequential(vec![ImageLayer::Conv(conv(
                Conv2dConfig::new([STEM, STEM], [3, 3])
                    .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1)),
                device,
            ))]),
        ];
        let total: usize = BLOCK_LAYERS.iter().sum();
        // numpy's linspace(0, p, total).
        let p = |i: usize| self.stochastic_depth_prob * i as f64 / (total as f64 - 1.0);
        let mut layer_id = 0;
        let mut in_channels = STEM;
        let blocks = (0..4)
            .map(|b| {
                let out = BLOCK_CHANNELS[b];
                let layers = (0..BLOCK_LAYERS[b])
                    .map(|i| {
                        let sd = p(layer_id);
                        layer_id += 1;
                        let input = if i == 0 { in_channels } else { out };
                        let stride = if i == 0 { 2 } else { 1 };
                        MaxVitLayer::new(input, out, stride, sd, self.mlp_dropout, grids[b], device)
                    })
                    .collect();
                in_channels = out;
                MaxVitBlock { layers }
            })
            .collect();
        let last = BLOCK_CHANNELS[3];
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
        })
    }
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
    fn new(input: usize, out: usize, stride: usize, sd: f64, device: &Device) -> Self {
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
        let mid = out * 4;
        let squeeze = out / 4;
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
        let bias = relative_position_bias(self.relative_position_bias_table.val(), PARTITION);
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
}

impl PartitionAttention {
    fn new(
        dim: usize,
        grid: bool,
        grid_size: [usize; 2],
        sd: f64,
        dropout: f64,
        device: &Device,
    ) -> Self {
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
                    .init([(2 * PARTITION - 1).pow(2), dim / HEAD_DIM], device),
                    num_heads: dim / HEAD_DIM,
                }),
                AttentionSlot::Dropout(DropoutConfig::new(0.0).init()),
            ],
            mlp_layer: vec![
                ImageLayer::LayerNorm(layer_norm(dim, 1e-5, device)),
                ImageLayer::Linear(LinearConfig::new(dim, 4 * dim).init(device)),
                ImageLayer::Activation(ActivationKind::Gelu.init()),
                ImageLayer::Linear(LinearConfig::new(4 * dim, dim).init(device)),
                ImageLayer::Dropout(DropoutConfig::new(dropout).init()),
            ],
            stochastic_dropout: StochasticDepth::new(sd),
            grid,
            grid_size,
        }
    }

    /// The side of the partitions `WindowPartition` cuts: 7 for windows, the map's side over
    /// 7 for the grid (whose groups are then swapped with the positions).
    fn partition_side(&self) -> usize {
        if self.grid {
            self.grid_size[0] / PARTITION
        } else {
            PARTITION
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
        input: usize,
        out: usize,
        stride: usize,
        sd: f64,
        dropout: f64,
        grid_size: [usize; 2],
        device: &Device,
    ) -> Self {
        Self {
            layers: MaxVitLayerParts {
                MBconv: MbConv::new(input, out, stride, sd, device),
                window_attention: PartitionAttention::new(
                    out, false, grid_size, sd, dropout, device,
                ),
                grid_attention: PartitionAttention::new(out, true, grid_size, sd, dropout, device),
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
    crate::layers::classifier_head!(classifier);

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
        "maxvit_t"
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

    /// Global average pooling, `classifier`'s LayerNorm, `Linear` and Tanh (the pre-logits),
    /// then its last `Linear`.
    fn forward_head(&self, features: Features, pre_logits: bool) -> Tensor<2> {
        let x = adaptive_avg_pool2d_with(features.expect_map("maxvit"), [1, 1]).flatten(1, 3);
        let x = run_vector_layers(&self.classifier[..HEAD], x);
        if pre_logits {
            return x;
        }
        run_vector_layers(&self.classifier[HEAD..], x)
    }

    fn for_input_size(mut self, size: [usize; 2]) -> Result<Self, ConfigError> {
        let grids = check_input_size(size)?;
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
        BLOCK_CHANNELS[3]
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

    /// Each attention's `relative_position_index`, `[49, 49]`.
    fn derived_buffers(&self) -> Vec<DerivedBuffer> {
        let n = PARTITION * PARTITION;
        let index: Vec<f64> = relative_position_index(PARTITION)
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
            block_grids([224, 224]),
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
