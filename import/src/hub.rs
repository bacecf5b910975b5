//! Pretrained weights: download from torchvision's (or Paddle's) server, verify by SHA-256 (or
//! Paddle's MD5), cache, convert once to Burn's format, load.
//!
//! ```no_run
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let device = model_zoo::Backend::Flex.device()?;
//! let model = zoo_import::pretrained("resnet50", "DEFAULT", &device)?;
//! # Ok(()) }
//! ```
//!
//! # The cache
//! Under `$ZOO_CACHE` if set, else the platform cache directory (`~/.cache/burn-model-zoo` on
//! Linux):
//! - `torch/<file>.pth`: torchvision's files, under their own names (`resnet50-11ad3fa6.pth`);
//! - `paddle/<model>.pdparams`: paddle.vision's files (`PADDLE_IMAGENET` weights);
//! - `burn/<model>-<WEIGHTS>-<sha>.bpk`: the same weights in Burn's format, which load several
//!   times faster than the pickle.
//!
//! Before downloading a torchvision file, PyTorch's own hub cache is looked at:
//! `$TORCH_HOME/hub/checkpoints/<file>` (`$TORCH_HOME` defaulting to `$XDG_CACHE_HOME/torch`, then
//! `~/.cache/torch`, as `torch.hub` does). A file there whose SHA-256 starts with the prefix in
//! its name is used where it is (not copied); one of that name with other content is refused,
//! naming both digests.
//!
//! A download goes to a temporary file beside its destination, is hashed while it streams, and is
//! renamed into place only when its length and digest are right; any failure removes it. A file
//! that is in the cache is never downloaded again. `$ZOO_WEIGHTS_URL` replaces torchvision's
//! base URL, for a mirror or a local server.

use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::Duration;

use burn::tensor::Device;
use model_zoo::{
    BuildOptions, Checksum, FeatureExtractor, Model, ModelInfo, RegistryError, WeightsFile,
    WeightsInfo, WeightsSource,
    segmentation::{
        self, SegmentationConfig, SegmentationInfo, SegmentationModel, SegmentationTransform,
        SegmentationWeights,
    },
};
use sha2::{Digest, Sha256};

#[cfg(feature = "download")]
use crate::download::download_checked;
use crate::{Import, ImportError, WeightFormat, load_burnpack, save_burnpack};

/// Environment variable naming the cache directory.
pub const CACHE_ENV: &str = "ZOO_CACHE";
/// Environment variable replacing torchvision's base URL (`https://download.pytorch.org/models/`).
pub const BASE_URL_ENV: &str = "ZOO_WEIGHTS_URL";
/// PyTorch's home directory variable (`torch.hub.get_dir()` is `$TORCH_HOME/hub`).
pub const TORCH_HOME_ENV: &str = "TORCH_HOME";

