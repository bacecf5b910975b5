//! Winograd convolution (Lavin & Gray, "Fast Algorithms for Convolutional Neural Networks",
//! 2016) for the 3x3, stride-1, undilated, ungrouped convolutions on Flex, `f32`, NCHW: most of
//! the time of ResNet, VGG, DenseNet and U-Net style models. Which ones take it: [`applies`].
//!
//! F(m×m, 3×3) computes an m×m tile of output from an (m+2)×(m+2) tile of input as
//! `Y = Aᵀ [ (G g Gᵀ) ⊙ (Bᵀ d B) ] A`: `(m+2)²` products per input and output channel pair
//! instead of `9 m²`, **2.25x fewer multiplications for F(2,3), 4x for F(4,3)** (less on planes
//! that the tiles overhang: a 7x7 plane takes 8x8 of tiles). Summed over the input channels, the
//! element-wise products are `(m+2)²` independent gemms, one per transform position,
//! `M[pos] = U[pos] · V[pos]` (`[out x in] · [in x tiles]`), which is where the time goes; the
//! transforms are made cheap beside them:
//!
//! - **many tiles** (early, large planes, [`by_tiles`]): the filters are transformed once per
//!   call (`U = G g Gᵀ`, shared out over the output channels) into `[position][out][in]`; the
//!   tile rows (of all images together) are taken in blocks, one block per rayon task with its
//!   own scratch: the input transform `V = Bᵀ d B` of the block (zero padding read as zeros),
//!   the `(m+2)²` gemms, the output transform `Aᵀ M A` with the epilogue (bias, BatchNorm,
//!   activation) applied once to each value, written straight into the NCHW output, edge tiles
//!   clipped. A block's `V` and `M` stay within [`BLOCK_FLOATS`] (2 MiB, in L2);
//! - **few tiles beside the output channels** (late, small planes, [`by_channels`]): `V` of every
//!   tile once, shared out over the input channels, then chunks of output channels, one per
//!   task, each transforming its own filters right before its gemms: the transformed filters,
//!   `(m+2)²/9` times the weights (36 MiB at 512 x 512 channels), never all go through memory;
//! - both transforms are vectorised ([`vectorized`]) across all the tiles of a band of tile rows,
//!   not one tile row (2 to 14 tiles in ResNet: too few for 16-lane vectors): the padded input
//!   rows are stored in row phase order and split into `m` column phases, so that every step
//!   reads its operands at fixed offsets of contiguous runs ([`input_band`], [`output_band`]).
//!   Per-thread scratch is kept from call to call (fresh buffers of megabytes cost page faults
//!   at every call).
//!
//! The transforms amplify rounding: F(4,3) with Lavin's points (0, ±1, ±2, ∞) was off by up to
//! 2e-5 of the output's largest value at 512 input channels (values in [-1, 1], against the
//! convolution in `f64`). With the points 0, ±1, 1/2, -2, ∞ (Barabasz et al.) it stays within
//! 6e-6 (F(2,3): 1.1e-6): `worst_relative_errors` below. Beyond [`F43_MAX_CHANNELS`] input
//! channels (longer sums, more rounding) F(2,3) is used.

use std::cell::Cell;
use std::mem::MaybeUninit;
use std::ops::Range;

use rayon::prelude::*;

use super::OutPtr;
use super::conv::{Epilogue, Problem};
use super::math::vectorized;

/// Floats of a block's transformed input and products (`(m+2)² · (in + out) · T`): 2 MiB.
const BLOCK_FLOATS: usize = 1 << 19;
/// Most floats of `V` for all tiles at once (8 MiB), in [`by_channels`].
const MAX_SHARED_FLOATS: usize = 1 << 21;
/// Fewest tiles per block: narrower gemms waste gemm's 16-lane microkernels.
const MIN_BLOCK: usize = 16;
/// Input channels up to which F(4,3) stays within 1e-5 of the output's scale (measured at 512).
const F43_MAX_CHANNELS: usize = 512;
/// Fewest input and output channels: below, the transforms cost more than the gemms save.
const MIN_CHANNELS: usize = 16;
/// Fewest 4x4 output tiles (all images), see [`applies`].
const MIN_TILES: usize = 16;
/// Least `in_channels · out_channels · tiles`, see [`applies`].
const MIN_WORK: usize = 1 << 16;
/// `in_channels · out_channels` from which [`applies`] asks for twice [`MIN_TILES`].
const LARGE_FILTERS: usize = 256 * 256;

/// The matrices of F(M, 3): M outputs from N = M + 2 inputs.
trait Tiling<const M: usize, const N: usize> {
    /// `Bᵀ`, the input transform.
    const BT: [[f32; N]; N];
    /// `G`, the filter transform.
    const G: [[f32; 3]; N];
    /// `Aᵀ`, the output transform.
    const AT: [[f32; N]; M];
}

/// F(4,3) from the points 0, 1, -1, 1/2, -2 and ∞ (Barabasz et al., "Error analysis and
/// improving the accuracy of Winograd convolution for deep neural networks", 2020): 3-4x less
/// rounding error than Lavin's 0, ±1, ±2, ∞ (measured by `worst_relative_errors`).
struct F43;

impl Tiling<4, 6> for F43 {
    const BT: [[f32; 6]; 6] = [
        [1.0, -1.5, -2.0, 1.5, 1.0, 0.0],
        [0.0, -2.0, 1.0, 5.0, 2.0, 0.0],
        [0.0, -2.0, 5.0, -1.0, -2.0, 0.0],
        [0.0, 2.0, 1.0, -2.0, -1.0, 0.0],
        [0.0, 1.0, -2.0, -1.0, 2.0, 0.0],
        [0.0, 1.0, -1.5, -2.0, 1.5, 1.0],
    ];
    const G: [[f32; 3]; 6] = [
        [1.0, 0.0, 0.0],
        [1.0 / 6.0, 1.0 / 6.0, 1.0 / 6.0],
        [1.0 / 6.0, -1.0 / 6.0, 1.0 / 6.0],
        [16.0 / 15.0, 8.0 / 15.0, 4.0 / 15.0],
        [1.0 / 30.0, -1.0 / 15.0, 2.0 / 15.0],
        [0.0, 0.0, 1.0],
    ];
    const AT: [[f32; 6]; 4] = [
        [1.0, 1.0, 1.0, 1.0, 1.0, 0.0],
        [0.0, 1.0, -1.0, 0.5, -2.0, 0.0],
        [0.0, 1.0, 1.0, 0.25, 4.0, 0.0],
        [0.0, 1.0, -1.0, 0.125, -8.0, 1.0],
    ];
}

