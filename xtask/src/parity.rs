//! The parity oracle: torchvision in Python writes random-weight references, every compiled
//! backend here imports the same state_dict and must reproduce the logits.
//!
//! Pass when `max |burn - torch| <= 1e-4 * max(1e-3, max |torch|)`: relative to the logits'
//! own scale, also when it is small (AlexNet's default-initialised logits are about 0.03, where
//! DESIGN.md's `max(1, ...)` floor would allow a 0.3% error).

use crate::references::{read_f32, read_manifest, run_reference_script, workspace_root};
use model_zoo::Architecture;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use burn::tensor::{Tensor, TensorData};
use model_zoo::{Backend, available_backends};
use serde_json::Value;
use zoo_import::TorchImport;

/// Relative tolerance of the parity check.
pub const TOLERANCE: f32 = 1e-4;

/// Whether `backend` is checked on the full-size reference cases (224x224 and 160x128, batch
/// 2 and 1), else on the one small case near the model's minimum input. NdArray is about 10x
/// slower than Flex, and wgpu in CI runs on lavapipe (software Vulkan), where every new shape
/// is compiled and autotuned: at full size the two cost 14x Flex's time. Every model is still
/// checked on every backend, and the full-size cases on all of them with `--full`.
fn full_size(backend: Backend, args: &ParityArgs) -> bool {
    args.full || backend == Backend::Flex
}

/// The small case's `[height, width]` for a model: its minimum input, at least 64x48 (so that
/// it is non-square and every stage sees more than one pixel).
/// A model that takes one size only (ViT, MaxViT) asks for 224x224, the size torchvision's
/// builders give it without weights; `reference.py` checks ViT on 2x2 patches of the model
/// resized from it instead (see there), and the case's own shape is what is run.
fn small_size(info: &model_zoo::ModelInfo) -> [usize; 2] {
    if info.input.exact {
        return [224, 224];
    }
    let [h, w] = info.input.min_size;
    [h.max(64), w.max(48)]
}

/// Arguments of `cargo xtask parity`.
#[derive(clap::Args)]
pub struct ParityArgs {
    /// Models to check, by torchvision name (`resnet50`).
    models: Vec<String>,
    /// Check every model the zoo has.
    #[arg(long)]
    all: bool,
    /// Backends to run (default: every compiled one). Repeat or comma-separate.
    #[arg(long, value_delimiter = ',')]
    backend: Vec<Backend>,
    /// Where the PyTorch references live (default: $ZOO_CACHE/parity, else
    /// ~/.cache/burn-model-zoo/parity). Missing ones are generated.
    #[arg(long)]
    refs: Option<PathBuf>,
    /// Python with torch and torchvision (default: the venv made by xtask/python/setup-venv.sh).
    #[arg(long, env = "ZOO_PYTHON")]
    python: Option<PathBuf>,
    /// Also check one training step against PyTorch (implied by --all).
    #[arg(long)]
    train_step: bool,
    /// Also compare the image preprocessing with torchvision's transforms on real photos
    /// (implied by --all).
    #[arg(long)]
    transforms: bool,
    /// Also compare the training augmentations (zoo-train's automatic augmentations, colour
    /// jitter, random erasing, MixUp, CutMix) with torchvision.transforms.v2's (implied by
    /// --all).
    #[arg(long)]
    augment: bool,
    /// Also check torchvision's six segmentation models (`out` and `aux`) and their registry
    /// metadata (implied by --all).
    #[arg(long)]
    segmentation: bool,
    /// Also read a few hundred varied `torch.save` files (zip and legacy, every dtype, views
    /// sharing storages, file names of every stem length, nested checkpoints, torchvision
    /// models) back through zoo-import and compare every tensor bit for bit (implied by --all).
    #[arg(long)]
    torch_files: bool,
    /// Also check PaddlePaddle ResNet files (both layouts) against real Paddle (implied by
    /// --all).
    #[arg(long)]
    paddle: bool,
    /// Python with paddlepaddle (default: the venv made by `xtask/python/setup-venv.sh paddle`).
    #[arg(long, env = "ZOO_PADDLE_PYTHON")]
    paddle_python: Option<PathBuf>,
    /// Check the full-size cases on every backend, not only on Flex (the others check the
    /// small case by default; see `full_size`). For real GPUs.
    #[arg(long)]
    full: bool,
}

