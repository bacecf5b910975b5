//! Small building blocks shared by the model families.

use burn::module::{Module, Param, ParamGroup};
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::pool::{AdaptiveAvgPool2d, AvgPool2d, MaxPool2d};
use burn::nn::{
    Dropout, Identity, Initializer, LayerNorm, Linear, LinearConfig, PaddingConfig2d, Relu,
};
use burn::tensor::{Device, Tensor};

use crate::error::ConfigError;

pub(crate) mod activation_kind;
mod basic_conv;
mod batch_norm;
mod blocked;
mod classifier;
mod conv;
mod input_conv;
mod misc;
mod named;
mod transformer;
mod trunk;
pub use activation_kind::ActivationKind;
pub use basic_conv::BasicConv2d;
pub(crate) use basic_conv::transform_input;
pub use batch_norm::{BatchNorm, BatchNormConfig};
pub use blocked::{
    BlockedConv2d, BlockedLinear, MAX_TENSOR_BYTES, ROW_BLOCKS, RowBlockError, ShapeNames,
    burn_shapes_as_torch, merge_row_blocks, model_shapes, row_block_sizes, split_row_blocks,
    torch_shapes,
};
pub use classifier::ClassifierHead;
pub(crate) use classifier::{classifier_head, removed_head};
pub use conv::{
    adaptive_avg_pool2d, adaptive_avg_pool2d_with, conv_norm_activation, conv2d, max_pool2d,
    max_pool2d_with,
};
pub use input_conv::adapt_input_conv;
pub use misc::{
    Activation, Conv2dNormActivation, InvertedResidual, SqueezeExcitation, StochasticDepth,
    add_activation, add_scaled_channels_last, file_has_module, gelu, relu, residual,
};
pub use named::Numbered;
pub use transformer::{
    MultiheadAttention, Permute, layer_norm, layer_norm_last, linear_last, merge_heads,
    relative_position_bias, relative_position_index, scaled_dot_product, softmax_last, split_heads,
};
pub(crate) use transformer::{attention_kernel, kernels_take, linear_kernel};
pub(crate) use trunk::{TrunkSlot, image_features, slot_elements, slot_features, slot_layer};

/// The configuration of a bias-free `kernel x kernel` convolution padded as torchvision's
/// `conv1x1`/`conv3x3`/stem do: `dilation * (kernel - 1) / 2` on each side.
pub(crate) fn conv_config(
    in_channels: usize,
    out_channels: usize,
    kernel: usize,
    stride: usize,
    dilation: usize,
) -> Conv2dConfig {
    let padding = dilation * (kernel - 1) / 2;
    Conv2dConfig::new([in_channels, out_channels], [kernel, kernel])
        .with_stride([stride, stride])
        .with_padding(PaddingConfig2d::Explicit(
            padding, padding, padding, padding,
        ))
        .with_dilation([dilation, dilation])
        .with_bias(false)
}

/// torchvision's `_make_divisible(v, divisor)`: `v` rounded to the nearest multiple of
/// `divisor` (at least `divisor`), but never more than 10% below `v`. Channel widths of the
/// mobile families and EfficientNet.
pub fn make_divisible(v: f64, divisor: usize) -> usize {
    let d = divisor as f64;
    // Python's `int(v + divisor / 2) // divisor * divisor`, `v` non-negative.
    let rounded = ((v + d / 2.0) as usize / divisor * divisor).max(divisor);
    if (rounded as f64) < 0.9 * v {
        rounded + divisor
    } else {
        rounded
    }
}

/// Builds a convolution initialised as torchvision does for its CNNs:
/// `kaiming_normal_(mode="fan_out", nonlinearity="relu")`.
///
/// PyTorch's fan-out of a conv weight `[out, in/groups, k, k]` is `out * k * k`, whatever the
/// groups (burn's own Kaiming initialiser divides by the groups), so the standard deviation is
/// computed here: `sqrt(2 / (out * k * k))`.
pub(crate) fn conv_kaiming_fan_out(config: Conv2dConfig, device: &Device) -> Conv2d {
    let std = kaiming_fan_out_std(&config);
    config
        .with_initializer(Initializer::Normal { mean: 0.0, std })
        .init(device)
}

fn kaiming_fan_out_std(config: &Conv2dConfig) -> f64 {
    let fan_out = (config.channels[1] * config.kernel_size[0] * config.kernel_size[1]) as f64;
    (2.0 / fan_out).sqrt()
}

