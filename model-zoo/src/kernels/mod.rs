//! The zoo's own CPU hot path: Flex-only kernels behind one dispatch.
//!
//! Every function here takes Burn tensors and answers `Err(input)` (the input back, untouched)
//! unless the tensors live on a plain Flex device in `f32`; the caller in `layers` then runs
//! Burn's own ops. So a model has one code path on every backend: NdArray, wgpu, CUDA and
//! autodiff devices keep Burn's ops (the convolution's gradients on `Autodiff<Flex>` are the one
//! exception, [`conv2d_autodiff`]), and `cargo xtask parity` checks both routes against PyTorch.
//!
//! What the kernels change, each measured by `cargo xtask bench` (docs/src/speed.md):
//! - element-wise activations vectorised for the CPU at run time ([`math::vectorized`]) and shared
//!   out among rayon's threads, in place when the tensor is not shared; Flex 0.22's are scalar,
//!   single-threaded, and GELU calls `libm::erff` per value;
//! - eval BatchNorm and its activation in one pass ([`channel_affine`]);
//! - the convolution without per-call weight re-layout, its gemm writing straight into the
//!   output, with bias, BatchNorm and activation as its epilogue ([`conv2d`], `conv.rs`), and a
//!   depthwise kernel of its own;
//! - a residual add and its activation in one pass, in place ([`add_activation`]);
//! - the transformer glue (`transformer.rs`): `Linear` with its bias as the gemm's initial
//!   output ([`linear`]), multi-head attention straight from the packed projection with the
//!   scale, bias, mask and softmax in one pass per score row ([`attention`]), LayerNorm and
//!   softmax over the last axis ([`layer_norm`], [`softmax`]).

// `Err` hands the caller's tensor back untouched (a `Tensor` is large); boxing it would cost an
// allocation on the path every non-Flex backend takes.
#![allow(clippy::result_large_err)]

mod activation_grad;
mod conv;
mod conv_grad;
mod math;
mod norm_grad;
mod transformer;
mod winograd;

use burn::backend::{Flex, flex::FlexTensor};
use burn::tensor::ops::{ConvOptions, MaxPoolOptions};
use burn::tensor::{DType, Device, Shape, Tensor, TensorData};
use rayon::prelude::*;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::layers::activation_kind::ActivationKind;
pub(crate) use conv_grad::conv2d_autodiff;
use math::{activate_slice, scale_shift_slice, vectorized};
pub(crate) use norm_grad::batch_norm_train;
pub(crate) use transformer::{Scores, attention, layer_norm, linear, softmax};

/// Values per task of the element-wise kernels (64 KiB): enough to hide rayon's cost per task,
/// small enough to share a layer's values among the threads.
const CHUNK: usize = 1 << 14;

/// `x` as Flex's primitive when it is an `f32` tensor on a plain (not autodiff) Flex device; else
/// `x` back. Converting a clone and dropping `x` leaves the primitive's buffer unshared when `x`'s
/// was, so that the kernels may write into it.
fn flex_f32<const D: usize>(x: Tensor<D>) -> Result<FlexTensor, Tensor<D>> {
    if !takes(&x) {
        return Err(x);
    }
    match x.clone().try_into_primitive::<Flex>() {
        Ok(primitive) => {
            drop(x);
            Ok(primitive)
        }
        Err(_) => Err(x),
    }
}

/// A raw pointer to the output, shared among the tasks that write disjoint parts of it.
#[derive(Clone, Copy)]
struct OutPtr(*mut f32);
// SAFETY: every task writes only its own elements (disjoint sets: a tile's output rows, a block
// of columns), and the buffer outlives the parallel loop that uses the pointer.
unsafe impl Send for OutPtr {}
unsafe impl Sync for OutPtr {}

impl OutPtr {
    /// The pointer `offset` values in (a method, so that closures capture the `Send` wrapper,
    /// not its field).
    ///
    /// # Safety
    /// `offset` is inside the output buffer.
    unsafe fn at(self, offset: usize) -> *mut f32 {
        // SAFETY: the caller's.
        unsafe { self.0.add(offset) }
    }
}