/// Why a download failed. The destination is never left holding a partial or unverified file.
#[derive(Debug, thiserror::Error)]
pub enum DownloadError {
    /// No response: DNS, connection refused or reset, timeout. Often: no network.
    #[error(
        "cannot download {url} (tried {attempts}x): {message}. If this machine is offline, \
         fetch the file elsewhere and convert it from disk (`zoo-train import <model> --from FILE`)"
    )]
    Network {
        /// The URL.
        url: String,
        /// How many times it was tried.
        attempts: u32,
        /// The last failure.
        message: String,
    },
    /// No route to the server: the host name does not resolve, or the connection is refused
    /// or unreachable. Not retried: this is how an offline machine fails, at once.
    #[error(
        "cannot reach {url}: {message}. This machine looks offline: download {file} elsewhere \
         and convert it from disk (`zoo-train import <model> --from {file}`, or \
         `zoo_import::Import::new(\"{file}\")`), or put it in PyTorch's hub cache \
         ($TORCH_HOME/hub/checkpoints)"
    )]
    Unreachable {
        /// The URL.
        url: String,
        /// The file name to fetch by hand.
        file: String,
        /// What the connection attempt said.
        message: String,
    },
    /// zoo-import was built without its `download` feature, and the file is in neither cache.
    #[error(
        "cannot download {url}: zoo-import was built without its `download` feature; download \
         {file} yourself and convert it from disk (`zoo_import::Import::new(\"{file}\")`, or \
         `zoo-train import <model> --from {file}`), or put it in PyTorch's hub cache \
         ($TORCH_HOME/hub/checkpoints)"
    )]
    NotBuilt {
        /// The URL.
        url: String,
        /// The file name to fetch by hand.
        file: String,
    },
    /// The server answered with an error status.
    #[error("downloading {url}: the server answered HTTP {status} (tried {attempts}x)")]
    Status {
        /// The URL.
        url: String,
        /// The HTTP status.
        status: u16,
        /// How many times it was tried.
        attempts: u32,
    },
    /// The body ended before its announced length: a dropped connection.
    #[error(
        "downloading {url}: received {received} of {expected} bytes (tried {attempts}x); \
         the partial file was removed"
    )]
    Truncated {
        /// The URL.
        url: String,
        /// The announced length.
        expected: u64,
        /// What arrived.
        received: u64,
        /// How many times it was tried.
        attempts: u32,
    },
    /// The server stopped sending: no byte arrived for the stall timeout.
    #[error(
        "downloading {url}: no data for {seconds} s after {received} bytes (tried {attempts}x); \
         the partial file was removed"
    )]
    Stalled {
        /// The URL.
        url: String,
        /// The stall timeout ([`DownloadOptions::stall_timeout`]), in seconds.
        seconds: f64,
        /// What arrived before the stall.
        received: u64,
        /// How many times it was tried.
        attempts: u32,
    },
    /// The file arrived whole but its SHA-256 does not start with the expected prefix (or its
    /// MD5, for Paddle's files, is not the published one).
    #[error(
        "{url}: {algorithm} is {found}, expected {expected}; the file is corrupt or not \
         the one published, and was discarded"
    )]
    Checksum {
        /// The URL.
        url: String,
        /// `SHA-256` or `MD5`.
        algorithm: &'static str,
        /// The digest or prefix from the descriptor (torchvision's file name's 8 hex digits).
        expected: String,
        /// The downloaded file's digest (full).
        found: String,
    },
    /// PyTorch's hub cache holds a file of the published name whose digest is not the
    /// published one.
    #[error(
        "{path}: PyTorch's hub cache holds this file with {algorithm} {found}, expected {expected} \
         (torchvision's published file): refused; remove it, or let PyTorch download it again"
    )]
    HubChecksum {
        /// The file in the hub cache.
        path: PathBuf,
        /// `SHA-256`.
        algorithm: &'static str,
        /// The digest or prefix from the descriptor.
        expected: String,
        /// The file's digest (full).
        found: String,
    },
    /// The cache could not be written.
    #[error("cannot write {path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
}

impl DownloadError {
    #[cfg(feature = "download")]
    /// Whether trying again may help: network failures, dropped connections, server errors
    /// (5xx), 408 and 429. A 404 or a checksum mismatch will not change.
    pub(crate) fn is_transient(&self) -> bool {
        match self {
            DownloadError::Network { .. }
            | DownloadError::Truncated { .. }
            | DownloadError::Stalled { .. } => true,
            DownloadError::Status { status, .. } => {
                *status >= 500 || *status == 408 || *status == 429
            }
            DownloadError::Unreachable { .. }
            | DownloadError::NotBuilt { .. }
            | DownloadError::Checksum { .. }
            | DownloadError::HubChecksum { .. }
            | DownloadError::Io { .. } => false,
        }
    }

    #[cfg(feature = "download")]
    /// What went wrong, in a few words, for a retry message.
    pub(crate) fn summary(&self) -> String {
        match self {
            DownloadError::Network { message, .. } => message.clone(),
            DownloadError::Status { status, .. } => format!("HTTP {status}"),
            DownloadError::Truncated {
                expected, received, ..
            } => format!("connection dropped after {received} of {expected} bytes"),
            DownloadError::Stalled {
                seconds, received, ..
            } => format!("no data for {seconds} s after {received} bytes"),
            other => other.to_string(),
        }
    }

    #[cfg(feature = "download")]
    pub(crate) fn set_attempts(&mut self, n: u32) {
        match self {
            DownloadError::Network { attempts, .. }
            | DownloadError::Status { attempts, .. }
            | DownloadError::Truncated { attempts, .. }
            | DownloadError::Stalled { attempts, .. } => *attempts = n,
            DownloadError::Unreachable { .. }
            | DownloadError::NotBuilt { .. }
            | DownloadError::Checksum { .. }
            | DownloadError::HubChecksum { .. }
            | DownloadError::Io { .. } => {}
        }
    }
}

