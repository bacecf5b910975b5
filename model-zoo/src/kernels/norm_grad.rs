//! BatchNorm in training mode as one `Autodiff<Flex>` operation with its own two-pass forward
//! and backward.
//!
//! Burn 0.22 records `batch_norm_train` as one autodiff operation, but burn-flex keeps the
//! backend-generic bodies of `ModuleOps::batch_norm_train` and `batch_norm_train_backward`:
//! the statistics through `swap_dims` and `reshape` (a transposing copy of the activation), a
//! `mean_dim`, and broadcast subtractions and multiplications, about eight passes over the
//! activation forward and fifteen backward. Here, per channel (axis 1):
//!
//! - forward: one pass for the sum and the sum of squares (in `f64`, each plane's from its first
//!   value), one for `y = (x - mean) * scale + beta` (`scale = gamma / sqrt(var + eps)`);
//! - backward: one pass for `Σ dy` and `Σ dy (x - mean)` (in `f64`), one for
//!   `dx = a dy + b (x - mean) + c`, the per-channel `a`, `b`, `c` folding Burn's (and
//!   PyTorch's) `gamma inv_std (dy - mean(dy) - x̂ mean(dy x̂))`.
//!
//! Both element-wise passes subtract the mean first, as PyTorch does: folded into a shift
//! (`a x - a mean`), a channel whose mean is large against its spread lost its precision, and
//! resnet18's training step missed PyTorch's by 1e-4 (`cargo xtask parity --train-step`).
//!
//! Measured (`cargo xtask bench`, resnet18, batch 8, Flex, 2 threads, two runs): the training
//! step from 11.7-12.0 to 14.4-14.8 img/s, 0.78-0.84x PyTorch's (0.61-0.65x before).
//!
//! The statistics are the biased batch variance and the mean, as Burn's op returns them; the
//! zoo's `BatchNorm` turns them into PyTorch's running statistics. A checkpointing autodiff
//! device, or any other backend, keeps Burn's op.

use burn::backend::AutodiffBackend;
use burn::backend::autodiff::NodeId;
use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::NoCheckpointing;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::{Autodiff, Flex, flex::FlexTensor};
use burn::tensor::{DType, Tensor};
use rayon::prelude::*;

use super::math::vectorized;
use super::{CHUNK, contiguous, slice, tensor};

type Ad = Autodiff<Flex>;

/// What [`batch_norm_train`] returns: the normalised output (tracked), and the batch mean and
/// biased variance per channel (not tracked).
pub(crate) struct BatchNormTrain<const D: usize> {
    pub output: Tensor<D>,
    pub mean: Tensor<1>,
    pub variance: Tensor<1>,
}

/// BatchNorm over a batch (`[batch, channels, ...]`, statistics per channel) as one
/// `Autodiff<Flex>` operation, or `None` (nothing consumed) where it does not apply: another
/// backend, dtype or a checkpointing strategy Burn's op handles, shapes that do not agree.
///
/// # Shapes
/// - `x`, output: `[batch, channels, ...]`
/// - `gamma`, `beta`, mean, variance: `[channels]`
pub(crate) fn batch_norm_train<const D: usize>(
    x: &Tensor<D>,
    gamma: &Tensor<1>,
    beta: &Tensor<1>,
    epsilon: f64,
) -> Option<BatchNormTrain<D>> {
    if D < 2 {
        return None;
    }
    let x = x.clone().try_into_primitive::<Ad>().ok()?;
    let gamma = gamma.clone().try_into_primitive::<Ad>().ok()?;
    let beta = beta.clone().try_into_primitive::<Ad>().ok()?;
    let dims = x.primitive().layout().shape().as_slice().to_vec();
    let channels = dims[1];
    let f32s = [&x, &gamma, &beta]
        .iter()
        .all(|t| t.primitive().dtype() == DType::F32);
    let per_channel = [gamma.primitive(), beta.primitive()]
        .iter()
        .all(|t| t.layout().shape().as_slice() == [channels]);
    let geometry = Geometry::new(&dims)?;
    if !f32s || !per_channel || geometry.count() == 0 {
        return None;
    }
    let x_values = contiguous(x.primitive().clone());
    let gamma_values = contiguous(gamma.primitive().clone());
    let beta_values = contiguous(beta.primitive().clone());
    let (mean, variance) = geometry.statistics(slice(&x_values));
    let scale: Vec<f32> = (0..channels)
        .map(|c| slice(&gamma_values)[c] / (variance[c] as f64 + epsilon).sqrt() as f32)
        .collect();
    let beta_values = slice(&beta_values);
    let output = geometry.map(slice(&x_values), None, |c| {
        (mean[c], scale[c], 0.0, beta_values[c])
    });
    let output = tensor(output, dims.clone());
    let stats = |values: &[f32]| {
        Tensor::<1>::from_primitive::<Ad>(Ad::from_inner(tensor(values.to_vec(), [channels])))
    };
    let (mean_t, variance_t) = (stats(&mean), stats(&variance));
    let output = match ZooBatchNormTrain
        .prepare::<NoCheckpointing>([x.node(), gamma.node(), beta.node()])
        .compute_bound()
        .stateful()
    {
        OpsKind::Tracked(mut prep) => {
            let x_state = prep.checkpoint(&x);
            let gamma_state = prep.checkpoint(&gamma);
            let state = State {
                x: x_state,
                gamma: gamma_state,
                mean,
                variance,
                epsilon,
            };
            prep.finish(state, output)
        }
        OpsKind::UnTracked(prep) => prep.finish(output),
    };
    Some(BatchNormTrain {
        output: Tensor::from_primitive::<Ad>(output),
        mean: mean_t,
        variance: variance_t,
    })
}

