//! The zoo's 2-D convolution on Flex, `f32`, NCHW: its geometry ([`Problem`]: im2col and its
//! adjoint, shared with the gradients in `conv_grad.rs`) and its forward kernels.
//!
//! Flex 0.22's own `conv2d` re-lays out every weight and copies the input to NHWC on one thread
//! at each call, builds im2col tiles of 512 pixels into fresh buffers and scatters gemm's result
//! into NCHW one strided store at a time (`burn-flex/src/ops/conv.rs`). Here:
//!
//! - **no weight re-layout**: an NCHW convolution's weight `[out, in/groups, kh, kw]` already is
//!   the row-major `[out, in/groups·kh·kw]` matrix of `out = W · im2col(x)`;
//! - im2col is built per tile of output rows in a per-thread scratch buffer (no copy at all for
//!   an unpadded stride-1 1x1 convolution), and gemm writes **straight into the output**;
//! - the convolution's **epilogue** (bias, eval BatchNorm's scale and shift, the activation) runs
//!   on the tile while it is in cache, so `conv → BatchNorm → ReLU` is one kernel;
//! - tiles (image × rows) are shared out among rayon's threads; where there are fewer tiles than
//!   threads, gemm splits each product instead;
//! - depthwise convolutions (`groups == in == out`) have their own kernel: the input plane is
//!   padded once and split into stride phases, so every tap of an output row is one contiguous,
//!   vectorised multiply-add into a row accumulator that is stored once.

use std::mem::MaybeUninit;
use std::ops::Range;

use rayon::prelude::*;

use super::OutPtr;
use super::math::{scale_shift_slice, vectorized};
use crate::layers::activation_kind::ActivationKind;

/// The sizes of one convolution, `f32`, NCHW.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Problem {
    pub batch: usize,
    pub in_channels: usize,
    pub height: usize,
    pub width: usize,
    pub out_channels: usize,
    pub groups: usize,
    pub kernel: [usize; 2],
    pub out: [usize; 2],
    pub stride: [usize; 2],
    /// Padding before the first row and column (the end padding only shows in `out`).
    pub padding: [usize; 2],
    pub dilation: [usize; 2],
}

/// What runs on each output value after the sum: `act(v * scale[c] + shift[c])`.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Epilogue<'a> {
    /// Per output channel; 1 where `None`.
    pub scale: Option<&'a [f32]>,
    /// Per output channel; 0 where `None`.
    pub shift: Option<&'a [f32]>,
    pub activation: Option<ActivationKind>,
}

impl Epilogue<'_> {
    fn is_identity(&self) -> bool {
        self.scale.is_none() && self.shift.is_none() && self.activation.is_none()
    }

    /// Applies it to `values`, all of output channel `channel`.
    #[inline(always)]
    pub(super) fn apply(&self, channel: usize, values: &mut [f32]) {
        if self.is_identity() {
            return;
        }
        let scale = self.scale.map_or(1.0, |s| s[channel]);
        let shift = self.shift.map_or(0.0, |s| s[channel]);
        scale_shift_slice(values, scale, shift, self.activation);
    }
}

/// Floats of im2col scratch per tile (1 MiB): a tile of output rows then fits in L2 with room.
const TILE_FLOATS: usize = 1 << 18;
/// Output pixels below which a tile is not split further for parallelism: gemm splits it better.
const MIN_SPLIT_PIXELS: usize = 128;
/// Output channels below which a convolution's output channels are not split among threads.
const MIN_BLOCK_CHANNELS: usize = 32;

impl Problem {
    /// Rows of the im2col matrix: `in_channels * kh * kw`.
    pub fn k(&self) -> usize {
        self.in_channels * self.kernel[0] * self.kernel[1]
    }

    /// Output pixels of one image.
    pub fn pixels(&self) -> usize {
        self.out[0] * self.out[1]
    }

    /// A 1x1 convolution with stride 1 and no padding: `col_n` is image `n` itself.
    pub fn pointwise(&self) -> bool {
        self.kernel == [1, 1] && self.stride == [1, 1] && self.padding == [0, 0]
    }

    /// `groups == in == out`: one filter per channel.
    pub fn depthwise(&self) -> bool {
        self.groups > 1 && self.groups == self.in_channels && self.groups == self.out_channels
    }