pub struct Row {
    /// Not checked, with the reason in `note`: a defect to fix, not a pass.
    pub skipped: bool,
    /// `max |torch logits|`, the scale the tolerance follows (above 1).
    pub reference_max: f32,
    pub model: String,
    pub backend: Backend,
    pub shape: String,
    pub max_diff: Option<f32>,
    pub tolerance: f32,
    pub note: String,
}

impl Row {
    pub fn passed(&self) -> bool {
        self.max_diff.is_some_and(|d| d <= self.tolerance)
    }
}

/// Runs the parity check; `Ok(false)` when any case fails.
pub fn run(args: &ParityArgs) -> Result<bool> {
    let models: Vec<String> = if args.all {
        model_zoo::models().map(|m| m.name.to_string()).collect()
    } else if args.models.is_empty()
        && !args.train_step
        && !args.paddle
        && !args.transforms
        && !args.augment
        && !args.segmentation
        && !args.torch_files
    {
        bail!(
            "name models to check (e.g. `cargo xtask parity resnet50`), or pass --train-step, \
             --transforms, --augment, --segmentation, --torch-files, --paddle or --all"
        );
    } else {
        args.models.clone()
    };
    for name in &models {
        model_zoo::model_info(name)?;
    }
    let backends = if args.backend.is_empty() {
        available_backends()
    } else {
        args.backend.clone()
    };
    let refs = args.refs.clone().unwrap_or_else(default_refs_dir);
    let python = python(args.python.as_deref())?;
    write_references(&refs, &models, &python)?;
    let mut metadata_problems = check_registry_metadata(&models, &python)?;

    println!(
        "\n{:<26} {:<8} {:<16} {:>10} {:>12} {:>10}  verdict",
        "model", "backend", "input", "max |ref|", "max |diff|", "tolerance"
    );
    let mut rows = Vec::new();
    for name in &models {
        let manifest = read_manifest(&refs.join(name))?;
        for &backend in &backends {
            let started = Instant::now();
            let full = full_size(backend, args);
            let outcome = std::panic::catch_unwind(|| {
                check(name, backend, full, &refs.join(name), &manifest)
            });
            let new_rows = rows_or_error(name, backend, outcome);
            for row in new_rows {
                print_row(&row, started.elapsed().as_secs_f32());
                rows.push(row);
            }
        }
    }
    if args.all || args.paddle {
        let python = venv_python("paddle", args.paddle_python.as_deref())?;
        rows.extend(crate::paddle_parity::check_all(
            &refs.join("paddle"),
            &python,
            &backends,
            |backend| full_size(backend, args),
        )?);
    }
    if args.all || args.segmentation {
        let (new_rows, problems) = crate::segmentation::check_all(
            &refs.join("segmentation"),
            &python,
            &backends,
            |backend| full_size(backend, args),
        )?;
        rows.extend(new_rows);
        metadata_problems.extend(problems);
    }
    if args.all || args.train_step {
        let dir = refs.join("train_step");
        crate::train_step::write_reference(&dir, &python)?;
        for case in crate::train_step::case_dirs(&dir) {
            for &backend in &backends {
                let started = Instant::now();
                let outcome = std::panic::catch_unwind(|| crate::train_step::check(backend, &case));
                let new_rows = rows_or_error("train-step", backend, outcome);
                for row in new_rows {
                    print_row(&row, started.elapsed().as_secs_f32());
                    rows.push(row);
                }
            }
        }
    }
    let skipped = rows.iter().filter(|r| r.skipped).count();
    let failed = rows.iter().filter(|r| !r.passed() && !r.skipped).count();
    println!(
        "\n{} checks: {} models{} x {} backends, each on its reference inputs{}",
        rows.len(),
        models.len(),
        if args.all || args.segmentation {
            " and 6 segmentation models"
        } else {
            ""
        },
        backends.len(),
        if args.all || args.train_step {
            ", and a training step"
        } else {
            ""
        }
    );
    let transforms_ok = if args.all || args.transforms {
        crate::transforms::check(&refs.join("transforms"), &python)?
    } else {
        true
    };
    let augment_ok = if args.all || args.augment {
        crate::augment::check(&refs.join("augment"), &refs.join("transforms"), &python)?
    } else {
        true
    };
    let torch_files_ok = if args.all || args.torch_files {
        crate::torch_files::check(&refs.join("torch_files"), &python)?
    } else {
        true
    };
    if metadata_problems.is_empty() {
        let zoo_own = models
            .iter()
            .filter(|m| model_zoo::model_info(m).is_ok_and(|i| !i.torchvision))
            .count();
        let segmenters = if args.all || args.segmentation {
            format!(
                ", {} segmentation models with torchvision's",
                model_zoo::segmentation::models().count()
            )
        } else {
            String::new()
        };
        println!(
            "registry metadata: {} models agree with torchvision, {zoo_own} with their PyTorch \
             reference modules{segmenters}",
            models.len() - zoo_own
        );
    } else {
        println!(
            "registry metadata: {} differences from torchvision",
            metadata_problems.len()
        );
        for problem in &metadata_problems {
            println!("  {problem}");
        }
    }
    println!(
        "parity: {} passed, {failed} failed, {skipped} skipped",
        rows.len() - failed - skipped
    );
    Ok(
        failed == 0
            && metadata_problems.is_empty()
            && transforms_ok
            && augment_ok
            && torch_files_ok,
    )
}

