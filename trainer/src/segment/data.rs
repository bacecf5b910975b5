//! Segmentation data: a folder of photos and masks of the same names (`images/`, `masks/`), the
//! masks read as class indices (palette or grey PNGs, as VOC's `SegmentationClass`; or colour
//! PNGs in VOC's palette), and torchvision's reference transforms applied to both
//! (`references/segmentation/presets.py`: random resize of the shorter side between half and
//! twice the base size, horizontal flip, random crop padded with 255 in the mask; at evaluation
//! the shorter side resized to the base size).

use std::collections::HashMap;
use std::io::BufReader;
use std::path::{Path, PathBuf};

use image::{GrayImage, RgbImage, imageops};
use model_zoo::registry::Interpolation;
use model_zoo::transforms::masks::voc_palette;
use model_zoo::transforms::{load_image, normalize, resize_shorter, resized_size, to_chw};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::error::TrainError;

/// The mask value of pixels that count for nothing (VOC's object borders and "difficult"
/// regions): torchvision's `ignore_index=255`.
pub const IGNORE: u8 = 255;

/// One photo and its mask.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MaskSample {
    /// The photo.
    pub image: PathBuf,
    /// Its mask: same size, one class index per pixel.
    pub mask: PathBuf,
}

fn is_image(path: &Path) -> bool {
    path.extension().is_some_and(|e| {
        ["png", "jpg", "jpeg", "bmp", "webp"].contains(&e.to_string_lossy().to_lowercase().as_str())
    })
}

/// The pairs of `dir/images/<name>.*` and `dir/masks/<name>.png`, by file stem, sorted by name.
/// A photo without a mask, or a mask without a photo, is an error naming it.
pub fn mask_pairs(dir: &Path) -> Result<Vec<MaskSample>, TrainError> {
    let list = |sub: &str| -> Result<HashMap<String, PathBuf>, TrainError> {
        let folder = dir.join(sub);
        let entries = std::fs::read_dir(&folder).map_err(|e| TrainError::io(&folder, e))?;
        let mut files = HashMap::new();
        for entry in entries {
            let path = entry.map_err(|e| TrainError::io(&folder, e))?.path();
            if !path.is_file() || !is_image(&path) {
                continue;
            }
            let stem = path
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default();
            if let Some(other) = files.insert(stem.clone(), path.clone()) {
                return Err(TrainError::Dataset(format!(
                    "{} and {} have the same name: which is `{stem}`?",
                    other.display(),
                    path.display()
                )));
            }
        }
        Ok(files)
    };
    let images = list("images")?;
    let mut masks = list("masks")?;
    let mut pairs = Vec::with_capacity(images.len());
    for (stem, image) in images {
        let mask = masks.remove(&stem).ok_or_else(|| {
            TrainError::Dataset(format!(
                "{} has no mask: expected {}/masks/{stem}.png",
                image.display(),
                dir.display()
            ))
        })?;
        pairs.push(MaskSample { image, mask });
    }
    if let Some(mask) = masks.into_values().next() {
        return Err(TrainError::Dataset(format!(
            "{} has no photo in {}/images",
            mask.display(),
            dir.display()
        )));
    }
    if pairs.is_empty() {
        return Err(TrainError::Dataset(format!(
            "{}/images holds no image (PNG, JPEG, BMP, WebP)",
            dir.display()
        )));
    }
    pairs.sort_by(|a, b| a.image.cmp(&b.image));
    Ok(pairs)
}