/// A convolution slot initialised as [`conv_kaiming_fan_out`]: one `Conv2d` where its `f32`
/// weight fits in [`MAX_TENSOR_BYTES`] (or it is grouped), else a [`BlockedConv2d`].
pub(crate) fn conv_slot_kaiming_fan_out(config: Conv2dConfig, device: &Device) -> ImageLayer {
    let [c_in, c_out] = config.channels;
    let [kh, kw] = config.kernel_size;
    let bytes = c_out * c_in / config.groups * kh * kw * std::mem::size_of::<f32>();
    if bytes <= MAX_TENSOR_BYTES || config.groups != 1 {
        ImageLayer::Conv(conv_kaiming_fan_out(config, device))
    } else {
        let std = kaiming_fan_out_std(&config);
        ImageLayer::BlockedConv(BlockedConv2d::new(&config, std, device))
    }
}

/// A linear layer initialised as PyTorch's `nn.Linear` default: weight and bias uniform in
/// `±1/sqrt(in_features)` (burn's default initialiser draws exactly that).
pub(crate) fn linear_torch_default(
    in_features: usize,
    out_features: usize,
    device: &Device,
) -> Linear {
    LinearConfig::new(in_features, out_features).init(device)
}

/// Sets a layer's bias to zeros (torchvision's `nn.init.constant_(m.bias, 0)`).
pub(crate) fn zero_bias(
    bias: Option<Param<Tensor<1>>>,
    device: &Device,
) -> Option<Param<Tensor<1>>> {
    // By the shape the parameter was declared with, so that no random bias is drawn first.
    bias.map(|b| Initializer::Zeros.init(b.lazy_shape(), device))
}

/// One slot of a torchvision `nn.Sequential` over images (`features` of AlexNet, VGG and the
/// mobile families).
///
/// A `Vec` of these has one entry per torchvision slot, parameter-free ones (ReLU, max-pool)
/// included, so the `Vec` index *is* torchvision's index (`features.3.weight`) by construction,
/// and no key map is needed. Enum variants do not appear in state_dict keys, so a nested
/// [`ImageLayer::Sequential`] gives `features.1.0.weight` as torchvision's nested
/// `nn.Sequential`s (`Conv2dNormActivation`) do.
// Slots are a few hundred bytes of layer description each, next to megabytes of weights.
#[allow(clippy::large_enum_variant)]
#[derive(Module, Debug)]
pub enum ImageLayer {
    /// `nn.Conv2d`.
    Conv(Conv2d),
    /// `nn.Conv2d` whose weight is over [`MAX_TENSOR_BYTES`], kept as row blocks (see
    /// [`BlockedConv2d`]); torchvision's key and shape all the same.
    BlockedConv(BlockedConv2d),
    /// `nn.BatchNorm2d`.
    BatchNorm(BatchNorm),
    /// An activation (`nn.ReLU`, `nn.ReLU6`, `nn.Hardswish`, ...).
    Activation(Activation),
    /// `nn.MaxPool2d`.
    MaxPool(MaxPool2d),
    /// `nn.AdaptiveAvgPool2d`.
    AdaptiveAvgPool(AdaptiveAvgPool2d),
    /// `nn.Dropout` (active only on an autodiff device).
    Dropout(Dropout),
    /// A nested `nn.Sequential`, such as torchvision's `Conv2dNormActivation`.
    Sequential(Vec<ImageLayer>),
    /// torchvision's `SqueezeExcitation`.
    SqueezeExcitation(SqueezeExcitation),
    /// MobileNet V3's inverted residual block (and EfficientNet's MBConv).
    InvertedResidual(InvertedResidual),
    /// A slot that does nothing: `nn.Identity`, or a BatchNorm folded into the convolution
    /// before it (see [`fold_layers`]).
    Identity(Identity),
    /// torchvision's `LayerNorm2d`: LayerNorm over the channels of an NCHW tensor.
    LayerNorm2d(LayerNorm),
    /// `nn.LayerNorm` over the last axis (channels of an NHWC tensor, after a [`Permute`]).
    LayerNorm(LayerNorm),
    /// `nn.Linear` over the last axis.
    Linear(Linear),
    /// torchvision's `Permute`.
    Permute(Permute),
    /// `nn.AvgPool2d` (padding counted in the average, PyTorch's default).
    AvgPool(AvgPool2d),
}

impl ImageLayer {
    /// `nn.ReLU`.
    pub fn relu() -> Self {
        ImageLayer::Activation(Activation::Relu(Relu))
    }

