//! Vision Transformer B/16, B/32, L/16, L/32 and H/14, as torchvision's `vit_b_16` ...
//! `vit_h_14` (`torchvision/models/vision_transformer.py`): the same patch embedding, class
//! token, position embedding, pre-norm encoder blocks (LayerNorm eps 1e-6, PyTorch's
//! `nn.MultiheadAttention`, an MLP with exact GELU), state_dict keys
//! (`encoder.layers.encoder_layer_0.self_attention.in_proj_weight`) and initialisation.
//!
//! Dosovitskiy et al., *An Image is Worth 16x16 Words* (ICLR 2021). The image is cut into
//! `patch x patch` patches, each projected to `hidden_dim` by a strided convolution; a learnt
//! class token is prepended, a learnt position embedding added, and the sequence goes through
//! the encoder; the class token's output is classified.
//!
//! The position embedding fixes the input size: a model takes `image_size x image_size` only
//! (224 by default, as torchvision's builders without weights; 384, 512 or 518 for the SWAG
//! end-to-end files, which [`crate::ImportHooks::conform_to`] follows when loading).
//!
//! ```no_run
//! use model_zoo::Architecture;
//! use model_zoo::vit::VisionTransformerConfig;
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let device = model_zoo::Backend::Flex.device()?;
//! let model = VisionTransformerConfig::vit_b_16().init(&device)?;
//! let logits = model.forward(burn::tensor::Tensor::zeros([1, 3, 224, 224], &device));
//! assert_eq!(logits.dims(), [1, 1000]);
//! # Ok(()) }
//! ```

mod weights;
pub use weights::*;

use std::collections::HashMap;

use burn::config::Config;
use burn::module::{Module, Param};
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::{Dropout, DropoutConfig, Initializer, LayerNorm, Linear, LinearConfig};
use burn::tensor::module::interpolate;
use burn::tensor::ops::{InterpolateMode, InterpolateOptions};
use burn::tensor::{Device, Tensor};

use crate::architecture::{Architecture, KeyRename, ImportHooks};
use crate::error::{ConfigError, InputSpec};
use crate::family::Family;
use crate::features::{FeatureInfo, Features, Taps};
use crate::layers::conv2d;
use crate::layers::{
    ActivationKind, ImageLayer, MultiheadAttention, Numbered, layer_norm, layer_norm_last,
    linear_last, run_image_layers, zero_bias,
};
use crate::tap;

impl Family {
    /// Vision Transformer ([`crate::vit`]).
    pub const VIT: Family = Family::new("vit");
}

/// torchvision's LayerNorm epsilon for ViT.
const EPS: f64 = 1e-6;

/// Which Vision Transformer.
#[derive(Config, Debug, Copy, PartialEq, Eq)]
pub enum VitArch {
    /// `vit_b_16`.
    B16,
    /// `vit_b_32`.
    B32,
    /// `vit_l_16`.
    L16,
    /// `vit_l_32`.
    L32,
    /// `vit_h_14`.
    H14,
}

/// The shape of one Vision Transformer, as torchvision's `_vision_transformer` arguments.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VitShape {
    /// Side of the square patches.
    pub patch_size: usize,
    /// Encoder blocks.
    pub num_layers: usize,
    /// Attention heads.
    pub num_heads: usize,
    /// Token width.
    pub hidden_dim: usize,
    /// Width of the MLP's hidden layer.
    pub mlp_dim: usize,
}

impl VitShape {
    /// A configuration of this shape (224x224, 1000 classes, no dropout).
    pub fn config(self) -> VisionTransformerConfig {
        VisionTransformerConfig::new(
            self.patch_size,
            self.num_layers,
            self.num_heads,
            self.hidden_dim,
            self.mlp_dim,
        )
    }
}

impl VitArch {
    /// torchvision's builder's configuration.
    pub fn config(self) -> VisionTransformerConfig {
        self.shape().config()
    }

    /// Every ViT, in torchvision's order.
    pub const ALL: [VitArch; 5] = [Self::B16, Self::B32, Self::L16, Self::L32, Self::H14];