/// Why pretrained weights could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum HubError {
    /// Unknown model or weights name, or a model that cannot be built.
    #[error(transparent)]
    Registry(#[from] RegistryError),
    /// The download failed.
    #[error(transparent)]
    Download(#[from] DownloadError),
    /// The file did not import (wrong keys or shapes, unreadable) or could not be converted.
    #[error(transparent)]
    Import(#[from] ImportError),
}

/// Where pretrained weights are cached, and how they are fetched.
#[derive(Debug, Clone)]
pub struct WeightsCache {
    root: PathBuf,
    base_url: Option<String>,
    torch_hub: Option<PathBuf>,
    download: DownloadOptions,
}

impl WeightsCache {
    /// A cache in `root`, downloading from torchvision (or `$ZOO_WEIGHTS_URL`), with a progress
    /// bar on a terminal and 3 attempts per file, using PyTorch's hub cache
    /// ([`torch_hub_dir`]) before downloading.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self {
            root: root.into(),
            base_url: std::env::var(BASE_URL_ENV).ok().filter(|u| !u.is_empty()),
            torch_hub: torch_hub_dir(),
            download: DownloadOptions::default(),
        }
    }

    /// Looks for torchvision's files in `dir` (PyTorch's `hub/checkpoints`) before downloading
    /// them; `None` never looks.
    pub fn with_torch_hub(mut self, dir: Option<PathBuf>) -> Self {
        self.torch_hub = dir;
        self
    }

    /// The cache in `$ZOO_CACHE`, else the platform cache directory's `burn-model-zoo`.
    pub fn from_env() -> Self {
        Self::new(default_cache_dir())
    }

    /// Downloads from `base_url` + file name instead of torchvision's server.
    pub fn with_base_url(mut self, base_url: impl Into<String>) -> Self {
        self.base_url = Some(base_url.into());
        self
    }

    /// Shows (default) or hides the progress bar. It is drawn only on a terminal anyway.
    pub fn with_progress(mut self, progress: bool) -> Self {
        self.download.progress = progress;
        self
    }

    /// Tries each download this many times (at least once) when failures are transient, waiting
    /// `delay`, then twice as long, between attempts.
    pub fn with_retries(mut self, attempts: u32, delay: Duration) -> Self {
        self.download.attempts = attempts.max(1);
        self.download.retry_delay = delay;
        self
    }

    /// Fails an attempt when the server sends nothing for `timeout` (default 60 s): a stalled
    /// download is retried like a dropped one, and leaves nothing in the cache.
    pub fn with_stall_timeout(mut self, timeout: Duration) -> Self {
        self.download.stall_timeout = timeout;
        self
    }

    /// The cache directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Where the published file for `weights` is (or will be) cached: under `torch/` for
    /// torchvision's, `paddle/` for Paddle's.
    pub fn published_path(&self, weights: impl Into<WeightsFile>) -> PathBuf {
        let weights = weights.into();
        let dir = match weights.source {
            WeightsSource::Torchvision => "torch",
            WeightsSource::PaddleVision => "paddle",
        };
        self.root.join(dir).join(weights.file_name())
    }

    /// Where the converted Burn file of `model` with `weights` is (or will be) cached.
    pub fn burnpack_path(&self, model: &str, weights: impl Into<WeightsFile>) -> PathBuf {
        let weights = weights.into();
        self.root.join("burn").join(format!(
            "{model}-{}-{}.bpk",
            weights.name,
            weights.checksum.short()
        ))
    }

    /// The URL `weights` is downloaded from: its descriptor's, or the same file name under
    /// `$ZOO_WEIGHTS_URL` / [`Self::with_base_url`].
    pub fn url(&self, weights: impl Into<WeightsFile>) -> String {
        let weights = weights.into();
        match &self.base_url {
            Some(base) => format!("{}/{}", base.trim_end_matches('/'), weights.file_name()),
            None => weights.url.to_string(),
        }
    }

    /// The published file for `weights`: from the cache, from PyTorch's hub cache (verified,
    /// used where it is), or downloaded and verified into the cache.
    pub fn fetch(&self, weights: impl Into<WeightsFile>) -> Result<PathBuf, DownloadError> {
        let weights = weights.into();
        let path = self.published_path(weights);
        if path.is_file() {
            return Ok(path);
        }
        if let Some(hub) = self.torch_hub_file(weights)? {
            return Ok(hub);
        }
        download_verified(&self.url(weights), weights.checksum, &path, &self.download)?;
        Ok(path)
    }

    /// torchvision's file for `weights` in PyTorch's hub cache, if it is there and its digest
    /// is the published one; an error if it is there with another.
    fn torch_hub_file(&self, weights: WeightsFile) -> Result<Option<PathBuf>, DownloadError> {
        let Some(dir) = self.torch_hub.as_ref() else {
            return Ok(None);
        };
        if weights.source != WeightsSource::Torchvision {
            return Ok(None);
        }
        let path = dir.join(weights.file_name());
        if !path.is_file() {
            return Ok(None);
        }
        let found = checksum_file(&path, weights.checksum)?;
        if !weights.checksum.matches(&found) {
            return Err(DownloadError::HubChecksum {
                path,
                algorithm: weights.checksum.algorithm(),
                expected: weights.checksum.hex().to_string(),
                found,
            });
        }
        Ok(Some(path))
    }

    /// The Burn file of `model` with `weights` (`"DEFAULT"`, `"IMAGENET1K_V2"`, ...): from the
    /// cache, or made by fetching torchvision's file and converting it.
    pub fn convert(
        &self,
        model: &str,
        weights: &str,
        device: &Device,
    ) -> Result<PathBuf, HubError> {
        let info = model_zoo::model_info(model)?;
        self.convert_weights(info, info.weights(weights)?, device)
    }

    /// `model` with pretrained `weights` (`"DEFAULT"`, `"IMAGENET1K_V2"`, ...) on `device`,
    /// downloading and converting on first use.
    pub fn load(&self, model: &str, weights: &str, device: &Device) -> Result<Model, HubError> {
        let info = model_zoo::model_info(model)?;
        self.load_weights(info, info.weights(weights)?, device)
    }

    /// `model` as a backbone ([`FeatureExtractor`]: the maps of the stages `out_indices`,
    /// every stage where empty) with pretrained `weights`, its head left out: timm's
    /// `create_model(name, pretrained=True, features_only=True, out_indices=...)`. The cached
    /// Burn file is the classifier's; the head's tensors in it are not loaded.
    pub fn load_features(
        &self,
        model: &str,
        weights: &str,
        out_indices: &[usize],
        device: &Device,
    ) -> Result<FeatureExtractor<Model>, HubError> {
        let info = model_zoo::model_info(model)?;
        self.load_features_weights(info, info.weights(weights)?, out_indices, device)
    }

    /// [`Self::load_features`] for any descriptor (see [`Self::convert_weights`]).
    pub fn load_features_weights(
        &self,
        info: &ModelInfo,
        weights: &WeightsInfo,
        out_indices: &[usize],
        device: &Device,
    ) -> Result<FeatureExtractor<Model>, HubError> {
        let backbone = match self.converted(info, weights, device)? {
            (_, Some(model)) => FeatureExtractor::new(model, out_indices),
            (burnpack, None) => {
                let model = info.create_for_weights(weights.num_classes(), device);
                let backbone =
                    FeatureExtractor::new(model.map_err(RegistryError::from)?, out_indices)
                        .map_err(RegistryError::from)?;
                return Ok(backbone.map_model(|m| load_burnpack(m, &burnpack))?);
            }
        };
        Ok(backbone.map_err(RegistryError::from)?)
    }

    /// [`Self::convert`] for any descriptor, including one that is not in the registry (a
    /// mirror's or your own file): fetches it, imports it strictly into `info`'s model, and
    /// writes the Burn file atomically.
    pub fn convert_weights(
        &self,
        info: &ModelInfo,
        weights: &WeightsInfo,
        device: &Device,
    ) -> Result<PathBuf, HubError> {
        self.converted(info, weights, device)
            .map(|(burnpack, _imported)| burnpack)
    }

    /// [`Self::load`] for any descriptor (see [`Self::convert_weights`]).
    pub fn load_weights(
        &self,
        info: &ModelInfo,
        weights: &WeightsInfo,
        device: &Device,
    ) -> Result<Model, HubError> {
        match self.converted(info, weights, device)? {
            // Just converted: the imported model is the one written, no need to read it back.
            (_, Some(model)) => Ok(model),
            (burnpack, None) => {
                let model = info
                    .create_for_weights(weights.num_classes(), device)
                    .map_err(RegistryError::from)?;
                Ok(load_burnpack(model, &burnpack)?)
            }
        }
    }

    /// The segmentation model `model` (`deeplabv3_resnet50`, ...) with pretrained `weights`
    /// (`"DEFAULT"`, `"COCO_WITH_VOC_LABELS_V1"`) on `device`, with the aux head the published
    /// file holds (drop it with `without_aux` for inference): torchvision's
    /// `get_model(model, weights=...)`. Downloaded and converted on first use.
    pub fn load_segmentation(
        &self,
        model: &str,
        weights: &str,
        device: &Device,
    ) -> Result<SegmentationModel, HubError> {
        let info = segmentation::model_info(model)?;
        self.load_segmentation_weights(info, info.weights(weights)?, device)
    }

    /// [`Self::load_segmentation`] for any descriptor (a mirror's or your own file).
    pub fn load_segmentation_weights(
        &self,
        info: &SegmentationInfo,
        weights: &SegmentationWeights,
        device: &Device,
    ) -> Result<SegmentationModel, HubError> {
        let fresh = || {
            info.create_for_weights(weights.num_classes(), device)
                .map_err(RegistryError::from)
        };
        let burnpack = self.burnpack_path(info.name, weights);
        if burnpack.is_file() {
            return Ok(load_burnpack(fresh()?, &burnpack)?);
        }
        let torch = self.fetch(weights)?;
        let (model, _report) = Import::new(&torch)
            .model_name(info.name)
            .load_into(fresh()?)?;
        save_burnpack(&model, &burnpack)?;
        Ok(model)
    }

    /// A segmentation model built as `config` says with its backbone's ImageNet weights
    /// `backbone_weights` (`"IMAGENET1K_V1"`, or `"DEFAULT"`) and fresh heads: torchvision's
    /// `weights_backbone`, what its reference script trains from (its default is
    /// `IMAGENET1K_V1`).
    pub fn segmentation_with_backbone(
        &self,
        config: &SegmentationConfig,
        backbone_weights: &str,
        device: &Device,
    ) -> Result<SegmentationModel, HubError> {
        let model = config.init(device).map_err(RegistryError::from)?;
        let classifier = self.load(config.arch.backbone_name(), backbone_weights, device)?;
        Ok(model
            .with_backbone(classifier)
            .map_err(RegistryError::from)?)
    }

    /// The Burn file of `info` with `weights`, and the model imported to write it when it was
    /// not in the cache yet.
    fn converted(
        &self,
        info: &ModelInfo,
        weights: &WeightsInfo,
        device: &Device,
    ) -> Result<(PathBuf, Option<Model>), HubError> {
        let burnpack = self.burnpack_path(info.name, weights);
        if burnpack.is_file() {
            return Ok((burnpack, None));
        }
        let torch = self.fetch(weights)?;
        let model = import_published(info, weights.num_classes(), &torch, device)?;
        save_burnpack(&model, &burnpack)?;
        Ok((burnpack, Some(model)))
    }
}