/// A mask file as class indices: a palette PNG's indices (VOC's `SegmentationClass`), a grey
/// PNG's values, or an RGB(A) PNG's colours mapped back through VOC's palette (an unknown
/// colour is an error naming the pixel). JPEG masks are refused: their compression changes
/// the values at every edge.
pub fn read_mask(path: &Path) -> Result<GrayImage, TrainError> {
    let error = |message: String| TrainError::Image {
        path: path.to_path_buf(),
        message,
    };
    let is_png = path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("png"));
    if !is_png {
        return Err(error(
            "masks must be PNG files (class indices; lossy formats change them)".into(),
        ));
    }
    let file = std::fs::File::open(path).map_err(|e| TrainError::io(path, e))?;
    let mut decoder = png::Decoder::new(BufReader::new(file));
    // Indices as stored: no palette expansion.
    decoder.set_transformations(png::Transformations::IDENTITY);
    let mut reader = decoder.read_info().map_err(|e| error(e.to_string()))?;
    let mut buf = vec![0; reader.output_buffer_size()];
    let frame = reader
        .next_frame(&mut buf)
        .map_err(|e| error(e.to_string()))?;
    let (w, h) = (frame.width, frame.height);
    let pixels = (w * h) as usize;
    let bytes = &buf[..frame.buffer_size()];
    use png::{BitDepth, ColorType};
    let values: Vec<u8> = match (frame.color_type, frame.bit_depth) {
        (ColorType::Indexed | ColorType::Grayscale, BitDepth::Eight) => bytes.to_vec(),
        (
            ColorType::Indexed | ColorType::Grayscale,
            depth @ (BitDepth::One | BitDepth::Two | BitDepth::Four),
        ) => {
            let bits = depth as usize;
            let per_byte = 8 / bits;
            bytes
                .chunks(frame.line_size)
                .flat_map(|row| {
                    (0..w as usize).map(move |x| {
                        let byte = row[x / per_byte];
                        let shift = 8 - bits * (x % per_byte + 1);
                        (byte >> shift) & ((1 << bits) - 1)
                    })
                })
                .collect()
        }
        (ColorType::Rgb | ColorType::Rgba, BitDepth::Eight) => {
            let channels = if frame.color_type == ColorType::Rgb {
                3
            } else {
                4
            };
            let palette = voc_palette();
            let index: HashMap<[u8; 3], u8> = palette
                .iter()
                .enumerate()
                .map(|(i, &c)| (c, i as u8))
                .collect();
            let mut out = Vec::with_capacity(pixels);
            for (i, px) in bytes.chunks(channels).enumerate() {
                let colour = [px[0], px[1], px[2]];
                let class = index.get(&colour).ok_or_else(|| {
                    error(format!(
                        "pixel ({}, {}) has colour {colour:?}, not one of VOC's palette: \
                         write masks as palette or grey PNGs of class indices",
                        i % w as usize,
                        i / w as usize
                    ))
                })?;
                out.push(*class);
            }
            out
        }
        (color, depth) => {
            return Err(error(format!(
                "a {color:?} PNG of {depth:?} bits is not a mask: write palette or grey PNGs of \
                 8 bits, one class index per pixel"
            )));
        }
    };
    GrayImage::from_raw(w, h, values).ok_or_else(|| error("truncated pixel data".into()))
}

/// torchvision's reference transforms (`SegmentationPresetTrain` / `SegmentationPresetEval`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MaskTransforms {
    /// The shorter side at evaluation, and the centre of the training resizes (torchvision's
    /// `--base-size`, 520).
    pub base_size: usize,
    /// The training crop (torchvision's `--crop-size`, 480).
    pub crop_size: usize,
    /// The range of training's random resize of the shorter side, as fractions of
    /// `base_size` (torchvision's reference: `[0.5, 2.0]`).
    pub scale: [f64; 2],
    /// Normalisation mean (RGB).
    pub mean: [f32; 3],
    /// Normalisation standard deviation (RGB).
    pub std: [f32; 3],
}

/// One sample after its transform: CHW floats, the mask, their `[height, width]`.
#[derive(Debug, Clone)]
pub struct Prepared {
    /// `3 x h x w` normalised floats.
    pub image: Vec<f32>,
    /// `h x w` class indices ([`IGNORE`] where padded).
    pub mask: Vec<u8>,
    /// `[h, w]`.
    pub size: [usize; 2],
}

