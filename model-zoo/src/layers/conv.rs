//! The zoo's one 2-D convolution: [`conv2d`] is `Conv2d::forward` for every backend, and
//! [`conv_norm_activation`] the convolution with the eval BatchNorm and activation after it.
//!
//! On Flex they run the zoo's kernels (`crate::kernels`): in inference one kernel for the
//! convolution, its bias, BatchNorm and activation; in training a convolution with gemm-shaped
//! gradients. Every other backend, dtype or mode runs Burn's `conv2d` and the layers one after
//! the other: the choice is made per call from the tensors' backend, so a model has one code
//! path, and `cargo xtask parity` (`--train-step` too) checks both against PyTorch.

use burn::nn::PaddingConfig2d;
use burn::nn::conv::Conv2d;
use burn::nn::pool::{AdaptiveAvgPool2d, MaxPool2d};
use burn::tensor::module::conv2d as burn_conv2d;
use burn::tensor::ops::{ConvOptions, MaxPoolOptions};
use burn::tensor::{Tensor, s};

use super::{Activation, BatchNorm};
#[cfg(feature = "flex")]
use crate::kernels;

/// `conv.forward(x)`: Burn's `Conv2d::forward` (same padding rules, same result), through the
/// zoo's kernels on Flex. Every family calls this (or [`conv_norm_activation`]) rather than
/// `Conv2d::forward` (clippy's `disallowed-methods` enforces it).
///
/// # Shapes
/// - `x`: `[batch, in_channels, height, width]`
/// - output: `[batch, out_channels, out_height, out_width]`
pub fn conv2d(conv: &Conv2d, x: Tensor<4>) -> Tensor<4> {
    conv_norm_activation(conv, None, None, x)
}

/// `pool.forward(x)`: Burn's `MaxPool2d::forward` (same padding rules and `ceil_mode`), through
/// the zoo's kernel on Flex (Flex 0.22's is scalar). Every family calls this (clippy's
/// `disallowed-methods` enforces it).
///
/// # Shapes
/// - `x`: `[batch, channels, height, width]`
/// - output: `[batch, channels, out_height, out_width]`
pub fn max_pool2d(pool: &MaxPool2d, x: Tensor<4>) -> Tensor<4> {
    let padding = match pool.padding {
        PaddingConfig2d::Valid => [(0, 0), (0, 0)],
        PaddingConfig2d::Explicit(top, left, bottom, right) => [(top, bottom), (left, right)],
        // Burn computes "same" padding itself (`calculate_padding_2d_pairs` is private).
        #[allow(clippy::disallowed_methods)]
        PaddingConfig2d::Same => return pool.forward(x),
    };
    max_pool2d_with(
        x,
        MaxPoolOptions::new(pool.kernel_size)
            .with_stride(pool.stride)
            .with_padding_pairs(padding)
            .with_dilation(pool.dilation)
            .with_ceil_mode(pool.ceil_mode),
    )
}

/// `pool.forward(x)`: Burn's `AdaptiveAvgPool2d::forward`, through the zoo's global average
/// pooling kernel on Flex where the output is 1x1 (Flex 0.22's ran 2-4x PyTorch's time). Every
/// family calls this or [`adaptive_avg_pool2d_with`] (clippy's `disallowed-methods`).
///
/// # Shapes
/// - `x`: `[batch, channels, height, width]`
/// - output: `[batch, channels, out_height, out_width]` (`pool.output_size`)
pub fn adaptive_avg_pool2d(pool: &AdaptiveAvgPool2d, x: Tensor<4>) -> Tensor<4> {
    adaptive_avg_pool2d_with(x, pool.output_size)
}

/// Burn's functional `adaptive_avg_pool2d(x, output_size)`, through the zoo's global average
/// pooling kernel on Flex where `output_size` is `[1, 1]`.
///
/// # Shapes
/// - `x`: `[batch, channels, height, width]`
/// - output: `[batch, channels, output_size[0], output_size[1]]`
pub fn adaptive_avg_pool2d_with(x: Tensor<4>, output_size: [usize; 2]) -> Tensor<4> {
    #[cfg(feature = "flex")]
    let x = if output_size == [1, 1] {
        match kernels::global_avg_pool(x) {
            Ok(out) => return out,
            Err(x) => x,
        }
    } else {
        x
    };
    #[allow(clippy::disallowed_methods)]
    burn::tensor::module::adaptive_avg_pool2d(x, output_size)
}

