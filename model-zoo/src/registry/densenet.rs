//! DenseNet's registry entries; metadata and weights as torchvision 0.29's, checked by
//! `cargo xtask parity`.

use super::{Family, ModelInfo, imagenet};
use crate::densenet::{DENSENET_INPUT, DenseNetConfig};

/// One DenseNet entry.
const fn densenet(
    name: &'static str,
    params: usize,
    gflops: f64,
    weights: &'static [super::WeightsInfo],
    build: fn(usize, &burn::tensor::Device) -> Result<crate::Model, crate::ConfigError>,
) -> ModelInfo {
    ModelInfo {
        name,
        family: Family::DENSENET,
        torchvision: true,
        params,
        gflops,
        image_size: 224,
        num_classes: 1000,
        input: DENSENET_INPUT,
        weights,
        build_with_weights: None,
        build,
    }
}

#[rustfmt::skip]
pub(super) const MODELS: &[ModelInfo] = &[
    densenet("densenet121", 7_978_856, 2.834, &[
        imagenet("IMAGENET1K_V1", "https://download.pytorch.org/models/densenet121-a639ec97.pth", "a639ec97", 30.845, 74.434, 91.972, 256, true),
    ], |n, device| Ok(DenseNetConfig::densenet121().with_num_classes(n).init(device)?.into())),
    densenet("densenet161", 28_681_000, 7.728, &[
        imagenet("IMAGENET1K_V1", "https://download.pytorch.org/models/densenet161-8d451a50.pth", "8d451a50", 110.369, 77.138, 93.56, 256, true),
    ], |n, device| Ok(DenseNetConfig::densenet161().with_num_classes(n).init(device)?.into())),
    densenet("densenet169", 14_149_480, 3.36, &[
        imagenet("IMAGENET1K_V1", "https://download.pytorch.org/models/densenet169-b2777c0a.pth", "b2777c0a", 54.708, 75.6, 92.806, 256, true),
    ], |n, device| Ok(DenseNetConfig::densenet169().with_num_classes(n).init(device)?.into())),
    densenet("densenet201", 20_013_928, 4.291, &[
        imagenet("IMAGENET1K_V1", "https://download.pytorch.org/models/densenet201-c1103571.pth", "c1103571", 77.373, 76.896, 93.37, 256, true),
    ], |n, device| Ok(DenseNetConfig::densenet201().with_num_classes(n).init(device)?.into())),
];
