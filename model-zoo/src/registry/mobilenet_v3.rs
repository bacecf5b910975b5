//! MobileNet V3's registry entries; metadata and weights as torchvision 0.29's, checked by
//! `cargo xtask parity`.

use super::{Family, ModelInfo, imagenet};
use crate::mobilenet_v3::{MOBILENET_V3_INPUT, MobileNetV3Config};

/// One entry: the preset of the same name, built with the given class count.
macro_rules! mobilenet_v3 {
    ($name:literal, $preset:ident, params: $params:literal, gflops: $gflops:literal, weights: [$($w:expr),* $(,)?]) => {
        ModelInfo {
            name: $name,
            family: Family::MOBILENET_V3,
            torchvision: true,
            params: $params,
            gflops: $gflops,
            image_size: 224,
            num_classes: 1000,
            input: MOBILENET_V3_INPUT,
            weights: &[$($w),*],
            build_with_weights: None,
            build: |num_classes, device| {
                Ok(MobileNetV3Config::$preset().with_num_classes(num_classes).init(device)?.into())
            },
        }
    };
}

pub(super) const MODELS: &[ModelInfo] = &[
    mobilenet_v3!("mobilenet_v3_large", large, params: 5_483_032, gflops: 0.217, weights: [
        imagenet("IMAGENET1K_V1", "https://download.pytorch.org/models/mobilenet_v3_large-8738ca79.pth", "8738ca79", 21.114, 74.042, 91.34, 256, false),
        imagenet("IMAGENET1K_V2", "https://download.pytorch.org/models/mobilenet_v3_large-5c1a4163.pth", "5c1a4163", 21.107, 75.274, 92.566, 232, true),
    ]),
    mobilenet_v3!("mobilenet_v3_small", small, params: 2_542_856, gflops: 0.057, weights: [
        imagenet("IMAGENET1K_V1", "https://download.pytorch.org/models/mobilenet_v3_small-047dcff4.pth", "047dcff4", 9.829, 67.668, 87.402, 256, true),
    ]),
];
