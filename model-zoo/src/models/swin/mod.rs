//! Swin Transformer T/S/B and Swin Transformer V2 T/S/B, as torchvision's `swin_t` ...
//! `swin_v2_b` (`torchvision/models/swin_transformer.py`): the same patch embedding, shifted
//! window attention (zero padding to whole windows, `torch.roll` and the -100 mask between the
//! shifted regions), relative position bias (V1: a learnt table; V2: the continuous position
//! bias MLP `cpb_mlp` over log-spaced coordinates, `16 * sigmoid`), V2's cosine attention with
//! `logit_scale` and post-norm blocks, patch merging, stochastic depth, state_dict keys
//! (`features.1.0.attn.relative_position_bias_table`) and initialisation.
//!
//! Liu et al., *Swin Transformer* (ICCV 2021) and *Swin Transformer V2* (CVPR 2022).
//!
//! torchvision keeps two derived buffers in the state_dict, `relative_position_index` and
//! (V2) `relative_coords_table`; the model computes both from its window size, and the importer
//! checks a file's copies against them ([`crate::ImportHooks::derived_buffers`]).
//!
//! ```no_run
//! use model_zoo::Architecture;
//! use model_zoo::swin::SwinConfig;
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let device = model_zoo::Backend::Flex.device()?;
//! let model = SwinConfig::swin_t().init(&device)?;
//! let logits = model.forward(burn::tensor::Tensor::zeros([1, 3, 224, 224], &device));
//! assert_eq!(logits.dims(), [1, 1000]);
//! # Ok(()) }
//! ```

mod weights;
pub use weights::*;

use burn::config::Config;
use burn::module::{Module, Param};
use burn::nn::conv::Conv2dConfig;
use burn::nn::{Dropout, DropoutConfig, Initializer, LayerNorm, Linear, LinearConfig, Relu};
use burn::tensor::activation::{sigmoid, softmax};
use burn::tensor::ops::PadMode;
use burn::tensor::{Device, Tensor, TensorData};

use crate::architecture::{Architecture, DerivedBuffer, ImportHooks};
use crate::error::{ConfigError, InputSpec};
use crate::family::Family;
use crate::features::{FeatureInfo, Features, Taps, sequence_info};
use crate::layers::stem_conv;
use crate::layers::{
    ActivationKind, ImageLayer, Permute, StochasticDepth, VectorLayer, attention_kernel,
    kernels_take, layer_norm, layer_norm_last, linear_kernel, linear_last, merge_heads,
    relative_position_bias, relative_position_index, run_image_layers,
    run_vector_layers, split_heads, zero_bias,
};
use crate::tap;
use burn::nn::conv::Conv2d;

impl Family {
    /// Swin Transformer V1 and V2 ([`crate::swin`]).
    pub const SWIN: Family = Family::new("swin");
}

/// torchvision's LayerNorm epsilon for Swin (PyTorch's default).
const EPS: f64 = 1e-5;

/// Which Swin Transformer.
#[derive(Config, Debug, Copy, PartialEq, Eq)]
pub enum SwinArch {
    /// `swin_t`.
    T,
    /// `swin_s`.
    S,
    /// `swin_b`.
    B,
    /// `swin_v2_t`.
    V2T,
    /// `swin_v2_s`.
    V2S,
    /// `swin_v2_b`.
    V2B,
}

impl SwinArch {
    /// torchvision's builder's configuration.
    pub fn config(self) -> SwinConfig {
        let (embed_dim, depths, num_heads) = self.stages();
        SwinConfig::new(embed_dim, depths.to_vec(), num_heads.to_vec())
            .with_window_size(self.window_size())
            .with_v2(self.v2())
    }

    /// Every Swin, in torchvision's order.
    pub const ALL: [SwinArch; 6] = [Self::T, Self::S, Self::B, Self::V2T, Self::V2S, Self::V2B];

    /// torchvision's builder name.
    pub fn name(self) -> &'static str {
        match self {
            Self::T => "swin_t",
            Self::S => "swin_s",
            Self::B => "swin_b",
            Self::V2T => "swin_v2_t",
            Self::V2S => "swin_v2_s",
            Self::V2B => "swin_v2_b",
        }
    }

    /// Swin Transformer V2 (cosine attention, `cpb_mlp`, post-norm, `PatchMergingV2`).
    pub fn v2(self) -> bool {
        matches!(self, Self::V2T | Self::V2S | Self::V2B)
    }

    /// `(embed_dim, depths, num_heads)`.
    pub fn stages(self) -> (usize, [usize; 4], [usize; 4]) {
        match self {
            Self::T | Self::V2T => (96, [2, 2, 6, 2], [3, 6, 12, 24]),
            Self::S | Self::V2S => (96, [2, 2, 18, 2], [3, 6, 12, 24]),
            Self::B | Self::V2B => (128, [2, 2, 18, 2], [4, 8, 16, 32]),
        }
    }

    /// Side of the square attention windows: 7, and 8 for V2.
    pub fn window_size(self) -> usize {
        if self.v2() { 8 } else { 7 }
    }

    /// The builder's default stochastic depth of the last block: 0.2, 0.3, 0.5.
    pub fn default_stochastic_depth(self) -> f64 {
        match self {
            Self::T | Self::V2T => 0.2,
            Self::S | Self::V2S => 0.3,
            Self::B | Self::V2B => 0.5,
        }
    }
}

