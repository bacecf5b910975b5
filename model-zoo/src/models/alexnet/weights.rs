//! AlexNet's registry entries. torchvision's `alexnet` (metadata and weights as torchvision
//! 0.29's, checked by `cargo xtask parity`), and the zoo's half-width and CIFAR variants.

use super::{ALEXNET_CIFAR_INPUT, ALEXNET_INPUT, AlexNet, AlexNetConfig};
use crate::family::Family;
use crate::registry::imagenet;

#[rustfmt::skip]
builders! {
    family: Family::ALEXNET, input: ALEXNET_INPUT, config: AlexNetConfig, drop_rate: dropout;
    alexnet: AlexNet = AlexNetConfig::alexnet(), {
        params: 61_100_840,
        gflops: 0.714,
        weights: &[
            imagenet("IMAGENET1K_V1", "https://download.pytorch.org/models/alexnet-owt-7be5be79.pth", "7be5be79", 233.087, 56.522, 79.066, 256, true),
        ],
    }
    alexnet_half: AlexNet = AlexNetConfig::half(), {
        params: 16_630_440,
        gflops: 0.311,
        torchvision: false,
    }
    alexnet_cifar: AlexNet = AlexNetConfig::cifar(), {
        params: 9_245_994,
        gflops: 0.073,
        torchvision: false,
        image_size: 32,
        num_classes: 10,
        input: ALEXNET_CIFAR_INPUT,
    }
}
