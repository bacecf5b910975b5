//! torchvision's `ops.misc` blocks and the activations its families use: [`Activation`],
//! [`conv2d_norm_activation`], [`SqueezeExcitation`], and the MobileNet V3 / EfficientNet
//! [`InvertedResidual`].

use super::BatchNormConfig;
use super::adaptive_avg_pool2d_with;
use super::conv2d;
use burn::module::{Flag, Module, Param};
use burn::nn::activation::{
    Gelu, HardSigmoid, HardSigmoidConfig, HardSwish, Relu, Relu6, SiLU, Sigmoid, Tanh,
};
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::{Initializer, PaddingConfig2d};
use burn::tensor::{Device, Distribution, Tensor};

use super::{
    ActivationKind, ImageLayer, conv_kaiming_fan_out, conv_slot_kaiming_fan_out, fold_layers,
    run_image_layers,
};

/// An activation as torchvision's families use them. Burn's own `nn::Activation` has no ReLU6
/// or SiLU, and its `HardSigmoid` defaults to ONNX's slope (0.2), not PyTorch's (1/6), so the
/// zoo keeps this small enum of Burn's activation modules.
#[derive(Module, Debug)]
pub enum Activation {
    /// `nn.ReLU`.
    Relu(Relu),
    /// `nn.ReLU6`: `min(max(x, 0), 6)`.
    Relu6(Relu6),
    /// `nn.Hardswish`: `x * relu6(x + 3) / 6`.
    Hardswish(HardSwish),
    /// `nn.Hardsigmoid`: `relu6(x + 3) / 6`.
    Hardsigmoid(HardSigmoid),
    /// `nn.SiLU`: `x * sigmoid(x)`.
    Silu(SiLU),
    /// `nn.Sigmoid`.
    Sigmoid(Sigmoid),
    /// `nn.GELU()`: the exact form `x * Φ(x)` with the error function, PyTorch's default
    /// (the tanh form would differ by up to 1e-3). See [`gelu`] for its gradient.
    Gelu(Gelu),
    /// `nn.Tanh`.
    Tanh(Tanh),
}

impl ActivationKind {
    /// The activation module.
    pub fn init(self) -> Activation {
        match self {
            ActivationKind::Relu => Activation::Relu(Relu),
            ActivationKind::Relu6 => Activation::Relu6(Relu6),
            ActivationKind::Hardswish => Activation::Hardswish(HardSwish),
            ActivationKind::Hardsigmoid => Activation::Hardsigmoid(
                // PyTorch's hardsigmoid: clamp(x / 6 + 1/2, 0, 1).
                HardSigmoidConfig::new()
                    .with_alpha(1.0 / 6.0)
                    .with_beta(0.5)
                    .init(),
            ),
            ActivationKind::Silu => Activation::Silu(SiLU),
            ActivationKind::Sigmoid => Activation::Sigmoid(Sigmoid),
            ActivationKind::Gelu => Activation::Gelu(Gelu { approximate: false }),
            ActivationKind::Tanh => Activation::Tanh(Tanh),
        }
    }
}

impl Activation {
    /// Which activation this is, where the zoo's kernels compute it exactly as the module
    /// would (`None` for a `HardSigmoid` with other than PyTorch's slope and offset).
    pub fn kind(&self) -> Option<ActivationKind> {
        Some(match self {
            Activation::Relu(_) => ActivationKind::Relu,
            Activation::Relu6(_) => ActivationKind::Relu6,
            Activation::Hardswish(_) => ActivationKind::Hardswish,
            Activation::Hardsigmoid(a) => {
                if a.alpha != 1.0 / 6.0 || a.beta != 0.5 {
                    return None;
                }
                ActivationKind::Hardsigmoid
            }
            Activation::Silu(_) => ActivationKind::Silu,
            Activation::Sigmoid(_) => ActivationKind::Sigmoid,
            Activation::Gelu(_) => ActivationKind::Gelu,
            Activation::Tanh(_) => ActivationKind::Tanh,
        })
    }

