//! The training augmentations' half of parity: `zoo_trainer::augment` against
//! `torchvision.transforms.v2` on `uint8` images cut from a photo (`augment_ref.py`): every
//! operation of the automatic augmentations at fixed magnitudes (nearest and bilinear where it
//! samples), ColorJitter's hue, AugMix's mixing with torchvision's own draws, RandomErasing,
//! MixUp and CutMix with their drawn parameters, and the augmentation spaces' operations,
//! magnitudes and AutoAugment's sub-policies.

use std::path::Path;

use anyhow::{Context, Result, bail};
use image::RgbImage;
use serde_json::Value;
use zoo_trainer::augment::batch::{Mixing, erase};
use zoo_trainer::augment::ops::{self, Op, Resample};
use zoo_trainer::augment::policy::{self, AutoAugmentPolicy, Space};

use crate::references::read_f32;

/// The most a `uint8` output may differ from torchvision's, in levels: PyTorch's vectorised
/// `f32` kernels and the zoo's may round a value on the other side of a level.
const MAX_LEVELS: u8 = 1;
/// The most a float output (erasing, MixUp, CutMix, soft labels) may differ.
const MAX_FLOAT: f32 = 1e-6;

fn read_u8(path: &Path, len: usize) -> Result<Vec<u8>> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    if bytes.len() != len {
        bail!("{}: {} bytes, expected {len}", path.display(), bytes.len());
    }
    Ok(bytes)
}

fn resample(case: &Value) -> Result<Resample> {
    serde_json::from_value(case["resample"].clone()).context("resample")
}