    /// torchvision's builder name.
    pub fn name(self) -> &'static str {
        match self {
            Self::B16 => "vit_b_16",
            Self::B32 => "vit_b_32",
            Self::L16 => "vit_l_16",
            Self::L32 => "vit_l_32",
            Self::H14 => "vit_h_14",
        }
    }

    /// The builder's patch size, depth and widths.
    pub fn shape(self) -> VitShape {
        let (patch_size, num_layers, num_heads, hidden_dim, mlp_dim) = match self {
            Self::B16 => (16, 12, 12, 768, 3072),
            Self::B32 => (32, 12, 12, 768, 3072),
            Self::L16 => (16, 24, 16, 1024, 4096),
            Self::L32 => (32, 24, 16, 1024, 4096),
            Self::H14 => (14, 32, 16, 1280, 5120),
        };
        VitShape {
            patch_size,
            num_layers,
            num_heads,
            hidden_dim,
            mlp_dim,
        }
    }
}

/// Configuration of a [`VisionTransformer`]: torchvision's `VisionTransformer` arguments, so
/// that any size builds (ViT-S/16: `new(16, 12, 6, 384, 1536)`, as timm's
/// `vit_small_patch16_224`); torchvision's five builders are the presets
/// ([`Self::vit_b_16`]...).
///
/// torchvision's `attention_dropout` is not offered: Burn's attention op has no dropout, and
/// every torchvision builder and weight file uses 0.
#[derive(Config, Debug)]
pub struct VisionTransformerConfig {
    /// Side of the square patches.
    pub patch_size: usize,
    /// Encoder blocks.
    pub num_layers: usize,
    /// Attention heads; they divide `hidden_dim`.
    pub num_heads: usize,
    /// Token width.
    pub hidden_dim: usize,
    /// Width of the MLP's hidden layer.
    pub mlp_dim: usize,
    /// Output classes.
    #[config(default = 1000)]
    pub num_classes: usize,
    /// The one input side the model takes; a multiple of the patch size.
    #[config(default = 224)]
    pub image_size: usize,
    /// Dropout after the position embedding, the attention and each MLP layer.
    #[config(default = 0.0)]
    pub dropout: f64,
}

impl VisionTransformerConfig {
    /// torchvision's `vit_b_16`.
    pub fn vit_b_16() -> Self {
        VitArch::B16.config()
    }

    /// torchvision's `vit_b_32`.
    pub fn vit_b_32() -> Self {
        VitArch::B32.config()
    }

    /// torchvision's `vit_l_16`.
    pub fn vit_l_16() -> Self {
        VitArch::L16.config()
    }

    /// torchvision's `vit_l_32`.
    pub fn vit_l_32() -> Self {
        VitArch::L32.config()
    }

    /// torchvision's `vit_h_14` (built at 224 as any preset; its first weights are for 518).
    pub fn vit_h_14() -> Self {
        VitArch::H14.config()
    }

    /// The patch size, depth and widths.
    pub fn shape(&self) -> VitShape {
        VitShape {
            patch_size: self.patch_size,
            num_layers: self.num_layers,
            num_heads: self.num_heads,
            hidden_dim: self.hidden_dim,
            mlp_dim: self.mlp_dim,
        }
    }

