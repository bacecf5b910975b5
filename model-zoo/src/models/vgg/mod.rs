//! VGG 11/13/16/19, with and without BatchNorm, faithful to torchvision's `vgg.py`.
//!
//! Simonyan & Zisserman, *Very Deep Convolutional Networks for Large-Scale Image Recognition*,
//! ICLR 2015 (configurations A, B, D, E).
//!
//! `features` holds one entry per torchvision slot (convolution, BatchNorm for `_bn`, ReLU,
//! max-pool), so `features.N` is torchvision's index by construction, BN variants included.

mod weights;
pub use weights::*;

use crate::layers::BatchNormConfig;
use burn::config::Config;
use burn::module::Module;
use burn::nn::pool::{AdaptiveAvgPool2d, AdaptiveAvgPool2dConfig, MaxPool2dConfig};
use burn::nn::{DropoutConfig, Initializer, LinearConfig, Relu};
use burn::tensor::{Device, Tensor};

use crate::architecture::{Architecture, ImportHooks};
use crate::error::{ConfigError, InputSpec};
use crate::family::Family;
use crate::features::Features;

use crate::layers::{
    ImageLayer, VectorLayer, conv_config, conv_kaiming_fan_out, linear_slot, run_vector_layers, zero_bias,
};

impl Family {
    /// VGG, with and without BatchNorm ([`crate::vgg`]).
    pub const VGG: Family = Family::new("vgg");
}

/// One entry of a VGG configuration: a 3x3 convolution with this many output channels, or a
/// 2x2 max-pool.
#[derive(Config, Debug, Copy, PartialEq, Eq)]
pub enum VggLayer {
    /// 3x3 convolution (padding 1) to this many channels, then (BN and) ReLU.
    Conv(usize),
    /// 2x2 max-pool, stride 2.
    MaxPool,
}

/// Configuration of a [`Vgg`].
#[derive(Config, Debug)]
pub struct VggConfig {
    /// The feature extractor, torchvision's `cfgs["A" | "B" | "D" | "E"]`.
    pub layers: Vec<VggLayer>,
    /// BatchNorm after each convolution (the `_bn` models).
    #[config(default = false)]
    pub batch_norm: bool,
    /// Output classes.
    #[config(default = 1000)]
    pub num_classes: usize,
    /// Dropout probability in the classifier.
    #[config(default = 0.5)]
    pub dropout: f64,
    /// Side of the adaptive average pooling before the classifier (7 in torchvision, 1 for
    /// 32x32 input, where the features end at 1x1).
    #[config(default = 7)]
    pub pool_size: usize,
    /// Width of the two hidden linear layers.
    #[config(default = 4096)]
    pub hidden: usize,
}

fn cfg(spec: &[usize]) -> Vec<VggLayer> {
    // 0 marks a max-pool ("M" in torchvision).
    spec.iter()
        .map(|&c| {
            if c == 0 {
                VggLayer::MaxPool
            } else {
                VggLayer::Conv(c)
            }
        })
        .collect()
}

const A: [usize; 13] = [64, 0, 128, 0, 256, 256, 0, 512, 512, 0, 512, 512, 0];
const B: [usize; 15] = [
    64, 64, 0, 128, 128, 0, 256, 256, 0, 512, 512, 0, 512, 512, 0,
];
const D: [usize; 18] = [
    64, 64, 0, 128, 128, 0, 256, 256, 256, 0, 512, 512, 512, 0, 512, 512, 512, 0,
];
const E: [usize; 21] = [
    64, 64, 0, 128, 128, 0, 256, 256, 256, 256, 0, 512, 512, 512, 512, 0, 512, 512, 512, 512, 0,
];

impl VggConfig {
    /// VGG-11 (configuration A).
    pub fn vgg11() -> Self {
        Self::new(cfg(&A))
    }
    /// VGG-13 (configuration B).
    pub fn vgg13() -> Self {
        Self::new(cfg(&B))
    }
    /// VGG-16 (configuration D).
    pub fn vgg16() -> Self {
        Self::new(cfg(&D))
    }
    /// VGG-19 (configuration E).
    pub fn vgg19() -> Self {
        Self::new(cfg(&E))
    }
    /// VGG-11 with BatchNorm.
    pub fn vgg11_bn() -> Self {
        Self::vgg11().with_batch_norm(true)
    }
    /// VGG-13 with BatchNorm.
    pub fn vgg13_bn() -> Self {
        Self::vgg13().with_batch_norm(true)
    }
    /// VGG-16 with BatchNorm.
    pub fn vgg16_bn() -> Self {
        Self::vgg16().with_batch_norm(true)
    }
    /// VGG-19 with BatchNorm.
    pub fn vgg19_bn() -> Self {
        Self::vgg19().with_batch_norm(true)
    }
    /// VGG-16 for 32x32 input (`vgg16_cifar`): the 13 convolutions of configuration D, with
    /// BatchNorm after each (as training from scratch on CIFAR needs), pooled to 1x1, and a
    /// 512 → 4096 → 4096 → classes classifier with dropout; 10 classes by default.
    pub fn vgg16_cifar() -> Self {
        Self::vgg16_bn().with_pool_size(1).with_num_classes(10)
    }

