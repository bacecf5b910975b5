//! The transformer glue of the zoo's Flex kernels: `Linear` over the last axis, multi-head
//! attention from a packed query-key-value projection, LayerNorm and softmax over the last axis.
//!
//! What they change against Burn's ops on Flex 0.22:
//! - [`linear`]: the bias is the gemm's initial output, so there is no second pass (and no second
//!   tensor) for it, and no zero-filled output either; with one to four rows (a classifier at
//!   batch 1) the columns are shared out among the threads, where gemm's matrix-vector path runs
//!   on one thread;
//! - [`attention`]: each (row, head) task reads its query, key and value straight out of the
//!   packed projection by strides (no copies to split the heads or merge them back), the scale is
//!   the gemm's `beta`, and the bias, mask and softmax are one pass over each score row while the
//!   `sequence x sequence` scores are in cache; the second gemm writes the head's columns of the
//!   output in place;
//! - [`layer_norm`] and [`softmax`]: one task per block of rows, vectorised, in place where the
//!   input is not shared, else copied block by block into the output just before (Flex allocates
//!   a zero-filled output and, for softmax, makes several passes).

use std::mem::MaybeUninit;

use burn::backend::{Flex, flex::FlexTensor};
use burn::tensor::Tensor;
use rayon::prelude::*;

use super::math::{exp, vectorized};
use super::{CHUNK, OutPtr, contiguous, flex_f32, owned, slice, takes, tensor};

/// Multiply-adds from which a gemm is shared among the threads (Flex's threshold, 192^3).
const PARALLEL_WORK: usize = 192 * 192 * 192;

/// Below this many rows, a [`linear`] shares its columns among the threads rather than letting
/// gemm share its rows: measured on 2 threads (`dev_bench`, two runs each), `[49, 768] -> 3072`
/// 0.97-1.09 ms against 2.32-2.44, `[196, 1536] -> 384` 0.72-0.75 against 0.82-0.87,
/// `[392, 3072] -> 768` 5.1-5.6 against 6.0-6.1 (ConvNeXt's and Swin's last stages, ViT at
/// batch 1), where from 784 rows gemm's own split was as fast or faster.
const SPLIT_COLUMNS_ROWS: usize = 512;

/// Up to this many rows, a [`linear`] with a big row-major weight runs [`small_rows`]: measured
/// on 2 threads, `[8, 9216] -> 4096` in 10.3-10.8 ms against gemm's 14.6-15.0.
const FEW_ROWS: usize = 8;

/// Values summed per step of the row reductions: independent accumulators that the compiler
/// keeps in vector registers (a single `f32` accumulator would be a serial chain).
const LANES: usize = 16;

