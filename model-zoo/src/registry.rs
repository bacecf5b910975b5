//! The registry: every model by its torchvision name, with its metadata and the descriptors of
//! its pretrained torchvision weights.
//!
//! ```no_run
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let device = model_zoo::Backend::Flex.device()?;
//! for info in model_zoo::list_models("resnext*") {
//!     println!("{} {:.1}M params, {} GFLOPs", info.name, info.params as f64 / 1e6, info.gflops);
//! }
//! let model = model_zoo::create("resnext50_32x4d", 10, &device)?;
//! let weights = model_zoo::model_info("resnet50")?.weights("DEFAULT")?;
//! assert_eq!(weights.name, "IMAGENET1K_V2");
//! # Ok(()) }
//! ```
//!
//! This module holds what describes a model and its weights ([`WeightsInfo`], [`Preprocess`],
//! [`Categories`]); the entries themselves are the families' (`models/<family>/weights.rs`),
//! listed by [`crate::models()`].

use std::sync::OnceLock;

/// Where torchvision's weight files live; [`WeightsInfo::url`] starts with it.
pub const TORCHVISION_BASE_URL: &str = "https://download.pytorch.org/models/";
/// Where `paddle.vision.models` downloads its weight files from.
pub const PADDLE_BASE_URL: &str = "https://paddle-hapi.bj.bcebos.com/models/";

pub use crate::family::Family;

/// Resampling filter of a resize.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Interpolation {
    /// Bilinear, antialiased when downscaling (PIL's `BILINEAR`, torchvision's default).
    Bilinear,
    /// Bicubic (Keys' cubic with `a = -0.5`), antialiased when downscaling (PIL's `BICUBIC`:
    /// EfficientNet's and the SWAG weights' transforms).
    Bicubic,
}

/// torchvision's `ImageClassification` eval transform: resize the shorter side to `resize`,
/// center-crop `crop`x`crop`, scale to `[0, 1]`, normalise with `mean` and `std`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Preprocess {
    /// Length of the shorter side after resizing (256 for V1 weights, 232 for most V2).
    pub resize: usize,
    /// Side of the square center crop.
    pub crop: usize,
    /// Resampling filter.
    pub interpolation: Interpolation,
    /// Per-channel mean (RGB), subtracted after scaling to `[0, 1]`.
    pub mean: [f32; 3],
    /// Per-channel standard deviation (RGB).
    pub std: [f32; 3],
}

/// ImageNet's channel means (RGB).
pub const IMAGENET_MEAN: [f32; 3] = [0.485, 0.456, 0.406];
/// ImageNet's channel standard deviations (RGB).
pub const IMAGENET_STD: [f32; 3] = [0.229, 0.224, 0.225];

impl Preprocess {
    /// The ImageNet eval transform with the given resize and a 224 crop.
    pub const fn imagenet(resize: usize) -> Self {
        Self {
            resize,
            crop: 224,
            interpolation: Interpolation::Bilinear,
            mean: IMAGENET_MEAN,
            std: IMAGENET_STD,
        }
    }
}

impl Default for Preprocess {
    /// torchvision's V1 ImageNet transform: resize 256, crop 224.
    fn default() -> Self {
        Self::imagenet(256)
    }
}

/// The label set a classifier was trained on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Categories {
    /// ImageNet-1K's 1000 classes, named as in torchvision (`"tench"`, `"goldfish"`, ...).
    ImageNet1K,
    /// Pascal VOC's 20 classes after `__background__` (torchvision's `_VOC_CATEGORIES`), which
    /// the segmentation models' `COCO_WITH_VOC_LABELS_V1` weights predict.
    Voc,
}

/// torchvision's `_VOC_CATEGORIES`: background, then Pascal VOC's 20 classes.
pub const VOC_CATEGORIES: [&str; 21] = [
    "__background__",
    "aeroplane",
    "bicycle",
    "bird",
    "boat",
    "bottle",
    "bus",
    "car",
    "cat",
    "chair",
    "cow",
    "diningtable",
    "dog",
    "horse",
    "motorbike",
    "person",
    "pottedplant",
    "sheep",
    "sofa",
    "train",
    "tvmonitor",
];

impl Categories {
    /// The class names, index `i` naming logit `i`.
    pub fn names(self) -> &'static [&'static str] {
        match self {
            Categories::ImageNet1K => imagenet_classes(),
            Categories::Voc => &VOC_CATEGORIES,
        }
    }

    /// The number of classes.
    pub fn len(self) -> usize {
        self.names().len()
    }

    /// Whether there are no classes (never, for a real label set).
    pub fn is_empty(self) -> bool {
        self.names().is_empty()
    }
}