/// What Swin accepts: any image of at least one 4x4 patch. Windows are padded to whole
/// windows as in torchvision, whose weights' `min_size` (224, or 256 for V2) is the size they
/// were trained at, not a limit of the model.
pub const SWIN_INPUT: InputSpec = InputSpec {
    channels: 3,
    min_size: [4, 4],
    exact: false,
};

/// Configuration of a [`SwinTransformer`]: torchvision's `SwinTransformer` arguments (V2's
/// block and patch merging as `v2`), so that any depth and width builds; torchvision's six
/// builders are the presets ([`Self::swin_t`]...).
///
/// torchvision's `attention_dropout` is not offered: every torchvision builder and weight file
/// uses 0.
#[derive(Config, Debug)]
pub struct SwinConfig {
    /// Channels of the patch embedding, doubled by each patch merging.
    pub embed_dim: usize,
    /// Blocks of each stage (`[2, 2, 6, 2]` for Swin-T).
    pub depths: Vec<usize>,
    /// Attention heads of each stage; they divide the stage's channels.
    pub num_heads: Vec<usize>,
    /// Side of the square patches of the embedding.
    #[config(default = 4)]
    pub patch_size: usize,
    /// Side of the square attention windows (7; 8 for V2's builders).
    #[config(default = 7)]
    pub window_size: usize,
    /// Swin Transformer V2: cosine attention, `cpb_mlp`, post-norm, `PatchMergingV2`.
    #[config(default = false)]
    pub v2: bool,
    /// Width of each block's MLP over its channels.
    #[config(default = 4.0)]
    pub mlp_ratio: f64,
    /// Output classes.
    #[config(default = 1000)]
    pub num_classes: usize,
    /// Stochastic depth of the last block (`None`: the builder's default for a builder's shape,
    /// else `SwinTransformer`'s, 0.1); block `i` of `n` gets `i / (n - 1)` of it.
    #[config(default = "None")]
    pub stochastic_depth_prob: Option<f64>,
    /// Dropout after the attention's projection and each MLP layer.
    #[config(default = 0.0)]
    pub dropout: f64,
}

/// torchvision's Swin initialisation of every `nn.Linear`: `trunc_normal_(std=0.02)`, which
/// truncates at ±2 (100 standard deviations: a plain normal in practice), and a zero bias. It
/// runs after the blocks' own MLP initialisation and replaces it.
fn linear(d_in: usize, d_out: usize, bias: bool, device: &Device) -> Linear {
    let linear = LinearConfig::new(d_in, d_out)
        .with_bias(bias)
        .with_initializer(Initializer::Normal {
            mean: 0.0,
            std: 0.02,
        })
        .init(device);
    Linear {
        bias: zero_bias(linear.bias, device),
        ..linear
    }
}

impl SwinConfig {
    /// torchvision's `swin_t`.
    pub fn swin_t() -> Self {
        SwinArch::T.config()
    }

    /// torchvision's `swin_s`.
    pub fn swin_s() -> Self {
        SwinArch::S.config()
    }

    /// torchvision's `swin_b`.
    pub fn swin_b() -> Self {
        SwinArch::B.config()
    }

    /// torchvision's `swin_v2_t`.
    pub fn swin_v2_t() -> Self {
        SwinArch::V2T.config()
    }

    /// torchvision's `swin_v2_s`.
    pub fn swin_v2_s() -> Self {
        SwinArch::V2S.config()
    }

    /// torchvision's `swin_v2_b`.
    pub fn swin_v2_b() -> Self {
        SwinArch::V2B.config()
    }

    /// The builder whose shape this is, if any.
    pub fn arch(&self) -> Option<SwinArch> {
        SwinArch::ALL.into_iter().find(|arch| {
            let preset = arch.config();
            (preset.embed_dim, &preset.depths, &preset.num_heads)
                == (self.embed_dim, &self.depths, &self.num_heads)
                && (preset.patch_size, preset.window_size, preset.v2)
                    == (self.patch_size, self.window_size, self.v2)
                && preset.mlp_ratio == self.mlp_ratio
        })
    }