/// `model` with pretrained `weights` (`"DEFAULT"`, `"IMAGENET1K_V1"`, ...) on `device`, from the
/// cache in `$ZOO_CACHE` (see [`WeightsCache`]), downloading and converting on first use.
pub fn pretrained(model: &str, weights: &str, device: &Device) -> Result<Model, HubError> {
    WeightsCache::from_env().load(model, weights, device)
}

/// [`pretrained`] as a backbone: the feature maps of the stages `out_indices` of `model`'s
/// `feature_info()` (every stage where empty), its head removed (see
/// [`WeightsCache::load_features`]).
pub fn pretrained_features(
    model: &str,
    weights: &str,
    out_indices: &[usize],
    device: &Device,
) -> Result<FeatureExtractor<Model>, HubError> {
    WeightsCache::from_env().load_features(model, weights, out_indices, device)
}

/// Imports a weight file (strictly) into a fresh `info` model with `num_classes` classes: a
/// PyTorch or safetensors file, or a PaddlePaddle `.pdparams`, told apart by its content
/// ([`Import`]), into the model [`model_for_file`] builds for it.
pub fn import_file(
    info: &ModelInfo,
    num_classes: usize,
    path: &Path,
    device: &Device,
) -> Result<Model, HubError> {
    let model = model_for_file(info, &BuildOptions::new(num_classes), path, device)?;
    let (model, _report) = Import::new(path).model_name(info.name).load_into(model)?;
    Ok(model)
}