/// `x W + b` over the last axis of `x`, with `W` `[d_in, d_out]` (any strides: Burn's `Linear`
/// weight, or a transposed view of PyTorch's `[d_out, d_in]` weight).
///
/// # Shapes
/// - `x`: `[..., d_in]`
/// - `weight`: `[d_in, d_out]`
/// - `bias`: `[d_out]`
/// - output: `[..., d_out]`
pub(crate) fn linear<const D: usize>(
    x: Tensor<D>,
    weight: &Tensor<2>,
    bias: Option<&Tensor<1>>,
) -> Result<Tensor<D>, Tensor<D>> {
    let mut dims = x.dims();
    let [d_in, d_out] = weight.dims();
    let rows: usize = dims[..D - 1].iter().product();
    if dims[D - 1] != d_in || rows == 0 || d_in == 0 || d_out == 0 || !takes(&x) {
        return Err(x);
    }
    let Ok(w) = flex_f32(weight.clone()) else {
        return Err(x);
    };
    let bias = match bias.map(|b| flex_f32(b.clone())) {
        None => None,
        Some(Ok(b)) if b.layout().shape().as_slice() == [d_out] => Some(contiguous(b)),
        Some(_) => return Err(x),
    };
    let bias = bias.as_ref().map(slice);
    let x = contiguous(flex_f32(x)?);
    let xs = slice(&x);
    let (w_data, w_start) = (w.storage::<f32>(), w.layout().start_offset());
    let (w_rs, w_cs) = (w.layout().strides()[0], w.layout().strides()[1]);

    let mut out: Vec<f32> = Vec::with_capacity(rows * d_out);
    let spare = &mut out.spare_capacity_mut()[..rows * d_out];
    let threads = rayon::current_num_threads().max(1);
    let work = rows * d_in * d_out;
    // A few rows and a big row-major weight: `small_rows`, which adds the bias itself.
    let few_rows = rows <= FEW_ROWS && w_cs == 1 && work >= PARALLEL_WORK;
    if let Some(bias) = bias.filter(|_| !few_rows) {
        let rows_per_task = (CHUNK / d_out).max(1);
        spare
            .par_chunks_mut(rows_per_task * d_out)
            .for_each(|block| {
                for row in block.chunks_exact_mut(d_out) {
                    for (o, b) in row.iter_mut().zip(bias) {
                        o.write(*b);
                    }
                }
            });
    }
    let out_ptr = OutPtr(spare.as_mut_ptr().cast::<f32>());
    // One block of columns: `cols` from `first`, all rows.
    let block = |first: usize, cols: usize, parallelism: gemm::Parallelism| {
        // SAFETY: dst is the rows x cols block of the output from column `first` (row stride
        // d_out), inside `out`'s capacity and written by this call only (initialised with the
        // bias where it is read); lhs is `x` (rows x d_in, contiguous); rhs the weight's
        // d_in x cols block from column `first`, by its strides.
        unsafe {
            gemm::gemm(
                rows,
                cols,
                d_in,
                out_ptr.at(first),
                1,
                d_out as isize,
                bias.is_some(),
                xs.as_ptr(),
                1,
                d_in as isize,
                w_data.as_ptr().add(w_start).offset(first as isize * w_cs),
                w_cs,
                w_rs,
                if bias.is_some() { 1.0 } else { 0.0 },
                1.0,
                false,
                false,
                false,
                parallelism,
            );
        }
    };
    if few_rows {
        let w = &w_data[w_start..];
        small_rows(
            xs,
            rows,
            d_in,
            d_out,
            (w, w_rs as usize),
            bias,
            spare,
            threads,
        );
    } else if threads == 1 || work < PARALLEL_WORK {
        block(0, d_out, gemm::Parallelism::None);
    } else if rows < SPLIT_COLUMNS_ROWS {
        // gemm shares a product among the threads by rows: too few of them leave a thread idle
        // (one row: gemm's matrix-vector path on one thread). The columns are shared out
        // instead, in blocks of whole 16-float vectors.
        let cols = d_out.div_ceil(threads).next_multiple_of(16);
        (0..d_out.div_ceil(cols)).into_par_iter().for_each(|i| {
            let first = i * cols;
            block(first, cols.min(d_out - first), gemm::Parallelism::None);
        });
    } else {
        block(0, d_out, gemm::Parallelism::Rayon(threads));
    }
    // SAFETY: every value of the first rows * d_out was written: by the bias and then the gemm
    // (read_dst), or by the gemm alone.
    unsafe { out.set_len(rows * d_out) };
    dims[D - 1] = d_out;
    Ok(Tensor::from_primitive::<Flex>(tensor(out, dims)))
}

/// `out = bias + x W` for a few rows of `x` and a row-major `W` (`[d_in, d_out]`, row stride
/// `w.1`): a classifier at a small batch, bound by reading `W` once from memory.
///
/// gemm's matrix-vector path reads `W` a column block at a time (46% of AlexNet's batch-1
/// forward, 17 GB/s on 2 threads); here the rows of `W` are shared out among the threads in
/// contiguous blocks, each read once, front to back, [`STEP`] rows at a time (in column tiles
/// that stay in L1 for every row of `x`) into a per-task partial sum of `rows x d_out` that
/// stays in cache; the partial sums are added at the end. Measured on 2 threads (`dev_bench`):
/// `[1, 9216] -> 4096` 3.8-4.8 ms against gemm's 8.5-10 (PyTorch 4.6 in `bench --ops`),
/// `[1, 4096] -> 4096` 1.2-1.4 ms against 2.4-2.6.
#[allow(clippy::too_many_arguments)]
fn small_rows(
    x: &[f32],
    rows: usize,
    d_in: usize,
    d_out: usize,
    (w, w_rs): (&[f32], usize),
    bias: Option<&[f32]>,
    out: &mut [MaybeUninit<f32>],
    threads: usize,
) {
    let per_task = d_in.div_ceil(threads).next_multiple_of(STEP);
    let partials: Vec<Vec<f32>> = (0..d_in.div_ceil(per_task))
        .into_par_iter()
        .map(|task| {
            let k = task * per_task..((task + 1) * per_task).min(d_in);
            let mut acc = vec![0.0f32; rows * d_out];
            // Summed in blocks of rows, each block's sum then added to `acc`, as gemm sums in
            // blocks of its depth: one long serial sum loses more precision (3e-6 of the scale
            // over 3000 rows, seen in the test).
            let mut block = vec![0.0f32; rows * d_out];
            let w_row = |i: usize| &w[i * w_rs..][..d_out];
            vectorized(
                #[inline(always)]
                || {
                    for rows_of_w in k
                        .clone()
                        .step_by(SUM_BLOCK)
                        .map(|b| b..(b + SUM_BLOCK).min(k.end))
                    {
                        block.fill(0.0);
                        let mut i = rows_of_w.start;
                        while i < rows_of_w.end {
                            let step = STEP.min(rows_of_w.end - i);
                            if step == STEP {
                                for cols in
                                    (0..d_out).step_by(TILE).map(|c| c..(c + TILE).min(d_out))
                                {
                                    let ws: [&[f32]; STEP] =
                                        std::array::from_fn(|t| &w_row(i + t)[cols.clone()]);
                                    for (r, sums) in block.chunks_exact_mut(d_out).enumerate() {
                                        let xr: [f32; STEP] =
                                            std::array::from_fn(|t| x[r * d_in + i + t]);
                                        for (c, a) in sums[cols.clone()].iter_mut().enumerate() {
                                            let mut sum = *a;
                                            for t in 0..STEP {
                                                sum += xr[t] * ws[t][c];
                                            }
                                            *a = sum;
                                        }
                                    }
                                }
                            } else {
                                for i in i..rows_of_w.end {
                                    for (r, sums) in block.chunks_exact_mut(d_out).enumerate() {
                                        let xr = x[r * d_in + i];
                                        sums.iter_mut()
                                            .zip(w_row(i))
                                            .for_each(|(a, w)| *a += xr * w);
                                    }
                                }
                            }
                            i += step;
                        }
                        acc.iter_mut().zip(&block).for_each(|(a, b)| *a += b);
                    }
                },
            );
            acc
        })
        .collect();
    vectorized(
        #[inline(always)]
        || {
            for (r, row) in out.chunks_exact_mut(d_out).enumerate() {
                for (c, o) in row.iter_mut().enumerate() {
                    let sum: f32 = partials.iter().map(|p| p[r * d_out + c]).sum();
                    o.write(bias.map_or(0.0, |b| b[c]) + sum);
                }
            }
        },
    );
}

