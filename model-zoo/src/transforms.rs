//! torchvision's eval transforms for ImageNet classifiers (`weights.transforms()`), on images
//! decoded by the `image` crate: resize the shorter side (antialiased bilinear or bicubic,
//! PIL's algorithms), center crop, scale to `[0, 1]`, normalise.
//!
//! ```no_run
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use model_zoo::transforms::{load_image, images_to_tensor};
//! let device = model_zoo::Backend::Flex.device()?;
//! let weights = model_zoo::model_info("resnet50")?.weights("DEFAULT")?;
//! let image = load_image("cat.jpg")?;
//! let x = images_to_tensor(&[image], &weights.preprocess, &device); // [1, 3, 224, 224]
//! # Ok(()) }
//! ```

use std::path::{Path, PathBuf};

use burn::tensor::{Device, Tensor, TensorData};
use image::{DynamicImage, RgbImage};

use crate::registry::{Interpolation, Preprocess};

pub mod masks;
mod pil;

/// An image file that could not be opened or decoded.
#[derive(Debug, thiserror::Error)]
#[error("cannot read image {path}: {message}")]
pub struct ImageError {
    /// The file.
    pub path: PathBuf,
    /// The decoder's or the OS's explanation.
    pub message: String,
}

/// Opens and decodes an image (PNG, JPEG, BMP, WebP), whatever its extension says.
///
/// A file that is not whole is an error, as PIL refuses it ("image file is truncated"): the
/// PNG, BMP and WebP decoders notice a short file themselves; the JPEG decoder fills what is
/// missing with grey, so a JPEG is first checked to reach its end-of-image marker
/// ([`check_jpeg_complete`]).
pub fn load_image(path: impl AsRef<Path>) -> Result<DynamicImage, ImageError> {
    let path = path.as_ref();
    let error = |message: String| ImageError {
        path: path.to_path_buf(),
        message,
    };
    let bytes = std::fs::read(path).map_err(|e| error(e.to_string()))?;
    let reader = image::ImageReader::new(std::io::Cursor::new(&bytes[..]))
        .with_guessed_format()
        .map_err(|e| error(e.to_string()))?;
    if reader.format() == Some(image::ImageFormat::Jpeg) {
        check_jpeg_complete(&bytes).map_err(error)?;
    }
    reader.decode().map_err(|e| error(e.to_string()))
}

/// That a JPEG stream runs from its start-of-image marker to its end-of-image marker: the
/// segments are walked by their lengths (so an EXIF thumbnail's own markers are skipped whole)
/// and each scan's entropy-coded data to the marker after it (`FF 00` stuffing and restart
/// markers are data). A file cut anywhere before `FF D9` is refused, as libjpeg under PIL does.
/// Bytes after the end-of-image marker are allowed, as PIL allows them.
pub fn check_jpeg_complete(bytes: &[u8]) -> Result<(), String> {
    let truncated = |at: usize| {
        Err(format!(
            "truncated JPEG: the data ends at byte {at} of {} before the end-of-image marker \
             (PIL: \"image file is truncated\")",
            bytes.len()
        ))
    };
    if bytes.get(..2) != Some(&[0xFF, 0xD8][..]) {
        return Err("not a JPEG: no start-of-image marker".into());
    }
    let mut pos = 2;
    loop {
        // A marker, after any fill bytes.
        if bytes.get(pos) != Some(&0xFF) {
            return match bytes.get(pos) {
                None => truncated(pos),
                Some(b) => Err(format!(
                    "corrupt JPEG: byte {pos} is {b:#04x}, not a marker"
                )),
            };
        }
        while bytes.get(pos + 1) == Some(&0xFF) {
            pos += 1;
        }
        let Some(&marker) = bytes.get(pos + 1) else {
            return truncated(pos);
        };
        pos += 2;
        match marker {
            0xD9 => return Ok(()),
            // Restart markers and TEM stand alone.
            0xD0..=0xD7 | 0x01 => continue,
            _ => {}
        }
        let Some(length) = bytes.get(pos..pos + 2) else {
            return truncated(bytes.len());
        };
        let end = pos + usize::from(u16::from_be_bytes([length[0], length[1]]));
        if end > bytes.len() {
            return truncated(bytes.len());
        }
        pos = end;
        if marker == 0xDA {
            // Entropy-coded data up to the next marker that is neither stuffing nor a restart.
            loop {
                match bytes[pos.min(bytes.len())..]
                    .iter()
                    .position(|&b| b == 0xFF)
                {
                    None => return truncated(bytes.len()),
                    Some(offset) => {
                        let at = pos + offset;
                        match bytes.get(at + 1) {
                            None => return truncated(bytes.len()),
                            Some(0x00 | 0xD0..=0xD7) => pos = at + 2,
                            Some(0xFF) => pos = at + 1,
                            Some(_) => {
                                pos = at;
                                break;
                            }
                        }
                    }
                }
            }
        }
    }
}

