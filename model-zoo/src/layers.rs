//! Small building blocks shared by the model families.

use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::{Initializer, Linear, LinearConfig, PaddingConfig2d};
use burn::tensor::Device;

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

/// Builds a convolution initialised as torchvision does for its CNNs:
/// `kaiming_normal_(mode="fan_out", nonlinearity="relu")`.
///
/// PyTorch's fan-out of a conv weight `[out, in/groups, k, k]` is `out * k * k`, whatever the
/// groups (burn's own Kaiming initialiser divides by the groups), so the standard deviation is
/// computed here: `sqrt(2 / (out * k * k))`.
pub(crate) fn conv_kaiming_fan_out(config: Conv2dConfig, device: &Device) -> Conv2d {
    let fan_out = (config.channels[1] * config.kernel_size[0] * config.kernel_size[1]) as f64;
    config
        .with_initializer(Initializer::Normal {
            mean: 0.0,
            std: (2.0 / fan_out).sqrt(),
        })
        .init(device)
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