fn default_refs_dir() -> PathBuf {
    if let Some(cache) = std::env::var_os("ZOO_CACHE") {
        return PathBuf::from(cache).join("parity");
    }
    let home = std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_else(std::env::temp_dir);
    home.join(".cache/burn-model-zoo/parity")
}

/// Finds the torch venv's python (creating the venv if needed) unless one was given.
pub fn python(given: Option<&Path>) -> Result<PathBuf> {
    venv_python("torch", given)
}

/// Finds the python of the oracle venv `kind` (`torch` or `paddle`; see
/// `xtask/python/setup-venv.sh`), creating the venv if needed, unless one was given.
pub fn venv_python(kind: &str, given: Option<&Path>) -> Result<PathBuf> {
    if let Some(python) = given {
        return Ok(python.to_path_buf());
    }
    let script = workspace_root().join("xtask/python/setup-venv.sh");
    let output = Command::new("bash")
        .arg(&script)
        .arg(kind)
        .stderr(std::process::Stdio::inherit())
        .output()
        .with_context(|| format!("running {}", script.display()))?;
    if !output.status.success() {
        bail!("{} failed ({})", script.display(), output.status);
    }
    let stdout = String::from_utf8_lossy(&output.stdout);
    let last = stdout
        .lines()
        .last()
        .context("setup-venv.sh printed no python path")?;
    Ok(PathBuf::from(last.trim()))
}

fn write_references(refs: &Path, models: &[String], python: &Path) -> Result<()> {
    if models.is_empty() {
        return Ok(());
    }
    // The module paths of each model's feature stages, for the reference's feature maps. The
    // models are built lazily: `feature_info` reads shapes, no parameter is initialised.
    let device = available_backends()
        .first()
        .context("no backend compiled")?
        .device()?;
    let mut features = serde_json::Map::new();
    for name in models {
        let info = model_zoo::model_info(name)?;
        let model = info.create_for_weights(info.num_classes, &device)?;
        let modules: Vec<Value> = model
            .feature_info()
            .into_iter()
            .map(|stage| Value::String(stage.module))
            .collect();
        features.insert(name.clone(), Value::Array(modules));
    }
    std::fs::create_dir_all(refs).with_context(|| format!("creating {}", refs.display()))?;
    let features_file = refs.join("feature_modules.json");
    std::fs::write(&features_file, Value::Object(features).to_string())
        .with_context(|| format!("writing {}", features_file.display()))?;
    let mut args = vec![
        "--features".to_string(),
        features_file.display().to_string(),
    ];
    for name in models {
        let [h, w] = small_size(model_zoo::model_info(name)?);
        args.push(format!("{name}:{h}x{w}"));
    }
    run_reference_script(python, "reference.py", refs, &args)
}

/// The manifest's cases of the role a backend checks: `"full"` or `"small"`.
pub fn cases_for(manifest: &Value, full: bool) -> Result<Vec<&Value>> {
    let role = if full { "full" } else { "small" };
    Ok(manifest["cases"]
        .as_array()
        .context("manifest lacks cases")?
        .iter()
        .filter(|case| case["role"].as_str() == Some(role))
        .collect())
}

pub fn shape_of(value: &Value) -> Result<Vec<usize>> {
    value
        .as_array()
        .context("shape is not a list")?
        .iter()
        .map(|d| {
            d.as_u64()
                .map(|d| d as usize)
                .context("shape entry is not an integer")
        })
        .collect()
}

