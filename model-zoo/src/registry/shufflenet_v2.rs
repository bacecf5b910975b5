//! ShuffleNet V2's registry entries; metadata and weights as torchvision 0.29's, checked by
//! `cargo xtask parity`. The file names are torchvision's (`shufflenetv2_x0.5-f707e7126e.pth`),
//! with a 10-digit SHA-256 prefix.

use super::{Family, ModelInfo, imagenet};
use crate::shufflenet_v2::{SHUFFLENET_V2_INPUT, ShuffleNetV2Config};

/// One entry: the preset of the same name, built with the given class count.
macro_rules! shufflenet {
    ($name:ident, params: $params:literal, gflops: $gflops:literal, weights: [$($w:expr),* $(,)?]) => {
        ModelInfo {
            name: concat!("shufflenet_v2_", stringify!($name)),
            family: Family::SHUFFLENET_V2,
            torchvision: true,
            params: $params,
            gflops: $gflops,
            image_size: 224,
            num_classes: 1000,
            input: SHUFFLENET_V2_INPUT,
            weights: &[$($w),*],
            build_with_weights: None,
            build: |num_classes, device| {
                Ok(ShuffleNetV2Config::$name().with_num_classes(num_classes).init(device)?.into())
            },
        }
    };
}

pub(super) const MODELS: &[ModelInfo] = &[
    shufflenet!(x0_5, params: 1_366_792, gflops: 0.04, weights: [
        imagenet("IMAGENET1K_V1", "https://download.pytorch.org/models/shufflenetv2_x0.5-f707e7126e.pth", "f707e7126e", 5.282, 60.552, 81.746, 256, true),
    ]),
    shufflenet!(x1_0, params: 2_278_604, gflops: 0.145, weights: [
        imagenet("IMAGENET1K_V1", "https://download.pytorch.org/models/shufflenetv2_x1-5666bf0f80.pth", "5666bf0f80", 8.791, 69.362, 88.316, 256, true),
    ]),
    shufflenet!(x1_5, params: 3_503_624, gflops: 0.296, weights: [
        imagenet("IMAGENET1K_V1", "https://download.pytorch.org/models/shufflenetv2_x1_5-3c479a10.pth", "3c479a10", 13.557, 72.996, 91.086, 232, true),
    ]),
    shufflenet!(x2_0, params: 7_393_996, gflops: 0.583, weights: [
        imagenet("IMAGENET1K_V1", "https://download.pytorch.org/models/shufflenetv2_x2_0-8be3c8ee.pth", "8be3c8ee", 28.433, 76.23, 93.006, 232, true),
    ]),
];
