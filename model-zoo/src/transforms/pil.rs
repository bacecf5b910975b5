//! PIL's resampling (`Image.resize`, `libImaging/Resample.c`), which torchvision's `Resize`
//! runs on PIL images, reproduced to the integer.
//!
//! Written here because no crate computes what PIL computes: the `image` crate's `resize` runs
//! the vertical pass first and keeps `f32` between the passes, where PIL runs the horizontal pass
//! first and rounds and clamps to `u8` in between, in 22-bit fixed point. For bilinear the two
//! agree within 1/255; for bicubic, whose kernel overshoots, PIL's clamped intermediate differs
//! by up to 12/255 at sharp edges (measured on scikit-image's photos by `cargo xtask parity`).

use image::RgbImage;

/// PIL's `PRECISION_BITS` for 8-bit images: `32 - 8 - 2`.
const PRECISION_BITS: u32 = 22;

/// A resampling filter: its support at scale 1 and its kernel.
#[derive(Debug, Clone, Copy)]
pub(super) enum Filter {
    /// PIL's `BILINEAR` (triangle, support 1).
    Bilinear,
    /// PIL's `BICUBIC` (Keys' cubic with `a = -0.5`, support 2).
    Bicubic,
}

impl Filter {
    fn support(self) -> f64 {
        match self {
            Filter::Bilinear => 1.0,
            Filter::Bicubic => 2.0,
        }
    }

    fn kernel(self, x: f64) -> f64 {
        let x = x.abs();
        match self {
            Filter::Bilinear => {
                if x < 1.0 {
                    1.0 - x
                } else {
                    0.0
                }
            }
            Filter::Bicubic => {
                const A: f64 = -0.5;
                if x < 1.0 {
                    ((A + 2.0) * x - (A + 3.0)) * x * x + 1.0
                } else if x < 2.0 {
                    (((x - 5.0) * x + 8.0) * x - 4.0) * A
                } else {
                    0.0
                }
            }
        }
    }
}

/// For each output index, the first input index and the fixed-point weights of the inputs it
/// reads: PIL's `precompute_coeffs` and `normalize_coeffs_8bpc`.
fn coefficients(in_size: usize, out_size: usize, filter: Filter) -> Vec<(usize, Vec<i32>)> {
    let scale = in_size as f64 / out_size as f64;
    let filter_scale = scale.max(1.0);
    let support = filter.support() * filter_scale;
    let ss = 1.0 / filter_scale;
    (0..out_size)
        .map(|xx| {
            let center = (xx as f64 + 0.5) * scale;
            // C's `(int)` truncates toward zero.
            let xmin = ((center - support + 0.5) as i64).max(0) as usize;
            let xmax = ((center + support + 0.5) as i64).min(in_size as i64) as usize;
            let weights: Vec<f64> = (xmin..xmax)
                .map(|x| filter.kernel((x as f64 - center + 0.5) * ss))
                .collect();
            let total: f64 = weights.iter().sum();
            let fixed = weights
                .iter()
                .map(|&w| {
                    let w = if total != 0.0 { w / total } else { w };
                    let scaled = w * f64::from(1u32 << PRECISION_BITS);
                    (if scaled < 0.0 {
                        scaled - 0.5
                    } else {
                        scaled + 0.5
                    }) as i32
                })
                .collect();
            (xmin, fixed)
        })
        .collect()
}

/// PIL's `clip8`: the fixed-point sum back to a byte, clamped.
fn clip8(sum: i64) -> u8 {
    (sum >> PRECISION_BITS).clamp(0, 255) as u8
}

/// One pass over `src` (`channels`-interleaved rows of `src_w` pixels, `rows` of them), along
/// the rows when `horizontal`, else along the columns.
fn pass(
    src: &[u8],
    [src_w, src_h]: [usize; 2],
    out_len: usize,
    horizontal: bool,
    filter: Filter,
) -> Vec<u8> {
    const C: usize = 3;
    let in_len = if horizontal { src_w } else { src_h };
    let coeffs = coefficients(in_len, out_len, filter);
    let (out_w, out_h) = if horizontal {
        (out_len, src_h)
    } else {
        (src_w, out_len)
    };
    let mut out = vec![0u8; out_w * out_h * C];
    let rounding = 1i64 << (PRECISION_BITS - 1);
    for y in 0..out_h {
        for x in 0..out_w {
            let (start, weights) = if horizontal { &coeffs[x] } else { &coeffs[y] };
            for c in 0..C {
                let mut sum = rounding;
                for (i, &w) in weights.iter().enumerate() {
                    let (sx, sy) = if horizontal {
                        (start + i, y)
                    } else {
                        (x, start + i)
                    };
                    sum += i64::from(src[(sy * src_w + sx) * C + c]) * i64::from(w);
                }
                out[(y * out_w + x) * C + c] = clip8(sum);
            }
        }
    }
    out
}

/// `image.resize((width, height), filter)` as PIL computes it: the horizontal pass, rounded to
/// bytes, then the vertical pass; a side of unchanged length is not resampled.
pub(super) fn resize(image: &RgbImage, width: u32, height: u32, filter: Filter) -> RgbImage {
    let (src_w, src_h) = (image.width() as usize, image.height() as usize);
    let (width, height) = (width as usize, height as usize);
    let mut data = image.as_raw().clone();
    let mut w = src_w;
    if width != src_w {
        data = pass(&data, [src_w, src_h], width, true, filter);
        w = width;
    }
    if height != src_h {
        data = pass(&data, [w, src_h], height, false, filter);
    }
    RgbImage::from_raw(width as u32, height as u32, data)
        .unwrap_or_else(|| unreachable!("each pass writes width x height x 3 bytes"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weights_sum_to_one_in_fixed_point() {
        for filter in [Filter::Bilinear, Filter::Bicubic] {
            for (n_in, n_out) in [(512, 224), (300, 384), (7, 3), (3, 7)] {
                for (_, w) in coefficients(n_in, n_out, filter) {
                    let sum: i64 = w.iter().map(|&v| i64::from(v)).sum();
                    assert!(
                        (sum - (1 << PRECISION_BITS)).abs() <= w.len() as i64,
                        "{sum}"
                    );
                }
            }
        }
    }

    #[test]
    fn a_flat_image_stays_flat_and_bicubic_clamps() {
        let flat = RgbImage::from_pixel(9, 5, image::Rgb([200, 10, 255]));
        for filter in [Filter::Bilinear, Filter::Bicubic] {
            let out = resize(&flat, 4, 11, filter);
            assert_eq!(out.dimensions(), (4, 11));
            assert!(out.pixels().all(|p| p.0 == [200, 10, 255]));
        }
        // A hard edge: the cubic kernel overshoots, and bytes clamp.
        let edge = RgbImage::from_fn(8, 1, |x, _| image::Rgb([if x < 4 { 0 } else { 255 }; 3]));
        let out = resize(&edge, 13, 1, Filter::Bicubic);
        assert_eq!(out.get_pixel(0, 0).0[0], 0);
        assert_eq!(out.get_pixel(12, 0).0[0], 255);
    }
}