    /// The outputs along `axis` whose input at kernel offset `k` is inside the image, and
    /// the input index of the first of them (the next ones step by the stride).
    pub fn valid(&self, axis: usize, k: usize) -> (Range<usize>, usize) {
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

    /// The rows and columns of the zero-padded input that a direct (depthwise or pooling) walk
    /// covers: every one any tap of any output reads, and every input row and column.
    fn padded_extent(&self) -> [usize; 2] {
        std::array::from_fn(|axis| {
            let reach = (self.out[axis] - 1) * self.stride[axis]
                + (self.kernel[axis] - 1) * self.dilation[axis]
                + 1;
            reach.max(self.padding[axis] + [self.height, self.width][axis])
        })
    }

    /// `col[(ci,kh,kw), p]` of one image `[in_channels, height, width]`, for the output rows
    /// `rows` (`p` counts from the first of them).
    pub fn im2col(&self, image: &[f32], rows: Range<usize>, col: &mut [f32]) {
        let [kh, kw] = self.kernel;
        let ow = self.out[1];
        let (plane, sx) = (self.height * self.width, self.stride[1]);
        let tile = rows.len() * ow;
        for (row, col_row) in col.chunks_exact_mut(tile).take(self.k()).enumerate() {
            let (ci, k) = (row / (kh * kw), row % (kh * kw));
            let (ky, kx) = (k / kw, k % kw);
            let channel = &image[ci * plane..(ci + 1) * plane];
            let (valid_rows, first_iy) = self.valid(0, ky);
            let (xs, first_ix) = self.valid(1, kx);
            for (y, out_row) in rows.clone().zip(col_row.chunks_exact_mut(ow)) {
                if !valid_rows.contains(&y) || xs.is_empty() {
                    out_row.fill(0.0);
                    continue;
                }
                let iy = first_iy + (y - valid_rows.start) * self.stride[0];
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

    /// `image[ci, iy, ix] += col[(ci,kh,kw), p]` for one image (the adjoint of `im2col` over
    /// every output row), the rows of `col` `row_stride` apart.
    pub fn col2im(&self, col: &[f32], row_stride: usize, image: &mut [f32]) {
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

    /// im2col tiles and one gemm per group and tile, written into `out` in place.
    pub(super) fn forward_gemm(
        &self,
        x: &[f32],
        weight: &[f32],
        epilogue: &Epilogue,
        out: &mut [MaybeUninit<f32>],
    ) {
        let [oh, ow] = self.out;
        let pixels = self.pixels();
        let (k, groups) = (self.k(), self.groups);
        let (k_group, co_group) = (k / groups, self.out_channels / groups);
        let image = self.in_channels * self.height * self.width;
        let threads = rayon::current_num_threads().max(1);
        // Rows per tile: the im2col scratch within TILE_FLOATS, then smaller while there are
        // fewer tiles than threads and the tiles stay wide enough for gemm.
        let mut rows = if self.pointwise() {
            oh
        } else {
            (TILE_FLOATS / (k * ow).max(1)).clamp(1, oh.max(1))
        };
        while self.batch * oh.div_ceil(rows) < threads && rows > 1 {
            let half = rows.div_ceil(2);
            if half * ow < MIN_SPLIT_PIXELS {
                break;
            }
            rows = half;
        }
        // Tiles of equal height, and, where there are few, as many as makes every thread's
        // share the same: the stem of EfficientNet-B0 at batch 1 (112 rows of 27 x 112 im2col
        // values) was tiles of 86 and 26 rows, one thread waiting for the other for half of it.
        let mut tiles_per_image = oh.div_ceil(rows).max(1);
        let tiles = self.batch * tiles_per_image;
        if (threads..4 * threads).contains(&tiles) {
            let mut more = tiles_per_image;
            while !(self.batch * more).is_multiple_of(threads)
                && oh.div_ceil(more + 1) * ow >= MIN_SPLIT_PIXELS
            {
                more += 1;
            }
            if (self.batch * more).is_multiple_of(threads) {
                tiles_per_image = more;
            }
        }
        let rows = oh.div_ceil(tiles_per_image).max(1);
        let tiles_per_image = oh.div_ceil(rows).max(1);
        let tiles = self.batch * tiles_per_image;
        // Still fewer tiles than threads (one small image): blocks of output channels share out
        // the rest, each its own gemm on one thread. gemm's own split of such a product (a 7x7
        // or 14x14 map: few columns) ran at a third of PyTorch's speed on MobileNetV3's 1x1
        // convolutions at batch 1 (`bench --ops`).
        let channel_blocks = if tiles < threads && groups == 1 {
            threads
                .div_ceil(tiles)
                .min(self.out_channels / MIN_BLOCK_CHANNELS)
                .max(1)
        } else {
            1
        };
        let block_channels = self
            .out_channels
            .div_ceil(channel_blocks)
            .next_multiple_of(16)
            .min(self.out_channels)
            .max(1);
        let channel_blocks = self.out_channels.div_ceil(block_channels).max(1);
        let tasks = tiles * channel_blocks;
        let (per_tile_parallelism, outer_parallel) = if tasks >= threads {
            (gemm::Parallelism::None, true)
        } else {
            (gemm::Parallelism::Rayon(threads), false)
        };
        let out_ptr = OutPtr(out.as_mut_ptr().cast::<f32>());
        let scratch = if self.pointwise() { 0 } else { k * rows * ow };
        let run = |col: &mut Vec<f32>, task: usize| {
            let (tile, block) = (task / channel_blocks, task % channel_blocks);
            let channels = block * block_channels..((block + 1) * block_channels).min(co_group);
            let (n, t) = (tile / tiles_per_image, tile % tiles_per_image);
            let y = t * rows..((t + 1) * rows).min(oh);
            let first_pixel = y.start * ow;
            let width = y.len() * ow;
            let x_n = &x[n * image..(n + 1) * image];
            let (rhs, rhs_rs): (&[f32], usize) = if self.pointwise() {
                (&x_n[first_pixel..], pixels)
            } else {
                col.resize(scratch, 0.0);
                self.im2col(x_n, y.clone(), &mut col[..k * width]);
                (&col[..], width)
            };
            let out_n = n * self.out_channels * pixels;
            for g in 0..groups {
                // SAFETY: dst is the `channels` x width block of rows `y` of this image's output
                // channels of group g (row stride `pixels`), inside `out`, written by this task
                // only; lhs is those channels' k_group weight rows (row stride k_group);
                // rhs the group's k_group x width im2col rows (row stride rhs_rs).
                unsafe {
                    gemm::gemm(
                        channels.len(),
                        width,
                        k_group,
                        out_ptr.at(out_n + (g * co_group + channels.start) * pixels + first_pixel),
                        1,
                        pixels as isize,
                        false,
                        weight
                            .as_ptr()
                            .add((g * co_group + channels.start) * k_group),
                        1,
                        k_group as isize,
                        rhs.as_ptr().add(g * k_group * rhs_rs),
                        1,
                        rhs_rs as isize,
                        0.0,
                        1.0,
                        false,
                        false,
                        false,
                        per_tile_parallelism,
                    );
                }
            }
            if !epilogue.is_identity() {
                vectorized(
                    #[inline(always)]
                    || {
                        // One block of channels, or every group's.
                        let all = if channel_blocks > 1 {
                            channels.clone()
                        } else {
                            0..self.out_channels
                        };
                        for c in all {
                            // SAFETY: rows `y` of channel c of image n: this task's own values,
                            // written by its gemm above.
                            let values = unsafe {
                                std::slice::from_raw_parts_mut(
                                    out_ptr.at(out_n + c * pixels + first_pixel),
                                    width,
                                )
                            };
                            epilogue.apply(c, values);
                        }
                    },
                );
            }
        };
        if outer_parallel {
            (0..tasks)
                .into_par_iter()
                .for_each_init(Vec::new, |col, task| run(col, task));
        } else {
            let mut col = Vec::new();
            (0..tasks).for_each(|task| run(&mut col, task));
        }
    }

    /// Max pooling with this geometry (`groups == in == out`, the kernel's size; the end padding
    /// and `ceil_mode` only show in `out`): the depthwise kernel's loop with `max` for the
    /// multiply-add and `-inf` for the padding. A NaN in a window gives NaN only where `vmaxps`
    /// passes it on (PyTorch's always gives NaN).
    pub fn max_pool(&self, x: &[f32], out: &mut [MaybeUninit<f32>]) {
        if !out.is_empty() {
            self.planes(x, None, &Epilogue::default(), out);
        }
    }

    pub(super) fn forward_depthwise(
        &self,
        x: &[f32],
        weight: &[f32],
        epilogue: &Epilogue,
        out: &mut [MaybeUninit<f32>],
    ) {
        if self.out[1] < NARROW_WIDTH {
            self.channel_blocks(x, weight, epilogue, out);
        } else {
            self.planes(x, Some(weight), epilogue, out);
        }
    }

    /// Narrow planes ([`NARROW_WIDTH`]) by blocks of [`MAX_LANES`] channels of one image, the
    /// channels in the SIMD lanes ([`DepthwiseBlock`]).
    fn channel_blocks(
        &self,
        x: &[f32],
        weight: &[f32],
        epilogue: &Epilogue,
        out: &mut [MaybeUninit<f32>],
    ) {
        let [oh, ow] = self.out;
        let [kh, kw] = self.kernel;
        let [sy, sx] = self.stride;
        let [dy, dx] = self.dilation;
        let [pt, pl] = self.padding;
        let (height, width) = (self.height, self.width);
        let channels = self.in_channels;
        let pixels = oh * ow;
        if pixels == 0 || channels == 0 {
            return;
        }
        let [padded_h, padded_w] = self.padded_extent();
        // Where each output pixel's first tap and each tap (from it) read, in floats of the
        // padded, channel-interleaved block.
        let pixel_at: Vec<usize> = (0..pixels)
            .map(|p| ((p / ow) * sy * padded_w + (p % ow) * sx) * MAX_LANES)
            .collect();
        let tap_at: Vec<usize> = (0..kh * kw)
            .map(|t| ((t / kw) * dy * padded_w + (t % kw) * dx) * MAX_LANES)
            .collect();
        let geometry = BlockGeometry {
            padded: [padded_h, padded_w],
            padding: [pt, pl],
            input: [height, width],
            pixel_at: &pixel_at,
            tap_at: &tap_at,
        };
        let plane = height * width;
        let taps = kh * kw;
        out.par_chunks_mut(channels * pixels)
            .zip(x.par_chunks(channels * plane))
            .for_each(|(image_out, image_x)| {
                image_out
                    .par_chunks_mut(MAX_LANES * pixels)
                    .zip(image_x.par_chunks(MAX_LANES * plane))
                    .enumerate()
                    .for_each(|(b, (outs, x))| {
                        let first = b * MAX_LANES;
                        let count = outs.len() / pixels;
                        let mut scratch = BLOCK_SCRATCH.take();
                        pulp::Arch::new().dispatch(DepthwiseBlock {
                            geometry: &geometry,
                            x,
                            weight: &weight[first * taps..(first + count) * taps],
                            first_channel: first,
                            scratch: &mut scratch,
                            epilogue,
                            outs,
                        });
                        BLOCK_SCRATCH.set(scratch);
                    });
            });
    }

    /// Each output plane from its own input plane, register-blocked: the input plane is padded
    /// once and split into column stride phases, so that every tap of a strip of outputs reads
    /// contiguous inputs; the strip's sums (or maxima, with `weight` `None`) stay in registers
    /// over all the taps and are stored once.
    fn planes(
        &self,
        x: &[f32],
        weight: Option<&[f32]>,
        epilogue: &Epilogue,
        out: &mut [MaybeUninit<f32>],
    ) {
        let [oh, ow] = self.out;
        let [kh, kw] = self.kernel;
        let [sy, sx] = self.stride;
        let [dy, dx] = self.dilation;
        let [pt, pl] = self.padding;
        let (height, width) = (self.height, self.width);
        let channels = self.in_channels;
        let plane = height * width;
        let pixels = oh * ow;
        if pixels == 0 {
            return;
        }
        // Padded rows: every row any tap reads (and every input row).
        let [padded_h, padded_w] = self.padded_extent();
        // Phase r holds padded columns r, r + sx, r + 2 sx, ...; its rows are wide enough for
        // the last strip of the last tap, read whole.
        let phase_w = padded_w
            .div_ceil(sx)
            .max((kw - 1) * dx / sx + ow.div_ceil(STRIP) * STRIP);
        let phase_len = padded_h * phase_w;
        // Where tap kx's strip 0 starts in a padded row.
        let tap_column: Vec<usize> = (0..kw)
            .map(|kx| ((kx * dx) % sx) * phase_len + (kx * dx) / sx)
            .collect();
        let geometry = PlaneGeometry {
            phase_w,
            phase_len,
            tap_column: &tap_column,
            kernel: [kh, kw],
            row_step: [sy, dy],
            stride_x: sx,
            padding: [pt, pl],
            input: [height, width],
            out: [oh, ow],
        };
        let planes_per_task = (super::CHUNK / pixels).max(1);
        out.par_chunks_mut(planes_per_task * pixels)
            .enumerate()
            .for_each_init(
                || {
                    vec![
                        if weight.is_some() {
                            0.0
                        } else {
                            f32::NEG_INFINITY
                        };
                        sx * phase_len
                    ]
                },
                |phases, (task, outs)| {
                    let first = task * planes_per_task;
                    let count = outs.len() / pixels;
                    pulp::Arch::new().dispatch(DepthwisePlanes {
                        geometry: &geometry,
                        x: &x[first * plane..(first + count) * plane],
                        first_channel: first % channels,
                        channels,
                        weight,
                        phases,
                        epilogue,
                        outs,
                    });
                },
            );
    }
}

/// The sizes of one plane of the depthwise kernel and its padded, phase-split input.
struct PlaneGeometry<'a> {
    phase_w: usize,
    phase_len: usize,
    /// Where tap column kx's strip 0 starts in a padded row.
    tap_column: &'a [usize],
    kernel: [usize; 2],
    /// The vertical stride and dilation.
    row_step: [usize; 2],
    stride_x: usize,
    /// Before the first row and column.
    padding: [usize; 2],
    input: [usize; 2],
    out: [usize; 2],
}

/// Consecutive planes of a depthwise convolution (or max pooling), each from its own input
/// plane: padded and split into column stride phases in `phases`, so that every tap of a strip
/// of outputs reads contiguous inputs, then strips of one or two SIMD vectors (16 or 32 values
/// with AVX-512) over [`ROWS`] output rows at a time, all summed over every tap in registers
/// with fused multiply-adds and stored once, then the epilogue on each row.
///
/// Written with `pulp`'s vector types rather than left to LLVM's auto-vectoriser: its code for
/// the same loop (an array accumulator) ran at 15 GFLOP/s on one AVX-512 core. Four rows at a
/// time give the multiply-adds four (or eight) independent sums: one strip alone is a chain of
/// dependent multiply-adds, bound by their latency (7 GFLOP/s on a 14x14 3x3 plane, one thread,
/// `dev_bench_depthwise`).
struct DepthwisePlanes<'a> {
    geometry: &'a PlaneGeometry<'a>,
    /// The input planes, `[planes, height, width]`.
    x: &'a [f32],
    /// The channel of the first plane.
    first_channel: usize,
    channels: usize,
    /// `[channels, kh * kw]`, row-major; `None` for max pooling.
    weight: Option<&'a [f32]>,
    /// Padded phases of one plane; the padding is never written, so it stays as it began.
    phases: &'a mut [f32],
    epilogue: &'a Epilogue<'a>,
    outs: &'a mut [MaybeUninit<f32>],
}

/// Output rows summed together by the depthwise kernel.
const ROWS: usize = 4;

impl pulp::WithSimd for DepthwisePlanes<'_> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: pulp::Simd>(self, simd: S) {
        let g = self.geometry;
        let [height, width] = g.input;
        let [oh, ow] = g.out;
        let [pt, pl] = g.padding;
        let [kh, kw] = g.kernel;
        let sx = g.stride_x;
        let plane = height * width;
        let pixels = oh * ow;
        for (i, out_plane) in self.outs.chunks_exact_mut(pixels).enumerate() {
            let channel = (self.first_channel + i) % self.channels;
            let input = &self.x[i * plane..(i + 1) * plane];
            for (iy, row) in input.chunks_exact(width).enumerate() {
                let dst = (iy + pt) * g.phase_w;
                if sx == 1 {
                    copy_row(simd, row, &mut self.phases[dst + pl..dst + pl + width]);
                } else if sx == 2 {
                    split_row_in_two(row, pl, &mut self.phases[dst..], g.phase_len);
                } else {
                    // Phase r: the columns ix with (ix + pl) % sx == r, at (ix + pl) / sx.
                    for r in 0..sx {
                        let ix0 = (r + sx - pl % sx) % sx;
                        if ix0 >= width {
                            continue;
                        }
                        let at = r * g.phase_len + dst + (ix0 + pl) / sx;
                        let sources = row[ix0..].iter().step_by(sx);
                        let targets = &mut self.phases[at..at + sources.len()];
                        targets.iter_mut().zip(sources).for_each(|(t, v)| *t = *v);
                    }
                }
            }
            let phases = &*self.phases;
            let mut y = 0;
            while y < oh {
                let rows = if oh - y >= ROWS { ROWS } else { 1 };
                let block = &mut out_plane[y * ow..(y + rows) * ow];
                match self.weight {
                    Some(weight) => {
                        let taps = &weight[channel * kh * kw..(channel + 1) * kh * kw];
                        let op = |acc, v, tap: usize| {
                            simd.mul_add_f32s(simd.splat_f32s(taps[tap]), v, acc)
                        };
                        if rows == ROWS {
                            row_block::<S, ROWS>(simd, g, phases, y, 0.0, op, block);
                        } else {
                            row_block::<S, 1>(simd, g, phases, y, 0.0, op, block);
                        }
                    }
                    None => {
                        let op = |acc, v, _| simd.max_f32s(acc, v);
                        let init = f32::NEG_INFINITY;
                        if rows == ROWS {
                            row_block::<S, ROWS>(simd, g, phases, y, init, op, block);
                        } else {
                            row_block::<S, 1>(simd, g, phases, y, init, op, block);
                        }
                    }
                }
                y += rows;
            }
            // SAFETY: every value of the plane was written just above. The epilogue runs on the
            // whole plane (in L1) rather than row by row: whole vectors, not a 14-wide row's
            // short tail at each call.
            self.epilogue
                .apply(channel, unsafe { assume_init(out_plane) });
        }
    }
}

/// Output widths below which the depthwise convolution runs [`MAX_LANES`] channels at once, one
/// in each SIMD lane ([`DepthwiseBlock`]), rather than strips of a row in the lanes: a row of 7
/// outputs fills 7 of 16 AVX-512 lanes. One core, `dev_bench_depthwise`: 576 channels of 7x7,
/// 5x5: 119-160 -> 64-85 us; 672 of 14x14, 5x5, stride 2 (7x7 out): 186 -> 130-134 us. At 14
/// wide the row strips were as fast or faster (240 of 14x14 5x5: 92 against 82-86 us; 184 of
/// 14x14 3x3: 44 against 48-51; 96 of 28x28 5x5 stride 2: 64 against 70): the block's
/// interleaving of its input and output planes costs what the wasted lanes saved.
const NARROW_WIDTH: usize = 9;

/// The sizes of one image's channel block for [`DepthwiseBlock`].
struct BlockGeometry<'a> {
    /// Padded rows and columns: every one any tap reads.
    padded: [usize; 2],
    /// Before the first row and column.
    padding: [usize; 2],
    input: [usize; 2],
    /// Where each output pixel's first tap reads in the padded block (floats).
    pixel_at: &'a [usize],
    /// Where each tap reads, from its pixel's first.
    tap_at: &'a [usize],
}

