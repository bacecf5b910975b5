//! MaxViT's registry entry; metadata and weights as torchvision 0.29's, checked by
//! `cargo xtask parity`.

use super::{MaxVit, MaxVitConfig};
use crate::error::InputSpec;
use crate::family::Family;
use crate::registry::Interpolation::Bicubic;
use crate::registry::imagenet;

/// MaxViT-T takes exactly the size it is built for (its relative position tables').
const MAXVIT_INPUT: InputSpec = InputSpec {
    channels: 3,
    min_size: [224, 224],
    exact: true,
};

#[rustfmt::skip]
builders! {
    family: Family::MAXVIT, input: MAXVIT_INPUT, config: MaxVitConfig, drop_path_rate: stochastic_depth_prob;
    maxvit_t: MaxVit = MaxVitConfig::new(), {
        params: 30_919_624,
        gflops: 5.558,
        weights: &[
            imagenet("IMAGENET1K_V1", "https://download.pytorch.org/models/maxvit_t-bc5ab103.pth", "bc5ab103", 118.769, 83.7, 96.722, 224, true).crop(224, Bicubic),
        ],
    }
}
