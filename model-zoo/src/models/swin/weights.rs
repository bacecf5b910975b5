//! Swin Transformer's registry entries; metadata and weights as torchvision 0.29's, checked by
//! `cargo xtask parity`. Each model's `image_size` is its weights' crop (224; 256 for V2), the
//! size torchvision gives its GFLOPs at; the models themselves take any size (see
//! [`super::SWIN_INPUT`]).

use super::{SWIN_INPUT, SwinConfig, SwinTransformer};
use crate::family::Family;
use crate::registry::Interpolation::Bicubic;
use crate::registry::imagenet;

#[rustfmt::skip]
builders! {
    family: Family::SWIN, input: SWIN_INPUT, config: SwinConfig, drop_rate: dropout, drop_path_rate: stochastic_depth_prob;
    swin_t: SwinTransformer = SwinConfig::swin_t(), {
        params: 28_288_354,
        gflops: 4.491,
        weights: &[
            imagenet("IMAGENET1K_V1", "https://download.pytorch.org/models/swin_t-704ceda3.pth", "704ceda3", 108.19, 81.474, 95.776, 232, true).crop(224, Bicubic),
        ],
    }
    swin_s: SwinTransformer = SwinConfig::swin_s(), {
        params: 49_606_258,
        gflops: 8.741,
        weights: &[
            imagenet("IMAGENET1K_V1", "https://download.pytorch.org/models/swin_s-5e29d889.pth", "5e29d889", 189.786, 83.196, 96.36, 246, true).crop(224, Bicubic),
        ],
    }
    swin_b: SwinTransformer = SwinConfig::swin_b(), {
        params: 87_768_224,
        gflops: 15.431,
        weights: &[
            imagenet("IMAGENET1K_V1", "https://download.pytorch.org/models/swin_b-68c6b09e.pth", "68c6b09e", 335.364, 83.582, 96.64, 238, true).crop(224, Bicubic),
        ],
    }
    swin_v2_t: SwinTransformer = SwinConfig::swin_v2_t(), {
        params: 28_351_570,
        gflops: 5.94,
        image_size: 256,
        weights: &[
            imagenet("IMAGENET1K_V1", "https://download.pytorch.org/models/swin_v2_t-b137f0e2.pth", "b137f0e2", 108.626, 82.072, 96.132, 260, true).crop(256, Bicubic),
        ],
    }
    swin_v2_s: SwinTransformer = SwinConfig::swin_v2_s(), {
        params: 49_737_442,
        gflops: 11.546,
        image_size: 256,
        weights: &[
            imagenet("IMAGENET1K_V1", "https://download.pytorch.org/models/swin_v2_s-637d8ceb.pth", "637d8ceb", 190.675, 83.712, 96.816, 260, true).crop(256, Bicubic),
        ],
    }
    swin_v2_b: SwinTransformer = SwinConfig::swin_v2_b(), {
        params: 87_930_848,
        gflops: 20.325,
        image_size: 256,
        weights: &[
            imagenet("IMAGENET1K_V1", "https://download.pytorch.org/models/swin_v2_b-781e5279.pth", "781e5279", 336.372, 84.112, 96.864, 272, true).crop(256, Bicubic),
        ],
    }
}
