#![warn(missing_docs)]
//! # zoo-import
//!
//! Loads PyTorch weights into model-zoo modules: torchvision `state_dict`s saved with
//! `torch.save` (zip or legacy `.pth`), training checkpoints that nest the state_dict under a key,
//! DataParallel's `module.` prefix, and `.safetensors`. Reading goes through burn-store's
//! [`PytorchStore`](burn::store::PytorchStore) and
//! [`SafetensorsStore`](burn::store::SafetensorsStore): no pickled code is ever executed.
//!
//! Loading is strict by default: every key the model has must be in the file with the same shape,
//! and the file may hold nothing else (`num_batches_tracked` aside). A failure names the file, the
//! model and every offending key with its expected and found shape. [`TorchImport::partial`]
//! relaxes exactly one thing, for transfer learning: a classifier whose class count differs is
//! left as initialised.
//!
//! [`TorchImport::read_state_dict`] reads a file without a model: every tensor by name, in the
//! file's own dtype, as `torch.load` gives a state_dict (`cargo xtask parity --torch-files`
//! checks it bit for bit on a few hundred varied `torch.save` files, zip and legacy).
//!
//! ```no_run
//! use model_zoo::resnet::ResNetConfig;
//! use zoo_import::TorchImport;
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let device = burn::tensor::Device::flex();
//! let model = ResNetConfig::resnet50().init(&device)?;
//! let (model, report) = TorchImport::new("resnet50-11ad3fa6.pth").load_into(model)?;
//! println!("{report}");
//! zoo_import::save_burnpack(&model, "resnet50.bpk")?;
//! # Ok(()) }
//! ```

mod apply;
#[cfg(feature = "download")]
mod download;
mod error;
mod format;
pub mod hub;
mod paddle;
mod torch;

pub use apply::ImportReport;
pub use error::{ImportError, ShapeMismatch};
pub use format::{Import, WeightFormat};
pub use hub::{
    DownloadError, HubError, WeightsCache, pretrained, pretrained_features, pretrained_segmentation,
};
pub use paddle::{PaddleImport, PaddleLayout};
pub use torch::{
    TorchImport, burnpack_key_in_head, burnpack_shapes, load_burnpack, save_burnpack,
    save_safetensors,
};
