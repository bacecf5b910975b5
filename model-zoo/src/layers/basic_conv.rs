//! The blocks GoogLeNet and Inception v3 share: torchvision's `BasicConv2d` and the input
//! transform of their TensorFlow-ported weights.

use burn::module::Module;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::{Initializer, PaddingConfig2d};
use burn::tensor::{Device, Tensor};

use super::{Activation, BatchNorm, BatchNormConfig, conv_norm_activation};

const RELU: Activation = Activation::Relu(burn::nn::Relu);

/// torchvision's `BasicConv2d`: convolution without bias, BatchNorm (`eps = 0.001`), ReLU.
#[derive(Module, Debug)]
pub struct BasicConv2d {
    /// The convolution.
    pub conv: Conv2d,
    /// Its BatchNorm.
    pub bn: BatchNorm,
}

impl BasicConv2d {
    /// The convolution's output channels.
    pub fn out_channels(&self) -> usize {
        self.conv.weight.lazy_shape().dims::<4>()[0]
    }

    /// A `kernel x kernel` convolution with stride and padding, initialised as torchvision's
    /// GoogLeNet does: weights from `N(0, 0.01)` (torchvision truncates at ±2, i.e. ±200
    /// standard deviations, which never happens), BatchNorm weight 1 and bias 0.
    pub(crate) fn new(
        c_in: usize,
        c_out: usize,
        kernel: usize,
        stride: usize,
        padding: usize,
        device: &Device,
    ) -> Self {
        Self::rect(
            [c_in, c_out],
            [kernel, kernel],
            stride,
            [padding, padding],
            0.01,
            device,
        )
    }

    /// A `kernel[0] x kernel[1]` convolution (Inception v3's 1x7 and 7x1) with stride and
    /// `[height, width]` padding, weights from `N(0, std)`: torchvision's
    /// `trunc_normal_(std=std, a=-2, b=2)`, whose bounds are 20 or more standard deviations
    /// away for every `std` torchvision uses, so never reached.
    pub(crate) fn rect(
        [c_in, c_out]: [usize; 2],
        kernel: [usize; 2],
        stride: usize,
        [ph, pw]: [usize; 2],
        std: f64,
        device: &Device,
    ) -> Self {
        let conv = Conv2dConfig::new([c_in, c_out], kernel)
            .with_stride([stride, stride])
            .with_padding(PaddingConfig2d::Explicit(ph, pw, ph, pw))
            .with_bias(false)
            .with_initializer(Initializer::Normal { mean: 0.0, std })
            .init(device);
        Self {
            conv,
            bn: BatchNormConfig::new(c_out).with_epsilon(1e-3).init(device),
        }
    }

    /// Applies convolution, BatchNorm and ReLU, as one kernel where the backend has it
    /// ([`conv_norm_activation`]).
    ///
    /// # Shapes
    /// - input: `[batch, c_in, height, width]`
    /// - output: `[batch, c_out, out_height, out_width]`
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        conv_norm_activation(&self.conv, Some(&self.bn), Some(&RELU), x)
    }
}

/// torchvision's `_transform_input` (GoogLeNet, Inception v3): `x * std / 0.5 + (mean - 0.5) /
/// 0.5` per channel, which undoes ImageNet normalisation and maps to `[-1, 1]`, as the weights
/// ported from TensorFlow expect.
///
/// # Shapes
/// - input, output: `[batch, 3, height, width]`
pub(crate) fn transform_input(x: Tensor<4>) -> Tensor<4> {
    // ImageNet's mean and standard deviation, the literals of torchvision's `_transform_input`.
    const MEAN: [f32; 3] = [0.485, 0.456, 0.406];
    const STD: [f32; 3] = [0.229, 0.224, 0.225];
    let device = x.device();
    let mean = MEAN.map(f64::from);
    let std = STD.map(f64::from);
    let scale = std.map(|s| (s / 0.5) as f32);
    let shift = [0, 1, 2].map(|c| ((mean[c] - 0.5) / 0.5) as f32);
    let scale = Tensor::<1>::from_floats(scale, &device).reshape([1, 3, 1, 1]);
    let shift = Tensor::<1>::from_floats(shift, &device).reshape([1, 3, 1, 1]);
    x * scale + shift
}