/// `out = epilogue(conv(x, weight))`, `out` of `batch * out_channels * pixels` values, each
/// written once: `out` need not be initialised (zeroing a fresh output first costs as much as a
/// depthwise convolution: measured in `bench --ops`). The depthwise kernel, Winograd where it
/// applies, else im2col tiles and gemm.
fn convolve(
    problem: &conv::Problem,
    x: &[f32],
    weight: &[f32],
    epilogue: &conv::Epilogue,
    out: &mut [std::mem::MaybeUninit<f32>],
) {
    if out.is_empty() {
        return;
    }
    if problem.depthwise() {
        problem.forward_depthwise(x, weight, epilogue, out);
    } else if winograd::applies(problem) {
        winograd::forward(problem, x, weight, epilogue, out);
    } else {
        problem.forward_gemm(x, weight, epilogue, out);
    }
}

/// Both tensors as Flex's primitives ([`flex_f32`]), the second contiguous (it is only read), or
/// both back untouched.
fn flex_f32_pair<const D: usize, const E: usize>(
    a: Tensor<D>,
    b: Tensor<E>,
) -> Result<(FlexTensor, FlexTensor), (Tensor<D>, Tensor<E>)> {
    let a = match flex_f32(a) {
        Ok(a) => a,
        Err(a) => return Err((a, b)),
    };
    match flex_f32(b) {
        Ok(b) => Ok((a, contiguous(b))),
        Err(b) => Err((Tensor::from_primitive::<Flex>(a), b)),
    }
}

/// `f()` (a model's forward) on one of rayon's worker threads, the others kept awake until it
/// returns, when `device` is plain Flex and the caller is not already a worker; else `f()` as it
/// is.
///
/// A forward is a chain of kernels each shared out among the threads. Called from a thread
/// outside the pool, every one of them was handed to the pool and waited for (two context
/// switches per kernel), and between kernels the other workers went to sleep and had to be woken
/// through a futex: at batch 1, MobileNetV3-Small spent 14% of its time in those syscalls and
/// ran no faster on 2 threads than on 1. Here the forward runs on a worker (a kernel's first
/// share runs where it is called) and every other worker polls for the next kernel's shares
/// (`rayon::yield_now`) until the forward ends, as ONNX Runtime's spinning thread pool does.
pub(crate) fn on_worker<R: Send>(device: &Device, f: impl FnOnce() -> R + Send) -> R {
    if rayon::current_thread_index().is_some() || device.is_autodiff() || *device != Device::flex()
    {
        return f();
    }
    let done = AtomicBool::new(false);
    rayon::scope(|scope| {
        if rayon::current_num_threads() > 1 {
            let owner = rayon::current_thread_index();
            let done = &done;
            scope.spawn_broadcast(move |_, context| {
                if Some(context.index()) == owner {
                    return;
                }
                while !done.load(Ordering::Acquire) {
                    if rayon::yield_now() != Some(rayon::Yield::Executed) {
                        std::hint::spin_loop();
                    }
                }
            });
        }
        let out = f();
        done.store(true, Ordering::Release);
        out
    })
}

/// Whether the kernels take `x`: an `f32` tensor on a plain (not autodiff) Flex device.
pub(crate) fn takes<const D: usize>(x: &Tensor<D>) -> bool {
    let device = x.device();
    // Device equality ignores autodiff: both are checked.
    x.dtype() == DType::F32 && !device.is_autodiff() && device == Device::flex()
}

/// The values of a small `f32` Flex tensor (per-channel parameters), or `None`.
fn flex_values<const D: usize>(t: &Tensor<D>) -> Option<Vec<f32>> {
    let t = flex_f32(t.clone()).ok()?;
    Some(contiguous(t).as_slice::<f32>()?.to_vec())
}

/// `t` contiguous from offset 0 (copied only where it is not).
fn contiguous(t: FlexTensor) -> FlexTensor {
    if t.is_contiguous() && t.layout().start_offset() == 0 {
        t
    } else {
        t.to_contiguous()
    }
}

/// `t` contiguous and not shared with another tensor, so that it may be written in place: `t`
/// itself when it is, else a copy.
fn owned(t: FlexTensor) -> FlexTensor {
    FlexTensor::from_data(t.into_data())
}

