//! The heads of torchvision's segmentation models (`torchvision/models/segmentation/`):
//! `FCNHead`, `DeepLabHead` with its `ASPP`, and `LRASPPHead`, as the same sequences of
//! layers, so that their keys are torchvision's (`classifier.0.convs.4.1.weight`) by
//! construction.

use burn::module::Module;
use burn::nn::DropoutConfig;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::tensor::module::interpolate;
use burn::tensor::ops::{InterpolateMode, InterpolateOptions};
use burn::tensor::{Device, Tensor};

use crate::layers::{
    ActivationKind, BatchNormConfig, Conv2dNormActivation, ImageLayer, conv2d, run_image_layers,
};

/// Bilinear resizing of `x` to `size`, `align_corners=False`: torchvision's
/// `F.interpolate(x, size=size, mode="bilinear", align_corners=False)`, the segmentation
/// models' upsampling. A map already of that size is returned as it is (PyTorch's resize to
/// the same size is the identity too).
///
/// # Shapes
/// - `x`: `[batch, channels, height, width]`
/// - output: `[batch, channels, size[0], size[1]]`
pub fn upsample_bilinear(x: Tensor<4>, size: [usize; 2]) -> Tensor<4> {
    let [_, _, h, w] = x.dims();
    if [h, w] == size {
        return x;
    }
    interpolate(
        x,
        InterpolateOptions::new(InterpolateMode::Bilinear)
            .with_align_corners(false)
            .with_output_size(size),
    )
}

/// A convolution initialised as PyTorch's `nn.Conv2d` default (what torchvision's heads keep:
/// weight and bias uniform in `±1/sqrt(fan_in)`, Burn's default initialiser).
fn conv(
    in_channels: usize,
    out_channels: usize,
    kernel: usize,
    bias: bool,
    device: &Device,
) -> Conv2d {
    let padding = (kernel - 1) / 2;
    Conv2dConfig::new([in_channels, out_channels], [kernel, kernel])
        .with_padding(burn::nn::PaddingConfig2d::Explicit(
            padding, padding, padding, padding,
        ))
        .with_bias(bias)
        .init(device)
}

/// A head's last layer: a biased 1x1 convolution to the classes, PyTorch's default
/// initialisation.
pub(super) fn classifier_conv(in_channels: usize, num_classes: usize, device: &Device) -> Conv2d {
    conv(in_channels, num_classes, 1, true, device)
}

/// `nn.BatchNorm2d(channels)` with PyTorch's defaults.
fn batch_norm(channels: usize, device: &Device) -> ImageLayer {
    ImageLayer::BatchNorm(BatchNormConfig::new(channels).init(device))
}

/// `Conv2d(bias=False)`, `BatchNorm2d`, `ReLU`: the `nn.Sequential` every branch of torchvision's
/// heads starts from, with PyTorch's default initialisation.
fn conv_bn_relu(
    in_channels: usize,
    out_channels: usize,
    kernel: usize,
    dilation: usize,
    device: &Device,
) -> Vec<ImageLayer> {
    let block = Conv2dNormActivation::new(in_channels, out_channels, kernel).dilation(dilation);
    vec![
        ImageLayer::Conv(block.conv_config().init(device)),
        batch_norm(out_channels, device),
        ImageLayer::relu(),
    ]
}

/// torchvision's `FCNHead(in_channels, channels)`: a 3x3 convolution to `in_channels / 4`,
/// BatchNorm, ReLU, `Dropout(0.1)`, and a biased 1x1 convolution to the classes (keys `.0`,
/// `.1`, `.4`). The head of FCN, and the auxiliary head of FCN and DeepLabV3.
pub fn fcn_head(in_channels: usize, num_classes: usize, device: &Device) -> Vec<ImageLayer> {
    let inter = in_channels / 4;
    let mut layers = conv_bn_relu(in_channels, inter, 3, 1, device);
    layers.push(ImageLayer::Dropout(DropoutConfig::new(0.1).init()));
    layers.push(ImageLayer::Conv(classifier_conv(
        inter,
        num_classes,
        device,
    )));
    layers
}