/// Imports the reference state_dict on `backend` and compares every case's logits.
fn check(
    name: &str,
    backend: Backend,
    full: bool,
    dir: &Path,
    manifest: &Value,
) -> Result<Vec<Row>> {
    let device = backend.device()?;
    let info = model_zoo::model_info(name)?;
    // The reference is saved as torchvision's published file: it loads into the model
    // torchvision's builder makes for weights.
    let model = info.create_for_weights(info.num_classes, &device)?;
    let weights = dir.join(
        manifest["state_dict"]
            .as_str()
            .context("manifest lacks state_dict")?,
    );
    let (model, _) = TorchImport::new(&weights)
        .model_name(name)
        .load_into(model)?;
    // Counted after the import, which may rebuild an older layout (MNASNet 0.5's first
    // version) as torchvision does.
    let parameters = model_zoo::num_parameters(&model) as u64;
    if manifest["parameters"].as_u64() != Some(parameters) {
        bail!(
            "parameter count {parameters} differs from PyTorch's {}",
            manifest["parameters"]
        );
    }
    // The inference form with BatchNorm folded into the convolutions, where the family has it,
    // must give the same logits.
    // Not on NdArray, the slowest backend, to keep CI inside its budget: there the folded
    // convolutions take the same code path as the unfolded ones, only with a bias, and the
    // fold itself is checked on Flex and wgpu.
    // Nor on wgpu's small case for a model of one input size (MaxViT: a second full-size pass,
    // 80 s on lavapipe) or of over 100M parameters (the second pass of RegNet Y 128GF, VGG and
    // the like): Flex checks their fold at full size.
    let heavy = model.input_spec().exact || parameters > 100_000_000;
    let folded = (model.can_fold_batchnorm()
        && backend != Backend::NdArray
        && !(backend == Backend::Wgpu && heavy && !full))
        .then(|| model.clone().fold_batchnorm());
    // Over 100 GFLOPs an image at 224x224 (RegNet Y 128GF, ViT-H/14), the batch-2 case is
    // checked on its first image only: the batch adds time, not coverage.
    let gflops_224 = info.gflops * (224.0 / info.image_size as f64).powi(2);
    let first_image_only = gflops_224 > 100.0;
    let mut rows = Vec::new();
    for case in cases_for(manifest, full)? {
        let (mut input_shape, mut x, mut expected) = read_case(dir, case, &device)?;
        if first_image_only && input_shape[0] > 1 {
            let per_image = expected.len() / input_shape[0];
            expected.truncate(per_image);
            x = x.narrow(0, 0, 1);
            input_shape[0] = 1;
        }
        // A model of one input size (ViT) is resized to the case's, as the reference was.
        let resized;
        let model = if model.input_spec().exact {
            let [.., h, w] = input_shape[..] else {
                bail!("input shape {input_shape:?} is not 4-d");
            };
            resized = model.clone().for_input_size([h, w])?;
            &resized
        } else {
            &model
        };
        // The logits and, where the case has them, the feature maps of every stage, from one
        // forward.
        let maps = read_maps(dir, case, first_image_only)?;
        let first_case = rows.is_empty();
        let indices: &[usize] = &[];
        let (logits, got_maps) = if maps.is_empty() {
            (model.try_forward(x.clone())?, Vec::new())
        } else {
            model.forward_with_intermediates(x.clone(), indices)?
        };
        rows.push(compare(
            name,
            backend,
            &input_shape,
            &read_back(logits)?,
            &expected,
        )?);
        if !maps.is_empty() {
            let row = compare_maps(
                &format!("{name}+features"),
                backend,
                &input_shape,
                &model.feature_info(),
                got_maps,
                &maps,
            )?;
            rows.push(row);
        }
        // One input shape is enough for the folded form: the fold does not depend on it.
        if let Some(folded) = folded.as_ref().filter(|_| first_case) {
            let (logits, got_maps) = if maps.is_empty() {
                (folded.try_forward(x)?, Vec::new())
            } else {
                folded.forward_with_intermediates(x, indices)?
            };
            rows.push(compare(
                &format!("{name}+fold"),
                backend,
                &input_shape,
                &read_back(logits)?,
                &expected,
            )?);
            if !maps.is_empty() {
                rows.push(compare_maps(
                    &format!("{name}+fold+features"),
                    backend,
                    &input_shape,
                    &folded.feature_info(),
                    got_maps,
                    &maps,
                )?);
            }
        }
    }
    if name == "googlenet" {
        rows.extend(check_googlenet_aux(backend, full, dir, manifest)?);
    }
    rows.extend(check_weights_none(name, backend, full, dir, manifest)?);
    rows.extend(check_in_chans(name, backend, dir, manifest)?);
    Ok(rows)
}

