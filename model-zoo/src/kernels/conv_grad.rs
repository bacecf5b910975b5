//! The convolution as one `Autodiff<Flex>` operation with gemm-shaped gradients.
//!
//! Burn 0.22's autodiff computes a convolution's gradients with the backend-generic defaults of
//! `ModuleOps`, which burn-flex does not override: the weight gradient is a convolution over
//! swapped axes whose output is the kernel (3x3), which puts gemm on its narrowest micro-kernel,
//! and the input gradient a transposed convolution. `cargo xtask bench --ops --ops-train` measured
//! them at 4.25x and 2.18x PyTorch's time on resnet18's training step, 82% of the gap.
//!
//! Here, on `Autodiff<Flex>` with `f32` tensors, the convolution is one autodiff operation whose
//! forward is the zoo's kernel (`conv.rs`) and whose backward, for `groups == 1`, is written as
//! the two gemms PyTorch's CPU path computes (grouped convolutions take Flex's own gradients):
//!
//! - weight: `dW[co, (ci,kh,kw)] = Σ_n Σ_p dY[n, co, p] · col_n[(ci,kh,kw), p]`, with `col_n` the
//!   im2col matrix of image `n` (no copy at all for 1x1 stride-1 convolutions);
//! - input: `col_n = Wᵀ · dY[n]`, scattered back into `dX[n]` (col2im; again nothing to scatter
//!   for 1x1 stride-1 convolutions).
//!
//! Images are shared out among rayon's threads (one accumulator per thread for the weight); a
//! batch smaller than the thread count lets gemm split each product instead.
//!
//! This uses Burn's `extension` feature (`Tensor::try_into_primitive` / `from_primitive`) and
//! burn-autodiff's `Backward` trait, the hand-written-backward route of Burn's backend-extension
//! chapter, without a `#[backend_extension]` trait: one backend gains an op, and the others need
//! no routing. A checkpointing autodiff device keeps Burn's own convolution.

use burn::backend::autodiff::NodeId;
use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::NoCheckpointing;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::ops::ModuleOps;
use burn::backend::{Autodiff, Flex, flex::FlexTensor};
use burn::tensor::ops::ConvOptions;
use burn::tensor::{DType, Tensor};
use rayon::prelude::*;

use super::conv::{Epilogue, Problem};
use super::{contiguous, slice, tensor};

type Ad = Autodiff<Flex>;

/// The convolution without bias as one `Autodiff<Flex>` operation, or `None` (nothing
/// consumed) where it does not apply (another backend or dtype, shapes that do not agree).
pub(crate) fn conv2d_autodiff(
    x: &Tensor<4>,
    weight: &Tensor<4>,
    options: &ConvOptions<2>,
) -> Option<Tensor<4>> {
    let x = x.clone().try_into_primitive::<Ad>().ok()?;
    let weight = weight.clone().try_into_primitive::<Ad>().ok()?;
    if x.primitive().dtype() != DType::F32 || weight.primitive().dtype() != DType::F32 {
        return None;
    }
    let problem = super::problem(
        x.primitive().layout().shape().as_slice(),
        weight.primitive().layout().shape().as_slice(),
        options,
    )?;
    let forward = |x: FlexTensor, weight: FlexTensor| {
        super::forward(
            &problem,
            &contiguous(x),
            &contiguous(weight),
            &Epilogue::default(),
        )
    };
    let out = match ZooConv2d
        .prepare::<NoCheckpointing>([x.node(), weight.node()])
        .compute_bound()
        .stateful()
    {
        OpsKind::Tracked(mut prep) => {
            let x_state = prep.checkpoint(&x);
            let weight_state = prep.checkpoint(&weight);
            let out = forward(x.into_primitive(), weight.into_primitive());
            prep.finish((x_state, weight_state, options.clone()), out)
        }
        OpsKind::UnTracked(prep) => {
            prep.finish(forward(x.into_primitive(), weight.into_primitive()))
        }
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
        let problem = gradient_problem(&x, &weight, &grad, &options);
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

/// The gradients' sizes: the forward's [`Problem`], `groups == 1`, `f32`, with the gradient
/// of the output's shape. `None` for what the gemm path does not cover.
fn gradient_problem(
    x: &FlexTensor,
    weight: &FlexTensor,
    grad: &FlexTensor,
    options: &ConvOptions<2>,
) -> Option<Problem> {
    let f32s = [x, weight, grad].iter().all(|t| t.dtype() == DType::F32);
    if !f32s || options.groups != 1 {
        return None;
    }
    let problem = super::problem(
        x.layout().shape().as_slice(),
        weight.layout().shape().as_slice(),
        options,
    )?;
    let expected = [
        problem.batch,
        problem.out_channels,
        problem.out[0],
        problem.out[1],
    ];
    (grad.layout().shape().as_slice() == expected).then_some(problem)
}

impl Problem {
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
        let x = contiguous(x.clone());
        let grad = contiguous(grad.clone());
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
                    self.im2col(x_n, 0..self.out[0], &mut col);
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
        let weight = contiguous(weight.clone());
        let grad = contiguous(grad.clone());
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
