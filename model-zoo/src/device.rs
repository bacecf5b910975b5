//! Backends compiled into this build, and parsing of a `--backend` name.
//!
//! Burn 0.22 modules carry no backend type: a [`Device`] decides where a model runs. Every
//! backend named here is a cargo feature of this crate (`flex`, `ndarray`, `wgpu`, `cuda`), and
//! only the ones compiled in can be chosen at run time.
//!
//! `Device::default()` prefers a GPU backend whenever one is compiled in, so code that must run on
//! a given backend (tests above all) names its device through [`Backend::device`].

use std::fmt;
use std::str::FromStr;

use burn::tensor::Device;

/// An execution backend that this crate knows about.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Backend {
    /// burn-flex: pure-Rust CPU backend (feature `flex`, the default).
    Flex,
    /// burn-ndarray: CPU backend, deprecated in burn but still supported (feature `ndarray`).
    NdArray,
    /// wgpu: Vulkan/Metal/DX12 GPUs, or lavapipe's software Vulkan on a CPU-only machine
    /// (feature `wgpu`).
    Wgpu,
    /// CUDA on NVIDIA GPUs (feature `cuda`).
    Cuda,
}

/// Every backend this crate knows, compiled in or not, in the order they are listed to users.
pub const ALL_BACKENDS: [Backend; 4] = [
    Backend::Flex,
    Backend::NdArray,
    Backend::Wgpu,
    Backend::Cuda,
];

impl Backend {
    /// The name used on command lines and in reports: `flex`, `ndarray`, `wgpu`, `cuda`.
    pub fn name(self) -> &'static str {
        match self {
            Backend::Flex => "flex",
            Backend::NdArray => "ndarray",
            Backend::Wgpu => "wgpu",
            Backend::Cuda => "cuda",
        }
    }

    /// Whether this backend's cargo feature was enabled in this build.
    pub fn is_compiled(self) -> bool {
        match self {
            Backend::Flex => cfg!(feature = "flex"),
            Backend::NdArray => cfg!(feature = "ndarray"),
            Backend::Wgpu => cfg!(feature = "wgpu"),
            Backend::Cuda => cfg!(feature = "cuda"),
        }
    }

    /// The backend's default device (the first GPU for `wgpu` and `cuda`).
    ///
    /// Creating the device is lazy: a `wgpu` device without any Vulkan driver fails on first use,
    /// not here.
    pub fn device(self) -> Result<Device, BackendError> {
        match self {
            #[cfg(feature = "flex")]
            Backend::Flex => Ok(Device::flex()),
            #[cfg(feature = "ndarray")]
            #[allow(deprecated)]
            // burn deprecates NdArray; the product still offers it.
            Backend::NdArray => Ok(Device::ndarray()),
            #[cfg(feature = "wgpu")]
            Backend::Wgpu => Ok(Device::wgpu(burn::tensor::DeviceKind::DefaultDevice)),
            #[cfg(feature = "cuda")]
            Backend::Cuda => Ok(Device::cuda(0)),
            #[allow(unreachable_patterns)]
            other => Err(BackendError::NotCompiled {
                name: other.name().to_string(),
                available: available_names(),
            }),
        }
    }
}

impl fmt::Display for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The backends compiled into this build, in [`ALL_BACKENDS`] order.
pub fn available_backends() -> Vec<Backend> {
    ALL_BACKENDS
        .into_iter()
        .filter(|b| b.is_compiled())
        .collect()
}

fn available_names() -> String {
    let names: Vec<&str> = available_backends()
        .into_iter()
        .map(Backend::name)
        .collect();
    if names.is_empty() {
        "none".to_string()
    } else {
        names.join(", ")
    }
}

/// A backend name that cannot be used in this build.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BackendError {
    /// The name is not a backend this crate knows.
    #[error("unknown backend `{name}`; this build offers: {available}")]
    Unknown {
        /// The name as given.
        name: String,
        /// Comma-separated names of the compiled-in backends.
        available: String,
    },
    /// The backend exists but its cargo feature was not enabled.
    #[error(
        "backend `{name}` is not compiled into this build (enable the cargo feature `{name}`); \
         this build offers: {available}"
    )]
    NotCompiled {
        /// The backend's name.
        name: String,
        /// Comma-separated names of the compiled-in backends.
        available: String,
    },
}

impl FromStr for Backend {
    type Err = BackendError;

    /// Parses a `--backend` value (case-insensitive) and checks that it is compiled in.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let wanted = s.trim().to_ascii_lowercase();
        let backend = ALL_BACKENDS
            .into_iter()
            .find(|b| b.name() == wanted)
            .ok_or_else(|| BackendError::Unknown {
                name: s.to_string(),
                available: available_names(),
            })?;
        if backend.is_compiled() {
            Ok(backend)
        } else {
            Err(BackendError::NotCompiled {
                name: backend.name().to_string(),
                available: available_names(),
            })
        }
    }
}

/// The first compiled-in backend's device, for the crate's unit tests
/// (`Device::default()` would prefer a GPU backend when one is compiled in).
#[cfg(test)]
pub(crate) fn test_device() -> Device {
    available_backends()[0]
        .device()
        .expect("a compiled-in backend")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_compiled_backends_case_insensitively() {
        for backend in available_backends() {
            assert_eq!(
                backend.name().to_uppercase().parse::<Backend>(),
                Ok(backend)
            );
        }
    }

    #[test]
    fn unknown_backend_lists_the_available_ones() {
        let err = "tpu".parse::<Backend>().unwrap_err();
        assert!(matches!(err, BackendError::Unknown { .. }));
        let message = err.to_string();
        assert!(message.contains("`tpu`"), "{message}");
        for backend in available_backends() {
            assert!(message.contains(backend.name()), "{message}");
        }
    }

    #[test]
    fn missing_feature_is_named() {
        if let Some(missing) = ALL_BACKENDS.into_iter().find(|b| !b.is_compiled()) {
            let err = missing.name().parse::<Backend>().unwrap_err();
            assert!(err.to_string().contains("cargo feature"), "{err}");
            assert!(missing.device().is_err());
        }
    }
}