    /// Builds the model, initialised as torchvision does: Kaiming-normal (fan-out) convolutions
    /// with zero bias, BatchNorm weight 1 and bias 0, linear weights `N(0, 0.01)` with zero bias.
    pub fn init(&self, device: &Device) -> Result<Vgg, ConfigError> {
        let zero = |field| ConfigError::Zero {
            model: "vgg".into(),
            field,
        };
        if self.num_classes == 0 {
            return Err(zero("num_classes"));
        }
        if self.pool_size == 0 {
            return Err(zero("pool_size"));
        }
        if self.hidden == 0 {
            return Err(zero("hidden"));
        }
        let mut features = Vec::new();
        let mut channels = 3;
        for layer in &self.layers {
            match *layer {
                VggLayer::MaxPool => features.push(ImageLayer::MaxPool(
                    MaxPool2dConfig::new([2, 2]).with_strides([2, 2]).init(),
                )),
                VggLayer::Conv(0) => return Err(zero("layers (a convolution of 0 channels)")),
                VggLayer::Conv(out) => {
                    let mut conv = conv_kaiming_fan_out(
                        conv_config(channels, out, 3, 1, 1).with_bias(true),
                        device,
                    );
                    conv.bias = zero_bias(conv.bias, device);
                    features.push(ImageLayer::Conv(conv));
                    if self.batch_norm {
                        features.push(ImageLayer::BatchNorm(
                            BatchNormConfig::new(out).init(device),
                        ));
                    }
                    features.push(ImageLayer::relu());
                    channels = out;
                }
            }
        }
        let linear = |d_in, d_out| {
            let config = LinearConfig::new(d_in, d_out).with_initializer(Initializer::Normal {
                mean: 0.0,
                std: 0.01,
            });
            linear_slot(config, true, device)
        };
        let dropout = || VectorLayer::Dropout(DropoutConfig::new(self.dropout).init());
        let num_features = channels * self.pool_size * self.pool_size;
        let classifier = vec![
            linear(num_features, self.hidden),
            VectorLayer::Relu(Relu),
            dropout(),
            linear(self.hidden, self.hidden),
            VectorLayer::Relu(Relu),
            dropout(),
            linear(self.hidden, self.num_classes),
        ];
        let pools = self
            .layers
            .iter()
            .filter(|l| **l == VggLayer::MaxPool)
            .count() as u32;
        Ok(Vgg {
            features,
            avgpool: AdaptiveAvgPool2dConfig::new([self.pool_size, self.pool_size]).init(),
            classifier,
            min_size: 2usize.pow(pools),
            num_features,
        })
    }
}

/// torchvision's VGG: 3x3 convolutions and max-pools, adaptive average pooling to 7x7, and a
/// 25088 → 4096 → 4096 → classes classifier with dropout.
#[derive(Module, Debug)]
pub struct Vgg {
    /// Convolutions, BatchNorms, ReLUs and max-pools, at torchvision's indices.
    pub features: Vec<ImageLayer>,
    /// `AdaptiveAvgPool2d((7, 7))` (`(1, 1)` for `vgg16_cifar`).
    pub avgpool: AdaptiveAvgPool2d,
    /// Linear, ReLU and dropout slots, at torchvision's indices.
    pub classifier: Vec<VectorLayer>,
    min_size: usize,
    num_features: usize,
}

impl Architecture for Vgg {
    crate::layers::classifier_head!(classifier);
    crate::layers::image_features!(stem: "features.0");

    fn family(&self) -> Family {
        Family::VGG
    }

    /// What this model accepts: 3 channels, at least `2^pools` (32x32 for every standard VGG).
    fn input_spec(&self) -> InputSpec {
        InputSpec {
            channels: self.in_chans(),
            min_size: [self.min_size, self.min_size],
            exact: false,
        }
    }

