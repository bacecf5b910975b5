//! The segmentation models' half of parity: torchvision's six (`segmentation_ref.py`: random
//! weights, randomised BatchNorm, no constant parameter left, float64 references) imported
//! strictly into `model_zoo::segmentation` on every backend, `out` and `aux` compared at the
//! logits' tolerance; the same file into the model without its aux head (which ignores those
//! keys); and the registry's metadata against the installed torchvision's.

use std::path::Path;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use burn::tensor::{Tensor, TensorData};
use model_zoo::Backend;
use model_zoo::segmentation::{self, SegmentationConfig, SegmentationInfo};
use serde_json::Value;
use zoo_import::TorchImport;

use crate::parity::{Row, compare, print_row, rows_or_error, shape_of};
use crate::references::{read_f32, read_manifest, run_reference_script};

/// Writes the references into `dir` (once per model) and checks every model on every backend,
/// the full-size case where `full_size` says so, else the small one. Returns the rows and the
/// registry's differences from torchvision's metadata.
pub fn check_all(
    dir: &Path,
    python: &Path,
    backends: &[Backend],
    full_size: impl Fn(Backend) -> bool,
) -> Result<(Vec<Row>, Vec<String>)> {
    let names: Vec<String> = segmentation::models().map(|m| m.name.to_string()).collect();
    run_reference_script(python, "segmentation_ref.py", dir, &names)?;
    let mut rows = Vec::new();
    let mut problems = Vec::new();
    for info in segmentation::models() {
        let folder = dir.join(info.name);
        let manifest = read_manifest(&folder)?;
        problems.extend(metadata_differences(info, &manifest));
        for &backend in backends {
            let started = Instant::now();
            let full = full_size(backend);
            let outcome =
                std::panic::catch_unwind(|| check(info, backend, full, &folder, &manifest));
            for row in rows_or_error(info.name, backend, outcome) {
                print_row(&row, started.elapsed().as_secs_f32());
                rows.push(row);
            }
        }
    }
    Ok((rows, problems))
}

/// One model on one backend: `out` and `aux` of each case, and on Flex the model without its
/// aux head loading the same file.
fn check(
    info: &SegmentationInfo,
    backend: Backend,
    full: bool,
    dir: &Path,
    manifest: &Value,
) -> Result<Vec<Row>> {
    let device = backend.device()?;
    let num_classes = manifest["num_classes"]
        .as_u64()
        .context("manifest lacks num_classes")? as usize;
    let aux_loss = manifest["aux_loss"].as_bool().context("aux_loss")?;
    let weights = dir.join(manifest["state_dict"].as_str().context("state_dict")?);
    let config = SegmentationConfig::new(info.arch).with_num_classes(num_classes);
    let (model, _) = TorchImport::new(&weights)
        .model_name(info.name)
        .load_into(config.clone().with_aux_loss(aux_loss).init(&device)?)?;
    let parameters = model_zoo::num_parameters(&model) as u64;
    if manifest["parameters"].as_u64() != Some(parameters) {
        bail!(
            "parameter count {parameters} differs from PyTorch's {}",
            manifest["parameters"]
        );
    }
    let role = if full { "full" } else { "small" };
    let mut rows = Vec::new();
    for case in manifest["cases"].as_array().context("cases")? {
        if case["role"].as_str() != Some(role) {
            continue;
        }
        let input_shape = shape_of(&case["input_shape"])?;
        let input = read_f32(
            &dir.join(case["input"].as_str().context("input")?),
            &input_shape,
        )?;
        let x = Tensor::<4>::from_data(TensorData::new(input, input_shape.clone()), &device);
        let got = model.try_forward_with_aux(x.clone())?;
        let mut heads = vec![("out", Some(got.out))];
        if aux_loss {
            heads.push(("aux", got.aux));
        }
        for (head, map) in heads {
            let map = map.with_context(|| format!("no `{head}` map"))?;
            rows.push(compare_map(
                info.name,
                backend,
                &input_shape,
                dir,
                case,
                head,
                map,
            )?);
        }
        // A model built without the aux head (inference) loads the same file, the aux keys
        // ignored, and gives the same `out`; on Flex, where it costs one forward.
        if aux_loss && backend == Backend::Flex {
            let (plain, report) = TorchImport::new(&weights)
                .model_name(info.name)
                .load_into(config.init(&device)?)?;
            if report.ignored == 0 {
                bail!("the model without aux head ignored no key of the file");
            }
            let mut row = compare_map(
                info.name,
                backend,
                &input_shape,
                dir,
                case,
                "out",
                plain.try_forward(x)?,
            )?;
            row.note = "out, built without aux (aux keys ignored)".into();
            rows.push(row);
        }
    }
    if rows.is_empty() {
        bail!("the manifest has no {role} case");
    }
    Ok(rows)
}