    /// Applies the layer.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        match self {
            ImageLayer::Conv(conv) => conv2d(conv, x),
            ImageLayer::BlockedConv(conv) => conv.forward(x),
            ImageLayer::BatchNorm(bn) => bn.forward(x),
            ImageLayer::Activation(activation) => activation.forward(x),
            ImageLayer::MaxPool(pool) => max_pool2d(pool, x),
            ImageLayer::AdaptiveAvgPool(pool) => adaptive_avg_pool2d(pool, x),
            ImageLayer::Dropout(dropout) => dropout.forward(x),
            ImageLayer::Sequential(layers) => run_image_layers(layers, x),
            ImageLayer::SqueezeExcitation(se) => se.forward(x),
            ImageLayer::InvertedResidual(block) => block.forward(x),
            ImageLayer::Identity(_) => x,
            ImageLayer::LayerNorm2d(norm) => {
                layer_norm_last(norm, x.permute([0, 2, 3, 1])).permute([0, 3, 1, 2])
            }
            ImageLayer::LayerNorm(norm) => layer_norm_last(norm, x),
            ImageLayer::Linear(linear) => linear_last(linear, x),
            ImageLayer::Permute(permute) => permute.forward(x),
            ImageLayer::AvgPool(pool) => pool.forward(x),
        }
    }

    /// How much the layer shrinks its input (its stride; the product of a sequence's), for
    /// [`crate::FeatureInfo::reduction`].
    pub fn stride(&self) -> usize {
        match self {
            ImageLayer::Conv(conv) => conv.stride[0],
            ImageLayer::BlockedConv(conv) => conv.row_blocks.first().map_or(1, |c| c.stride[0]),
            ImageLayer::MaxPool(pool) => pool.stride[0],
            ImageLayer::AvgPool(pool) => pool.stride[0],
            ImageLayer::Sequential(layers) => layers.iter().map(ImageLayer::stride).product(),
            ImageLayer::InvertedResidual(block) => {
                block.block.iter().map(ImageLayer::stride).product()
            }
            _ => 1,
        }
    }

    /// The layer's output channels for `in_channels` input channels, for
    /// [`crate::FeatureInfo::channels`] (a `Linear` on channels-last maps counts its outputs).
    pub fn out_channels(&self, in_channels: usize) -> usize {
        let through = |layers: &[ImageLayer]| {
            layers
                .iter()
                .fold(in_channels, |c, layer| layer.out_channels(c))
        };
        match self {
            ImageLayer::Conv(conv) => conv.weight.lazy_shape().dims::<4>()[0],
            ImageLayer::BlockedConv(conv) => conv
                .row_blocks
                .iter()
                .map(|c| c.weight.lazy_shape().dims::<4>()[0])
                .sum(),
            ImageLayer::Linear(linear) => linear.weight.lazy_shape().dims::<2>()[1],
            ImageLayer::Sequential(layers) => through(layers),
            ImageLayer::InvertedResidual(block) => through(&block.block),
            _ => in_channels,
        }
    }

    /// The layer's first convolution: itself, or a sequence's first layer's (torchvision's
    /// `Conv2dNormActivation` stems, key `.0`).
    pub(crate) fn first_conv(&self) -> Option<&Conv2d> {
        match self {
            ImageLayer::Conv(conv) => Some(conv),
            ImageLayer::Sequential(layers) => layers.first()?.first_conv(),
            _ => None,
        }
    }

    /// [`Self::first_conv`], to replace it.
    pub(crate) fn first_conv_mut(&mut self) -> Option<&mut Conv2d> {
        match self {
            ImageLayer::Conv(conv) => Some(conv),
            ImageLayer::Sequential(layers) => layers.first_mut()?.first_conv_mut(),
            _ => None,
        }
    }

    /// A sequence's `(stride, output channels)` for `in_channels` input channels, as one
    /// element of [`crate::features::sequence_info`].
    pub(crate) fn chain(layers: &[ImageLayer], in_channels: usize) -> (usize, usize) {
        layers.iter().fold((1, in_channels), |(s, c), layer| {
            (s * layer.stride(), layer.out_channels(c))
        })
    }

    /// Each layer's `(stride, output channels)`, for [`crate::features::sequence_info`].
    pub(crate) fn elements(layers: &[ImageLayer], in_channels: usize) -> Vec<(usize, usize)> {
        let mut channels = in_channels;
        layers
            .iter()
            .map(|layer| {
                channels = layer.out_channels(channels);
                (layer.stride(), channels)
            })
            .collect()
    }

    /// Whether a BatchNorm follows a convolution anywhere in `layers` (so [`fold_layers`]
    /// changes them).
    pub fn can_fold(layers: &[ImageLayer]) -> bool {
        layers.windows(2).any(|pair| {
            matches!(
                pair,
                [
                    ImageLayer::Conv(_) | ImageLayer::BlockedConv(_),
                    ImageLayer::BatchNorm(_)
                ]
            )
        }) || layers.iter().any(|layer| match layer {
            ImageLayer::Sequential(inner) => Self::can_fold(inner),
            _ => false,
        })
    }
}

