//! The ResNet family's registry entries. Metadata and weight descriptors are torchvision 0.29's
//! (`torchvision.models.get_model_weights(name)`); `cargo xtask parity` checks them against the
//! installed torchvision on every run. ResNet-18 to 152 also have `paddle.vision.models`' ImageNet
//! files (`PADDLE_IMAGENET`: URL and MD5 as in paddle 3.3's `paddle/vision/models/resnet.py`),
//! which load through zoo-import's Paddle reader.

use super::{RESNET_INPUT, ResNet, ResNetConfig};
use crate::family::Family;
use crate::registry::{imagenet, paddle_imagenet};

#[rustfmt::skip]
builders! {
    family: Family::RESNET, input: RESNET_INPUT, config: ResNetConfig;
    resnet18: ResNet = ResNetConfig::resnet18(), {
        params: 11_689_512,
        gflops: 1.814,
        weights: &[
            imagenet("IMAGENET1K_V1", "https://download.pytorch.org/models/resnet18-f37072fd.pth", "f37072fd", 44.661, 69.758, 89.078, 256, true),
            paddle_imagenet("https://paddle-hapi.bj.bcebos.com/models/resnet18.pdparams", "cf548f46534aa3560945be4b95cd11c4", 44.637),
        ],
    }
    resnet34: ResNet = ResNetConfig::resnet34(), {
        params: 21_797_672,
        gflops: 3.664,
        weights: &[
            imagenet("IMAGENET1K_V1", "https://download.pytorch.org/models/resnet34-b627a593.pth", "b627a593", 83.275, 73.314, 91.42, 256, true),
            paddle_imagenet("https://paddle-hapi.bj.bcebos.com/models/resnet34.pdparams", "8d2275cf8706028345f78ac0e1d31969", 83.231),
        ],
    }
    resnet50: ResNet = ResNetConfig::resnet50(), {
        params: 25_557_032,
        gflops: 4.089,
        weights: &[
            imagenet("IMAGENET1K_V1", "https://download.pytorch.org/models/resnet50-0676ba61.pth", "0676ba61", 97.781, 76.13, 92.862, 256, false),
            imagenet("IMAGENET1K_V2", "https://download.pytorch.org/models/resnet50-11ad3fa6.pth", "11ad3fa6", 97.79, 80.858, 95.434, 232, true),
            paddle_imagenet("https://paddle-hapi.bj.bcebos.com/models/resnet50.pdparams", "ca6f485ee1ab0492d38f323885b0ad80", 97.717),
        ],
    }
    resnet101: ResNet = ResNetConfig::resnet101(), {
        params: 44_549_160,
        gflops: 7.801,
        weights: &[
            imagenet("IMAGENET1K_V1", "https://download.pytorch.org/models/resnet101-63fe2227.pth", "63fe2227", 170.511, 77.374, 93.546, 256, false),
            imagenet("IMAGENET1K_V2", "https://download.pytorch.org/models/resnet101-cd907fc2.pth", "cd907fc2", 170.53, 81.886, 95.78, 232, true),
            paddle_imagenet("https://paddle-hapi.bj.bcebos.com/models/resnet101.pdparams", "02f35f034ca3858e1e54d4036443c92d", 170.387),
        ],
    }
    resnet152: ResNet = ResNetConfig::resnet152(), {
        params: 60_192_808,
        gflops: 11.514,
        weights: &[
            imagenet("IMAGENET1K_V1", "https://download.pytorch.org/models/resnet152-394f9c45.pth", "394f9c45", 230.434, 78.312, 94.046, 256, false),
            imagenet("IMAGENET1K_V2", "https://download.pytorch.org/models/resnet152-f82ba261.pth", "f82ba261", 230.474, 82.284, 96.002, 232, true),
            paddle_imagenet("https://paddle-hapi.bj.bcebos.com/models/resnet152.pdparams", "7ad16a2f1e7333859ff986138630fd7a", 230.26),
        ],
    }
    resnext50_32x4d: ResNet = ResNetConfig::resnext50_32x4d(), {
        params: 25_028_904,
        gflops: 4.23,
        weights: &[
            imagenet("IMAGENET1K_V1", "https://download.pytorch.org/models/resnext50_32x4d-7cdf4587.pth", "7cdf4587", 95.789, 77.618, 93.698, 256, false),
            imagenet("IMAGENET1K_V2", "https://download.pytorch.org/models/resnext50_32x4d-1a0047aa.pth", "1a0047aa", 95.833, 81.198, 95.34, 232, true),
        ],
    }
    resnext101_32x8d: ResNet = ResNetConfig::resnext101_32x8d(), {
        params: 88_791_336,
        gflops: 16.414,
        weights: &[
            imagenet("IMAGENET1K_V1", "https://download.pytorch.org/models/resnext101_32x8d-8ba56ff5.pth", "8ba56ff5", 339.586, 79.312, 94.526, 256, false),
            imagenet("IMAGENET1K_V2", "https://download.pytorch.org/models/resnext101_32x8d-110c445d.pth", "110c445d", 339.673, 82.834, 96.228, 232, true),
        ],
    }
    resnext101_64x4d: ResNet = ResNetConfig::resnext101_64x4d(), {
        params: 83_455_272,
        gflops: 15.46,
        weights: &[
            imagenet("IMAGENET1K_V1", "https://download.pytorch.org/models/resnext101_64x4d-173b62eb.pth", "173b62eb", 319.318, 83.246, 96.454, 232, true),
        ],
    }
    wide_resnet50_2: ResNet = ResNetConfig::wide_resnet50_2(), {
        params: 68_883_240,
        gflops: 11.398,
        weights: &[
            imagenet("IMAGENET1K_V1", "https://download.pytorch.org/models/wide_resnet50_2-95faca4d.pth", "95faca4d", 131.82, 78.468, 94.086, 256, false),
            imagenet("IMAGENET1K_V2", "https://download.pytorch.org/models/wide_resnet50_2-9ba9bcbe.pth", "9ba9bcbe", 263.124, 81.602, 95.758, 232, true),
        ],
    }
    wide_resnet101_2: ResNet = ResNetConfig::wide_resnet101_2(), {
        params: 126_886_696,
        gflops: 22.753,
        weights: &[
            imagenet("IMAGENET1K_V1", "https://download.pytorch.org/models/wide_resnet101_2-32ee1156.pth", "32ee1156", 242.896, 78.848, 94.284, 256, false),
            imagenet("IMAGENET1K_V2", "https://download.pytorch.org/models/wide_resnet101_2-d733dc28.pth", "d733dc28", 484.747, 82.51, 96.02, 232, true),
        ],
    }
}