/// The fresh `info` model a weight file at `path` fills: for one of `info`'s published files
/// (recognised by [`published_as`]) the model torchvision's builder makes for weights
/// ([`ModelInfo::create_for_weights`]: GoogLeNet's and Inception v3's input transform), for any
/// other file [`ModelInfo::create`]'s, torchvision's `weights=None` model, as a PyTorch user's
/// own checkpoint was built; both as `options` say (classes, input channels, drop rates). A checkpoint fine-tuned in PyTorch from torchvision's GoogLeNet or
/// Inception v3 weights needs the former: build it with `create_for_weights` and load it with
/// [`Import`].
pub fn model_for_file(
    info: &ModelInfo,
    options: &BuildOptions,
    path: &Path,
    device: &Device,
) -> Result<Model, RegistryError> {
    Ok(if published_as(info, path).is_some() {
        info.create_for_weights_with(options, device)?
    } else {
        info.create_with(options, device)?
    })
}

/// [`import_file`] into the model torchvision's builder makes for pretrained weights
/// ([`ModelInfo::create_for_weights`]: GoogLeNet and Inception v3 with their input transform,
/// GoogLeNet without aux heads), for torchvision's published files.
pub fn import_published(
    info: &ModelInfo,
    num_classes: usize,
    path: &Path,
    device: &Device,
) -> Result<Model, HubError> {
    let model = info
        .create_for_weights(num_classes, device)
        .map_err(RegistryError::from)?;
    let (model, _report) = Import::new(path).model_name(info.name).load_into(model)?;
    Ok(model)
}