/// Rows of `W` per step of [`small_rows`]: each partial sum is loaded and stored once per step.
const STEP: usize = 8;

/// Columns per tile: [`STEP`] rows of `W` (16 KiB) stay in L1 for all rows of `x`.
const TILE: usize = 512;

/// Rows of `W` summed apart before their sum joins the task's (see [`small_rows`]).
const SUM_BLOCK: usize = 256;

/// How [`attention`] makes the scores of one head from its queries and keys.
pub(crate) enum Scores<'a> {
    /// `scale * q k^T`.
    Scaled(f32),
    /// Swin V2's cosine attention: `scale[head] * normalize(q) normalize(k)^T`, each query and
    /// key row divided by its norm (at least 1e-12, `F.normalize`).
    ///
    /// `scale`: `[heads]`.
    Cosine(&'a Tensor<1>),
}

/// `softmax(scores + bias + mask) v` for every row and head, from the packed projection `qkv`
/// (the queries, then the keys, then the values, each `heads` heads of `dim / heads`: PyTorch's
/// layout), written as the heads side by side (`merge_heads`' layout).
///
/// The row-major `[rows, heads]` tasks each own a `sequence x sequence` score buffer; `bias` is
/// the same for every row (a relative position bias), `mask` is row `r % mask_rows`'s (Swin's
/// shifted windows: `rows` is `batch x windows`, windows inner).
///
/// # Shapes
/// - `qkv`: `[rows, sequence, 3 * dim]`
/// - `bias`: `[heads, sequence, sequence]`
/// - `mask`: `[mask_rows, sequence, sequence]`, `mask_rows` dividing `rows`
/// - output: `[rows, sequence, dim]`
pub(crate) fn attention(
    qkv: Tensor<3>,
    heads: usize,
    scores: Scores,
    bias: Option<&Tensor<3>>,
    mask: Option<&Tensor<3>>,
) -> Result<Tensor<3>, Tensor<3>> {
    let [rows, seq, packed] = qkv.dims();
    if heads == 0 || packed == 0 || !packed.is_multiple_of(3 * heads) || rows * seq == 0 {
        return Err(qkv);
    }
    let dim = packed / 3;
    let head_dim = dim / heads;
    let nn = seq * seq;
    // `None` where a tensor is there but not taken.
    let values = |t: Option<&Tensor<3>>, ok: &dyn Fn([usize; 3]) -> bool| match t {
        None => Some(None),
        Some(t) if ok(t.dims()) => flex_f32(t.clone()).ok().map(|t| Some(contiguous(t))),
        Some(_) => None,
    };
    let Some(bias) = values(bias, &|d| d == [heads, seq, seq]) else {
        return Err(qkv);
    };
    let Some(mask) = values(mask, &|[m, a, b]| {
        m > 0 && rows.is_multiple_of(m) && [a, b] == [seq, seq]
    }) else {
        return Err(qkv);
    };
    let mask_rows = mask.as_ref().map_or(1, |m| m.layout().shape()[0]);
    let (scale, cosine) = match scores {
        Scores::Scaled(scale) => (vec![scale; heads], false),
        Scores::Cosine(scale) => match flex_f32(scale.clone()) {
            Ok(s) if s.layout().shape().as_slice() == [heads] => {
                (slice(&contiguous(s)).to_vec(), true)
            }
            _ => return Err(qkv),
        },
    };
    if !takes(&qkv) {
        return Err(qkv);
    }
    let qkv = if cosine {
        let mut qkv = owned(flex_f32(qkv)?);
        normalize_queries_and_keys(qkv.storage_mut::<f32>(), dim, head_dim);
        qkv
    } else {
        contiguous(flex_f32(qkv)?)
    };
    let (input, bias, mask) = (
        slice(&qkv),
        bias.as_ref().map(slice),
        mask.as_ref().map(slice),
    );

    let mut out: Vec<f32> = Vec::with_capacity(rows * seq * dim);
    let out_ptr = OutPtr(out.spare_capacity_mut().as_mut_ptr().cast::<f32>());
    let task = |scores: &mut Vec<f32>, task: usize| {
        let (r, h) = (task / heads, task % heads);
        let q = r * seq * packed + h * head_dim;
        let (k, v) = (q + dim, q + 2 * dim);
        scores.resize(nn, 0.0);
        // SAFETY: dst is this task's own seq x seq scores; lhs the head's seq x head_dim queries
        // (row stride 3 * dim), rhs its keys read as head_dim x seq (k^T), inside `input`.
        unsafe {
            gemm::gemm(
                seq,
                seq,
                head_dim,
                scores.as_mut_ptr(),
                1,
                seq as isize,
                false,
                input.as_ptr().add(q),
                1,
                packed as isize,
                input.as_ptr().add(k),
                packed as isize,
                1,
                0.0,
                scale[h],
                false,
                false,
                false,
                gemm::Parallelism::None,
            );
        }
        let bias = bias.map(|b| &b[h * nn..(h + 1) * nn]);
        let mask = mask.map(|m| &m[(r % mask_rows) * nn..][..nn]);
        vectorized(
            #[inline(always)]
            || {
                for (i, row) in scores.chunks_exact_mut(seq).enumerate() {
                    let (bias, mask) = (
                        bias.map(|b| &b[i * seq..(i + 1) * seq]),
                        mask.map(|m| &m[i * seq..(i + 1) * seq]),
                    );
                    softmax_row(row, bias, mask);
                }
            },
        );
        // SAFETY: dst is this (row, head)'s seq x head_dim block of the output (row stride dim),
        // written by this task only; lhs the probabilities, rhs the head's values (row stride
        // 3 * dim) inside `input`.
        unsafe {
            gemm::gemm(
                seq,
                head_dim,
                seq,
                out_ptr.at(r * seq * dim + h * head_dim),
                1,
                dim as isize,
                false,
                scores.as_ptr(),
                1,
                seq as isize,
                input.as_ptr().add(v),
                1,
                packed as isize,
                0.0,
                1.0,
                false,
                false,
                false,
                gemm::Parallelism::None,
            );
        }
    };
    (0..rows * heads)
        .into_par_iter()
        .for_each_init(Vec::new, |scores, t| task(scores, t));
    // SAFETY: the tasks wrote every (row, position, head) block of the output: heads * head_dim
    // is dim.
    unsafe { out.set_len(rows * seq * dim) };
    Ok(Tensor::from_primitive::<Flex>(tensor(
        out,
        [rows, seq, dim],
    )))
}