/// Writes torchvision's references into `dir` (once; the photo from `photos`) and compares;
/// `Ok(false)` on a failure.
pub fn check(dir: &Path, photos: &Path, python: &Path) -> Result<bool> {
    crate::references::run_reference_script(
        python,
        "augment_ref.py",
        dir,
        &["--photos".into(), photos.display().to_string()],
    )?;
    let manifest = crate::references::read_manifest(dir)?;
    println!(
        "\ntraining augmentations vs torchvision {} (transforms.v2 on uint8 images):",
        manifest["torchvision"].as_str().unwrap_or("?")
    );
    let mut images = std::collections::HashMap::new();
    for (name, shape) in manifest["images"].as_object().context("images")? {
        let h = shape[0].as_u64().context("height")? as u32;
        let w = shape[1].as_u64().context("width")? as u32;
        let data = read_u8(&dir.join(format!("{name}.u8")), (h * w * 3) as usize)?;
        images.insert(
            name.clone(),
            RgbImage::from_raw(w, h, data).context("image")?,
        );
    }
    let batch_shape: Vec<usize> = serde_json::from_value(manifest["batch"].clone())?;
    let batch = read_f32(&dir.join("batch.f32"), &batch_shape)?;

    // Per kind of case: (cases, failures, the largest difference).
    let mut summary: Vec<(String, usize, usize, f32)> = Vec::new();
    let mut record = |name: String, ok: bool, diff: f32| {
        if !ok {
            println!("  FAIL {name}: differs by {diff}");
        }
        match summary.iter_mut().find(|s| s.0 == name) {
            Some(s) => {
                s.1 += 1;
                s.2 += usize::from(!ok);
                s.3 = s.3.max(diff);
            }
            None => summary.push((name, 1, usize::from(!ok), diff)),
        }
    };
    for case in manifest["cases"].as_array().context("cases")? {
        let kind = case["kind"].as_str().context("kind")?;
        let out = dir.join(case["out"].as_str().context("out")?);
        let image_name = case["image"].as_str().context("image")?;
        let compare_u8 = |ours: &RgbImage| -> Result<(bool, f32)> {
            let theirs = read_u8(&out, ours.as_raw().len())?;
            let max = ours
                .as_raw()
                .iter()
                .zip(&theirs)
                .map(|(a, b)| a.abs_diff(*b))
                .max()
                .unwrap_or(0);
            Ok((max <= MAX_LEVELS, f32::from(max)))
        };
        let compare_f32 = |ours: &[f32], path: &Path| -> Result<(bool, f32)> {
            let theirs = read_f32(path, &[ours.len()])?;
            let max = ours
                .iter()
                .zip(&theirs)
                .map(|(a, b)| (a - b).abs())
                .fold(0.0f32, f32::max);
            Ok((max <= MAX_FLOAT, max))
        };
        match kind {
            "op" => {
                let op: Op = serde_json::from_value(case["op"].clone())
                    .with_context(|| format!("op {}", case["op"]))?;
                let resample = resample(case)?;
                let ours = op.apply(&images[image_name], resample);
                let (ok, diff) = compare_u8(&ours)?;
                let name = format!("{:?}", op);
                let name = name.split('(').next().unwrap_or("?");
                let name = match op {
                    Op::ShearX(_)
                    | Op::ShearY(_)
                    | Op::TranslateX(_)
                    | Op::TranslateY(_)
                    | Op::Rotate(_) => format!("{name} ({resample:?})").to_lowercase(),
                    _ => name.to_lowercase(),
                };
                record(name, ok, diff);
            }
            "hue" => {
                let factor = case["factor"].as_f64().context("factor")?;
                let (ok, diff) = compare_u8(&ops::hue(&images[image_name], factor))?;
                record("hue (colour jitter)".into(), ok, diff);
            }
            "augmix" => {
                let weights: Vec<f32> = serde_json::from_value(case["weights"].clone())?;
                let chains: Vec<Vec<Op>> = serde_json::from_value(case["chains"].clone())?;
                let resample = resample(case)?;
                let ours = policy::augmix(&images[image_name], &weights, &chains, resample);
                let (ok, diff) = compare_u8(&ours)?;
                record(
                    format!("augmix mixing ({resample:?})").to_lowercase(),
                    ok,
                    diff,
                );
            }
            "erase" => {
                let rect: [usize; 4] = serde_json::from_value(case["rect"].clone())?;
                let image = &images[image_name];
                let (h, w) = (image.height() as usize, image.width() as usize);
                let mut chw = model_zoo::transforms::to_chw(image);
                model_zoo::transforms::normalize(
                    &mut chw,
                    [0.485, 0.456, 0.406],
                    [0.229, 0.224, 0.225],
                );
                erase(&mut chw, h, w, rect, 0.0);
                // The erased rectangle must be exact; the rest is normalisation, the
                // zoo's (checked against torchvision's above) within float rounding.
                let (ok, diff) = compare_f32(&chw, &out)?;
                record("random erasing".into(), ok, diff);
            }
            "mix" => {
                let labels: Vec<usize> = serde_json::from_value(case["labels"].clone())?;
                let classes = case["classes"].as_u64().context("classes")? as usize;
                let mixing = if let Some(lam) = case["lam"].as_f64() {
                    Mixing::Mixup(lam)
                } else {
                    Mixing::Cutmix(serde_json::from_value(case["box"].clone())?)
                };
                let shape: [usize; 4] = batch_shape
                    .clone()
                    .try_into()
                    .map_err(|_| anyhow::anyhow!("batch shape"))?;
                let mut images = batch.clone();
                let soft = mixing.apply(&mut images, shape, &labels, classes);
                let (ok_images, diff_images) = compare_f32(&images, &out)?;
                let soft_path = dir.join(case["soft"].as_str().context("soft")?);
                let (ok_soft, diff_soft) = compare_f32(&soft, &soft_path)?;
                let name = match mixing {
                    Mixing::Mixup(_) => "mixup (images, soft labels)",
                    Mixing::Cutmix(_) => "cutmix (images, soft labels)",
                };
                record(
                    name.into(),
                    ok_images && ok_soft,
                    diff_images.max(diff_soft),
                );
            }
            other => bail!("unknown case kind {other:?} in the augmentation manifest"),
        }
    }

    // The augmentation spaces: operations in torchvision's order, and their magnitudes for
    // the crop's size.
    let crop = &images["crop"];
    for (name, space, bins) in [
        ("ta_wide", Space::TrivialAugmentWide, 31),
        ("ra", Space::RandAugment, 31),
        ("autoaugment", Space::AutoAugment, 10),
        ("augmix", Space::AugMix, 10),
    ] {
        let theirs = &manifest["spaces"][name];
        let ops: Vec<String> = space.ops().iter().map(|k| format!("{k:?}")).collect();
        let their_ops: Vec<String> = serde_json::from_value(theirs["ops"].clone())?;
        let mut ok = ops == their_ops;
        if !ok {
            println!("  FAIL {name}: operations {ops:?}, torchvision {their_ops:?}");
        }
        for kind in space.ops() {
            let ours = policy::magnitudes(space, *kind, bins, crop.height(), crop.width());
            let theirs = &theirs["magnitudes"][format!("{kind:?}")];
            let same = match ours {
                None => theirs.is_null(),
                // torchvision's magnitudes are `f32` values; serde_json's float parsing may be a
                // unit of the last `f64` place off, which no `f32` sees.
                Some((values, signed)) => {
                    let as_f32 = |v: Vec<f64>| v.into_iter().map(|x| x as f32).collect::<Vec<_>>();
                    theirs["signed"].as_bool() == Some(signed)
                        && serde_json::from_value::<Vec<f64>>(theirs["values"].clone())
                            .ok()
                            .map(as_f32)
                            == Some(as_f32(values))
                }
            };
            if !same {
                println!("  FAIL {name} {kind:?}: magnitudes differ from torchvision's {theirs}");
            }
            ok &= same;
        }
        record(format!("{name} space"), ok, 0.0);
    }
    for (name, learned) in [
        ("imagenet", AutoAugmentPolicy::Imagenet),
        ("cifar10", AutoAugmentPolicy::Cifar10),
        ("svhn", AutoAugmentPolicy::Svhn),
    ] {
        let ours: Vec<Value> = learned
            .sub_policies()
            .iter()
            .map(|sub| {
                Value::Array(
                    sub.iter()
                        .map(|(kind, p, bin)| serde_json::json!([format!("{kind:?}"), p, bin]))
                        .collect(),
                )
            })
            .collect();
        let ok = Value::Array(ours) == manifest["policies"][name];
        record(format!("autoaugment {name} sub-policies"), ok, 0.0);
    }

    println!(
        "{:<42} {:>6} {:>7} {:>10}  verdict",
        "check", "cases", "failed", "max diff"
    );
    let mut all_ok = true;
    for (name, cases, failed, diff) in &summary {
        all_ok &= *failed == 0;
        println!(
            "{name:<42} {cases:>6} {failed:>7} {diff:>10.3e}  {}",
            if *failed == 0 { "ok" } else { "FAIL" }
        );
    }
    println!(
        "(uint8 outputs in levels, at most {MAX_LEVELS}; float outputs at most {MAX_FLOAT:e})"
    );
    Ok(all_ok)
}