/// A weight file of the segmentation model `info` with `num_classes` classes: a burnpack file
/// (`zoo-train`'s, with or without the aux head, as saved), or a PyTorch, safetensors or Paddle
/// file into the model without its aux head (a file's aux keys are ignored), strictly.
pub fn segmentation_from_file(
    info: &SegmentationInfo,
    num_classes: usize,
    path: &Path,
    device: &Device,
) -> Result<SegmentationModel, HubError> {
    let config = SegmentationConfig::new(info.arch).with_num_classes(num_classes);
    if matches!(WeightFormat::detect(path)?, WeightFormat::Burnpack) {
        let aux = crate::burnpack_shapes(path)?
            .keys()
            .any(|k| k.starts_with("aux_classifier."));
        let model = config
            .with_aux_loss(aux)
            .init(device)
            .map_err(RegistryError::from)?;
        return Ok(load_burnpack(model, path)?);
    }
    let model = config.init(device).map_err(RegistryError::from)?;
    let (model, _report) = Import::new(path).model_name(info.name).load_into(model)?;
    Ok(model)
}

/// Whether a `--weights` argument is a file (one that exists, or a weight file's extension:
/// `.bpk`, `.pth`, `.pt`, `.safetensors`, `.pdparams`) rather than a published weights name.
pub fn names_a_file(weights: &str) -> bool {
    let path = Path::new(weights);
    path.is_file()
        || path.extension().is_some_and(|e| {
            ["bpk", "pth", "pt", "safetensors", "pdparams"].contains(&&*e.to_string_lossy())
        })
}

/// A segmentation model ready for inference, with the transform and class names of its
/// weights.
#[derive(Debug)]
pub struct Segmenter {
    /// The model, without its aux head (inference needs only `out`).
    pub model: SegmentationModel,
    /// The eval transform the weights expect (a file's: the published weights').
    pub transform: SegmentationTransform,
    /// Class names, where the label set is known (VOC's for 21 classes).
    pub class_names: Option<&'static [&'static str]>,
    /// Where the weights came from, for messages.
    pub source: String,
}