    /// torchvision's builder name for a builder's shape (`swin_t`), else `swin` or `swin_v2`.
    pub fn name(&self) -> &'static str {
        match self.arch() {
            Some(arch) => arch.name(),
            None if self.v2 => "swin_v2",
            None => "swin",
        }
    }

    /// Builds the model, initialised as torchvision does: every `Linear` as `linear`, the
    /// patch embedding as PyTorch's `nn.Conv2d` default, LayerNorms ones and zeros, V1's bias
    /// table `trunc_normal_(std=0.02)`, V2's `logit_scale` `log(10)`.
    pub fn init(&self, device: &Device) -> Result<SwinTransformer, ConfigError> {
        let name = self.name();
        let sd = self.stochastic_depth_prob.unwrap_or_else(|| {
            self.arch()
                .map_or(0.1, SwinArch::default_stochastic_depth)
        });
        ConfigError::nonzero(name, "num_classes", self.num_classes)?;
        ConfigError::probability(name, "stochastic_depth_prob", sd)?;
        ConfigError::probability(name, "dropout", self.dropout)?;
        for (field, value) in [
            ("embed_dim", self.embed_dim),
            ("patch_size", self.patch_size),
            ("window_size", self.window_size),
        ] {
            ConfigError::nonzero(name, field, value)?;
        }
        let (embed_dim, depths, heads) = (self.embed_dim, &self.depths, &self.num_heads);
        ConfigError::check(
            !depths.is_empty() && depths.len() == heads.len() && !depths.contains(&0),
            name,
            "depths",
            depths.len() as f64,
            "one positive depth per stage, as many as num_heads, at least one",
        )?;
        for (stage, &h) in heads.iter().enumerate() {
            ConfigError::check(
                h > 0 && (embed_dim << stage).is_multiple_of(h),
                name,
                "num_heads",
                h as f64,
                "each stage's heads must divide its channels (embed_dim doubled per stage)",
            )?;
        }
        let mlp_dim = |dim: usize| (dim as f64 * self.mlp_ratio) as usize;
        ConfigError::check(
            self.mlp_ratio.is_finite() && mlp_dim(embed_dim) > 0,
            name,
            "mlp_ratio",
            self.mlp_ratio,
            "it must give each block's MLP at least one channel",
        )?;
        let window = self.window_size;
        let total: usize = depths.iter().sum();
        let p = self.patch_size;
        let patch = Conv2dConfig::new([3, embed_dim], [p, p])
            .with_stride([p, p])
            .init(device);
        let mut features = vec![Feature::Layer(ImageLayer::Sequential(vec![
            ImageLayer::Conv(patch),
            ImageLayer::Permute(Permute::TO_CHANNELS_LAST),
            ImageLayer::LayerNorm(layer_norm(embed_dim, EPS, device)),
        ]))];
        let mut block_id = 0;
        for (stage, (&depth, &num_heads)) in depths.iter().zip(heads).enumerate() {
            let dim = embed_dim << stage;
            let blocks = (0..depth)
                .map(|i| {
                    let p = sd * block_id as f64 / (total as f64 - 1.0);
                    block_id += 1;
                    let shift = if i % 2 == 0 { 0 } else { window / 2 };
                    let block = BlockShape {
                        dim,
                        num_heads,
                        mlp_dim: mlp_dim(dim),
                        window,
                        shift,
                        v2: self.v2,
                    };
                    SwinBlock::new(block, p, self.dropout, device)
                })
                .collect();
            features.push(Feature::Stage(blocks));
            if stage < depths.len() - 1 {
                features.push(Feature::Merge(PatchMerging::new(dim, self.v2, device)));
            }
        }
        let num_features = embed_dim << (depths.len() - 1);
        Ok(SwinTransformer {
            features,
            norm: layer_norm(num_features, EPS, device),
            head: Some(linear(num_features, self.num_classes, true, device)),
            window_size: window,
            patch_size: p,
            v2: self.v2,
            name,
        })
    }
}

/// torchvision's `PatchMerging` (V1: LayerNorm then reduction) and `PatchMergingV2`
/// (reduction then LayerNorm): each 2x2 neighbourhood's channels concatenated (zero-padding an
/// odd side), then a bias-free `Linear` from 4C to 2C.
#[derive(Module, Debug)]
pub struct PatchMerging {
    /// `Linear(4C, 2C, bias=False)`.
    pub reduction: Linear,
    /// LayerNorm over 4C (V1) or 2C (V2).
    pub norm: LayerNorm,
    /// Whether the norm comes after the reduction (V2).
    pub post_norm: bool,
}

impl PatchMerging {
    fn new(dim: usize, v2: bool, device: &Device) -> Self {
        Self {
            reduction: linear(4 * dim, 2 * dim, false, device),
            norm: layer_norm(if v2 { 2 * dim } else { 4 * dim }, EPS, device),
            post_norm: v2,
        }
    }