thread_local! {
    /// Each thread's [`BlockScratch`], kept from block to block and call to call (kilobytes:
    /// allocating them per block cost as much as the block's multiply-adds).
    static BLOCK_SCRATCH: std::cell::Cell<BlockScratch> = std::cell::Cell::new(BlockScratch::default());
}

/// Per-thread scratch of [`DepthwiseBlock`].
#[derive(Default)]
struct BlockScratch {
    /// The padded input block, `[padded_h][padded_w][MAX_LANES]`: zero where it is padding.
    padded: Vec<f32>,
    /// The taps, `[kh * kw][MAX_LANES]`.
    taps: Vec<f32>,
    /// The sums, `[pixel][MAX_LANES]`.
    sums: Vec<f32>,
}

/// Up to [`MAX_LANES`] channels of one image, one per SIMD lane (a narrower ISA takes them in
/// several vectors): the input planes are interleaved into a padded `[y][x][channel]` block, so
/// that every tap of every output pixel is one vector load and one multiply-add with the tap's
/// vector of weights, no lane wasted whatever the width, four pixels' sums in registers at a
/// time; then the sums go back to the channels' planes and the epilogue runs on each plane.
struct DepthwiseBlock<'a> {
    geometry: &'a BlockGeometry<'a>,
    /// The block's input planes, `[count, height, width]`.
    x: &'a [f32],
    /// Their filters, `[count, kh * kw]`.
    weight: &'a [f32],
    /// The channel of the first plane.
    first_channel: usize,
    scratch: &'a mut BlockScratch,
    epilogue: &'a Epilogue<'a>,
    /// The block's output planes, `[count, pixels]`.
    outs: &'a mut [MaybeUninit<f32>],
}

