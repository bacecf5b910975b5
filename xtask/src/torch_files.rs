//! The reading half of parity: every file `torch.save` writes must read back through zoo-import,
//! tensor for tensor, bit for bit. `xtask/python/torch_files.py` writes a few hundred varied
//! state_dicts (zip and legacy, every dtype, views sharing storages, file names of every stem
//! length, nested checkpoints, torchvision models) and a manifest with the sha256 of every
//! tensor's values; here each file is read with [`TorchImport::read_state_dict`] and compared,
//! and each torchvision model's file is loaded, strictly, into the zoo's model of that name.
//!
//! The stem lengths are there for zip 9.1 to 9.9, which misread every zip whose root (the file
//! stem) has 21 characters (import/Cargo.toml pins zip below them).

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::Instant;

use anyhow::{Context, Result};
use burn::tensor::{DType, Device, TensorData};
use model_zoo::Backend;
use serde_json::Value;
use sha2::{Digest, Sha256};
use zoo_import::TorchImport;

/// Tensor problems listed for one file before "and N more".
const LISTED: usize = 3;

/// Writes the files into `dir` (once) and reads them all back; `Ok(false)` on any failure.
pub fn check(dir: &Path, python: &Path) -> Result<bool> {
    crate::references::run_reference_script(python, "torch_files.py", dir, &[])?;
    let manifest = crate::references::read_manifest(dir)?;
    let files = manifest["files"]
        .as_array()
        .context("manifest lacks files")?;
    let device = Backend::Flex.device()?;
    println!(
        "\ntorch.save files (torch {}, in {}) read back by zoo-import, every tensor's bytes \
         against PyTorch's:",
        manifest["torch"].as_str().unwrap_or("?"),
        dir.display()
    );
    // Errors name their file by its path: the folder is said once, above.
    let folder = format!("{}{}", dir.display(), std::path::MAIN_SEPARATOR);
    let mut groups: BTreeMap<(String, usize), Group> = BTreeMap::new();
    let mut failures = Vec::new();
    let (mut read, mut tensors, mut exact) = (0, 0, 0);
    let (mut models, mut loaded) = (0, 0);
    let (mut root21, mut root21_opened) = (0, 0);
    let mut refused = Vec::new();
    let mut unsupported = 0;
    for file in files {
        let name = file["file"].as_str().context("file")?;
        let serialization = file["serialization"].as_str().context("serialization")?;
        let bytes = file["bytes"].as_u64().context("bytes")?;
        let expected = file["tensors"].as_array().context("tensors")?;
        let started = Instant::now();
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            check_file(dir, file, &device)
        }))
        .unwrap_or_else(|panic| {
            let message = panic
                .downcast_ref::<&str>()
                .map(|s| (*s).to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_default();
            Outcome {
                panicked: true,
                ..Outcome::failed(format!("panicked: {message}"))
            }
        });
        let seconds = started.elapsed().as_secs_f64();
        let outcome = Outcome {
            problems: outcome
                .problems
                .iter()
                .map(|p| p.replace(&folder, ""))
                .collect(),
            ..outcome
        };
        let root21_file = file["zip_root"].as_str().is_some_and(|r| r.len() == 21);
        root21 += usize::from(root21_file);
        if let Some(word) = file["unsupported"].as_str() {
            // A dtype burn has no equivalent for: refused with an error that names it (`word`),
            // or read bit for bit.
            unsupported += 1;
            // In the reader's words, not the file's name (which holds the dtype's too).
            let message = outcome.problems.join(" ").replace(name, "");
            let names_it = message.to_lowercase().contains(word);
            let refused_for_dtype = !outcome.read && !outcome.panicked && names_it;
            if root21_file && (refused_for_dtype || outcome.problems.is_empty()) {
                root21_opened += 1;
            }
            if refused_for_dtype {
                refused.push(format!("  {name}: {}", outcome.problems.join("; ")));
            } else if !outcome.problems.is_empty() {
                let why = if outcome.read || outcome.panicked {
                    String::new()
                } else {
                    format!(", refused but not for its {word} dtype")
                };
                failures.push(format!(
                    "  {name} (unsupported dtype{why}):\n    {}",
                    outcome.problems.join("\n    ")
                ));
            }
            continue;
        }

        let class = size_class(bytes);
        let group = groups
            .entry((serialization.to_string(), class))
            .or_default();
        group.files += 1;
        group.bytes += bytes;
        group.tensors += expected.len();
        group.seconds += seconds;
        tensors += expected.len();
        exact += outcome.exact;
        group.exact += outcome.exact;
        if outcome.read {
            read += 1;
            group.read += 1;
            root21_opened += usize::from(root21_file);
        }
        if let Some(ok) = outcome.loaded {
            models += 1;
            loaded += usize::from(ok);
        }
        if !outcome.problems.is_empty() {
            let what = match file["top_level_key"].as_str() {
                Some(key) => format!("{serialization}, under `{key}`"),
                None => serialization.to_string(),
            };
            failures.push(format!(
                "  {name} ({what}, {}):\n    {}",
                megabytes(bytes),
                outcome.problems.join("\n    ")
            ));
        }
    }

    println!(
        "{:<7} {:>14} {:>6} {:>6} {:>8} {:>10} {:>9} {:>8}  verdict",
        "format", "file size", "files", "read", "tensors", "bit-exact", "size", "seconds"
    );
    for ((serialization, class), g) in &groups {
        let ok = g.read == g.files && g.exact == g.tensors;
        println!(
            "{:<7} {:>14} {:>6} {:>6} {:>8} {:>10} {:>9} {:>8.2}  {}",
            serialization,
            SIZE_CLASSES[*class].1,
            g.files,
            g.read,
            g.tensors,
            g.exact,
            megabytes(g.bytes),
            g.seconds,
            if ok { "ok" } else { "FAIL" }
        );
    }
    println!(
        "zip roots of 21 characters (zip 9.1 to 9.9 misread them): {root21_opened} of {root21} \
         opened"
    );
    println!(
        "dtypes burn has no equivalent for (complex, float8): {} of {unsupported} files refused \
         with an error, the others read bit for bit, none panicked:",
        refused.len()
    );
    for line in &refused {
        println!("{line}");
    }
    if !failures.is_empty() {
        println!("failures:");
        for failure in &failures {
            println!("{failure}");
        }
    }
    println!(
        "torch.save files: {read} of {} read, {exact} of {tensors} tensors bit-exact, {loaded} \
         of {models} torchvision files loaded strictly",
        files.len() - unsupported
    );
    Ok(failures.is_empty())
}