    /// # Shapes
    /// - input: `[batch, height, width, channels]`
    /// - output: `[batch, ceil(height / 2), ceil(width / 2), 2 * channels]`
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let [b, h, w, c] = x.dims();
        let x = pad_to_multiple(x, 2);
        let (h2, w2) = (h.div_ceil(2), w.div_ceil(2));
        // torchvision concatenates x[0::2, 0::2], x[1::2, 0::2], x[0::2, 1::2], x[1::2, 1::2]:
        // the column offset is the outer index, the row offset the inner one.
        let x = x
            .reshape([b, h2, 2, w2, 2, c])
            .permute([0, 1, 3, 4, 2, 5])
            .reshape([b, h2, w2, 4 * c]);
        if self.post_norm {
            layer_norm_last(&self.norm, linear_last(&self.reduction, x))
        } else {
            linear_last(&self.reduction, layer_norm_last(&self.norm, x))
        }
    }
}

/// Zero-pads the height and width of an NHWC tensor (at the bottom and right) to multiples of
/// `m`, as torchvision's `F.pad(x, (0, 0, 0, pad_r, 0, pad_b))`.
fn pad_to_multiple(x: Tensor<4>, m: usize) -> Tensor<4> {
    let [_, h, w, _] = x.dims();
    let (pad_b, pad_r) = ((m - h % m) % m, (m - w % m) % m);
    if pad_b == 0 && pad_r == 0 {
        return x;
    }
    x.pad(
        [(0, 0), (0, pad_b), (0, pad_r), (0, 0)],
        PadMode::Constant(0.0),
    )
}

/// torchvision's V2 `relative_coords_table`, `[1, 2w - 1, 2w - 1, 2]` flattened: each offset
/// `(dh, dw)` scaled to `[-8, 8]` and mapped by `sign(x) * log2(|x| + 1) / 3`, in `f32` as
/// PyTorch computes it.
pub fn relative_coords_table(window: usize) -> Vec<f32> {
    let w = window as i64;
    let mut table = Vec::with_capacity(((2 * w - 1) * (2 * w - 1) * 2) as usize);
    let map = |d: i64| {
        let x = d as f32 / (w - 1) as f32 * 8.0;
        // `torch.sign` is 0 at 0, where Rust's `signum` is 1.
        if x == 0.0 {
            0.0
        } else {
            x.signum() * (x.abs() + 1.0).log2() / 3.0
        }
    };
    for dh in -(w - 1)..w {
        for dw in -(w - 1)..w {
            table.push(map(dh));
            table.push(map(dw));
        }
    }
    table
}

/// torchvision's shifted-window attention mask for a `height x width` padded map: 0 between
/// positions of the same region of the shifted map, -100 between different ones.
/// `[windows, window^2, window^2]` flattened.
fn shift_mask(height: usize, width: usize, window: usize, shift: [usize; 2]) -> Vec<f32> {
    // Region of each row (column): [0, side - window), [side - window, side - shift), the rest.
    let region = |x: usize, side: usize, shift: usize| {
        if x < side - window {
            0
        } else if x < side - shift {
            1
        } else {
            2
        }
    };
    let n = window * window;
    let (wh, ww) = (height / window, width / window);
    let mut mask = Vec::with_capacity(wh * ww * n * n);
    for a in 0..wh {
        for b in 0..ww {
            let id = |p: usize| {
                let (y, x) = (a * window + p / window, b * window + p % window);
                region(y, height, shift[0]) * 3 + region(x, width, shift[1])
            };
            // Each position's region once, not once per pair: 0.07 ms instead of 0.5 for the
            // masks of a Swin-T forward at 224.
            let ids: Vec<usize> = (0..n).map(id).collect();
            for i in &ids {
                mask.extend(ids.iter().map(|j| if i == j { 0.0 } else { -100.0 }));
            }
        }
    }
    mask
}

/// torchvision's `ShiftedWindowAttention` (V1) and `ShiftedWindowAttentionV2`.
#[derive(Module, Debug)]
pub struct WindowAttention {
    /// Query, key and value: `Linear(C, 3C)`.
    pub qkv: Linear,
    /// Output projection.
    pub proj: Linear,
    /// V1: the learnt bias table, `[(2w - 1)^2, heads]`.
    pub relative_position_bias_table: Option<Param<Tensor<2>>>,
    /// V2: `[heads, 1, 1]`, the log of the cosine attention's scale (clamped at `log(100)`).
    pub logit_scale: Option<Param<Tensor<3>>>,
    /// V2: `Linear(2, 512)`, ReLU, `Linear(512, heads, bias=False)`, giving the bias table.
    pub cpb_mlp: Option<Vec<VectorLayer>>,
    /// Dropout after the projection.
    pub dropout: Dropout,
    /// Window side.
    pub window: usize,
    /// Shift of the windows (0, or half a window).
    pub shift: usize,
    /// Attention heads.
    pub num_heads: usize,
}