/// Every query and key row of every head of the packed `[.., 3 * dim]` values divided by its
/// norm (at least 1e-12), in place; the values are left as they are.
fn normalize_queries_and_keys(values: &mut [f32], dim: usize, head_dim: usize) {
    let packed = 3 * dim;
    let positions_per_task = (CHUNK / packed).max(1);
    values
        .par_chunks_mut(positions_per_task * packed)
        .for_each(|block| {
            vectorized(
                #[inline(always)]
                || {
                    for position in block.chunks_exact_mut(packed) {
                        for head in position[..2 * dim].chunks_exact_mut(head_dim) {
                            let norm = lanes_sum(head, |x| x * x).sqrt().max(1e-12);
                            for x in head.iter_mut() {
                                *x /= norm;
                            }
                        }
                    }
                },
            )
        });
}

/// `f(x)` summed over `values`, in [`LANES`] independent accumulators.
#[inline(always)]
fn lanes_sum(values: &[f32], f: impl Fn(f32) -> f32) -> f32 {
    let mut acc = [0.0f32; LANES];
    let chunks = values.chunks_exact(LANES);
    let rest = chunks.remainder();
    for chunk in chunks {
        for i in 0..LANES {
            acc[i] += f(chunk[i]);
        }
    }
    rest.iter().fold(acc.iter().sum::<f32>(), |s, &x| s + f(x))
}

/// The largest of `values` (`-inf` for none).
#[inline(always)]
fn lanes_max(values: &[f32]) -> f32 {
    let mut acc = [f32::NEG_INFINITY; LANES];
    let chunks = values.chunks_exact(LANES);
    let rest = chunks.remainder();
    let max = |a: f32, b: f32| if b > a { b } else { a };
    for chunk in chunks {
        for i in 0..LANES {
            acc[i] = max(acc[i], chunk[i]);
        }
    }
    rest.iter()
        .fold(acc.into_iter().fold(f32::NEG_INFINITY, max), |m, &x| {
            max(m, x)
        })
}