/// What happened to one file.
struct Outcome {
    /// `read_state_dict` succeeded.
    read: bool,
    /// Tensors whose name, dtype, shape and bytes all match.
    exact: usize,
    /// Whether a torchvision model's file loaded strictly (`None`: not a model's file).
    loaded: Option<bool>,
    /// The reader panicked (`problems` says where).
    panicked: bool,
    problems: Vec<String>,
}

impl Outcome {
    fn failed(problem: String) -> Self {
        Self {
            read: false,
            exact: 0,
            loaded: None,
            panicked: false,
            problems: vec![problem],
        }
    }
}

#[derive(Default)]
struct Group {
    files: usize,
    read: usize,
    tensors: usize,
    exact: usize,
    bytes: u64,
    seconds: f64,
}

/// Upper bounds (exclusive) and names of the size classes of the table.
const SIZE_CLASSES: [(u64, &str); 4] = [
    (100_000, "< 100 KB"),
    (1_000_000, "100 KB - 1 MB"),
    (10_000_000, "1 - 10 MB"),
    (u64::MAX, ">= 10 MB"),
];

fn size_class(bytes: u64) -> usize {
    SIZE_CLASSES
        .iter()
        .position(|&(below, _)| bytes < below)
        .unwrap_or(SIZE_CLASSES.len() - 1)
}

fn megabytes(bytes: u64) -> String {
    format!("{:.1} MB", bytes as f64 / 1e6)
}