/// A family's input convolution, which every family's structure has (its first layer is one,
/// or begins with one).
pub(crate) fn stem_conv<T>(conv: Option<T>) -> T {
    conv.unwrap_or_else(|| unreachable!("every family begins with a convolution"))
}

/// Folds every BatchNorm that directly follows a convolution in `layers` (nested sequences
/// included) into that convolution (see [`fold_batchnorm`]); the BatchNorm's slot becomes
/// [`ImageLayer::Identity`], so indices stay torchvision's. Eval mode only, after loading.
pub fn fold_layers(layers: Vec<ImageLayer>) -> Vec<ImageLayer> {
    let mut out: Vec<ImageLayer> = Vec::with_capacity(layers.len());
    for layer in layers {
        match (out.last_mut(), layer) {
            (Some(last @ ImageLayer::Conv(_)), ImageLayer::BatchNorm(bn)) => {
                let ImageLayer::Conv(conv) =
                    std::mem::replace(last, ImageLayer::Identity(Identity))
                else {
                    unreachable!("matched as a convolution above")
                };
                *last = ImageLayer::Conv(fold_batchnorm(conv, &bn));
                out.push(ImageLayer::Identity(Identity));
            }
            (Some(last @ ImageLayer::BlockedConv(_)), ImageLayer::BatchNorm(bn)) => {
                let ImageLayer::BlockedConv(conv) =
                    std::mem::replace(last, ImageLayer::Identity(Identity))
                else {
                    unreachable!("matched as a blocked convolution above")
                };
                *last = ImageLayer::BlockedConv(conv.fold_batchnorm(&bn));
                out.push(ImageLayer::Identity(Identity));
            }
            (_, ImageLayer::Sequential(inner)) => {
                out.push(ImageLayer::Sequential(fold_layers(inner)))
            }
            (_, layer) => out.push(layer),
        }
    }
    out
}

/// Folds a single layer (a nested sequence such as a [`Conv2dNormActivation`]) through
/// [`fold_layers`].
pub fn fold_one(layer: ImageLayer) -> ImageLayer {
    fold_layers(vec![layer])
        .pop()
        .unwrap_or_else(|| unreachable!("folding keeps every slot"))
}

/// One slot of a torchvision `nn.Sequential` over feature vectors (`classifier` of AlexNet and
/// VGG); indices match torchvision's as for [`ImageLayer`].
#[derive(Module, Debug)]
pub enum VectorLayer {
    /// `nn.Linear`.
    Linear(Linear),
    /// `nn.Linear` whose weight is over [`MAX_TENSOR_BYTES`], kept as row blocks (see
    /// [`BlockedLinear`]); torchvision's key and shape all the same.
    BlockedLinear(BlockedLinear),
    /// `nn.ReLU`.
    Relu(Relu),
    /// `nn.Dropout` (active only on an autodiff device).
    Dropout(Dropout),
    /// Another activation (MobileNet V3's `nn.Hardswish`).
    Activation(Activation),
    /// `nn.LayerNorm` over the features (ConvNeXt's head norm, a `LayerNorm2d` on a 1x1 map).
    LayerNorm(LayerNorm),
    /// A parameter-free slot that keeps the features as they are (`nn.Flatten` of
    /// features already flat).
    Identity(Identity),
}

impl VectorLayer {
    /// Applies the layer.
    pub fn forward(&self, x: Tensor<2>) -> Tensor<2> {
        match self {
            VectorLayer::Linear(linear) => linear_last(linear, x),
            VectorLayer::BlockedLinear(linear) => linear.forward(x),
            VectorLayer::Relu(relu) => relu.forward(x),
            VectorLayer::Dropout(dropout) => dropout.forward(x),
            VectorLayer::Activation(activation) => activation.forward(x),
            VectorLayer::LayerNorm(norm) => layer_norm_last(norm, x),
            VectorLayer::Identity(_) => x,
        }
    }
}

