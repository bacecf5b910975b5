//! DenseNet's registry entries; metadata and weights as torchvision 0.29's, checked by
//! `cargo xtask parity`.

use super::{DENSENET_INPUT, DenseNet, DenseNetConfig};
use crate::family::Family;
use crate::registry::imagenet;

#[rustfmt::skip]
builders! {
    family: Family::DENSENET, input: DENSENET_INPUT, config: DenseNetConfig, drop_rate: drop_rate;
    densenet121: DenseNet = DenseNetConfig::densenet121(), {
        params: 7_978_856,
        gflops: 2.834,
        weights: &[
            imagenet("IMAGENET1K_V1", "https://download.pytorch.org/models/densenet121-a639ec97.pth", "a639ec97", 30.845, 74.434, 91.972, 256, true),
        ],
    }
    densenet161: DenseNet = DenseNetConfig::densenet161(), {
        params: 28_681_000,
        gflops: 7.728,
        weights: &[
            imagenet("IMAGENET1K_V1", "https://download.pytorch.org/models/densenet161-8d451a50.pth", "8d451a50", 110.369, 77.138, 93.56, 256, true),
        ],
    }
    densenet169: DenseNet = DenseNetConfig::densenet169(), {
        params: 14_149_480,
        gflops: 3.36,
        weights: &[
            imagenet("IMAGENET1K_V1", "https://download.pytorch.org/models/densenet169-b2777c0a.pth", "b2777c0a", 54.708, 75.6, 92.806, 256, true),
        ],
    }
    densenet201: DenseNet = DenseNetConfig::densenet201(), {
        params: 20_013_928,
        gflops: 4.291,
        weights: &[
            imagenet("IMAGENET1K_V1", "https://download.pytorch.org/models/densenet201-c1103571.pth", "c1103571", 77.373, 76.896, 93.37, 256, true),
        ],
    }
}
