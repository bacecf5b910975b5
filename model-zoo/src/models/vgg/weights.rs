//! The VGG family's registry entries; metadata and weights as torchvision 0.29's, checked by
//! `cargo xtask parity`. torchvision's `VGG16_Weights.IMAGENET1K_FEATURES` (a feature-extractor
//! port with its own mean/std and no classifier metadata) is not listed.

use super::{Vgg, VggConfig};
use crate::error::InputSpec;
use crate::family::Family;
use crate::registry::imagenet;

/// Every VGG: five 2x2 max-pools, so 32x32 at least.
const VGG_INPUT: InputSpec = InputSpec {
    channels: 3,
    min_size: [32, 32],
    exact: false,
};

#[rustfmt::skip]
builders! {
    family: Family::VGG, input: VGG_INPUT, config: VggConfig, drop_rate: dropout;
    vgg11: Vgg = VggConfig::vgg11(), {
        params: 132_863_336,
        gflops: 7.609,
        weights: &[
            imagenet("IMAGENET1K_V1", "https://download.pytorch.org/models/vgg11-8a719046.pth", "8a719046", 506.84, 69.02, 88.628, 256, true),
        ],
    }
    vgg11_bn: Vgg = VggConfig::vgg11_bn(), {
        params: 132_868_840,
        gflops: 7.609,
        weights: &[
            imagenet("IMAGENET1K_V1", "https://download.pytorch.org/models/vgg11_bn-6002323d.pth", "6002323d", 506.881, 70.37, 89.81, 256, true),
        ],
    }
    vgg13: Vgg = VggConfig::vgg13(), {
        params: 133_047_848,
        gflops: 11.308,
        weights: &[
            imagenet("IMAGENET1K_V1", "https://download.pytorch.org/models/vgg13-19584684.pth", "19584684", 507.545, 69.928, 89.246, 256, true),
        ],
    }
    vgg13_bn: Vgg = VggConfig::vgg13_bn(), {
        params: 133_053_736,
        gflops: 11.308,
        weights: &[
            imagenet("IMAGENET1K_V1", "https://download.pytorch.org/models/vgg13_bn-abd245e5.pth", "abd245e5", 507.59, 71.586, 90.374, 256, true),
        ],
    }
    vgg16: Vgg = VggConfig::vgg16(), {
        params: 138_357_544,
        gflops: 15.47,
        weights: &[
            imagenet("IMAGENET1K_V1", "https://download.pytorch.org/models/vgg16-397923af.pth", "397923af", 527.796, 71.592, 90.382, 256, true),
        ],
    }
    vgg16_bn: Vgg = VggConfig::vgg16_bn(), {
        params: 138_365_992,
        gflops: 15.47,
        weights: &[
            imagenet("IMAGENET1K_V1", "https://download.pytorch.org/models/vgg16_bn-6c64b313.pth", "6c64b313", 527.866, 73.36, 91.516, 256, true),
        ],
    }
    vgg19: Vgg = VggConfig::vgg19(), {
        params: 143_667_240,
        gflops: 19.632,
        weights: &[
            imagenet("IMAGENET1K_V1", "https://download.pytorch.org/models/vgg19-dcbb9e9d.pth", "dcbb9e9d", 548.051, 72.376, 90.876, 256, true),
        ],
    }
    vgg19_bn: Vgg = VggConfig::vgg19_bn(), {
        params: 143_678_248,
        gflops: 19.632,
        weights: &[
            imagenet("IMAGENET1K_V1", "https://download.pytorch.org/models/vgg19_bn-c79401a0.pth", "c79401a0", 548.143, 74.218, 91.842, 256, true),
        ],
    }
    // The zoo's VGG-16 for 32x32 input (torchvision has none).
    vgg16_cifar: Vgg = VggConfig::vgg16_cifar(), {
        params: 33_646_666,
        gflops: 0.332,
        torchvision: false,
        image_size: 32,
        num_classes: 10,
    }
}