/// F(2,3) from the points 0, 1, -1 and ∞ (Lavin's).
struct F23;

impl Tiling<2, 4> for F23 {
    const BT: [[f32; 4]; 4] = [
        [1.0, 0.0, -1.0, 0.0],
        [0.0, 1.0, 1.0, 0.0],
        [0.0, -1.0, 1.0, 0.0],
        [0.0, -1.0, 0.0, 1.0],
    ];
    const G: [[f32; 3]; 4] = [
        [1.0, 0.0, 0.0],
        [0.5, 0.5, 0.5],
        [0.5, -0.5, 0.5],
        [0.0, 0.0, 1.0],
    ];
    const AT: [[f32; 4]; 2] = [[1.0, 1.0, 1.0, 0.0], [0.0, 1.0, -1.0, 1.0]];
}

/// Whether [`forward`] takes `p`, and is faster there than the im2col gemm: a 3x3, stride-1,
/// undilated, ungrouped convolution with enough work to repay the per-call filter transform,
/// measured (2 threads, AVX-512) on the zoo's shapes at batch 1, 2, 4 and 8:
///
/// - at least [`MIN_CHANNELS`] input and output channels, [`MIN_TILES`] 4x4 output tiles (all
///   images) and `in · out · tiles >=` [`MIN_WORK`]: below, fixed costs dominate and the gemm was
///   as fast or faster (16 channels at 56x56 and 32 at 28x28, batch 1: 0.8-1.2x; 7x7 and 4x4
///   planes under 16 tiles: 0.3-0.6x);
/// - from 256 x 256 channels on, at least twice [`MIN_TILES`]: the filter transform grows with
///   `in · out` (`[4, 256, 7, 7]`, `[4, 512, 7, 7]`, `[1, 256, 14, 14]`, 16 tiles: 0.9-1.0x;
///   `[8, 512, 7, 7]`, 32 tiles: 1.3x).
pub(crate) fn applies(p: &Problem) -> bool {
    let tiles = p.batch * p.out[0].div_ceil(4) * p.out[1].div_ceil(4);
    let filters = p.in_channels * p.out_channels;
    p.kernel == [3, 3]
        && p.stride == [1, 1]
        && p.dilation == [1, 1]
        && p.groups == 1
        && p.in_channels >= MIN_CHANNELS
        && p.out_channels >= MIN_CHANNELS
        && tiles >= MIN_TILES
        && filters * tiles >= MIN_WORK
        && (filters < LARGE_FILTERS || tiles >= 2 * MIN_TILES)
}

/// `out = epilogue(conv(x, weight))` by Winograd's F(4,3) (F(2,3) beyond [`F43_MAX_CHANNELS`]
/// input channels), for a 3x3, stride-1, undilated, ungrouped `p`; `out` of
/// `batch * out_channels * pixels` values, each written once (`out` need not be initialised).
pub(crate) fn forward(
    p: &Problem,
    x: &[f32],
    weight: &[f32],
    epilogue: &Epilogue,
    out: &mut [MaybeUninit<f32>],
) {
    if p.in_channels <= F43_MAX_CHANNELS {
        forward_with::<F43, 4, 6>(p, x, weight, epilogue, out);
    } else {
        forward_with::<F23, 2, 4>(p, x, weight, epilogue, out);
    }
}

/// `m · v` for a constant `m`: after inlining, the zero coefficients drop out and the ±1 ones
/// become additions (`-0.0` is the additive identity that folds away). Plain loops, not
/// `array::from_fn`, whose closure wrapper LLVM does not always inline.
#[inline(always)]
fn mat_vec<const R: usize, const C: usize>(m: &[[f32; C]; R], v: &[f32; C]) -> [f32; R] {
    let mut out = [0.0f32; R];
    for (o, row) in out.iter_mut().zip(m) {
        let mut acc = -0.0f32;
        for (&c, &x) in row.iter().zip(v) {
            if c == 1.0 {
                acc += x;
            } else if c == -1.0 {
                acc -= x;
            } else if c != 0.0 {
                acc += c * x;
            }
        }
        *o = acc;
    }
    out
}

/// Lanes of one vector step of [`lanes`]: an AVX-512 register, two AVX2 ones.
const LANES: usize = 16;

/// `outs[r][t] = f(ins[0][t], ins[1][t], ...)[r]` for every lane `t < len`, [`LANES`] lanes at
/// a time through local arrays: LLVM vectorises the step without run-time checks that the
/// slices do not overlap (with a dozen slices, a plain loop over `t` fell back to its scalar
/// version).
#[inline(always)]
fn lanes<const K: usize, const R: usize>(
    len: usize,
    ins: [&[f32]; K],
    outs: [&mut [f32]; R],
    f: impl Fn([f32; K]) -> [f32; R],
) {
    let (mut ins, mut outs) = (ins, outs);
    for s in ins.iter_mut() {
        *s = &s[..len];
    }
    for s in outs.iter_mut() {
        *s = &mut std::mem::take(s)[..len];
    }
    let full = len - len % LANES;
    for t in (0..full).step_by(LANES) {
        let mut a = [[0.0f32; LANES]; K];
        for (a, s) in a.iter_mut().zip(&ins) {
            a.copy_from_slice(&s[t..t + LANES]);
        }
        let mut b = [[0.0f32; LANES]; R];
        for l in 0..LANES {
            let mut v = [0.0f32; K];
            for (v, a) in v.iter_mut().zip(&a) {
                *v = a[l];
            }
            for (b, v) in b.iter_mut().zip(f(v)) {
                b[l] = v;
            }
        }
        for (out, b) in outs.iter_mut().zip(&b) {
            out[t..t + LANES].copy_from_slice(b);
        }
    }
    for t in full..len {
        let mut v = [0.0f32; K];
        for (v, s) in v.iter_mut().zip(&ins) {
            *v = s[t];
        }
        for (out, v) in outs.iter_mut().zip(f(v)) {
            out[t] = v;
        }
    }
}