/// Burn's functional `max_pool2d`, through the zoo's kernel on Flex.
///
/// # Shapes
/// - `x`: `[batch, channels, height, width]`
/// - output: `[batch, channels, out_height, out_width]`
pub fn max_pool2d_with(x: Tensor<4>, options: MaxPoolOptions<2>) -> Tensor<4> {
    #[cfg(feature = "flex")]
    let x = match kernels::max_pool2d(x, &options) {
        Ok(out) => return out,
        Err(x) => x,
    };
    #[allow(clippy::disallowed_methods)]
    burn::tensor::module::max_pool2d(x, options)
}

/// `activation(bn(conv(x)))`, each part optional: torchvision's `Conv2dNormActivation` and the
/// ResNet blocks' `relu(bn(conv(x)))`. On a Flex device in inference it is one kernel (the
/// BatchNorm's scale and shift and the activation run on each tile of the convolution's output
/// while it is in cache); elsewhere, and while BatchNorm trains, the three layers in turn.
///
/// # Shapes
/// - `x`: `[batch, in_channels, height, width]`
/// - output: `[batch, out_channels, out_height, out_width]`
pub fn conv_norm_activation(
    conv: &Conv2d,
    bn: Option<&BatchNorm>,
    activation: Option<&Activation>,
    x: Tensor<4>,
) -> Tensor<4> {
    // Burn computes `Same` padding with a crate-private helper: such a convolution (none in the
    // zoo's families) stays Burn's `forward`, so its padding is Burn's whatever it is.
    let ((top, bottom), (left, right)) = match conv.padding {
        PaddingConfig2d::Valid => ((0, 0), (0, 0)),
        PaddingConfig2d::Explicit(top, left, bottom, right) => ((top, bottom), (left, right)),
        PaddingConfig2d::Same => {
            #[allow(clippy::disallowed_methods)]
            let out = conv.forward(x);
            return super::norm_activation(bn, activation, out);
        }
    };
    let mut options = ConvOptions::new_with_padding(
        conv.stride,
        [(top, bottom), (left, right)],
        conv.dilation,
        conv.groups,
    );
    // A strided, unpadded 1x1 convolution (ResNet's and RegNet's projection shortcuts) reads
    // only every `s`-th pixel of each row and column: it is the stride-1 convolution of the
    // subsampled input, the same numbers, but CPU backends have a fast path for an unpadded 1x1
    // convolution at stride 1 (a gemm straight on NCHW data) that the strided one misses. On
    // Flex the strided form was 10x slower than PyTorch's, and it is each downsampling stage's
    // widest convolution (`cargo xtask bench --ops`).
    let [sh, sw] = conv.stride;
    let unpadded = [top, bottom, left, right] == [0; 4];
    let x = if conv.kernel_size == [1, 1] && conv.stride != [1, 1] && unpadded {
        options.stride = [1, 1];
        x.slice(s![.., .., ..;sh, ..;sw])
    } else {
        x
    };
    let weight = conv.weight.val();
    let bias = conv.bias.as_ref().map(|bias| bias.val());
    #[cfg(feature = "flex")]
    let x = match fused(&x, bn, activation) {
        Some((norm, activation)) => {
            let epilogue = kernels::ConvEpilogue {
                norm: norm
                    .as_ref()
                    .map(|(scale, shift)| (scale.as_slice(), shift.as_slice())),
                activation,
            };
            match kernels::conv2d(x, &weight, bias.as_ref(), epilogue, &options) {
                Ok(out) => return out,
                Err(x) => x,
            }
        }
        None => x,
    };
    #[cfg(feature = "flex")]
    if let Some(out) = kernels::conv2d_autodiff(&x, &weight, &options) {
        let out = match bias {
            Some(bias) => out + bias.reshape([1, -1, 1, 1]),
            None => out,
        };
        return super::norm_activation(bn, activation, out);
    }
    super::norm_activation(bn, activation, burn_conv2d(x, weight, bias, options))
}

