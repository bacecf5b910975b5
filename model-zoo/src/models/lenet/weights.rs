//! LeNet-5's registry entry (the zoo's own; torchvision has no LeNet).

use super::{LENET5_INPUT, LeNet5, LeNet5Config};
use crate::family::Family;

#[rustfmt::skip]
builders! {
    family: Family::LENET, input: LENET5_INPUT, config: LeNet5Config;
    lenet5: LeNet5 = LeNet5Config::new(), {
        params: 62_006,
        gflops: 0.001,
        torchvision: false,
        image_size: 32,
        num_classes: 10,
    }
}