/// The model built for other input channels (`with_in_chans`) loads the 3-channel reference
/// state_dict with its input convolution adapted by the importer (reported), and gives the
/// logits torchvision's model gives with timm's `adapt_input_conv` weight (reference.py's
/// IN_CHANS), on an input of those channels.
fn check_in_chans(name: &str, backend: Backend, dir: &Path, manifest: &Value) -> Result<Vec<Row>> {
    let Some(case) = manifest.get("in_chans").filter(|case| !case.is_null()) else {
        return Ok(Vec::new());
    };
    let channels = case["channels"].as_u64().context("in_chans channels")? as usize;
    let device = backend.device()?;
    let info = model_zoo::model_info(name)?;
    let model = info
        .create_for_weights(info.num_classes, &device)?
        .with_in_chans(channels)?;
    let weights = dir.join(manifest["state_dict"].as_str().context("state_dict")?);
    let (model, report) = TorchImport::new(&weights)
        .model_name(name)
        .load_into(model)?;
    if report.adapted.is_empty() {
        bail!("the 3-channel state_dict loaded into a {channels}-channel model unadapted");
    }
    let (input_shape, x, expected) = read_case(dir, case, &device)?;
    let got = read_back(model.try_forward(x)?)?;
    let mut row = compare(
        &format!("{name}[in_chans={channels}]"),
        backend,
        &input_shape,
        &got,
        &expected,
    )?;
    row.note = format!("adapted {}", report.adapted.join(", "));
    Ok(vec![row])
}

/// GoogLeNet and Inception v3 trained from scratch in PyTorch (`weights=None`, with and without
/// aux heads; see reference.py's WEIGHTS_NONE) load strictly into `create(name, n)` and give
/// PyTorch's logits: no input transform, aux heads conformed to the file. On the first case
/// of the backend's size only: the full-size cases add time, not coverage.
fn check_weights_none(
    name: &str,
    backend: Backend,
    full: bool,
    dir: &Path,
    manifest: &Value,
) -> Result<Vec<Row>> {
    let Some(variants) = manifest.get("weights_none").and_then(Value::as_array) else {
        return Ok(Vec::new());
    };
    let device = backend.device()?;
    let info = model_zoo::model_info(name)?;
    let case = *cases_for(manifest, full)?
        .first()
        .context("manifest has no case")?;
    let mut rows = Vec::new();
    for variant in variants {
        let key = variant["variant"].as_str().context("variant")?;
        let aux_logits = variant["aux_logits"].as_bool().context("aux_logits")?;
        let num_classes = variant["num_classes"].as_u64().context("num_classes")? as usize;
        // `[w=None]`: torchvision's `weights=None` model; `noaux`: `aux_logits=False`.
        let row_name = if aux_logits {
            format!("{name}[w=None]")
        } else {
            format!("{name}[w=None,noaux]")
        };
        let file = dir.join(variant["state_dict"].as_str().context("state_dict")?);
        let (model, _) = TorchImport::new(&file)
            .model_name(&row_name)
            .load_into(info.create(num_classes, &device)?)?;
        let parameters = model_zoo::num_parameters(&model) as u64;
        if variant["parameters"].as_u64() != Some(parameters) {
            bail!(
                "{row_name}: parameter count {parameters} differs from PyTorch's {}",
                variant["parameters"]
            );
        }
        let input_shape = shape_of(&case["input_shape"])?;
        let input = read_f32(
            &dir.join(case["input"].as_str().context("input")?),
            &input_shape,
        )?;
        let logits_file = case["weights_none"][key]
            .as_str()
            .context("case lacks weights_none logits")?;
        let expected = read_f32(&dir.join(logits_file), &[input_shape[0], num_classes])?;
        let x = Tensor::<4>::from_data(TensorData::new(input, input_shape.clone()), &device);
        let got = read_back(model.try_forward(x)?)?;
        rows.push(compare(&row_name, backend, &input_shape, &got, &expected)?);
    }
    Ok(rows)
}