/// The segmentation model `model` with `weights`: a torchvision weights name (`DEFAULT`,
/// `COCO_WITH_VOC_LABELS_V1`), downloaded and converted on first use, or a weight file of
/// `num_classes` classes ([`segmentation_from_file`]): what `examples/segment.rs` and
/// `zoo-train segment` load.
pub fn load_segmenter(
    model: &str,
    weights: &str,
    num_classes: usize,
    device: &Device,
) -> Result<Segmenter, HubError> {
    let info = segmentation::model_info(model)?;
    let published = info
        .default_weights()
        .ok_or_else(|| RegistryError::UnknownWeights {
            model: model.to_string(),
            name: "DEFAULT".into(),
            available: Vec::new(),
        })?;
    let path = Path::new(weights);
    if !names_a_file(weights) {
        let descriptor = info.weights(weights)?;
        let model = WeightsCache::from_env().load_segmentation(model, weights, device)?;
        return Ok(Segmenter {
            model: model.without_aux(),
            transform: descriptor.transform,
            class_names: Some(descriptor.categories.names()),
            source: format!("{} {}", info.name, descriptor.name),
        });
    }
    let model = segmentation_from_file(info, num_classes, path, device)?;
    Ok(Segmenter {
        model: model.without_aux(),
        transform: published.transform,
        class_names: (num_classes == published.num_classes()).then(|| published.categories.names()),
        source: path.display().to_string(),
    })
}

/// [`pretrained`] for a segmentation model (see [`WeightsCache::load_segmentation`]):
/// `pretrained_segmentation("deeplabv3_resnet50", "DEFAULT", &device)`.
pub fn pretrained_segmentation(
    model: &str,
    weights: &str,
    device: &Device,
) -> Result<SegmentationModel, HubError> {
    WeightsCache::from_env().load_segmentation(model, weights, device)
}

/// `$ZOO_CACHE`, else the platform cache directory's `burn-model-zoo` (`~/.cache/burn-model-zoo`
/// on Linux), else a directory under the system's temporary directory.
pub fn default_cache_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os(CACHE_ENV).filter(|d| !d.is_empty()) {
        return PathBuf::from(dir);
    }
    dirs::cache_dir()
        .unwrap_or_else(std::env::temp_dir)
        .join("burn-model-zoo")
}

/// PyTorch's hub checkpoints directory, where `torch.hub.load_state_dict_from_url` (and so
/// torchvision's `weights=`) keeps downloaded files: `$TORCH_HOME/hub/checkpoints`, with
/// `$TORCH_HOME` defaulting to `$XDG_CACHE_HOME/torch`, then `~/.cache/torch` (as
/// `torch.hub._get_torch_home`). `None` without a home directory.
pub fn torch_hub_dir() -> Option<PathBuf> {
    let set = |name: &str| {
        std::env::var_os(name)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    let home = set(TORCH_HOME_ENV).or_else(|| {
        set("XDG_CACHE_HOME")
            .or_else(|| dirs::home_dir().map(|home| home.join(".cache")))
            .map(|cache| cache.join("torch"))
    })?;
    Some(home.join("hub").join("checkpoints"))
}

/// How [`download`] behaves.
#[derive(Debug, Clone)]
pub struct DownloadOptions {
    /// Draw a progress bar (only on a terminal).
    pub progress: bool,
    /// Attempts for transient failures (at least one).
    pub attempts: u32,
    /// Wait before the second attempt; doubled for each further one.
    pub retry_delay: Duration,
    /// How long the server may send nothing (no response, or no byte of the body) before the
    /// attempt fails as [`DownloadError::Stalled`] (or a network error, before the response).
    pub stall_timeout: Duration,
}

impl Default for DownloadOptions {
    fn default() -> Self {
        Self {
            progress: true,
            attempts: 3,
            retry_delay: Duration::from_secs(2),
            stall_timeout: Duration::from_secs(60),
        }
    }
}

/// Downloads `url` to `dest`, which appears only once the whole file is there and its SHA-256
/// (lowercase hex) starts with `sha256_prefix`. Transient failures are retried.
pub fn download(
    url: &str,
    sha256_prefix: &str,
    dest: &Path,
    options: &DownloadOptions,
) -> Result<(), DownloadError> {
    download_checked(url, Expected::Sha256Prefix(sha256_prefix), dest, options)
}

/// [`download`], verified by a registry descriptor's checksum (a SHA-256 prefix, or Paddle's
/// MD5).
pub fn download_verified(
    url: &str,
    checksum: Checksum,
    dest: &Path,
    options: &DownloadOptions,
) -> Result<(), DownloadError> {
    let expected = match checksum {
        Checksum::Sha256Prefix(hex) => Expected::Sha256Prefix(hex),
        Checksum::Md5(hex) => Expected::Md5(hex),
    };
    download_checked(url, expected, dest, options)
}

/// What a download's digest must be. Without the `download` feature only the algorithm is
/// read (hashing files on disk), not the expected digest.
#[derive(Clone, Copy)]
#[cfg_attr(not(feature = "download"), allow(dead_code))]
pub(crate) enum Expected<'a> {
    Sha256Prefix(&'a str),
    Md5(&'a str),
}

/// The digest of a download, computed while it streams.
pub(crate) enum Hasher {
    Sha256(Sha256),
    Md5(md5::Md5),
}

impl Expected<'_> {
    pub(crate) fn hasher(self) -> Hasher {
        match self {
            Expected::Sha256Prefix(_) => Hasher::Sha256(Sha256::new()),
            Expected::Md5(_) => Hasher::Md5(md5::Md5::new()),
        }
    }

    #[cfg(feature = "download")]
    pub(crate) fn hex(self) -> String {
        match self {
            Expected::Sha256Prefix(hex) | Expected::Md5(hex) => hex.to_ascii_lowercase(),
        }
    }

    #[cfg(feature = "download")]
    pub(crate) fn algorithm(self) -> &'static str {
        match self {
            Expected::Sha256Prefix(_) => "SHA-256",
            Expected::Md5(_) => "MD5",
        }
    }
}

