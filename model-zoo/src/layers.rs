//! Small building blocks shared by the model families.

use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::{Initializer, Linear, LinearConfig, PaddingConfig2d};
use burn::tensor::Device;

/// A bias-free `k x k` convolution initialised as torchvision does for its CNNs:
/// `kaiming_normal_(mode="fan_out", nonlinearity="relu")`.
///
/// PyTorch's fan-out of a conv weight `[out, in/groups, k, k]` is `out * k * k`, whatever the
/// groups (burn's own Kaiming initialiser divides by the groups), so the standard deviation is
/// computed here: `sqrt(2 / (out * k * k))`.
pub(crate) fn conv_kaiming_fan_out(
    in_channels: usize,
    out_channels: usize,
    kernel: usize,
    stride: usize,
    padding: usize,
    dilation: usize,
    groups: usize,
    device: &Device,
) -> Conv2d {
    let fan_out = (out_channels * kernel * kernel) as f64;
    Conv2dConfig::new([in_channels, out_channels], [kernel, kernel])
        .with_stride([stride, stride])
        .with_padding(PaddingConfig2d::Explicit(
            padding, padding, padding, padding,
        ))
        .with_dilation([dilation, dilation])
        .with_groups(groups)
        .with_bias(false)
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
