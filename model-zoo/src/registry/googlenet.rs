//! GoogLeNet's registry entries: torchvision's `googlenet` (metadata and weights as torchvision
//! 0.29's, checked by `cargo xtask parity`) and the zoo's CIFAR variant.
//!
//! `create("googlenet", n)` is torchvision's `googlenet(weights=None, num_classes=n)`
//! ([`GoogLeNetConfig::new`]: aux heads, no input transform); pretrained weights load into the
//! model torchvision's builder makes for them ([`GoogLeNetConfig::pretrained`]: inputs
//! transformed, aux heads dropped), whose parameter count is torchvision's published one.

use super::{Family, ModelInfo, imagenet};
use crate::googlenet::{
    GOOGLENET_CIFAR_INPUT, GOOGLENET_INPUT, GoogLeNetCifarConfig, GoogLeNetConfig,
};
use crate::model::Model;

/// GoogLeNet, then its CIFAR variant.
pub(super) const MODELS: &[ModelInfo] = &[
    ModelInfo {
        name: "googlenet",
        family: Family::GOOGLENET,
        torchvision: true,
        params: 6_624_904,
        gflops: 1.498,
        image_size: 224,
        num_classes: 1000,
        input: GOOGLENET_INPUT,
        weights: &[imagenet(
            "IMAGENET1K_V1",
            "https://download.pytorch.org/models/googlenet-1378be20.pth",
            "1378be20",
            49.731,
            69.778,
            89.53,
            256,
            true,
        )],
        build: |num_classes, device| {
            Ok(Model::GoogLeNet(
                GoogLeNetConfig::new()
                    .with_num_classes(num_classes)
                    .init(device)?,
            ))
        },
        build_with_weights: Some(|num_classes, device| {
            Ok(Model::GoogLeNet(
                GoogLeNetConfig::pretrained()
                    .with_num_classes(num_classes)
                    .init(device)?,
            ))
        }),
    },
    ModelInfo {
        name: "googlenet_cifar",
        family: Family::GOOGLENET,
        torchvision: false,
        params: 5_490_986,
        gflops: 1.337,
        image_size: 32,
        num_classes: 10,
        input: GOOGLENET_CIFAR_INPUT,
        weights: &[],
        build: |num_classes, device| {
            Ok(Model::GoogLeNetCifar(
                GoogLeNetCifarConfig::new()
                    .with_num_classes(num_classes)
                    .init(device)?,
            ))
        },
        build_with_weights: None,
    },
];