    /// Applies the activation: the zoo's vectorised, threaded kernel on Flex (in place where
    /// `x` is not shared), Burn's module elsewhere.
    ///
    /// # Shapes
    /// - `x`, output: any, the same
    pub fn forward<const D: usize>(&self, x: Tensor<D>) -> Tensor<D> {
        #[cfg(feature = "flex")]
        let x = match self.kind() {
            Some(kind) => match crate::kernels::activation(kind, x) {
                Ok(out) => return out,
                Err(x) => x,
            },
            None => x,
        };
        match self {
            Activation::Relu(a) => a.forward(x),
            Activation::Relu6(a) => a.forward(x),
            Activation::Hardswish(a) => a.forward(x),
            Activation::Hardsigmoid(a) => a.forward(x),
            Activation::Silu(a) => a.forward(x),
            Activation::Sigmoid(a) => a.forward(x),
            Activation::Gelu(_) => gelu(x),
            Activation::Tanh(a) => a.forward(x),
        }
    }
}

/// `max(x, 0)` (`F.relu`): the zoo's vectorised, threaded kernel on Flex (in place where `x`
/// is not shared; under autodiff with its own backward), Burn's op elsewhere. Burn's
/// `activation::relu` is disallowed by `clippy.toml`: on Flex it is a scalar loop on one thread.
///
/// # Shapes
/// - `x`, output: any, the same
pub fn relu<const D: usize>(x: Tensor<D>) -> Tensor<D> {
    Activation::Relu(Relu).forward(x)
}

/// Exact GELU, `0.5 x (1 + erf(x / sqrt 2))`, with an exact gradient on every backend.
///
/// Burn 0.22's GELU forward is exact everywhere, but its default `gelu_backward` (NdArray and
/// the CubeCL backends; Flex has its own, exact) is the derivative of the *tanh
/// approximation*: a ViT training step then drifts from PyTorch's by 3e-5 on weights of 0.1
/// after two SGD steps, on NdArray and wgpu alike (`cargo xtask parity --train-step`). Under
/// autodiff this composes the exact form from `erf`, whose Burn gradient is exact; inference
/// keeps Burn's fused op. On Flex (plain or autodiff) the zoo's kernel runs, with PyTorch's
/// exact gradient.
pub fn gelu<const D: usize>(x: Tensor<D>) -> Tensor<D> {
    #[cfg(feature = "flex")]
    let x = match crate::kernels::activation(ActivationKind::Gelu, x) {
        Ok(out) => return out,
        Err(x) => x,
    };
    if x.device().is_autodiff() {
        (x.clone() * std::f64::consts::FRAC_1_SQRT_2)
            .erf()
            .add_scalar(1.0)
            * x
            * 0.5
    } else {
        burn::tensor::activation::gelu(x)
    }
}

/// torchvision's `Conv2dNormActivation(in, out, kernel_size, stride, groups=groups,
/// dilation=dilation, norm_layer=BatchNorm2d(eps, momentum), activation_layer=...)`: a
/// bias-free convolution padded `(kernel - 1) / 2 * dilation`, BatchNorm, and the activation if
/// any. Built as the [`ImageLayer`] sequence it is in torchvision (`N.0` conv, `N.1` norm, `N.2`
/// activation), so keys are torchvision's without a map.
#[derive(Debug, Clone, Copy)]
pub struct Conv2dNormActivation {
    /// Input channels.
    pub in_channels: usize,
    /// Output channels.
    pub out_channels: usize,
    /// Square kernel side.
    pub kernel: usize,
    /// Stride.
    pub stride: usize,
    /// Groups (`in_channels` for a depthwise convolution).
    pub groups: usize,
    /// Dilation.
    pub dilation: usize,
    /// BatchNorm's epsilon (PyTorch's default 1e-5; MobileNet V3 and EfficientNet 1e-3).
    pub eps: f64,
    /// BatchNorm's momentum, PyTorch's convention (default 0.1; MobileNet V3 0.01).
    pub momentum: f64,
    /// The activation after the norm, or none (a projection).
    pub activation: Option<ActivationKind>,
}

