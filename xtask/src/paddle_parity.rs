//! Parity of PaddlePaddle weights: `xtask/python/paddle_reference.py` saves Paddle ResNets
//! (`paddle.vision.models` and the dygraph tutorial's, random weights) as `.pdparams` with their
//! logits; every backend here loads each file with `PaddleImport` into the zoo's ResNet and must
//! reproduce the logits, at the same tolerance as PyTorch's references.

use std::path::Path;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use model_zoo::{Architecture, Backend};
use zoo_import::PaddleImport;

use crate::parity::{Row, cases_for, compare, print_row, read_back, read_case, rows_or_error};
use crate::references::{read_manifest, run_reference_script};

/// The reference cases, as `paddle_reference.py` names them: layout, depth, and the one with 17
/// classes saved in pickle protocol 2.
const CASES: [&str; 8] = [
    "vision_18",
    "vision_50",
    "vision_101",
    "vision_152",
    "tutorial_50",
    "tutorial_101",
    "tutorial_152",
    "tutorial_50_c17",
];

/// Writes missing references under `refs` and checks every case on every backend, printing each
/// row as it comes.
pub fn check_all(
    refs: &Path,
    python: &Path,
    backends: &[Backend],
    full_size: impl Fn(Backend) -> bool,
) -> Result<Vec<Row>> {
    let cases: Vec<String> = CASES.iter().map(|c| c.to_string()).collect();
    run_reference_script(python, "paddle_reference.py", refs, &cases)?;
    let mut rows = Vec::new();
    for case in CASES {
        let dir = refs.join(case);
        let manifest = read_manifest(&dir)?;
        let name = format!("pd.{case}");
        for &backend in backends {
            let started = Instant::now();
            let full = full_size(backend);
            let outcome = std::panic::catch_unwind(|| check(&name, backend, full, &dir, &manifest));
            for row in rows_or_error(&name, backend, outcome) {
                print_row(&row, started.elapsed().as_secs_f32());
                rows.push(row);
            }
        }
    }
    Ok(rows)
}

/// Loads one case's `.pdparams` on `backend` and compares its logits on each input.
fn check(
    name: &str,
    backend: Backend,
    full: bool,
    dir: &Path,
    manifest: &serde_json::Value,
) -> Result<Vec<Row>> {
    let device = backend.device()?;
    let model_name = manifest["model"].as_str().context("manifest lacks model")?;
    let num_classes = manifest["num_classes"]
        .as_u64()
        .context("manifest lacks num_classes")? as usize;
    let layout = manifest["layout"]
        .as_str()
        .context("manifest lacks layout")?;
    let info = model_zoo::model_info(model_name)?;
    let weights = dir.join(manifest["weights"].as_str().context("weights")?);
    let (model, report) = PaddleImport::new(&weights)
        .model_name(model_name)
        .load_into(info.create(num_classes, &device)?)?;
    let wanted = match layout {
        "vision" => "paddle.vision layout",
        _ => "tutorial layout",
    };
    if !report.format.ends_with(wanted) {
        bail!("read as {}, expected the {layout} layout", report.format);
    }
    let parameters = model_zoo::num_parameters(&model) as u64;
    if manifest["parameters"].as_u64() != Some(parameters) {
        bail!(
            "parameter count {parameters} differs from Paddle's {}",
            manifest["parameters"]
        );
    }
    let mut rows = Vec::new();
    for case in cases_for(manifest, full)? {
        let (input_shape, x, expected) = read_case(dir, case, &device)?;
        let got = read_back(model.try_forward(x)?)?;
        rows.push(compare(name, backend, &input_shape, &got, &expected)?);
    }
    Ok(rows)
}