/// The values of `t`, contiguous and `f32` (as its caller checked).
fn slice(t: &FlexTensor) -> &[f32] {
    t.as_slice::<f32>()
        .unwrap_or_else(|| unreachable!("a contiguous f32 tensor has an f32 slice"))
}

/// A new contiguous `f32` tensor of `shape` from `values`.
fn tensor(values: Vec<f32>, shape: impl Into<Shape>) -> FlexTensor {
    FlexTensor::from_data(TensorData::new(values, shape.into()))
}

/// `f(chunk)` over `values` in chunks of [`CHUNK`], shared out among the threads.
fn par_chunks(values: &mut [f32], f: impl Fn(usize, &mut [f32]) + Sync) {
    if values.len() <= CHUNK {
        f(0, values);
    } else {
        values
            .par_chunks_mut(CHUNK)
            .enumerate()
            .for_each(|(i, chunk)| f(i, chunk));
    }
}

/// The activation `kind` of every value, in place where `x` is not shared.
///
/// # Shapes
/// - `x`, output: any, the same
pub(crate) fn activation<const D: usize>(
    kind: ActivationKind,
    x: Tensor<D>,
) -> Result<Tensor<D>, Tensor<D>> {
    let x = match activation_grad::activation(kind, x) {
        Ok(out) => return Ok(out),
        Err(x) => x,
    };
    let mut t = owned(flex_f32(x)?);
    activate(kind, &mut t);
    Ok(Tensor::from_primitive::<Flex>(t))
}

/// The activation `kind` of every value of `t` (contiguous `f32`), in place, over the threads.
fn activate(kind: ActivationKind, t: &mut FlexTensor) {
    par_chunks(t.storage_mut::<f32>(), |_, chunk| {
        vectorized(
            #[inline(always)]
            || activate_slice(kind, chunk),
        )
    });
}

/// `act(x * scale[c] + shift[c])` for every value of channel `c` (axis 1): eval BatchNorm and
/// the activation after it in one pass, in place where `x` is not shared.
///
/// # Shapes
/// - `x`, output: `[batch, channels, ...]`
/// - `scale`, `shift`: `[channels]`
pub(crate) fn channel_affine<const D: usize>(
    x: Tensor<D>,
    scale: &[f32],
    shift: &[f32],
    act: Option<ActivationKind>,
) -> Result<Tensor<D>, Tensor<D>> {
    let dims = x.dims();
    let channels = if D > 1 { dims[1] } else { 0 };
    if D < 2 || scale.len() != channels || shift.len() != channels {
        return Err(x);
    }
    let mut t = owned(flex_f32(x)?);
    let inner: usize = dims[2..].iter().product();
    affine_planes(t.storage_mut::<f32>(), inner, scale, shift, act);
    Ok(Tensor::from_primitive::<Flex>(t))
}

/// The mean of every plane (`[batch, channels, 1, 1]` from `[batch, channels, h, w]`): global
/// average pooling, as `adaptive_avg_pool2d(x, [1, 1])`. Burn's ran 2-4x PyTorch's time on one
/// thread (mobilenet_v3_small's ten squeeze-excitations and its head, `bench --ops`); here each
/// plane is summed in 16 independent `f32` lanes (vectorised, each lane a sum of `h * w / 16`
/// values) added up in `f64`, planes shared out among the threads.
///
/// # Shapes
/// - `x`: `[batch, channels, height, width]`
/// - output: `[batch, channels, 1, 1]`
pub(crate) fn global_avg_pool(x: Tensor<4>) -> Result<Tensor<4>, Tensor<4>> {
    let [batch, channels, height, width] = x.dims();
    let inner = height * width;
    if inner == 0 {
        return Err(x);
    }
    let t = contiguous(flex_f32(x)?);
    let values = slice(&t);
    let mut out = vec![0.0f32; batch * channels];
    plane_means(values, inner, &mut out);
    Ok(Tensor::from_primitive::<Flex>(tensor(
        out,
        [batch, channels, 1, 1],
    )))
}

