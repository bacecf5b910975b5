//! Inception v3's registry entry; metadata and weights as torchvision 0.29's, checked by
//! `cargo xtask parity`.
//!
//! `create("inception_v3", n)` is torchvision's `inception_v3(weights=None, num_classes=n)`
//! ([`InceptionV3Config::new`]: aux head, no input transform, `init_weights=True`); pretrained
//! weights load into the model torchvision's builder makes for them
//! ([`InceptionV3Config::pretrained`]: inputs transformed, aux head kept).

use super::{INCEPTION_V3_INPUT, InceptionV3, InceptionV3Config};
use crate::family::Family;
use crate::registry::Interpolation::Bilinear;
use crate::registry::imagenet;

#[rustfmt::skip]
builders! {
    family: Family::INCEPTION, input: INCEPTION_V3_INPUT, config: InceptionV3Config, drop_rate: dropout;
    inception_v3: InceptionV3 = InceptionV3Config::new(), {
        params: 27_161_264,
        gflops: 5.713,
        image_size: 299,
        build_with_weights: Some(|options, device| {
            build_config!(InceptionV3Config::pretrained(), "inception_v3", options, device)
        }),
        weights: &[
            imagenet("IMAGENET1K_V1", "https://download.pytorch.org/models/inception_v3_google-0cc3c7bd.pth", "0cc3c7bd", 103.903, 77.294, 93.45, 342, true).crop(299, Bilinear),
        ],
    }
}