impl WindowAttention {
    fn new(
        dim: usize,
        num_heads: usize,
        window: usize,
        shift: usize,
        v2: bool,
        dropout: f64,
        device: &Device,
    ) -> Self {
        let table_rows = (2 * window - 1) * (2 * window - 1);
        Self {
            qkv: linear(dim, 3 * dim, true, device),
            proj: linear(dim, dim, true, device),
            relative_position_bias_table: (!v2).then(|| {
                Initializer::Normal {
                    mean: 0.0,
                    std: 0.02,
                }
                .init([table_rows, num_heads], device)
            }),
            logit_scale: v2.then(|| {
                Initializer::Constant { value: 10f64.ln() }.init([num_heads, 1, 1], device)
            }),
            cpb_mlp: v2.then(|| {
                vec![
                    VectorLayer::Linear(linear(2, 512, true, device)),
                    VectorLayer::Relu(Relu),
                    VectorLayer::Linear(linear(512, num_heads, false, device)),
                ]
            }),
            dropout: DropoutConfig::new(dropout).init(),
            window,
            shift,
            num_heads,
        }
    }

    /// The relative position bias of one window: `[1, heads, w^2, w^2]`.
    fn relative_position_bias(&self, device: &Device) -> Tensor<4> {
        let w = self.window;

        let table = match (&self.relative_position_bias_table, &self.cpb_mlp) {
            (Some(table), _) => table.val(),
            (None, Some(mlp)) => {
                let side = 2 * w - 1;
                let coords = Tensor::<2>::from_data(
                    TensorData::new(relative_coords_table(w), [side * side, 2]),
                    device,
                );
                run_vector_layers(mlp, coords)
            }
            (None, None) => unreachable!("a window attention has a bias table or cpb_mlp"),
        };
        let bias = relative_position_bias(table, w);
        if self.cpb_mlp.is_some() {
            sigmoid(bias) * 16.0
        } else {
            bias
        }
    }

    /// # Shapes
    /// - input and output: `[batch, height, width, channels]`
    pub fn forward(&self, input: Tensor<4>) -> Tensor<4> {
        let device = input.device();
        let [b, h, w, c] = input.dims();
        let win = self.window;
        let x = pad_to_multiple(input, win);
        let [_, ph, pw, _] = x.dims();
        // No shift along a side that one window covers.
        let shift = [ph, pw].map(|side| if win >= side { 0 } else { self.shift });
        let shifted = shift != [0, 0];
        let x = if shifted {
            x.roll(&[-(shift[0] as i64), -(shift[1] as i64)], &[1, 2])
        } else {
            x
        };
        let (nh, nw) = (ph / win, pw / win);
        let windows = nh * nw;
        let n = win * win;
        let heads = self.num_heads;
        let head_dim = c / heads;
        let x = x
            .reshape([b, nh, win, nw, win, c])
            .permute([0, 1, 3, 2, 4, 5])
            .reshape([b * windows, n, c]);
        let qkv = match (&self.qkv.bias, &self.logit_scale) {
            // V2 zeroes the key's bias (torchvision clears it in every forward).
            (Some(bias), Some(_)) => {
                let keep: Vec<f32> = (0..3 * c)
                    .map(|i| if (c..2 * c).contains(&i) { 0.0 } else { 1.0 })
                    .collect();
                let keep = Tensor::<1>::from_data(TensorData::new(keep, [3 * c]), &device);
                let bias = bias.val() * keep;
                match linear_kernel(x, &self.qkv.weight.val(), Some(&bias)) {
                    Ok(qkv) => qkv,
                    Err(x) => x
                        .reshape([b * windows * n, c])
                        .matmul(self.qkv.weight.val())
                        .add(bias.reshape([1, 3 * c]))
                        .reshape([b * windows, n, 3 * c]),
                }
            }
            _ => linear_last(&self.qkv, x),
        };
        let bias = self.relative_position_bias(&device);
        let mask = shifted.then(|| {
            Tensor::<3>::from_data(
                TensorData::new(shift_mask(ph, pw, win, shift), [windows, n, n]),
                &device,
            )
        });
        let cosine_scale = self
            .logit_scale
            .as_ref()
            .map(|logit_scale| logit_scale.val().clamp_max(100f64.ln()).exp());
        let scale = (head_dim as f64).powf(-0.5);
        let x = if kernels_take(&qkv) {
            attention_kernel(
                qkv,
                heads,
                scale,
                cosine_scale.clone().map(|s| s.reshape([heads])).as_ref(),
                Some(&bias.clone().reshape([heads, n, n])),
                mask.as_ref(),
            )
        } else {
            Err(qkv)
        };
        let x = match x {
            Ok(x) => x,
            Err(qkv) => {
                let [q, k, v] = split_heads(qkv, heads);
                let attn = match cosine_scale {
                    Some(scale) => {
                        normalize(q).matmul(normalize(k).swap_dims(2, 3)) * scale.unsqueeze::<4>()
                    }
                    None => (q * scale).matmul(k.swap_dims(2, 3)),
                };
                let attn = attn + bias;
                let attn = match mask {
                    Some(mask) => (attn.reshape([b, windows, heads, n, n])
                        + mask.reshape([1, windows, 1, n, n]))
                    .reshape([b * windows, heads, n, n]),
                    None => attn,
                };
                merge_heads(softmax(attn, 3).matmul(v))
            }
        };
        let x = self.dropout.forward(linear_last(&self.proj, x));
        let x = x
            .reshape([b, nh, nw, win, win, c])
            .permute([0, 1, 3, 2, 4, 5])
            .reshape([b, ph, pw, c]);
        let x = if shifted {
            x.roll(&[shift[0] as i64, shift[1] as i64], &[1, 2])
        } else {
            x
        };
        x.slice([0..b, 0..h, 0..w, 0..c])
    }
}

