//! A small, non-trivial image-classification dataset drawn procedurally, written as a real
//! ImageFolder of PNGs, so that training works offline out of the box.
//!
//! Each image is one shape (circle, square, triangle, ...) of random colour, size, position and
//! rotation, anti-aliased, on a random two-colour gradient background with a low-contrast
//! distractor blob and Gaussian pixel noise. Classes differ by shape only: colour, size, place
//! and orientation are nuisances the model must learn to ignore.

use std::f32::consts::TAU;
use std::path::{Path, PathBuf};

use image::{Rgb, RgbImage};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::error::TrainError;

/// The shapes, in class order. The first `classes` of them are drawn.
pub const SHAPES: [&str; 10] = [
    "circle",
    "square",
    "triangle",
    "plus",
    "ring",
    "star",
    "crescent",
    "semicircle",
    "bar",
    "frame",
];

/// What to generate.
#[derive(Debug, Clone)]
pub struct DemoConfig {
    /// Number of classes, 2 to 10 (the first of [`SHAPES`]).
    pub classes: usize,
    /// Training images per class.
    pub train_per_class: usize,
    /// Validation images per class.
    pub val_per_class: usize,
    /// Side of the square images.
    pub size: u32,
    /// Seed: the same seed writes the same files.
    pub seed: u64,
}

impl Default for DemoConfig {
    /// 6 classes, 400 + 100 images each (3000 in all), 64x64.
    fn default() -> Self {
        Self {
            classes: 6,
            train_per_class: 400,
            val_per_class: 100,
            size: 64,
            seed: 0,
        }
    }
}

/// Writes `root/train/<shape>/NNNNN.png` and `root/val/<shape>/NNNNN.png`.
///
/// Files are written to a temporary folder beside `root`, which is then renamed into place, so an
/// interrupted run never leaves a half-written dataset behind. An existing complete dataset with
/// the same configuration (recorded in `root/demo.json`) is kept as it is.
pub fn generate(root: &Path, config: &DemoConfig) -> Result<PathBuf, TrainError> {
    if !(2..=SHAPES.len()).contains(&config.classes) {
        return Err(TrainError::Config(format!(
            "the demo dataset has 2 to {} classes, not {}",
            SHAPES.len(),
            config.classes
        )));
    }
    if config.size < 16 {
        return Err(TrainError::Config(format!(
            "demo images must be at least 16 pixels wide, not {}",
            config.size
        )));
    }
    let stamp = format!(
        "{{\"classes\": {}, \"train_per_class\": {}, \"val_per_class\": {}, \"size\": {}, \"seed\": {}}}\n",
        config.classes, config.train_per_class, config.val_per_class, config.size, config.seed
    );
    write_dataset(root, &stamp, |tmp| {
        let mut rng = StdRng::seed_from_u64(config.seed);
        for (split, count) in [
            ("train", config.train_per_class),
            ("val", config.val_per_class),
        ] {
            for shape in &SHAPES[..config.classes] {
                let dir = tmp.join(split).join(shape);
                std::fs::create_dir_all(&dir).map_err(|e| TrainError::io(&dir, e))?;
                for i in 0..count {
                    let image = draw(shape, config.size, &mut rng);
                    let path = dir.join(format!("{i:05}.png"));
                    image.save(&path).map_err(|e| TrainError::Image {
                        path: path.clone(),
                        message: e.to_string(),
                    })?;
                }
            }
        }
        Ok(())
    })
}

/// Writes a generated dataset into `root` with `write` (given the staging folder): staged in a
/// temporary folder beside `root` and renamed into place, so an interrupted run never leaves a
/// half-written dataset; `stamp` (the configuration) is recorded in `root/demo.json`, and a
/// complete dataset with the same stamp is kept as it is.
pub(crate) fn write_dataset(
    root: &Path,
    stamp: &str,
    write: impl FnOnce(&Path) -> Result<(), TrainError>,
) -> Result<PathBuf, TrainError> {
    let stamp_path = root.join("demo.json");
    if std::fs::read_to_string(&stamp_path).is_ok_and(|s| s == stamp) {
        return Ok(root.to_path_buf());
    }
    let parent = root
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(parent).map_err(|e| TrainError::io(parent, e))?;
    let tmp = tempfile::Builder::new()
        .prefix(".demo-")
        .tempdir_in(parent)
        .map_err(|e| TrainError::io(parent, e))?;
    write(tmp.path())?;
    std::fs::write(tmp.path().join("demo.json"), stamp)
        .map_err(|e| TrainError::io(tmp.path(), e))?;
    if root.exists() {
        std::fs::remove_dir_all(root).map_err(|e| TrainError::io(root, e))?;
    }
    let kept = tmp.keep();
    std::fs::rename(&kept, root).map_err(|e| TrainError::io(root, e))?;
    Ok(root.to_path_buf())
}

