//! Inception v3's registry entry; metadata and weights as torchvision 0.29's, checked by
//! `cargo xtask parity`.
//!
//! `inception_v3` is the model torchvision's builder returns with pretrained weights
//! ([`InceptionV3Config::pretrained`]: inputs transformed, aux head kept), so that its
//! parameter count is torchvision's published one and the file loads as it is.

use super::Interpolation::Bilinear;
use super::{Family, ModelInfo, imagenet};
use crate::inception::{INCEPTION_V3_INPUT, InceptionV3Config};

pub(super) const MODELS: &[ModelInfo] = &[ModelInfo {
    name: "inception_v3",
    family: Family::INCEPTION,
    torchvision: true,
    params: 27_161_264,
    gflops: 5.713,
    image_size: 299,
    num_classes: 1000,
    input: INCEPTION_V3_INPUT,
    weights: &[imagenet(
        "IMAGENET1K_V1",
        "https://download.pytorch.org/models/inception_v3_google-0cc3c7bd.pth",
        "0cc3c7bd",
        103.903,
        77.294,
        93.45,
        342,
        true,
    )
    .crop(299, Bilinear)],
    build: |num_classes, device| {
        Ok(InceptionV3Config::pretrained()
            .with_num_classes(num_classes)
            .init(device)?
            .into())
    },
}];