/// A `Linear` slot of `config`'s size: one `Linear` where its `f32` weight fits in
/// [`MAX_TENSOR_BYTES`], else a [`BlockedLinear`] (VGG's and AlexNet's first classifier layer).
/// With `zero_bias`, the bias starts at zero (torchvision's VGG).
pub(crate) fn linear_slot(config: LinearConfig, zero_bias: bool, device: &Device) -> VectorLayer {
    let bytes = config.d_input * config.d_output * std::mem::size_of::<f32>();
    let zero = |linear: Linear| {
        if zero_bias {
            Linear {
                bias: self::zero_bias(linear.bias, device),
                ..linear
            }
        } else {
            linear
        }
    };
    if bytes <= MAX_TENSOR_BYTES {
        VectorLayer::Linear(zero(config.init(device)))
    } else {
        let blocked = BlockedLinear::new(&config, device);
        VectorLayer::BlockedLinear(BlockedLinear {
            row_blocks: blocked.row_blocks.into_iter().map(zero).collect(),
        })
    }
}

/// Runs a sequence of [`ImageLayer`]s. A convolution with the BatchNorm and activation after it
/// (a BatchNorm folded away leaves an `Identity` between them), and a BatchNorm with its
/// activation, run as one step ([`conv_norm_activation`], [`norm_activation`]): one kernel on
/// Flex, the same layers in turn elsewhere.
pub(crate) fn run_image_layers(layers: &[ImageLayer], mut x: Tensor<4>) -> Tensor<4> {
    let mut rest = layers;
    while let Some(layer) = rest.first() {
        let next = |i: usize| rest.get(i);
        let activation_at = |i: usize| match next(i) {
            Some(ImageLayer::Activation(activation)) => Some(activation),
            _ => None,
        };
        let taken;
        (x, taken) = match layer {
            ImageLayer::Conv(conv) => match next(1) {
                Some(ImageLayer::BatchNorm(bn)) => match activation_at(2) {
                    Some(activation) => {
                        (conv_norm_activation(conv, Some(bn), Some(activation), x), 3)
                    }
                    None => (conv_norm_activation(conv, Some(bn), None, x), 2),
                },
                Some(ImageLayer::Identity(_)) => match activation_at(2) {
                    Some(activation) => (conv_norm_activation(conv, None, Some(activation), x), 3),
                    None => (conv2d(conv, x), 1),
                },
                Some(ImageLayer::Activation(activation)) => {
                    (conv_norm_activation(conv, None, Some(activation), x), 2)
                }
                _ => (conv2d(conv, x), 1),
            },
            ImageLayer::BatchNorm(bn) => match activation_at(1) {
                Some(activation) => (norm_activation(Some(bn), Some(activation), x), 2),
                None => (bn.forward(x), 1),
            },
            layer => (layer.forward(x), 1),
        };
        rest = &rest[taken..];
    }
    x
}

/// [`run_image_layers`], tapping the output of each layer that ends a stage (`ends`, from
/// [`crate::features::stage_ends`]; stage `first + k` for `ends[k]`). Each stretch between two
/// ends runs as one sequence, so its convolutions still fuse with what follows them. `None`
/// when the taps stop the forward.
pub(crate) fn run_image_layers_tapped(
    layers: &[ImageLayer],
    mut x: Tensor<4>,
    ends: &[usize],
    first: usize,
    taps: &mut crate::features::Taps,
) -> Option<Tensor<4>> {
    let mut start = 0;
    for (k, &end) in ends.iter().enumerate() {
        x = run_image_layers(&layers[start..=end], x);
        crate::tap!(taps, first + k, x.clone());
        start = end + 1;
    }
    Some(run_image_layers(&layers[start..], x))
}

/// `activation(bn(x))`, each optional: one pass on Flex in inference, the layers in turn
/// elsewhere (and while the BatchNorm trains).
///
/// # Shapes
/// - `x`, output: `[batch, channels, height, width]`
pub fn norm_activation(
    bn: Option<&BatchNorm>,
    activation: Option<&Activation>,
    x: Tensor<4>,
) -> Tensor<4> {
    #[cfg(feature = "flex")]
    let x = match (bn, activation.map(Activation::kind)) {
        (Some(bn), Some(Some(kind))) => match bn.host_scale_shift(&x) {
            Some((scale, shift)) => {
                match crate::kernels::channel_affine(x, &scale, &shift, Some(kind)) {
                    Ok(out) => return out,
                    Err(x) => x,
                }
            }
            None => x,
        },
        _ => x,
    };
    let x = match bn {
        Some(bn) => bn.forward(x),
        None => x,
    };
    match activation {
        Some(activation) => activation.forward(x),
        None => x,
    }
}

