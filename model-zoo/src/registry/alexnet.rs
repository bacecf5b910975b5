//! AlexNet's registry entries. torchvision's `alexnet` (metadata and weights as torchvision
//! 0.29's, checked by `cargo xtask parity`), and the zoo's half-width and CIFAR variants.

use super::{Family, ModelInfo, imagenet};
use crate::alexnet::{ALEXNET_CIFAR_INPUT, ALEXNET_INPUT, AlexNetConfig};
use crate::model::Model;

macro_rules! alexnet {
    ($name:literal, $preset:ident, torchvision: $tv:literal, params: $params:literal,
     gflops: $gflops:literal, input: $input:expr, image_size: $size:literal,
     num_classes: $classes:literal, weights: [$($w:expr),* $(,)?]) => {
        ModelInfo {
            name: $name,
            family: Family::ALEXNET,
            torchvision: $tv,
            params: $params,
            gflops: $gflops,
            image_size: $size,
            num_classes: $classes,
            input: $input,
            weights: &[$($w),*],
            build_with_weights: None,
            build: |num_classes, device| {
                Ok(Model::AlexNet(AlexNetConfig::$preset().with_num_classes(num_classes).init(device)?))
            },
        }
    };
}

/// torchvision's AlexNet, then the zoo's variants.
pub(super) const MODELS: &[ModelInfo] = &[
    alexnet!("alexnet", alexnet, torchvision: true, params: 61_100_840, gflops: 0.714,
        input: ALEXNET_INPUT, image_size: 224, num_classes: 1000, weights: [
        imagenet("IMAGENET1K_V1", "https://download.pytorch.org/models/alexnet-owt-7be5be79.pth", "7be5be79", 233.087, 56.522, 79.066, 256, true),
    ]),
    alexnet!("alexnet_half", half, torchvision: false, params: 16_630_440, gflops: 0.311,
        input: ALEXNET_INPUT, image_size: 224, num_classes: 1000, weights: []),
    alexnet!("alexnet_cifar", cifar, torchvision: false, params: 9_245_994, gflops: 0.073,
        input: ALEXNET_CIFAR_INPUT, image_size: 32, num_classes: 10, weights: []),
];
