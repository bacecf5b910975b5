//! The preprocessing half of parity: `model_zoo::transforms` against torchvision's own eval
//! transforms (PIL decode, antialiased bilinear resize, center crop) on real photos.

use std::path::Path;

use anyhow::{Context, Result};
use model_zoo::registry::{Interpolation, Preprocess};
use model_zoo::transforms::{load_image, normalize, resize_and_crop, to_chw};

use crate::references::read_f32;

/// Pass when no value of a JPEG differs by more than this before normalisation (2/255): the
/// `image` crate's JPEG decoder and libjpeg differ by a level here and there. Lossless photos
/// must match exactly.
const MAX_RAW_DIFF: f32 = 2.0 / 255.0;

/// Writes torchvision's references into `dir` (once) and compares; `Ok(false)` on a failure.
pub fn check(dir: &Path, python: &Path) -> Result<bool> {
    crate::references::run_reference_script(python, "transforms_ref.py", dir, &[])?;
    let manifest = crate::references::read_manifest(dir)?;
    println!(
        "\npreprocessing vs torchvision {} (PIL), before normalisation in units of 1/255:",
        manifest["torchvision"].as_str().unwrap_or("?")
    );
    println!(
        "{:<22} {:>9} {:>20} {:>9} {:>10} {:>9} {:>14}  verdict",
        "photo", "size", "resize/crop", "max", "mean", ">= 2/255", "max normalised"
    );
    let mut all_ok = true;
    for case in manifest["cases"]
        .as_array()
        .context("manifest lacks cases")?
    {
        let photo = case["photo"].as_str().context("photo")?;
        let resize = case["resize"].as_u64().context("resize")? as usize;
        let crop = case["crop"].as_u64().context("crop")? as usize;
        let shape = [3, crop, crop];
        let raw_ref = read_f32(&dir.join(case["raw"].as_str().context("raw")?), &shape)?;
        let norm_ref = read_f32(&dir.join(case["norm"].as_str().context("norm")?), &shape)?;

        let interpolation = match case["interpolation"].as_str() {
            Some("bilinear") => Interpolation::Bilinear,
            Some("bicubic") => Interpolation::Bicubic,
            other => anyhow::bail!("unknown interpolation {other:?} in the transforms manifest"),
        };
        let image = load_image(dir.join(photo))?;
        let preprocess = Preprocess {
            crop,
            interpolation,
            ..Preprocess::imagenet(resize)
        };
        let raw = to_chw(&resize_and_crop(&image, &preprocess));
        let mut norm = raw.clone();
        normalize(&mut norm, preprocess.mean, preprocess.std);

        let diffs: Vec<f32> = raw
            .iter()
            .zip(&raw_ref)
            .map(|(a, b)| (a - b).abs())
            .collect();
        let max = diffs.iter().copied().fold(0.0f32, f32::max);
        let mean = diffs.iter().sum::<f32>() / diffs.len() as f32;
        let over_one =
            diffs.iter().filter(|&&d| d > 1.5 / 255.0).count() as f32 / diffs.len() as f32;
        let max_norm = norm
            .iter()
            .zip(&norm_ref)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0f32, f32::max);
        // PIL's resampling is reproduced to the integer (model_zoo's `transforms/pil.rs`):
        // a lossless photo must match exactly; a JPEG within the decoders' differences.
        let lossless = !photo.ends_with(".jpg");
        let limit = if lossless { 0.0 } else { MAX_RAW_DIFF + 1e-6 };
        let ok = raw.len() == raw_ref.len() && max <= limit;
        all_ok &= ok;
        println!(
            "{:<22} {:>9} {:>20} {:>9.2} {:>10.4} {:>8.3}% {:>14.4}  {}",
            photo,
            format!("{}x{}", image.width(), image.height()),
            format!(
                "{resize}/{crop} {}",
                format!("{interpolation:?}").to_lowercase()
            ),
            max * 255.0,
            mean * 255.0,
            over_one * 100.0,
            max_norm,
            if ok { "ok" } else { "FAIL" }
        );
    }
    Ok(all_ok)
}