impl Conv2dNormActivation {
    /// A stride-1, ungrouped `kernel x kernel` block with PyTorch's BatchNorm defaults and ReLU,
    /// as torchvision's defaults.
    pub fn new(in_channels: usize, out_channels: usize, kernel: usize) -> Self {
        Self {
            in_channels,
            out_channels,
            kernel,
            stride: 1,
            groups: 1,
            dilation: 1,
            eps: 1e-5,
            momentum: 0.1,
            activation: Some(ActivationKind::Relu),
        }
    }

    /// With this stride.
    pub fn stride(self, stride: usize) -> Self {
        Self { stride, ..self }
    }

    /// With this many groups.
    pub fn groups(self, groups: usize) -> Self {
        Self { groups, ..self }
    }

    /// Depthwise: one group per channel.
    pub fn depthwise(self) -> Self {
        self.groups(self.in_channels)
    }

    /// With this dilation.
    pub fn dilation(self, dilation: usize) -> Self {
        Self { dilation, ..self }
    }

    /// With this BatchNorm epsilon and momentum.
    pub fn norm(self, eps: f64, momentum: f64) -> Self {
        Self {
            eps,
            momentum,
            ..self
        }
    }

    /// With this activation, or none.
    pub fn activation(self, activation: Option<ActivationKind>) -> Self {
        Self { activation, ..self }
    }

    /// The convolution's configuration (padding `(kernel - 1) / 2 * dilation`, no bias).
    pub fn conv_config(&self) -> Conv2dConfig {
        let padding = (self.kernel - 1) / 2 * self.dilation;
        Conv2dConfig::new(
            [self.in_channels, self.out_channels],
            [self.kernel, self.kernel],
        )
        .with_stride([self.stride, self.stride])
        .with_padding(PaddingConfig2d::Explicit(
            padding, padding, padding, padding,
        ))
        .with_dilation([self.dilation, self.dilation])
        .with_groups(self.groups)
        .with_bias(false)
    }

    /// The block, as the nested sequence torchvision's keys need (`N.0` conv, `N.1` norm,
    /// `N.2` activation; see [`Self::init_layers`]).
    pub fn init(&self, device: &Device) -> ImageLayer {
        ImageLayer::Sequential(self.init_layers(device))
    }

    /// As [`Self::init`], the convolution drawn from `initializer` instead (MaxViT's
    /// `normal_(std=0.02)`).
    pub fn init_with(&self, initializer: Initializer, device: &Device) -> ImageLayer {
        let mut layers = self.init_layers(device);
        layers[0] = ImageLayer::Conv(
            self.conv_config()
                .with_initializer(initializer)
                .init(device),
        );
        ImageLayer::Sequential(layers)
    }

    /// The layers themselves, for a parent sequence that holds them inline (MobileNet V2's
    /// projection): the convolution initialised as torchvision's mobile families do
    /// (`kaiming_normal_(mode="fan_out")`), BatchNorm with ones and zeros.
    pub fn init_layers(&self, device: &Device) -> Vec<ImageLayer> {
        let mut layers = vec![
            conv_slot_kaiming_fan_out(self.conv_config(), device),
            ImageLayer::BatchNorm(
                BatchNormConfig::new(self.out_channels)
                    .with_epsilon(self.eps)
                    .with_momentum(self.momentum)
                    .init(device),
            ),
        ];
        if let Some(activation) = self.activation {
            layers.push(ImageLayer::Activation(activation.init()));
        }
        layers
    }
}

/// torchvision's `ops.misc.SqueezeExcitation`: `x * scale(fc2(act(fc1(avgpool(x)))))`, with
/// 1x1 convolutions `fc1` (`input -> squeeze`) and `fc2` (`squeeze -> input`), both biased.
#[derive(Module, Debug)]
pub struct SqueezeExcitation {
    /// Squeeze: `[squeeze, input, 1, 1]`.
    pub fc1: Conv2d,
    /// Excite: `[input, squeeze, 1, 1]`.
    pub fc2: Conv2d,
    /// After `fc1` (ReLU; SiLU in EfficientNet).
    pub activation: Activation,
    /// After `fc2` (Sigmoid; Hardsigmoid in MobileNet V3).
    pub scale_activation: Activation,
}