/// The 1000 ImageNet class names, as torchvision's `_IMAGENET_CATEGORIES`.
pub fn imagenet_classes() -> &'static [&'static str] {
    static NAMES: OnceLock<Vec<&'static str>> = OnceLock::new();
    NAMES.get_or_init(|| include_str!("imagenet_classes.txt").lines().collect())
}

/// Who publishes a weight file, and so which format it is in and whose metadata describes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WeightsSource {
    /// torchvision (`torch.save` files); `cargo xtask parity` checks the metadata against the
    /// installed torchvision.
    Torchvision,
    /// `paddle.vision.models` (`paddle.save` `.pdparams` files).
    PaddleVision,
}

/// How a downloaded weight file is verified.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Checksum {
    /// The first hex digits of its SHA-256, which torchvision puts in the file name.
    Sha256Prefix(&'static str),
    /// Its MD5 (32 hex digits), which `paddle.vision.models` publishes beside the URL.
    Md5(&'static str),
}

impl Checksum {
    /// The expected digest (or its prefix), lowercase hex.
    pub fn hex(self) -> &'static str {
        match self {
            Checksum::Sha256Prefix(hex) | Checksum::Md5(hex) => hex,
        }
    }

    /// The first 8 hex digits, for cache file names.
    pub fn short(self) -> &'static str {
        let hex = self.hex();
        &hex[..hex.len().min(8)]
    }

    /// The algorithm's name: `SHA-256` or `MD5`.
    pub fn algorithm(self) -> &'static str {
        match self {
            Checksum::Sha256Prefix(_) => "SHA-256",
            Checksum::Md5(_) => "MD5",
        }
    }

    /// Whether `digest` (the file's full digest in this algorithm, hex) is the one expected.
    pub fn matches(self, digest: &str) -> bool {
        digest
            .to_ascii_lowercase()
            .starts_with(&self.hex().to_ascii_lowercase())
    }
}

/// Where a published weight file is and how it is verified: what fetching it needs, whatever
/// the model (a classifier's [`WeightsInfo::file`], a segmentation model's
/// [`crate::segmentation::SegmentationWeights::file`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WeightsFile {
    /// The name the weights are asked for by (`IMAGENET1K_V1`, `COCO_WITH_VOC_LABELS_V1`).
    pub name: &'static str,
    /// Who publishes it.
    pub source: WeightsSource,
    /// Where it is downloaded from.
    pub url: &'static str,
    /// How the download is verified.
    pub checksum: Checksum,
}

impl WeightsFile {
    /// The file name, last segment of the URL (`resnet50-11ad3fa6.pth`).
    pub fn file_name(&self) -> &'static str {
        self.url.rsplit('/').next().unwrap_or(self.url)
    }
}

impl From<&WeightsInfo> for WeightsFile {
    fn from(weights: &WeightsInfo) -> Self {
        weights.file()
    }
}

/// One published weight file: an entry of a torchvision `*_Weights` enum, or a
/// `paddle.vision.models` file.
#[derive(Debug, Clone, PartialEq)]
pub struct WeightsInfo {
    /// The name it is asked for by: torchvision's enum entry (`IMAGENET1K_V1`), or the zoo's
    /// `PADDLE_IMAGENET` for paddle.vision's.
    pub name: &'static str,
    /// Who publishes it.
    pub source: WeightsSource,
    /// Where it is downloaded from.
    pub url: &'static str,
    /// How the download is verified.
    pub checksum: Checksum,
    /// The file's size in MiB: torchvision's metadata; for Paddle's files (whose size Paddle
    /// does not publish), the size of `paddle.save`'s file of the same tensors, measured.
    pub file_size_mb: f64,
    /// The label set of its classifier.
    pub categories: Categories,
    /// The eval transform the published accuracy was measured with (for Paddle's files, the
    /// one `paddle.vision`'s ImageNet examples use: resize 256, crop 224, ImageNet statistics).
    pub preprocess: Preprocess,
    /// Published top-1 accuracy on ImageNet-1K val, in percent, where the publisher gives one
    /// (paddle.vision does not).
    pub acc1: Option<f64>,
    /// Published top-5 accuracy on ImageNet-1K val, in percent, where given.
    pub acc5: Option<f64>,
    /// Whether torchvision's `DEFAULT` alias points here (never for Paddle's files).
    pub is_default: bool,
}