/// What the backward keeps: the input and `gamma` (checkpointed), the batch statistics.
#[derive(Debug, Clone)]
struct State {
    x: NodeId,
    gamma: NodeId,
    mean: Vec<f32>,
    variance: Vec<f32>,
    epsilon: f64,
}

#[derive(Debug)]
struct ZooBatchNormTrain;

impl Backward<Flex, 3> for ZooBatchNormTrain {
    type State = State;

    fn backward(
        self,
        ops: Ops<Self::State, 3>,
        grads: &mut Gradients,
        checkpointer: &mut Checkpointer,
    ) {
        let [node_x, node_gamma, node_beta] = ops.parents;
        let grad = contiguous(grads.consume::<Flex>(&ops.node));
        let state = ops.state;
        let x = contiguous(checkpointer.retrieve_node_output::<FlexTensor>(state.x));
        let gamma = contiguous(checkpointer.retrieve_node_output::<FlexTensor>(state.gamma));
        let dims = x.layout().shape().as_slice().to_vec();
        let Some(geometry) = Geometry::new(&dims) else {
            unreachable!("the forward checked the geometry")
        };
        let channels = geometry.channels;
        let (x, dy, gamma) = (slice(&x), slice(&grad), slice(&gamma));
        // Per channel: Σ dy and Σ dy (x - mean).
        let sums = geometry.per_channel_task(|c| {
            let mean = state.mean[c];
            let (mut sum, mut dot) = (0.0f64, 0.0f64);
            for (x, dy) in geometry.planes(x, c).zip(geometry.planes(dy, c)) {
                let (s, d) = vectorized(
                    #[inline(always)]
                    || lanes2(x, dy, |x, dy| (dy, dy * (x - mean))),
                );
                sum += s;
                dot += d;
            }
            (sum, dot)
        });
        let m = geometry.per_channel() as f64;
        let inv_std: Vec<f64> = (0..channels)
            .map(|c| 1.0 / (state.variance[c] as f64 + state.epsilon).sqrt())
            .collect();
        if let Some(node) = node_x {
            // dx = gamma s (dy - Σdy/m - (x - mean) s² Σdy(x - mean)/m)
            //    = a dy + b (x - mean) + c.
            let coefficients: Vec<(f32, f32, f32, f32)> = (0..channels)
                .map(|c| {
                    let (s, g) = (inv_std[c], gamma[c] as f64);
                    let (sum, dot) = sums[c];
                    let a = g * s;
                    let b = -g * s * s * s * dot / m;
                    (state.mean[c], a as f32, b as f32, (-a * sum / m) as f32)
                })
                .collect();
            let dx = geometry.map(dy, Some(x), |c| coefficients[c]);
            grads.register::<Flex>(node.id, tensor(dx, dims.clone()));
        }
        if let Some(node) = node_gamma {
            let d_gamma = (0..channels)
                .map(|c| (sums[c].1 * inv_std[c]) as f32)
                .collect();
            grads.register::<Flex>(node.id, tensor(d_gamma, [channels]));
        }
        if let Some(node) = node_beta {
            let d_beta = sums.iter().map(|(sum, _)| *sum as f32).collect();
            grads.register::<Flex>(node.id, tensor(d_beta, [channels]));
        }
    }
}

