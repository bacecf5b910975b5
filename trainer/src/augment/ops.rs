//! The image operations of torchvision's augmentation policies, as `torchvision.transforms.v2`
//! computes them on a `uint8` tensor (its tensor kernels, `functional/_color.py` and
//! `_geometry.py`): the same `f32` arithmetic in the same order, fused multiply-adds where
//! PyTorch's `add(..., alpha=)` fuses them, truncation where `.to(torch.uint8)` truncates and
//! round-half-to-even where it rounds. `cargo xtask parity` checks every operation against
//! torchvision's own on a photo (`augment_ref.py`).
//!
//! No crate fits: `image`'s and `imageproc`'s operations are PIL-like or their own, and a
//! model trained with torchvision's recipe expects torchvision's numbers.

use image::RgbImage;
use serde::{Deserialize, Serialize};

/// How the geometric operations sample the source image (torchvision's tensor kernels offer
/// these two; `AutoAugment`, `RandAugment` and `TrivialAugmentWide` default to nearest,
/// `AugMix` to bilinear).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Resample {
    /// The nearest source pixel (ties to even, as `grid_sample`).
    Nearest,
    /// Bilinear, zero outside the image.
    Bilinear,
}

/// One operation of torchvision's augmentation space with its signed magnitude, as
/// `_AutoAugmentBase._apply_image_or_video_transform` reads it: a shear is `tan` of the
/// angle, a translation in pixels (truncated), a rotation in degrees (counter-clockwise), an
/// enhancement `factor - 1`, posterize the bits kept, solarize the threshold as a fraction of
/// 255.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", content = "magnitude")]
pub enum Op {
    /// The image as it is.
    Identity,
    /// Horizontal shear about the top-left corner.
    ShearX(f64),
    /// Vertical shear about the top-left corner.
    ShearY(f64),
    /// Horizontal shift by `int(magnitude)` pixels.
    TranslateX(f64),
    /// Vertical shift by `int(magnitude)` pixels.
    TranslateY(f64),
    /// Rotation about the centre, degrees.
    Rotate(f64),
    /// `adjust_brightness(1 + magnitude)`.
    Brightness(f64),
    /// `adjust_saturation(1 + magnitude)` (PIL's `Color`).
    Color(f64),
    /// `adjust_contrast(1 + magnitude)`.
    Contrast(f64),
    /// `adjust_sharpness(1 + magnitude)`.
    Sharpness(f64),
    /// Keeps this many high bits.
    Posterize(u8),
    /// Inverts values at or above `255 * magnitude`.
    Solarize(f64),
    /// Stretches each channel to 0..=255.
    AutoContrast,
    /// Equalises each channel's histogram (PIL's scheme).
    Equalize,
    /// `255 - value`.
    Invert,
}

impl Op {
    /// The operation applied to `image`, geometric ones sampling with `resample`.
    pub fn apply(&self, image: &RgbImage, resample: Resample) -> RgbImage {
        let (w, h) = image.dimensions();
        match *self {
            Op::Identity => image.clone(),
            Op::ShearX(m) => {
                let shear = m.atan().to_degrees();
                let center = [-f64::from(w) * 0.5, -f64::from(h) * 0.5];
                affine(image, center, 0.0, [0.0, 0.0], [shear, 0.0], resample)
            }
            Op::ShearY(m) => {
                let shear = m.atan().to_degrees();
                let center = [-f64::from(w) * 0.5, -f64::from(h) * 0.5];
                affine(image, center, 0.0, [0.0, 0.0], [0.0, shear], resample)
            }
            Op::TranslateX(m) => affine(
                image,
                [0.0, 0.0],
                0.0,
                [m.trunc(), 0.0],
                [0.0, 0.0],
                resample,
            ),
            Op::TranslateY(m) => affine(
                image,
                [0.0, 0.0],
                0.0,
                [0.0, m.trunc()],
                [0.0, 0.0],
                resample,
            ),
            Op::Rotate(m) => rotate(image, m, resample),
            Op::Brightness(m) => adjust_brightness(image, 1.0 + m),
            Op::Color(m) => adjust_saturation(image, 1.0 + m),
            Op::Contrast(m) => adjust_contrast(image, 1.0 + m),
            Op::Sharpness(m) => adjust_sharpness(image, 1.0 + m),
            Op::Posterize(bits) => posterize(image, bits),
            Op::Solarize(m) => solarize(image, 255.0 * m),
            Op::AutoContrast => autocontrast(image),
            Op::Equalize => equalize(image),
            Op::Invert => map_values(image, |v| 255 - v),
        }
    }
}