/// What a Flex inference kernel can run after the convolution: the BatchNorm's scale and shift
/// and the activation; `None` where `x` is not on plain Flex, or the activation has no kernel.
#[cfg(feature = "flex")]
#[allow(clippy::type_complexity)]
fn fused(
    x: &Tensor<4>,
    bn: Option<&BatchNorm>,
    activation: Option<&Activation>,
) -> Option<(Option<(Vec<f32>, Vec<f32>)>, Option<super::ActivationKind>)> {
    if !kernels::takes(x) {
        return None;
    }
    let kind = match activation {
        Some(activation) => Some(activation.kind()?),
        None => None,
    };
    let norm = match bn {
        Some(bn) => Some(bn.host_scale_shift(x)?),
        None => None,
    };
    Some((norm, kind))
}

#[cfg(all(test, feature = "flex"))]
mod tests {
    use super::*;
    use burn::module::Param;
    use burn::nn::conv::Conv2dConfig;
    use burn::tensor::{Device, Distribution};

    /// Gradients of `sum(conv(x) * r)` for x, the weight and the bias, through the zoo's
    /// operation and through Burn's own `conv2d` on the same autodiff Flex device.
    fn gradients(config: Conv2dConfig, x_shape: [usize; 4]) {
        let device = Device::flex().autodiff();
        let conv = config.init(&device);
        let x = Tensor::<4>::random(x_shape, Distribution::Normal(0.0, 1.0), &device);
        #[allow(clippy::disallowed_methods)]
        let out_shape = conv.forward(x.clone()).dims();
        let r = Tensor::<4>::random(out_shape, Distribution::Normal(0.0, 1.0), &device);
        let run = |ours: bool| {
            let x = x.clone().detach().require_grad();
            let conv = Conv2d {
                weight: Param::from_tensor(conv.weight.val().detach().require_grad()),
                bias: conv
                    .bias
                    .as_ref()
                    .map(|b| Param::from_tensor(b.val().detach().require_grad())),
                ..conv.clone()
            };
            let out = if ours {
                conv2d(&conv, x.clone())
            } else {
                #[allow(clippy::disallowed_methods)]
                conv.forward(x.clone())
            };
            let grads = (out.clone() * r.clone().detach()).sum().backward();
            let read = |t: Option<Tensor<1>>| t.map(|t| t.into_data().try_to_vec::<f32>().unwrap());
            let flat = |t: Tensor<4>| t.reshape([-1]);
            (
                out.inner().into_data().try_to_vec::<f32>().unwrap(),
                read(x.grad(&grads).map(flat)),
                read(conv.weight.val().grad(&grads).map(flat)),
                read(conv.bias.as_ref().and_then(|b| b.val().grad(&grads))),
            )
        };
        let (ours, burn) = (run(true), run(false));
        let close = |what: &str, a: &[f32], b: &[f32]| {
            assert_eq!(a.len(), b.len(), "{what}");
            let scale = b.iter().fold(1e-6f32, |m, v| m.max(v.abs()));
            let worst = a
                .iter()
                .zip(b)
                .fold(0.0f32, |m, (a, b)| m.max((a - b).abs()));
            assert!(
                worst <= 1e-5 * scale,
                "{what}: {worst} off on a scale of {scale}"
            );
        };
        close("output", &ours.0, &burn.0);
        close(
            "input grad",
            ours.1.as_deref().unwrap(),
            burn.1.as_deref().unwrap(),
        );
        close(
            "weight grad",
            ours.2.as_deref().unwrap(),
            burn.2.as_deref().unwrap(),
        );
        if let (Some(a), Some(b)) = (&ours.3, &burn.3) {
            close("bias grad", a, b);
        }
    }

    fn padded(p: usize) -> PaddingConfig2d {
        PaddingConfig2d::Explicit(p, p, p, p)
    }

    #[test]
    fn gradients_equal_burns_for_a_3x3_convolution_over_a_batch() {
        // More images than threads: images are shared out, one weight accumulator per task.
        gradients(
            Conv2dConfig::new([5, 4], [3, 3]).with_padding(padded(1)),
            [5, 5, 9, 7],
        );
    }

