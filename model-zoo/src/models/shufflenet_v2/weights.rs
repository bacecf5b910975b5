//! ShuffleNet V2's registry entries; metadata and weights as torchvision 0.29's, checked by
//! `cargo xtask parity`. The file names are torchvision's (`shufflenetv2_x0.5-f707e7126e.pth`),
//! with a 10-digit SHA-256 prefix.

use super::{SHUFFLENET_V2_INPUT, ShuffleNetV2, ShuffleNetV2Config};
use crate::family::Family;
use crate::registry::imagenet;

#[rustfmt::skip]
builders! {
    family: Family::SHUFFLENET_V2, input: SHUFFLENET_V2_INPUT, config: ShuffleNetV2Config;
    shufflenet_v2_x0_5: ShuffleNetV2 = ShuffleNetV2Config::x0_5(), {
        params: 1_366_792,
        gflops: 0.04,
        weights: &[
            imagenet("IMAGENET1K_V1", "https://download.pytorch.org/models/shufflenetv2_x0.5-f707e7126e.pth", "f707e7126e", 5.282, 60.552, 81.746, 256, true),
        ],
    }
    shufflenet_v2_x1_0: ShuffleNetV2 = ShuffleNetV2Config::x1_0(), {
        params: 2_278_604,
        gflops: 0.145,
        weights: &[
            imagenet("IMAGENET1K_V1", "https://download.pytorch.org/models/shufflenetv2_x1-5666bf0f80.pth", "5666bf0f80", 8.791, 69.362, 88.316, 256, true),
        ],
    }
    shufflenet_v2_x1_5: ShuffleNetV2 = ShuffleNetV2Config::x1_5(), {
        params: 3_503_624,
        gflops: 0.296,
        weights: &[
            imagenet("IMAGENET1K_V1", "https://download.pytorch.org/models/shufflenetv2_x1_5-3c479a10.pth", "3c479a10", 13.557, 72.996, 91.086, 232, true),
        ],
    }
    shufflenet_v2_x2_0: ShuffleNetV2 = ShuffleNetV2Config::x2_0(), {
        params: 7_393_996,
        gflops: 0.583,
        weights: &[
            imagenet("IMAGENET1K_V1", "https://download.pytorch.org/models/shufflenetv2_x2_0-8be3c8ee.pth", "8be3c8ee", 28.433, 76.23, 93.006, 232, true),
        ],
    }
}