/// `N` disjoint `len`-long slices of `values`: the `i`-th at `first + i * step`.
fn slices_mut<const N: usize>(
    values: &mut [f32],
    first: usize,
    step: usize,
    len: usize,
) -> [&mut [f32]; N] {
    let mut rest = &mut values[first..];
    std::array::from_fn(|i| {
        let (head, tail) = std::mem::take(&mut rest).split_at_mut(len);
        if i + 1 < N {
            rest = &mut tail[step - len..];
        }
        head
    })
}

/// `N` `len`-long slices of `values`: the `i`-th at `first + i * step`.
fn slices<const N: usize>(values: &[f32], first: usize, step: usize, len: usize) -> [&[f32]; N] {
    std::array::from_fn(|i| &values[first + i * step..][..len])
}

/// `N x N` disjoint `len`-long slices of `values`: `[i][j]` at `first + (i * N + j) * step`.
fn grid_mut<const N: usize>(
    values: &mut [f32],
    first: usize,
    step: usize,
    len: usize,
) -> [[&mut [f32]; N]; N] {
    let mut rest = &mut values[first..];
    std::array::from_fn(|i| {
        std::array::from_fn(|j| {
            let (head, tail) = std::mem::take(&mut rest).split_at_mut(len);
            if i * N + j + 1 < N * N {
                rest = &mut tail[step - len..];
            }
            head
        })
    })
}

