//! MaxViT's registry entry; metadata and weights as torchvision 0.29's, checked by
//! `cargo xtask parity`.

use super::Interpolation::Bicubic;
use super::{Family, ModelInfo, imagenet};
use crate::maxvit::MaxVitConfig;

#[rustfmt::skip]
pub(super) const MODELS: &[ModelInfo] = &[ModelInfo {
    name: "maxvit_t",
    family: Family::MAXVIT,
    torchvision: true,
    params: 30_919_624,
    gflops: 5.558,
    image_size: 224,
    num_classes: 1000,
    input: crate::InputSpec {
        channels: 3,
        min_size: [224, 224],
        exact: true,
    },
    weights: &[
        imagenet("IMAGENET1K_V1", "https://download.pytorch.org/models/maxvit_t-bc5ab103.pth", "bc5ab103", 118.769, 83.7, 96.722, 224, true).crop(224, Bicubic),
    ],
    build_with_weights: None,
    build: |n, device| Ok(MaxVitConfig::new().with_num_classes(n).init(device)?.into()),
}];