/// `[batch, channels, inner]` of a `[batch, channels, ...]` shape.
#[derive(Debug, Clone, Copy)]
struct Geometry {
    batch: usize,
    channels: usize,
    inner: usize,
}

impl Geometry {
    fn new(dims: &[usize]) -> Option<Self> {
        let (&batch, rest) = dims.split_first()?;
        let (&channels, inner) = rest.split_first()?;
        Some(Self {
            batch,
            channels,
            inner: inner.iter().product(),
        })
    }

    fn count(&self) -> usize {
        self.batch * self.channels * self.inner
    }

    fn per_channel(&self) -> usize {
        self.batch * self.inner
    }

    /// `f(c)` for every channel `c`, shared out among the threads.
    fn per_channel_task<R: Send>(&self, f: impl Fn(usize) -> R + Send + Sync) -> Vec<R> {
        (0..self.channels).into_par_iter().map(f).collect()
    }

    /// Channel `c`'s planes of `values`, one per image.
    fn planes<'a>(&self, values: &'a [f32], c: usize) -> impl Iterator<Item = &'a [f32]> {
        let (channels, inner) = (self.channels, self.inner);
        (0..self.batch).map(move |n| &values[(n * channels + c) * inner..][..inner])
    }

    /// Per channel, its mean and biased variance (sums in `f64`).
    fn statistics(&self, x: &[f32]) -> (Vec<f32>, Vec<f32>) {
        let m = self.per_channel() as f64;
        self.per_channel_task(|c| {
            let (mut sum, mut squares) = (0.0f64, 0.0f64);
            for plane in self.planes(x, c) {
                // A plane's sums in f32 lanes from a shifted origin (its first value), so that
                // a channel far from zero keeps its precision; then in f64.
                let origin = plane[0];
                let (s, q) = vectorized(
                    #[inline(always)]
                    || {
                        lanes2(plane, plane, |x, _| {
                            let d = x - origin;
                            (d, d * d)
                        })
                    },
                );
                let n = plane.len() as f64;
                let o = origin as f64;
                sum += s + n * o;
                squares += q + 2.0 * o * s + n * o * o;
            }
            let mean = sum / m;
            (mean as f32, (squares / m - mean * mean).max(0.0) as f32)
        })
        .into_iter()
        .unzip()
    }

    /// Over every value of channel `c`, with `(mean, a, b, c)` its coefficients: `out = a (v -
    /// mean) + c` where `w` is `None`, else `out = a v + b (w - mean) + c`. Centred, as
    /// PyTorch computes it: `a v - a mean` would lose the precision of a channel whose mean is
    /// large against its spread. Whole planes per task.
    fn map(
        &self,
        v: &[f32],
        w: Option<&[f32]>,
        coefficients: impl Fn(usize) -> (f32, f32, f32, f32) + Sync,
    ) -> Vec<f32> {
        let inner = self.inner;
        let mut out = Vec::with_capacity(self.count());
        let planes_per_task = (CHUNK / inner).max(1);
        out.spare_capacity_mut()[..self.count()]
            .par_chunks_mut(planes_per_task * inner)
            .enumerate()
            .for_each(|(task, planes)| {
                for (i, plane) in planes.chunks_exact_mut(inner).enumerate() {
                    let index = task * planes_per_task + i;
                    let (mean, a, b, c) = coefficients(index % self.channels);
                    let v = &v[index * inner..][..inner];
                    vectorized(
                        #[inline(always)]
                        || match w {
                            None => {
                                for (o, v) in plane.iter_mut().zip(v) {
                                    o.write(a * (v - mean) + c);
                                }
                            }
                            Some(w) => {
                                let w = &w[index * inner..][..inner];
                                for ((o, v), w) in plane.iter_mut().zip(v).zip(w) {
                                    o.write(a * v + b * (w - mean) + c);
                                }
                            }
                        },
                    );
                }
            });
        // SAFETY: every value of the first `count` was written above, whole planes of
        // `inner > 0` values (the callers checked `count > 0`).
        unsafe { out.set_len(self.count()) };
        out
    }
}

/// Values summed per step of [`lanes2`]: independent accumulators the compiler keeps in vector
/// registers.
const LANES: usize = 16;