/// `F.normalize(x, dim=-1)`: `x / max(|x|, 1e-12)` over the last axis.
fn normalize(x: Tensor<4>) -> Tensor<4> {
    let norm = x.clone().square().sum_dim(3).sqrt().clamp_min(1e-12);
    x / norm
}

/// torchvision's `SwinTransformerBlock` (pre-norm) and `SwinTransformerBlockV2` (post-norm).
#[derive(Module, Debug)]
pub struct SwinBlock {
    /// The norm around the attention.
    pub norm1: LayerNorm,
    /// Shifted-window attention.
    pub attn: WindowAttention,
    /// Drops each branch per sample in training.
    pub stochastic_depth: StochasticDepth,
    /// The norm around the MLP.
    pub norm2: LayerNorm,
    /// `Linear` (`mlp.0`), GELU, dropout, `Linear` (`mlp.3`), dropout.
    pub mlp: Vec<ImageLayer>,
    /// Whether the norms follow their branch (V2) rather than precede it.
    pub post_norm: bool,
}

/// One block's widths and windows.
struct BlockShape {
    dim: usize,
    num_heads: usize,
    mlp_dim: usize,
    window: usize,
    shift: usize,
    v2: bool,
}

impl SwinBlock {
    fn new(shape: BlockShape, sd: f64, dropout: f64, device: &Device) -> Self {
        let BlockShape {
            dim,
            num_heads,
            mlp_dim,
            window,
            shift,
            v2,
        } = shape;
        Self {
            norm1: layer_norm(dim, EPS, device),
            attn: WindowAttention::new(dim, num_heads, window, shift, v2, dropout, device),
            stochastic_depth: StochasticDepth::new(sd),
            norm2: layer_norm(dim, EPS, device),
            mlp: vec![
                ImageLayer::Linear(linear(dim, mlp_dim, true, device)),
                ImageLayer::Activation(ActivationKind::Gelu.init()),
                ImageLayer::Dropout(DropoutConfig::new(dropout).init()),
                ImageLayer::Linear(linear(mlp_dim, dim, true, device)),
                ImageLayer::Dropout(DropoutConfig::new(dropout).init()),
            ],
            post_norm: v2,
        }
    }

    /// # Shapes
    /// - input and output: `[batch, height, width, channels]`
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let sd = &self.stochastic_depth;
        if self.post_norm {
            let x = x.clone() + sd.forward(layer_norm_last(&self.norm1, self.attn.forward(x)));
            x.clone() + sd.forward(layer_norm_last(&self.norm2, run_image_layers(&self.mlp, x)))
        } else {
            let x = x.clone() + sd.forward(self.attn.forward(layer_norm_last(&self.norm1, x)));
            x.clone() + sd.forward(run_image_layers(&self.mlp, layer_norm_last(&self.norm2, x)))
        }
    }
}

/// One slot of `features`: the patch embedding, a stage of blocks, or a patch merging.
// Slots are a few hundred bytes of layer description each, next to megabytes of weights.
#[allow(clippy::large_enum_variant)]
#[derive(Module, Debug)]
pub enum Feature {
    /// The patch embedding: `Conv2d` 4x4 stride 4, `Permute` to NHWC, LayerNorm.
    Layer(ImageLayer),
    /// A stage (`features.N.M`).
    Stage(Vec<SwinBlock>),
    /// A patch merging between stages.
    Merge(PatchMerging),
}

impl Feature {
    fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        match self {
            Feature::Layer(layer) => layer.forward(x),
            Feature::Stage(blocks) => blocks.iter().fold(x, |x, block| block.forward(x)),
            Feature::Merge(merge) => merge.forward(x),
        }
    }
}

/// Swin Transformer (V1 or V2). Build it with [`SwinConfig`].
#[derive(Module, Debug)]
pub struct SwinTransformer {
    /// Patch embedding, stages and patch mergings, all NHWC after the embedding.
    pub features: Vec<Feature>,
    /// The final LayerNorm.
    pub norm: LayerNorm,
    /// The classifier.
    pub head: Option<Linear>,
    /// Side of the attention windows.
    #[module(skip)]
    pub window_size: usize,
    /// Side of the embedding's patches.
    #[module(skip)]
    pub patch_size: usize,
    /// Swin Transformer V2.
    #[module(skip)]
    pub v2: bool,
    /// torchvision's builder name (`swin_t`), or the family's for another shape.
    #[module(skip)]
    pub name: &'static str,
}