    /// `avgpool` (7x7) flattened, then `classifier`.
    fn forward_head(&self, features: Features, pre_logits: bool) -> Tensor<2> {
        let x = features.expect_map("vgg");
        let x = crate::layers::adaptive_avg_pool2d(&self.avgpool, x).flatten(1, 3);
        if pre_logits {
            return x;
        }
        run_vector_layers(&self.classifier, x)
    }

    /// Width of the pooled features (25088; 512 for `vgg16_cifar`).
    fn num_features(&self) -> usize {
        self.num_features
    }

}

impl ImportHooks for Vgg {
    fn classifier_prefixes(&self) -> &'static [&'static str] {
        &["classifier.6."]
    }

    /// The whole `classifier` sequence: the pre-logits are the pooled features.
    fn head_prefixes(&self) -> &'static [&'static str] {
        &["classifier."]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::store::{BurnToPyTorchAdapter, ModuleSnapshot};

    use crate::device::test_device as device;


    /// PyTorch-named keys of our model, in visiting order.
    fn torch_keys(model: &Vgg) -> Vec<String> {
        model
            .collect(None, Some(Box::new(BurnToPyTorchAdapter)), true)
            .into_iter()
            .map(|t| t.name)
            .collect()
    }

    /// torchvision's vgg11_bn keys, `num_batches_tracked` left out:
    /// `[k for k in torchvision.models.vgg11_bn().state_dict() if "features" in k][:14]`
    #[test]
    fn bn_keys_are_torchvisions_indices() {
        let model = VggConfig::vgg11_bn().init(&device()).unwrap();
        let keys = torch_keys(&model);
        let expected = [
            "features.0.weight",
            "features.0.bias",
            "features.1.weight",
            "features.1.bias",
            "features.1.running_mean",
            "features.1.running_var",
            "features.4.weight",
            "features.4.bias",
            "features.5.weight",
            "features.5.bias",
            "features.5.running_mean",
            "features.5.running_var",
        ];
        assert_eq!(&keys[..12], expected);
        // The first classifier layer is kept in row blocks; torchvision's keys and shapes are
        // what the model shows.
        let shapes = crate::layers::torch_shapes(&model);
        let classifier: Vec<(&str, &[usize])> = shapes
            .iter()
            .filter(|(k, _)| k.starts_with("classifier."))
            .map(|(k, s)| (k.as_str(), s.as_slice()))
            .collect();
        assert_eq!(
            classifier,
            [
                ("classifier.0.bias", &[4096][..]),
                ("classifier.0.weight", &[4096, 25088][..]),
                ("classifier.3.bias", &[4096][..]),
                ("classifier.3.weight", &[4096, 4096][..]),
                ("classifier.6.bias", &[1000][..]),
                ("classifier.6.weight", &[1000, 4096][..]),
            ]
        );
    }

    #[test]
    fn weights_over_128_mib_are_kept_in_blocks_under_it() {
        let model = VggConfig::vgg11().init(&device()).unwrap();
        let VectorLayer::BlockedLinear(first) = &model.classifier[0] else {
            panic!("classifier.0 is not blocked");
        };
        assert_eq!(first.dims(), [25088, 4096]);
        assert_eq!(first.row_blocks.len(), 4);
        for tensor in burn::store::ModuleSnapshot::collect(&model, None, None, true) {
            assert!(
                tensor.byte_len() <= crate::layers::MAX_TENSOR_BYTES,
                "{} is {} bytes",
                tensor.name,
                tensor.byte_len()
            );
        }
        assert!(matches!(model.classifier[3], VectorLayer::Linear(_)));
        assert_eq!(model.num_classes(), 1000);
    }

    #[test]
    fn cifar_variant_matches_its_pytorch_module() {
        // xtask/python/zoo_models.py's Vgg16Cifar, 10 classes.
        let device = device();
        let model = VggConfig::vgg16_cifar().init(&device).unwrap();
        assert_eq!(crate::num_parameters(&model), 33_646_666);
        assert_eq!(model.num_features(), 512);
        assert_eq!(
            model.forward(Tensor::zeros([2, 3, 32, 32], &device)).dims(),
            [2, 10]
        );
    }

    #[test]
    fn any_size_from_32_and_a_clear_error_below() {
        let device = device();
        let model = VggConfig::vgg11()
            .with_num_classes(5)
            .init(&device)
            .unwrap();
        for [h, w] in [[32, 32], [40, 57]] {
            assert_eq!(
                model.forward(Tensor::zeros([1, 3, h, w], &device)).dims(),
                [1, 5]
            );
        }
        let err = model
            .try_forward(Tensor::zeros([1, 3, 31, 64], &device))
            .unwrap_err();
        assert!(err.to_string().contains("at least 32x32"), "{err}");
    }
}
