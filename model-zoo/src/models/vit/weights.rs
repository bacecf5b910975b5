//! Vision Transformer's registry entries; metadata and weights as torchvision 0.29's, checked
//! by `cargo xtask parity`. Each model is built at its first weights' size, as torchvision's
//! builder sets `image_size` from the weights: 224, and 518 for `vit_h_14`, whose first file is
//! SWAG's end-to-end one. A file for another size (the other SWAG files: 384, 512, 224) is
//! loaded into a model rebuilt for it ([`crate::Architecture::conform_to`]).

use super::{VisionTransformer, VisionTransformerConfig};
use crate::error::InputSpec;
use crate::family::Family;
use crate::registry::Interpolation::Bicubic;
use crate::registry::imagenet;

/// A ViT takes exactly the size it is built for (its position embedding's).
const fn vit_input(side: usize) -> InputSpec {
    InputSpec {
        channels: 3,
        min_size: [side, side],
        exact: true,
    }
}

#[rustfmt::skip]
builders! {
    family: Family::VIT, input: vit_input(224), config: VisionTransformerConfig, drop_rate: dropout;
    vit_b_16: VisionTransformer = VisionTransformerConfig::vit_b_16().with_image_size(224), {
        params: 86_567_656,
        gflops: 17.564,
        weights: &[
            imagenet("IMAGENET1K_V1", "https://download.pytorch.org/models/vit_b_16-c867db91.pth", "c867db91", 330.285, 81.072, 95.318, 256, true),
            imagenet("IMAGENET1K_SWAG_E2E_V1", "https://download.pytorch.org/models/vit_b_16_swag-9ac1b537.pth", "9ac1b537", 331.398, 85.304, 97.65, 384, false).crop(384, Bicubic),
            imagenet("IMAGENET1K_SWAG_LINEAR_V1", "https://download.pytorch.org/models/vit_b_16_lc_swag-4e70ced5.pth", "4e70ced5", 330.285, 81.886, 96.18, 224, false).crop(224, Bicubic),
        ],
    }
    vit_b_32: VisionTransformer = VisionTransformerConfig::vit_b_32().with_image_size(224), {
        params: 88_224_232,
        gflops: 4.409,
        weights: &[
            imagenet("IMAGENET1K_V1", "https://download.pytorch.org/models/vit_b_32-d86f8d99.pth", "d86f8d99", 336.604, 75.912, 92.466, 256, true),
        ],
    }
    vit_l_16: VisionTransformer = VisionTransformerConfig::vit_l_16().with_image_size(224), {
        params: 304_326_632,
        gflops: 61.555,
        weights: &[
            imagenet("IMAGENET1K_V1", "https://download.pytorch.org/models/vit_l_16-852ce7e3.pth", "852ce7e3", 1161.023, 79.662, 94.638, 242, true),
            imagenet("IMAGENET1K_SWAG_E2E_V1", "https://download.pytorch.org/models/vit_l_16_swag-4f3808c9.pth", "4f3808c9", 1164.258, 88.064, 98.512, 512, false).crop(512, Bicubic),
            imagenet("IMAGENET1K_SWAG_LINEAR_V1", "https://download.pytorch.org/models/vit_l_16_lc_swag-4d563306.pth", "4d563306", 1161.023, 85.146, 97.422, 224, false).crop(224, Bicubic),
        ],
    }
    vit_l_32: VisionTransformer = VisionTransformerConfig::vit_l_32().with_image_size(224), {
        params: 306_535_400,
        gflops: 15.378,
        weights: &[
            imagenet("IMAGENET1K_V1", "https://download.pytorch.org/models/vit_l_32-c7638314.pth", "c7638314", 1169.449, 76.972, 93.07, 256, true),
        ],
    }
    vit_h_14: VisionTransformer = VisionTransformerConfig::vit_h_14().with_image_size(518), {
        params: 633_470_440,
        gflops: 1016.717,
        image_size: 518,
        input: vit_input(518),
        weights: &[
            imagenet("IMAGENET1K_SWAG_E2E_V1", "https://download.pytorch.org/models/vit_h_14_swag-80465313.pth", "80465313", 2416.643, 88.552, 98.694, 518, true).crop(518, Bicubic),
            imagenet("IMAGENET1K_SWAG_LINEAR_V1", "https://download.pytorch.org/models/vit_h_14_lc_swag-c1eb923e.pth", "c1eb923e", 2411.209, 85.708, 97.73, 224, false).crop(224, Bicubic),
        ],
    }
}