/// `softmax(row + bias + mask)` in place, as PyTorch's CPU kernel: `exp(x - max)` over its sum.
#[inline(always)]
fn softmax_row(row: &mut [f32], bias: Option<&[f32]>, mask: Option<&[f32]>) {
    for add in [bias, mask].into_iter().flatten() {
        for (x, b) in row.iter_mut().zip(add) {
            *x += b;
        }
    }
    let max = lanes_max(row);
    let mut acc = [0.0f32; LANES];
    let mut chunks = row.chunks_exact_mut(LANES);
    for chunk in &mut chunks {
        for i in 0..LANES {
            chunk[i] = exp(chunk[i] - max);
            acc[i] += chunk[i];
        }
    }
    let mut sum = acc.iter().sum::<f32>();
    for x in chunks.into_remainder() {
        *x = exp(*x - max);
        sum += *x;
    }
    let inv = 1.0 / sum;
    for x in row.iter_mut() {
        *x *= inv;
    }
}

/// `f(block)` over blocks of whole rows of `len` values of `t`, shared out among the threads: in
/// place where `t` is not shared, else into a new buffer, each block copied there just before
/// `f` (while it is in cache), not the whole tensor first and on one thread as `owned` would.
fn map_rows(t: FlexTensor, len: usize, f: impl Fn(&mut [f32]) + Send + Sync) -> FlexTensor {
    let block = (CHUNK / len).max(1) * len;
    if t.is_unique() || !t.is_contiguous() || t.layout().start_offset() != 0 {
        let mut t = owned(t);
        let values = t.storage_mut::<f32>();
        if values.len() <= block {
            f(values);
        } else {
            values.par_chunks_mut(block).for_each(f);
        }
        return t;
    }
    let values = slice(&t);
    let mut out: Vec<f32> = Vec::with_capacity(values.len());
    out.spare_capacity_mut()[..values.len()]
        .par_chunks_mut(block)
        .zip(values.par_chunks(block))
        .for_each(|(dst, src)| {
            for (d, s) in dst.iter_mut().zip(src) {
                d.write(*s);
            }
            // SAFETY: every value of `dst` was written just above.
            f(unsafe { &mut *(dst as *mut [MaybeUninit<f32>] as *mut [f32]) });
        });
    // SAFETY: the blocks cover all the values, each written.
    unsafe { out.set_len(values.len()) };
    tensor(out, t.layout().shape().clone())
}

/// Softmax over the last axis, in place where `x` is not shared.
///
/// # Shapes
/// - `x`, output: any, the same
pub(crate) fn softmax<const D: usize>(x: Tensor<D>) -> Result<Tensor<D>, Tensor<D>> {
    let len = x.dims()[D - 1];
    if len == 0 {
        return Err(x);
    }
    let t = map_rows(flex_f32(x)?, len, |rows| {
        vectorized(
            #[inline(always)]
            || {
                for row in rows.chunks_exact_mut(len) {
                    softmax_row(row, None, None);
                }
            },
        )
    });
    Ok(Tensor::from_primitive::<Flex>(t))
}

/// `nn.LayerNorm` over the last axis: `(x - mean) / sqrt(var + eps) * gamma + beta` per row,
/// the variance biased, computed as PyTorch's CPU kernel does (`(x * rstd - mean * rstd) *
/// gamma + beta`), in place where `x` is not shared.
///
/// # Shapes
/// - `x`, output: `[..., d]`
/// - `gamma`, `beta`: `[d]`
pub(crate) fn layer_norm<const D: usize>(
    x: Tensor<D>,
    gamma: &Tensor<1>,
    beta: Option<&Tensor<1>>,
    epsilon: f64,
) -> Result<Tensor<D>, Tensor<D>> {
    let d = x.dims()[D - 1];
    if d == 0 || !takes(&x) {
        return Err(x);
    }
    let vector = |t: &Tensor<1>| match flex_f32(t.clone()) {
        Ok(t) if t.layout().shape().as_slice() == [d] => Some(contiguous(t)),
        _ => None,
    };
    let Some(gamma) = vector(gamma) else {
        return Err(x);
    };
    let beta = match beta.map(vector) {
        None => None,
        Some(Some(beta)) => Some(beta),
        Some(None) => return Err(x),
    };
    let gamma = slice(&gamma);
    let beta = beta.as_ref().map(slice);
    let eps = epsilon as f32;
    let t = map_rows(flex_f32(x)?, d, |rows| {
        vectorized(
            #[inline(always)]
            || {
                for row in rows.chunks_exact_mut(d) {
                    let mean = lanes_sum(row, |x| x) / d as f32;
                    let var = lanes_sum(row, |x| (x - mean) * (x - mean)) / d as f32;
                    let rstd = 1.0 / (var.max(0.0) + eps).sqrt();
                    let shift = -rstd * mean;
                    match beta {
                        Some(beta) => {
                            for ((x, g), b) in row.iter_mut().zip(gamma).zip(beta) {
                                *x = (*x * rstd + shift) * g + b;
                            }
                        }
                        None => {
                            for (x, g) in row.iter_mut().zip(gamma) {
                                *x = (*x * rstd + shift) * g;
                            }
                        }
                    }
                }
            },
        )
    });
    Ok(Tensor::from_primitive::<Flex>(t))
}