/// GoogLeNet built with aux heads loads the same file (aux keys included), and in training mode
/// (an autodiff device; frozen, so BatchNorm uses its running statistics and dropout is off)
/// its three classifiers must reproduce torchvision's training-mode outputs.
fn check_googlenet_aux(
    backend: Backend,
    full: bool,
    dir: &Path,
    manifest: &Value,
) -> Result<Vec<Row>> {
    use burn::module::Module;
    use model_zoo::googlenet::GoogLeNetConfig;

    let device = backend.device()?.autodiff();
    let model = GoogLeNetConfig::new()
        .with_transform_input(true)
        .init(&device)?;
    let weights = dir.join(manifest["state_dict"].as_str().context("state_dict")?);
    // Strict: every key of the file, aux heads included, lands in the model.
    let (model, _) = TorchImport::new(&weights)
        .model_name("googlenet (aux heads)")
        .load_into(model)?;
    let model = model.freeze();
    let mut rows = Vec::new();
    for case in cases_for(manifest, full)? {
        let Some(aux) = case.get("aux") else { continue };
        let input_shape = shape_of(&case["input_shape"])?;
        let logits_shape = shape_of(&case["logits_shape"])?;
        let read = |key: &str, shape: &[usize]| read_f32(&dir.join(key), shape);
        let input = read(case["input"].as_str().context("input")?, &input_shape)?;
        let x = Tensor::<4>::from_data(TensorData::new(input, input_shape.clone()), &device);
        let out = model.forward_with_aux(x);
        let (Some(aux1), Some(aux2)) = (out.aux1, out.aux2) else {
            bail!("no aux logits in training mode");
        };
        // One row per classifier, each against its own scale.
        let outputs = [
            ("googlenet+aux", out.logits, "logits"),
            ("googlenet.aux1", aux1, "aux1"),
            ("googlenet.aux2", aux2, "aux2"),
        ];
        for (row_name, tensor, key) in outputs {
            let file = if key == "logits" {
                &case[key]
            } else {
                &aux[key]
            };
            let expected = read(file.as_str().context("reference file")?, &logits_shape)?;
            let got = read_back(tensor)?;
            rows.push(compare(row_name, backend, &input_shape, &got, &expected)?);
        }
    }
    Ok(rows)
}

/// One manifest case: its input shape, the input on `device`, and the reference logits.
pub fn read_case(
    dir: &Path,
    case: &Value,
    device: &burn::tensor::Device,
) -> Result<(Vec<usize>, Tensor<4>, Vec<f32>)> {
    let input_shape = shape_of(&case["input_shape"])?;
    let logits_shape = shape_of(&case["logits_shape"])?;
    let input = read_f32(
        &dir.join(case["input"].as_str().context("input")?),
        &input_shape,
    )?;
    let expected = read_f32(
        &dir.join(case["logits"].as_str().context("logits")?),
        &logits_shape,
    )?;
    let x = Tensor::<4>::from_data(TensorData::new(input, input_shape.clone()), device);
    Ok((input_shape, x, expected))
}

/// A reference feature map: torchvision's module, its NCHW shape and values.
struct RefMap {
    module: String,
    shape: Vec<usize>,
    values: Vec<f32>,
}

/// The case's reference feature maps (none where it has none); with `first_image_only`, each
/// map's first image.
fn read_maps(dir: &Path, case: &Value, first_image_only: bool) -> Result<Vec<RefMap>> {
    let Some(maps) = case["features"].as_array() else {
        return Ok(Vec::new());
    };
    maps.iter()
        .map(|map| {
            let mut shape = shape_of(&map["shape"])?;
            let mut values = read_f32(
                &dir.join(map["file"].as_str().context("feature map file")?),
                &shape,
            )?;
            if first_image_only && shape[0] > 1 {
                values.truncate(values.len() / shape[0]);
                shape[0] = 1;
            }
            Ok(RefMap {
                module: map["module"]
                    .as_str()
                    .context("feature module")?
                    .to_string(),
                shape,
                values,
            })
        })
        .collect()
}

