//! ConvNeXt's registry entries; metadata and weights as torchvision 0.29's, checked by
//! `cargo xtask parity`. Each file is evaluated with a 224 crop of a bilinear resize to 236,
//! 230 or 232, as torchvision's transforms give.

use super::{CONVNEXT_INPUT, ConvNeXt, ConvNeXtConfig};
use crate::family::Family;
use crate::registry::imagenet;

#[rustfmt::skip]
builders! {
    family: Family::CONVNEXT, input: CONVNEXT_INPUT, config: ConvNeXtConfig, drop_path_rate: stochastic_depth_prob;
    convnext_tiny: ConvNeXt = ConvNeXtConfig::convnext_tiny(), {
        params: 28_589_128,
        gflops: 4.456,
        weights: &[
            imagenet("IMAGENET1K_V1", "https://download.pytorch.org/models/convnext_tiny-983f1562.pth", "983f1562", 109.119, 82.52, 96.146, 236, true),
        ],
    }
    convnext_small: ConvNeXt = ConvNeXtConfig::convnext_small(), {
        params: 50_223_688,
        gflops: 8.684,
        weights: &[
            imagenet("IMAGENET1K_V1", "https://download.pytorch.org/models/convnext_small-0c510722.pth", "0c510722", 191.703, 83.616, 96.65, 230, true),
        ],
    }
    convnext_base: ConvNeXt = ConvNeXtConfig::convnext_base(), {
        params: 88_591_464,
        gflops: 15.355,
        weights: &[
            imagenet("IMAGENET1K_V1", "https://download.pytorch.org/models/convnext_base-6075fbad.pth", "6075fbad", 338.064, 84.062, 96.87, 232, true),
        ],
    }
    convnext_large: ConvNeXt = ConvNeXtConfig::convnext_large(), {
        params: 197_767_336,
        gflops: 34.361,
        weights: &[
            imagenet("IMAGENET1K_V1", "https://download.pytorch.org/models/convnext_large-ea097f82.pth", "ea097f82", 754.537, 84.414, 96.976, 232, true),
        ],
    }
}
