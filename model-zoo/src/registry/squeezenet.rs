//! SqueezeNet's registry entries; metadata and weights as torchvision 0.29's, checked by
//! `cargo xtask parity`.

use super::{Family, ModelInfo, imagenet};
use crate::squeezenet::{SQUEEZENET1_0_INPUT, SQUEEZENET1_1_INPUT, SqueezeNetConfig};

pub(super) const MODELS: &[ModelInfo] = &[
    ModelInfo {
        name: "squeezenet1_0",
        family: Family::SQUEEZENET,
        torchvision: true,
        params: 1_248_424,
        gflops: 0.819,
        image_size: 224,
        num_classes: 1000,
        input: SQUEEZENET1_0_INPUT,
        weights: &[
            imagenet("IMAGENET1K_V1", "https://download.pytorch.org/models/squeezenet1_0-b66bff10.pth", "b66bff10", 4.778, 58.092, 80.42, 256, true),
        ],
        build_with_weights: None,
        build: |num_classes, device| {
            Ok(SqueezeNetConfig::v1_0().with_num_classes(num_classes).init(device)?.into())
        },
    },
    ModelInfo {
        name: "squeezenet1_1",
        family: Family::SQUEEZENET,
        torchvision: true,
        params: 1_235_496,
        gflops: 0.349,
        image_size: 224,
        num_classes: 1000,
        input: SQUEEZENET1_1_INPUT,
        weights: &[
            imagenet("IMAGENET1K_V1", "https://download.pytorch.org/models/squeezenet1_1-b8a52dc0.pth", "b8a52dc0", 4.729, 58.178, 80.624, 256, true),
        ],
        build_with_weights: None,
        build: |num_classes, device| {
            Ok(SqueezeNetConfig::v1_1().with_num_classes(num_classes).init(device)?.into())
        },
    },
];