/// One row for every feature map of a forward: each map's shape must be the reference's, with
/// the channels of `info`, and the row reports the map furthest from its tolerance (each at
/// its own scale, as the logits'), named in the note.
fn compare_maps(
    name: &str,
    backend: Backend,
    input_shape: &[usize],
    info: &[model_zoo::FeatureInfo],
    got: Vec<Tensor<4>>,
    expected: &[RefMap],
) -> Result<Row> {
    if got.len() != expected.len() || info.len() != expected.len() {
        bail!(
            "{} feature maps ({} in feature_info), the reference has {}",
            got.len(),
            info.len(),
            expected.len()
        );
    }
    let mut worst: Option<(f32, Row)> = None;
    for ((map, stage), reference) in got.into_iter().zip(info).zip(expected) {
        if stage.module != reference.module {
            bail!(
                "feature stage `{}`, the reference's is `{}`",
                stage.module,
                reference.module
            );
        }
        let dims = map.dims().to_vec();
        if dims != reference.shape || dims[1] != stage.channels {
            bail!(
                "`{}`: map {dims:?} (feature_info: {} channels), the reference's is {:?}",
                stage.module,
                stage.channels,
                reference.shape
            );
        }
        // The reduction is nominal (Inception's and AlexNet's unpadded convolutions and pools
        // take a few pixels more), but a wrong factor of 2 shows at full size.
        for (side, input) in dims[2..].iter().zip(&input_shape[2..]) {
            let r = stage.reduction;
            if side * r > input + r || 4 * (side + 1) * r < 3 * input {
                bail!(
                    "`{}`: map {dims:?} of a {input_shape:?} input is not a reduction of {}",
                    stage.module,
                    stage.reduction
                );
            }
        }
        let values = model_zoo::read_back(map.flatten::<2>(0, 3), "feature map")?
            .try_to_vec::<f32>()
            .map_err(|e| anyhow::anyhow!("reading a feature map back: {e:?}"))?;
        let mut row = compare(name, backend, input_shape, &values, &reference.values)?;
        let ratio = row.max_diff.unwrap_or(f32::INFINITY) / row.tolerance;
        row.note = format!("{} maps, worst `{}`", expected.len(), stage.module);
        if worst
            .as_ref()
            .is_none_or(|(r, _)| ratio.is_nan() || ratio > *r)
        {
            worst = Some((ratio, row));
        }
    }
    worst
        .map(|(_, row)| row)
        .context("the model has no feature stage")
}

pub fn read_back(logits: Tensor<2>) -> Result<Vec<f32>> {
    model_zoo::read_back(logits, "logits")?
        .try_to_vec::<f32>()
        .map_err(|e| anyhow::anyhow!("reading logits back: {e:?}"))
}

/// One row: `max |got - expected|` against the tolerance at the reference's scale.
pub fn compare(
    name: &str,
    backend: Backend,
    input_shape: &[usize],
    got: &[f32],
    expected: &[f32],
) -> Result<Row> {
    if got.len() != expected.len() {
        bail!("{} logits, expected {}", got.len(), expected.len());
    }
    let scale = expected.iter().fold(1e-3f32, |m, v| m.max(v.abs()));
    let max_diff = got
        .iter()
        .zip(expected)
        .map(|(a, b)| {
            if a.is_finite() {
                (a - b).abs()
            } else {
                f32::INFINITY
            }
        })
        .fold(0.0f32, f32::max);
    Ok(Row {
        model: name.to_string(),
        backend,
        shape: input_shape
            .iter()
            .map(|d| d.to_string())
            .collect::<Vec<_>>()
            .join("x"),
        max_diff: Some(max_diff),
        tolerance: TOLERANCE * scale,
        reference_max: expected.iter().fold(0.0f32, |m, v| m.max(v.abs())),
        skipped: false,
        note: String::new(),
    })
}