#[cfg(test)]
mod tests {
    use burn::tensor::{Device, Distribution, TensorData};

    use super::*;

    fn random<const D: usize>(shape: [usize; D], device: &Device) -> Tensor<D> {
        Tensor::random(shape, Distribution::Normal(0.0, 1.0), device)
    }

    fn values<const D: usize>(t: &Tensor<D>) -> Vec<f64> {
        t.to_data()
            .convert::<f64>()
            .try_into_vec::<f64>()
            .expect("f64 values")
    }

    fn assert_close(got: &[f64], want: &[f64], tolerance: f64) {
        assert_eq!(got.len(), want.len());
        for (i, (g, w)) in got.iter().zip(want).enumerate() {
            assert!(
                (g - w).abs() <= tolerance * w.abs().max(1.0),
                "value {i}: {g}, want {w}"
            );
        }
    }

    /// The reference of `attention`: f64 loops over the packed projection.
    fn attention_reference(
        qkv: &[f64],
        [rows, seq, packed]: [usize; 3],
        heads: usize,
        scale: &[f64],
        cosine: bool,
        bias: Option<&[f64]>,
        mask: Option<(&[f64], usize)>,
    ) -> Vec<f64> {
        let dim = packed / 3;
        let hd = dim / heads;
        let mut out = vec![0.0; rows * seq * dim];
        let vector = |r: usize, s: usize, part: usize, h: usize| -> Vec<f64> {
            let at = r * seq * packed + s * packed + part * dim + h * hd;
            let v = qkv[at..at + hd].to_vec();
            if cosine && part < 2 {
                let norm = v.iter().map(|x| x * x).sum::<f64>().sqrt().max(1e-12);
                v.iter().map(|x| x / norm).collect()
            } else {
                v
            }
        };
        for r in 0..rows {
            for h in 0..heads {
                for i in 0..seq {
                    let q = vector(r, i, 0, h);
                    let mut p: Vec<f64> = (0..seq)
                        .map(|j| {
                            let k = vector(r, j, 1, h);
                            let mut s =
                                scale[h] * q.iter().zip(&k).map(|(a, b)| a * b).sum::<f64>();
                            if let Some(b) = bias {
                                s += b[(h * seq + i) * seq + j];
                            }
                            if let Some((m, mask_rows)) = mask {
                                s += m[((r % mask_rows) * seq + i) * seq + j];
                            }
                            s
                        })
                        .collect();
                    let max = p.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
                    p.iter_mut().for_each(|x| *x = (*x - max).exp());
                    let sum: f64 = p.iter().sum();
                    for (j, pj) in p.iter().enumerate() {
                        let v = vector(r, j, 2, h);
                        for (c, vc) in v.iter().enumerate() {
                            out[(r * seq + i) * dim + h * hd + c] += pj / sum * vc;
                        }
                    }
                }
            }
        }
        out
    }

    #[test]
    fn attention_equals_the_definition() {
        let device = Device::flex();
        let (rows, seq, heads, hd) = (6, 19, 3, 8);
        let dim = heads * hd;
        let qkv = random([rows, seq, 3 * dim], &device);
        let bias = random([heads, seq, seq], &device);
        let mask = random([3, seq, seq], &device);
        let scale = Tensor::<1>::from_data(TensorData::new(vec![0.5f32, 2.0, 7.0], [3]), &device);
        let q = values(&qkv);
        let shape = [rows, seq, 3 * dim];
        let (b, m) = (values(&bias), values(&mask));
        let cases: [(Scores, bool, Option<&Tensor<3>>, Option<&Tensor<3>>); 3] = [
            (Scores::Scaled(0.3), false, None, None),
            (Scores::Scaled(0.3), false, Some(&bias), Some(&mask)),
            (Scores::Cosine(&scale), true, Some(&bias), None),
        ];
        for (scores, cosine, bias, mask) in cases {
            let scale = match &scores {
                Scores::Scaled(s) => vec![*s as f64; heads],
                Scores::Cosine(_) => vec![0.5, 2.0, 7.0],
            };
            let want = attention_reference(
                &q,
                shape,
                heads,
                &scale,
                cosine,
                bias.map(|_| b.as_slice()),
                mask.map(|_| (m.as_slice(), 3)),
            );
            let got = attention(qkv.clone(), heads, scores, bias, mask)
                .unwrap_or_else(|_| panic!("Flex f32 is taken"));
            assert_eq!(got.dims(), [rows, seq, dim]);
            assert_close(&values(&got), &want, 1e-5);
        }
    }

