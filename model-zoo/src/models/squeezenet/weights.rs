//! SqueezeNet's registry entries; metadata and weights as torchvision 0.29's, checked by
//! `cargo xtask parity`.

use super::{SQUEEZENET1_0_INPUT, SQUEEZENET1_1_INPUT, SqueezeNet, SqueezeNetConfig};
use crate::family::Family;
use crate::registry::imagenet;

#[rustfmt::skip]
builders! {
    family: Family::SQUEEZENET, input: SQUEEZENET1_0_INPUT, config: SqueezeNetConfig, drop_rate: dropout;
    squeezenet1_0: SqueezeNet = SqueezeNetConfig::v1_0(), {
        params: 1_248_424,
        gflops: 0.819,
        weights: &[
            imagenet("IMAGENET1K_V1", "https://download.pytorch.org/models/squeezenet1_0-b66bff10.pth", "b66bff10", 4.778, 58.092, 80.42, 256, true),
        ],
    }
    squeezenet1_1: SqueezeNet = SqueezeNetConfig::v1_1(), {
        params: 1_235_496,
        gflops: 0.349,
        input: SQUEEZENET1_1_INPUT,
        weights: &[
            imagenet("IMAGENET1K_V1", "https://download.pytorch.org/models/squeezenet1_1-b8a52dc0.pth", "b8a52dc0", 4.729, 58.178, 80.624, 256, true),
        ],
    }
}