/// An eval BatchNorm's per-channel `scale = gamma / sqrt(var + eps)` and `shift = beta - mean *
/// scale`, computed on the host from its four `[channels]` Flex tensors, or `None` where any is
/// not on plain Flex in `f32` or the lengths differ. The same `f32` operations, in the same
/// order, as the five tensor ops of `BatchNorm::scale_shift`, whose allocations and dispatch
/// cost more than the arithmetic on a few hundred values (every BatchNorm of a forward, at
/// batch 1 a noticeable share of a small model's time).
pub(crate) fn batch_norm_scale_shift(
    gamma: &Tensor<1>,
    beta: &Tensor<1>,
    mean: &Tensor<1>,
    var: &Tensor<1>,
    epsilon: f64,
) -> Option<(Vec<f32>, Vec<f32>)> {
    let gamma = flex_values(gamma)?;
    let (beta, mean, var) = (flex_values(beta)?, flex_values(mean)?, flex_values(var)?);
    let n = gamma.len();
    if beta.len() != n || mean.len() != n || var.len() != n {
        return None;
    }
    let eps = epsilon as f32;
    let scale: Vec<f32> = gamma
        .iter()
        .zip(&var)
        .map(|(g, v)| g / (v + eps).sqrt())
        .collect();
    let shift = beta
        .iter()
        .zip(&mean)
        .zip(&scale)
        .map(|((b, m), s)| b - m * s)
        .collect();
    Some((scale, shift))
}

/// `means[p]` = the mean of plane `p` of `values` (planes of `inner` values): each plane summed
/// in 16 independent `f32` lanes (vectorised) added up in `f64`, planes shared out among the
/// threads.
fn plane_means(values: &[f32], inner: usize, means: &mut [f32]) {
    #[inline(always)]
    fn mean(plane: &[f32]) -> f32 {
        let mut lanes = [0.0f32; 16];
        let mut blocks = plane.chunks_exact(16);
        for block in &mut blocks {
            for (l, v) in lanes.iter_mut().zip(block) {
                *l += *v;
            }
        }
        let tail: f64 = blocks.remainder().iter().map(|v| *v as f64).sum();
        let sum = lanes.iter().map(|v| *v as f64).sum::<f64>() + tail;
        (sum / plane.len() as f64) as f32
    }
    let planes_per_task = (CHUNK / inner).max(1);
    let run = |means: &mut [f32], planes: &[f32]| {
        vectorized(
            #[inline(always)]
            || {
                for (m, plane) in means.iter_mut().zip(planes.chunks_exact(inner)) {
                    *m = mean(plane);
                }
            },
        )
    };
    if means.len() <= planes_per_task {
        run(means, values);
    } else {
        means
            .par_chunks_mut(planes_per_task)
            .zip(values.par_chunks(planes_per_task * inner))
            .for_each(|(means, planes)| run(means, planes));
    }
}

/// `act(plane * scale[p % scale.len()] + shift[...])` for every plane `p` of `values` (planes of
/// `inner` values), in place, planes shared out among the threads: per channel when `scale`
/// has one value a channel (BatchNorm), per plane when it has one a plane (an excitation).
/// `shift` is as long as `scale`, or empty for none.
fn affine_planes(
    values: &mut [f32],
    inner: usize,
    scale: &[f32],
    shift: &[f32],
    act: Option<ActivationKind>,
) {
    if inner == 0 || values.is_empty() || scale.is_empty() {
        return;
    }
    // Whole planes per task, so that each plane has one scale and shift.
    let planes_per_task = (CHUNK / inner).max(1);
    let apply = |task: usize, planes: &mut [f32]| {
        vectorized(
            #[inline(always)]
            || {
                for (i, plane) in planes.chunks_exact_mut(inner).enumerate() {
                    let c = (task * planes_per_task + i) % scale.len();
                    let shift = shift.get(c).copied().unwrap_or(0.0);
                    scale_shift_slice(plane, scale[c], shift, act);
                }
            },
        )
    };
    if values.len() <= planes_per_task * inner {
        apply(0, values);
    } else {
        values
            .par_chunks_mut(planes_per_task * inner)
            .enumerate()
            .for_each(|(task, planes)| apply(task, planes));
    }
}

