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

use burn::tensor::{Device, Tensor, TensorData};

use crate::error::DeviceError;

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
    /// For `wgpu` this opens the adapter, so that a machine without one (no Vulkan loader or
    /// driver) is a [`BackendError::Unavailable`] here, saying what to install, instead of a
    /// panic at the first tensor.
    pub fn device(self) -> Result<Device, BackendError> {
        match self {
            #[cfg(feature = "flex")]
            Backend::Flex => Ok(Device::flex()),
            #[cfg(feature = "ndarray")]
            #[allow(deprecated)]
            // burn deprecates NdArray; the product still offers it.
            Backend::NdArray => Ok(Device::ndarray()),
            #[cfg(feature = "wgpu")]
            Backend::Wgpu => wgpu_default_device(),
            #[cfg(feature = "cuda")]
            Backend::Cuda => Ok(Device::cuda(0)),
            #[allow(unreachable_patterns)]
            other => Err(BackendError::NotCompiled {
                name: other.name().to_string(),
                available: available_names(),
            }),
        }
    }

    /// The devices with these indices, for data-parallel training (one model replica each).
    ///
    /// `[0]` is [`Backend::device`]. A GPU backend lists its adapters (wgpu: every adapter Burn
    /// enumerates, GPUs first; cuda: `Device::cuda(i)`) and refuses an index it does not have,
    /// saying how many there are. The CPU backends have one device, the whole CPU: every index
    /// names it, and replicas share its cores (which tests the data-parallel path, without a
    /// speed-up).
    pub fn devices(self, indices: &[usize]) -> Result<Vec<Device>, BackendError> {
        if indices.is_empty() || indices == [0] {
            return Ok(vec![self.device()?]);
        }
        match self {
            Backend::Flex | Backend::NdArray => {
                let device = self.device()?;
                Ok(indices.iter().map(|_| device.clone()).collect())
            }
            #[cfg(feature = "wgpu")]
            Backend::Wgpu => {
                self.device()?;
                let all: Vec<Device> = Device::enumerate(burn::tensor::DeviceType::Wgpu)
                    .into_iter()
                    .collect();
                indices
                    .iter()
                    .map(|&i| {
                        all.get(i)
                            .cloned()
                            .ok_or_else(|| BackendError::Unavailable {
                                name: self.name().into(),
                                reason: format!(
                                    "device {i} was asked for, this machine has {} wgpu adapter(s) \
                                 (indices 0 to {})",
                                    all.len(),
                                    all.len().saturating_sub(1)
                                ),
                                hint: "name fewer devices".into(),
                            })
                    })
                    .collect()
            }
            #[cfg(feature = "cuda")]
            Backend::Cuda => Ok(indices.iter().map(|&i| Device::cuda(i)).collect()),
            #[allow(unreachable_patterns)]
            other => Err(BackendError::NotCompiled {
                name: other.name().to_string(),
                available: available_names(),
            }),
        }
    }
}

/// The default wgpu device, opened once per process: `Device::wgpu_options().init()` reports a
/// missing adapter as an error, where a lazily created device would panic on first use.
#[cfg(feature = "wgpu")]
fn wgpu_default_device() -> Result<Device, BackendError> {
    use burn::tensor::wgpu::WgpuInitError;
    use std::sync::OnceLock;

    static OPENED: OnceLock<Result<Device, BackendError>> = OnceLock::new();
    OPENED
        .get_or_init(|| match Device::wgpu_options().init() {
            Ok(device) => Ok(device),
            Err(
                err @ (WgpuInitError::AdapterUnavailable { .. }
                | WgpuInitError::RequestDevice { .. }
                | WgpuInitError::UnsupportedGraphicsApi { .. }),
            ) => Err(BackendError::Unavailable {
                name: "wgpu".into(),
                reason: err.to_string(),
                hint: "wgpu needs a Vulkan, Metal or DX12 driver. On Linux: a GPU driver with \
                       its Vulkan ICD, or, on a machine without a GPU, lavapipe (software \
                       Vulkan): `apt-get install mesa-vulkan-drivers libvulkan1`"
                    .into(),
            }),
            // Already opened by other code in this process (a tensor made on
            // `Device::wgpu(..)` first): that device is the one to share.
            Err(_) => Ok(Device::wgpu(burn::tensor::DeviceKind::DefaultDevice)),
        })
        .clone()
}