/// Whether the shape-local point `(x, y)` (the shape spans about `[-1, 1]`) is inside `shape`.
pub(crate) fn inside(shape: &str, x: f32, y: f32) -> bool {
    let r = (x * x + y * y).sqrt();
    match shape {
        "circle" => r < 0.9,
        "square" => x.abs() < 0.75 && y.abs() < 0.75,
        "triangle" => {
            // Equilateral, centred, pointing up (y grows downwards in the image).
            let h = 0.9;
            y < 0.5 * h && y > -h && x.abs() < (y + h) / (1.5 * h) * 0.9
        }
        "plus" => (x.abs() < 0.25 && y.abs() < 0.9) || (y.abs() < 0.25 && x.abs() < 0.9),
        "ring" => (0.55..0.92).contains(&r),
        "star" => {
            let angle = y.atan2(x);
            let spike = (angle * 5.0 / 2.0).cos().abs().powf(4.0);
            r < 0.4 + 0.55 * spike
        }
        "crescent" => r < 0.9 && ((x - 0.45).powi(2) + y * y).sqrt() > 0.7,
        "semicircle" => r < 0.9 && y > 0.0,
        "bar" => x.abs() < 0.95 && y.abs() < 0.22,
        "frame" => {
            let m = x.abs().max(y.abs());
            (0.5..0.8).contains(&m)
        }
        _ => false,
    }
}

pub(crate) fn random_colour(rng: &mut StdRng) -> [f32; 3] {
    [rng.random(), rng.random(), rng.random()]
}

pub(crate) fn distance(a: [f32; 3], b: [f32; 3]) -> f32 {
    a.iter().zip(&b).map(|(a, b)| (a - b).abs()).sum()
}

/// Draws one image of `shape`.
pub fn draw(shape: &str, size: u32, rng: &mut StdRng) -> RgbImage {
    let s = size as f32;
    let bg_a = random_colour(rng);
    let bg_b = random_colour(rng);
    // A shape colour far enough from the background to be visible.
    let mut fg = random_colour(rng);
    for _ in 0..20 {
        if distance(fg, bg_a) > 0.6 && distance(fg, bg_b) > 0.6 {
            break;
        }
        fg = random_colour(rng);
    }
    let gradient_angle: f32 = rng.random_range(0.0..TAU);
    let scale = rng.random_range(0.22..0.42) * s;
    let margin = scale * 0.9;
    let cx = rng.random_range(margin..(s - margin).max(margin + 1.0));
    let cy = rng.random_range(margin..(s - margin).max(margin + 1.0));
    let rotation: f32 = rng.random_range(0.0..TAU);
    let (sin, cos) = rotation.sin_cos();
    // A soft, low-contrast blob elsewhere: clutter that is not the class.
    let blob = (
        rng.random_range(0.0..s),
        rng.random_range(0.0..s),
        rng.random_range(0.1..0.3) * s,
        random_colour(rng),
    );
    // Gaussian pixel noise, sigma 0.04 (Box-Muller).
    let mut noise = || {
        let u1: f32 = rng.random_range(f32::EPSILON..1.0);
        let u2: f32 = rng.random();
        0.04 * (-2.0 * u1.ln()).sqrt() * (TAU * u2).cos()
    };
    let (gs, gc) = gradient_angle.sin_cos();
    // 3x3 supersampling for anti-aliased edges.
    const SUB: [f32; 3] = [-1.0 / 3.0, 0.0, 1.0 / 3.0];
    RgbImage::from_fn(size, size, |px, py| {
        let (fx, fy) = (px as f32 + 0.5, py as f32 + 0.5);
        let t = (((fx / s - 0.5) * gc + (fy / s - 0.5) * gs) + 0.5).clamp(0.0, 1.0);
        let mut colour = [0.0f32; 3];
        for c in 0..3 {
            colour[c] = bg_a[c] * (1.0 - t) + bg_b[c] * t;
        }
        let (bx, by, br, bc) = blob;
        let blob_weight = (-((fx - bx).powi(2) + (fy - by).powi(2)) / (br * br)).exp() * 0.25;
        for c in 0..3 {
            colour[c] = colour[c] * (1.0 - blob_weight) + bc[c] * blob_weight;
        }
        let mut coverage = 0.0;
        for dy in SUB {
            for dx in SUB {
                let (x, y) = ((fx + dx - cx) / scale, (fy + dy - cy) / scale);
                let (lx, ly) = (x * cos + y * sin, -x * sin + y * cos);
                if inside(shape, lx, ly) {
                    coverage += 1.0 / 9.0;
                }
            }
        }
        let mut out = [0u8; 3];
        for c in 0..3 {
            let v = colour[c] * (1.0 - coverage) + fg[c] * coverage + noise();
            out[c] = (v.clamp(0.0, 1.0) * 255.0).round() as u8;
        }
        Rgb(out)
    })
}