/// [`grid_mut`] of the buffer at `values`, shared among tasks that write disjoint parts of it.
///
/// # Safety
/// The buffer holds `first + (N * N - 1) * step + len` values, `len <= step`, and no one else
/// reads or writes these slices while they live.
unsafe fn grid_shared<'a, const N: usize>(
    values: OutPtr,
    first: usize,
    step: usize,
    len: usize,
) -> [[&'a mut [f32]; N]; N] {
    std::array::from_fn(|i| {
        std::array::from_fn(|j| {
            // SAFETY: the caller's.
            unsafe { std::slice::from_raw_parts_mut(values.at(first + (i * N + j) * step), len) }
        })
    })
}

/// Floats added to buffer strides that would otherwise be multiples of 4 KiB (64 bytes): rows
/// that many bytes apart share L1 sets.
const PAD: usize = 16;

/// Filters transformed per vectorised pass: their scratch (`(9 + 3N)` floats each) stays in L1.
const FILTER_LANES: usize = 256;

/// `U = G g Gᵀ` of the filters `filters` (`[f][3][3]`, `f` an (out, in) pair) into `u`:
/// `u[py][px][f]`, vectorised across the filters.
fn transform_filters<T: Tiling<M, N>, const M: usize, const N: usize>(
    filters: &[f32],
    mut u: [[&mut [f32]; N]; N],
    scratch: &mut Vec<f32>,
) {
    let count = filters.len() / 9;
    for start in (0..count).step_by(FILTER_LANES) {
        let len = FILTER_LANES.min(count - start);
        let row = len + PAD;
        let (taps, half) = room(scratch, (9 + 3 * N) * row).split_at_mut(9 * row);
        let filters = &filters[start * 9..(start + len) * 9];
        vectorized(
            #[inline(always)]
            || {
                // taps[k][f] = tap k of filter f, transposed [`LANES`] filters at a time
                // through a local block.
                for (b, block) in filters.chunks_exact(LANES * 9).enumerate() {
                    let mut t = [[0.0f32; LANES]; 9];
                    for (f, g) in block.chunks_exact(9).enumerate() {
                        for (column, v) in t.iter_mut().zip(g) {
                            column[f] = *v;
                        }
                    }
                    for (k, column) in t.iter().enumerate() {
                        taps[k * row + b * LANES..][..LANES].copy_from_slice(column);
                    }
                }
                let blocks = len / LANES;
                for (f, g) in filters.chunks_exact(9).enumerate().skip(blocks * LANES) {
                    for (k, v) in g.iter().enumerate() {
                        taps[k * row + f] = *v;
                    }
                }
                // half[px * 3 + ky][f] = (g Gᵀ)[ky][px].
                for ky in 0..3 {
                    let ins = slices::<3>(taps, ky * 3 * row, row, len);
                    let outs = slices_mut::<N>(half, ky * row, 3 * row, len);
                    lanes(len, ins, outs, |g| mat_vec(&T::G, &g));
                }
                // u[py][px][f] = (G (g Gᵀ))[py][px].
                for px in 0..N {
                    let ins = slices::<3>(half, px * 3 * row, row, len);
                    let mut rows = u.iter_mut().map(|row| &mut row[px][start..start + len]);
                    let outs = std::array::from_fn(|_| rows.next().unwrap());
                    lanes(len, ins, outs, |g| mat_vec(&T::G, &g));
                }
            },
        );
    }
}

/// Whole tile rows of one image: image `n`, tile rows `ty..ty + rows`; `t0` is the index of its
/// first tile in the run of tiles it was cut from.
#[derive(Clone, Copy)]
struct Band {
    n: usize,
    ty: usize,
    rows: usize,
    t0: usize,
}

/// The sizes of one convolution that the transforms need, for M x M output tiles.
struct Geometry {
    ci: usize,
    co: usize,
    height: usize,
    width: usize,
    /// Padding before the first row and column.
    pt: usize,
    pl: usize,
    oh: usize,
    ow: usize,
    tiles_h: usize,
    tiles_w: usize,
    /// Tile rows of all images.
    rows: usize,
    /// Tiles of all images.
    total: usize,
}

impl Geometry {
    fn new(p: &Problem, m: usize) -> Self {
        let [oh, ow] = p.out;
        let (tiles_h, tiles_w) = (oh.div_ceil(m), ow.div_ceil(m));
        Self {
            ci: p.in_channels,
            co: p.out_channels,
            height: p.height,
            width: p.width,
            pt: p.padding[0],
            pl: p.padding[1],
            oh,
            ow,
            tiles_h,
            tiles_w,
            rows: p.batch * tiles_h,
            total: p.batch * tiles_h * tiles_w,
        }
    }

    /// The bands of the tile rows `rows` (numbered image by image; tiles row by row).
    fn bands(&self, rows: Range<usize>) -> impl Iterator<Item = Band> + use<> {
        let (tiles_h, tiles_w) = (self.tiles_h, self.tiles_w);
        let first = rows.start;
        let mut row = first;
        std::iter::from_fn(move || {
            if row >= rows.end {
                return None;
            }
            let (n, ty) = (row / tiles_h, row % tiles_h);
            let count = (tiles_h - ty).min(rows.end - row);
            let band = Band {
                n,
                ty,
                rows: count,
                t0: (row - first) * tiles_w,
            };
            row += count;
            Some(band)
        })
    }
}

/// Per-task scratch (kept per thread from call to call: [`with_scratch`]).
#[derive(Default)]
struct Scratch {
    /// `Bᵀ d B` of a block of tiles: `[position][in][T]`.
    v: Vec<f32>,
    /// The products: `[position][out][T]`.
    m: Vec<f32>,
    /// Transformed filters of a chunk of output channels, `[position][out][in]`.
    u: Vec<f32>,
    /// The filter transform's own scratch.
    filters: Vec<f32>,
    /// A band's zero-padded input rows, `M * tiles_w` wide, in row phase order.
    pad: Vec<f32>,
    /// Their last `N - M` columns, `[row][2]`.
    extra: Vec<f32>,
    /// The `N` input columns of every tile, `[column][row][tile]`; then (output) the column
    /// transform of the products, `[M * N][tile]`.
    d: Vec<f32>,
    /// The row transforms `[N][row][tile]`; then (output) the output tiles, `[M * M][tile]`.
    r: Vec<f32>,
    /// Output rows, `[M][tile row][M * tiles_w]`.
    z: Vec<f32>,
}

/// The first `len` values of `v`, grown (never shrunk) to hold them.
fn room(v: &mut Vec<f32>, len: usize) -> &mut [f32] {
    if v.len() < len {
        v.resize(len, 0.0);
    }
    &mut v[..len]
}

/// `dst[k] = input[start + k]`, zero where that is outside `input`.
#[inline(always)]
fn padded(input: &[f32], start: isize, dst: &mut [f32]) {
    let len = dst.len() as isize;
    let from = (-start).clamp(0, len) as usize;
    let to = (input.len() as isize - start).clamp(from as isize, len) as usize;
    dst[..from].fill(0.0);
    dst[to..].fill(0.0);
    if to > from {
        let first = (start + from as isize) as usize;
        dst[from..to].copy_from_slice(&input[first..first + (to - from)]);
    }
}

/// `Bᵀ d B` of the tiles of `band` in input channel `c` of `x`: value `(i, j)` of the band's
/// tile `t` into `v[i][j][t]`.
///
/// Every step is one loop over all the band's tiles (or rows × tiles), not over one tile row
/// (too short for 16-lane vectors on late, small planes): the padded input rows are stored in
/// row phase order (row `y` at `(y % M) * (rows + 1) + y / M`) and split into `M` column
/// phases, so that the `N x N` inputs of every tile, the row transforms and the column
/// transforms are each read at one offset from a contiguous run.
fn input_band<T: Tiling<M, N>, const M: usize, const N: usize>(
    g: &Geometry,
    x: &[f32],
    c: usize,
    band: Band,
    s: &mut Scratch,
    v: [[&mut [f32]; N]; N],
) {
    let (w, tw) = (g.width, g.tiles_w);
    let hq = band.rows + 1;
    let stored = M * hq;
    let wide = M * tw;
    let k = stored * tw;
    let tiles = band.rows * tw;
    let plane = g.height * w;
    let channel = &x[(band.n * g.ci + c) * plane..][..plane];
    let pad = room(&mut s.pad, stored * wide);
    let extra = room(&mut s.extra, stored * (N - M));
    let d = room(&mut s.d, N * k);
    let r = room(&mut s.r, N * k);
    vectorized(
        #[inline(always)]
        || {
            for (i, (row, ext)) in pad
                .chunks_exact_mut(wide)
                .zip(extra.chunks_exact_mut(N - M))
                .enumerate()
            {
                let y = (i % hq) * M + i / hq;
                let iy = (M * band.ty + y).wrapping_sub(g.pt);
                if iy >= g.height {
                    row.fill(0.0);
                    ext.fill(0.0);
                    continue;
                }
                let input = &channel[iy * w..][..w];
                padded(input, -(g.pl as isize), row);
                padded(input, wide as isize - g.pl as isize, ext);
            }
            // Column phases: d[r][q] = pad[M * q + r].
            {
                let mut phases = slices_mut::<M>(d, 0, k, k);
                for (q, group) in pad.chunks_exact(M).enumerate() {
                    for (phase, v) in phases.iter_mut().zip(group) {
                        phase[q] = *v;
                    }
                }
            }
            // Columns M.. of a tile are columns 0.. of the next one; the last tile of a row
            // takes them from `extra`.
            for e in 0..N - M {
                d.copy_within(e * k + 1..(e + 1) * k, (M + e) * k);
                let column = &mut d[(M + e) * k..(M + e + 1) * k];
                for (last, ext) in column.chunks_exact_mut(tw).zip(extra.chunks_exact(N - M)) {
                    last[tw - 1] = ext[e];
                }
            }
            // Rows: r[j][·] = (Bᵀ d[·][·])[j], every stored row at once.
            let ins = slices::<N>(d, 0, k, k);
            let outs = slices_mut::<N>(r, 0, k, k);
            lanes(k, ins, outs, |d| mat_vec(&T::BT, &d));
            // Columns: tile row ty's input row i is stored row (i % M) * hq + ty + i / M.
            let mut v = v.map(|row| row.map(Some));
            for j in 0..N {
                let ins: [&[f32]; N] =
                    std::array::from_fn(|i| &r[j * k + ((i % M) * hq + i / M) * tw..][..tiles]);
                let outs = std::array::from_fn(|i| v[i][j].take().unwrap_or_default());
                lanes(tiles, ins, outs, |d| mat_vec(&T::BT, &d));
            }
        },
    );
}

/// `epilogue(Aᵀ M A)` of the tiles of `band` in output channel `c`, written into `out` (whole
/// output rows): the products `(i, j)` of the band's tile `t` are
/// `m[first + (i * N + j) * step + band.t0 + t]`.
#[allow(clippy::too_many_arguments)]
fn output_band<T: Tiling<M, N>, const M: usize, const N: usize>(
    g: &Geometry,
    (m, (first, step)): (&[f32], (usize, usize)),
    c: usize,
    band: Band,
    s: &mut Scratch,
    epilogue: &Epilogue,
    out: OutPtr,
) {
    let tw = g.tiles_w;
    let tiles = band.rows * tw;
    let half = room(&mut s.d, M * N * tiles);
    let tile = room(&mut s.r, M * M * tiles);
    let z = room(&mut s.z, M * M * tiles);
    vectorized(
        #[inline(always)]
        || {
            // Columns: half[i * N + j] = (Aᵀ M[·][j])[i].
            for j in 0..N {
                let ins = slices::<N>(m, first + band.t0 + j * step, N * step, tiles);
                let outs = slices_mut::<M>(half, j * tiles, N * tiles, tiles);
                lanes(tiles, ins, outs, |v| mat_vec(&T::AT, &v));
            }
            // Rows: tile[i * M + j] = (Aᵀ half[i][·])[j].
            for i in 0..M {
                let ins = slices::<N>(half, i * N * tiles, tiles, tiles);
                let outs = slices_mut::<M>(tile, i * M * tiles, tiles, tiles);
                lanes(tiles, ins, outs, |v| mat_vec(&T::AT, &v));
            }
            epilogue.apply(c, tile);
            // z[i][t * M + j] = tile[i * M + j][t]: row i of every tile row, M * tw wide.
            for (z, tile) in z
                .chunks_exact_mut(M * tiles)
                .zip(tile.chunks_exact(M * tiles))
            {
                let columns = slices::<M>(tile, 0, tiles, tiles);
                for (t, group) in z.chunks_exact_mut(M).enumerate() {
                    for (v, column) in group.iter_mut().zip(&columns) {
                        *v = column[t];
                    }
                }
            }
            for ty in 0..band.rows {
                for (i, z) in z.chunks_exact(M * tiles).enumerate() {
                    let y = M * (band.ty + ty) + i;
                    if y >= g.oh {
                        break;
                    }
                    let offset = ((band.n * g.co + c) * g.oh + y) * g.ow;
                    // SAFETY: output row y of channel c of image n, inside the output
                    // (y < oh): a row of this band's tiles in channel c, which no other task
                    // writes.
                    let dst = unsafe {
                        let first = out.at(offset).cast::<MaybeUninit<f32>>();
                        std::slice::from_raw_parts_mut(first, g.ow)
                    };
                    for (d, v) in dst.iter_mut().zip(&z[ty * M * tw..]) {
                        d.write(*v);
                    }
                }
            }
        },
    );
}

/// The `N * N` gemms `M[pos] = U[pos] · V[pos]`: `rows` output channels, `cols` tiles, `ci`
/// input channels; each matrix `(first, step, row)`: position `pos` at `first + pos * step`,
/// its rows `row` apart.
///
/// # Safety
/// `u`, `v` and `m` hold every value so addressed, and no one else writes `m`'s.
unsafe fn products<const N: usize>(
    (rows, cols, ci): (usize, usize, usize),
    (u, u_step, u_row): (*const f32, usize, usize),
    (v, v_step, v_row): (*const f32, usize, usize),
    (m, m_step, m_row): (*mut f32, usize, usize),
    parallelism: gemm::Parallelism,
) {
    for pos in 0..N * N {
        // SAFETY: the caller's: dst M[pos] is rows x cols (row stride m_row), lhs U[pos] rows x
        // ci (row stride u_row), rhs V[pos] ci x cols (row stride v_row).
        unsafe {
            gemm::gemm(
                rows,
                cols,
                ci,
                m.add(pos * m_step),
                1,
                m_row as isize,
                false,
                u.add(pos * u_step),
                1,
                u_row as isize,
                v.add(pos * v_step),
                1,
                v_row as isize,
                0.0,
                1.0,
                false,
                false,
                false,
                parallelism,
            );
        }
    }
}

/// Tile rows per block for [`by_tiles`]: `V` and `M` within [`BLOCK_FLOATS`] (at least
/// [`MIN_BLOCK`] tiles), fewer while there are fewer blocks than threads, then evened out so
/// that every thread gets as many blocks.
fn block_rows(floats_per_row: usize, tiles_w: usize, rows: usize, threads: usize) -> usize {
    let least = MIN_BLOCK.div_ceil(tiles_w).max(1);
    let mut block = (BLOCK_FLOATS / floats_per_row.max(1)).max(least);
    while rows.div_ceil(block) < threads && block > least {
        block = block.div_ceil(2).max(least);
    }
    let blocks = rows.div_ceil(block);
    let blocks = if blocks >= threads {
        blocks.div_ceil(threads) * threads
    } else {
        blocks
    };
    rows.div_ceil(blocks.max(1)).max(1)
}

/// [`forward`] by F(M, 3): [`by_channels`] where there are fewer tiles than output channels
/// (and their `V` is small), else [`by_tiles`].
fn forward_with<T: Tiling<M, N>, const M: usize, const N: usize>(
    p: &Problem,
    x: &[f32],
    weight: &[f32],
    epilogue: &Epilogue,
    out: &mut [MaybeUninit<f32>],
) {
    if out.is_empty() {
        return;
    }
    let g = Geometry::new(p, M);
    let out = OutPtr(out.as_mut_ptr().cast::<f32>());
    if g.total < g.co && N * N * g.ci * g.total <= MAX_SHARED_FLOATS {
        by_channels::<T, M, N>(&g, x, weight, epilogue, out);
    } else {
        by_tiles::<T, M, N>(&g, x, weight, epilogue, out);
    }
}

thread_local! {
    /// Each thread's scratch, kept from call to call (fresh buffers of megabytes cost page
    /// faults and zeroing at every call). Taken out while in use: a task that rayon runs on
    /// this thread meanwhile (while the first waits in a parallel gemm) starts its own.
    static SCRATCH: Cell<Scratch> = Cell::new(Scratch::default());
    /// The calling thread's buffer of all the transformed filters ([`by_tiles`]) or of `V` of
    /// every tile ([`by_channels`]), kept the same way.
    static SHARED: Cell<Vec<f32>> = const { Cell::new(Vec::new()) };
}

/// Buffers above this (64 MiB) are freed after use rather than kept for the next call.
const KEEP_FLOATS: usize = 1 << 24;

/// `v`, or an empty vector where `v` is too large to keep.
fn kept(v: Vec<f32>) -> Vec<f32> {
    if v.capacity() > KEEP_FLOATS {
        Vec::new()
    } else {
        v
    }
}

/// `f` with this thread's scratch.
fn with_scratch<R>(f: impl FnOnce(&mut Scratch) -> R) -> R {
    let mut s = SCRATCH.take();
    let result = f(&mut s);
    for v in [
        &mut s.v,
        &mut s.m,
        &mut s.u,
        &mut s.filters,
        &mut s.pad,
        &mut s.extra,
        &mut s.d,
        &mut s.r,
        &mut s.z,
    ] {
        *v = kept(std::mem::take(v));
    }
    SCRATCH.set(s);
    result
}

/// `f` with this thread's shared buffer, `len` values.
fn with_shared<R>(len: usize, f: impl FnOnce(&mut [f32]) -> R) -> R {
    let mut shared = SHARED.take();
    let result = f(room(&mut shared, len));
    SHARED.set(kept(shared));
    result
}

/// Many tiles: the filters transformed once (`[position][out][in]`), the tile rows in
/// blocks, one block per task.
fn by_tiles<T: Tiling<M, N>, const M: usize, const N: usize>(
    g: &Geometry,
    x: &[f32],
    weight: &[f32],
    epilogue: &Epilogue,
    out: OutPtr,
) {
    let (ci, co, tw, positions) = (g.ci, g.co, g.tiles_w, N * N);
    let threads = rayon::current_num_threads().max(1);
    let rows = block_rows(positions * (ci + co) * tw, tw, g.rows, threads);
    let block = rows * tw;
    let blocks = g.rows.div_ceil(rows);
    let outer_parallel = blocks >= threads && blocks > 1;
    let parallelism = if outer_parallel {
        gemm::Parallelism::None
    } else {
        gemm::Parallelism::Rayon(threads)
    };
    // Position strides, padded (see PAD).
    let (u_step, v_step, m_step) = (co * ci + PAD, ci * block + PAD, co * block + PAD);
    with_shared(positions * u_step, |u| {
        // The filters of `chunk` output channels per task.
        let chunk = co.div_ceil(4 * threads);
        let shared = OutPtr(u.as_mut_ptr());
        (0..co.div_ceil(chunk)).into_par_iter().for_each(|k| {
            let channels = k * chunk..((k + 1) * chunk).min(co);
            let filters = &weight[channels.start * ci * 9..channels.end * ci * 9];
            // SAFETY: rows `channels` of every U[pos] (at pos * u_step, co * ci <= u_step),
            // inside `u` (positions * u_step values): this task's only.
            let u = unsafe {
                grid_shared::<N>(shared, channels.start * ci, u_step, channels.len() * ci)
            };
            with_scratch(|s| transform_filters::<T, M, N>(filters, u, &mut s.filters));
        });
        let run = |s: &mut Scratch, b: usize| {
            let tile_rows = b * rows..((b + 1) * rows).min(g.rows);
            let count = tile_rows.len() * tw;
            let mut v = std::mem::take(&mut s.v);
            room(&mut v, positions * v_step);
            for band in g.bands(tile_rows.clone()) {
                let tiles = band.rows * tw;
                for c in 0..ci {
                    let v = grid_mut::<N>(&mut v, c * block + band.t0, v_step, tiles);
                    input_band::<T, M, N>(g, x, c, band, s, v);
                }
            }
            let mut m = std::mem::take(&mut s.m);
            room(&mut m, positions * m_step);
            // SAFETY: U[pos] (co x ci, at pos * u_step) is in `u` (positions * u_step values),
            // V[pos] (ci x count, rows `block` apart, at pos * v_step) in `v` (positions *
            // v_step), M[pos] (co x count, at pos * m_step) in `m` (positions * m_step), this
            // task's own.
            unsafe {
                products::<N>(
                    (co, count, ci),
                    (u.as_ptr(), u_step, ci),
                    (v.as_ptr(), v_step, block),
                    (m.as_mut_ptr(), m_step, block),
                    parallelism,
                );
            }
            for band in g.bands(tile_rows) {
                for c in 0..co {
                    let m = (&m[..], (c * block, m_step));
                    output_band::<T, M, N>(g, m, c, band, s, epilogue, out);
                }
            }
            (s.v, s.m) = (v, m);
        };
        if outer_parallel {
            (0..blocks)
                .into_par_iter()
                .for_each(|b| with_scratch(|s| run(s, b)));
        } else {
            with_scratch(|s| (0..blocks).for_each(|b| run(s, b)));
        }
    });
}

/// Few tiles beside the output channels (the late, small planes): `V` of every tile once
/// (`[position][in][tile]`), shared out over the input channels, then chunks of output
/// channels, one per task, each transforming its own filters: the transformed filters,
/// `(m+2)²/9` times the weights, are never all in memory.
fn by_channels<T: Tiling<M, N>, const M: usize, const N: usize>(
    g: &Geometry,
    x: &[f32],
    weight: &[f32],
    epilogue: &Epilogue,
    out: OutPtr,
) {
    let (ci, co, total, positions) = (g.ci, g.co, g.total, N * N);
    let threads = rayon::current_num_threads().max(1);
    let v_step = ci * total + PAD;
    with_shared(positions * v_step, |v| {
        let shared = OutPtr(v.as_mut_ptr());
        (0..ci).into_par_iter().for_each(|c| {
            with_scratch(|s| {
                for band in g.bands(0..g.rows) {
                    let tiles = band.rows * g.tiles_w;
                    // SAFETY: this band's tiles of row c of every V[pos] (at pos * v_step,
                    // ci * total <= v_step), inside `v` (positions * v_step values): this
                    // task's only.
                    let v = unsafe { grid_shared::<N>(shared, c * total + band.t0, v_step, tiles) };
                    input_band::<T, M, N>(g, x, c, band, s, v);
                }
            })
        });
        let chunk = (co / (4 * threads)).clamp(MIN_CHANNELS, 64);
        let chunks = co.div_ceil(chunk);
        let parallelism = if chunks >= threads {
            gemm::Parallelism::None
        } else {
            gemm::Parallelism::Rayon(threads)
        };
        let run = |s: &mut Scratch, k: usize| {
            let channels = k * chunk..((k + 1) * chunk).min(co);
            let (rows, f) = (channels.len(), channels.len() * ci);
            let mut u = std::mem::take(&mut s.u);
            let filters = &weight[channels.start * ci * 9..channels.end * ci * 9];
            let (u_step, m_step) = (f + PAD, rows * total + PAD);
            let grid = grid_mut::<N>(room(&mut u, positions * u_step), 0, u_step, f);
            transform_filters::<T, M, N>(filters, grid, &mut s.filters);
            let mut m = std::mem::take(&mut s.m);
            room(&mut m, positions * m_step);
            // SAFETY: U[pos] (rows x ci, at pos * u_step) is in `u` (positions * u_step
            // values), V[pos] (ci x total, at pos * v_step) in `v` (positions * v_step, only
            // read from here on), M[pos] (rows x total, at pos * m_step) in `m` (positions *
            // m_step), this task's own.
            unsafe {
                products::<N>(
                    (rows, total, ci),
                    (u.as_ptr(), u_step, ci),
                    (v.as_ptr(), v_step, total),
                    (m.as_mut_ptr(), m_step, total),
                    parallelism,
                );
            }
            for band in g.bands(0..g.rows) {
                for (i, c) in channels.clone().enumerate() {
                    let m = (&m[..], (i * total, m_step));
                    output_band::<T, M, N>(g, m, c, band, s, epilogue, out);
                }
            }
            (s.u, s.m) = (u, m);
        };
        if chunks >= threads && chunks > 1 {
            (0..chunks)
                .into_par_iter()
                .for_each(|k| with_scratch(|s| run(s, k)));
        } else {
            with_scratch(|s| (0..chunks).for_each(|k| run(s, k)));
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::conv::tests::direct;
    use crate::layers::activation_kind::ActivationKind;

    /// `len` values in [-1, 1), from `seed`.
    fn values(len: usize, seed: u64) -> Vec<f32> {
        let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        (0..len)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                (state >> 40) as f32 / (1u64 << 23) as f32 - 1.0
            })
            .collect()
    }

    /// A 3x3 stride-1 convolution; `padding` (before, after) on both axes.
    fn problem(
        [batch, in_channels, height, width]: [usize; 4],
        out_channels: usize,
        (before, after): (usize, usize),
    ) -> Problem {
        let padding = [[before, after]; 2];
        crate::kernels::conv::tests::problem(
            [batch, in_channels, height, width],
            out_channels,
            1,
            [3, 3],
            [1, 1],
            padding,
            [1, 1],
        )
    }

    /// The largest error of F(M, 3) on `p` against the definition in `f64`, relative to the
    /// largest output value; with an epilogue (scale, shift, ReLU) where `epilogue`.
    fn relative_error<T: Tiling<M, N>, const M: usize, const N: usize>(
        p: &Problem,
        epilogue: bool,
        seed: u64,
    ) -> f64 {
        let x = values(p.batch * p.in_channels * p.height * p.width, seed);
        let w = values(p.out_channels * p.in_channels * 9, seed + 1);
        let scale = values(p.out_channels, seed + 2);
        let shift = values(p.out_channels, seed + 3);
        let e = if epilogue {
            Epilogue {
                scale: Some(&scale),
                shift: Some(&shift),
                activation: Some(ActivationKind::Relu),
            }
        } else {
            Epilogue::default()
        };
        let mut want = direct(p, &x, &w);
        let pixels = p.pixels();
        if epilogue {
            for (i, v) in want.iter_mut().enumerate() {
                let c = i / pixels % p.out_channels;
                *v = (*v * scale[c] as f64 + shift[c] as f64).max(0.0);
            }
        }
        let mut got = vec![MaybeUninit::new(f32::NAN); want.len()];
        forward_with::<T, M, N>(p, &x, &w, &e, &mut got);
        let (mut error, mut largest) = (0.0f64, 0.0f64);
        for (i, (g, w)) in got.iter().zip(&want).enumerate() {
            // SAFETY: initialised to NaN above (a value left unwritten fails the check).
            let g = unsafe { g.assume_init() } as f64;
            assert!(g.is_finite(), "{p:?}: value {i} not written");
            error = error.max((g - w).abs());
            largest = largest.max(w.abs());
        }
        error / largest.max(1e-30)
    }

    #[test]
    fn the_tilings_compute_a_correlation() {
        fn check<T: Tiling<M, N>, const M: usize, const N: usize>() {
            let g = values(3, 11);
            let d = values(N, 12);
            let (gg, bd) = (
                mat_vec(&T::G, &[g[0], g[1], g[2]]),
                mat_vec(&T::BT, &d[..].try_into().unwrap()),
            );
            let products: [f32; N] = std::array::from_fn(|i| gg[i] * bd[i]);
            let y = mat_vec(&T::AT, &products);
            for (i, y) in y.iter().enumerate() {
                let want: f32 = (0..3).map(|k| g[k] * d[i + k]).sum();
                assert!(
                    (y - want).abs() < 1e-5,
                    "F({M},3) output {i}: {y} against {want}"
                );
            }
        }
        check::<F43, 4, 6>();
        check::<F23, 2, 4>();
    }

    #[test]
    fn forward_equals_the_definition() {
        let mut seed = 0;
        for (height, width) in [
            (1, 1),
            (2, 3),
            (4, 4),
            (5, 8),
            (7, 7),
            (9, 6),
            (14, 13),
            (30, 29),
        ] {
            for padding in [(1, 1), (0, 0), (1, 0), (2, 2)] {
                if height + padding.0 + padding.1 < 3 || width + padding.0 + padding.1 < 3 {
                    continue;
                }
                for (batch, ci, co) in [(1, 1, 1), (2, 3, 5), (3, 16, 8), (1, 64, 24), (2, 24, 64)]
                {
                    if height * width > 100 && ci * co > 400 && batch > 1 {
                        continue;
                    }
                    let p = problem([batch, ci, height, width], co, padding);
                    for epilogue in [false, true] {
                        seed += 4;
                        let e43 = relative_error::<F43, 4, 6>(&p, epilogue, seed);
                        let e23 = relative_error::<F23, 2, 4>(&p, epilogue, seed);
                        assert!(
                            e43 < 1e-5 && e23 < 1e-5,
                            "{p:?}: F(4,3) {e43:.2e}, F(2,3) {e23:.2e}"
                        );
                    }
                }
            }
        }
    }

    /// The dispatch: a convolution `applies` takes, through `kernels::convolve`; and what it
    /// leaves to the gemm.
    #[test]
    fn problem_forward_takes_winograd() {
        let p = problem([2, 48, 16, 15], 48, (1, 1));
        assert!(applies(&p));
        for other in [
            Problem {
                stride: [2, 2],
                ..p.clone()
            },
            Problem {
                groups: 2,
                ..p.clone()
            },
            // 8 tiles, 256 x 256 channels.
            problem([2, 256, 7, 7], 256, (1, 1)),
            // 16 channels, 1 image of 28x28: too little work.
            problem([1, 16, 28, 28], 16, (1, 1)),
        ] {
            assert!(!applies(&other), "{other:?}");
        }
        let x = values(2 * 48 * 16 * 15, 5);
        let w = values(48 * 48 * 9, 6);
        let want = direct(&p, &x, &w);
        let mut got = vec![MaybeUninit::new(f32::NAN); want.len()];
        super::super::convolve(&p, &x, &w, &Epilogue::default(), &mut got);
        let largest = want.iter().fold(0.0f64, |a, v| a.max(v.abs()));
        for (g, w) in got.iter().zip(&want) {
            // SAFETY: initialised to NaN above.
            let g = unsafe { g.assume_init() } as f64;
            assert!((g - w).abs() <= 1e-5 * largest, "{g} against {w}");
        }
    }

    /// Beyond `F43_MAX_CHANNELS` input channels, `forward` takes F(2,3): still exact.
    #[test]
    fn forward_takes_f23_beyond_512_input_channels() {
        let p = problem([1, 520, 6, 5], 16, (1, 1));
        let x = values(520 * 30, 8);
        let w = values(16 * 520 * 9, 9);
        let want = direct(&p, &x, &w);
        let mut got = vec![MaybeUninit::new(f32::NAN); want.len()];
        forward(&p, &x, &w, &Epilogue::default(), &mut got);
        let largest = want.iter().fold(0.0f64, |a, v| a.max(v.abs()));
        for (g, w) in got.iter().zip(&want) {
            // SAFETY: initialised to NaN above.
            let g = unsafe { g.assume_init() } as f64;
            assert!((g - w).abs() <= 1e-5 * largest, "{g} against {w}");
        }
    }

    /// The worst error at the widest layers of ResNet and VGG: 256 and 512 input channels,
    /// 14x14, values in [-1, 1] (printed with `--nocapture`).
    #[test]
    fn worst_relative_errors() {
        for ci in [256, 512] {
            let p = problem([2, ci, 14, 14], 16, (1, 1));
            let (mut e43, mut e23) = (0.0f64, 0.0f64);
            for seed in [100, 200] {
                e43 = e43.max(relative_error::<F43, 4, 6>(&p, false, seed));
                e23 = e23.max(relative_error::<F23, 2, 4>(&p, false, seed));
            }
            println!(
                "{ci} input channels: F(4,3) {e43:.2e}, F(2,3) {e23:.2e} of the largest output"
            );
            assert!(
                e43 < 1e-5 && e23 < 1e-5,
                "{ci}: F(4,3) {e43:.2e}, F(2,3) {e23:.2e}"
            );
        }
    }
}
