//! One training step against PyTorch: resnet18 in training mode (BatchNorm on batch statistics),
//! two SGD steps with momentum and weight decay on a fixed batch, cross-entropy. The loss of
//! each step and the updated tensors of the first conv, a middle BatchNorm (affine parameters
//! and running statistics), the stem's and the last BatchNorm's running statistics (PyTorch's
//! unbiased `running_var` update, `layers::BatchNorm`), a late conv and fc must match torch's. The step is the trainer's
//! own: `zoo_trainer::Classifier`'s `TrainStep` and the optimiser `TrainConfig` builds.
//!
//! A second case does the same for `vit_b_32` built for 64x64 inputs (the reference's
//! `train_step.py` says how), in `vit_b_32/` under the same folder: attention, LayerNorm and
//! GELU backward, no BatchNorm.
//!
//! Tolerances: each loss within 1e-4 relative; each updated tensor within 1e-4 of its own scale
//! (`max |torch tensor|`), and its change over the two steps (`after - before`) within 1e-3 of
//! the change's scale, which checks the gradients themselves rather than weights that barely
//! moved.

use std::path::Path;

use anyhow::{Context, Result, bail};
use burn::module::Module;
use burn::store::{BurnToPyTorchAdapter, ModuleSnapshot};
use burn::tensor::{Int, Tensor, TensorData};
use burn::train::TrainStep;
use model_zoo::{Backend, Model};
use zoo_import::TorchImport;
use zoo_trainer::{Classifier, ImageBatch, OptimizerKind, TrainConfig};

use crate::parity::{Row, compare, shape_of};
use crate::references::{read_f32, read_manifest};

/// Relative tolerance on the change of a tensor over the steps.
const DELTA_TOLERANCE: f32 = 1e-3;

/// Writes the PyTorch reference into `dir` unless it is current.
pub fn write_reference(dir: &Path, python: &Path) -> Result<()> {
    crate::references::run_reference_script(python, "train_step.py", dir, &[])
}

fn named_tensors(model: &Model) -> Result<std::collections::BTreeMap<String, Vec<f32>>> {
    model
        .collect(None, Some(Box::new(BurnToPyTorchAdapter)), true)
        .into_iter()
        .map(|tensor| {
            let bytes = tensor
                .to_bytes()
                .map_err(|e| anyhow::anyhow!("reading {}: {e:?}", tensor.name))?;
            let values = bytes
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect();
            Ok((tensor.name, values))
        })
        .collect()
}

/// Two rows: the tensor after the steps, and its change over them (`after - start`).
fn compare_with_delta(
    label: &str,
    backend: Backend,
    key: &str,
    shape: &[usize],
    start: &[f32],
    got: &[f32],
    expected: &[f32],
) -> Result<Vec<Row>> {
    let mut row = compare(label, backend, shape, got, expected)?;
    row.shape = key.to_string();
    let delta =
        |values: &[f32]| -> Vec<f32> { values.iter().zip(start).map(|(a, b)| a - b).collect() };
    let mut delta_row = compare(label, backend, shape, &delta(got), &delta(expected))?;
    delta_row.shape = format!("Δ {key}");
    delta_row.tolerance = delta_row.tolerance / crate::parity::TOLERANCE * DELTA_TOLERANCE;
    let mut rows = vec![row, delta_row];
    if !matches!(backend, Backend::Flex | Backend::NdArray) {
        mark_tf32(&mut rows);
    }
    Ok(rows)
}

/// How close a GPU's update must still be when it is beyond the f32 tolerance: 1% of the
/// update's scale, what TF32 products (10-bit mantissa) leave of a long reduction.
const TF32_TOLERANCE: f32 = 1e-2;

/// On a GPU backend, a tensor beyond the f32 tolerance but within [`TF32_TOLERANCE`] of the
/// update's scale is reported, not failed: CubeCL's autotuner may pick a tensor-core
/// convolution kernel that rounds f32 inputs to TF32 (`cubek-matmul`'s `adjust_dtypes`; PyTorch
/// does the same with cuDNN on Ampere by default), depending on which candidate times fastest
/// in that process. Seen once in three runs on lavapipe: ResNet-18's stem weight gradient off
/// by 4.2e-5 on a 0.059 update, against 1.1e-7 when an f32 kernel wins. Anything further off
/// still fails.
fn mark_tf32(rows: &mut [Row]) {
    let update_scale = rows[1].reference_max.max(1e-3);
    for row in rows.iter_mut() {
        let within_tf32 = row
            .max_diff
            .is_some_and(|d| d <= TF32_TOLERANCE * update_scale);
        if !row.passed() && within_tf32 {
            row.skipped = true;
            row.note = format!(
                "known: beyond the f32 tolerance, within TF32's ({TF32_TOLERANCE:e} of the \
                 {update_scale:.3} update): the autotuner picked a TF32 tensor-core kernel \
                 (docs/src/gpu.md)"
            );
        }
    }
}

/// The cases' folders under the reference folder: resnet18 at its root, then vit_b_32.
pub fn case_dirs(dir: &Path) -> [std::path::PathBuf; 2] {
    [dir.to_path_buf(), dir.join("vit_b_32")]
}

