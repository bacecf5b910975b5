//! GoogLeNet's registry entries: torchvision's `googlenet` (metadata and weights as torchvision
//! 0.29's, checked by `cargo xtask parity`) and the zoo's CIFAR variant.
//!
//! `create("googlenet", n)` is torchvision's `googlenet(weights=None, num_classes=n)`
//! ([`GoogLeNetConfig::new`]: aux heads, no input transform); pretrained weights load into the
//! model torchvision's builder makes for them ([`GoogLeNetConfig::pretrained`]: inputs
//! transformed, aux heads dropped), whose parameter count is torchvision's published one.

use super::{
    GOOGLENET_CIFAR_INPUT, GOOGLENET_INPUT, GoogLeNet, GoogLeNetCifar, GoogLeNetCifarConfig,
    GoogLeNetConfig,
};
use crate::family::Family;
use crate::registry::imagenet;

#[rustfmt::skip]
builders! {
    family: Family::GOOGLENET, input: GOOGLENET_INPUT;
    googlenet: GoogLeNet = GoogLeNetConfig::new(), {
        params: 6_624_904,
        gflops: 1.498,
        build_with_weights: Some(|options, device| {
            build_config!(GoogLeNetConfig::pretrained(), "googlenet", options, device)
        }),
        weights: &[
            imagenet("IMAGENET1K_V1", "https://download.pytorch.org/models/googlenet-1378be20.pth", "1378be20", 49.731, 69.778, 89.53, 256, true),
        ],
    }
    googlenet_cifar: GoogLeNetCifar = GoogLeNetCifarConfig::new(), {
        params: 5_490_986,
        gflops: 1.337,
        torchvision: false,
        image_size: 32,
        num_classes: 10,
        input: GOOGLENET_CIFAR_INPUT,
    }
}

// The two configurations of one family take `builders!`'s form without `config`, so their
// `drop_rate` (torchvision's `dropout`; the aux heads keep `dropout_aux`) is said here.
impl crate::models::DropRates for GoogLeNetConfig {
    fn set_drop_rate(&mut self, rate: f64) -> bool {
        self.dropout = rate;
        true
    }
}

impl crate::models::DropRates for GoogLeNetCifarConfig {
    fn set_drop_rate(&mut self, rate: f64) -> bool {
        self.dropout = rate;
        true
    }
}
