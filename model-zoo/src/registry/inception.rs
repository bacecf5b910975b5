//! Inception v3's registry entry; metadata and weights as torchvision 0.29's, checked by
//! `cargo xtask parity`.
//!
//! `create("inception_v3", n)` is torchvision's `inception_v3(weights=None, num_classes=n)`
//! ([`InceptionV3Config::new`]: aux head, no input transform, `init_weights=True`); pretrained
//! weights load into the model torchvision's builder makes for them
//! ([`InceptionV3Config::pretrained`]: inputs transformed, aux head kept).

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
        Ok(InceptionV3Config::new()
            .with_num_classes(num_classes)
            .init(device)?
            .into())
    },
    build_with_weights: Some(|num_classes, device| {
        Ok(InceptionV3Config::pretrained()
            .with_num_classes(num_classes)
            .init(device)?
            .into())
    }),
}];
