//! EfficientNet's registry entries; metadata and weights as torchvision 0.29's, checked by
//! `cargo xtask parity`. Each model's `image_size` is its first weights' crop (224 for B0 up
//! to 600 for B7), the size torchvision gives its GFLOPs at. V2-L's file is normalised with mean
//! and standard deviation 0.5, not ImageNet's.

use super::Interpolation::{Bicubic, Bilinear};
use super::{Family, ModelInfo, WeightsInfo, imagenet};
use crate::efficientnet::EfficientNetArch::{self, B0, B1, B2, B3, B4, B5, B6, B7, V2L, V2M, V2S};
use crate::efficientnet::EfficientNetConfig;

/// One EfficientNet entry.
const fn efficientnet(
    name: &'static str,
    params: usize,
    gflops: f64,
    image_size: usize,
    weights: &'static [WeightsInfo],
    arch: EfficientNetArch,
) -> ModelInfo {
    let side = match arch {
        V2S | V2M | V2L => 33,
        _ => 1,
    };
    ModelInfo {
        name,
        family: Family::EFFICIENTNET,
        torchvision: true,
        params,
        gflops,
        image_size,
        num_classes: 1000,
        input: crate::InputSpec {
            channels: 3,
            min_size: [side, side],
            exact: false,
        },
        weights,
        build_with_weights: None,
        build: match arch {
            B0 => |n, d| build(B0, n, d),
            B1 => |n, d| build(B1, n, d),
            B2 => |n, d| build(B2, n, d),
            B3 => |n, d| build(B3, n, d),
            B4 => |n, d| build(B4, n, d),
            B5 => |n, d| build(B5, n, d),
            B6 => |n, d| build(B6, n, d),
            B7 => |n, d| build(B7, n, d),
            V2S => |n, d| build(V2S, n, d),
            V2M => |n, d| build(V2M, n, d),
            V2L => |n, d| build(V2L, n, d),
        },
    }
}

fn build(
    arch: EfficientNetArch,
    num_classes: usize,
    device: &burn::tensor::Device,
) -> Result<crate::Model, crate::ConfigError> {
    Ok(EfficientNetConfig::new(arch)
        .with_num_classes(num_classes)
        .init(device)?
        .into())
}

#[rustfmt::skip]
pub(super) const MODELS: &[ModelInfo] = &[
    efficientnet("efficientnet_b0", 5_288_548, 0.386, 224, &[
        imagenet("IMAGENET1K_V1", "https://download.pytorch.org/models/efficientnet_b0_rwightman-7f5810bc.pth", "7f5810bc", 20.451, 77.692, 93.532, 256, true).crop(224, Bicubic),
    ], B0),
    efficientnet("efficientnet_b1", 7_794_184, 0.687, 240, &[
        imagenet("IMAGENET1K_V1", "https://download.pytorch.org/models/efficientnet_b1_rwightman-bac287d4.pth", "bac287d4", 30.134, 78.642, 94.186, 256, false).crop(240, Bicubic),
        imagenet("IMAGENET1K_V2", "https://download.pytorch.org/models/efficientnet_b1-c27df63c.pth", "c27df63c", 30.136, 79.838, 94.934, 255, true).crop(240, Bilinear),
    ], B1),
    efficientnet("efficientnet_b2", 9_109_994, 1.088, 288, &[
        imagenet("IMAGENET1K_V1", "https://download.pytorch.org/models/efficientnet_b2_rwightman-c35c1473.pth", "c35c1473", 35.174, 80.608, 95.31, 288, true).crop(288, Bicubic),
    ], B2),
    efficientnet("efficientnet_b3", 12_233_232, 1.827, 300, &[
        imagenet("IMAGENET1K_V1", "https://download.pytorch.org/models/efficientnet_b3_rwightman-b3899882.pth", "b3899882", 47.184, 82.008, 96.054, 320, true).crop(300, Bicubic),
    ], B3),
    efficientnet("efficientnet_b4", 19_341_616, 4.394, 380, &[
        imagenet("IMAGENET1K_V1", "https://download.pytorch.org/models/efficientnet_b4_rwightman-23ab8bcd.pth", "23ab8bcd", 74.489, 83.384, 96.594, 384, true).crop(380, Bicubic),
    ], B4),
    efficientnet("efficientnet_b5", 30_389_784, 10.266, 456, &[
        imagenet("IMAGENET1K_V1", "https://download.pytorch.org/models/efficientnet_b5_lukemelas-1a07897c.pth", "1a07897c", 116.864, 83.444, 96.628, 456, true).crop(456, Bicubic),
    ], B5),
    efficientnet("efficientnet_b6", 43_040_704, 19.068, 528, &[
        imagenet("IMAGENET1K_V1", "https://download.pytorch.org/models/efficientnet_b6_lukemelas-24a108a5.pth", "24a108a5", 165.362, 84.008, 96.916, 528, true).crop(528, Bicubic),
    ], B6),
    efficientnet("efficientnet_b7", 66_347_960, 37.746, 600, &[
        imagenet("IMAGENET1K_V1", "https://download.pytorch.org/models/efficientnet_b7_lukemelas-c5b4e57e.pth", "c5b4e57e", 254.675, 84.122, 96.908, 600, true).crop(600, Bicubic),
    ], B7),
    efficientnet("efficientnet_v2_s", 21_458_488, 8.366, 384, &[
        imagenet("IMAGENET1K_V1", "https://download.pytorch.org/models/efficientnet_v2_s-dd5fe13b.pth", "dd5fe13b", 82.704, 84.228, 96.878, 384, true).crop(384, Bilinear),
    ], V2S),
    efficientnet("efficientnet_v2_m", 54_139_356, 24.582, 480, &[
        imagenet("IMAGENET1K_V1", "https://download.pytorch.org/models/efficientnet_v2_m-dc08266a.pth", "dc08266a", 208.01, 85.112, 97.156, 480, true).crop(480, Bilinear),
    ], V2M),
    efficientnet("efficientnet_v2_l", 118_515_272, 56.08, 480, &[
        imagenet("IMAGENET1K_V1", "https://download.pytorch.org/models/efficientnet_v2_l-59c71312.pth", "59c71312", 454.573, 85.808, 97.788, 480, true).crop(480, Bicubic).normalize([0.5; 3], [0.5; 3]),
    ], V2L),
];