/// The rows of the training-step check of the case in `dir` on `backend`.
pub fn check(backend: Backend, dir: &Path) -> Result<Vec<Row>> {
    let manifest = read_manifest(dir)?;
    let device = backend.device()?.autodiff();
    let num_classes = manifest["num_classes"].as_u64().context("num_classes")? as usize;
    let name = manifest["model"].as_str().context("model")?;
    let label = if name == "resnet18" {
        "train-step".to_string()
    } else {
        format!("train-{name}")
    };
    let label = label.as_str();
    // Built as the registry builds it; the import conforms it to the file (ViT's 64x64
    // position embedding).
    let model = model_zoo::create(name, num_classes, &device)?;
    let (model, _) = TorchImport::new(dir.join("state_dict.pth"))
        .model_name(name)
        .load_into(model)?;
    let before = named_tensors(&model)?;

    let input_shape = shape_of(&manifest["input_shape"])?;
    let input = read_f32(&dir.join("input.f32"), &input_shape)?;
    let bytes = std::fs::read(dir.join("targets.i64"))?;
    let targets: Vec<i64> = bytes
        .chunks_exact(8)
        .map(|c| i64::from_le_bytes(c.try_into().unwrap_or([0; 8])))
        .collect();
    if targets.len() != input_shape[0] {
        bail!(
            "{} targets for a batch of {}",
            targets.len(),
            input_shape[0]
        );
    }
    let batch = ImageBatch::new(
        Tensor::<4>::from_data(TensorData::new(input, input_shape.clone()), &device),
        Tensor::<1, Int>::from_data(TensorData::new(targets, [input_shape[0]]), &device),
    );

    let settings = &manifest["settings"];
    let mut config = TrainConfig::new(name, ".");
    config.optimizer = OptimizerKind::Sgd;
    config.lr = settings["lr"].as_f64().context("lr")?;
    config.momentum = settings["momentum"].as_f64().context("momentum")?;
    config.weight_decay = settings["weight_decay"].as_f64().context("weight_decay")?;
    let steps = settings["steps"].as_u64().context("steps")? as usize;
    let mut optimizer = config.optimizer();
    let mut classifier = Classifier::new(model, 0.0);
    let expected_losses: Vec<f32> = manifest["losses"]
        .as_array()
        .context("losses")?
        .iter()
        .map(|v| v.as_f64().unwrap_or(f64::NAN) as f32)
        .collect();
    let mut rows = Vec::new();
    for step in 0..steps {
        let output = TrainStep::step(&classifier, batch.clone());
        let loss = model_zoo::read_back(output.item.loss.clone(), "the loss")?
            .convert::<f32>()
            .try_into_vec::<f32>()
            .map_err(|e| anyhow::anyhow!("reading the loss: {e:?}"))?;
        let expected = expected_losses.get(step).copied().unwrap_or(f32::NAN);
        let mut row = compare(label, backend, &[], &loss, &[expected])?;
        row.shape = format!("loss, step {}", step + 1);
        rows.push(row);
        classifier = optimizer.step(config.lr, classifier, output.grads);
    }

    // `valid()` folds the running statistics' pending updates in (Burn applies a forward's
    // update to BatchNorm's running state lazily, at the next forward or at `valid()`).
    let after = named_tensors(&classifier.model.valid())?;
    let tensors = manifest["tensors"].as_object().context("tensors")?;
    for (key, entry) in tensors {
        let shape = shape_of(&entry["shape"])?;
        let expected = read_f32(&dir.join(entry["file"].as_str().context("file")?), &shape)?;
        let got = after
            .get(key)
            .with_context(|| format!("the model has no tensor {key}"))?;
        let start = before
            .get(key)
            .with_context(|| format!("no initial {key}"))?;
        let pair = compare_with_delta(label, backend, key, &shape, start, got, &expected)?;
        rows.extend(pair);
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pair(diff: f32) -> Vec<Row> {
        let weight = compare("t", Backend::Wgpu, &[], &[0.115 + diff], &[0.115]).unwrap();
        let mut delta = compare("t", Backend::Wgpu, &[], &[0.059 + diff], &[0.059]).unwrap();
        delta.tolerance = delta.tolerance / crate::parity::TOLERANCE * DELTA_TOLERANCE;
        vec![weight, delta]
    }

    #[test]
    fn tf32_level_errors_are_reported_and_larger_ones_fail() {
        // The error seen on lavapipe: beyond f32's tolerance on the weight, within TF32's.
        let mut rows = pair(4.2e-5);
        mark_tf32(&mut rows);
        assert!(rows[0].skipped && !rows[0].passed(), "{}", rows[0].note);
        assert!(rows[1].passed() && !rows[1].skipped);
        // An f32-grade result passes untouched.
        let mut rows = pair(1e-7);
        mark_tf32(&mut rows);
        assert!(rows.iter().all(|r| r.passed() && !r.skipped));
        // A wrong gradient (5% of the update) still fails.
        let mut rows = pair(3e-3);
        mark_tf32(&mut rows);
        assert!(rows.iter().all(|r| !r.passed() && !r.skipped));
    }
}
