//! EfficientNet's registry entries; metadata and weights as torchvision 0.29's, checked by
//! `cargo xtask parity`. Each model's `image_size` is its first weights' crop (224 for B0 up
//! to 600 for B7), the size torchvision gives its GFLOPs at. V2-L's file is normalised with mean
//! and standard deviation 0.5, not ImageNet's.

use super::{EfficientNet, EfficientNetConfig};
use crate::error::InputSpec;
use crate::family::Family;
use crate::registry::Interpolation::{Bicubic, Bilinear};
use crate::registry::imagenet;

/// EfficientNet B0–B7 take any size.
const EFFICIENTNET_INPUT: InputSpec = InputSpec {
    channels: 3,
    min_size: [1, 1],
    exact: false,
};

/// EfficientNet V2's stem and five stride-2 stages need 33x33 (a smaller input leaves a stage
/// with an empty map).
const EFFICIENTNET_V2_INPUT: InputSpec = InputSpec {
    channels: 3,
    min_size: [33, 33],
    exact: false,
};

#[rustfmt::skip]
builders! {
    family: Family::EFFICIENTNET, input: EFFICIENTNET_INPUT, config: EfficientNetConfig, drop_rate: dropout, drop_path_rate: stochastic_depth_prob;
    efficientnet_b0: EfficientNet = EfficientNetConfig::efficientnet_b0(), {
        params: 5_288_548,
        gflops: 0.386,
        weights: &[
            imagenet("IMAGENET1K_V1", "https://download.pytorch.org/models/efficientnet_b0_rwightman-7f5810bc.pth", "7f5810bc", 20.451, 77.692, 93.532, 256, true).crop(224, Bicubic),
        ],
    }
    efficientnet_b1: EfficientNet = EfficientNetConfig::efficientnet_b1(), {
        params: 7_794_184,
        gflops: 0.687,
        image_size: 240,
        weights: &[
            imagenet("IMAGENET1K_V1", "https://download.pytorch.org/models/efficientnet_b1_rwightman-bac287d4.pth", "bac287d4", 30.134, 78.642, 94.186, 256, false).crop(240, Bicubic),
            imagenet("IMAGENET1K_V2", "https://download.pytorch.org/models/efficientnet_b1-c27df63c.pth", "c27df63c", 30.136, 79.838, 94.934, 255, true).crop(240, Bilinear),
        ],
    }
    efficientnet_b2: EfficientNet = EfficientNetConfig::efficientnet_b2(), {
        params: 9_109_994,
        gflops: 1.088,
        image_size: 288,
        weights: &[
            imagenet("IMAGENET1K_V1", "https://download.pytorch.org/models/efficientnet_b2_rwightman-c35c1473.pth", "c35c1473", 35.174, 80.608, 95.31, 288, true).crop(288, Bicubic),
        ],
    }
    efficientnet_b3: EfficientNet = EfficientNetConfig::efficientnet_b3(), {
        params: 12_233_232,
        gflops: 1.827,
        image_size: 300,
        weights: &[
            imagenet("IMAGENET1K_V1", "https://download.pytorch.org/models/efficientnet_b3_rwightman-b3899882.pth", "b3899882", 47.184, 82.008, 96.054, 320, true).crop(300, Bicubic),
        ],
    }
    efficientnet_b4: EfficientNet = EfficientNetConfig::efficientnet_b4(), {
        params: 19_341_616,
        gflops: 4.394,
        image_size: 380,
        weights: &[
            imagenet("IMAGENET1K_V1", "https://download.pytorch.org/models/efficientnet_b4_rwightman-23ab8bcd.pth", "23ab8bcd", 74.489, 83.384, 96.594, 384, true).crop(380, Bicubic),
        ],
    }
    efficientnet_b5: EfficientNet = EfficientNetConfig::efficientnet_b5(), {
        params: 30_389_784,
        gflops: 10.266,
        image_size: 456,
        weights: &[
            imagenet("IMAGENET1K_V1", "https://download.pytorch.org/models/efficientnet_b5_lukemelas-1a07897c.pth", "1a07897c", 116.864, 83.444, 96.628, 456, true).crop(456, Bicubic),
        ],
    }
    efficientnet_b6: EfficientNet = EfficientNetConfig::efficientnet_b6(), {
        params: 43_040_704,
        gflops: 19.068,
        image_size: 528,
        weights: &[
            imagenet("IMAGENET1K_V1", "https://download.pytorch.org/models/efficientnet_b6_lukemelas-24a108a5.pth", "24a108a5", 165.362, 84.008, 96.916, 528, true).crop(528, Bicubic),
        ],
    }
    efficientnet_b7: EfficientNet = EfficientNetConfig::efficientnet_b7(), {
        params: 66_347_960,
        gflops: 37.746,
        image_size: 600,
        weights: &[
            imagenet("IMAGENET1K_V1", "https://download.pytorch.org/models/efficientnet_b7_lukemelas-c5b4e57e.pth", "c5b4e57e", 254.675, 84.122, 96.908, 600, true).crop(600, Bicubic),
        ],
    }
    efficientnet_v2_s: EfficientNet = EfficientNetConfig::efficientnet_v2_s(), {
        params: 21_458_488,
        gflops: 8.366,
        image_size: 384,
        input: EFFICIENTNET_V2_INPUT,
        weights: &[
            imagenet("IMAGENET1K_V1", "https://download.pytorch.org/models/efficientnet_v2_s-dd5fe13b.pth", "dd5fe13b", 82.704, 84.228, 96.878, 384, true).crop(384, Bilinear),
        ],
    }
    efficientnet_v2_m: EfficientNet = EfficientNetConfig::efficientnet_v2_m(), {
        params: 54_139_356,
        gflops: 24.582,
        image_size: 480,
        input: EFFICIENTNET_V2_INPUT,
        weights: &[
            imagenet("IMAGENET1K_V1", "https://download.pytorch.org/models/efficientnet_v2_m-dc08266a.pth", "dc08266a", 208.01, 85.112, 97.156, 480, true).crop(480, Bilinear),
        ],
    }
    efficientnet_v2_l: EfficientNet = EfficientNetConfig::efficientnet_v2_l(), {
        params: 118_515_272,
        gflops: 56.08,
        image_size: 480,
        input: EFFICIENTNET_V2_INPUT,
        weights: &[
            imagenet("IMAGENET1K_V1", "https://download.pytorch.org/models/efficientnet_v2_l-59c71312.pth", "59c71312", 454.573, 85.808, 97.788, 480, true).crop(480, Bicubic).normalize([0.5; 3], [0.5; 3]),
        ],
    }
}