fn map_values(image: &RgbImage, f: impl Fn(u8) -> u8) -> RgbImage {
    let (w, h) = image.dimensions();
    let data = image.as_raw().iter().map(|&v| f(v)).collect();
    RgbImage::from_raw(w, h, data).expect("same size")
}

/// A float in `[0, 255]` as `.to(torch.uint8)` converts it: truncated.
fn to_u8(v: f32) -> u8 {
    v.clamp(0.0, 255.0) as u8
}

/// torchvision's `_get_inverse_affine_matrix` (`inverted=True`): the output-to-input map of a
/// rotation by `angle` degrees, `translate`, unit scale and `shear` degrees about `center`
/// (pixels from the image centre).
fn inverse_affine_matrix(
    center: [f64; 2],
    angle: f64,
    translate: [f64; 2],
    shear: [f64; 2],
) -> [f64; 6] {
    let rot = angle.to_radians();
    let (sx, sy) = (shear[0].to_radians(), shear[1].to_radians());
    let [cx, cy] = center;
    let [tx, ty] = translate;
    let cos_sy = sy.cos();
    let tan_sx = sx.tan();
    let rot_minus_sy = rot - sy;
    let (cx_plus_tx, cy_plus_ty) = (cx + tx, cy + ty);
    let a = rot_minus_sy.cos() / cos_sy;
    let b = -(a * tan_sx + rot.sin());
    let c = rot_minus_sy.sin() / cos_sy;
    let d = rot.cos() - c * tan_sx;
    let mut m = [d, -b, 0.0, -c, a, 0.0];
    m[2] += cx - m[0] * cx_plus_tx - m[1] * cy_plus_ty;
    m[5] += cy - m[3] * cx_plus_tx - m[4] * cy_plus_ty;
    m
}

/// `affine_image`: `center` is given as torchvision's caller gives it after subtracting half
/// the size (ShearX/ShearY pass `[0, 0]`, the top-left corner, which becomes `-size / 2`).
fn affine(
    image: &RgbImage,
    center: [f64; 2],
    angle: f64,
    translate: [f64; 2],
    shear: [f64; 2],
    resample: Resample,
) -> RgbImage {
    warp(
        image,
        inverse_affine_matrix(center, angle, translate, shear),
        resample,
    )
}

/// `rotate_image` without `expand`: exact quarter turns where torchvision takes them
/// (`rot90`), else the inverse rotation sampled as [`warp`] does.
fn rotate(image: &RgbImage, angle: f64, resample: Resample) -> RgbImage {
    use image::imageops;
    let angle = angle.rem_euclid(360.0);
    let square = image.width() == image.height();
    if angle == 0.0 {
        return image.clone();
    }
    if angle == 180.0 {
        return imageops::rotate180(image);
    }
    // `torch.rot90(k=1)` turns counter-clockwise, `image`'s `rotate270` does too.
    if square && angle == 90.0 {
        return imageops::rotate270(image);
    }
    if square && angle == 270.0 {
        return imageops::rotate90(image);
    }
    warp(
        image,
        inverse_affine_matrix([0.0, 0.0], -angle, [0.0, 0.0], [0.0, 0.0]),
        resample,
    )
}