impl WeightsInfo {
    /// The file name, last segment of the URL (`resnet50-11ad3fa6.pth`).
    pub fn file_name(&self) -> &'static str {
        self.file().file_name()
    }

    /// Where the file is and how it is verified.
    pub fn file(&self) -> WeightsFile {
        WeightsFile {
            name: self.name,
            source: self.source,
            url: self.url,
            checksum: self.checksum,
        }
    }

    /// The number of classes of the classifier these weights hold.
    pub fn num_classes(&self) -> usize {
        self.categories.len()
    }
}

/// An ImageNet-1K weight file of torchvision, cropped at 224.
#[allow(clippy::too_many_arguments)]
pub(crate) const fn imagenet(
    name: &'static str,
    url: &'static str,
    sha256_prefix: &'static str,
    file_size_mb: f64,
    acc1: f64,
    acc5: f64,
    resize: usize,
    is_default: bool,
) -> WeightsInfo {
    WeightsInfo {
        name,
        source: WeightsSource::Torchvision,
        url,
        checksum: Checksum::Sha256Prefix(sha256_prefix),
        file_size_mb,
        categories: Categories::ImageNet1K,
        preprocess: Preprocess::imagenet(resize),
        acc1: Some(acc1),
        acc5: Some(acc5),
        is_default,
    }
}

impl WeightsInfo {
    /// The same weights evaluated at another crop and interpolation (Inception v3's 299,
    /// EfficientNet's and the SWAG weights' bicubic crops).
    pub(crate) const fn crop(self, crop: usize, interpolation: Interpolation) -> Self {
        Self {
            preprocess: Preprocess {
                crop,
                interpolation,
                ..self.preprocess
            },
            ..self
        }
    }
}

impl WeightsInfo {
    /// The same weights normalised with another mean and standard deviation (EfficientNet
    /// V2-L's file expects `[0.5; 3]` for both, mapping inputs to `[-1, 1]`).
    pub(crate) const fn normalize(self, mean: [f32; 3], std: [f32; 3]) -> Self {
        Self {
            preprocess: Preprocess {
                mean,
                std,
                ..self.preprocess
            },
            ..self
        }
    }
}

/// `paddle.vision.models`' ImageNet-1K file for one model (`PADDLE_IMAGENET`), with the MD5
/// Paddle publishes for it.
pub(crate) const fn paddle_imagenet(
    url: &'static str,
    md5: &'static str,
    file_size_mb: f64,
) -> WeightsInfo {
    WeightsInfo {
        name: "PADDLE_IMAGENET",
        source: WeightsSource::PaddleVision,
        url,
        checksum: Checksum::Md5(md5),
        file_size_mb,
        categories: Categories::ImageNet1K,
        preprocess: Preprocess::imagenet(256),
        acc1: None,
        acc5: None,
        is_default: false,
    }
}

/// A model's weights by name among `all`: `DEFAULT` (the entry `is_default` marks), an entry's
/// name, or torchvision's full spelling (`ResNet50_Weights.IMAGENET1K_V2`), case ignored; else
/// an error listing what `model` has. What [`crate::ModelInfo::weights`] and
/// [`crate::segmentation::SegmentationInfo::weights`] look up.
pub(crate) fn find_weights<'a, W>(
    model: &str,
    all: &'a [W],
    asked: &str,
    name: impl Fn(&W) -> &str,
    is_default: impl Fn(&W) -> bool,
) -> Result<&'a W, crate::RegistryError> {
    let short = asked.rsplit('.').next().unwrap_or(asked);
    let found = if short.eq_ignore_ascii_case("DEFAULT") {
        all.iter().find(|w| is_default(w))
    } else {
        all.iter().find(|w| name(w).eq_ignore_ascii_case(short))
    };
    found.ok_or_else(|| crate::RegistryError::UnknownWeights {
        model: model.to_string(),
        name: asked.to_string(),
        available: all.iter().map(|w| name(w).to_string()).collect(),
    })
}

/// Whether a model name matches a glob `pattern` (`*` any run of characters, `?` one
/// character, `[abc]` a set; empty: every name; not a valid glob, such as an unclosed `[`:
/// the name itself). The lists of [`crate::list_models`] and
/// [`crate::segmentation::list_models`].
pub(crate) fn name_matcher(pattern: &str) -> impl Fn(&str) -> bool {
    let pattern = if pattern.is_empty() { "*" } else { pattern }.to_string();
    let glob = glob::Pattern::new(&pattern).ok();
    move |name| match &glob {
        Some(glob) => glob.matches(name),
        None => name == pattern,
    }
}