/// Reads one pair and transforms it: the training transform drawn from `seed`, or with `None`
/// the evaluation one. A photo and mask of different sizes are an error.
pub fn prepare(
    sample: &MaskSample,
    transforms: &MaskTransforms,
    seed: Option<u64>,
) -> Result<Prepared, TrainError> {
    let image = load_image(&sample.image)
        .map_err(|e| TrainError::Image {
            path: sample.image.clone(),
            message: e.to_string(),
        })?
        .to_rgb8();
    let mask = read_mask(&sample.mask)?;
    if image.dimensions() != mask.dimensions() {
        return Err(TrainError::Dataset(format!(
            "{} is {}x{}, its mask {} is {}x{}",
            sample.image.display(),
            image.width(),
            image.height(),
            sample.mask.display(),
            mask.width(),
            mask.height()
        )));
    }
    let (image, mask) = match seed {
        None => resize_pair(&image, &mask, transforms.base_size as u32),
        Some(seed) => train_transform(image, mask, transforms, &mut StdRng::seed_from_u64(seed)),
    };
    let (w, h) = image.dimensions();
    let mut chw = to_chw(&image);
    normalize(&mut chw, transforms.mean, transforms.std);
    Ok(Prepared {
        image: chw,
        mask: mask.into_raw(),
        size: [h as usize, w as usize],
    })
}

/// The shorter side of both to `side`: the photo with PIL's bilinear, the mask with nearest
/// neighbours (torchvision's `F.resize(target, size, interpolation=NEAREST)`).
fn resize_pair(image: &RgbImage, mask: &GrayImage, side: u32) -> (RgbImage, GrayImage) {
    let (w, h) = resized_size(image.width(), image.height(), side);
    let image = resize_shorter(image, side, Interpolation::Bilinear);
    let mask = if (w, h) == mask.dimensions() {
        mask.clone()
    } else {
        imageops::resize(mask, w, h, imageops::FilterType::Nearest)
    };
    (image, mask)
}

/// `RandomResize(0.5 * base, 2 * base)`, `RandomHorizontalFlip(0.5)`, `RandomCrop(crop)`
/// padding the photo with 0 and the mask with [`IGNORE`], as torchvision's reference.
fn train_transform(
    image: RgbImage,
    mask: GrayImage,
    t: &MaskTransforms,
    rng: &mut StdRng,
) -> (RgbImage, GrayImage) {
    // torchvision's `RandomResize(int(0.5 * base), int(2.0 * base))`: an integer side drawn
    // uniformly, both ends included.
    let (low, high) = (
        (t.scale[0] * t.base_size as f64) as u32,
        (t.scale[1] * t.base_size as f64) as u32,
    );
    let side = rng.random_range(low.max(1)..=high.max(1));
    let (mut image, mut mask) = resize_pair(&image, &mask, side);
    if rng.random::<f64>() < 0.5 {
        image = imageops::flip_horizontal(&image);
        mask = imageops::flip_horizontal(&mask);
    }
    let crop = t.crop_size as u32;
    let (w, h) = image.dimensions();
    let (pw, ph) = (w.max(crop), h.max(crop));
    if (pw, ph) != (w, h) {
        // torchvision's `pad_if_smaller`: padding on the right and bottom.
        let mut padded = RgbImage::new(pw, ph);
        imageops::replace(&mut padded, &image, 0, 0);
        let mut padded_mask = GrayImage::from_pixel(pw, ph, image::Luma([IGNORE]));
        imageops::replace(&mut padded_mask, &mask, 0, 0);
        (image, mask) = (padded, padded_mask);
    }
    let x = rng.random_range(0..=pw - crop);
    let y = rng.random_range(0..=ph - crop);
    (
        imageops::crop_imm(&image, x, y, crop, crop).to_image(),
        imageops::crop_imm(&mask, x, y, crop, crop).to_image(),
    )
}

