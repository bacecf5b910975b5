//! What a run leaves behind for inference: the best model in Burn's format with its class map
//! and preprocessing, so that `zoo-train predict` and `zoo-train eval` need nothing else.
//!
//! ```text
//! <run>/best/model.bpk        the weights (burnpack)
//! <run>/best/model.json       {"model": "resnet18", "num_classes": 6, "epoch": 4, ...}
//! <run>/best/classes.json     {"names": ["circle", "cross", ...]}
//! <run>/best/preprocess.json  the training and evaluation transforms
//! ```

use std::path::{Path, PathBuf};

use burn::tensor::Device;
use model_zoo::{Architecture, Model};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::augment::Transforms;
use crate::error::TrainError;
use crate::folder::ClassMap;

/// Which model a saved directory holds and how it was chosen.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelCard {
    /// Registry name.
    pub model: String,
    /// Classes of its head.
    pub num_classes: usize,
    /// Input channels (`--in-chans`; 3 in a card written before the option).
    #[serde(default = "rgb")]
    pub in_chans: usize,
    /// The epoch (1-based) whose weights these are.
    pub epoch: usize,
    /// Validation top-1 accuracy of that epoch, in percent.
    pub val_accuracy: f64,
    /// Validation loss of that epoch.
    pub val_loss: f64,
}

/// The input channels of a card written before `in_chans` existed: RGB.
fn rgb() -> usize {
    3
}

/// A trained model with everything needed to use it.
#[derive(Debug)]
pub struct TrainedModel {
    /// The network, in eval mode on the device it was loaded on.
    pub model: Model,
    /// What it is.
    pub card: ModelCard,
    /// Class names in index order.
    pub classes: ClassMap,
    /// Preprocessing it was trained with.
    pub transforms: Transforms,
}

/// File names inside a saved model directory.
pub const MODEL_FILE: &str = "model.bpk";
/// See [`MODEL_FILE`].
pub const CARD_FILE: &str = "model.json";
/// See [`MODEL_FILE`].
pub const CLASSES_FILE: &str = "classes.json";
/// See [`MODEL_FILE`].
pub const PREPROCESS_FILE: &str = "preprocess.json";

/// Writes `value` as pretty JSON to `path`, through a temporary file renamed into place.
pub fn write_json<T: Serialize>(path: &Path, value: &T) -> Result<(), TrainError> {
    let json = serde_json::to_vec_pretty(value).map_err(|e| TrainError::Json {
        path: path.to_path_buf(),
        message: e.to_string(),
    })?;
    write_atomically(path, &json)
}

/// Writes `bytes` to `path` through a temporary file in the same directory, renamed into place:
/// an interrupted write never leaves a partial file.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), TrainError> {
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(|e| TrainError::io(dir, e))?;
    let mut tmp = tempfile::NamedTempFile::new_in(dir).map_err(|e| TrainError::io(dir, e))?;
    std::io::Write::write_all(&mut tmp, bytes).map_err(|e| TrainError::io(path, e))?;
    tmp.persist(path)
        .map_err(|e| TrainError::io(path, e.error))?;
    Ok(())
}

/// Reads a JSON file written by [`write_json`].
pub fn read_json<T: DeserializeOwned>(path: &Path) -> Result<T, TrainError> {
    let text = std::fs::read_to_string(path).map_err(|e| TrainError::io(path, e))?;
    serde_json::from_str(&text).map_err(|e| TrainError::Json {
        path: path.to_path_buf(),
        message: e.to_string(),
    })
}

/// Saves a trained model and its companions into `dir` (created if needed).
///
/// The four files are written into a staging folder inside `dir` first and renamed into place
/// only once all are whole, the card last: a write that fails (a full disk) leaves the model
/// that was there before whole, with its own card, classes and preprocessing.
pub fn save_trained(
    dir: &Path,
    model: &Model,
    card: &ModelCard,
    classes: &ClassMap,
    transforms: &Transforms,
) -> Result<(), TrainError> {
    save_staged(
        dir,
        &[MODEL_FILE, CLASSES_FILE, PREPROCESS_FILE, CARD_FILE],
        |staged| {
            zoo_import::save_burnpack(model, staged.join(MODEL_FILE))?;
            write_json(&staged.join(CLASSES_FILE), classes)?;
            write_json(&staged.join(PREPROCESS_FILE), transforms)?;
            write_json(&staged.join(CARD_FILE), card)
        },
    )
}