    /// torchvision's builder name where the shape is a builder's (`vit_b_16`), else `vit`.
    pub fn name(&self) -> &'static str {
        VitArch::ALL
            .into_iter()
            .find(|arch| arch.shape() == self.shape())
            .map_or("vit", VitArch::name)
    }

    /// Builds the model, initialised as torchvision does: the patch convolution
    /// `trunc_normal_(std=sqrt(1 / fan_in))` (truncated at ±2, over 50 standard deviations out,
    /// so a plain normal) with a zero bias, a zero class token, the position embedding
    /// `normal_(std=0.02)`, MLP weights Xavier-uniform with biases `normal_(std=1e-6)`,
    /// attention as `nn.MultiheadAttention`, and a zero head.
    pub fn init(&self, device: &Device) -> Result<VisionTransformer, ConfigError> {
        let name = self.name();
        let shape = self.shape();
        ConfigError::nonzero(name, "num_classes", self.num_classes)?;
        for (field, value) in [
            ("patch_size", shape.patch_size),
            ("num_layers", shape.num_layers),
            ("num_heads", shape.num_heads),
            ("hidden_dim", shape.hidden_dim),
            ("mlp_dim", shape.mlp_dim),
        ] {
            ConfigError::nonzero(name, field, value)?;
        }
        ConfigError::check(
            shape.hidden_dim.is_multiple_of(shape.num_heads),
            name,
            "hidden_dim",
            shape.hidden_dim as f64,
            "it must be a multiple of num_heads",
        )?;
        ConfigError::probability(name, "dropout", self.dropout)?;
        let p = shape.patch_size;
        ConfigError::check(
            self.image_size >= p && self.image_size.is_multiple_of(p),
            name,
            "image_size",
            self.image_size as f64,
            "it must be a positive multiple of the patch size",
        )?;
        let d = shape.hidden_dim;
        let seq_length = (self.image_size / p).pow(2) + 1;
        let fan_in = 3 * p * p;
        let conv_proj = Conv2dConfig::new([3, d], [p, p])
            .with_stride([p, p])
            .with_initializer(Initializer::Normal {
                mean: 0.0,
                std: (1.0 / fan_in as f64).sqrt(),
            })
            .init(device);
        let layers = (0..shape.num_layers)
            .map(|_| EncoderBlock::new(shape, self.dropout, device))
            .collect();
        let head = LinearConfig::new(d, self.num_classes)
            .with_initializer(Initializer::Zeros)
            .init(device);
        Ok(VisionTransformer {
            conv_proj: Conv2d {
                bias: zero_bias(conv_proj.bias, device),
                ..conv_proj
            },
            class_token: Initializer::Zeros.init([1, 1, d], device),
            encoder: Encoder {
                pos_embedding: Initializer::Normal {
                    mean: 0.0,
                    std: 0.02,
                }
                .init([1, seq_length, d], device),
                dropout: DropoutConfig::new(self.dropout).init(),
                layers: Numbered::new("encoder_layer_", 0, layers),
                ln: layer_norm(d, EPS, device),
            },
            heads: Heads { head: Some(head) },
            image_size: self.image_size,
            dropout: self.dropout,
            shape,
            name,
        })
    }
}

/// torchvision's `EncoderBlock`: pre-norm self-attention and MLP, each added back.
#[derive(Module, Debug)]
pub struct EncoderBlock {
    /// LayerNorm before the attention.
    pub ln_1: LayerNorm,
    /// `nn.MultiheadAttention`.
    pub self_attention: MultiheadAttention,
    /// Dropout after the attention.
    pub dropout: Dropout,
    /// LayerNorm before the MLP.
    pub ln_2: LayerNorm,
    /// `Linear` (`mlp.0`), GELU, dropout, `Linear` (`mlp.3`), dropout.
    pub mlp: Vec<ImageLayer>,
}

impl EncoderBlock {
    fn new(shape: VitShape, dropout: f64, device: &Device) -> Self {
        let d = shape.hidden_dim;
        let linear = |d_in, d_out| {
            let linear = LinearConfig::new(d_in, d_out)
                .with_initializer(Initializer::XavierUniform { gain: 1.0 })
                .init(device);
            Linear {
                bias: Some(
                    Initializer::Normal {
                        mean: 0.0,
                        std: 1e-6,
                    }
                    .init([d_out], device),
                ),
                ..linear
            }
        };
        Self {
            ln_1: layer_norm(d, EPS, device),
            self_attention: MultiheadAttention::new(d, shape.num_heads, device),
            dropout: DropoutConfig::new(dropout).init(),
            ln_2: layer_norm(d, EPS, device),
            mlp: vec![
                ImageLayer::Linear(linear(d, shape.mlp_dim)),
                ImageLayer::Activation(ActivationKind::Gelu.init()),
                ImageLayer::Dropout(DropoutConfig::new(dropout).init()),
                ImageLayer::Linear(linear(shape.mlp_dim, d)),
                ImageLayer::Dropout(DropoutConfig::new(dropout).init()),
            ],
        }
    }

    /// # Shapes
    /// - input and output: `[batch, sequence, hidden_dim]`
    pub fn forward(&self, input: Tensor<3>) -> Tensor<3> {
        let x = layer_norm_last(&self.ln_1, input.clone());
        let x = self.dropout.forward(self.self_attention.forward(x)) + input;
        let y = layer_norm_last(&self.ln_2, x.clone());
        // The MLP's slots are [`ImageLayer`]s over the last axis; a unit axis makes the
        // sequence a 4-d tensor for them, at no cost.
        let y = run_image_layers(&self.mlp, y.unsqueeze_dim(1)).squeeze_dim(1);
        x + y
    }
}