/// Compares each model's registry entry (parameters, GFLOPs, every weight descriptor) with the
/// installed torchvision's metadata; returns one line per difference.
fn check_registry_metadata(models: &[String], python: &Path) -> Result<Vec<String>> {
    let script = workspace_root().join("xtask/python/registry_meta.py");
    let output = Command::new(python)
        .arg(&script)
        .args(models)
        .stderr(std::process::Stdio::inherit())
        .output()
        .with_context(|| format!("running {} {}", python.display(), script.display()))?;
    if !output.status.success() {
        bail!("{} failed ({})", script.display(), output.status);
    }
    let meta: Value = serde_json::from_slice(&output.stdout)
        .with_context(|| format!("parsing the output of {}", script.display()))?;
    let mut problems = Vec::new();
    for name in models {
        let info = model_zoo::model_info(name)?;
        let Some(torch) = meta.get(name.as_str()) else {
            problems.push(format!(
                "{name}: neither torchvision nor xtask/python/zoo_models.py has such a model"
            ));
            continue;
        };
        let source = if info.torchvision {
            "torchvision"
        } else {
            "zoo_models.py"
        };
        let mut differ = |what: &str, ours: String, theirs: String| {
            if ours != theirs {
                problems.push(format!("{name}: {what} is {ours}, {source} says {theirs}"));
            }
        };
        differ(
            "source",
            if info.torchvision {
                "torchvision"
            } else {
                "zoo"
            }
            .to_string(),
            torch["source"].as_str().unwrap_or("?").to_string(),
        );
        differ(
            "image_size",
            info.image_size.to_string(),
            torch["image_size"].to_string(),
        );
        differ(
            "num_classes",
            info.num_classes.to_string(),
            torch["num_classes"].to_string(),
        );
        differ(
            "params",
            info.params.to_string(),
            torch["params"].to_string(),
        );
        differ(
            "gflops",
            format!("{:?}", info.gflops),
            torch["gflops"].to_string(),
        );
        let torch_weights = torch["weights"].as_array().cloned().unwrap_or_default();
        // Paddle's files are not torchvision's; their URLs and MD5s are checked by the
        // registry's own tests and the Paddle rows load the same layout.
        let ours: Vec<_> = info
            .weights
            .iter()
            .filter(|w| w.source == model_zoo::WeightsSource::Torchvision)
            .collect();
        let names = |it: &mut dyn Iterator<Item = String>| it.collect::<Vec<_>>().join(",");
        differ(
            "weights",
            names(&mut ours.iter().map(|w| w.name.to_string())),
            names(
                &mut torch_weights
                    .iter()
                    .map(|w| w["name"].as_str().unwrap_or("?").to_string()),
            ),
        );
        for (ours, theirs) in ours.iter().zip(&torch_weights) {
            let p = &ours.preprocess;
            let what = |field: &str| format!("{}.{field}", ours.name);
            differ(
                &what("url"),
                format!("{:?}", ours.url),
                theirs["url"].to_string(),
            );
            differ(
                &what("acc1"),
                ours.acc1.map_or("null".into(), |a| format!("{a:?}")),
                theirs["acc1"].to_string(),
            );
            differ(
                &what("acc5"),
                ours.acc5.map_or("null".into(), |a| format!("{a:?}")),
                theirs["acc5"].to_string(),
            );
            differ(
                &what("file_size_mb"),
                format!("{:?}", ours.file_size_mb),
                theirs["file_size_mb"].to_string(),
            );
            differ(
                &what("default"),
                ours.is_default.to_string(),
                theirs["default"].to_string(),
            );
            differ(
                &what("num_classes"),
                ours.num_classes().to_string(),
                theirs["num_classes"].to_string(),
            );
            differ(
                &what("resize"),
                p.resize.to_string(),
                theirs["resize"].to_string(),
            );
            differ(
                &what("crop"),
                p.crop.to_string(),
                theirs["crop"].to_string(),
            );
            differ(
                &what("interpolation"),
                format!("{:?}", p.interpolation).to_lowercase(),
                theirs["interpolation"]
                    .to_string()
                    .trim_matches('"')
                    .to_string(),
            );
            differ(
                &what("mean"),
                format!("{:?}", p.mean),
                theirs["mean"].to_string().replace(',', ", "),
            );
            differ(
                &what("std"),
                format!("{:?}", p.std),
                theirs["std"].to_string().replace(',', ", "),
            );
        }
        if let Some(first) = info.weights.first() {
            let categories = first.categories.names();
            if torch["categories"].as_array().map(|c| c.len()) != Some(categories.len())
                || torch["categories"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .zip(categories)
                    .any(|(a, b)| a.as_str() != Some(b))
            {
                problems.push(format!("{name}: class names differ from torchvision's"));
            }
        }
    }
    Ok(problems)
}

/// The rows of one check, or one failing row saying why it errored or panicked.
pub fn rows_or_error(
    name: &str,
    backend: Backend,
    outcome: std::thread::Result<Result<Vec<Row>>>,
) -> Vec<Row> {
    match outcome {
        Ok(Ok(rows)) => rows,
        Ok(Err(err)) => vec![error_row(name, backend, format!("{err:#}"))],
        Err(panic) => vec![error_row(name, backend, panic_message(panic))],
    }
}

fn error_row(name: &str, backend: Backend, note: String) -> Row {
    Row {
        model: name.to_string(),
        backend,
        shape: "-".into(),
        max_diff: None,
        tolerance: f32::NAN,
        reference_max: f32::NAN,
        skipped: false,
        note,
    }
}

fn panic_message(panic: Box<dyn std::any::Any + Send>) -> String {
    panic
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
        .map(|m| format!("panicked: {m}"))
        .unwrap_or_else(|| "panicked".into())
}

pub fn print_row(row: &Row, seconds: f32) {
    let diff = row.max_diff.map_or("-".to_string(), |d| format!("{d:.3e}"));
    let verdict = if row.passed() {
        "ok"
    } else if row.skipped {
        "SKIP"
    } else {
        "FAIL"
    };
    println!(
        "{:<26} {:<8} {:<16} {:>10.3} {:>12} {:>10.1e}  {verdict} {}",
        row.model,
        row.backend.name(),
        row.shape,
        row.reference_max,
        diff,
        row.tolerance,
        if row.note.is_empty() {
            format!("({seconds:.1}s)")
        } else {
            row.note.clone()
        }
    );
}