impl SwinTransformer {
    /// The unpooled features, channels-last (`features`' output), tapping the stages of
    /// [`Architecture::feature_info`] (permuted to NCHW).
    fn trunk(&self, x: Tensor<4>, taps: &mut Taps) -> Option<Tensor<4>> {
        let mut x = x;
        let mut stage = 0;
        for feature in &self.features {
            x = feature.forward(x);
            if let Feature::Stage(_) = feature {
                tap!(taps, stage, x.clone().permute([0, 3, 1, 2]));
                stage += 1;
            }
        }
        Some(x)
    }
}

impl Architecture for SwinTransformer {
    crate::layers::classifier_head!(head);

    fn family(&self) -> Family {
        Family::SWIN
    }

    /// At least one patch (4x4 for torchvision's builders).
    fn input_spec(&self) -> InputSpec {
        InputSpec {
            channels: self.in_chans(),
            min_size: [self.patch_size, self.patch_size],
            ..SWIN_INPUT
        }
    }

    fn display_name(&self) -> &str {
        self.name
    }

    fn input_conv(&self) -> (&'static str, &Conv2d) {
        (
            "features.0.0",
            stem_conv(match self.features.first() {
                Some(Feature::Layer(layer)) => layer.first_conv(),
                _ => None,
            }),
        )
    }

    fn input_conv_mut(&mut self) -> &mut Conv2d {
        stem_conv(match self.features.first_mut() {
            Some(Feature::Layer(layer)) => layer.first_conv_mut(),
            _ => None,
        })
    }

    /// The stages' outputs, before the final norm: `features.1`, `.3`, `.5`, `.7`; reductions
    /// 4 to 32. Returned NCHW (the stages run channels-last).
    fn feature_info(&self) -> Vec<FeatureInfo> {
        let mut channels = 3;
        let elements: Vec<(usize, usize)> = self
            .features
            .iter()
            .map(|feature| match feature {
                Feature::Layer(layer) => {
                    channels = layer.out_channels(channels);
                    (layer.stride(), channels)
                }
                Feature::Stage(_) => (1, channels),
                Feature::Merge(merge) => {
                    channels = merge.reduction.weight.lazy_shape().dims::<2>()[1];
                    (2, channels)
                }
            })
            .collect();
        sequence_info("features", &elements, 1)
    }

    /// The last stage's output after the final norm, permuted to NCHW.
    fn forward_features_tapped(&self, x: Tensor<4>, taps: &mut Taps) -> Option<Features> {
        let x = layer_norm_last(&self.norm, self.trunk(x, taps)?);
        Some(Features::Map(x.permute([0, 3, 1, 2])))
    }

    /// The average over the positions, then `head`.
    fn forward_head(&self, features: Features, pre_logits: bool) -> Tensor<2> {
        let x = features.expect_map("swin");
        let [b, c, _, _] = x.dims();
        let x = x.mean_dim(2).mean_dim(3).reshape([b, c]);
        if pre_logits {
            return x;
        }
        match &self.head {
            Some(head) => linear_last(head, x),
            None => x,
        }
    }

    fn num_features(&self) -> usize {
        self.norm.gamma.lazy_shape().dims::<1>()[0]
    }

}