    #[test]
    fn linear_equals_the_definition() {
        let device = Device::flex();
        // Many rows (one threaded gemm), a few hundred and one row (the columns shared out), a
        // transposed weight.
        for (rows, d_in, d_out, transposed) in [
            (37, 29, 53, false),
            (300, 200, 160, true),
            (600, 200, 100, false),
            (1, 700, 2000, false),
            (3, 600, 1500, true),
            // A few rows and a big weight: `small_rows`, with a ragged last step of rows.
            (1, 3001, 3000, false),
            (4, 2003, 1100, false),
            (8, 1500, 1030, false),
        ] {
            let x = random([rows, d_in], &device);
            let w = if transposed {
                random([d_out, d_in], &device).transpose()
            } else {
                random([d_in, d_out], &device)
            };
            let b = random([d_out], &device);
            let (xv, wv, bv) = (values(&x), values(&w), values(&b));
            for bias in [None, Some(&b)] {
                let got = linear(x.clone().reshape([1, rows, d_in]), &w, bias)
                    .unwrap_or_else(|_| panic!("Flex f32 is taken"));
                assert_eq!(got.dims(), [1, rows, d_out]);
                let want: Vec<f64> = (0..rows * d_out)
                    .map(|at| {
                        let (i, j) = (at / d_out, at % d_out);
                        let dot: f64 = (0..d_in)
                            .map(|k| xv[i * d_in + k] * wv[k * d_out + j])
                            .sum();
                        dot + bias.map_or(0.0, |_| bv[j])
                    })
                    .collect();
                assert_close(&values(&got), &want, 1e-4);
            }
        }
    }

    #[test]
    fn layer_norm_and_softmax_equal_the_definition() {
        let device = Device::flex();
        for d in [5, 96, 768] {
            let x = random([3, 7, d], &device) * 3.0 + 1.5;
            let gamma = random([d], &device);
            let beta = random([d], &device);
            let (xv, g, b) = (values(&x), values(&gamma), values(&beta));
            for with_beta in [false, true] {
                // Shared (written into a new buffer) without beta, in place with it.
                let input = if with_beta {
                    x.clone() * 1.0
                } else {
                    x.clone()
                };
                let got = layer_norm(input, &gamma, with_beta.then_some(&beta), 1e-6)
                    .unwrap_or_else(|_| panic!("Flex f32 is taken"));
                let mut want = Vec::new();
                for row in xv.chunks(d) {
                    let mean = row.iter().sum::<f64>() / d as f64;
                    let var = row.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / d as f64;
                    for (i, x) in row.iter().enumerate() {
                        let beta = if with_beta { b[i] } else { 0.0 };
                        want.push((x - mean) / (var + 1e-6).sqrt() * g[i] + beta);
                    }
                }
                assert_close(&values(&got), &want, 2e-5);
            }
            let got = softmax(x.clone()).unwrap_or_else(|_| panic!("Flex f32 is taken"));
            let in_place = softmax(x.clone() * 1.0).unwrap_or_else(|_| panic!("taken"));
            assert_eq!(values(&in_place), values(&got));
            let want: Vec<f64> = xv
                .chunks(d)
                .flat_map(|row| {
                    let max = row.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
                    let sum: f64 = row.iter().map(|x| (x - max).exp()).sum();
                    row.iter().map(move |x| (x - max).exp() / sum)
                })
                .collect();
            assert_close(&values(&got), &want, 1e-5);
        }
    }

    #[test]
    fn other_devices_get_their_input_back() {
        let device = Device::flex().autodiff();
        let x = random([2, 5, 12], &device);
        let w = random([12, 4], &device);
        let gamma = random([12], &device);
        assert!(linear(x.clone(), &w, None).is_err());
        assert!(layer_norm(x.clone(), &gamma, None, 1e-5).is_err());
        assert!(softmax(x.clone()).is_err());
        assert!(attention(x.clone(), 2, Scores::Scaled(1.0), None, None).is_err());
        let f64_values = random([2, 3], &Device::flex()).cast(burn::tensor::DType::F64);
        assert!(softmax(f64_values).is_err());
    }

