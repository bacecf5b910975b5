//! RegNet's registry entries; metadata and weights as torchvision 0.29's, checked by
//! `cargo xtask parity`. `regnet_y_128gf` has only the SWAG weights, whose end-to-end
//! fine-tuned file is evaluated at 384x384: its GFLOPs, as torchvision's, are at that size.

use super::{REGNET_INPUT, RegNet, RegNetConfig};
use crate::family::Family;
use crate::registry::Interpolation::Bicubic;
use crate::registry::imagenet;

#[rustfmt::skip]
builders! {
    family: Family::REGNET, input: REGNET_INPUT, config: RegNetConfig;
    regnet_y_400mf: RegNet = RegNetConfig::regnet_y_400mf(), {
        params: 4_344_144,
        gflops: 0.402,
        weights: &[
            imagenet("IMAGENET1K_V1", "https://download.pytorch.org/models/regnet_y_400mf-c65dace8.pth", "c65dace8", 16.806, 74.046, 91.716, 256, false),
            imagenet("IMAGENET1K_V2", "https://download.pytorch.org/models/regnet_y_400mf-e6988f5f.pth", "e6988f5f", 16.806, 75.804, 92.742, 232, true),
        ],
    }
    regnet_y_800mf: RegNet = RegNetConfig::regnet_y_800mf(), {
        params: 6_432_512,
        gflops: 0.834,
        weights: &[
            imagenet("IMAGENET1K_V1", "https://download.pytorch.org/models/regnet_y_800mf-1b27b58c.pth", "1b27b58c", 24.774, 76.42, 93.136, 256, false),
            imagenet("IMAGENET1K_V2", "https://download.pytorch.org/models/regnet_y_800mf-58fc7688.pth", "58fc7688", 24.774, 78.828, 94.502, 232, true),
        ],
    }
    regnet_y_1_6gf: RegNet = RegNetConfig::regnet_y_1_6gf(), {
        params: 11_202_430,
        gflops: 1.612,
        weights: &[
            imagenet("IMAGENET1K_V1", "https://download.pytorch.org/models/regnet_y_1_6gf-b11a554e.pth", "b11a554e", 43.152, 77.95, 93.966, 256, false),
            imagenet("IMAGENET1K_V2", "https://download.pytorch.org/models/regnet_y_1_6gf-0d7bc02a.pth", "0d7bc02a", 43.152, 80.876, 95.444, 232, true),
        ],
    }
    regnet_y_3_2gf: RegNet = RegNetConfig::regnet_y_3_2gf(), {
        params: 19_436_338,
        gflops: 3.176,
        weights: &[
            imagenet("IMAGENET1K_V1", "https://download.pytorch.org/models/regnet_y_3_2gf-b5a9779c.pth", "b5a9779c", 74.567, 78.948, 94.576, 256, false),
            imagenet("IMAGENET1K_V2", "https://download.pytorch.org/models/regnet_y_3_2gf-9180c971.pth", "9180c971", 74.567, 81.982, 95.972, 232, true),
        ],
    }
    regnet_y_8gf: RegNet = RegNetConfig::regnet_y_8gf(), {
        params: 39_381_472,
        gflops: 8.473,
        weights: &[
            imagenet("IMAGENET1K_V1", "https://download.pytorch.org/models/regnet_y_8gf-d0d0e4a8.pth", "d0d0e4a8", 150.701, 80.032, 95.048, 256, false),
            imagenet("IMAGENET1K_V2", "https://download.pytorch.org/models/regnet_y_8gf-dc2b1b54.pth", "dc2b1b54", 150.701, 82.828, 96.33, 232, true),
        ],
    }
    regnet_y_16gf: RegNet = RegNetConfig::regnet_y_16gf(), {
        params: 83_590_140,
        gflops: 15.912,
        weights: &[
            imagenet("IMAGENET1K_V1", "https://download.pytorch.org/models/regnet_y_16gf-9e6ed7dd.pth", "9e6ed7dd", 319.49, 80.424, 95.24, 256, false),
            imagenet("IMAGENET1K_V2", "https://download.pytorch.org/models/regnet_y_16gf-3e4a00f9.pth", "3e4a00f9", 319.49, 82.886, 96.328, 232, true),
            imagenet("IMAGENET1K_SWAG_E2E_V1", "https://download.pytorch.org/models/regnet_y_16gf_swag-43afe44d.pth", "43afe44d", 319.49, 86.012, 98.054, 384, false).crop(384, Bicubic),
            imagenet("IMAGENET1K_SWAG_LINEAR_V1", "https://download.pytorch.org/models/regnet_y_16gf_lc_swag-f3ec0043.pth", "f3ec0043", 319.49, 83.976, 97.244, 224, false).crop(224, Bicubic),
        ],
    }
    regnet_y_32gf: RegNet = RegNetConfig::regnet_y_32gf(), {
        params: 145_046_770,
        gflops: 32.28,
        weights: &[
            imagenet("IMAGENET1K_V1", "https://download.pytorch.org/models/regnet_y_32gf-4dee3f7a.pth", "4dee3f7a", 554.076, 80.878, 95.34, 256, false),
            imagenet("IMAGENET1K_V2", "https://download.pytorch.org/models/regnet_y_32gf-8db6d4b5.pth", "8db6d4b5", 554.076, 83.368, 96.498, 232, true),
            imagenet("IMAGENET1K_SWAG_E2E_V1", "https://download.pytorch.org/models/regnet_y_32gf_swag-04fdfa75.pth", "04fdfa75", 554.076, 86.838, 98.362, 384, false).crop(384, Bicubic),
            imagenet("IMAGENET1K_SWAG_LINEAR_V1", "https://download.pytorch.org/models/regnet_y_32gf_lc_swag-e1583746.pth", "e1583746", 554.076, 84.622, 97.48, 224, false).crop(224, Bicubic),
        ],
    }
    regnet_y_128gf: RegNet = RegNetConfig::regnet_y_128gf(), {
        params: 644_812_894,
        gflops: 374.57,
        image_size: 384,
        weights: &[
            imagenet("IMAGENET1K_SWAG_E2E_V1", "https://download.pytorch.org/models/regnet_y_128gf_swag-c8ce3e52.pth", "c8ce3e52", 2461.564, 88.228, 98.682, 384, true).crop(384, Bicubic),
            imagenet("IMAGENET1K_SWAG_LINEAR_V1", "https://download.pytorch.org/models/regnet_y_128gf_lc_swag-cbe8ce12.pth", "cbe8ce12", 2461.564, 86.068, 97.844, 224, false).crop(224, Bicubic),
        ],
    }
    regnet_x_400mf: RegNet = RegNetConfig::regnet_x_400mf(), {
        params: 5_495_976,
        gflops: 0.414,
        weights: &[
            imagenet("IMAGENET1K_V1", "https://download.pytorch.org/models/regnet_x_400mf-adf1edd5.pth", "adf1edd5", 21.258, 72.834, 90.95, 256, false),
            imagenet("IMAGENET1K_V2", "https://download.pytorch.org/models/regnet_x_400mf-62229a5f.pth", "62229a5f", 21.257, 74.864, 92.322, 232, true),
        ],
    }
    regnet_x_800mf: RegNet = RegNetConfig::regnet_x_800mf(), {
        params: 7_259_656,
        gflops: 0.8,
        weights: &[
            imagenet("IMAGENET1K_V1", "https://download.pytorch.org/models/regnet_x_800mf-ad17e45c.pth", "ad17e45c", 27.945, 75.212, 92.348, 256, false),
            imagenet("IMAGENET1K_V2", "https://download.pytorch.org/models/regnet_x_800mf-94a99ebd.pth", "94a99ebd", 27.945, 77.522, 93.826, 232, true),
        ],
    }
    regnet_x_1_6gf: RegNet = RegNetConfig::regnet_x_1_6gf(), {
        params: 9_190_136,
        gflops: 1.603,
        weights: &[
            imagenet("IMAGENET1K_V1", "https://download.pytorch.org/models/regnet_x_1_6gf-e3633e7f.pth", "e3633e7f", 35.339, 77.04, 93.44, 256, false),
            imagenet("IMAGENET1K_V2", "https://download.pytorch.org/models/regnet_x_1_6gf-a12f2b72.pth", "a12f2b72", 35.339, 79.668, 94.922, 232, true),
        ],
    }
    regnet_x_3_2gf: RegNet = RegNetConfig::regnet_x_3_2gf(), {
        params: 15_296_552,
        gflops: 3.177,
        weights: &[
            imagenet("IMAGENET1K_V1", "https://download.pytorch.org/models/regnet_x_3_2gf-f342aeae.pth", "f342aeae", 58.756, 78.364, 93.992, 256, false),
            imagenet("IMAGENET1K_V2", "https://download.pytorch.org/models/regnet_x_3_2gf-7071aa85.pth", "7071aa85", 58.756, 81.196, 95.43, 232, true),
        ],
    }
    regnet_x_8gf: RegNet = RegNetConfig::regnet_x_8gf(), {
        params: 39_572_648,
        gflops: 7.995,
        weights: &[
            imagenet("IMAGENET1K_V1", "https://download.pytorch.org/models/regnet_x_8gf-03ceed89.pth", "03ceed89", 151.456, 79.344, 94.686, 256, false),
            imagenet("IMAGENET1K_V2", "https://download.pytorch.org/models/regnet_x_8gf-2b70d774.pth", "2b70d774", 151.456, 81.682, 95.678, 232, true),
        ],
    }
    regnet_x_16gf: RegNet = RegNetConfig::regnet_x_16gf(), {
        params: 54_278_536,
        gflops: 15.941,
        weights: &[
            imagenet("IMAGENET1K_V1", "https://download.pytorch.org/models/regnet_x_16gf-2007eb11.pth", "2007eb11", 207.627, 80.058, 94.944, 256, false),
            imagenet("IMAGENET1K_V2", "https://download.pytorch.org/models/regnet_x_16gf-ba3796d7.pth", "ba3796d7", 207.627, 82.716, 96.196, 232, true),
        ],
    }
    regnet_x_32gf: RegNet = RegNetConfig::regnet_x_32gf(), {
        params: 107_811_560,
        gflops: 31.736,
        weights: &[
            imagenet("IMAGENET1K_V1", "https://download.pytorch.org/models/regnet_x_32gf-9d47f8d0.pth", "9d47f8d0", 412.039, 80.622, 95.248, 256, false),
            imagenet("IMAGENET1K_V2", "https://download.pytorch.org/models/regnet_x_32gf-6eb8fdc6.pth", "6eb8fdc6", 412.039, 83.014, 96.288, 232, true),
        ],
    }
}