/// Writes `files` into a staging folder inside `dir` (created if needed) with `write`, then
/// renames them into `dir` in their order (the card last, by the callers' lists): a write that
/// fails leaves what `dir` held whole.
pub fn save_staged(
    dir: &Path,
    files: &[&str],
    write: impl FnOnce(&Path) -> Result<(), TrainError>,
) -> Result<(), TrainError> {
    std::fs::create_dir_all(dir).map_err(|e| TrainError::io(dir, e))?;
    let staging = tempfile::Builder::new()
        .prefix(".staging-")
        .tempdir_in(dir)
        .map_err(|e| TrainError::io(dir, e))?;
    write(staging.path())?;
    for file in files {
        let path = dir.join(file);
        std::fs::rename(staging.path().join(file), &path).map_err(|e| TrainError::io(&path, e))?;
    }
    Ok(())
}

/// Loads a directory written by [`save_trained`] (a run's `best/`), or a run directory holding
/// one, onto `device`.
pub fn load_trained(dir: &Path, device: &Device) -> Result<TrainedModel, TrainError> {
    let dir: PathBuf = if dir.join(CARD_FILE).is_file() {
        dir.to_path_buf()
    } else if crate::rundir::RunDir::new(dir)
        .best_dir()
        .join(CARD_FILE)
        .is_file()
    {
        crate::rundir::RunDir::new(dir).best_dir()
    } else {
        return Err(TrainError::Dataset(format!(
            "{}: no trained model here (expected {CARD_FILE}, {MODEL_FILE}, {CLASSES_FILE} and \
             {PREPROCESS_FILE}, as `zoo-train train` writes into <run>/best)",
            dir.display()
        )));
    };
    let card: ModelCard = read_json(&dir.join(CARD_FILE))?;
    let classes: ClassMap = read_json(&dir.join(CLASSES_FILE))?;
    let transforms: Transforms = read_json(&dir.join(PREPROCESS_FILE))?;
    // What the files say is checked here, so that an error names the file at fault rather than
    // surfacing at the first prediction.
    let json_error = |file: &str, message: String| TrainError::Json {
        path: dir.join(file),
        message,
    };
    transforms
        .validate()
        .map_err(|message| json_error(PREPROCESS_FILE, message))?;
    if card.num_classes == 0 {
        return Err(json_error(
            CARD_FILE,
            "num_classes is 0: a classifier needs at least one class".into(),
        ));
    }
    if classes.len() != card.num_classes {
        return Err(json_error(
            CLASSES_FILE,
            format!(
                "{} classes, but {} says the model has {}",
                classes.len(),
                CARD_FILE,
                card.num_classes
            ),
        ));
    }
    let model = model_zoo::create(&card.model, card.num_classes, device)
        .and_then(|model| Ok(model.with_in_chans(card.in_chans)?))
        .map_err(|e| json_error(CARD_FILE, e.to_string()))?;
    // A model of one input size (ViT, MaxViT) trained at another `--image-size` is built at
    // the crop it was trained and is evaluated at.
    let model = for_side(model, transforms.crop)
        .map_err(|e| json_error(PREPROCESS_FILE, format!("crop {}: {e}", transforms.crop)))?;
    model
        .input_spec()
        .check(
            &card.model,
            [1, card.in_chans, transforms.crop, transforms.crop],
        )
        .map_err(|e| json_error(PREPROCESS_FILE, format!("crop {}: {e}", transforms.crop)))?;
    let model = zoo_import::load_burnpack(model, dir.join(MODEL_FILE)).map_err(|e| match e {
        // A weight of other channels than the card's `in_chans` says.
        zoo_import::ImportError::KeyMismatch { .. } => {
            json_error(CARD_FILE, format!("in_chans {} and {e}", card.in_chans))
        }
        other => other.into(),
    })?;
    Ok(TrainedModel {
        model,
        card,
        classes,
        transforms,
    })
}

/// `model` rebuilt for `side`x`side` inputs where it takes one size only (ViT: its position
/// embedding resized; MaxViT: refused where its grids cannot take it); any other as it is.
pub fn for_side(model: Model, side: usize) -> Result<Model, model_zoo::ConfigError> {
    if model.input_spec().exact {
        model.for_input_size([side, side])
    } else {
        Ok(model)
    }
}