    #[test]
    fn gradients_equal_burns_for_a_strided_stem_on_one_image() {
        // One image: gemm splits the product instead.
        gradients(
            Conv2dConfig::new([3, 6], [7, 7])
                .with_stride([2, 2])
                .with_padding(padded(3))
                .with_bias(false),
            [1, 3, 15, 12],
        );
    }

    #[test]
    fn gradients_equal_burns_for_pointwise_and_strided_pointwise_convolutions() {
        gradients(Conv2dConfig::new([6, 3], [1, 1]), [3, 6, 5, 4]);
        gradients(
            Conv2dConfig::new([6, 8], [1, 1]).with_stride([2, 2]),
            [2, 6, 7, 6],
        );
    }

    #[test]
    fn gradients_equal_burns_with_dilation_and_asymmetric_padding() {
        gradients(
            Conv2dConfig::new([3, 4], [3, 2])
                .with_dilation([2, 1])
                .with_stride([1, 2])
                .with_padding(PaddingConfig2d::Explicit(1, 0, 2, 1)),
            [2, 3, 8, 9],
        );
    }

    /// Stride 1 with dilation and asymmetric padding, with none, and with more padding than
    /// kernel (rows and columns of the output that read only padding).
    #[test]
    fn stride_1_gradients_equal_burns_with_dilation_asymmetric_padding_and_none() {
        gradients(
            Conv2dConfig::new([3, 4], [3, 2])
                .with_dilation([2, 1])
                .with_padding(PaddingConfig2d::Explicit(1, 1, 0, 2)),
            [3, 3, 8, 9],
        );
        gradients(Conv2dConfig::new([2, 5], [3, 3]), [2, 2, 6, 7]);
        gradients(
            Conv2dConfig::new([2, 3], [3, 3]).with_padding(PaddingConfig2d::Explicit(3, 3, 3, 3)),
            [2, 2, 4, 5],
        );
    }

    #[test]
    fn strided_pointwise_convolutions_equal_burns_on_every_backend() {
        for device in crate::available_backends()
            .iter()
            .filter_map(|backend| backend.device().ok())
        {
            for (side, stride, bias) in [(8, 2, false), (7, 2, true), (9, 3, false)] {
                let conv = Conv2dConfig::new([16, 32], [1, 1])
                    .with_stride([stride, stride])
                    .with_bias(bias)
                    .init(&device);
                let x = Tensor::<4>::random([2, 16, side, side], Distribution::Default, &device);
                #[allow(clippy::disallowed_methods)]
                let expected = conv.forward(x.clone());
                let got = conv2d(&conv, x);
                assert_eq!(got.dims(), expected.dims());
                let diff = (got - expected).abs().max().into_scalar::<f32>();
                assert!(diff < 1e-5, "side {side} stride {stride}: {diff}");
            }
        }
    }

    #[test]
    fn grouped_convolution_gradients_equal_burns() {
        gradients(
            Conv2dConfig::new([4, 6], [3, 3])
                .with_groups(2)
                .with_padding(padded(1)),
            [2, 4, 5, 5],
        );
    }

    #[test]
    fn the_zoo_operation_is_taken_only_when_training_on_flex() {
        let options = ConvOptions::new([1, 1], [0, 0], [1, 1], 1);
        let take = |device: &Device| {
            let x = Tensor::<4>::ones([1, 2, 3, 3], device);
            let w = Tensor::<4>::ones([2, 2, 1, 1], device);
            crate::kernels::conv2d_autodiff(&x, &w, &options).is_some()
        };
        assert!(take(&Device::flex().autodiff()));
        assert!(!take(&Device::flex()));
        // Grouped: the zoo's forward, Flex's own gradients.
        let grouped = ConvOptions::new([1, 1], [0, 0], [1, 1], 2);
        let device = Device::flex().autodiff();
        let x = Tensor::<4>::ones([1, 2, 3, 3], &device);
        let w = Tensor::<4>::ones([2, 1, 1, 1], &device);
        assert!(crate::kernels::conv2d_autodiff(&x, &w, &grouped).is_some());
        let mismatched = Tensor::<4>::ones([2, 3, 1, 1], &device);
        assert!(crate::kernels::conv2d_autodiff(&x, &mismatched, &options).is_none());
    }

