//! ConvNeXt's registry entries; metadata and weights as torchvision 0.29's, checked by
//! `cargo xtask parity`. Each file is evaluated with a 224 crop of a bilinear resize to 236,
//! 230 or 232, as torchvision's transforms give.

use super::{Family, ModelInfo, imagenet};
use crate::convnext::{CONVNEXT_INPUT, ConvNeXtArch, ConvNeXtConfig};

/// One ConvNeXt entry.
const fn convnext(
    name: &'static str,
    params: usize,
    gflops: f64,
    weights: &'static [super::WeightsInfo],
    build: fn(usize, &burn::tensor::Device) -> Result<crate::Model, crate::ConfigError>,
) -> ModelInfo {
    ModelInfo {
        name,
        family: Family::CONVNEXT,
        torchvision: true,
        params,
        gflops,
        image_size: 224,
        num_classes: 1000,
        input: CONVNEXT_INPUT,
        weights,
        build_with_weights: None,
        build,
    }
}

fn build(
    arch: ConvNeXtArch,
    num_classes: usize,
    device: &burn::tensor::Device,
) -> Result<crate::Model, crate::ConfigError> {
    Ok(ConvNeXtConfig::new(arch)
        .with_num_classes(num_classes)
        .init(device)?
        .into())
}

#[rustfmt::skip]
pub(super) const MODELS: &[ModelInfo] = &[
    convnext("convnext_tiny", 28_589_128, 4.456, &[
        imagenet("IMAGENET1K_V1", "https://download.pytorch.org/models/convnext_tiny-983f1562.pth", "983f1562", 109.119, 82.52, 96.146, 236, true),
    ], |n, d| build(ConvNeXtArch::Tiny, n, d)),
    convnext("convnext_small", 50_223_688, 8.684, &[
        imagenet("IMAGENET1K_V1", "https://download.pytorch.org/models/convnext_small-0c510722.pth", "0c510722", 191.703, 83.616, 96.65, 230, true),
    ], |n, d| build(ConvNeXtArch::Small, n, d)),
    convnext("convnext_base", 88_591_464, 15.355, &[
        imagenet("IMAGENET1K_V1", "https://download.pytorch.org/models/convnext_base-6075fbad.pth", "6075fbad", 338.064, 84.062, 96.87, 232, true),
    ], |n, d| build(ConvNeXtArch::Base, n, d)),
    convnext("convnext_large", 197_767_336, 34.361, &[
        imagenet("IMAGENET1K_V1", "https://download.pytorch.org/models/convnext_large-ea097f82.pth", "ea097f82", 754.537, 84.414, 96.976, 232, true),
    ], |n, d| build(ConvNeXtArch::Large, n, d)),
];