/// Reads one file of the manifest and compares it; loads a torchvision model's file into the
/// zoo's model.
fn check_file(dir: &Path, file: &Value, device: &Device) -> Outcome {
    let Some(name) = file["file"].as_str() else {
        return Outcome::failed("manifest entry without a file name".into());
    };
    let path = dir.join(name);
    let key = file["top_level_key"].as_str();
    let import = || {
        let import = TorchImport::new(&path);
        match key {
            Some(key) => import.top_level_key(key),
            None => import,
        }
    };
    let mut outcome = match import().read_state_dict() {
        Ok(found) => compare(file, &found),
        Err(err) => Outcome::failed(format!("read_state_dict: {err}")),
    };
    if let Some(model) = file["model"].as_str() {
        let num_classes = file["num_classes"].as_u64().unwrap_or(0) as usize;
        let loaded = model_zoo::create(model, num_classes, device)
            .map_err(|e| e.to_string())
            .and_then(|m| {
                import()
                    .model_name(model)
                    .load_into(m)
                    .map_err(|e| e.to_string())
            });
        if let Err(err) = &loaded {
            outcome
                .problems
                .push(format!("load_into({model}, {num_classes} classes): {err}"));
        }
        outcome.loaded = Some(loaded.is_ok());
    }
    outcome
}

/// The read tensors against the manifest's: names, dtypes, shapes and the sha256 of the bytes.
fn compare(file: &Value, found: &BTreeMap<String, TensorData>) -> Outcome {
    let expected = file["tensors"].as_array().map(Vec::as_slice).unwrap_or(&[]);
    let mut problems = Vec::new();
    let mut exact = 0;
    for tensor in expected {
        let name = tensor["name"].as_str().unwrap_or("?");
        let Some(data) = found.get(name) else {
            problems.push(format!("`{name}`: missing"));
            continue;
        };
        let dtype = torch_dtype(data.dtype());
        let shape: &[usize] = data.shape();
        let digest = hex(&Sha256::digest(data.as_bytes()));
        let want_shape = crate::parity::shape_of(&tensor["shape"]).unwrap_or_default();
        let mut differs = Vec::new();
        if Some(dtype.as_str()) != tensor["dtype"].as_str() {
            let theirs = tensor["dtype"].as_str().unwrap_or("?");
            differs.push(format!("dtype {dtype}, PyTorch's {theirs}"));
        }
        if shape != want_shape.as_slice() {
            differs.push(format!("shape {shape:?}, PyTorch's {want_shape:?}"));
        }
        if differs.is_empty() && Some(digest.as_str()) != tensor["sha256"].as_str() {
            differs.push("other bytes (sha256 differs)".into());
        }
        if differs.is_empty() {
            exact += 1;
        } else {
            problems.push(format!("`{name}`: {}", differs.join(", ")));
        }
    }
    let names: BTreeSet<&str> = expected.iter().filter_map(|t| t["name"].as_str()).collect();
    let unexpected: Vec<&String> = found
        .keys()
        .filter(|k| !names.contains(k.as_str()))
        .collect();
    if !unexpected.is_empty() {
        problems.push(format!(
            "{} tensors PyTorch does not have: {:?}",
            unexpected.len(),
            &unexpected[..unexpected.len().min(LISTED)]
        ));
    }
    let listed = problems.len();
    if listed > LISTED + 1 {
        problems.truncate(LISTED);
        problems.push(format!("and {} more", listed - LISTED));
    }
    Outcome {
        read: true,
        exact,
        loaded: None,
        panicked: false,
        problems,
    }
}

/// PyTorch's name of a dtype (`torch.float32` without `torch.`).
fn torch_dtype(dtype: DType) -> String {
    match dtype {
        DType::F64 => "float64".into(),
        DType::F32 => "float32".into(),
        DType::F16 => "float16".into(),
        DType::BF16 => "bfloat16".into(),
        DType::I64 => "int64".into(),
        DType::I32 => "int32".into(),
        DType::I16 => "int16".into(),
        DType::I8 => "int8".into(),
        DType::U64 => "uint64".into(),
        DType::U32 => "uint32".into(),
        DType::U16 => "uint16".into(),
        DType::U8 => "uint8".into(),
        DType::Bool(_) => "bool".into(),
        other => format!("{other:?}"),
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