/// One squeeze-excitation block as [`squeeze_excitation`] reads it: torchvision's
/// `SqueezeExcitation`, `fc1` and `fc2` 1x1 convolutions (`[squeeze, channels, 1, 1]` and
/// `[channels, squeeze, 1, 1]`) with their biases.
pub(crate) struct Excitation<'a> {
    pub fc1: (&'a Tensor<4>, Option<&'a Tensor<1>>),
    pub activation: ActivationKind,
    pub fc2: (&'a Tensor<4>, Option<&'a Tensor<1>>),
    pub scale_activation: ActivationKind,
}

/// `x * scale_act(fc2(act(fc1(mean(x)))))`, a whole squeeze-excitation block as one kernel, in
/// place where `x` is not shared: the planes' means, the two small matrix-vector products on
/// them, and each plane multiplied by its scale. As separate ops it was six kernels and five
/// tensors a block (pooling, two 1x1 convolutions on a 1x1 map, two activations, a broadcast
/// multiply): at batch 1 the dispatch cost more than the arithmetic.
///
/// # Shapes
/// - `x`, output: `[batch, channels, height, width]`
pub(crate) fn squeeze_excitation(x: Tensor<4>, block: &Excitation) -> Result<Tensor<4>, Tensor<4>> {
    let [batch, channels, height, width] = x.dims();
    let inner = height * width;
    // The weights as Flex's contiguous primitives, read in place (not copied: a copy of fc1
    // and fc2 was most of the block's time).
    let weight = |w: &Tensor<4>, rows: Option<usize>, cols: usize| {
        let dims = w.dims();
        let rows = rows.unwrap_or(dims[0]);
        if dims != [rows, cols, 1, 1] {
            return None;
        }
        flex_f32(w.clone()).ok().map(|w| (contiguous(w), rows))
    };
    let bias = |b: Option<&Tensor<1>>, len: usize| match b {
        None => Some(vec![0.0; len]),
        Some(b) => flex_values(b).filter(|v| v.len() == len),
    };
    if !takes(&x) || inner == 0 || channels == 0 {
        return Err(x);
    }
    let Some((w1, squeeze)) = weight(block.fc1.0, None, channels) else {
        return Err(x);
    };
    let (Some((w2, _)), Some(b1), Some(b2)) = (
        weight(block.fc2.0, Some(channels), squeeze),
        bias(block.fc1.1, squeeze),
        bias(block.fc2.1, channels),
    ) else {
        return Err(x);
    };
    let mut t = owned(flex_f32(x)?);
    let values = t.storage_mut::<f32>();
    let mut scale = vec![0.0f32; batch * channels];
    plane_means(values, inner, &mut scale);
    let mut hidden = vec![0.0f32; squeeze];
    vectorized(
        #[inline(always)]
        || {
            for means in scale.chunks_exact_mut(channels) {
                matvec(slice(&w1), &b1, means, &mut hidden);
                activate_slice(block.activation, &mut hidden);
                matvec(slice(&w2), &b2, &hidden, means);
                activate_slice(block.scale_activation, means);
            }
        },
    );
    affine_planes(values, inner, &scale, &[], None);
    Ok(Tensor::from_primitive::<Flex>(t))
}

/// `out[r] = bias[r] + weight[r] . x` for the rows of a row-major `weight` (`out.len()` rows of
/// `x.len()` values), each dot product in 16 `f32` lanes: the vectors of a squeeze-excitation
/// are a few hundred values, under the size where a gemm call pays.
#[inline(always)]
fn matvec(weight: &[f32], bias: &[f32], x: &[f32], out: &mut [f32]) {
    let n = x.len();
    if n == 0 {
        out.copy_from_slice(bias);
        return;
    }
    for ((o, row), b) in out.iter_mut().zip(weight.chunks_exact(n)).zip(bias) {
        let mut lanes = [0.0f32; 16];
        let mut rows = row.chunks_exact(16);
        let mut xs = x.chunks_exact(16);
        for (r, v) in (&mut rows).zip(&mut xs) {
            for l in 0..16 {
                lanes[l] += r[l] * v[l];
            }
        }
        let tail: f32 = rows
            .remainder()
            .iter()
            .zip(xs.remainder())
            .map(|(r, v)| r * v)
            .sum();
        *o = lanes.iter().sum::<f32>() + tail + b;
    }
}

