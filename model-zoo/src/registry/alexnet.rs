//! AlexNet's registry entry; metadata and weights as torchvision 0.29's, checked by
//! `cargo xtask parity`.

use super::{Family, ModelInfo, imagenet};
use crate::alexnet::{ALEXNET_INPUT, AlexNetConfig};
use crate::model::Model;

macro_rules! alexnet {
    ($name:ident, params: $params:literal, gflops: $gflops:literal, weights: [$($w:expr),* $(,)?]) => {
        ModelInfo {
            name: stringify!($name),
            family: Family::AlexNet,
            params: $params,
            gflops: $gflops,
            input: ALEXNET_INPUT,
            weights: &[$($w),*],
            build: |num_classes, device| {
                Ok(Model::AlexNet(AlexNetConfig::new().with_num_classes(num_classes).init(device)?))
            },
        }
    };
}

/// torchvision's AlexNet.
pub(super) const MODELS: &[ModelInfo] = &[
    alexnet!(alexnet, params: 61_100_840, gflops: 0.714, weights: [
        imagenet("IMAGENET1K_V1", "https://download.pytorch.org/models/alexnet-owt-7be5be79.pth", "7be5be79", 233.087, 56.522, 79.066, 256, true),
    ]),
];