/// torchvision's `ASPP(in_channels, atrous_rates, out_channels=256)`: a 1x1 branch, one 3x3
/// branch per rate (dilated by it), and a pooling branch (global average, 1x1 convolution,
/// BatchNorm, ReLU, spread back over the map), concatenated and projected to 256 channels
/// (1x1 convolution, BatchNorm, ReLU, `Dropout(0.5)`).
#[derive(Module, Debug)]
pub struct Aspp {
    /// The branches: `Sequential(conv, bn, relu)` each, the pooling one
    /// `Sequential(pool, conv, bn, relu)` last.
    pub convs: Vec<ImageLayer>,
    /// The projection of the concatenated branches.
    pub project: Vec<ImageLayer>,
}

impl Aspp {
    /// torchvision's `ASPP(in_channels, atrous_rates, out_channels)`, initialised as PyTorch's
    /// defaults.
    pub fn new(in_channels: usize, rates: &[usize], out_channels: usize, device: &Device) -> Self {
        let mut convs = vec![ImageLayer::Sequential(conv_bn_relu(
            in_channels,
            out_channels,
            1,
            1,
            device,
        ))];
        for &rate in rates {
            convs.push(ImageLayer::Sequential(conv_bn_relu(
                in_channels,
                out_channels,
                3,
                rate,
                device,
            )));
        }
        let mut pooling = vec![ImageLayer::AdaptiveAvgPool(
            burn::nn::pool::AdaptiveAvgPool2dConfig::new([1, 1]).init(),
        )];
        pooling.extend(conv_bn_relu(in_channels, out_channels, 1, 1, device));
        convs.push(ImageLayer::Sequential(pooling));
        let mut project = conv_bn_relu(convs.len() * out_channels, out_channels, 1, 1, device);
        project.push(ImageLayer::Dropout(DropoutConfig::new(0.5).init()));
        Self { convs, project }
    }

    /// # Shapes
    /// - `x`: `[batch, in_channels, height, width]`
    /// - output: `[batch, out_channels, height, width]`
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let [batch, _, h, w] = x.dims();
        let branches = self
            .convs
            .iter()
            .map(|branch| {
                let y = branch.forward(x.clone());
                // The pooling branch (`ASPPPooling`) is 1x1: its bilinear upsampling is the
                // value everywhere, which `expand` gives exactly.
                let [_, c, yh, yw] = y.dims();
                if [yh, yw] == [1, 1] && [h, w] != [1, 1] {
                    y.expand([batch, c, h, w])
                } else {
                    y
                }
            })
            .collect();
        run_image_layers(&self.project, Tensor::cat(branches, 1))
    }
}

/// A slot of torchvision's `DeepLabHead` (an `nn.Sequential`): the ASPP first, then layers.
// One ASPP next to a few small layers.
#[allow(clippy::large_enum_variant)]
#[derive(Module, Debug)]
pub enum DeepLabSlot {
    /// `ASPP`, slot 0.
    Aspp(Aspp),
    /// A layer.
    Layer(ImageLayer),
}

/// torchvision's `DeepLabHead(in_channels, num_classes)`: ASPP with rates 12, 24, 36, a 3x3
/// convolution, BatchNorm, ReLU, and a biased 1x1 convolution to the classes (keys `.0` to
/// `.4`).
pub fn deeplab_head(in_channels: usize, num_classes: usize, device: &Device) -> Vec<DeepLabSlot> {
    let mut slots = vec![DeepLabSlot::Aspp(Aspp::new(
        in_channels,
        &[12, 24, 36],
        256,
        device,
    ))];
    slots.extend(
        conv_bn_relu(256, 256, 3, 1, device)
            .into_iter()
            .map(DeepLabSlot::Layer),
    );
    slots.push(DeepLabSlot::Layer(ImageLayer::Conv(conv(
        256,
        num_classes,
        1,
        true,
        device,
    ))));
    slots
}

/// Runs a `DeepLabHead`.
///
/// # Shapes
/// - `x`: `[batch, in_channels, height, width]`
/// - output: `[batch, num_classes, height, width]`
pub fn run_deeplab_head(slots: &[DeepLabSlot], x: Tensor<4>) -> Tensor<4> {
    slots.iter().fold(x, |x, slot| match slot {
        DeepLabSlot::Aspp(aspp) => aspp.forward(x),
        DeepLabSlot::Layer(layer) => layer.forward(x),
    })
}