/// `act(a + b)` for tensors of one shape (a residual connection), written into `a` where it is
/// not shared (else into `b`, else a new tensor).
///
/// # Shapes
/// - `a`, `b`, output: any, the same
pub(crate) fn add_activation<const D: usize>(
    a: Tensor<D>,
    b: Tensor<D>,
    act: Option<ActivationKind>,
) -> Result<Tensor<D>, (Tensor<D>, Tensor<D>)> {
    if a.dims() != b.dims() {
        return Err((a, b));
    }
    let (a, b) = match activation_grad::add_activation(a, b, act) {
        Ok(out) => return Ok(out),
        Err(pair) => pair,
    };
    let (a, b) = flex_f32_pair(a, b)?;
    Ok(Tensor::from_primitive::<Flex>(sum(a, b, act)))
}

/// `act(a + b)` of two tensors of one shape, written into whichever is not shared (else into
/// a copy of `a`).
fn sum(a: FlexTensor, b: FlexTensor, act: Option<ActivationKind>) -> FlexTensor {
    let b = contiguous(b);
    // Write into whichever is unshared; the other is only read.
    let (mut out, b) = if !a.is_unique() && b.is_unique() {
        (owned(b), contiguous(a))
    } else {
        (owned(a), b)
    };
    let other = slice(&b);
    par_chunks(out.storage_mut::<f32>(), |i, chunk| {
        let other = &other[i * CHUNK..][..chunk.len()];
        vectorized(
            #[inline(always)]
            || match act {
                None => chunk.iter_mut().zip(other).for_each(|(v, o)| *v += o),
                Some(kind) => {
                    chunk.iter_mut().zip(other).for_each(|(v, o)| *v += o);
                    activate_slice(kind, chunk);
                }
            },
        )
    });
    out
}

/// `x + scale[c] * y` with `y` channels-last: `x` `[n, c, h, w]`, `y` `[n, h, w, c]` (ConvNeXt's
/// residual: the block's branch ends in NHWC, scaled per channel), written into `x` where it is
/// not shared. One pass in tiles of 16 pixels x 16 channels, where Burn's ops made the
/// permuted branch contiguous, multiplied it by the scale through a broadcast and added it to
/// `x`: three passes, two of them strided.
///
/// # Shapes
/// - `x`, output: `[batch, channels, height, width]`
/// - `y`: `[batch, height, width, channels]`
/// - `scale`: `[channels]`
pub(crate) fn add_scaled_channels_last(
    x: Tensor<4>,
    y: Tensor<4>,
    scale: &Tensor<1>,
) -> Result<Tensor<4>, (Tensor<4>, Tensor<4>)> {
    const TILE: usize = 16;
    let [batch, channels, height, width] = x.dims();
    let scale = match flex_values(scale) {
        Some(scale) if scale.len() == channels && y.dims() == [batch, height, width, channels] => {
            scale
        }
        _ => return Err((x, y)),
    };
    let (x, y) = flex_f32_pair(x, y)?;
    let mut out = owned(x);
    let pixels = height * width;
    if pixels == 0 || batch * channels == 0 {
        return Ok(Tensor::from_primitive::<Flex>(out));
    }
    let ys = slice(&y);
    // Tasks: 16 channel planes of one image each (they never straddle two images).
    let tiles_per_image = channels.div_ceil(TILE);
    let planes: Vec<&mut [f32]> = out
        .storage_mut::<f32>()
        .chunks_mut(channels * pixels)
        .flat_map(|image| image.chunks_mut(TILE * pixels))
        .collect();
    planes
        .into_par_iter()
        .enumerate()
        .for_each(|(task, planes)| {
            let (n, c0) = (task / tiles_per_image, task % tiles_per_image * TILE);
            let cw = planes.len() / pixels;
            let y_image = &ys[n * pixels * channels..][..pixels * channels];
            vectorized(
                #[inline(always)]
                || {
                    // `tile[p][c]`: 16 pixels of the tile's channels, read as whole rows of `y`.
                    let mut tile = [[0.0f32; TILE]; TILE];
                    for p0 in (0..pixels).step_by(TILE) {
                        let pw = TILE.min(pixels - p0);
                        for (p, row) in tile.iter_mut().enumerate().take(pw) {
                            row[..cw].copy_from_slice(&y_image[(p0 + p) * channels + c0..][..cw]);
                        }
                        for (c, plane) in planes.chunks_exact_mut(pixels).enumerate() {
                            let s = scale[c0 + c];
                            for (p, o) in plane[p0..p0 + pw].iter_mut().enumerate() {
                                *o += s * tile[p][c];
                            }
                        }
                    }
                },
            )
        });
    Ok(Tensor::from_primitive::<Flex>(out))
}

