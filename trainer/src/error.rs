//! Errors of the trainer: each names the file or folder, or the setting, at fault.

use std::path::{Path, PathBuf};

/// What can go wrong preparing data or training.
#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    /// A file or folder could not be read or written.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// An image could not be decoded or encoded.
    #[error("{}: {message}", path.display())]
    Image {
        /// The image file.
        path: PathBuf,
        /// The codec's explanation.
        message: String,
    },
    /// The dataset's layout is not an ImageFolder (no classes, an empty class, ...).
    #[error("{0}")]
    Dataset(String),
    /// An invalid setting.
    #[error("{0}")]
    Config(String),
    /// A JSON file (run settings, class map, preprocessing) that cannot be read or written.
    #[error("{}: {message}", path.display())]
    Json {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        message: String,
    },
    /// An unknown model name.
    #[error(transparent)]
    Registry(#[from] model_zoo::RegistryError),
    /// A model that cannot be built with these settings.
    #[error(transparent)]
    Model(#[from] model_zoo::ConfigError),
    /// Weights that cannot be read into the model.
    #[error(transparent)]
    Import(#[from] zoo_import::ImportError),
    /// A backend that is not compiled in or has no device.
    #[error(transparent)]
    Backend(#[from] model_zoo::BackendError),
    /// Something the device cannot run: a layer over its buffer limit, a batch it cannot hold.
    #[error(transparent)]
    Device(#[from] model_zoo::DeviceError),
    /// Training stopped with an error (from Burn's learner).
    #[error("training failed: {0}")]
    Training(String),
}

impl TrainError {
    /// An I/O error on `path`.
    pub fn io(path: &Path, source: std::io::Error) -> Self {
        Self::Io {
            path: path.to_path_buf(),
            source,
        }
    }
}
