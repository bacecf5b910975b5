//! The zoo's one 2-D convolution: [`conv2d`] is `Conv2d::forward` for every backend, with
//! gemm-shaped gradients when it trains on Flex.
//!
//! Burn 0.22's autodiff computes a convolution's gradients with the backend-generic defaults of
//! `ModuleOps`, which burn-flex does not override: the weight gradient is a convolution over
//! swapped axes whose output is the kernel (3x3), which puts gemm on its narrowest micro-kernel,
//! and the input gradient a transposed convolution. `cargo xtask bench --ops --ops-train` measured
//! them at 4.25x and 2.18x PyTorch's time on resnet18's training step, 82% of the gap.
//!
//! Here, on `Autodiff<Flex>` with `f32` tensors and no groups, the convolution is one autodiff
//! operation whose forward is Flex's own `conv2d` and whose backward is written as the two gemms
//! PyTorch's CPU path computes:
//!
//! - weight: `dW[co, (ci,kh,kw)] = Σ_n Σ_p dY[n, co, p] · col_n[(ci,kh,kw), p]`, with `col_n` the
//!   im2col matrix of image `n` (no copy at all for 1x1 stride-1 convolutions);
//! - input: `col_n = Wᵀ · dY[n]`, scattered back into `dX[n]` (col2im; again nothing to scatter
//!   for 1x1 stride-1 convolutions).
//!
//! Images are shared out among rayon's threads (one accumulator per thread for the weight); a
//! batch smaller than the thread count lets gemm split each product instead.
//!
//! Every other case (other backends, grouped convolutions, `f16`/`bf16`, a checkpointing autodiff
//! device) is Burn's own `conv2d` and gradients, unchanged. The choice is made per call from the
//! tensors' backend, so a model has one code path; `cargo xtask parity --train-step` checks the
//! result against PyTorch on every backend.
//!
//! This uses Burn's `extension` feature (`Tensor::try_into_primitive` / `from_primitive`) and
//! burn-autodiff's `Backward` trait, the hand-written-backward route of Burn's backend-extension
//! chapter, without a `#[backend_extension]` trait: one backend gains an op, and the others need
//! no routing.

use burn::nn::PaddingConfig2d;
use burn::nn::conv::Conv2d;
use burn::tensor::module::conv2d as burn_conv2d;
use burn::tensor::ops::ConvOptions;
use burn::tensor::{Tensor, s};