/// What follows a convolution in its epilogue: a BatchNorm's `scale` and `shift` (eval mode)
/// and an activation.
pub(crate) struct ConvEpilogue<'a> {
    /// Per output channel, `out_channels` values each.
    pub norm: Option<(&'a [f32], &'a [f32])>,
    pub activation: Option<ActivationKind>,
}

/// `act(norm(conv(x, weight) + bias))` as one kernel on Flex (see `conv.rs`).
///
/// # Shapes
/// - `x`: `[batch, in_channels, height, width]`
/// - `weight`: `[out_channels, in_channels / groups, kh, kw]`
/// - `bias`: `[out_channels]`
/// - output: `[batch, out_channels, out_height, out_width]`
pub(crate) fn conv2d(
    x: Tensor<4>,
    weight: &Tensor<4>,
    bias: Option<&Tensor<1>>,
    epilogue: ConvEpilogue,
    options: &ConvOptions<2>,
) -> Result<Tensor<4>, Tensor<4>> {
    let Some(weight) = flex_f32(weight.clone()).ok().map(contiguous) else {
        return Err(x);
    };
    let Some(problem) = problem(&x.dims(), weight.layout().shape().as_slice(), options) else {
        return Err(x);
    };
    let co = problem.out_channels;
    let vector = |t: &Tensor<1>| flex_values(t).filter(|v| v.len() == co);
    let norm = match epilogue.norm {
        None => None,
        Some((scale, shift)) if scale.len() == co && shift.len() == co => {
            Some((scale.to_vec(), shift.to_vec()))
        }
        Some(_) => return Err(x),
    };
    let bias = match bias {
        None => None,
        Some(bias) => match vector(bias) {
            Some(bias) => Some(bias),
            None => return Err(x),
        },
    };
    // conv + bias, then `* scale + shift`: the bias moves into the shift.
    let (scale, shift) = match (norm, bias) {
        (Some((scale, shift)), Some(bias)) => {
            let shift = (0..co).map(|c| bias[c] * scale[c] + shift[c]).collect();
            (Some(scale), Some(shift))
        }
        (Some((scale, shift)), None) => (Some(scale), Some(shift)),
        (None, bias) => (None, bias),
    };
    let x = contiguous(flex_f32(x)?);
    let out = forward(
        &problem,
        &x,
        &weight,
        &conv::Epilogue {
            scale: scale.as_deref(),
            shift: shift.as_deref(),
            activation: epilogue.activation,
        },
    );
    Ok(Tensor::from_primitive::<Flex>(out))
}