/// torchvision's `Encoder`: position embedding, dropout, the blocks, a final LayerNorm.
#[derive(Module, Debug)]
pub struct Encoder {
    /// `[1, 1 + (image_size / patch_size)^2, hidden_dim]`.
    pub pos_embedding: Param<Tensor<3>>,
    /// Dropout after adding the position embedding.
    pub dropout: Dropout,
    /// `encoder_layer_0` onwards.
    pub layers: Numbered<EncoderBlock>,
    /// The final LayerNorm.
    pub ln: LayerNorm,
}

/// `heads`: one `Linear` named `head` (torchvision's builders have no `pre_logits`).
#[derive(Module, Debug)]
pub struct Heads {
    /// The classifier.
    pub head: Option<Linear>,
}

/// Vision Transformer. Build it with [`VisionTransformerConfig`].
#[derive(Module, Debug)]
pub struct VisionTransformer {
    /// Patch embedding: a `patch x patch` stride-`patch` convolution to `hidden_dim`.
    pub conv_proj: Conv2d,
    /// `[1, 1, hidden_dim]`.
    pub class_token: Param<Tensor<3>>,
    /// The transformer encoder.
    pub encoder: Encoder,
    /// The classifier.
    pub heads: Heads,
    /// The one input side the model takes.
    pub image_size: usize,
    /// Dropout rate (kept to rebuild the model in [`crate::ImportHooks::conform_to`]).
    pub dropout: f64,
    /// Patch size, depth and widths.
    #[module(skip)]
    pub shape: VitShape,
    /// torchvision's builder name (`vit_b_16`), or `vit` for another shape.
    #[module(skip)]
    pub name: &'static str,
}

/// The published files' MLP keys (`mlp.linear_1`, `mlp.linear_2`), which torchvision's
/// `MLPBlock._load_from_state_dict` renames to `mlp.0` and `mlp.3`.
const VIT_KEY_RENAMES: &[KeyRename] = &[
    KeyRename {
        old: r"^(encoder\.layers\.encoder_layer_\d+\.mlp\.)linear_1\.(weight|bias)$",
        replacement: "${1}0.$2",
        current: r"^encoder\.layers\.encoder_layer_\d+\.mlp\.0\.",
    },
    KeyRename {
        old: r"^(encoder\.layers\.encoder_layer_\d+\.mlp\.)linear_2\.(weight|bias)$",
        replacement: "${1}3.$2",
        current: r"^encoder\.layers\.encoder_layer_\d+\.mlp\.3\.",
    },
];

impl VisionTransformer {
    /// The encoder's output after its final LayerNorm, every token, tapping the encoder layers
    /// of [`Architecture::feature_info`] (their patch tokens laid out on the patch grid).
    ///
    /// # Shapes
    /// - input: `[batch, 3, image_size, image_size]`
    /// - output: `[batch, 1 + tokens, hidden_dim]`
    fn tokens(&self, x: Tensor<4>, taps: &mut Taps) -> Option<Tensor<3>> {
        let x = conv2d(&self.conv_proj, x);
        let [n, d, h, w] = x.dims();
        let x = x.reshape([n, d, h * w]).swap_dims(1, 2);
        let class_token = self.class_token.val().expand([n, 1, d]);
        let x = Tensor::cat(vec![class_token, x], 1);
        let e = &self.encoder;
        let mut x = e.dropout.forward(x + e.pos_embedding.val());
        for (i, block) in e.layers.iter().enumerate() {
            x = block.forward(x);
            tap!(
                taps,
                i,
                x.clone()
                    .narrow(1, 1, h * w)
                    .swap_dims(1, 2)
                    .reshape([n, d, h, w])
            );
        }
        Some(layer_norm_last(&e.ln, x))
    }
}

impl Architecture for VisionTransformer {
    crate::layers::classifier_head!(heads.head);

    fn family(&self) -> Family {
        Family::VIT
    }

    /// Exactly `image_size x image_size`.
    fn input_spec(&self) -> InputSpec {
        InputSpec {
            channels: self.in_chans(),
            min_size: [self.image_size, self.image_size],
            exact: true,
        }
    }

    fn display_name(&self) -> &str {
        self.name
    }

    fn input_conv(&self) -> (&'static str, &Conv2d) {
        ("conv_proj", &self.conv_proj)
    }

    fn input_conv_mut(&mut self) -> &mut Conv2d {
        &mut self.conv_proj
    }