/// `conv.forward(x)`: Burn's `Conv2d::forward` (same padding rules, same result), with the
/// zoo's gemm gradients when `x` is on an autodiff Flex device. Every family calls this rather
/// than `Conv2d::forward` (clippy's `disallowed-methods` enforces it).
///
/// # Shapes
/// - `x`: `[batch, in_channels, height, width]`
/// - output: `[batch, out_channels, out_height, out_width]`
pub fn conv2d(conv: &Conv2d, x: Tensor<4>) -> Tensor<4> {
    // Burn computes `Same` padding with a crate-private helper: such a convolution (none in the
    // zoo's families) stays Burn's `forward`, so its padding is Burn's whatever it is.
    let ((top, bottom), (left, right)) = match conv.padding {
        PaddingConfig2d::Valid => ((0, 0), (0, 0)),
        PaddingConfig2d::Explicit(top, left, bottom, right) => ((top, bottom), (left, right)),
        PaddingConfig2d::Same => {
            #[allow(clippy::disallowed_methods)]
            return conv.forward(x);
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
    if let Some(out) = flex::conv2d(&x, &weight, &options) {
        return match bias {
            Some(bias) => out + bias.reshape([1, -1, 1, 1]),
            None => out,
        };
    }
    burn_conv2d(x, weight, bias, options)
}

#[cfg(feature = "flex")]
mod flex {
    use burn::backend::autodiff::NodeId;
    use burn::backend::autodiff::checkpoint::base::Checkpointer;
    use burn::backend::autodiff::checkpoint::strategy::NoCheckpointing;
    use burn::backend::autodiff::grads::Gradients;
    use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
    use burn::backend::ops::ModuleOps;
    use burn::backend::{Autodiff, Flex, flex::FlexTensor};
    use burn::tensor::ops::ConvOptions;
    use burn::tensor::{DType, Shape, Tensor, TensorData};
    use rayon::prelude::*;

    type Ad = Autodiff<Flex>;

    /// The convolution without bias as one `Autodiff<Flex>` operation, or `None` (nothing
    /// consumed) where the zoo's gradients do not apply.
    pub(super) fn conv2d(
        x: &Tensor<4>,
        weight: &Tensor<4>,
        options: &ConvOptions<2>,
    ) -> Option<Tensor<4>> {
        if options.groups != 1 {
            return None;
        }
        let x = x.clone().try_into_primitive::<Ad>().ok()?;
        let weight = weight.clone().try_into_primitive::<Ad>().ok()?;
        if x.primitive().dtype() != DType::F32 || weight.primitive().dtype() != DType::F32 {
            return None;
        }
        let out = match ZooConv2d
            .prepare::<NoCheckpointing>([x.node(), weight.node()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(mut prep) => {
                let x_state = prep.checkpoint(&x);
                let weight_state = prep.checkpoint(&weight);
                let out = Flex::conv2d(
                    x.into_primitive(),
                    weight.into_primitive(),
                    None,
                    options.clone(),
                );
                prep.finish((x_state, weight_state, options.clone()), out)
            }
            OpsKind::UnTracked(prep) => prep.finish(Flex::conv2d(
                x.into_primitive(),
                weight.into_primitive(),
                None,
                options.clone(),
            )),
        };
        Some(Tensor::from_primitive::<Ad>(out))
    }

    #[derive(Debug)]
    struct ZooConv2d;

    impl Backward<Flex, 2> for ZooConv2d {
        type State = (NodeId, NodeId, ConvOptions<2>);

        fn backward(
            self,
            ops: Ops<Self::State, 2>,
            grads: &mut Gradients,
            checkpointer: &mut Checkpointer,
        ) {
            let [node_x, node_weight] = ops.parents;
            let grad = grads.consume::<Flex>(&ops.node);
            let (x_state, weight_state, options) = ops.state;
            let x = checkpointer.retrieve_node_output::<FlexTensor>(x_state);
            let weight = checkpointer.retrieve_node_output::<FlexTensor>(weight_state);
            let problem = Problem::new(&x, &weight, &grad, &options);
            if let Some(node) = node_x {
                let dx = match &problem {
                    Some(problem) => problem.input_grad(&weight, &grad),
                    None => Flex::conv2d_x_backward(
                        x.clone(),
                        weight.clone(),
                        grad.clone(),
                        options.clone(),
                    ),
                };
                grads.register::<Flex>(node.id, dx);
            }
            if let Some(node) = node_weight {
                let dw = match &problem {
                    Some(problem) => problem.weight_grad(&x, &grad),
                    None => Flex::conv2d_weight_backward(x, weight, grad, options),
                };
                grads.register::<Flex>(node.id, dw);
            }
        }
    }

    /// The sizes of one convolution, `groups == 1`, `f32`, NCHW.
    #[derive(Debug, Clone, PartialEq)]
    struct Problem {
        batch: usize,
        in_channels: usize,
        height: usize,
        width: usize,
        out_channels: usize,
        kernel: [usize; 2],
        out: [usize; 2],
        stride: [usize; 2],
        /// Padding before the first row and column (the end padding only shows in `out`).
        padding: [usize; 2],
        dilation: [usize; 2],
    }

    impl Problem {
        /// `None` for what the gemm path does not cover (another dtype).
        fn new(
            x: &FlexTensor,
            weight: &FlexTensor,
            grad: &FlexTensor,
            options: &ConvOptions<2>,
        ) -> Option<Self> {
            let f32s = [x, weight, grad].iter().all(|t| t.dtype() == DType::F32);
            if !f32s || options.groups != 1 {
                return None;
            }
            let dims = |t: &FlexTensor| -> Option<[usize; 4]> {
                t.layout().shape().as_slice().try_into().ok()
            };
            let [batch, in_channels, height, width] = dims(x)?;
            let [out_channels, weight_in, kh, kw] = dims(weight)?;
            let [grad_batch, grad_channels, oh, ow] = dims(grad)?;
            if weight_in != in_channels || grad_batch != batch || grad_channels != out_channels {
                return None;
            }
            Some(Self {
                batch,
                in_channels,
                height,
                width,
                out_channels,
                kernel: [kh, kw],
                out: [oh, ow],
                stride: options.stride,
                padding: options.padding.map(|(begin, _)| begin),
                dilation: options.dilation,
            })
        }

        /// Rows of the im2col matrix: `in_channels * kh * kw`.
        fn k(&self) -> usize {
            self.in_channels * self.kernel[0] * self.kernel[1]
        }

        /// Output pixels of one image.
        fn pixels(&self) -> usize {
            self.out[0] * self.out[1]
        }

        /// A 1x1 convolution with stride 1 and no padding: `col_n` is image `n` itself.
        fn pointwise(&self) -> bool {
            self.kernel == [1, 1] && self.stride == [1, 1] && self.padding == [0, 0]
        }

        /// The outputs along `axis` whose input at kernel offset `k` is inside the image, and
        /// the input index of the first of them (the next ones step by the stride).
        fn valid(&self, axis: usize, k: usize) -> (std::ops::Range<usize>, usize) {
            let (stride, size) = (self.stride[axis], [self.height, self.width][axis]);
            let shift = k * self.dilation[axis];
            let padding = self.padding[axis];
            // First output with `o * stride + shift >= padding`.
            let first = padding.saturating_sub(shift).div_ceil(stride);
            // Outputs with `o * stride + shift < padding + size`.
            let end = (padding + size)
                .checked_sub(shift)
                .map_or(0, |room| room.div_ceil(stride))
                .min(self.out[axis]);
            let first = first.min(end);
            // Saturating: an empty range's `first` may fall in the padding.
            (first..end, (first * stride + shift).saturating_sub(padding))
        }

        /// `col[(ci,kh,kw), p]` of one image `[in_channels, height, width]`.
        fn im2col(&self, image: &[f32], col: &mut [f32]) {
            let [kh, kw] = self.kernel;
            let [oh, ow] = self.out;
            let (plane, sx) = (self.height * self.width, self.stride[1]);
            for (row, col_row) in col.chunks_exact_mut(oh * ow).enumerate() {
                let (ci, k) = (row / (kh * kw), row % (kh * kw));
                let (ky, kx) = (k / kw, k % kw);
                let channel = &image[ci * plane..(ci + 1) * plane];
                let (rows, first_iy) = self.valid(0, ky);
                let (xs, first_ix) = self.valid(1, kx);
                for (y, out_row) in col_row.chunks_exact_mut(ow).enumerate() {
                    if !rows.contains(&y) || xs.is_empty() {
                        out_row.fill(0.0);
                        continue;
                    }
                    let iy = first_iy + (y - rows.start) * self.stride[0];
                    let input_row = &channel[iy * self.width..(iy + 1) * self.width];
                    out_row[..xs.start].fill(0.0);
                    out_row[xs.end..].fill(0.0);
                    let inside = &mut out_row[xs.clone()];
                    if sx == 1 {
                        inside.copy_from_slice(&input_row[first_ix..first_ix + xs.len()]);
                    } else {
                        let sources = input_row[first_ix..].iter().step_by(sx);
                        inside.iter_mut().zip(sources).for_each(|(v, x)| *v = *x);
                    }
                }
            }
        }

        /// `image[ci, iy, ix] += col[(ci,kh,kw), p]` for one image (the adjoint of `im2col`),
        /// the rows of `col` `row_stride` apart.
        fn col2im(&self, col: &[f32], row_stride: usize, image: &mut [f32]) {
            let [kh, kw] = self.kernel;
            let [oh, ow] = self.out;
            let (plane, sx) = (self.height * self.width, self.stride[1]);
            for row in 0..self.k() {
                let col_row = &col[row * row_stride..][..oh * ow];
                let (ci, k) = (row / (kh * kw), row % (kh * kw));
                let (ky, kx) = (k / kw, k % kw);
                let channel = &mut image[ci * plane..(ci + 1) * plane];
                let (rows, first_iy) = self.valid(0, ky);
                let (xs, first_ix) = self.valid(1, kx);
                if xs.is_empty() {
                    continue;
                }
                for (y, in_row) in col_row
                    .chunks_exact(ow)
                    .enumerate()
                    .take(rows.end)
                    .skip(rows.start)
                {
                    let iy = first_iy + (y - rows.start) * self.stride[0];
                    let out_row = &mut channel[iy * self.width..(iy + 1) * self.width];
                    let inside = &in_row[xs.clone()];
                    if sx == 1 {
                        let targets = &mut out_row[first_ix..first_ix + xs.len()];
                        targets.iter_mut().zip(inside).for_each(|(t, v)| *t += v);
                    } else {
                        let targets = out_row[first_ix..].iter_mut().step_by(sx);
                        targets.zip(inside).for_each(|(t, v)| *t += v);
                    }
                }
            }
        }

        /// Images per task and the parallelism of each gemm: images are shared out among the
        /// threads when there are at least as many as threads, else gemm splits each product.
        fn split(&self) -> (usize, gemm::Parallelism) {
            let threads = rayon::current_num_threads().max(1);
            if self.batch >= threads {
                (self.batch.div_ceil(threads), gemm::Parallelism::None)
            } else {
                (self.batch, gemm::Parallelism::Rayon(threads))
            }
        }

        /// `dW [out_channels, in_channels, kh, kw]`.
        fn weight_grad(&self, x: &FlexTensor, grad: &FlexTensor) -> FlexTensor {
            let x = contiguous(x);
            let grad = contiguous(grad);
            let (x, grad) = (slice(&x), slice(&grad));
            let (k, p, co) = (self.k(), self.pixels(), self.out_channels);
            let image = self.in_channels * self.height * self.width;
            let (per_task, parallelism) = self.split();
            let partial = |first: usize| -> Vec<f32> {
                let mut dw = vec![0.0f32; co * k];
                let mut col = if self.pointwise() {
                    Vec::new()
                } else {
                    vec![0.0f32; k * p]
                };
                for n in first..(first + per_task).min(self.batch) {
                    let x_n = &x[n * image..(n + 1) * image];
                    let rhs = if self.pointwise() {
                        x_n
                    } else {
                        self.im2col(x_n, &mut col);
                        &col
                    };
                    let dy = &grad[n * co * p..(n + 1) * co * p];
                    // dw[co, k] (+)= dy[co, p] · rhs[k, p]ᵀ
                    // SAFETY: every pointer covers its matrix: dw is co x k (row stride k),
                    // dy is co x p (row stride p), rhs is k x p read transposed (p x k).
                    unsafe {
                        gemm::gemm(
                            co,
                            k,
                            p,
                            dw.as_mut_ptr(),
                            1,
                            k as isize,
                            n != first,
                            dy.as_ptr(),
                            1,
                            p as isize,
                            rhs.as_ptr(),
                            p as isize,
                            1,
                            1.0,
                            1.0,
                            false,
                            false,
                            false,
                            parallelism,
                        );
                    }
                }
                dw
            };
            let firsts: Vec<usize> = (0..self.batch).step_by(per_task).collect();
            let partials: Vec<Vec<f32>> = firsts.into_par_iter().map(partial).collect();
            let mut parts = partials.into_iter();
            let mut dw = parts.next().unwrap_or_else(|| vec![0.0; co * k]);
            for part in parts {
                dw.iter_mut().zip(&part).for_each(|(a, b)| *a += b);
            }
            let [kh, kw] = self.kernel;
            tensor(dw, [co, self.in_channels, kh, kw])
        }

        /// `dX [batch, in_channels, height, width]`.
        fn input_grad(&self, weight: &FlexTensor, grad: &FlexTensor) -> FlexTensor {
            let weight = contiguous(weight);
            let grad = contiguous(grad);
            let (weight, grad) = (slice(&weight), slice(&grad));
            let (k, p, co) = (self.k(), self.pixels(), self.out_channels);
            let image = self.in_channels * self.height * self.width;
            let (per_task, parallelism) = self.split();
            // Small images (the last stages) are taken a few at a time, so that each gemm has
            // enough columns: `dcol [k, g p] = weightᵀ · [dy_n | dy_n+1 | ...]`.
            let group = if self.pointwise() {
                1
            } else {
                (1024 / p).clamp(1, per_task)
            };
            let mut dx = vec![0.0f32; self.batch * image];
            dx.par_chunks_mut(per_task * image)
                .enumerate()
                .for_each(|(task, images)| {
                    let mut col = if self.pointwise() {
                        Vec::new()
                    } else {
                        vec![0.0f32; k * group * p]
                    };
                    let mut gathered = Vec::new();
                    for (g, dx_g) in images.chunks_mut(group * image).enumerate() {
                        let first = task * per_task + g * group;
                        let count = dx_g.len() / image;
                        let columns = count * p;
                        // dy of the group as one [co, count p] matrix.
                        let dy = if count == 1 {
                            &grad[first * co * p..(first + 1) * co * p]
                        } else {
                            gathered.resize(co * columns, 0.0);
                            for i in 0..count {
                                let dy_n = &grad[(first + i) * co * p..][..co * p];
                                for (c, row) in dy_n.chunks_exact(p).enumerate() {
                                    gathered[c * columns + i * p..][..p].copy_from_slice(row);
                                }
                            }
                            &gathered[..]
                        };
                        let dst = if self.pointwise() {
                            &mut dx_g[..]
                        } else {
                            &mut col[..k * columns]
                        };
                        // dst[k, columns] = weight[co, k]ᵀ · dy[co, columns]
                        // SAFETY: dst is k x columns (row stride columns), weight co x k read
                        // transposed, dy co x columns; each slice holds exactly those elements
                        // (a pointwise group is one image: dst is its k x p gradient).
                        unsafe {
                            gemm::gemm(
                                k,
                                columns,
                                co,
                                dst.as_mut_ptr(),
                                1,
                                columns as isize,
                                false,
                                weight.as_ptr(),
                                k as isize,
                                1,
                                dy.as_ptr(),
                                1,
                                columns as isize,
                                0.0,
                                1.0,
                                false,
                                false,
                                false,
                                parallelism,
                            );
                        }
                        if !self.pointwise() {
                            for (i, dx_n) in dx_g.chunks_exact_mut(image).enumerate() {
                                self.col2im(&col[i * p..], columns, dx_n);
                            }
                        }
                    }
                });
            tensor(dx, [self.batch, self.in_channels, self.height, self.width])
        }
    }

    fn contiguous(t: &FlexTensor) -> FlexTensor {
        if t.is_contiguous() {
            t.clone()
        } else {
            t.to_contiguous()
        }
    }

    fn slice(t: &FlexTensor) -> &[f32] {
        // `Problem::new` checked the dtype and `contiguous` the layout.
        t.as_slice::<f32>()
            .expect("a contiguous f32 tensor has an f32 slice")
    }

    fn tensor(values: Vec<f32>, shape: [usize; 4]) -> FlexTensor {
        FlexTensor::from_data(TensorData::new(values, Shape::from(shape)))
    }
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
    fn grouped_convolutions_stay_burns() {
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
            flex::conv2d(&x, &w, &options).is_some()
        };
        assert!(take(&Device::flex().autodiff()));
        assert!(!take(&Device::flex()));
        let grouped = ConvOptions::new([1, 1], [0, 0], [1, 1], 2);
        let device = Device::flex().autodiff();
        let x = Tensor::<4>::ones([1, 2, 3, 3], &device);
        let w = Tensor::<4>::ones([2, 1, 1, 1], &device);
        assert!(flex::conv2d(&x, &w, &grouped).is_none());
    }
}
