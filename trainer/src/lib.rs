#![warn(missing_docs)]
//! # zoo-trainer
//!
//! Transfer learning for the zoo's models on ImageFolder datasets, built on Burn's
//! `SupervisedTraining` and `Learner`: fine-tune every layer or train only a new head on a
//! frozen backbone, on any backend (always through autodiff), with torchvision's augmentations,
//! checkpoints every epoch, `--resume`, CSV metrics and PNG curves, and the best model saved
//! with its class map and preprocessing for `eval` and `predict`.
//!
//! ```no_run
//! use zoo_trainer::{RunOptions, TrainConfig, train};
//!
//! let mut config = TrainConfig::new("resnet18", "data/train");
//! config.epochs = 5;
//! let options = RunOptions {
//!     dir: "runs/resnet18".into(),
//!     backend: model_zoo::Backend::Flex,
//!     devices: vec![0],
//!     tui: false,
//!     quiet: false,
//! };
//! let summary = train(&config, &options)?;
//! println!("best validation accuracy {:.1}%", summary.best.val_accuracy);
//! # Ok::<(), zoo_trainer::TrainError>(())
//! ```

pub mod alloc;
pub mod artifact;
pub mod augment;
pub mod config;
pub mod data;
pub mod demo;
pub mod ema;
pub mod error;
pub mod eval;
pub mod folder;
pub mod metrics;
pub mod plot;
pub mod recipe;
pub mod report;
pub mod rundir;
pub mod segment;
pub mod stats;
pub mod step;
pub mod train;

pub use artifact::{ModelCard, TrainedModel, load_trained, save_trained};
pub use augment::Transforms;
pub use config::{Mode, OptimizerKind, Schedule, TrainConfig};
pub use error::TrainError;
pub use eval::{Evaluation, evaluate, predict};
pub use folder::{ClassMap, ImageFolder, Sample};
pub use recipe::Recipe;
pub use step::{Classifier, ImageBatch};
pub use train::{RunOptions, TrainSummary, resume, train};
