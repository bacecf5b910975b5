//! Segmentation's side of the transforms: torchvision's `SemanticSegmentation` eval transform
//! (resize the shorter side, no crop), the class of every pixel out of a model's scores, Pascal
//! VOC's colour palette, and the mask laid over the photo. What `examples/segment.rs` and
//! `zoo-train segment` share.

use burn::module::Module;
use burn::tensor::{Device, Tensor, TensorData};
use image::{DynamicImage, GrayImage, RgbImage, imageops};

use super::{normalize, resize_shorter, to_chw};
use crate::error::InputError;
use crate::segmentation::{SegmentationModel, SegmentationTransform};

/// One image through torchvision's `SemanticSegmentation` transform, as a `[1, 3, h, w]`
/// tensor: the shorter side resized to `transform.resize` (PIL's antialiased bilinear), scaled
/// to `[0, 1]`, normalised.
pub fn segmentation_tensor(
    image: &DynamicImage,
    transform: &SegmentationTransform,
    device: &Device,
) -> Tensor<4> {
    let resized = resize_shorter(
        &image.to_rgb8(),
        transform.resize as u32,
        transform.interpolation,
    );
    let (w, h) = resized.dimensions();
    let mut chw = to_chw(&resized);
    normalize(&mut chw, transform.mean, transform.std);
    Tensor::from_data(TensorData::new(chw, [1, 3, h as usize, w as usize]), device)
}

/// The class of every pixel: the argmax over the classes of `scores`, one row-major map per
/// image, with its `[height, width]`.
///
/// # Shapes
/// - `scores`: `[batch, num_classes, height, width]`
pub fn class_maps(scores: Tensor<4>) -> Result<Vec<ClassMap>, InputError> {
    let [batch, _, h, w] = scores.dims();
    // Argmax as floats (Burn's int readback differs by backend), exact for any class index
    // below 2^24.
    let classes = crate::read_back(scores.argmax(1).float().reshape([batch, h * w]), "argmax")?
        .convert::<f32>()
        .try_into_vec::<f32>()
        .unwrap_or_else(|e| unreachable!("converted to f32: {e:?}"));
    Ok(classes
        .chunks(h * w)
        .map(|c| ClassMap {
            width: w,
            height: h,
            classes: c.iter().map(|&v| v as usize).collect(),
        })
        .collect())
}

/// The class of every pixel of one image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClassMap {
    /// Width in pixels.
    pub width: usize,
    /// Height in pixels.
    pub height: usize,
    /// Row-major class indices.
    pub classes: Vec<usize>,
}

impl ClassMap {
    /// The share of pixels of each class (`num_classes` entries, summing to 1).
    pub fn class_shares(&self, num_classes: usize) -> Vec<f64> {
        let mut counts = vec![0usize; num_classes];
        for &c in &self.classes {
            if let Some(count) = counts.get_mut(c) {
                *count += 1;
            }
        }
        let total = self.classes.len().max(1) as f64;
        counts.into_iter().map(|c| c as f64 / total).collect()
    }

    /// The map as an index PNG's pixels (VOC's `SegmentationClass` layout: value = class), or
    /// `None` for a class above 255.
    pub fn index_image(&self) -> Option<GrayImage> {
        let bytes = self
            .classes
            .iter()
            .map(|&c| u8::try_from(c).ok())
            .collect::<Option<Vec<u8>>>()?;
        GrayImage::from_raw(self.width as u32, self.height as u32, bytes)
    }

    /// The map in Pascal VOC's colours ([`voc_palette`]; classes past 255 wrap around).
    pub fn colored(&self) -> RgbImage {
        let palette = voc_palette();
        RgbImage::from_fn(self.width as u32, self.height as u32, |x, y| {
            let class = self.classes[y as usize * self.width + x as usize];
            image::Rgb(palette[class % 256])
        })
    }

    /// The map resized to `width` x `height` with nearest-neighbour sampling (back to a
    /// photo's own size).
    pub fn resized(&self, width: usize, height: usize) -> ClassMap {
        if (width, height) == (self.width, self.height) {
            return self.clone();
        }
        let classes = (0..height)
            .flat_map(|y| {
                let sy = (y * self.height / height.max(1)).min(self.height - 1);
                (0..width).map(move |x| {
                    let sx = (x * self.width / width.max(1)).min(self.width - 1);
                    self.classes[sy * self.width + sx]
                })
            })
            .collect();
        ClassMap {
            width,
            height,
            classes,
        }
    }
}

/// Pascal VOC's colour map (`VOCdevkit`'s `labelcolormap`): class `i`'s colour from the bits
/// of `i`, spread over the three channels from the top bit down; 255 (VOC's "ignore") is
/// `(224, 224, 192)`.
pub fn voc_palette() -> [[u8; 3]; 256] {
    let mut palette = [[0u8; 3]; 256];
    for (i, color) in palette.iter_mut().enumerate() {
        let mut c = i;
        for j in 0..8 {
            for (channel, value) in color.iter_mut().enumerate() {
                *value |= (((c >> channel) & 1) as u8) << (7 - j);
            }
            c >>= 3;
        }
    }
    palette
}

