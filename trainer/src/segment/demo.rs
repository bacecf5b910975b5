//! A small segmentation dataset drawn procedurally, with its masks, so that segmentation
//! training runs offline: each photo holds one to three shapes (of the classification demo's,
//! `crate::demo`) of random colour, size, place and rotation on a two-colour gradient with
//! pixel noise; its mask gives each pixel its shape's class (1 for the first shape kind, ...)
//! or 0 for the background. Written as `train/{images,masks}`, `val/{images,masks}` and
//! `classes.txt`, the layout `zoo-train train-segmentation` reads.

use std::f32::consts::TAU;
use std::path::{Path, PathBuf};

use image::{GrayImage, Luma, Rgb, RgbImage};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::demo::{SHAPES, distance, inside, random_colour, write_dataset};
use crate::error::TrainError;

/// What to generate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MaskDemoConfig {
    /// Shape kinds, 1 to 10 (classes: these and the background).
    pub shapes: usize,
    /// Training images.
    pub train: usize,
    /// Validation images.
    pub val: usize,
    /// Side of the square images.
    pub size: u32,
    /// Seed: the same seed writes the same files.
    pub seed: u64,
}

impl Default for MaskDemoConfig {
    /// 3 shape kinds (4 classes), 240 + 60 images of 64x64.
    fn default() -> Self {
        Self {
            shapes: 3,
            train: 240,
            val: 60,
            size: 64,
            seed: 0,
        }
    }
}

/// Writes the dataset into `root` (staged beside it and renamed into place; a complete one of
/// the same configuration, recorded in `root/demo.json`, is kept).
pub fn generate_masks(root: &Path, config: &MaskDemoConfig) -> Result<PathBuf, TrainError> {
    if !(1..=SHAPES.len()).contains(&config.shapes) {
        return Err(TrainError::Config(format!(
            "the mask demo has 1 to {} shape kinds, not {}",
            SHAPES.len(),
            config.shapes
        )));
    }
    if !(16..=1024).contains(&config.size) || config.train == 0 || config.val == 0 {
        return Err(TrainError::Config(format!(
            "the mask demo needs images of 16 to 1024 pixels and at least one of each split, \
             not {config:?}"
        )));
    }
    let stamp = format!("{config:?}\n");
    write_dataset(root, &stamp, |tmp| {
        let mut rng = StdRng::seed_from_u64(config.seed);
        for (split, count) in [("train", config.train), ("val", config.val)] {
            for sub in ["images", "masks"] {
                let dir = tmp.join(split).join(sub);
                std::fs::create_dir_all(&dir).map_err(|e| TrainError::io(&dir, e))?;
            }
            for i in 0..count {
                let (photo, mask) = draw_scene(config.shapes, config.size, &mut rng);
                let file = |sub: &str| tmp.join(split).join(sub).join(format!("{i:05}.png"));
                for (path, result) in [
                    (file("images"), photo.save(file("images"))),
                    (file("masks"), mask.save(file("masks"))),
                ] {
                    result.map_err(|e| TrainError::Image {
                        path,
                        message: e.to_string(),
                    })?;
                }
            }
        }
        let mut classes = String::from("background\n");
        for shape in &SHAPES[..config.shapes] {
            classes.push_str(shape);
            classes.push('\n');
        }
        let file = tmp.join("classes.txt");
        std::fs::write(&file, classes).map_err(|e| TrainError::io(&file, e))
    })
}

/// One photo and its mask: one to three shapes, later ones over earlier ones.
pub fn draw_scene(shapes: usize, size: u32, rng: &mut StdRng) -> (RgbImage, GrayImage) {
    let s = size as f32;
    let bg_a = random_colour(rng);
    let bg_b = random_colour(rng);
    let (gs, gc) = rng.random_range(0.0..TAU).sin_cos();
    struct Placed {
        class: u8,
        colour: [f32; 3],
        cx: f32,
        cy: f32,
        scale: f32,
        sin: f32,
        cos: f32,
    }
    let count = rng.random_range(1..=3);
    let placed: Vec<Placed> = (0..count)
        .map(|_| {
            let kind = rng.random_range(0..shapes);
            let mut colour = random_colour(rng);
            for _ in 0..20 {
                if distance(colour, bg_a) > 0.6 && distance(colour, bg_b) > 0.6 {
                    break;
                }
                colour = random_colour(rng);
            }
            let scale = rng.random_range(0.12..0.28) * s;
            let (sin, cos) = rng.random_range(0.0..TAU).sin_cos();
            Placed {
                class: kind as u8 + 1,
                colour,
                cx: rng.random_range(scale..(s - scale).max(scale + 1.0)),
                cy: rng.random_range(scale..(s - scale).max(scale + 1.0)),
                scale,
                sin,
                cos,
            }
        })
        .collect();
    let mut mask = GrayImage::new(size, size);
    // 3x3 supersampling: anti-aliased edges in the photo, the majority class in the mask.
    const SUB: [f32; 3] = [-1.0 / 3.0, 0.0, 1.0 / 3.0];
    let noise = |rng: &mut StdRng| {
        let u1: f32 = rng.random_range(f32::EPSILON..1.0);
        let u2: f32 = rng.random();
        0.04 * (-2.0 * u1.ln()).sqrt() * (TAU * u2).cos()
    };
    let mut photo = RgbImage::new(size, size);
    for py in 0..size {
        for px in 0..size {
            let (fx, fy) = (px as f32 + 0.5, py as f32 + 0.5);
            let t = (((fx / s - 0.5) * gc + (fy / s - 0.5) * gs) + 0.5).clamp(0.0, 1.0);
            let mut colour = [0.0f32; 3];
            for c in 0..3 {
                colour[c] = bg_a[c] * (1.0 - t) + bg_b[c] * t;
            }
            let mut class = 0u8;
            for shape in &placed {
                let mut coverage = 0.0;
                for dy in SUB {
                    for dx in SUB {
                        let (x, y) = (
                            (fx + dx - shape.cx) / shape.scale,
                            (fy + dy - shape.cy) / shape.scale,
                        );
                        let (lx, ly) = (
                            x * shape.cos + y * shape.sin,
                            -x * shape.sin + y * shape.cos,
                        );
                        if inside(SHAPES[usize::from(shape.class) - 1], lx, ly) {
                            coverage += 1.0 / 9.0;
                        }
                    }
                }
                for (c, fg) in colour.iter_mut().zip(shape.colour) {
                    *c = *c * (1.0 - coverage) + fg * coverage;
                }
                if coverage >= 0.5 {
                    class = shape.class;
                }
            }
            let mut out = [0u8; 3];
            for c in 0..3 {
                out[c] = ((colour[c] + noise(rng)).clamp(0.0, 1.0) * 255.0).round() as u8;
            }
            photo.put_pixel(px, py, Rgb(out));
            mask.put_pixel(px, py, Luma([class]));
        }
    }
    (photo, mask)
}