/// `f()` with the CPU's threads ready for it: on a plain Flex device, `f` runs on one of rayon's
/// worker threads while the others poll for its kernels' shares of work until it returns (as
/// ONNX Runtime's and OpenMP's spinning thread pools do); on any other device, or when called
/// from a rayon worker already, `f()` as it is.
///
/// Every model's [`crate::Architecture::try_forward`] through [`crate::Model`] runs this way. Use it
/// around a chain of your own Burn ops on Flex (or a family's typed model): at batch 1, each of
/// MobileNetV3-Small's kernels otherwise hands its work to the pool from outside and waits, and
/// the other threads fall asleep between kernels (docs/src/speed.md).
pub fn on_cpu_workers<R: Send>(device: &Device, f: impl FnOnce() -> R + Send) -> R {
    #[cfg(feature = "flex")]
    {
        crate::kernels::on_worker(device, f)
    }
    #[cfg(not(feature = "flex"))]
    {
        let _ = device;
        f()
    }
}

/// The largest tensor, in bytes, that `device` can hand a kernel in one buffer
/// (`maxStorageBufferBindingSize` on wgpu: 128 MiB on lavapipe and WebGPU's default), or `None`
/// where the backend sets no such limit (the CPU backends). An autodiff device answers for the
/// device it wraps.
pub fn max_tensor_bytes(device: &Device) -> Option<u64> {
    #[cfg(any(feature = "wgpu", feature = "cuda"))]
    {
        use burn::backend::DispatchDevice;
        fn of(device: &DispatchDevice) -> Option<u64> {
            match device {
                DispatchDevice::Cube(cube) => Some(cube.client().properties().memory.max_page_size),
                DispatchDevice::Autodiff(inner) => of(inner),
                #[allow(unreachable_patterns)]
                _ => None,
            }
        }
        of(device.as_dispatch())
    }
    #[cfg(not(any(feature = "wgpu", feature = "cuda")))]
    {
        let _ = device;
        None
    }
}

/// Reads `tensor` back to the host, waiting for the device: the one place where a GPU backend
/// reports what it could not run (Burn runs lazily). A failure is a [`DeviceError::Execution`]
/// saying what was being computed and, for an allocation, its size against the device's limit,
/// instead of the panic of `into_data`; the device stays usable.
pub fn read_back<const D: usize>(tensor: Tensor<D>, what: &str) -> Result<TensorData, DeviceError> {
    let device = tensor.device();
    tensor
        .try_into_data()
        .map_err(|err| execution_error(&err, what, &device))
}

/// Waits for everything queued on `device`, as [`read_back`] does for one tensor: what the
/// device could not run (the gradients of a training step, say) is a
/// [`DeviceError::Execution`], not a panic.
pub fn sync(device: &Device, what: &str) -> Result<(), DeviceError> {
    device
        .sync()
        .map_err(|err| execution_error(&err, what, device))
}

fn execution_error(err: &impl fmt::Display, what: &str, device: &Device) -> DeviceError {
    let message = err.to_string();
    DeviceError::Execution {
        what: what.to_string(),
        bytes: failed_allocation(&message),
        limit: max_tensor_bytes(device),
        message: message.lines().take(8).collect::<Vec<_>>().join(" | "),
    }
}

/// The size in cubecl's "can't allocate buffer of size: N" / "out of device memory allocating N
/// bytes", if the message holds one.
fn failed_allocation(message: &str) -> Option<u64> {
    [
        "can't allocate buffer of size: ",
        "out of device memory allocating ",
    ]
    .iter()
    .find_map(|marker| {
        let at = message.find(marker)? + marker.len();
        let digits: String = message[at..]
            .chars()
            .take_while(char::is_ascii_digit)
            .collect();
        digits.parse().ok()
    })
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

/// A backend name that cannot be used in this build, or a backend this machine cannot open.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BackendError {
    /// The backend is compiled in, but this machine has no device for it.
    #[error("backend `{name}` has no device on this machine: {reason}. {hint}")]
    Unavailable {
        /// The backend's name.
        name: String,
        /// What the backend reported.
        reason: String,
        /// What to install or check.
        hint: String,
    },
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
    fn failed_allocations_are_read_from_the_message() {
        let message = "Several failures at once\nCaused by:\n  An IO error happened\nCaused by:\n  \
                       can't allocate buffer of size: 648000000\nNo backtrace available";
        assert_eq!(failed_allocation(message), Some(648_000_000));
        assert_eq!(
            failed_allocation("out of device memory allocating 1024 bytes"),
            Some(1024)
        );
        assert_eq!(failed_allocation("The device is poisoned"), None);
        let err = DeviceError::Execution {
            what: "logits".into(),
            bytes: Some(648_000_000),
            limit: Some(128 << 20),
            message: message.into(),
        };
        assert_eq!(
            err.to_string(),
            "computing logits: the device cannot allocate a 618.0 MiB tensor, over its limit of \
             128.0 MiB for one buffer; use a smaller batch or image size"
        );
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
