//! LeNet-5's registry entry (the zoo's own; torchvision has no LeNet).

use super::{Family, ModelInfo};
use crate::lenet::{LENET5_INPUT, LeNet5Config};
use crate::model::Model;

/// LeNet-5 for 32x32 colour images.
pub(super) const MODELS: &[ModelInfo] = &[ModelInfo {
    name: "lenet5",
    family: Family::LENET,
    torchvision: false,
    params: 62_006,
    gflops: 0.001,
    image_size: 32,
    num_classes: 10,
    input: LENET5_INPUT,
    weights: &[],
    build_with_weights: None,
    build: |num_classes, device| {
        Ok(Model::LeNet5(
            LeNet5Config::new()
                .with_num_classes(num_classes)
                .init(device)?,
        ))
    },
}];