/// Output size of torchvision's `Resize(size)` with one int: the shorter side becomes `size`,
/// the longer one `int(size * long / short)` (truncated, as in torchvision). Returns
/// `(width, height)`.
pub fn resized_size(width: u32, height: u32, size: u32) -> (u32, u32) {
    let (short, long) = if width <= height {
        (width, height)
    } else {
        (height, width)
    };
    if short == size {
        return (width, height);
    }
    let new_long = (f64::from(size) * f64::from(long) / f64::from(short)) as u32;
    if width <= height {
        (size, new_long)
    } else {
        (new_long, size)
    }
}

/// Resizes so that the shorter side is `size` (torchvision's `Resize(size)` on a PIL image), with
/// PIL's own resampling (see `pil.rs`).
pub fn resize_shorter(image: &RgbImage, size: u32, interpolation: Interpolation) -> RgbImage {
    let (width, height) = resized_size(image.width(), image.height(), size);
    resize_to(image, width, height, interpolation)
}

/// Resizes to exactly `width` x `height` (torchvision's `Resize((h, w))` on a PIL image, as
/// `RandomResizedCrop` resizes its crop), with PIL's own resampling.
pub fn resize_to(
    image: &RgbImage,
    width: u32,
    height: u32,
    interpolation: Interpolation,
) -> RgbImage {
    if (width, height) == image.dimensions() {
        return image.clone();
    }
    let filter = match interpolation {
        Interpolation::Bilinear => pil::Filter::Bilinear,
        Interpolation::Bicubic => pil::Filter::Bicubic,
    };
    pil::resize(image, width, height, filter)
}

/// torchvision's `CenterCrop(size)`: offsets `round((h - size) / 2)` with Python's rounding
/// (half to even); a side shorter than `size` is padded with zeros, as torchvision does.
pub fn center_crop(image: &RgbImage, size: u32) -> RgbImage {
    let (width, height) = image.dimensions();
    let offset = |side: u32| (f64::from(side) - f64::from(size)) / 2.0;
    let left = offset(width).round_ties_even() as i64;
    let top = offset(height).round_ties_even() as i64;
    RgbImage::from_fn(size, size, |x, y| {
        let (sx, sy) = (i64::from(x) + left, i64::from(y) + top);
        if sx < 0 || sy < 0 || sx >= i64::from(width) || sy >= i64::from(height) {
            image::Rgb([0, 0, 0])
        } else {
            *image.get_pixel(sx as u32, sy as u32)
        }
    })
}

/// Resize and center crop, without scaling or normalisation: the `crop`x`crop` RGB image a
/// model sees.
pub fn resize_and_crop(image: &DynamicImage, preprocess: &Preprocess) -> RgbImage {
    let rgb = image.to_rgb8();
    let resized = resize_shorter(&rgb, preprocess.resize as u32, preprocess.interpolation);
    center_crop(&resized, preprocess.crop as u32)
}

/// An RGB image as CHW floats in `[0, 1]` (torchvision's `ToTensor` / `ToDtype(scale=True)`).
pub fn to_chw(image: &RgbImage) -> Vec<f32> {
    let plane = (image.width() * image.height()) as usize;
    let mut out = vec![0.0; 3 * plane];
    for (i, pixel) in image.pixels().enumerate() {
        for c in 0..3 {
            out[c * plane + i] = f32::from(pixel[c]) / 255.0;
        }
    }
    out
}