impl SqueezeExcitation {
    /// A block over `input` channels squeezed to `squeeze`, initialised as torchvision's mobile
    /// families initialise every convolution (`kaiming_normal_(mode="fan_out")`, zero bias).
    pub fn new(
        input: usize,
        squeeze: usize,
        activation: ActivationKind,
        scale_activation: ActivationKind,
        device: &Device,
    ) -> Self {
        let conv = |from: usize, to: usize| {
            let conv = conv_kaiming_fan_out(Conv2dConfig::new([from, to], [1, 1]), device);
            Conv2d {
                bias: super::zero_bias(conv.bias, device),
                ..conv
            }
        };
        Self {
            fc1: conv(input, squeeze),
            fc2: conv(squeeze, input),
            activation: activation.init(),
            scale_activation: scale_activation.init(),
        }
    }

    /// The same block with PyTorch's default biases (uniform in `±1/sqrt(fan_in)`), which
    /// RegNet's initialisation leaves as they are.
    pub fn with_default_bias(self, device: &Device) -> Self {
        let default_bias = |conv: Conv2d| {
            let [out, fan_in, _, _] = conv.weight.lazy_shape().dims::<4>();
            let bound = 1.0 / (fan_in as f64).sqrt();
            Conv2d {
                bias: Some(
                    Initializer::Uniform {
                        min: -bound,
                        max: bound,
                    }
                    .init([out], device),
                ),
                ..conv
            }
        };
        Self {
            fc1: default_bias(self.fc1),
            fc2: default_bias(self.fc2),
            ..self
        }
    }

    /// Rescales each channel by its excitation.
    ///
    /// # Shapes
    /// - input and output: `[batch, channels, height, width]`
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        #[cfg(feature = "flex")]
        let x = match self.fused(x) {
            Ok(out) => return out,
            Err(x) => x,
        };
        let scale = adaptive_avg_pool2d_with(x.clone(), [1, 1]);
        let scale = self.activation.forward(conv2d(&self.fc1, scale));
        let scale = self.scale_activation.forward(conv2d(&self.fc2, scale));
        x * scale
    }
}

#[cfg(feature = "flex")]
impl SqueezeExcitation {
    /// The block as one Flex kernel ([`crate::kernels::squeeze_excitation`]) where it takes `x`
    /// and both convolutions are plain 1x1 ones (no padding, stride, dilation or groups), else
    /// `x` back.
    // `Err` hands the caller's tensor back untouched, as the kernels do (see `kernels`).
    #[allow(clippy::result_large_err)]
    fn fused(&self, x: Tensor<4>) -> Result<Tensor<4>, Tensor<4>> {
        let plain = |conv: &Conv2d| {
            conv.stride == [1, 1]
                && conv.dilation == [1, 1]
                && conv.groups == 1
                && matches!(
                    conv.padding,
                    PaddingConfig2d::Valid | PaddingConfig2d::Explicit(0, 0, 0, 0)
                )
        };
        let (Some(activation), Some(scale_activation)) =
            (self.activation.kind(), self.scale_activation.kind())
        else {
            return Err(x);
        };
        if !crate::kernels::takes(&x) || !plain(&self.fc1) || !plain(&self.fc2) {
            return Err(x);
        }
        let (w1, w2) = (self.fc1.weight.val(), self.fc2.weight.val());
        let b1 = self.fc1.bias.as_ref().map(|b| b.val());
        let b2 = self.fc2.bias.as_ref().map(|b| b.val());
        crate::kernels::squeeze_excitation(
            x,
            &crate::kernels::Excitation {
                fc1: (&w1, b1.as_ref()),
                activation,
                fc2: (&w2, b2.as_ref()),
                scale_activation,
            },
        )
    }
}

/// torchvision's `ops.StochasticDepth(p, "row")`: in training, each sample's residual branch
/// is dropped with probability `p` and the kept ones scaled by `1 / (1 - p)`; the identity in
/// eval mode. Training is decided as Burn's `Dropout` decides it: an autodiff device and the
/// layer's own training flag (cleared by `freeze`).
#[derive(Module, Debug)]
pub struct StochasticDepth {
    /// Probability of dropping a sample's branch.
    pub prob: f64,
    /// Whether to behave as in training.
    pub training: Param<Flag>,
}

