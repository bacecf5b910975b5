//! ImageFolder datasets: `root/<class>/**/<image>`, read as torchvision's `ImageFolder` reads
//! them.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use rand::SeedableRng;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use serde::{Deserialize, Serialize};

use crate::error::TrainError;

/// File extensions torchvision's `ImageFolder` accepts (`IMG_EXTENSIONS`) that the `image` crate
/// decodes here, compared case-insensitively.
pub const IMAGE_EXTENSIONS: [&str; 5] = ["png", "jpg", "jpeg", "bmp", "webp"];

/// One image and its class index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sample {
    /// The image file.
    pub path: PathBuf,
    /// Index into [`ClassMap::names`].
    pub label: usize,
}

/// Class names in index order, as torchvision's `find_classes` sorts them: the class folders'
/// names, by code point. Saved beside a trained model (`classes.json`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClassMap {
    /// `names[i]` is class `i`.
    pub names: Vec<String>,
}

impl ClassMap {
    /// The number of classes.
    pub fn len(&self) -> usize {
        self.names.len()
    }

    /// Whether there is no class.
    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }

    /// torchvision's `class_to_idx`.
    pub fn class_to_idx(&self) -> BTreeMap<String, usize> {
        self.names
            .iter()
            .enumerate()
            .map(|(i, n)| (n.clone(), i))
            .collect()
    }
}

/// The samples of an ImageFolder root.
#[derive(Debug, Clone)]
pub struct ImageFolder {
    /// The folder read.
    pub root: PathBuf,
    /// Its classes.
    pub classes: ClassMap,
    /// Every image, class by class, paths sorted within each class as torchvision walks them.
    pub samples: Vec<Sample>,
}

fn is_image(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| IMAGE_EXTENSIONS.iter().any(|x| x.eq_ignore_ascii_case(e)))
}

/// Every image file under `dir`, recursively, in the order of torchvision's
/// `sorted(os.walk(dir))` with `sorted(fnames)`: directories in sorted order, files sorted
/// within each.
fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> Result<(), TrainError> {
    let mut files = Vec::new();
    let mut dirs = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(|e| TrainError::io(dir, e))? {
        let entry = entry.map_err(|e| TrainError::io(dir, e))?;
        let path = entry.path();
        // Follows symlinks, as torchvision's `followlinks=True`.
        if path.is_dir() {
            dirs.push(path);
        } else if is_image(&path) {
            files.push(path);
        }
    }
    files.sort();
    out.extend(files);
    dirs.sort();
    for d in dirs {
        walk(&d, out)?;
    }
    Ok(())
}

impl ImageFolder {
    /// Reads `root`: one class per sub-folder (sorted by name), every image below it.
    ///
    /// An unreadable folder, a root without class folders, or a class without images is an error
    /// naming the folder, as torchvision raises.
    pub fn open(root: impl AsRef<Path>) -> Result<Self, TrainError> {
        let root = root.as_ref().to_path_buf();
        let mut names = Vec::new();
        for entry in std::fs::read_dir(&root).map_err(|e| TrainError::io(&root, e))? {
            let entry = entry.map_err(|e| TrainError::io(&root, e))?;
            if entry.path().is_dir() {
                names.push(entry.file_name().to_string_lossy().into_owned());
            }
        }
        // Code-point order, as Python's `sorted` of str.
        names.sort();
        if names.is_empty() {
            return Err(TrainError::Dataset(format!(
                "{}: no class folders (expected {}/<class>/<image>)",
                root.display(),
                root.display()
            )));
        }
        let mut samples = Vec::new();
        for (label, name) in names.iter().enumerate() {
            let mut files = Vec::new();
            walk(&root.join(name), &mut files)?;
            if files.is_empty() {
                return Err(TrainError::Dataset(format!(
                    "{}: class folder `{name}` holds no image ({})",
                    root.display(),
                    IMAGE_EXTENSIONS.join(", ")
                )));
            }
            samples.extend(files.into_iter().map(|path| Sample { path, label }));
        }
        Ok(Self {
            root,
            classes: ClassMap { names },
            samples,
        })
    }

    /// Splits the samples into training and validation sets: `val_fraction` of each class goes
    /// to validation (at least one image per class when the class has two or more), chosen by a
    /// seeded shuffle, so the same seed gives the same split.
    pub fn split(
        &self,
        val_fraction: f64,
        seed: u64,
    ) -> Result<(Vec<Sample>, Vec<Sample>), TrainError> {
        if !(0.0..1.0).contains(&val_fraction) || val_fraction == 0.0 {
            return Err(TrainError::Config(format!(
                "the validation fraction must be in (0, 1), not {val_fraction}"
            )));
        }
        let mut rng = StdRng::seed_from_u64(seed);
        let (mut train, mut val) = (Vec::new(), Vec::new());
        for label in 0..self.classes.len() {
            let mut class: Vec<Sample> = self
                .samples
                .iter()
                .filter(|s| s.label == label)
                .cloned()
                .collect();
            class.shuffle(&mut rng);
            let n_val = if class.len() < 2 {
                0
            } else {
                ((class.len() as f64 * val_fraction).round() as usize).clamp(1, class.len() - 1)
            };
            val.extend(class.drain(..n_val));
            train.extend(class);
        }
        Ok((train, val))
    }
}

/// Checks that a validation folder has exactly the training folder's classes.
pub fn same_classes(train: &ImageFolder, val: &ImageFolder) -> Result<(), TrainError> {
    if train.classes != val.classes {
        return Err(TrainError::Dataset(format!(
            "{} has classes [{}] but {} has [{}]",
            train.root.display(),
            train.classes.names.join(", "),
            val.root.display(),
            val.classes.names.join(", ")
        )));
    }
    Ok(())
}

/// An image left out: its file and why it could not be read.
pub type BadImage = (PathBuf, String);

/// Decodes every image once, with `threads` workers, before training starts: a corrupt file is
/// then an error naming it (or, with `skip_bad`, left out and returned in the second list with
/// its reason) rather than a failure in the middle of an epoch.
pub fn verify_images(
    samples: Vec<Sample>,
    threads: usize,
    skip_bad: bool,
) -> Result<(Vec<Sample>, Vec<BadImage>), TrainError> {
    if samples.is_empty() {
        return Ok((samples, Vec::new()));
    }
    let threads = threads.clamp(1, samples.len());
    let chunk = samples.len().div_ceil(threads);
    let verdicts: Vec<Option<String>> = std::thread::scope(|s| {
        let handles: Vec<_> = samples
            .chunks(chunk)
            .map(|part| {
                s.spawn(move || {
                    part.iter()
                        .map(|sample| {
                            model_zoo::transforms::load_image(&sample.path)
                                .err()
                                .map(|e| e.message)
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap_or_default())
            .collect()
    });
    if verdicts.len() != samples.len() {
        return Err(TrainError::Dataset(
            "an image-checking worker panicked".into(),
        ));
    }
    let mut good = Vec::with_capacity(samples.len());
    let mut bad = Vec::new();
    for (sample, verdict) in samples.into_iter().zip(verdicts) {
        match verdict {
            None => good.push(sample),
            Some(message) if skip_bad => bad.push((sample.path, message)),
            Some(message) => {
                return Err(TrainError::Image {
                    path: sample.path,
                    message: format!("{message} (pass --skip-bad-images to leave such files out)"),
                });
            }
        }
    }
    Ok((good, bad))
}