/// Output pixels summed together by [`DepthwiseBlock`]: eight independent multiply-add chains
/// hide their latency (two units, four cycles each).
const BLOCK_PIXELS: usize = 8;

/// The sums over every tap of `G` output pixels of a channel block, lanes `v..`: pixel `j`'s
/// first tap reads at `padded + at[j]`, tap `t` at `tap_at[t]` from there, its weights at
/// `weights + t * MAX_LANES + v`.
///
/// # Safety
/// Every such read of one vector lies inside its buffer.
#[inline(always)]
unsafe fn block_sums<S: pulp::Simd, const G: usize>(
    simd: S,
    padded: *const f32,
    weights: *const f32,
    tap_at: &[usize],
    at: [usize; G],
    v: usize,
) -> [S::f32s; G] {
    let mut acc = [simd.splat_f32s(0.0); G];
    for (t, &tap) in tap_at.iter().enumerate() {
        // SAFETY: the caller's.
        let w = unsafe {
            weights
                .add(t * MAX_LANES + v)
                .cast::<S::f32s>()
                .read_unaligned()
        };
        for (acc, &at) in acc.iter_mut().zip(&at) {
            // SAFETY: the caller's.
            let x = unsafe { padded.add(at + tap).cast::<S::f32s>().read_unaligned() };
            *acc = simd.mul_add_f32s(w, x, *acc);
        }
    }
    acc
}