impl StochasticDepth {
    /// A layer dropping with probability `prob` (0 for none).
    pub fn new(prob: f64) -> Self {
        Self {
            prob,
            training: Param::from_bool(true),
        }
    }

    /// # Shapes
    /// - input and output: `[batch, channels, height, width]`
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        if self.prob == 0.0 || !self.training.is_enabled() || !x.device().is_autodiff() {
            return x;
        }
        let survival = 1.0 - self.prob;
        let [batch, _, _, _] = x.dims();
        let noise = Tensor::<4>::random(
            [batch, 1, 1, 1],
            Distribution::Bernoulli(survival),
            &x.device(),
        );
        if survival > 0.0 {
            x * (noise / survival)
        } else {
            x * noise
        }
    }
}

/// MobileNet V3's `InvertedResidual` and EfficientNet's `MBConv` and `FusedMBConv`: `block` is
/// torchvision's `nn.Sequential` of [`Conv2dNormActivation`]s (expand, depthwise, project, with
/// a [`SqueezeExcitation`] before the projection where the block has one), and the input is
/// added back, after [`StochasticDepth`], when stride is 1 and the channels agree.
#[derive(Module, Debug)]
pub struct InvertedResidual {
    /// The layers, torchvision's `block.N`.
    pub block: Vec<ImageLayer>,
    /// Whether the input is added to the output.
    pub use_res_connect: bool,
    /// EfficientNet's stochastic depth of the residual branch (probability 0 in MobileNet V3).
    pub stochastic_depth: StochasticDepth,
}

impl InvertedResidual {
    /// A block of `layers`, residual when `use_res_connect`, its branch dropped with
    /// probability `stochastic_depth` in training.
    pub fn new(block: Vec<ImageLayer>, use_res_connect: bool, stochastic_depth: f64) -> Self {
        Self {
            block,
            use_res_connect,
            stochastic_depth: StochasticDepth::new(stochastic_depth),
        }
    }

    /// Applies the block.
    ///
    /// # Shapes
    /// - input: `[batch, in_channels, height, width]`
    /// - output: `[batch, out_channels, height / stride, width / stride]` (rounded up)
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        if self.use_res_connect {
            let branch = run_image_layers(&self.block, x.clone());
            add_activation(self.stochastic_depth.forward(branch), x, None)
        } else {
            run_image_layers(&self.block, x)
        }
    }

    /// The block with every BatchNorm folded into the convolution before it.
    pub fn fold_batchnorm(self) -> Self {
        Self {
            block: fold_layers(self.block),
            ..self
        }
    }
}

/// `layers(x) + x` when `add_input`, else `layers(x)`: the residual step of every inverted
/// residual block (MobileNet V2/V3, MNASNet).
pub fn residual(layers: &[ImageLayer], add_input: bool, x: Tensor<4>) -> Tensor<4> {
    if add_input {
        add_activation(run_image_layers(layers, x.clone()), x, None)
    } else {
        run_image_layers(layers, x)
    }
}

/// `activation(x + identity)`, a residual connection: one pass on Flex (in place where `x` or
/// `identity` is not shared), the add and the activation in turn elsewhere.
///
/// # Shapes
/// - `x`, `identity`, output: the same, any
pub fn add_activation<const D: usize>(
    x: Tensor<D>,
    identity: Tensor<D>,
    activation: Option<ActivationKind>,
) -> Tensor<D> {
    #[cfg(feature = "flex")]
    let (x, identity) = match crate::kernels::add_activation(x, identity, activation) {
        Ok(out) => return out,
        Err(pair) => pair,
    };
    let sum = x + identity;
    match activation {
        Some(kind) => kind.init().forward(sum),
        None => sum,
    }
}

/// `x + scale * y` for a channels-last `y` (`y` permuted to NCHW, `scale` per channel):
/// ConvNeXt's residual connection, whose branch ends in NHWC. One pass on Flex (in place where
/// `x` is not shared), a permute, a broadcast multiply and an add elsewhere.
///
/// # Shapes
/// - `x`, output: `[batch, channels, height, width]`
/// - `y`: `[batch, height, width, channels]`
/// - `scale`: `[channels]`
pub fn add_scaled_channels_last(x: Tensor<4>, y: Tensor<4>, scale: Tensor<1>) -> Tensor<4> {
    #[cfg(feature = "flex")]
    let (x, y) = match crate::kernels::add_scaled_channels_last(x, y, &scale) {
        Ok(out) => return out,
        Err(pair) => pair,
    };
    let [channels] = scale.dims();
    x + y.permute([0, 3, 1, 2]) * scale.reshape([1, channels, 1, 1])
}

