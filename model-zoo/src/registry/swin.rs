//! Swin Transformer's registry entries; metadata and weights as torchvision 0.29's, checked by
//! `cargo xtask parity`. Each model's `image_size` is its weights' crop (224; 256 for V2), the
//! size torchvision gives its GFLOPs at; the models themselves take any size (see
//! [`crate::swin::SWIN_INPUT`]).

use super::Interpolation::Bicubic;
use super::{Family, ModelInfo, WeightsInfo, imagenet};
use crate::swin::{SWIN_INPUT, SwinArch, SwinConfig};

/// One Swin entry.
const fn swin(
    name: &'static str,
    params: usize,
    gflops: f64,
    image_size: usize,
    weights: &'static [WeightsInfo],
    build: fn(usize, &burn::tensor::Device) -> Result<crate::Model, crate::ConfigError>,
) -> ModelInfo {
    ModelInfo {
        name,
        family: Family::SWIN,
        torchvision: true,
        params,
        gflops,
        image_size,
        num_classes: 1000,
        input: SWIN_INPUT,
        weights,
        build_with_weights: None,
        build,
    }
}

fn build(
    arch: SwinArch,
    num_classes: usize,
    device: &burn::tensor::Device,
) -> Result<crate::Model, crate::ConfigError> {
    Ok(SwinConfig::new(arch)
        .with_num_classes(num_classes)
        .init(device)?
        .into())
}

#[rustfmt::skip]
pub(super) const MODELS: &[ModelInfo] = &[
    swin("swin_t", 28_288_354, 4.491, 224, &[
        imagenet("IMAGENET1K_V1", "https://download.pytorch.org/models/swin_t-704ceda3.pth", "704ceda3", 108.19, 81.474, 95.776, 232, true).crop(224, Bicubic),
    ], |n, d| build(SwinArch::T, n, d)),
    swin("swin_s", 49_606_258, 8.741, 224, &[
        imagenet("IMAGENET1K_V1", "https://download.pytorch.org/models/swin_s-5e29d889.pth", "5e29d889", 189.786, 83.196, 96.36, 246, true).crop(224, Bicubic),
    ], |n, d| build(SwinArch::S, n, d)),
    swin("swin_b", 87_768_224, 15.431, 224, &[
        imagenet("IMAGENET1K_V1", "https://download.pytorch.org/models/swin_b-68c6b09e.pth", "68c6b09e", 335.364, 83.582, 96.64, 238, true).crop(224, Bicubic),
    ], |n, d| build(SwinArch::B, n, d)),
    swin("swin_v2_t", 28_351_570, 5.94, 256, &[
        imagenet("IMAGENET1K_V1", "https://download.pytorch.org/models/swin_v2_t-b137f0e2.pth", "b137f0e2", 108.626, 82.072, 96.132, 260, true).crop(256, Bicubic),
    ], |n, d| build(SwinArch::V2T, n, d)),
    swin("swin_v2_s", 49_737_442, 11.546, 256, &[
        imagenet("IMAGENET1K_V1", "https://download.pytorch.org/models/swin_v2_s-637d8ceb.pth", "637d8ceb", 190.675, 83.712, 96.816, 260, true).crop(256, Bicubic),
    ], |n, d| build(SwinArch::V2S, n, d)),
    swin("swin_v2_b", 87_930_848, 20.325, 256, &[
        imagenet("IMAGENET1K_V1", "https://download.pytorch.org/models/swin_v2_b-781e5279.pth", "781e5279", 336.372, 84.112, 96.864, 272, true).crop(256, Bicubic),
    ], |n, d| build(SwinArch::V2B, n, d)),
];