impl pulp::WithSimd for DepthwiseBlock<'_> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: pulp::Simd>(self, simd: S) {
        let g = self.geometry;
        let [padded_h, padded_w] = g.padded;
        let [pt, pl] = g.padding;
        let [height, width] = g.input;
        let plane = height * width;
        let pixels = g.pixel_at.len();
        let taps = g.tap_at.len();
        let count = self.outs.len() / pixels;
        let s = &mut *self.scratch;
        // The padding stays zero: only the image's values are written below.
        s.padded.clear();
        s.padded.resize(padded_h * padded_w * MAX_LANES, 0.0);
        s.taps.clear();
        s.taps.resize(taps * MAX_LANES, 0.0);
        s.sums.resize(pixels * MAX_LANES, 0.0);
        for (l, input) in self.x.chunks_exact(plane).take(count).enumerate() {
            for (iy, row) in input.chunks_exact(width).enumerate() {
                let at = ((iy + pt) * padded_w + pl) * MAX_LANES + l;
                let dst = &mut s.padded[at..];
                for (ix, v) in row.iter().enumerate() {
                    dst[ix * MAX_LANES] = *v;
                }
            }
            for (t, w) in self.weight[l * taps..(l + 1) * taps].iter().enumerate() {
                s.taps[t * MAX_LANES + l] = *w;
            }
        }
        let lanes = std::mem::size_of::<S::f32s>() / std::mem::size_of::<f32>();
        let (padded, weights) = (&s.padded[..], &s.taps[..]);
        let last = g.pixel_at.iter().max().copied().unwrap_or(0)
            + g.tap_at.iter().max().copied().unwrap_or(0);
        assert!(last + MAX_LANES <= padded.len() && weights.len() == taps * MAX_LANES);
        assert!(s.sums.len() == pixels * MAX_LANES);
        let sums = s.sums.as_mut_ptr();
        let (padded, weights) = (padded.as_ptr(), weights.as_ptr());
        for v in (0..MAX_LANES).step_by(lanes) {
            let mut p = 0;
            while p < pixels {
                let n = if pixels - p >= BLOCK_PIXELS {
                    BLOCK_PIXELS
                } else {
                    1
                };
                // SAFETY: pixels p..p + n < pixels; every read is at most `last + v` with
                // `v + lanes <= MAX_LANES` (asserted above), every write inside `sums`.
                unsafe {
                    if n == BLOCK_PIXELS {
                        let at = std::array::from_fn(|j| g.pixel_at[p + j] + v);
                        let acc =
                            block_sums::<S, BLOCK_PIXELS>(simd, padded, weights, g.tap_at, at, v);
                        for (j, acc) in acc.iter().enumerate() {
                            sums.add((p + j) * MAX_LANES + v)
                                .cast::<S::f32s>()
                                .write_unaligned(*acc);
                        }
                    } else {
                        let at = [g.pixel_at[p] + v];
                        let [acc] = block_sums::<S, 1>(simd, padded, weights, g.tap_at, at, v);
                        sums.add(p * MAX_LANES + v)
                            .cast::<S::f32s>()
                            .write_unaligned(acc);
                    }
                }
                p += n;
            }
        }
        let sums = &s.sums[..];
        for (l, out) in self.outs.chunks_exact_mut(pixels).enumerate() {
            for (o, v) in out.iter_mut().zip(sums[l..].iter().step_by(MAX_LANES)) {
                o.write(*v);
            }
            // SAFETY: every value of the plane was written just above.
            let out = unsafe { assume_init(out) };
            self.epilogue.apply(self.first_channel + l, out);
        }
    }
}