/// `(Σ f(x, y).0, Σ f(x, y).1)` over `x` and `y` (of one length), in [`LANES`] `f32`
/// accumulators each, returned in `f64`.
#[inline(always)]
fn lanes2(x: &[f32], y: &[f32], f: impl Fn(f32, f32) -> (f32, f32)) -> (f64, f64) {
    let (mut a, mut b) = ([0.0f32; LANES], [0.0f32; LANES]);
    let mut xs = x.chunks_exact(LANES);
    let mut ys = y.chunks_exact(LANES);
    for (x, y) in (&mut xs).zip(&mut ys) {
        for l in 0..LANES {
            let (p, q) = f(x[l], y[l]);
            a[l] += p;
            b[l] += q;
        }
    }
    let (mut sa, mut sb) = (0.0f64, 0.0f64);
    for (x, y) in xs.remainder().iter().zip(ys.remainder()) {
        let (p, q) = f(*x, *y);
        sa += p as f64;
        sb += q as f64;
    }
    (
        sa + a.iter().map(|v| *v as f64).sum::<f64>(),
        sb + b.iter().map(|v| *v as f64).sum::<f64>(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::{Device, Distribution};

    use super::super::test_values as values;

    /// Within `tolerance` of the larger of `want`'s largest magnitude and 1.
    fn assert_close(what: &str, got: &[f32], want: &[f32], tolerance: f32) {
        assert_eq!(got.len(), want.len(), "{what}");
        let scale = want.iter().fold(0.0f32, |m, v| m.max(v.abs())).max(1.0);
        for (i, (g, w)) in got.iter().zip(want).enumerate() {
            assert!(
                (g - w).abs() <= tolerance * scale,
                "{what} at {i}: {g} against {w} (scale {scale})"
            );
        }
    }

    /// Output, statistics and the three gradients against Burn's own op on the same device:
    /// rank 3 and 4, channels far from zero, planes of one value, planes larger than a task.
    #[test]
    fn batch_norm_train_equals_burns_op() {
        let device = Device::flex().autodiff();
        for (dims, offset) in [
            (vec![3, 5, 7, 6], 0.0),
            (vec![2, 4, 33], 50.0),
            (vec![4, 8, 1, 1], 0.0),
            (vec![2, 70, 9, 9], 0.0),
            (vec![2, 4, 112, 112], 0.0),
        ] {
            let x = match dims.len() {
                4 => Tensor::<4>::random(
                    [dims[0], dims[1], dims[2], dims[3]],
                    Distribution::Normal(offset, 2.0),
                    &device,
                )
                .flatten::<3>(2, 3),
                _ => Tensor::<3>::random(
                    [dims[0], dims[1], dims[2]],
                    Distribution::Normal(offset, 2.0),
                    &device,
                ),
            };
            let [_, channels, _] = x.dims();
            let gamma = Tensor::<1>::random([channels], Distribution::Normal(1.0, 0.5), &device);
            let beta = Tensor::<1>::random([channels], Distribution::Normal(0.0, 0.5), &device);
            let upstream = Tensor::<3>::random(x.dims(), Distribution::Normal(0.0, 1.0), &device);
            let run = |zoo: bool| {
                let (x, gamma, beta) = (
                    x.clone().detach().require_grad(),
                    gamma.clone().detach().require_grad(),
                    beta.clone().detach().require_grad(),
                );
                let (out, mean, var) = if zoo {
                    let r =
                        batch_norm_train(&x, &gamma, &beta, 1e-5).expect("taken on Autodiff<Flex>");
                    (r.output, r.mean, r.variance)
                } else {
                    let r = burn::tensor::module::batch_norm_train(
                        x.clone(),
                        gamma.clone(),
                        beta.clone(),
                        1e-5,
                    );
                    (r.output, r.mean, r.variance)
                };
                let grads = (out.clone() * upstream.clone()).sum().backward();
                let grad = |t: &Tensor<3>| values(&t.grad(&grads).expect("a gradient"));
                let grad1 = |t: &Tensor<1>| values(&t.grad(&grads).expect("a gradient"));
                [
                    values(&out),
                    values(&mean),
                    values(&var),
                    grad(&x),
                    grad1(&gamma),
                    grad1(&beta),
                ]
            };
            let (got, want) = (run(true), run(false));
            for (what, (g, w)) in ["output", "mean", "variance", "dx", "dgamma", "dbeta"]
                .iter()
                .zip(got.iter().zip(&want))
            {
                assert_close(what, g, w, 1e-5);
            }
        }
    }
}
