//! MNASNet's registry entries; metadata and weights as torchvision 0.29's, checked by
//! `cargo xtask parity`. `mnasnet0.5_top1_67.823-3ffadce67e.pth` and
//! `mnasnet1.0_top1_73.512-f206786ef8.pth` keep their original names (10-digit SHA-256
//! prefixes).

use super::{MNASNET_INPUT, MnasNet, MnasNetConfig};
use crate::family::Family;
use crate::registry::imagenet;

#[rustfmt::skip]
builders! {
    family: Family::MNASNET, input: MNASNET_INPUT, config: MnasNetConfig, drop_rate: dropout;
    mnasnet0_5: MnasNet = MnasNetConfig::new(0.5), {
        params: 2_218_512,
        gflops: 0.104,
        weights: &[
            imagenet("IMAGENET1K_V1", "https://download.pytorch.org/models/mnasnet0.5_top1_67.823-3ffadce67e.pth", "3ffadce67e", 8.591, 67.734, 87.49, 256, true),
        ],
    }
    mnasnet0_75: MnasNet = MnasNetConfig::new(0.75), {
        params: 3_170_208,
        gflops: 0.215,
        weights: &[
            imagenet("IMAGENET1K_V1", "https://download.pytorch.org/models/mnasnet0_75-7090bc5f.pth", "7090bc5f", 12.303, 71.18, 90.496, 232, true),
        ],
    }
    mnasnet1_0: MnasNet = MnasNetConfig::new(1.0), {
        params: 4_383_312,
        gflops: 0.314,
        weights: &[
            imagenet("IMAGENET1K_V1", "https://download.pytorch.org/models/mnasnet1.0_top1_73.512-f206786ef8.pth", "f206786ef8", 16.915, 73.456, 91.51, 256, true),
        ],
    }
    mnasnet1_3: MnasNet = MnasNetConfig::new(1.3), {
        params: 6_282_256,
        gflops: 0.526,
        weights: &[
            imagenet("IMAGENET1K_V1", "https://download.pytorch.org/models/mnasnet1_3-a4c69d6f.pth", "a4c69d6f", 24.246, 76.506, 93.522, 232, true),
        ],
    }
}