/// The row of one output map against the case's reference (`out` or `aux`).
fn compare_map(
    name: &str,
    backend: Backend,
    input_shape: &[usize],
    dir: &Path,
    case: &Value,
    head: &str,
    map: Tensor<4>,
) -> Result<Row> {
    let shape = shape_of(&case[format!("{head}_shape")])?;
    if map.dims().to_vec() != shape {
        bail!("`{head}` is {:?}, torchvision's {shape:?}", map.dims());
    }
    let expected = read_f32(
        &dir.join(case[head].as_str().with_context(|| format!("no {head}"))?),
        &shape,
    )?;
    let values = model_zoo::read_back(map.flatten::<2>(0, 3), head)?
        .try_to_vec::<f32>()
        .map_err(|e| anyhow::anyhow!("reading `{head}` back: {e:?}"))?;
    let mut row = compare(name, backend, input_shape, &values, &expected)?;
    row.note = head.to_string();
    Ok(row)
}

/// The registry entry against torchvision's metadata in the manifest: one line per
/// difference.
fn metadata_differences(info: &SegmentationInfo, manifest: &Value) -> Vec<String> {
    let mut problems = Vec::new();
    let Some(published) = manifest["weights"].as_array() else {
        return vec![format!(
            "{}: the manifest has no weights metadata",
            info.name
        )];
    };
    if published.len() != info.weights.len() {
        problems.push(format!(
            "{}: {} weights in the registry, torchvision has {}",
            info.name,
            info.weights.len(),
            published.len()
        ));
    }
    for meta in published {
        let name = meta["name"].as_str().unwrap_or("?");
        let Some(w) = info.weights.iter().find(|w| w.name == name) else {
            problems.push(format!("{}: weights {name} missing", info.name));
            continue;
        };
        let mut differ = |field: &str, ours: String, theirs: &Value| {
            let theirs = match theirs {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            if ours != theirs {
                problems.push(format!(
                    "{}.{name}: {field} is {ours}, torchvision's {theirs}",
                    info.name
                ));
            }
        };
        let float = |v: f64| serde_json::Number::from_f64(v).map_or(Value::Null, Value::Number);
        differ("url", w.url.to_string(), &meta["url"]);
        differ("num_params", info.params.to_string(), &meta["num_params"]);
        differ("gflops", float(info.gflops).to_string(), &meta["gflops"]);
        differ(
            "file_size",
            float(w.file_size_mb).to_string(),
            &meta["file_size_mb"],
        );
        differ("miou", float(w.miou).to_string(), &meta["miou"]);
        differ(
            "pixel_acc",
            float(w.pixel_acc).to_string(),
            &meta["pixel_acc"],
        );
        differ("default", w.is_default.to_string(), &meta["default"]);
        differ(
            "resize",
            format!("[{}]", w.transform.resize),
            &meta["resize"],
        );
        let floats = |v: [f32; 3]| {
            Value::Array(
                v.iter()
                    .map(|&x| float(f64::from(x as f64 as f32)))
                    .collect(),
            )
        };
        let rounded = |v: &Value| {
            Value::Array(
                v.as_array()
                    .map(|a| {
                        a.iter()
                            .map(|x| float(f64::from(x.as_f64().unwrap_or(f64::NAN) as f32)))
                            .collect()
                    })
                    .unwrap_or_default(),
            )
        };
        differ(
            "mean",
            floats(w.transform.mean).to_string(),
            &rounded(&meta["mean"]),
        );
        differ(
            "std",
            floats(w.transform.std).to_string(),
            &rounded(&meta["std"]),
        );
        let categories: Vec<&str> = meta["categories"]
            .as_array()
            .map(|c| c.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        if categories != w.categories.names() {
            problems.push(format!("{}.{name}: categories differ", info.name));
        }
        if !w.url.ends_with(&format!("-{}.pth", w.checksum.hex())) {
            problems.push(format!(
                "{}.{name}: checksum not the file name's",
                info.name
            ));
        }
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The registry's own values pass, and one changed value of each kind is reported.
    #[test]
    fn metadata_differences_are_found() {
        let info = segmentation::model_info("fcn_resnet50").unwrap();
        let w = &info.weights[0];
        let meta = serde_json::json!({
            "name": w.name, "url": w.url, "num_params": info.params, "gflops": info.gflops,
            "file_size_mb": w.file_size_mb, "miou": w.miou, "pixel_acc": w.pixel_acc,
            "default": true, "resize": [520], "mean": [0.485, 0.456, 0.406],
            "std": [0.229, 0.224, 0.225], "categories": w.categories.names(),
        });
        let manifest = |meta: Value| serde_json::json!({ "weights": [meta] });
        assert_eq!(
            metadata_differences(info, &manifest(meta.clone())),
            Vec::<String>::new()
        );
        for (field, value) in [
            ("num_params", serde_json::json!(1)),
            ("gflops", serde_json::json!(152.7)),
            ("miou", serde_json::json!(60.4)),
            ("resize", serde_json::json!([513])),
            ("std", serde_json::json!([0.229, 0.224, 0.226])),
            ("categories", serde_json::json!(["a"])),
        ] {
            let mut changed = meta.clone();
            changed[field] = value;
            let problems = metadata_differences(info, &manifest(changed));
            assert_eq!(problems.len(), 1, "{field}: {problems:?}");
        }
    }
}