/// torchvision's `LRASPPHead(low_channels, high_channels, num_classes, inter_channels)`: the
/// high-level map through a 1x1 convolution, BatchNorm and ReLU (`cbr`), scaled by a sigmoid
/// gate of its global average (`scale`), upsampled to the low-level map and classified, plus
/// a classification of the low-level map.
#[derive(Module, Debug)]
pub struct LrasppHead {
    /// `Conv2d(high, inter, 1, bias=False)`, `BatchNorm2d`, `ReLU`.
    pub cbr: Vec<ImageLayer>,
    /// `AdaptiveAvgPool2d(1)`, `Conv2d(high, inter, 1, bias=False)`, `Sigmoid`.
    pub scale: Vec<ImageLayer>,
    /// `Conv2d(low, num_classes, 1)`.
    pub low_classifier: Conv2d,
    /// `Conv2d(inter, num_classes, 1)`.
    pub high_classifier: Conv2d,
}

impl LrasppHead {
    /// torchvision's `LRASPPHead`, initialised as PyTorch's defaults.
    pub fn new(
        low_channels: usize,
        high_channels: usize,
        num_classes: usize,
        inter_channels: usize,
        device: &Device,
    ) -> Self {
        Self {
            cbr: conv_bn_relu(high_channels, inter_channels, 1, 1, device),
            scale: vec![
                ImageLayer::AdaptiveAvgPool(
                    burn::nn::pool::AdaptiveAvgPool2dConfig::new([1, 1]).init(),
                ),
                ImageLayer::Conv(conv(high_channels, inter_channels, 1, false, device)),
                ImageLayer::Activation(ActivationKind::Sigmoid.init()),
            ],
            low_classifier: conv(low_channels, num_classes, 1, true, device),
            high_classifier: conv(inter_channels, num_classes, 1, true, device),
        }
    }

    /// # Shapes
    /// - `low`: `[batch, low_channels, h_low, w_low]` (stride 8)
    /// - `high`: `[batch, high_channels, h_high, w_high]` (stride 16)
    /// - output: `[batch, num_classes, h_low, w_low]`
    pub fn forward(&self, low: Tensor<4>, high: Tensor<4>) -> Tensor<4> {
        let x = run_image_layers(&self.cbr, high.clone());
        let s = run_image_layers(&self.scale, high);
        let [_, _, h, w] = low.dims();
        let x = upsample_bilinear(x * s, [h, w]);
        conv2d(&self.low_classifier, low) + conv2d(&self.high_classifier, x)
    }
}

#[cfg(test)]
mod tests {
    use burn::tensor::TensorData;

    use super::*;

    /// The upsampling and its gradient as PyTorch's
    /// (`F.interpolate(x, size=(4, 5), mode="bilinear", align_corners=False)` of
    /// `arange(6).reshape(1, 1, 2, 3)`, and the gradient of `(y * arange(20) / 10).sum()`).
    #[test]
    fn upsampling_and_its_gradient_are_pytorch_s() {
        let device = crate::device::test_device().autodiff();
        let x = Tensor::<4>::from_data(
            TensorData::new((0..6).map(|v| v as f32).collect(), [1, 1, 2, 3]),
            &device,
        )
        .require_grad();
        let w = Tensor::<4>::from_data(
            TensorData::new((0..20).map(|v| v as f32 / 10.0).collect(), [1, 1, 4, 5]),
            &device,
        );
        let y = upsample_bilinear(x.clone(), [4, 5]);
        let got = y.clone().into_data().try_to_vec::<f32>().unwrap();
        let grads = (y * w).sum().backward();
        let grad = x
            .grad(&grads)
            .unwrap()
            .into_data()
            .try_to_vec::<f32>()
            .unwrap();
        let want_y = [
            0.0, 0.4, 1.0, 1.6, 2.0, 0.75, 1.15, 1.75, 2.35, 2.75, 2.25, 2.65, 3.25, 3.85, 4.25,
            3.0, 3.4, 4.0, 4.6, 5.0,
        ];
        let want_grad = [1.12, 1.845, 2.16, 3.92, 4.995, 4.96];
        for (got, want) in [(got, &want_y[..]), (grad, &want_grad[..])] {
            assert_eq!(got.len(), want.len());
            for (a, b) in got.iter().zip(want) {
                assert!((a - b).abs() < 1e-5, "{a} vs {b}");
            }
        }
    }
}
