//! A run's directory, and the one place that knows its layout:
//!
//! ```text
//! <run>/train.json          the settings (`TrainConfig`), written when the run starts
//! <run>/metrics.csv         one row per epoch (`crate::metrics`), written after each
//! <run>/curves.png          the same, drawn
//! <run>/checkpoint/         Burn's model-N.bpk, optim-N.bpk, scheduler-N.bpk per epoch
//! <run>/best/               the trained model (`crate::artifact`)
//! <run>.previous/           a run the quickstart set aside (`crate::train::make_way`)
//! ```

use std::path::{Path, PathBuf};

use burn::optim::OptimizerRecord;
use burn::optim::lr_scheduler::LrSchedulerRecord;
use burn::store::ModuleRecord;

use crate::config::TrainConfig;
use crate::error::TrainError;
use crate::metrics::{EpochRecord, read_csv};

/// A run directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunDir {
    dir: PathBuf,
}

impl RunDir {
    /// The run in `dir`.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into() }
    }

    /// The directory itself.
    pub fn path(&self) -> &Path {
        &self.dir
    }

    /// `train.json`.
    pub fn config_file(&self) -> PathBuf {
        self.dir.join("train.json")
    }

    /// `metrics.csv`.
    pub fn metrics_file(&self) -> PathBuf {
        self.dir.join("metrics.csv")
    }

    /// `curves.png`.
    pub fn curves_file(&self) -> PathBuf {
        self.dir.join("curves.png")
    }

    /// `checkpoint/`, where Burn's checkpointer writes.
    pub fn checkpoint_dir(&self) -> PathBuf {
        self.dir.join("checkpoint")
    }

    /// One record of epoch `epoch`'s checkpoint: `kind` is `model`, `optim` or `scheduler`.
    pub fn checkpoint(&self, kind: &str, epoch: usize) -> PathBuf {
        self.checkpoint_dir().join(format!("{kind}-{epoch}.bpk"))
    }

    /// `best/`.
    pub fn best_dir(&self) -> PathBuf {
        self.dir.join("best")
    }

    /// `<run>.previous`, beside it.
    pub fn previous_dir(&self) -> PathBuf {
        let mut aside = self.dir.as_os_str().to_owned();
        aside.push(".previous");
        PathBuf::from(aside)
    }

    /// The settings the run was started with.
    pub fn load_config(&self) -> Result<TrainConfig, TrainError> {
        TrainConfig::load(&self.config_file())
    }

    /// Writes the settings, creating the directory.
    pub fn save_config(&self, config: &TrainConfig) -> Result<(), TrainError> {
        std::fs::create_dir_all(&self.dir).map_err(|e| TrainError::io(&self.dir, e))?;
        config.save(&self.config_file())
    }

    /// The epochs recorded so far (none before the first).
    pub fn metrics(&self) -> Result<Vec<EpochRecord>, TrainError> {
        read_csv(&self.metrics_file())
    }

    /// Epochs with a complete checkpoint (model, optimiser and scheduler, each readable), the
    /// latest last.
    pub fn complete_checkpoints(&self) -> Vec<usize> {
        let Ok(entries) = std::fs::read_dir(self.checkpoint_dir()) else {
            return Vec::new();
        };
        let mut epochs: Vec<usize> = entries
            .filter_map(|e| e.ok())
            .filter_map(|e| {
                let name = e.file_name().to_string_lossy().into_owned();
                name.strip_prefix("model-")?
                    .strip_suffix(".bpk")?
                    .parse()
                    .ok()
            })
            .filter(|&epoch| {
                ModuleRecord::load(self.checkpoint("model", epoch)).is_ok()
                    && OptimizerRecord::load(self.checkpoint("optim", epoch)).is_ok()
                    && LrSchedulerRecord::load(self.checkpoint("scheduler", epoch)).is_ok()
            })
            .collect();
        epochs.sort_unstable();
        epochs
    }
}