/// `colors` laid over `photo` (resized to the photo's size first if needed) with opacity
/// `alpha` in `[0, 1]`; background pixels (class 0, black in [`voc_palette`]) keep the photo.
pub fn overlay(photo: &RgbImage, map: &ClassMap, alpha: f32) -> RgbImage {
    let (w, h) = photo.dimensions();
    let map = map.resized(w as usize, h as usize);
    let colors = map.colored();
    let alpha = alpha.clamp(0.0, 1.0);
    let mut out = photo.clone();
    for ((pixel, color), &class) in out.pixels_mut().zip(colors.pixels()).zip(&map.classes) {
        if class == 0 {
            continue;
        }
        for c in 0..3 {
            let blended = f32::from(pixel[c]) * (1.0 - alpha) + f32::from(color[c]) * alpha;
            pixel[c] = blended.round() as u8;
        }
    }
    out
}

/// What [`segment`] makes of one photo.
#[derive(Debug, Clone)]
pub struct Segmented {
    /// The class of every pixel at the photo's own size (the model's map, resized with
    /// nearest-neighbour sampling).
    pub map: ClassMap,
    /// The share of pixels of each class.
    pub shares: Vec<f64>,
}

/// Segments one photo: the eval transform, the model (its `out`), the argmax, and the map back
/// at the photo's size. An error for what the model or its device cannot take.
pub fn segment(
    model: &SegmentationModel,
    photo: &DynamicImage,
    transform: &SegmentationTransform,
) -> Result<Segmented, InputError> {
    let device = model.devices().into_iter().next().unwrap_or_default();
    let x = segmentation_tensor(photo, transform, &device);
    let scores = model.try_forward(x)?;
    let map = class_maps(scores)?
        .pop()
        .unwrap_or_else(|| unreachable!("one image in, one map out"))
        .resized(photo.width() as usize, photo.height() as usize);
    let shares = map.class_shares(model.num_classes());
    Ok(Segmented { map, shares })
}

/// Writes what a segmentation of `photo` shows into `dir`: `<stem>_mask.png` (the classes in
/// VOC's colours), `<stem>_overlay.png` (the mask over the photo at opacity `alpha`) and, for
/// at most 256 classes, `<stem>_classes.png` (the class indices, VOC's `SegmentationClass`
/// layout, what `zoo-train train-segmentation` reads as a mask). Returns the files written.
pub fn save_outputs(
    dir: &std::path::Path,
    stem: &str,
    photo: &RgbImage,
    map: &ClassMap,
    alpha: f32,
) -> Result<Vec<std::path::PathBuf>, image::ImageError> {
    let mut written = Vec::new();
    let mut save = |what: &str, result: Result<(), image::ImageError>| {
        result.map(|()| written.push(dir.join(format!("{stem}_{what}.png"))))
    };
    let file = |what: &str| dir.join(format!("{stem}_{what}.png"));
    save("mask", map.colored().save(file("mask")))?;
    save("overlay", overlay(photo, map, alpha).save(file("overlay")))?;
    if let Some(index) = map.index_image() {
        save("classes", index.save(file("classes")))?;
    }
    Ok(written)
}

/// `image` resized to `width` x `height` with nearest-neighbour sampling, for masks read from
/// files (a colour or index PNG the size of its photo).
pub fn resize_mask(image: &GrayImage, width: u32, height: u32) -> GrayImage {
    imageops::resize(image, width, height, imageops::FilterType::Nearest)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_palette_is_voc_s() {
        let palette = voc_palette();
        assert_eq!(palette[0], [0, 0, 0]);
        assert_eq!(palette[1], [128, 0, 0]); // aeroplane
        assert_eq!(palette[2], [0, 128, 0]);
        assert_eq!(palette[15], [192, 128, 128]); // person
        assert_eq!(palette[20], [0, 64, 128]); // tvmonitor
        assert_eq!(palette[255], [224, 224, 192]); // ignore
    }

    #[test]
    fn maps_share_resize_and_overlay() {
        let map = ClassMap {
            width: 2,
            height: 2,
            classes: vec![0, 1, 1, 3],
        };
        assert_eq!(map.class_shares(4), [0.25, 0.5, 0.0, 0.25]);
        let big = map.resized(4, 2);
        assert_eq!(big.classes, [0, 0, 1, 1, 1, 1, 3, 3]);
        assert_eq!(map.index_image().unwrap().into_raw(), [0, 1, 1, 3]);
        let photo = RgbImage::from_pixel(4, 4, image::Rgb([100, 100, 100]));
        let blended = overlay(&photo, &map, 0.5);
        assert_eq!(blended.get_pixel(0, 0).0, [100, 100, 100]); // background kept
        assert_eq!(blended.get_pixel(2, 0).0, [114, 50, 50]); // aeroplane red over grey
    }

    #[test]
    fn argmax_per_pixel() {
        let device = crate::device::test_device();
        // Two classes on a 1x3 map: class 1 wins in the middle only.
        let scores = Tensor::<4>::from_data(
            TensorData::new(vec![1.0f32, 0.0, 2.0, 0.0, 5.0, 1.0], [1, 2, 1, 3]),
            &device,
        );
        let maps = class_maps(scores).unwrap();
        assert_eq!(maps[0].classes, [0, 1, 0]);
    }
}