/// `_affine_grid` + `grid_sample(padding_mode="zeros", align_corners=False)` + round: each
/// output pixel, centred coordinates `(x, y)`, reads the input at `matrix · (x, y, 1)`, in
/// `f32` as torchvision computes it (`theta` in `f32`, divided by half the size, then
/// unnormalised).
fn warp(image: &RgbImage, matrix: [f64; 6], resample: Resample) -> RgbImage {
    let (w, h) = image.dimensions();
    let (wf, hf) = (w as f32, h as f32);
    let t = matrix.map(|v| v as f32);
    let (half_w, half_h) = ((0.5 * f64::from(w)) as f32, (0.5 * f64::from(h)) as f32);
    let ax = [t[0] / half_w, t[1] / half_w, t[2] / half_w];
    let ay = [t[3] / half_h, t[4] / half_h, t[5] / half_h];
    let src = image.as_raw();
    let (wi, hi) = (w as i64, h as i64);
    let pixel = |x: i64, y: i64| -> Option<[f32; 3]> {
        if (0..wi).contains(&x) && (0..hi).contains(&y) {
            let i = (y as usize * w as usize + x as usize) * 3;
            Some([src[i] as f32, src[i + 1] as f32, src[i + 2] as f32])
        } else {
            None
        }
    };
    let mut out = vec![0u8; src.len()];
    for oy in 0..h {
        let yc = oy as f32 - (hf - 1.0) * 0.5;
        for ox in 0..w {
            let xc = ox as f32 - (wf - 1.0) * 0.5;
            let gx = yc.mul_add(ax[1], xc * ax[0]) + ax[2];
            let gy = yc.mul_add(ay[1], xc * ay[0]) + ay[2];
            let ix = ((gx + 1.0) * wf - 1.0) / 2.0;
            let iy = ((gy + 1.0) * hf - 1.0) / 2.0;
            let value = match resample {
                Resample::Nearest => {
                    pixel(ix.round_ties_even() as i64, iy.round_ties_even() as i64)
                        .unwrap_or([0.0; 3])
                }
                Resample::Bilinear => {
                    let (x0, y0) = (ix.floor(), iy.floor());
                    let (x1, y1) = (x0 + 1.0, y0 + 1.0);
                    let weights = [
                        ((x1 - ix) * (y1 - iy), x0, y0),
                        ((ix - x0) * (y1 - iy), x1, y0),
                        ((x1 - ix) * (iy - y0), x0, y1),
                        ((ix - x0) * (iy - y0), x1, y1),
                    ];
                    let mut acc = [0f32; 3];
                    for (weight, x, y) in weights {
                        if let Some(p) = pixel(x as i64, y as i64) {
                            for c in 0..3 {
                                acc[c] += p[c] * weight;
                            }
                        }
                    }
                    acc
                }
            };
            let o = (oy as usize * w as usize + ox as usize) * 3;
            for c in 0..3 {
                out[o + c] = to_u8(value[c].round_ties_even());
            }
        }
    }
    RgbImage::from_raw(w, h, out).expect("same size")
}

/// `_rgb_to_grayscale_image(preserve_dtype=False)` then `floor`, as the saturation and
/// contrast adjustments use it.
fn grey(r: u8, g: u8, b: u8) -> f32 {
    let l = (b as f32).mul_add(0.114, (g as f32).mul_add(0.587, r as f32 * 0.2989));
    l.floor()
}

/// `_blend`: `image * ratio + other * (1 - ratio)`, clamped and truncated.
fn blend(v: u8, other: f32, ratio: f64) -> u8 {
    to_u8(other.mul_add((1.0 - ratio) as f32, v as f32 * ratio as f32))
}

/// torchvision's `adjust_brightness` with this factor (also `ColorJitter`'s).
pub fn adjust_brightness(image: &RgbImage, factor: f64) -> RgbImage {
    let factor = factor as f32;
    map_values(image, |v| to_u8(v as f32 * factor))
}

/// torchvision's `adjust_saturation` with this factor.
pub fn adjust_saturation(image: &RgbImage, factor: f64) -> RgbImage {
    let mut out = image.clone();
    for p in out.pixels_mut() {
        let l = grey(p[0], p[1], p[2]);
        for v in p.0.iter_mut() {
            *v = blend(*v, l, factor);
        }
    }
    out
}

/// torchvision's `adjust_contrast` with this factor.
pub fn adjust_contrast(image: &RgbImage, factor: f64) -> RgbImage {
    let n = (image.width() * image.height()).max(1);
    let sum: f64 = image
        .pixels()
        .map(|p| f64::from(grey(p[0], p[1], p[2])))
        .sum();
    let mean = (sum / f64::from(n)) as f32;
    map_values(image, |v| blend(v, mean, factor))
}

fn adjust_sharpness(image: &RgbImage, factor: f64) -> RgbImage {
    let (w, h) = image.dimensions();
    if w <= 2 || h <= 2 {
        return image.clone();
    }
    let (a, b) = ((1.0f64 / 13.0) as f32, (5.0f64 / 13.0) as f32);
    let alpha = (1.0 - factor) as f32;
    let src = image.as_raw();
    let (w, h) = (w as usize, h as usize);
    let at = |x: usize, y: usize, c: usize| src[(y * w + x) * 3 + c] as f32;
    let mut out = src.clone();
    for y in 1..h - 1 {
        for x in 1..w - 1 {
            for c in 0..3 {
                let mut blurred = 0f32;
                for dy in 0..3 {
                    for dx in 0..3 {
                        let k = if dx == 1 && dy == 1 { b } else { a };
                        blurred = at(x + dx - 1, y + dy - 1, c).mul_add(k, blurred);
                    }
                }
                let v = at(x, y, c);
                out[(y * w + x) * 3 + c] = to_u8((blurred.round_ties_even() - v).mul_add(alpha, v));
            }
        }
    }
    RgbImage::from_raw(w as u32, h as u32, out).expect("same size")
}