/// `dst = src` with whole vectors, where `copy_from_slice` calls `memmove` (its cost per call
/// was 15% of a 14x14 plane's time).
#[inline(always)]
fn copy_row<S: pulp::Simd>(simd: S, src: &[f32], dst: &mut [f32]) {
    let (src_head, src_tail) = S::as_simd_f32s(src);
    let (dst_head, dst_tail) = S::as_mut_simd_f32s(dst);
    for (d, s) in dst_head.iter_mut().zip(src_head) {
        *d = *s;
    }
    if !src_tail.is_empty() {
        simd.partial_store_f32s(dst_tail, simd.partial_load_f32s(src_tail));
    }
}

/// `phases[r][(ix + pl) / 2] = row[ix]` for `r = (ix + pl) % 2`: a row split into the two
/// column phases of a stride-2 kernel (`phases` holds both phases' rows, `phase_len` apart, from
/// column 0), as (even, odd) pairs that LLVM vectorises in the caller's SIMD context, where the
/// general loop looked each column's place up (a quarter of a stride-2 plane's time).
#[inline(always)]
fn split_row_in_two(row: &[f32], pl: usize, phases: &mut [f32], phase_len: usize) {
    // An odd first padded column goes to phase 1; from there columns come in (even, odd) pairs.
    let first = pl % 2;
    if first == 1 && !row.is_empty() {
        phases[phase_len + pl / 2] = row[0];
    }
    let Some(rest) = row.get(first..) else {
        return;
    };
    let at = (first + pl) / 2;
    let pairs = rest.len() / 2;
    let (even, odd) = phases.split_at_mut(phase_len);
    let (even, odd) = (&mut even[at..at + pairs], &mut odd[at..at + pairs]);
    for ((pair, e), o) in rest
        .chunks_exact(2)
        .zip(even.iter_mut())
        .zip(odd.iter_mut())
    {
        *e = pair[0];
        *o = pair[1];
    }
    if rest.len() % 2 == 1 {
        phases[at + pairs] = rest[rest.len() - 1];
    }
}

/// Output rows `y..y + R` of one plane (`out`, `R * ow` values, each written once): `acc =
/// op(acc, inputs of tap, tap)` over the taps from `init`, in strips of one or two vectors.
#[inline(always)]
fn row_block<S: pulp::Simd, const R: usize>(
    simd: S,
    g: &PlaneGeometry,
    phases: &[f32],
    y: usize,
    init: f32,
    op: impl Fn(S::f32s, S::f32s, usize) -> S::f32s,
    out: &mut [MaybeUninit<f32>],
) {
    let lanes = std::mem::size_of::<S::f32s>() / std::mem::size_of::<f32>();
    let [kh, kw] = g.kernel;
    let [sy, dy] = g.row_step;
    let ow = g.out[1];
    // Every read below lies in `phases`: the last row any tap of row y + R - 1 reads is within
    // the padded rows, and each phase row is wide enough for the last strip of the last tap.
    let last_row = (y + R - 1) * sy + (kh - 1) * dy;
    let last_column = g.tap_column.iter().max().copied().unwrap_or(0);
    assert!(last_row * g.phase_w + last_column + ow.div_ceil(STRIP) * STRIP <= phases.len());
    let base = phases.as_ptr();
    let mut x0 = 0;
    while x0 < ow {
        // Two vectors where the row has room for them, else one (the row's tail, or a row of
        // 7 or 14).
        let two = ow - x0 > lanes;
        let count = if two { 2 * lanes } else { lanes };
        let start = simd.splat_f32s(init);
        let mut acc = [[start; 2]; R];
        for ky in 0..kh {
            for (kx, &column) in g.tap_column.iter().enumerate() {
                let tap = ky * kw + kx;
                for (r, acc) in acc.iter_mut().enumerate() {
                    let at = ((y + r) * sy + ky * dy) * g.phase_w + x0 + column;
                    // SAFETY: `at + count <= x0 + count` values past the last row's last tap
                    // column: within `phases` (asserted above, `x0 + count` is at most `ow`
                    // rounded up to a whole strip).
                    let p = unsafe { base.add(at) }.cast::<S::f32s>();
                    acc[0] = op(acc[0], unsafe { p.read_unaligned() }, tap);
                    if two {
                        // SAFETY: as above, `count == 2 * lanes`.
                        let v = unsafe { p.cast::<f32>().add(lanes).cast::<S::f32s>() };
                        acc[1] = op(acc[1], unsafe { v.read_unaligned() }, tap);
                    }
                }
            }
        }
        let n = count.min(ow - x0);
        // Straight from the registers, the row's last strip with masked stores (a 14-wide row
        // is all tail: through a stack copy it was 14 scalar stores a row).
        let first = n.min(lanes);
        for (r, acc) in acc.iter().enumerate() {
            let row = &mut out[r * ow + x0..r * ow + x0 + n];
            let at = row.as_mut_ptr().cast::<f32>();
            // SAFETY: the enabled lanes are `row`'s n values (`first` from `at`, the rest from
            // `at + lanes`); writing an `f32` into a `MaybeUninit<f32>` is always allowed.
            unsafe {
                simd.mask_store_ptr_f32s(simd.mask_between_m32s(0, first as u32), at, acc[0]);
                if n > lanes {
                    let rest = (n - lanes) as u32;
                    simd.mask_store_ptr_f32s(
                        simd.mask_between_m32s(0, rest),
                        at.add(lanes),
                        acc[1],
                    );
                }
            }
        }
        x0 += n;
    }
}