/// `(x - mean) / std` per channel, in place, on CHW data.
pub fn normalize(chw: &mut [f32], mean: [f32; 3], std: [f32; 3]) {
    let plane = chw.len() / 3;
    for (c, channel) in chw.chunks_mut(plane.max(1)).enumerate().take(3) {
        for v in channel {
            *v = (*v - mean[c]) / std[c];
        }
    }
}

/// The whole eval transform of one image: CHW floats, `3 x crop x crop`, normalised.
pub fn preprocess_image(image: &DynamicImage, preprocess: &Preprocess) -> Vec<f32> {
    let mut chw = to_chw(&resize_and_crop(image, preprocess));
    normalize(&mut chw, preprocess.mean, preprocess.std);
    chw
}

/// A batch of images through the eval transform, as a `[n, 3, crop, crop]` tensor on `device`.
pub fn images_to_tensor(
    images: &[DynamicImage],
    preprocess: &Preprocess,
    device: &Device,
) -> Tensor<4> {
    let crop = preprocess.crop;
    let mut data = Vec::with_capacity(images.len() * 3 * crop * crop);
    for image in images {
        data.extend(preprocess_image(image, preprocess));
    }
    Tensor::from_data(TensorData::new(data, [images.len(), 3, crop, crop]), device)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resized_size_truncates_like_torchvision() {
        // torchvision: _compute_resized_output_size((300, 451), [256]) == [256, 384]
        assert_eq!(resized_size(451, 300, 256), (384, 256));
        // rocket.jpg is 427 wide, 640 tall: 232 * 640 / 427 = 347.7 -> 347
        assert_eq!(resized_size(427, 640, 232), (232, 347));
        assert_eq!(resized_size(256, 256, 256), (256, 256));
        assert_eq!(resized_size(100, 50, 256), (512, 256));
    }

    #[test]
    fn center_crop_rounds_half_to_even_and_pads() {
        // A 5-wide ramp cropped to 2: offset (5-2)/2 = 1.5 rounds to 2 in Python.
        let ramp = RgbImage::from_fn(5, 2, |x, _| image::Rgb([x as u8, 0, 0]));
        let crop = center_crop(&ramp, 2);
        assert_eq!(crop.get_pixel(0, 0)[0], 2);
        // 7 wide, crop 2: offset 2.5 rounds to 2 (half to even), not 3.
        let ramp = RgbImage::from_fn(7, 2, |x, _| image::Rgb([x as u8 + 1, 0, 0]));
        assert_eq!(center_crop(&ramp, 2).get_pixel(0, 0)[0], 3);
        // Smaller than the crop: zero padding around, centred.
        let small = RgbImage::from_pixel(2, 2, image::Rgb([9, 9, 9]));
        let padded = center_crop(&small, 4);
        assert_eq!(padded.get_pixel(0, 0)[0], 0);
        assert_eq!(padded.get_pixel(1, 1)[0], 9);
        assert_eq!(padded.get_pixel(2, 2)[0], 9);
        assert_eq!(padded.get_pixel(3, 3)[0], 0);
    }

    #[test]
    fn normalised_chw_layout() {
        let image = RgbImage::from_fn(2, 1, |x, _| image::Rgb([255 * x as u8, 0, 51]));
        let mut chw = to_chw(&image);
        assert_eq!(chw, [0.0, 1.0, 0.0, 0.0, 0.2, 0.2]);
        normalize(&mut chw, [0.5, 0.0, 0.2], [0.5, 1.0, 2.0]);
        assert_eq!(chw, [-1.0, 1.0, 0.0, 0.0, 0.0, 0.0]);
    }

    #[test]
    fn uniform_image_stays_uniform_through_the_transform() {
        let image =
            DynamicImage::ImageRgb8(RgbImage::from_pixel(500, 300, image::Rgb([128, 64, 32])));
        let p = Preprocess::imagenet(256);
        let x = preprocess_image(&image, &p);
        assert_eq!(x.len(), 3 * 224 * 224);
        for (c, value) in [128.0f32, 64.0, 32.0].into_iter().enumerate() {
            let expected = (value / 255.0 - p.mean[c]) / p.std[c];
            let plane = &x[c * 224 * 224..(c + 1) * 224 * 224];
            assert!(
                plane.iter().all(|v| (v - expected).abs() < 1e-6),
                "channel {c}"
            );
        }
    }

    /// Every format the zoo decodes, whole and cut: the whole file loads; a file cut at 90%,
    /// half or a tenth of its length is an error naming it (PIL refuses all of them).
    #[test]
    fn truncated_images_are_errors_naming_the_file() {
        use image::ImageEncoder;
        let scratch = tempfile::tempdir().unwrap();
        let dir = scratch.path();
        let (w, h) = (64u32, 48u32);
        let pixels: Vec<u8> = (0..w * h * 3).map(|i| (i * 7 % 251) as u8).collect();
        let encode =
            |format: &str| -> Vec<u8> {
                let mut out = Vec::new();
                let rgb = image::ExtendedColorType::Rgb8;
                match format {
                    "jpg" => image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 90)
                        .write_image(&pixels, w, h, rgb),
                    "png" => image::codecs::png::PngEncoder::new(&mut out)
                        .write_image(&pixels, w, h, rgb),
                    "bmp" => image::codecs::bmp::BmpEncoder::new(&mut out)
                        .write_image(&pixels, w, h, rgb),
                    "webp" => image::codecs::webp::WebPEncoder::new_lossless(&mut out)
                        .write_image(&pixels, w, h, rgb),
                    _ => unreachable!(),
                }
                .unwrap();
                out
            };
        for format in ["jpg", "png", "bmp", "webp"] {
            let whole = encode(format);
            let path = dir.join(format!("whole.{format}"));
            std::fs::write(&path, &whole).unwrap();
            let image = load_image(&path).unwrap_or_else(|e| panic!("{format}: {e}"));
            assert_eq!((image.width(), image.height()), (w, h));
            for keep in [0.9, 0.5, 0.1] {
                let cut = (whole.len() as f64 * keep) as usize;
                let path = dir.join(format!("cut-{cut}.{format}"));
                std::fs::write(&path, &whole[..cut]).unwrap();
                let err = load_image(&path)
                    .err()
                    .unwrap_or_else(|| panic!("{format} cut to {cut} of {} loaded", whole.len()));
                assert!(
                    err.to_string().contains(&format!("cut-{cut}.{format}")),
                    "{err}"
                );
            }
        }
        // A JPEG with bytes after its end (as some cameras write) is whole.
        let mut padded = encode("jpg");
        padded.extend_from_slice(b"\0\0trailer");
        let path = dir.join("padded.jpg");
        std::fs::write(&path, &padded).unwrap();
        load_image(&path).unwrap();
    }

    #[test]
    fn jpeg_completeness_skips_segments_and_stuffing() {
        // SOI, an APP1 segment holding a thumbnail's own SOI/EOI, SOS, data with stuffing and
        // a restart marker, EOI.
        let mut jpeg = vec![0xFF, 0xD8, 0xFF, 0xE1, 0x00, 0x06, 0xFF, 0xD8, 0xFF, 0xD9];
        jpeg.extend([
            0xFF, 0xDA, 0x00, 0x02, 0x12, 0xFF, 0x00, 0x34, 0xFF, 0xD3, 0x56,
        ]);
        assert!(check_jpeg_complete(&jpeg).is_err(), "no EOI yet");
        jpeg.extend([0xFF, 0xD9]);
        check_jpeg_complete(&jpeg).unwrap();
        // Cut inside the APP1 segment: its thumbnail's EOI does not count.
        assert!(check_jpeg_complete(&jpeg[..10]).is_err());
        for cut in 0..jpeg.len() {
            assert!(check_jpeg_complete(&jpeg[..cut]).is_err(), "cut at {cut}");
        }
    }

    #[test]
    fn unreadable_image_names_the_file() {
        let scratch = tempfile::tempdir().unwrap();
        let dir = scratch.path();
        let path = dir.join("broken.png");
        std::fs::write(&path, b"\x89PNG\r\n\x1a\nnot really").unwrap();
        let err = load_image(&path).unwrap_err();
        assert_eq!(err.path, path);
        assert!(err.to_string().contains("broken.png"), "{err}");
        let err = load_image(dir.join("missing.jpg")).unwrap_err();
        assert!(err.to_string().contains("missing.jpg"), "{err}");
    }
}