    /// Every encoder layer, `encoder.layers.encoder_layer_{i}` (12 for B/16), its patch tokens
    /// laid out on the patch grid (the class token dropped), as timm's `output_fmt='NCHW'`;
    /// the reduction is the patch size.
    fn feature_info(&self) -> Vec<FeatureInfo> {
        let shape = self.shape;
        let d = self.class_token.lazy_shape().dims::<3>()[2];
        (0..self.encoder.layers.len())
            .map(|i| {
                FeatureInfo::new(
                    format!("encoder.layers.encoder_layer_{i}"),
                    d,
                    shape.patch_size,
                )
            })
            .collect()
    }

    fn forward_features_tapped(&self, x: Tensor<4>, taps: &mut Taps) -> Option<Features> {
        self.tokens(x, taps).map(Features::Tokens)
    }

    /// The class token (the pre-logits), then `heads.head`.
    ///
    /// # Panics
    /// On a feature map (another family's features).
    fn forward_head(&self, features: Features, pre_logits: bool) -> Tensor<2> {
        let x = features.into_tokens().unwrap_or_else(|| {
            panic!("vit's head takes tokens, got a feature map (another family's features)")
        });
        let [n, _, d] = x.dims();
        let x = x.narrow(1, 0, 1).reshape([n, d]);
        if pre_logits {
            return x;
        }
        match &self.heads.head {
            Some(head) => linear_last(head, x),
            None => x,
        }
    }

    /// The position embedding of the patch grid resized bicubically with aligned corners (the
    /// class token's kept), as torchvision's `interpolate_embeddings`; square sizes only, a
    /// multiple of the patch size.
    fn for_input_size(self, size: [usize; 2]) -> Result<Self, ConfigError> {
        let [h, w] = size;
        let p = self.shape.patch_size;
        ConfigError::check(
            h == w && h >= p && h.is_multiple_of(p),
            self.name,
            "input size",
            h as f64,
            "ViT takes square inputs whose side is a positive multiple of the patch size",
        )?;
        if h == self.image_size {
            return Ok(self);
        }
        let (old, new) = (self.image_size / p, h / p);
        let pos = self.encoder.pos_embedding.val();
        let [_, _, d] = pos.dims();
        let token = pos.clone().narrow(1, 0, 1);
        let grid = pos
            .narrow(1, 1, old * old)
            .swap_dims(1, 2)
            .reshape([1, d, old, old]);
        let grid = interpolate(
            grid,
            InterpolateOptions::new(InterpolateMode::Bicubic)
                .with_align_corners(true)
                .with_output_size([new, new]),
        )
        .reshape([1, d, new * new])
        .swap_dims(1, 2);
        Ok(Self {
            encoder: Encoder {
                pos_embedding: Param::from_tensor(Tensor::cat(vec![token, grid], 1)),
                ..self.encoder
            },
            image_size: h,
            ..self
        })
    }

    fn num_features(&self) -> usize {
        self.shape.hidden_dim
    }

}

