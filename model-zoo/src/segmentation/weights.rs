//! The segmentation models' registry entries: metadata and weights as torchvision 0.29's
//! (`*_Weights.COCO_WITH_VOC_LABELS_V1`), checked against the installed torchvision by
//! `cargo xtask parity --segmentation`.

use crate::registry::{
    Categories, Checksum, IMAGENET_MEAN, IMAGENET_STD, Interpolation, WeightsFile, WeightsSource,
};

use super::SegmentationArch;

/// torchvision's `SemanticSegmentation` eval transform: resize the shorter side to `resize`
/// (no crop: the mask is the resized image's size), scale to `[0, 1]`, normalise.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SegmentationTransform {
    /// Length of the shorter side after resizing (520).
    pub resize: usize,
    /// Resampling filter (bilinear, antialiased when downscaling, as PIL's).
    pub interpolation: Interpolation,
    /// Per-channel mean (RGB).
    pub mean: [f32; 3],
    /// Per-channel standard deviation (RGB).
    pub std: [f32; 3],
}

/// One published weight file of a segmentation model: an entry of torchvision's
/// `*_Weights` enum.
#[derive(Debug, Clone, PartialEq)]
pub struct SegmentationWeights {
    /// torchvision's enum entry (`COCO_WITH_VOC_LABELS_V1`).
    pub name: &'static str,
    /// Where it is downloaded from.
    pub url: &'static str,
    /// How the download is verified.
    pub checksum: Checksum,
    /// The file's size in MiB (torchvision's `_file_size`).
    pub file_size_mb: f64,
    /// The label set (index `i` names output channel `i`).
    pub categories: Categories,
    /// The eval transform its metrics were measured with.
    pub transform: SegmentationTransform,
    /// Mean IoU on COCO val2017 with VOC labels, in percent.
    pub miou: f64,
    /// Pixel accuracy on the same, in percent.
    pub pixel_acc: f64,
    /// Whether torchvision's `DEFAULT` points here.
    pub is_default: bool,
}

impl SegmentationWeights {
    /// Where the file is and how it is verified (what `zoo-import`'s cache fetches).
    pub fn file(&self) -> WeightsFile {
        WeightsFile {
            name: self.name,
            source: WeightsSource::Torchvision,
            url: self.url,
            checksum: self.checksum,
        }
    }

    /// The number of classes its classifier has.
    pub fn num_classes(&self) -> usize {
        self.categories.len()
    }

    /// The file name, last segment of the URL.
    pub fn file_name(&self) -> &'static str {
        self.file().file_name()
    }
}

impl From<&SegmentationWeights> for WeightsFile {
    fn from(weights: &SegmentationWeights) -> Self {
        weights.file()
    }
}

/// One registered segmentation model: torchvision's builder name, metadata and weights.
#[derive(Debug, Clone, PartialEq)]
pub struct SegmentationInfo {
    /// torchvision's builder name (`deeplabv3_resnet50`).
    pub name: &'static str,
    /// The architecture.
    pub arch: SegmentationArch,
    /// Parameters of the model torchvision's builder makes for its weights (with the aux head
    /// where the weights have one), torchvision's `num_params`.
    pub params: usize,
    /// Giga multiply-adds for one 520x520 image (torchvision's `_ops`).
    pub gflops: f64,
    /// The published weights.
    pub weights: &'static [SegmentationWeights],
}

/// The COCO-with-VOC-labels file of one model.
const fn coco_voc(
    url: &'static str,
    sha256_prefix: &'static str,
    file_size_mb: f64,
    miou: f64,
    pixel_acc: f64,
) -> SegmentationWeights {
    SegmentationWeights {
        name: "COCO_WITH_VOC_LABELS_V1",
        url,
        checksum: Checksum::Sha256Prefix(sha256_prefix),
        file_size_mb,
        categories: Categories::Voc,
        transform: SegmentationTransform {
            resize: 520,
            interpolation: Interpolation::Bilinear,
            mean: IMAGENET_MEAN,
            std: IMAGENET_STD,
        },
        miou,
        pixel_acc,
        is_default: true,
    }
}

/// Every segmentation model, in torchvision's order.
#[rustfmt::skip]
pub(super) static MODELS: [SegmentationInfo; 6] = [
    SegmentationInfo {
        name: "deeplabv3_mobilenet_v3_large", arch: SegmentationArch::DeepLabV3MobileNetV3Large,
        params: 11_029_328, gflops: 10.452,
        weights: &[coco_voc("https://download.pytorch.org/models/deeplabv3_mobilenet_v3_large-fc3c493d.pth", "fc3c493d", 42.301, 60.3, 91.2)],
    },
    SegmentationInfo {
        name: "deeplabv3_resnet50", arch: SegmentationArch::DeepLabV3ResNet50,
        params: 42_004_074, gflops: 178.722,
        weights: &[coco_voc("https://download.pytorch.org/models/deeplabv3_resnet50_coco-cd0a2569.pth", "cd0a2569", 160.515, 66.4, 92.4)],
    },
    SegmentationInfo {
        name: "deeplabv3_resnet101", arch: SegmentationArch::DeepLabV3ResNet101,
        params: 60_996_202, gflops: 258.743,
        weights: &[coco_voc("https://download.pytorch.org/models/deeplabv3_resnet101_coco-586e9e4e.pth", "586e9e4e", 233.217, 67.4, 92.4)],
    },
    SegmentationInfo {
        name: "fcn_resnet50", arch: SegmentationArch::FcnResNet50,
        params: 35_322_218, gflops: 152.717,
        weights: &[coco_voc("https://download.pytorch.org/models/fcn_resnet50_coco-1167a1af.pth", "1167a1af", 135.009, 60.5, 91.4)],
    },
    SegmentationInfo {
        name: "fcn_resnet101", arch: SegmentationArch::FcnResNet101,
        params: 54_314_346, gflops: 232.738,
        weights: &[coco_voc("https://download.pytorch.org/models/fcn_resnet101_coco-7ecb50ca.pth", "7ecb50ca", 207.711, 63.7, 91.9)],
    },
    SegmentationInfo {
        name: "lraspp_mobilenet_v3_large", arch: SegmentationArch::LrasppMobileNetV3Large,
        params: 3_221_538, gflops: 2.086,
        weights: &[coco_voc("https://download.pytorch.org/models/lraspp_mobilenet_v3_large-d234d4ea.pth", "d234d4ea", 12.49, 57.9, 91.2)],
    },
];
