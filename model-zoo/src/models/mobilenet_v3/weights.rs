//! MobileNet V3's registry entries; metadata and weights as torchvision 0.29's, checked by
//! `cargo xtask parity`.

use super::{MOBILENET_V3_INPUT, MobileNetV3, MobileNetV3Config};
use crate::family::Family;
use crate::registry::imagenet;

#[rustfmt::skip]
builders! {
    family: Family::MOBILENET_V3, input: MOBILENET_V3_INPUT, config: MobileNetV3Config, drop_rate: dropout;
    mobilenet_v3_large: MobileNetV3 = MobileNetV3Config::large(), {
        params: 5_483_032,
        gflops: 0.217,
        weights: &[
            imagenet("IMAGENET1K_V1", "https://download.pytorch.org/models/mobilenet_v3_large-8738ca79.pth", "8738ca79", 21.114, 74.042, 91.34, 256, false),
            imagenet("IMAGENET1K_V2", "https://download.pytorch.org/models/mobilenet_v3_large-5c1a4163.pth", "5c1a4163", 21.107, 75.274, 92.566, 232, true),
        ],
    }
    mobilenet_v3_small: MobileNetV3 = MobileNetV3Config::small(), {
        params: 2_542_856,
        gflops: 0.057,
        weights: &[
            imagenet("IMAGENET1K_V1", "https://download.pytorch.org/models/mobilenet_v3_small-047dcff4.pth", "047dcff4", 9.829, 67.668, 87.402, 256, true),
        ],
    }
}