impl ImportHooks for VisionTransformer {
    fn classifier_prefixes(&self) -> &'static [&'static str] {
        &["heads.head."]
    }

    fn key_renames(&self) -> &'static [KeyRename] {
        VIT_KEY_RENAMES
    }

    /// A file whose position embedding is for another image size (the SWAG end-to-end files:
    /// 384, 512, 518) gets a model built for that size, as torchvision's builder sets
    /// `image_size` from the weights.
    fn conform_to(
        self,
        shapes: &HashMap<String, Vec<usize>>,
        device: &Device,
    ) -> Result<Self, ConfigError> {
        let Some(&[1, seq, _]) = shapes.get("encoder.pos_embedding").map(Vec::as_slice) else {
            return Ok(self);
        };
        let side = (seq.saturating_sub(1) as f64).sqrt().round() as usize;
        let image_size = side * self.shape.patch_size;
        if side * side + 1 != seq || image_size == self.image_size {
            // Not a square grid: loading reports the shape mismatch by name.
            return Ok(self);
        }
        self.shape
            .config()
            .with_num_classes(self.num_classes())
            .with_image_size(image_size)
            .with_dropout(self.dropout)
            .init(device)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::InputError;
    use crate::device::test_device as device;

    #[test]
    fn any_shape_builds_and_the_presets_are_values_of_it() {
        let device = device();
        // timm's vit_small_patch16_224 and vit_tiny_patch16_224: torchvision has neither.
        let small = VisionTransformerConfig::new(16, 12, 6, 384, 1536)
            .with_image_size(32)
            .with_num_classes(7)
            .init(&device)
            .unwrap();
        assert_eq!((small.name, small.num_features()), ("vit", 384));
        // sum(p.numel()) of torchvision's VisionTransformer(32, 16, 12, 6, 384, 1536, num_classes=7).
        assert_eq!(crate::num_parameters(&small), 21_594_631);
        assert_eq!(small.forward(Tensor::zeros([1, 3, 32, 32], &device)).dims(), [1, 7]);
        let tiny = VisionTransformerConfig::new(16, 1, 3, 192, 768).with_image_size(32);
        assert_eq!(tiny.init(&device).unwrap().feature_info().len(), 1);
        assert_eq!(VisionTransformerConfig::vit_l_16().shape(), VitArch::L16.shape());
        assert_eq!(VisionTransformerConfig::vit_l_16().name(), "vit_l_16");
        let err = VisionTransformerConfig::new(16, 2, 5, 384, 1536)
            .init(&device)
            .unwrap_err();
        assert!(err.to_string().contains("num_heads"), "{err}");
        let err = VisionTransformerConfig::new(16, 0, 6, 384, 1536)
            .init(&device)
            .unwrap_err();
        assert!(err.to_string().contains("num_layers"), "{err}");
    }

    #[test]
    fn keys_shapes_and_counts_are_torchvision_s() {
        let device = device();
        let model = VisionTransformerConfig::vit_b_32()
            .init(&device)
            .unwrap();
        let keys = crate::layers::torch_shapes(&model);
        for (key, shape) in [
            ("conv_proj.weight", vec![768, 3, 32, 32]),
            ("class_token", vec![1, 1, 768]),
            ("encoder.pos_embedding", vec![1, 50, 768]),
            (
                "encoder.layers.encoder_layer_0.self_attention.in_proj_weight",
                vec![2304, 768],
            ),
            (
                "encoder.layers.encoder_layer_0.self_attention.out_proj.weight",
                vec![768, 768],
            ),
            (
                "encoder.layers.encoder_layer_11.mlp.0.weight",
                vec![3072, 768],
            ),
            ("encoder.layers.encoder_layer_11.mlp.3.bias", vec![768]),
            ("encoder.layers.encoder_layer_11.ln_2.weight", vec![768]),
            ("encoder.ln.bias", vec![768]),
            ("heads.head.weight", vec![1000, 768]),
        ] {
            assert_eq!(keys.get(key), Some(&shape), "{key}");
        }
        assert_eq!(crate::num_parameters(&model), 88_224_232);
    }

    #[test]
    fn one_size_only_and_classifier() {
        let device = device();
        let model = VisionTransformerConfig::vit_b_32()
            .with_num_classes(4)
            .with_image_size(64)
            .init(&device)
            .unwrap();
        let x = Tensor::<4>::zeros([2, 3, 64, 64], &device);
        assert_eq!(model.forward(x.clone()).dims(), [2, 4]);
        assert_eq!(model.forward_pooled(x).dims(), [2, 768]);
        let x = Tensor::<4>::zeros([1, 3, 64, 96], &device);
        match model.try_forward(x) {
            Err(err @ InputError::WrongSize { .. }) => {
                assert!(err.to_string().contains("only 64x64"), "{err}")
            }
            other => panic!("{other:?}"),
        }
        let model = model.reset_classifier(7, &device).unwrap();
        assert_eq!(model.num_classes(), 7);
    }

    #[test]
    fn conforms_to_a_file_of_another_size() {
        let device = device();
        let model = VisionTransformerConfig::vit_b_32()
            .with_num_classes(3)
            .init(&device)
            .unwrap();
        let shapes = HashMap::from([("encoder.pos_embedding".to_string(), vec![1, 145, 768])]);
        let model = model.conform_to(&shapes, &device).unwrap();
        assert_eq!(model.image_size, 384);
        assert_eq!(model.num_classes(), 3);
    }

    #[test]
    fn invalid_options_are_errors() {
        let device = device();
        for (config, field) in [
            (
                VisionTransformerConfig::vit_b_16().with_image_size(100),
                "image_size",
            ),
            (
                VisionTransformerConfig::vit_b_16().with_dropout(1.0),
                "dropout",
            ),
        ] {
            match config.init(&device) {
                Err(ConfigError::Invalid { field: f, .. }) => assert_eq!(f, field),
                other => panic!("{field}: {other:?}"),
            }
        }
    }
}
