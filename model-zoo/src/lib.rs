#![warn(missing_docs)]
//! # model-zoo
//!
//! Image classifiers written once on [Burn](https://burn.dev) 0.22, with torchvision's names,
//! options and initialisation, running unchanged on every compiled backend (Flex, NdArray, wgpu,
//! CUDA) and under autodiff.
//!
//! ```no_run
//! use model_zoo::{Architecture, Backend, resnet::ResNetConfig};
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let device = Backend::Flex.device()?;
//! let model = ResNetConfig::resnet50().init(&device)?;
//! let logits = model.forward(burn::tensor::Tensor::zeros([1, 3, 224, 224], &device));
//! assert_eq!(logits.dims(), [1, 1000]);
//! # Ok(()) }
//! ```
//!
//! Weights from torchvision load through the `zoo-import` crate.

mod architecture;
mod backbone;
mod count;
pub mod device;
pub mod error;
mod family;
pub mod features;
#[cfg(feature = "flex")]
mod kernels;
pub mod layers;
pub mod models;
pub mod registry;
pub mod segmentation;
#[cfg(feature = "image")]
pub mod transforms;

pub use architecture::{
    Architecture, DerivedBuffer, ImportHooks, ImportInfo, Importable, KeyRename, MAX_IN_CHANS,
};
pub use backbone::FeatureExtractor;
pub use count::{materialised_parameters, num_parameters};
pub use device::{
    Backend, BackendError, available_backends, max_tensor_bytes, on_cpu_workers, read_back, sync,
};
pub use error::RegistryError;
pub use error::{ConfigError, DeviceError, InputError, InputSpec};
pub use features::{FeatureInfo, Features};
// Each family's module (`model_zoo::resnet`), `Model`, `ModelInfo` and the registry's functions
// (`create`, `list_models`, `model_info`, `models`), at the top as before the families moved
// into `models/`.
pub use models::*;
pub use registry::{Checksum, Family, WeightsFile, WeightsInfo, WeightsSource};
pub use resnet::{ResNet, ResNetConfig};

/// What most programs need: `use model_zoo::prelude::*;`.
pub mod prelude {
    pub use crate::{Architecture, Backend, Model, create, model_info};
}
