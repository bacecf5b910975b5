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

pub mod alexnet;
mod architecture;
pub mod convnext;
mod count;
pub mod densenet;
pub mod device;
pub mod efficientnet;
pub mod error;
mod family;
pub mod features;
pub mod googlenet;
pub mod inception;
#[cfg(feature = "flex")]
mod kernels;
pub mod layers;
pub mod lenet;
pub mod maxvit;
pub mod mnasnet;
pub mod mobilenet_v2;
pub mod mobilenet_v3;
mod model;
pub mod registry;
pub mod regnet;
pub mod resnet;
pub mod shufflenet_v2;
pub mod squeezenet;
pub mod swin;
#[cfg(feature = "image")]
pub mod transforms;
pub mod vgg;
pub mod vit;

pub use architecture::{Architecture, DerivedBuffer, KeyRename, MAX_IN_CHANS};
pub use count::{materialised_parameters, num_parameters};
pub use device::{
    Backend, BackendError, available_backends, max_tensor_bytes, on_cpu_workers, read_back, sync,
};
pub use error::RegistryError;
pub use error::{ConfigError, DeviceError, InputError, InputSpec};
pub use features::{FeatureInfo, Features};
pub use model::Model;
pub use registry::{
    Checksum, Family, ModelInfo, WeightsInfo, WeightsSource, create, list_models, model_info,
    models,
};
pub use resnet::{ResNet, ResNetConfig};

/// What most programs need: `use model_zoo::prelude::*;`.
pub mod prelude {
    pub use crate::{Architecture, Backend, Model, create, model_info};
}
