//! MobileNet V2's registry entry; metadata and weights as torchvision 0.29's, checked by
//! `cargo xtask parity`.

use super::{MOBILENET_V2_INPUT, MobileNetV2, MobileNetV2Config};
use crate::family::Family;
use crate::registry::imagenet;

#[rustfmt::skip]
builders! {
    family: Family::MOBILENET_V2, input: MOBILENET_V2_INPUT, config: MobileNetV2Config, drop_rate: dropout;
    mobilenet_v2: MobileNetV2 = MobileNetV2Config::new(), {
        params: 3_504_872,
        gflops: 0.301,
        weights: &[
            imagenet("IMAGENET1K_V1", "https://download.pytorch.org/models/mobilenet_v2-b0353104.pth", "b0353104", 13.555, 71.878, 90.286, 256, false),
            imagenet("IMAGENET1K_V2", "https://download.pytorch.org/models/mobilenet_v2-7ebf99e0.pth", "7ebf99e0", 13.598, 72.154, 90.822, 232, true),
        ],
    }
}