    /// Kernel against Burn's op on Flex, the best of a few runs each, interleaved (other work on
    /// the machine slows both): `cargo test --release -p model-zoo --lib dev_bench -- --ignored
    /// --nocapture`.
    #[test]
    #[ignore]
    fn dev_bench() {
        use std::time::Instant;
        let device = Device::flex();
        fn best<T>(runs: usize, mut input: impl FnMut() -> T, mut f: impl FnMut(T)) -> f64 {
            (0..runs)
                .map(|_| {
                    let x = input();
                    let start = Instant::now();
                    f(x);
                    start.elapsed().as_secs_f64() * 1e3
                })
                .fold(f64::INFINITY, f64::min)
        }
        let fresh = |t: &Tensor<3>| Tensor::<3>::from_data(t.to_data(), &Device::flex());
        let runs = 15;
        let sync = |t: Tensor<3>| drop(t);
        let x = random([8, 197, 3072], &device);
        let kind = crate::layers::activation_kind::ActivationKind::Gelu;
        println!(
            "gelu [8,197,3072]: kernel {:.2} ms, burn {:.2} ms",
            best(
                runs,
                || fresh(&x),
                |x| sync(super::super::activation(kind, x).ok().unwrap())
            ),
            best(
                runs,
                || fresh(&x),
                |x| sync(burn::tensor::activation::gelu(x))
            ),
        );
        let x = random([8, 197, 768], &device);
        let (g, b) = (random([768], &device), random([768], &device));
        let eps = 1e-6;
        println!(
            "layernorm [8,197,768]: kernel owned {:.2} ms, shared {:.2} ms, burn {:.2} ms",
            best(
                runs,
                || fresh(&x),
                |x| sync(layer_norm(x, &g, Some(&b), eps).ok().unwrap())
            ),
            best(
                runs,
                || x.clone(),
                |x| sync(layer_norm(x, &g, Some(&b), eps).ok().unwrap())
            ),
            best(
                runs,
                || x.clone(),
                |x| sync(burn::tensor::module::layer_norm(
                    x,
                    g.clone(),
                    Some(b.clone()),
                    eps
                ))
            ),
        );
        let x = random([8, 12, 197 * 197], &device);
        println!(
            "softmax [96,197,197]: kernel {:.2} ms, burn {:.2} ms",
            best(runs, || fresh(&x), |x| sync(softmax(x).ok().unwrap())),
            best(
                runs,
                || fresh(&x),
                |x| sync(burn::tensor::activation::softmax(x, 2))
            ),
        );
        for (rows, d_in, d_out) in [
            (1576, 768, 3072),
            (1576, 3072, 768),
            (1576, 768, 2304),
            (8, 768, 1000),
            (1, 768, 1000),
            (1, 4096, 4096),
            (1, 9216, 4096),
            (4, 9216, 4096),
            (8, 9216, 4096),
            (1, 4096, 1000),
            (196, 1536, 384),
            (196, 384, 1536),
            (49, 768, 3072),
            (49, 3072, 768),
            (3136, 96, 384),
            (784, 768, 192),
            (1568, 1536, 384),
            (392, 3072, 768),
            (1576, 768, 768),
        ] {
            let x = random([1, rows, d_in], &device);
            let linear = burn::nn::Linear {
                weight: burn::module::Param::from_tensor(
                    random([d_in, d_out], &device).reshape([d_in, d_out]),
                ),
                bias: Some(burn::module::Param::from_tensor(
                    random([d_out], &device).reshape([d_out]),
                )),
            };
            let (w, bias) = (linear.weight.val(), linear.bias.as_ref().map(|b| b.val()));
            println!(
                "linear [{rows},{d_in}]->{d_out}: kernel {:.2} ms, burn {:.2} ms",
                best(
                    runs,
                    || x.clone(),
                    |x| sync(linear_kernel_for_bench(x, &w, bias.as_ref()))
                ),
                best(
                    runs,
                    || x.clone(),
                    |x: Tensor<3>| sync(linear.forward(x.reshape([rows, d_in])).unsqueeze())
                ),
            );
        }
        for (batch, seq, heads) in [(8, 197, 12), (1, 197, 12), (512, 49, 3)] {
            let dim = heads * 64.min(768 / heads);
            let dim = if seq == 49 { heads * 32 } else { dim };
            let hd = dim / heads;
            let qkv = random([batch, seq, 3 * dim], &device);
            let scale = 1.0 / (hd as f64).sqrt();
            let burn = |qkv: Tensor<3>| {
                let [q, k, v] = crate::layers::split_heads(qkv, heads);
                let scores = q.matmul(k.swap_dims(2, 3)) * scale;
                crate::layers::merge_heads(burn::tensor::activation::softmax(scores, 3).matmul(v))
            };
            println!(
                "attention core [{batch},{seq},{dim}] {heads} heads: kernel {:.2} ms, burn {:.2} ms",
                best(
                    runs,
                    || qkv.clone(),
                    |q| sync(
                        attention(q, heads, Scores::Scaled(scale as f32), None, None)
                            .ok()
                            .unwrap()
                    )
                ),
                best(runs, || qkv.clone(), |q| sync(burn(q))),
            );
        }
    }

    fn linear_kernel_for_bench(x: Tensor<3>, w: &Tensor<2>, b: Option<&Tensor<1>>) -> Tensor<3> {
        linear(x, w, b).ok().unwrap()
    }
}