    #[test]
    fn max_pooling_equals_burns_with_padding_dilation_and_ceil_mode() {
        let device = Device::flex();
        // (side, kernel, stride, padding, dilation, ceil_mode): ResNet's stem pool, GoogLeNet's
        // ceil-mode pools (one whose last window would start in the padding), Inception's,
        // SqueezeNet's, rows wider than a SIMD strip, a dilated one.
        for (side, k, stride, pad, dilation, ceil) in [
            (112, 3, 2, 1, 1, false),
            (57, 3, 2, 0, 1, true),
            (14, 2, 2, 0, 1, true),
            (13, 3, 2, 1, 1, true),
            (35, 3, 2, 0, 1, false),
            (41, 3, 1, 1, 1, false),
            (20, 3, 1, 2, 2, false),
        ] {
            let options = MaxPoolOptions::new([k, k])
                .with_stride([stride, stride])
                .with_padding_pairs([(pad, pad), (pad, pad + 1).min((pad, k / 2))])
                .with_dilation([dilation, dilation])
                .with_ceil_mode(ceil);
            let x = Tensor::<4>::random([2, 5, side, side + 3], Distribution::Default, &device);
            #[allow(clippy::disallowed_methods)]
            let expected = burn::tensor::module::max_pool2d(x.clone(), options.clone());
            #[cfg(feature = "flex")]
            assert!(crate::kernels::max_pool2d(x.clone(), &options).is_ok());
            let got = max_pool2d_with(x, options);
            assert_eq!(
                got.dims(),
                expected.dims(),
                "side {side} kernel {k} ceil {ceil}"
            );
            let diff = (got - expected).abs().max().into_scalar::<f32>();
            assert_eq!(
                diff, 0.0,
                "side {side} kernel {k} stride {stride} ceil {ceil}"
            );
        }
    }

    /// Global average pooling on Flex (the kernel) equals the mean in `f64`, on planes from 1
    /// value to more than a thread's share, in NCHW and from a transposed (strided) view; other
    /// output sizes and the autodiff device keep Burn's.
    #[test]
    fn global_average_pooling_equals_the_mean() {
        let device = Device::flex();
        for (shape, transposed) in [
            ([1, 3, 1, 1], false),
            ([2, 5, 7, 7], false),
            ([1, 240, 14, 14], false),
            ([3, 40, 57, 31], false),
            ([2, 9, 5, 6], true),
        ] {
            let x = Tensor::<4>::random(shape, Distribution::Normal(1.0, 2.0), &device);
            let x = if transposed { x.swap_dims(2, 3) } else { x };
            let [b, c, h, w] = x.dims();
            let values = x
                .to_data()
                .convert::<f32>()
                .try_to_vec::<f32>()
                .expect("f32 values");
            let plane = h * w;
            #[cfg(feature = "flex")]
            assert!(crate::kernels::global_avg_pool(x.clone()).is_ok());
            let got = adaptive_avg_pool2d_with(x, [1, 1]);
            assert_eq!(got.dims(), [b, c, 1, 1]);
            let got = got
                .to_data()
                .convert::<f32>()
                .try_to_vec::<f32>()
                .expect("f32 values");
            for (i, g) in got.iter().enumerate() {
                let want = values[i * plane..(i + 1) * plane]
                    .iter()
                    .map(|v| *v as f64)
                    .sum::<f64>()
                    / plane as f64;
                assert!(
                    (*g as f64 - want).abs() <= 1e-6 * (1.0 + want.abs()),
                    "{shape:?} plane {i}: {g} against {want}"
                );
            }
        }
        let x = Tensor::<4>::random([2, 3, 8, 8], Distribution::Default, &device);
        let pooled = adaptive_avg_pool2d_with(x.clone(), [2, 2]);
        #[allow(clippy::disallowed_methods)]
        let expected = burn::tensor::module::adaptive_avg_pool2d(x.clone(), [2, 2]);
        assert_eq!(pooled.to_data(), expected.to_data());
        let autodiff = Tensor::<4>::random([2, 3, 8, 8], Distribution::Default, &device.autodiff());
        #[cfg(feature = "flex")]
        assert!(crate::kernels::global_avg_pool(autodiff.clone()).is_err());
        assert_eq!(
            adaptive_avg_pool2d_with(autodiff, [1, 1]).dims(),
            [2, 3, 1, 1]
        );
    }
}