impl Hasher {
    pub(crate) fn update(&mut self, bytes: &[u8]) {
        match self {
            Hasher::Sha256(h) => h.update(bytes),
            Hasher::Md5(h) => h.update(bytes),
        }
    }

    pub(crate) fn hex(self) -> String {
        match self {
            Hasher::Sha256(h) => format!("{:x}", h.finalize()),
            Hasher::Md5(h) => format!("{:x}", h.finalize()),
        }
    }
}

/// Without the `download` feature: no network, an error naming the file to fetch by hand.
#[cfg(not(feature = "download"))]
fn download_checked(
    url: &str,
    _expected: Expected<'_>,
    _dest: &Path,
    _options: &DownloadOptions,
) -> Result<(), DownloadError> {
    Err(DownloadError::NotBuilt {
        url: url.to_string(),
        file: url.rsplit('/').next().unwrap_or(url).to_string(),
    })
}

/// Maps an OS error on `path` to [`DownloadError::Io`].
pub(crate) fn io_error(path: &Path) -> impl FnOnce(std::io::Error) -> DownloadError + '_ {
    move |source| DownloadError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// SHA-256 of a file, lowercase hex.
pub fn sha256_file(path: &Path) -> Result<String, DownloadError> {
    digest_file(path, Expected::Sha256Prefix(""))
}

/// Which of `info`'s published weight files `path` is, by its digest (torchvision's SHA-256
/// prefix or Paddle's MD5), if any: such a file builds [`ModelInfo::create_for_weights`]'s
/// model. A file that cannot be read is no published file.
pub fn published_as(info: &ModelInfo, path: &Path) -> Option<&'static WeightsInfo> {
    // One pass over the file per algorithm, not per descriptor (a model has up to 4 files).
    let mut digests: Vec<(&'static str, Option<String>)> = Vec::new();
    info.weights.iter().find(|d| {
        let algorithm = d.checksum.algorithm();
        let digest = match digests.iter().find(|(a, _)| *a == algorithm) {
            Some((_, digest)) => digest.clone(),
            None => {
                let digest = checksum_file(path, d.checksum).ok();
                digests.push((algorithm, digest.clone()));
                digest
            }
        };
        digest.is_some_and(|digest| d.checksum.matches(&digest))
    })
}

/// The digest of a file in `checksum`'s algorithm, lowercase hex: compare it with
/// [`Checksum::matches`].
pub fn checksum_file(path: &Path, checksum: Checksum) -> Result<String, DownloadError> {
    let expected = match checksum {
        Checksum::Sha256Prefix(_) => Expected::Sha256Prefix(""),
        Checksum::Md5(_) => Expected::Md5(""),
    };
    digest_file(path, expected)
}

fn digest_file(path: &Path, algorithm: Expected<'_>) -> Result<String, DownloadError> {
    let mut file = File::open(path).map_err(io_error(path))?;
    let mut hasher = algorithm.hasher();
    let mut buffer = vec![0u8; 1 << 16];
    loop {
        match file.read(&mut buffer) {
            Ok(0) => break,
            Ok(n) => hasher.update(&buffer[..n]),
            Err(err) if err.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(err) => return Err(io_error(path)(err)),
        }
    }
    Ok(hasher.hex())
}
