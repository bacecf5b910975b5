//! MobileNet V2's registry entry; metadata and weights as torchvision 0.29's, checked by
//! `cargo xtask parity`.

use super::{Family, ModelInfo, imagenet};
use crate::mobilenet_v2::{MOBILENET_V2_INPUT, MobileNetV2Config};

pub(super) const MODELS: &[ModelInfo] = &[ModelInfo {
    name: "mobilenet_v2",
    family: Family::MOBILENET_V2,
    torchvision: true,
    params: 3_504_872,
    gflops: 0.301,
    image_size: 224,
    num_classes: 1000,
    input: MOBILENET_V2_INPUT,
    weights: &[
        imagenet("IMAGENET1K_V1", "https://download.pytorch.org/models/mobilenet_v2-b0353104.pth", "b0353104", 13.555, 71.878, 90.286, 256, false),
        imagenet("IMAGENET1K_V2", "https://download.pytorch.org/models/mobilenet_v2-7ebf99e0.pth", "7ebf99e0", 13.598, 72.154, 90.822, 232, true),
    ],
    build_with_weights: None,
    build: |num_classes, device| {
        Ok(MobileNetV2Config::new()
            .with_num_classes(num_classes)
            .init(device)?
            .into())
    },
}];