fn posterize(image: &RgbImage, bits: u8) -> RgbImage {
    if bits >= 8 {
        return image.clone();
    }
    let mask = (((1u16 << bits) - 1) << (8 - bits)) as u8;
    map_values(image, |v| v & mask)
}

fn solarize(image: &RgbImage, threshold: f64) -> RgbImage {
    let threshold = threshold as f32;
    map_values(image, |v| if v as f32 >= threshold { 255 - v } else { v })
}

fn autocontrast(image: &RgbImage) -> RgbImage {
    let mut lo = [255u8; 3];
    let mut hi = [0u8; 3];
    for p in image.pixels() {
        for c in 0..3 {
            lo[c] = lo[c].min(p[c]);
            hi[c] = hi[c].max(p[c]);
        }
    }
    let mut out = image.clone();
    let step = (1.0f64 / 255.0) as f32;
    for p in out.pixels_mut() {
        for c in 0..3 {
            let (min, scale) = if lo[c] == hi[c] {
                (0.0, 1.0)
            } else {
                (lo[c] as f32, (hi[c] as f32 - lo[c] as f32) * step)
            };
            p[c] = to_u8((p[c] as f32 - min) / scale);
        }
    }
    out
}

fn equalize(image: &RgbImage) -> RgbImage {
    let n = (image.width() * image.height()) as i64;
    let mut luts = [[0u8; 256]; 3];
    let mut identity = [false; 3];
    for c in 0..3 {
        let mut hist = [0i64; 256];
        for p in image.pixels() {
            hist[p[c] as usize] += 1;
        }
        let last = hist.iter().rposition(|&count| count > 0).unwrap_or(0);
        let step = (n - hist[last]) / 255;
        if step == 0 {
            identity[c] = true;
            continue;
        }
        let mut cum = 0i64;
        for k in 1..256 {
            cum += hist[k - 1];
            luts[c][k] = ((cum + step / 2) / step).clamp(0, 255) as u8;
        }
    }
    let mut out = image.clone();
    for p in out.pixels_mut() {
        for c in 0..3 {
            if !identity[c] {
                p[c] = luts[c][p[c] as usize];
            }
        }
    }
    out
}

/// `adjust_hue`: the hue turned by `hue` (in `[-0.5, 0.5]` of a full turn), through
/// torchvision's `f32` RGB -> HSV -> RGB.
pub fn hue(image: &RgbImage, hue: f64) -> RgbImage {
    let scale = (1.0f64 / 255.0) as f32;
    let hue = hue as f32;
    let back = (255.0f64 + 1.0 - 1e-3) as f32;
    let mut out = image.clone();
    for p in out.pixels_mut() {
        let [r, g, b] = p.0.map(|v| v as f32 * scale);
        let (maxc, minc) = (r.max(g).max(b), r.min(g).min(b));
        let eqc = maxc == minc;
        let range = maxc - minc;
        let s = range / if eqc { 1.0 } else { maxc };
        let divisor = if eqc { 1.0 } else { range };
        let (rc, gc, bc) = (
            (maxc - r) / divisor,
            (maxc - g) / divisor,
            (maxc - b) / divisor,
        );
        let (max_is_r, max_is_g) = (maxc == r, maxc == g);
        let hr = if max_is_r { bc - gc } else { 0.0 };
        let hg = if max_is_g && !max_is_r {
            rc + 2.0 - bc
        } else {
            0.0
        };
        let hb = if !max_is_r && !max_is_g {
            gc + 4.0 - rc
        } else {
            0.0
        };
        let h = ((hr + hg + hb) * (1.0f64 / 6.0) as f32 + 1.0) % 1.0;
        let h = (h + hue).rem_euclid(1.0);
        let v = maxc;
        let h6 = h * 6.0;
        let i = h6.floor();
        let f = h6 - i;
        let i = (i as i32).rem_euclid(6);
        let sxf = s * f;
        let one_minus_s = 1.0 - s;
        let q = ((1.0 - sxf) * v).clamp(0.0, 1.0);
        let t = ((sxf + one_minus_s) * v).clamp(0.0, 1.0);
        let pp = (one_minus_s * v).clamp(0.0, 1.0);
        let rgb = match i {
            0 => [v, t, pp],
            1 => [q, v, pp],
            2 => [pp, v, t],
            3 => [pp, q, v],
            4 => [t, pp, v],
            _ => [v, pp, q],
        };
        p.0 = rgb.map(|c| (c * back) as u8);
    }
    out
}