/// Max pooling (`ceil_mode` as PyTorch's: a window that would start in the end padding is
/// dropped), with the depthwise convolution's kernel (`conv.rs`).
///
/// # Shapes
/// - `x`: `[batch, channels, height, width]`
/// - output: `[batch, channels, out_height, out_width]`
pub(crate) fn max_pool2d(
    x: Tensor<4>,
    options: &MaxPoolOptions<2>,
) -> Result<Tensor<4>, Tensor<4>> {
    let [batch, channels, height, width] = x.dims();
    if !takes(&x)
        || options.kernel_size.contains(&0)
        || options.stride.contains(&0)
        || options.dilation.contains(&0)
        || batch * channels == 0
    {
        return Err(x);
    }
    let out = |axis: usize, size: usize| {
        // Padding over half the (dilated) window is PyTorch's error; Burn's op says what it
        // says about it.
        let (begin, end) = options.padding[axis];
        let half = (options.dilation[axis] * (options.kernel_size[axis] - 1)).div_ceil(2);
        if begin > half || end > half {
            return None;
        }
        out_size(
            size,
            options.padding[axis],
            options.kernel_size[axis],
            options.stride[axis],
            options.dilation[axis],
            options.ceil_mode,
        )
    };
    let (Some(oh), Some(ow)) = (out(0, height), out(1, width)) else {
        return Err(x);
    };
    let problem = conv::Problem {
        batch,
        in_channels: channels,
        height,
        width,
        out_channels: channels,
        groups: channels,
        kernel: options.kernel_size,
        out: [oh, ow],
        stride: options.stride,
        padding: options.padding.map(|(begin, _)| begin),
        dilation: options.dilation,
    };
    let x = contiguous(flex_f32(x)?);
    let values = slice(&x);
    let shape = [batch, channels, oh, ow];
    let n = shape.iter().product();
    let mut out = Vec::with_capacity(n);
    problem.max_pool(values, &mut out.spare_capacity_mut()[..n]);
    // SAFETY: `max_pool` writes every value of the output.
    unsafe { out.set_len(n) };
    Ok(Tensor::from_primitive::<Flex>(tensor(out, shape)))
}

/// The convolution's geometry, or `None` for what the kernels do not take (shapes that do not
/// agree, an output with no room).
fn problem(x: &[usize], weight: &[usize], options: &ConvOptions<2>) -> Option<conv::Problem> {
    let [batch, in_channels, height, width] = x.try_into().ok()?;
    let [out_channels, weight_in, kh, kw] = weight.try_into().ok()?;
    let groups = options.groups;
    if groups == 0
        || weight_in * groups != in_channels
        || out_channels % groups != 0
        || kh == 0
        || kw == 0
        || options.stride.contains(&0)
        || options.dilation.contains(&0)
    {
        return None;
    }
    let out = |axis: usize, size: usize, k: usize| {
        let (s, d) = (options.stride[axis], options.dilation[axis]);
        out_size(size, options.padding[axis], k, s, d, false)
    };
    Some(conv::Problem {
        batch,
        in_channels,
        height,
        width,
        out_channels,
        groups,
        kernel: [kh, kw],
        out: [out(0, height, kh)?, out(1, width, kw)?],
        stride: options.stride,
        padding: options.padding.map(|(begin, _)| begin),
        dilation: options.dilation,
    })
}

/// The output length of a window `kernel` long (dilated by `dilation`) sliding by `stride`
/// over `size` values padded by `(begin, end)`, as PyTorch counts it: with `ceil_mode` a last,
/// partial window counts too, unless it would start in the end padding. `None` where the
/// window does not fit at all.
fn out_size(
    size: usize,
    (begin, end): (usize, usize),
    kernel: usize,
    stride: usize,
    dilation: usize,
    ceil_mode: bool,
) -> Option<usize> {
    let room = (size + begin + end).checked_sub(dilation * (kernel - 1) + 1)?;
    if !ceil_mode {
        return Some(room / stride + 1);
    }
    let n = room.div_ceil(stride) + 1;
    Some(if (n - 1) * stride >= size + begin {
        n - 1
    } else {
        n
    })
}

/// The convolution of contiguous `f32` tensors `x` and `weight` into a new tensor.
fn forward(
    problem: &conv::Problem,
    x: &FlexTensor,
    weight: &FlexTensor,
    epilogue: &conv::Epilogue,
) -> FlexTensor {
    let (x, weight) = (slice(x), slice(weight));
    let [oh, ow] = problem.out;
    let shape = [problem.batch, problem.out_channels, oh, ow];
    let n: usize = shape.iter().product();
    let mut out = Vec::with_capacity(n);
    convolve(
        problem,
        x,
        weight,
        epilogue,
        &mut out.spare_capacity_mut()[..n],
    );
    // SAFETY: `convolve` writes every value of the output.
    unsafe { out.set_len(n) };
    tensor(out, shape)
}

/// The values of a tensor as `f32`, for the kernels' tests.
#[cfg(test)]
fn test_values<const D: usize>(t: &Tensor<D>) -> Vec<f32> {
    t.to_data()
        .convert::<f32>()
        .try_to_vec::<f32>()
        .expect("f32 values")
}