/// The largest class index in the masks (255 aside): the class count is one more.
pub fn max_class(samples: &[MaskSample]) -> Result<usize, TrainError> {
    let mut max = 0u8;
    for sample in samples {
        let mask = read_mask(&sample.mask)?;
        if let Some(&m) = mask.as_raw().iter().filter(|&&v| v != IGNORE).max() {
            max = max.max(m);
        }
    }
    Ok(usize::from(max))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write_png(
        path: &Path,
        width: u32,
        height: u32,
        color: png::ColorType,
        data: &[u8],
        palette: Option<Vec<u8>>,
    ) {
        let file = std::fs::File::create(path).unwrap();
        let mut encoder = png::Encoder::new(std::io::BufWriter::new(file), width, height);
        encoder.set_color(color);
        encoder.set_depth(png::BitDepth::Eight);
        if let Some(palette) = palette {
            encoder.set_palette(palette);
        }
        encoder
            .write_header()
            .unwrap()
            .write_image_data(data)
            .unwrap();
    }

    #[test]
    fn masks_read_as_indices_in_every_layout() {
        let dir = tempfile::tempdir().unwrap();
        let indices = [0u8, 1, 15, 255];
        // A palette PNG (VOC's layout): the indices, not the colours.
        let palette: Vec<u8> = voc_palette().iter().flatten().copied().collect();
        let p = dir.path().join("palette.png");
        write_png(&p, 2, 2, png::ColorType::Indexed, &indices, Some(palette));
        assert_eq!(read_mask(&p).unwrap().into_raw(), indices);
        let g = dir.path().join("grey.png");
        write_png(&g, 2, 2, png::ColorType::Grayscale, &indices, None);
        assert_eq!(read_mask(&g).unwrap().into_raw(), indices);
        // Colours of VOC's palette map back; another colour is an error naming the pixel.
        let rgb: Vec<u8> = indices
            .iter()
            .flat_map(|&i| voc_palette()[i as usize])
            .collect();
        let c = dir.path().join("colour.png");
        write_png(&c, 2, 2, png::ColorType::Rgb, &rgb, None);
        assert_eq!(read_mask(&c).unwrap().into_raw(), indices);
        let mut wrong = rgb.clone();
        wrong[9] = 1;
        write_png(&c, 2, 2, png::ColorType::Rgb, &wrong, None);
        let err = read_mask(&c).unwrap_err().to_string();
        assert!(err.contains("pixel (1, 1)"), "{err}");
        let j = dir.path().join("mask.jpg");
        std::fs::write(&j, b"not read").unwrap();
        assert!(read_mask(&j).unwrap_err().to_string().contains("PNG"));
    }

    #[test]
    fn the_training_transform_keeps_photo_and_mask_aligned() {
        let dir = tempfile::tempdir().unwrap();
        for sub in ["images", "masks"] {
            std::fs::create_dir_all(dir.path().join(sub)).unwrap();
        }
        // Left half class 1 (photo red), right half class 2 (photo green).
        let (w, h) = (40u32, 30u32);
        let photo = RgbImage::from_fn(w, h, |x, _| {
            image::Rgb(if x < w / 2 { [255, 0, 0] } else { [0, 255, 0] })
        });
        photo.save(dir.path().join("images/a.png")).unwrap();
        let mask: Vec<u8> = (0..w * h)
            .map(|i| if i % w < w / 2 { 1 } else { 2 })
            .collect();
        write_png(
            &dir.path().join("masks/a.png"),
            w,
            h,
            png::ColorType::Grayscale,
            &mask,
            None,
        );
        let pairs = mask_pairs(dir.path()).unwrap();
        assert_eq!(max_class(&pairs).unwrap(), 2);
        let t = MaskTransforms {
            base_size: 30,
            crop_size: 24,
            scale: [0.5, 2.0],
            mean: [0.0; 3],
            std: [1.0; 3],
        };
        for seed in 0..20 {
            let p = prepare(&pairs[0], &t, Some(seed)).unwrap();
            assert_eq!(p.size, [24, 24]);
            let plane = 24 * 24;
            for (i, &class) in p.mask.iter().enumerate() {
                let (r, g) = (p.image[i], p.image[plane + i]);
                match class {
                    IGNORE => assert_eq!((r, g), (0.0, 0.0), "padding is black"),
                    // A photo flipped or cropped apart from its mask would show the other
                    // class's colour (the resampled edge blends the two, about half each).
                    1 => assert!(g < 0.9, "seed {seed}: class 1 over green"),
                    2 => assert!(r < 0.9, "seed {seed}: class 2 over red"),
                    other => panic!("class {other}"),
                }
            }
        }
        let eval = prepare(&pairs[0], &t, None).unwrap();
        assert_eq!(eval.size, [30, 40]);
        assert_eq!(eval.mask, mask);
        // A photo without mask is named.
        std::fs::write(dir.path().join("images/b.png"), b"x").unwrap();
        let err = mask_pairs(dir.path()).unwrap_err().to_string();
        assert!(err.contains("b.png has no mask"), "{err}");
    }
}