impl ImportHooks for SwinTransformer {
    fn classifier_prefixes(&self) -> &'static [&'static str] {
        &["head."]
    }

    /// Each block's `attn.relative_position_index` and, for V2, `attn.relative_coords_table`.
    fn derived_buffers(&self) -> Vec<DerivedBuffer> {
        let window = self.window_size;
        let index: Vec<f64> = relative_position_index(window)
            .into_iter()
            .map(|i| i as f64)
            .collect();
        let coords: Vec<f64> = relative_coords_table(window)
            .into_iter()
            .map(f64::from)
            .collect();
        let side = 2 * window - 1;
        let mut buffers = Vec::new();
        for (i, feature) in self.features.iter().enumerate() {
            let Feature::Stage(blocks) = feature else {
                continue;
            };
            for j in 0..blocks.len() {
                buffers.push(DerivedBuffer {
                    key: format!("features.{i}.{j}.attn.relative_position_index"),
                    shape: vec![index.len()],
                    values: index.clone(),
                });
                if self.v2 {
                    buffers.push(DerivedBuffer {
                        key: format!("features.{i}.{j}.attn.relative_coords_table"),
                        shape: vec![1, side, side, 2],
                        values: coords.clone(),
                    });
                }
            }
        }
        buffers
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
        // A small three-stage Swin V1 and a V2 with another window; torchvision has neither.
        let small = SwinConfig::new(32, vec![2, 2, 2], vec![2, 4, 8])
            .with_window_size(4)
            .with_mlp_ratio(2.0)
            .with_num_classes(5)
            .init(&device)
            .unwrap();
        assert_eq!((small.name, small.num_features()), ("swin", 128));
        // sum(p.numel()) of torchvision's SwinTransformer([4, 4], 32, [2, 2, 2], [2, 4, 8],
        // [4, 4], mlp_ratio=2.0, num_classes=5).
        assert_eq!(crate::num_parameters(&small), 394_625);
        assert_eq!(small.feature_info().len(), 3);
        let x = Tensor::<4>::zeros([1, 3, 40, 36], &device);
        assert_eq!(small.forward(x).dims(), [1, 5]);
        let v2 = SwinConfig::new(16, vec![1, 1], vec![1, 2])
            .with_v2(true)
            .with_window_size(3)
            .with_patch_size(2)
            .init(&device)
            .unwrap();
        assert_eq!((v2.name, v2.input_spec().min_size), ("swin_v2", [2, 2]));
        // sum(p.numel()) of SwinTransformer([2, 2], 16, [1, 1], [1, 2], [3, 3],
        // block=SwinTransformerBlockV2, downsample_layer=PatchMergingV2).
        assert_eq!(crate::num_parameters(&v2), 56_011);
        assert_eq!(v2.forward(Tensor::zeros([1, 3, 10, 10], &device)).dims(), [1, 1000]);
        assert_eq!(SwinConfig::swin_v2_b().name(), "swin_v2_b");
        let err = SwinConfig::new(32, vec![2, 2], vec![3, 4])
            .init(&device)
            .unwrap_err();
        assert!(err.to_string().contains("num_heads"), "{err}");
    }

    #[test]
    fn keys_shapes_and_counts_are_torchvision_s() {
        let device = device();
        let model = SwinConfig::swin_t().init(&device).unwrap();
        let keys = crate::layers::torch_shapes(&model);
        for (key, shape) in [
            ("features.0.0.weight", vec![96, 3, 4, 4]),
            ("features.0.2.weight", vec![96]),
            ("features.1.0.attn.qkv.weight", vec![288, 96]),
            (
                "features.1.1.attn.relative_position_bias_table",
                vec![169, 3],
            ),
            ("features.1.1.mlp.3.weight", vec![96, 384]),
            ("features.2.reduction.weight", vec![192, 384]),
            ("features.2.norm.weight", vec![384]),
            ("features.7.1.norm2.bias", vec![768]),
            ("norm.weight", vec![768]),
            ("head.weight", vec![1000, 768]),
        ] {
            assert_eq!(keys.get(key), Some(&shape), "{key}");
        }
        assert_eq!(crate::num_parameters(&model), 28_288_354);
        let v2 = SwinConfig::swin_v2_t().init(&device).unwrap();
        let keys = crate::layers::torch_shapes(&v2);
        for (key, shape) in [
            ("features.1.0.attn.logit_scale", vec![3, 1, 1]),
            ("features.1.0.attn.cpb_mlp.0.weight", vec![512, 2]),
            ("features.1.0.attn.cpb_mlp.2.weight", vec![3, 512]),
            ("features.2.norm.weight", vec![192]),
        ] {
            assert_eq!(keys.get(key), Some(&shape), "{key}");
        }
        assert!(!keys.contains_key("features.1.0.attn.cpb_mlp.2.bias"));
        assert_eq!(crate::num_parameters(&v2), 28_351_570);
    }

    #[test]
    fn derived_buffers_are_torchvision_s() {
        // torchvision's index for a 2x2 window, and its table's first rows for 8x8.
        assert_eq!(
            relative_position_index(2),
            [4, 3, 1, 0, 5, 4, 2, 1, 7, 6, 4, 3, 8, 7, 5, 4]
        );
        let table = relative_coords_table(8);
        assert_eq!(table.len(), 15 * 15 * 2);
        // Offset (-7, -7) maps to -log2(9) / 3 on both axes; (0, 0) to 0.
        assert!((table[0] + 9f32.log2() / 3.0).abs() < 1e-6);
        assert_eq!(&table[2 * (7 * 15 + 7)..2 * (7 * 15 + 7) + 2], [0.0, 0.0]);
    }

    #[test]
    fn any_size_and_classifier() {
        let device = device();
        let model = SwinConfig::swin_v2_t()
            .with_num_classes(4)
            .init(&device)
            .unwrap();
        for [h, w] in [[64, 48], [4, 4]] {
            let x = Tensor::<4>::zeros([2, 3, h, w], &device);
            assert_eq!(model.forward(x).dims(), [2, 4]);
        }
        let model = model.reset_classifier(6, &device).unwrap();
        assert_eq!(model.num_classes(), 6);
        let x = Tensor::<4>::zeros([1, 3, 3, 8], &device);
        assert!(matches!(
            model.try_forward(x),
            Err(InputError::TooSmall { min: [4, 4], .. })
        ));
    }
}