/// Whether a weight file's keys (`conform_to`'s `shapes`) hold a tensor of any of `modules`,
/// matched by path segment, so that a burnpack's keys with enum variants
/// (`GoogLeNet.aux1.conv.conv.weight`) count as torchvision's (`aux1.conv.conv.weight`): how
/// GoogLeNet and Inception v3 tell a file saved without aux heads.
pub fn file_has_module(
    shapes: &std::collections::HashMap<String, Vec<usize>>,
    modules: &[&str],
) -> bool {
    shapes
        .keys()
        .any(|key| key.split('.').any(|part| modules.contains(&part)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::device::test_device;

    /// The gradient of [`gelu`] is the exact one, `Φ(x) + x φ(x)`, not the tanh
    /// approximation's (which differs by up to 2e-3 near |x| = 2).
    #[test]
    fn gelu_gradient_is_exact() {
        let device = test_device().autodiff();
        let points = [-3.0f32, -2.0, -1.0, -0.5, 0.0, 0.5, 1.0, 2.0, 3.0];
        let x = Tensor::<1>::from_floats(points, &device).require_grad();
        let grads = gelu(x.clone()).sum().backward();
        let got = x
            .grad(&grads)
            .expect("x requires a gradient")
            .into_data()
            .try_to_vec::<f32>()
            .expect("f32 gradients");
        for (x, g) in points.iter().zip(got) {
            let x = f64::from(*x);
            let cdf = 0.5 * (1.0 + erf(x / std::f64::consts::SQRT_2));
            let pdf = (-0.5 * x * x).exp() / (2.0 * std::f64::consts::PI).sqrt();
            assert!(
                (f64::from(g) - (cdf + x * pdf)).abs() < 1e-5,
                "x = {x}: {g}"
            );
        }
    }

    /// The kernel and Burn's ops agree on channels and pixels that do not fill a 16 x 16 tile,
    /// with `x` shared (written to a copy, `x` itself untouched) and not.
    #[test]
    fn add_scaled_channels_last_is_the_permuted_sum() {
        let device = test_device();
        for [n, c, h, w] in [[2, 21, 5, 7], [1, 32, 4, 4], [3, 3, 1, 17]] {
            let x = Tensor::<4>::random([n, c, h, w], Distribution::Default, &device);
            let y = Tensor::<4>::random([n, h, w, c], Distribution::Default, &device);
            let scale = Tensor::<1>::random([c], Distribution::Default, &device);
            let want = (x.clone()
                + y.clone().permute([0, 3, 1, 2]) * scale.clone().reshape([1, c, 1, 1]))
            .into_data();
            #[cfg(feature = "flex")]
            assert_eq!(
                crate::kernels::add_scaled_channels_last(x.clone(), y.clone(), &scale).is_ok(),
                crate::kernels::takes(&x),
                "the kernel takes what it should"
            );
            let before = x.to_data();
            let shared = add_scaled_channels_last(x.clone(), y.clone(), scale.clone());
            shared
                .into_data()
                .assert_approx_eq::<f32>(&want, Default::default());
            x.to_data().assert_eq(&before, true);
            let owned = add_scaled_channels_last(x, y, scale);
            owned
                .into_data()
                .assert_approx_eq::<f32>(&want, Default::default());
        }
    }

    /// The block (one kernel on Flex) against the same arithmetic in `f64` on the tensors'
    /// values, for channels that do not fill a SIMD vector, ragged planes, both pairs of
    /// activations, with `x` shared (left untouched) and not.
    #[test]
    fn squeeze_excitation_is_the_block() {
        let device = test_device();
        let cases = [
            (
                [2, 20, 5, 3],
                6,
                ActivationKind::Relu,
                ActivationKind::Hardsigmoid,
            ),
            (
                [1, 40, 7, 7],
                17,
                ActivationKind::Silu,
                ActivationKind::Sigmoid,
            ),
            (
                [3, 5, 1, 1],
                2,
                ActivationKind::Relu,
                ActivationKind::Sigmoid,
            ),
        ];
        for ([n, c, h, w], squeeze, act, scale_act) in cases {
            let random = |shape: [usize; 4]| {
                Tensor::<4>::random(shape, Distribution::Uniform(-2.0, 2.0), &device)
            };
            let mut se = SqueezeExcitation::new(c, squeeze, act, scale_act, &device);
            se.fc1.weight = Param::from_tensor(random([squeeze, c, 1, 1]));
            se.fc2.weight = Param::from_tensor(random([c, squeeze, 1, 1]));
            se.fc1.bias = Some(Param::from_tensor(
                random([1, 1, 1, squeeze]).reshape([squeeze]),
            ));
            se.fc2.bias = Some(Param::from_tensor(random([1, 1, 1, c]).reshape([c])));
            let x = random([n, c, h, w]);
            let values = |t: Tensor<4>| -> Vec<f64> {
                t.into_data()
                    .convert::<f64>()
                    .try_to_vec::<f64>()
                    .expect("f64 values")
            };
            let (xs, w1, w2) = (
                values(x.clone()),
                values(se.fc1.weight.val()),
                values(se.fc2.weight.val()),
            );
            let bias = |conv: &Conv2d, len: usize| {
                values(
                    conv.bias
                        .as_ref()
                        .expect("biased")
                        .val()
                        .reshape([1, 1, 1, len]),
                )
            };
            let (b1, b2) = (bias(&se.fc1, squeeze), bias(&se.fc2, c));
            let f = |kind: ActivationKind, v: f64| match kind {
                ActivationKind::Relu => v.max(0.0),
                ActivationKind::Hardsigmoid => (v + 3.0).clamp(0.0, 6.0) / 6.0,
                ActivationKind::Silu => v / (1.0 + (-v).exp()),
                ActivationKind::Sigmoid => 1.0 / (1.0 + (-v).exp()),
                _ => unreachable!("not in the cases"),
            };
            let inner = h * w;
            let mut want = xs.clone();
            for b in 0..n {
                let plane = |ch: usize| &xs[(b * c + ch) * inner..(b * c + ch + 1) * inner];
                let mean: Vec<f64> = (0..c)
                    .map(|ch| plane(ch).iter().sum::<f64>() / inner as f64)
                    .collect();
                let hidden: Vec<f64> = (0..squeeze)
                    .map(|s| {
                        let dot: f64 = (0..c).map(|ch| w1[s * c + ch] * mean[ch]).sum();
                        f(act, dot + b1[s])
                    })
                    .collect();
                for ch in 0..c {
                    let dot: f64 = (0..squeeze).map(|s| w2[ch * squeeze + s] * hidden[s]).sum();
                    let scale = f(scale_act, dot + b2[ch]);
                    for v in &mut want[(b * c + ch) * inner..(b * c + ch + 1) * inner] {
                        *v *= scale;
                    }
                }
            }
            let want = burn::tensor::TensorData::new(want, [n, c, h, w]);
            let before = x.to_data();
            let tolerance = burn::tensor::Tolerance::<f64>::absolute(1e-5);
            se.forward(x.clone())
                .into_data()
                .convert::<f64>()
                .assert_approx_eq::<f64>(&want, tolerance);
            x.to_data().assert_eq(&before, true);
            se.forward(x)
                .into_data()
                .convert::<f64>()
                .assert_approx_eq::<f64>(&want, tolerance);
        }
    }

    /// `erf` by its Maclaurin series, to f64 precision for the |x| <= 3 / sqrt(2) used above
    /// (the standard library has no `erf`).
    fn erf(x: f64) -> f64 {
        let mut term = x;
        let mut sum = x;
        for n in 1..200 {
            term *= -x * x / n as f64;
            sum += term / (2 * n + 1) as f64;
        }
        sum * 2.0 / std::f64::consts::PI.sqrt()
    }
}