/// `values` as the `f32`s they now are.
///
/// # Safety
/// Every value of `values` has been written.
#[inline(always)]
unsafe fn assume_init(values: &mut [MaybeUninit<f32>]) -> &mut [f32] {
    // SAFETY: `MaybeUninit<f32>` has `f32`'s layout, and the caller says every value is set.
    unsafe { &mut *(values as *mut [MaybeUninit<f32>] as *mut [f32]) }
}

/// The widest SIMD vector in `f32`s (AVX-512).
const MAX_LANES: usize = 16;
/// The padded phase rows of the depthwise kernel are read in whole strips of up to two
/// vectors.
const STRIP: usize = 2 * MAX_LANES;

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    /// The convolution by its definition, in f64.
    pub(in super::super) fn direct(p: &Problem, x: &[f32], w: &[f32]) -> Vec<f64> {
        let [oh, ow] = p.out;
        let [kh, kw] = p.kernel;
        let (cig, cog) = (p.in_channels / p.groups, p.out_channels / p.groups);
        let mut out = vec![0.0f64; p.batch * p.out_channels * oh * ow];
        for n in 0..p.batch {
            for co in 0..p.out_channels {
                let g = co / cog;
                for y in 0..oh {
                    for xo in 0..ow {
                        let mut sum = 0.0f64;
                        for ci in 0..cig {
                            for ky in 0..kh {
                                for kx in 0..kw {
                                    let iy = (y * p.stride[0] + ky * p.dilation[0]) as isize
                                        - p.padding[0] as isize;
                                    let ix = (xo * p.stride[1] + kx * p.dilation[1]) as isize
                                        - p.padding[1] as isize;
                                    if iy < 0
                                        || ix < 0
                                        || iy >= p.height as isize
                                        || ix >= p.width as isize
                                    {
                                        continue;
                                    }
                                    let c = g * cig + ci;
                                    let xv = x[((n * p.in_channels + c) * p.height + iy as usize)
                                        * p.width
                                        + ix as usize];
                                    let wv = w[((co * cig + ci) * kh + ky) * kw + kx];
                                    sum += xv as f64 * wv as f64;
                                }
                            }
                        }
                        out[((n * p.out_channels + co) * oh + y) * ow + xo] = sum;
                    }
                }
            }
        }
        out
    }

    fn check(p: Problem) {
        let values = |len: usize, seed: u32| -> Vec<f32> {
            (0..len)
                .map(|i| {
                    let h = (i as u32 ^ seed).wrapping_mul(2_654_435_761);
                    (h >> 8) as f32 / (1u32 << 24) as f32 - 0.5
                })
                .collect()
        };
        let [kh, kw] = p.kernel;
        let x = values(p.batch * p.in_channels * p.height * p.width, 1);
        let w = values(p.out_channels * p.in_channels / p.groups * kh * kw, 7);
        let scale = values(p.out_channels, 3);
        let shift = values(p.out_channels, 5);
        let want = direct(&p, &x, &w);
        let pixels = p.pixels();
        for epilogue in [
            Epilogue::default(),
            Epilogue {
                scale: Some(&scale),
                shift: Some(&shift),
                activation: Some(ActivationKind::Relu),
            },
        ] {
            // NaN where the kernel would leave a value unwritten.
            let mut got = vec![MaybeUninit::new(f32::NAN); want.len()];
            super::super::convolve(&p, &x, &w, &epilogue, &mut got);
            // SAFETY: every value was set (to NaN) before the kernel ran.
            let got = unsafe { assume_init(&mut got) };
            for (i, (g, w)) in got.iter().zip(&want).enumerate() {
                let c = i / pixels % p.out_channels;
                let mut w = *w;
                if let (Some(s), Some(t)) = (epilogue.scale, epilogue.shift) {
                    w = (w * s[c] as f64 + t[c] as f64).max(0.0);
                }
                assert!(
                    (*g as f64 - w).abs() < 1e-5,
                    "{p:?} at {i}: {g} against {w}"
                );
            }
        }
    }

    pub(in crate::kernels) fn problem(
        [batch, in_channels, height, width]: [usize; 4],
        out_channels: usize,
        groups: usize,
        kernel: [usize; 2],
        stride: [usize; 2],
        padding: [[usize; 2]; 2],
        dilation: [usize; 2],
    ) -> Problem {
        let options = burn::tensor::ops::ConvOptions::new_with_padding(
            stride,
            padding.map(|[before, after]| (before, after)),
            dilation,
            groups,
        );
        let weight = [out_channels, in_channels / groups, kernel[0], kernel[1]];
        super::super::problem(&[batch, in_channels, height, width], &weight, &options)
            .expect("a convolution with room for its output")
    }

    #[test]
    fn gemm_forward_equals_the_definition() {
        check(problem(
            [3, 5, 9, 7],
            6,
            1,
            [3, 3],
            [1, 1],
            [[1, 1]; 2],
            [1, 1],
        ));
        check(problem(
            [1, 3, 15, 12],
            4,
            1,
            [7, 7],
            [2, 2],
            [[3, 3]; 2],
            [1, 1],
        ));
        check(problem(
            [2, 6, 5, 4],
            3,
            1,
            [1, 1],
            [1, 1],
            [[0, 0]; 2],
            [1, 1],
        ));
        check(problem(
            [2, 3, 8, 9],
            4,
            1,
            [3, 2],
            [1, 2],
            [[1, 2], [0, 1]],
            [2, 1],
        ));
        check(problem(
            [2, 8, 6, 6],
            4,
            2,
            [3, 3],
            [2, 2],
            [[1, 1]; 2],
            [1, 1],
        ));
        check(problem(
            [1, 4, 4, 5],
            3,
            1,
            [3, 3],
            [1, 1],
            [[3, 3]; 2],
            [1, 1],
        ));
        // One small image: blocks of output channels shared among the threads (70: a last
        // block shorter than the others), pointwise and with im2col.
        for (kernel, pad) in [(1, 0), (3, 1)] {
            check(problem(
                [1, 12, 7, 7],
                70,
                1,
                [kernel, kernel],
                [1, 1],
                [[pad, pad]; 2],
                [1, 1],
            ));
        }
        // More output rows than one tile holds.
        check(problem(
            [1, 64, 40, 40],
            8,
            1,
            [3, 3],
            [1, 1],
            [[1, 1]; 2],
            [1, 1],
        ));
    }

    #[test]
    fn depthwise_forward_equals_the_definition() {
        for (stride, k, dilation) in [(1, 3, 1), (2, 3, 1), (1, 5, 1), (2, 5, 1), (1, 3, 2)] {
            let pad = dilation * (k - 1) / 2;
            check(problem(
                [2, 5, 9, 8],
                5,
                5,
                [k, k],
                [stride, stride],
                [[pad, pad]; 2],
                [dilation, dilation],
            ));
        }
        check(problem(
            [1, 3, 7, 7],
            3,
            3,
            [3, 3],
            [2, 2],
            [[0, 1], [1, 0]],
            [1, 1],
        ));
        // Narrow planes (channels in the lanes): blocks of 16 and a partial one, strides 1 and
        // 2, dilation, uneven padding, a plane narrower than the kernel.
        for (size, channels, stride, k, dilation) in [
            ([7, 7], 37, 1, 5, 1),
            ([14, 14], 16, 1, 3, 1),
            ([14, 15], 20, 2, 5, 1),
            ([9, 6], 33, 1, 3, 2),
            ([3, 2], 17, 1, 5, 1),
        ] {
            let pad = dilation * (k - 1) / 2;
            check(problem(
                [2, channels, size[0], size[1]],
                channels,
                channels,
                [k, k],
                [stride, stride],
                [[pad, pad]; 2],
                [dilation, dilation],
            ));
        }
        check(problem(
            [1, 18, 7, 7],
            18,
            18,
            [3, 3],
            [2, 2],
            [[0, 1], [1, 0]],
            [1, 1],
        ));
        // Rows wider than a strip, ConvNeXt's 7x7, odd sizes with stride 2.
        for (size, stride, k) in [
            ([9, 70], 2, 5),
            ([9, 71], 2, 3),
            ([37, 41], 1, 3),
            ([37, 41], 2, 3),
            ([19, 35], 1, 7),
            ([33, 17], 2, 5),
        ] {
            let pad = (k - 1) / 2;
            check(problem(
                [2, 3, size[0], size[1]],
                3,
                3,
                [k, k],
                [stride, stride],
                [[pad, pad]; 2],
                [1, 1],
            ));
        }
    }

    /// Depthwise GFLOP/s on MobileNetV3's and EfficientNet's shapes at batch 1 (a development
    /// aid: `RAYON_NUM_THREADS=1 cargo test --release -p model-zoo --lib dev_bench_depthwise --
    /// --ignored --nocapture`).
    #[test]
    #[ignore]
    fn dev_bench_depthwise() {
        for (channels, size, k, stride) in [
            (576, 7, 5, 1),
            (240, 14, 5, 1),
            (96, 28, 5, 2),
            (120, 28, 5, 1),
            (672, 14, 5, 2),
            (184, 14, 3, 1),
            (64, 112, 3, 2),
            (144, 56, 3, 1),
            (16, 112, 3, 1),
        ] {
            let pad = (k - 1) / 2;
            let p = problem(
                [1, channels, size, size],
                channels,
                channels,
                [k, k],
                [stride, stride],
                [[pad, pad]; 2],
                [1, 1],
            );
            let x = vec![0.5f32; channels * size * size];
            let w = vec![0.25f32; channels * k * k];
            let mut out = vec![MaybeUninit::new(0.0f32); channels * p.pixels()];
            let epilogue = Epilogue::default();
            let flops = 2.0 * (channels * p.pixels() * k * k) as f64;
            // Channels in the lanes (narrow planes), then row strips in the lanes.
            for (path, blocks) in [("channel blocks", true), ("row strips", false)] {
                // On a worker, as a model's forward runs (`on_worker`).
                let best = rayon::scope(|_| {
                    (0..200)
                        .map(|_| {
                            let start = std::time::Instant::now();
                            if blocks {
                                p.channel_blocks(&x, &w, &epilogue, &mut out);
                            } else {
                                p.planes(&x, Some(&w), &epilogue, &mut out);
                            }
                            start.elapsed().as_secs_f64()
                        })
                        .fold(f64::INFINITY, f64::min)
                });
                println!(
                    "depthwise {channels}x{size}x{size} {k}x{k} /{stride}, {path}: {:.1} us, \
                     {:.1} GFLOP/s",
                    best * 1e6,
                    flops / best / 1e9
                );
            }
        }
    }
}