/// Runs a sequence of [`VectorLayer`]s.
pub(crate) fn run_vector_layers(layers: &[VectorLayer], mut x: Tensor<2>) -> Tensor<2> {
    for layer in layers {
        x = layer.forward(x);
    }
    x
}

/// The classifier of a classifier sequence, its last slot when that is a `Linear` (as in every
/// torchvision `classifier`): its index, in and out features. `None` for a sequence cut before
/// it ([`ClassifierHead::removed`]), even where a pre-logits `Linear` remains (MaxViT).
pub(crate) fn last_linear(layers: &[VectorLayer]) -> Option<(usize, usize, usize)> {
    let index = layers.len().checked_sub(1)?;
    match &layers[index] {
        VectorLayer::Linear(linear) => {
            let [d_in, d_out] = linear.weight.lazy_shape().dims::<2>();
            Some((index, d_in, d_out))
        }
        VectorLayer::BlockedLinear(linear) => {
            let [d_in, d_out] = linear.dims();
            Some((index, d_in, d_out))
        }
        _ => None,
    }
}

/// The parameters of the classifier of a sequence ([`last_linear`]; none if it has none).
pub(crate) fn last_linear_group(layers: &[VectorLayer]) -> ParamGroup {
    match layers.last() {
        Some(VectorLayer::Linear(linear)) => ParamGroup::ids_from_module(linear.clone()),
        Some(VectorLayer::BlockedLinear(linear)) => ParamGroup::ids_from_module(linear.clone()),
        _ => ParamGroup::from_ids(Vec::new()),
    }
}

/// The error every model's `reset_classifier` gives for zero classes.
fn check_num_classes(model: &str, num_classes: usize) -> Result<(), ConfigError> {
    if num_classes == 0 {
        return Err(ConfigError::Zero {
            model: model.into(),
            field: "num_classes",
        });
    }
    Ok(())
}

/// A new classifier layer for `num_classes` classes (PyTorch's default init), or the error
/// every model's `reset_classifier` gives for zero classes.
pub(crate) fn new_classifier(
    model: &str,
    num_features: usize,
    num_classes: usize,
    device: &Device,
) -> Result<Linear, ConfigError> {
    check_num_classes(model, num_classes)?;
    Ok(linear_torch_default(num_features, num_classes, device))
}

/// Swaps the classifier of a sequence ([`last_linear`]) for a new one with `num_classes`
/// outputs.
pub(crate) fn replace_last_linear(
    mut layers: Vec<VectorLayer>,
    model: &str,
    num_classes: usize,
    device: &Device,
) -> Result<Vec<VectorLayer>, ConfigError> {
    // Zero classes are refused even without a linear layer to replace, as by every model.
    check_num_classes(model, num_classes)?;
    if let Some((index, d_in, _)) = last_linear(&layers) {
        // PyTorch's default initialisation; a head over the size limit is made in blocks.
        layers[index] = linear_slot(LinearConfig::new(d_in, num_classes), false, device);
    }
    Ok(layers)
}

/// `bn(x)`, or `x` where the BatchNorm was folded away (see [`fold_batchnorm`]).
pub(crate) fn norm(bn: &Option<BatchNorm>, x: Tensor<4>) -> Tensor<4> {
    match bn {
        Some(bn) => bn.forward(x),
        None => x,
    }
}

/// `conv` followed by `bn` (in eval mode) as one convolution: each output channel `c` is
/// scaled by `s = gamma[c] / sqrt(running_var[c] + eps)` and gets the bias
/// `beta[c] - running_mean[c] * s + bias[c] * s` (no last term when the convolution had no
/// bias).
/// Computed on the parameters' device, in their precision.
pub fn fold_batchnorm(conv: Conv2d, bn: &BatchNorm) -> Conv2d {
    let (scale, shift) = bn.valid().scale_shift();
    let out_channels = scale.dims()[0];
    let weight = conv
        .weight
        .val()
        .mul(scale.clone().reshape([out_channels, 1, 1, 1]));
    let bias = match &conv.bias {
        Some(bias) => shift.add(bias.val().mul(scale)),
        None => shift,
    };
    Conv2d {
        weight: Param::from_tensor(weight),
        bias: Some(Param::from_tensor(bias)),
        ..conv
    }
}
