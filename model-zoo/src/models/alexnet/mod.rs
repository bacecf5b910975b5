//! AlexNet, faithful to torchvision's `alexnet.py` (the single-GPU variant of "One weird trick
//! for parallelizing convolutional neural networks", Krizhevsky 2014, which torchvision follows
//! rather than the 2012 paper), and the zoo's half-width and 32x32 variants
//! ([`AlexNetConfig::half`], [`AlexNetConfig::cifar`]).
//!
//! `features` and `classifier` are `Vec`s with one entry per torchvision `nn.Sequential` slot,
//! so parameters sit at torchvision's keys (`features.0`, `features.3`, ..., `classifier.1`,
//! `classifier.4`, `classifier.6`) by construction.

mod weights;
pub use weights::*;

use crate::layers::BatchNormConfig;
use burn::config::Config;
use burn::module::Module;
use burn::nn::conv::Conv2dConfig;
use burn::nn::pool::{AdaptiveAvgPool2d, AdaptiveAvgPool2dConfig, MaxPool2dConfig};
use burn::nn::{DropoutConfig, LinearConfig, PaddingConfig2d, Relu};
use burn::tensor::{Device, Tensor};

use crate::architecture::{Architecture, ImportHooks};
use crate::error::{ConfigError, InputSpec};
use crate::family::Family;
use crate::features::Features;

use crate::layers::{
    ImageLayer, VectorLayer, linear_slot,
    run_vector_layers,
};

impl Family {
    /// AlexNet, torchvision's and the zoo's half-width and CIFAR variants ([`crate::alexnet`]).
    pub const ALEXNET: Family = Family::new("alexnet");
}

/// The shape of AlexNet's feature extractor.
#[derive(Config, Debug, Copy, PartialEq, Eq)]
pub enum AlexNetLayout {
    /// torchvision's, for ImageNet-sized input: 11x11 stride-4, 5x5, then three 3x3
    /// convolutions, each followed by ReLU; 3x3 stride-2 max-pools after the first, second and
    /// fifth; adaptive average pooling to 6x6.
    ImageNet,
    /// For 32x32 input (CIFAR): five 3x3 convolutions (padding 1), each stage being convolution,
    /// then (after the first, second and fifth) a 2x2 max-pool, then ReLU and BatchNorm;
    /// adaptive average pooling to 4x4 (the identity at 32x32).
    Cifar,
}

/// Configuration of an [`AlexNet`].
#[derive(Config, Debug)]
pub struct AlexNetConfig {
    /// Output classes.
    #[config(default = 1000)]
    pub num_classes: usize,
    /// Dropout probability before each hidden linear layer.
    #[config(default = 0.5)]
    pub dropout: f64,
    /// Output channels of the five convolutions.
    #[config(default = "[64, 192, 384, 256, 256]")]
    pub channels: [usize; 5],
    /// Width of the two hidden linear layers.
    #[config(default = 4096)]
    pub hidden: usize,
    /// The feature extractor's shape.
    #[config(default = "AlexNetLayout::ImageNet")]
    pub layout: AlexNetLayout,
}

/// What AlexNet accepts: 63x63 is the smallest input whose last max-pool still has a 3x3 window.
pub const ALEXNET_INPUT: InputSpec = InputSpec {
    channels: 3,
    min_size: [63, 63],
    exact: false,
};

/// What the CIFAR layout accepts: its three 2x2 max-pools need 8x8.
pub const ALEXNET_CIFAR_INPUT: InputSpec = InputSpec {
    channels: 3,
    min_size: [8, 8],
    exact: false,
};

/// AlexNet: five convolutions, adaptive average pooling, and a three-layer classifier with
/// dropout. [`AlexNetConfig`] builds torchvision's (`alexnet`), the half-width one of the
/// original two-GPU paper (`alexnet_half`) and a 32x32 one (`alexnet_cifar`).
#[derive(Module, Debug)]
pub struct AlexNet {
    /// Convolutions, ReLUs, max-pools (and BatchNorms in the CIFAR layout), at the indices of
    /// the PyTorch `nn.Sequential`.
    pub features: Vec<ImageLayer>,
    /// `AdaptiveAvgPool2d((6, 6))` (`(4, 4)` in the CIFAR layout).
    pub avgpool: AdaptiveAvgPool2d,
    /// Dropout, linear and ReLU slots, at torchvision's indices.
    pub classifier: Vec<VectorLayer>,
    min_size: usize,
    num_features: usize,
}

impl AlexNetConfig {
    /// torchvision's `alexnet`.
    pub fn alexnet() -> Self {
        Self::new()
    }

    /// Half-width AlexNet for 224x224 input (`alexnet_half`): one GPU's half of Krizhevsky et
    /// al.'s 2012 network, as course material writes it: channels 48, 128, 192, 192, 128 and a
    /// classifier 2048 wide, otherwise torchvision's layout.
    pub fn half() -> Self {
        Self::new()
            .with_channels([48, 128, 192, 192, 128])
            .with_hidden(2048)
    }

    /// AlexNet for 32x32 input (`alexnet_cifar`): the half-width channels (48, 128, 192, 192,
    /// 128) as 3x3 convolutions in [`AlexNetLayout::Cifar`], and a 2048 → 2048 → 2048 →
    /// classes classifier with dropout 0.5; 10 classes by default.
    pub fn cifar() -> Self {
        Self::half()
            .with_layout(AlexNetLayout::Cifar)
            .with_num_classes(10)
    }

    /// Builds the model, initialised as PyTorch's defaults (torchvision's AlexNet does no
    /// initialisation of its own).
    pub fn init(&self, device: &Device) -> Result<AlexNet, ConfigError> {
        let zero = |field| ConfigError::Zero {
            model: "alexnet".into(),
            field,
        };
        if self.num_classes == 0 {
            return Err(zero("num_classes"));
        }
        ConfigError::probability("alexnet", "dropout", self.dropout)?;
        if self.hidden == 0 {
            return Err(zero("hidden"));
        }
        if self.channels.contains(&0) {
            return Err(zero("channels"));
        }
        let conv = |c_in, c_out, k: usize, stride, pad| {
            ImageLayer::Conv(
                Conv2dConfig::new([c_in, c_out], [k, k])
                    .with_stride([stride, stride])
                    .with_padding(PaddingConfig2d::Explicit(pad, pad, pad, pad))
                    .init(device),
            )
        };
        let [c1, c2, c3, c4, c5] = self.channels;
        let (features, pooled) = match self.layout {
            AlexNetLayout::ImageNet => {
                let pool = || {
                    ImageLayer::MaxPool(MaxPool2dConfig::new([3, 3]).with_strides([2, 2]).init())
                };
                let features = vec![
                    conv(3, c1, 11, 4, 2),
                    ImageLayer::relu(),
                    pool(),
                    conv(c1, c2, 5, 1, 2),
                    ImageLayer::relu(),
                    pool(),
                    conv(c2, c3, 3, 1, 1),
                    ImageLayer::relu(),
                    conv(c3, c4, 3, 1, 1),
                    ImageLayer::relu(),
                    conv(c4, c5, 3, 1, 1),
                    ImageLayer::relu(),
                    pool(),
                ];
                (features, 6)
            }
            AlexNetLayout::Cifar => {
                let mut features = Vec::new();
                let mut c_in = 3;
                for (stage, c_out) in self.channels.into_iter().enumerate() {
                    features.push(conv(c_in, c_out, 3, 1, 1));
                    if [0, 1, 4].contains(&stage) {
                        features.push(ImageLayer::MaxPool(
                            MaxPool2dConfig::new([2, 2]).with_strides([2, 2]).init(),
                        ));
                    }
                    features.push(ImageLayer::relu());
                    features.push(ImageLayer::BatchNorm(
                        BatchNormConfig::new(c_out).init(device),
                    ));
                    c_in = c_out;
                }
                (features, 4)
            }
        };
        let num_features = c5 * pooled * pooled;
        let dropout = || VectorLayer::Dropout(DropoutConfig::new(self.dropout).init());
        // PyTorch's `nn.Linear` default initialisation (burn's default draws exactly that).
        let linear = |d_in, d_out| linear_slot(LinearConfig::new(d_in, d_out), false, device);
        let classifier = vec![
            dropout(),
            linear(num_features, self.hidden),
            VectorLayer::Relu(Relu),
            dropout(),
            linear(self.hidden, self.hidden),
            VectorLayer::Relu(Relu),
            linear(self.hidden, self.num_classes),
        ];
        Ok(AlexNet {
            features,
            avgpool: AdaptiveAvgPool2dConfig::new([pooled, pooled]).init(),
            classifier,
            min_size: match self.layout {
                AlexNetLayout::ImageNet => ALEXNET_INPUT.min_size[0],
                AlexNetLayout::Cifar => ALEXNET_CIFAR_INPUT.min_size[0],
            },
            num_features,
        })
    }
}

impl Architecture for AlexNet {
    crate::layers::classifier_head!(classifier);
    crate::layers::image_features!(stem: "features.0");

    fn family(&self) -> Family {
        Family::ALEXNET
    }

    /// What this model accepts: 3 channels, at least 63x63 (8x8 in the CIFAR layout).
    fn input_spec(&self) -> InputSpec {
        InputSpec {
            channels: self.in_chans(),
            min_size: [self.min_size, self.min_size],
            exact: false,
        }
    }

    /// `avgpool` (6x6) flattened, then `classifier`.
    fn forward_head(&self, features: Features, pre_logits: bool) -> Tensor<2> {
        let x = features.expect_map("alexnet");
        let x = crate::layers::adaptive_avg_pool2d(&self.avgpool, x).flatten(1, 3);
        if pre_logits {
            return x;
        }
        run_vector_layers(&self.classifier, x)
    }

    /// Width of the pooled features (9216 for torchvision's AlexNet, 4608 for the half-width
    /// one, 2048 for the CIFAR one).
    fn num_features(&self) -> usize {
        self.num_features
    }

}

impl ImportHooks for AlexNet {
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

    use crate::device::test_device as device;

    #[test]
    fn variants_match_their_pytorch_modules() {
        // xtask/python/zoo_models.py's AlexNetHalf (1000 classes) and AlexNetCifar (10).
        let device = device();
        let half = AlexNetConfig::half().init(&device).unwrap();
        assert_eq!(crate::num_parameters(&half), 16_630_440);
        assert_eq!(half.num_features(), 4608);
        let cifar = AlexNetConfig::cifar().init(&device).unwrap();
        assert_eq!(crate::num_parameters(&cifar), 9_245_994);
        assert_eq!(cifar.num_features(), 2048);
        for [h, w] in [[8, 8], [32, 32], [48, 40]] {
            let logits = cifar.forward(Tensor::zeros([2, 3, h, w], &device));
            assert_eq!(logits.dims(), [2, 10], "{h}x{w}");
        }
        let err = cifar
            .try_forward(Tensor::zeros([1, 3, 7, 32], &device))
            .unwrap_err();
        assert!(err.to_string().contains("at least 8x8"), "{err}");
        let err = AlexNetConfig::half()
            .with_hidden(0)
            .init(&device)
            .unwrap_err();
        assert!(err.to_string().contains("hidden"), "{err}");
    }

    #[test]
    fn any_size_from_63_and_a_clear_error_below() {
        let device = device();
        let model = AlexNetConfig::new()
            .with_num_classes(7)
            .init(&device)
            .unwrap();
        for [h, w] in [[63, 63], [64, 100], [224, 224]] {
            let logits = model.forward(Tensor::zeros([1, 3, h, w], &device));
            assert_eq!(logits.dims(), [1, 7], "{h}x{w}");
        }
        let err = model
            .try_forward(Tensor::zeros([1, 3, 62, 80], &device))
            .unwrap_err();
        assert!(err.to_string().contains("at least 63x63"), "{err}");
        let model = model.reset_classifier(3, &device).unwrap();
        assert_eq!(model.num_classes(), 3);
        assert_eq!(
            model
                .forward_pooled(Tensor::zeros([2, 3, 63, 63], &device))
                .dims(),
            [2, 9216]
        );
    }
}

#[cfg(all(test, feature = "flex"))]
mod dev_bench {
    use super::*;
    use burn::tensor::Distribution;

    /// Where AlexNet's batch-1 forward spends its time on Flex, in the model (a development aid:
    /// `cargo test --release -p model-zoo --lib dev_bench_alexnet -- --ignored --nocapture`).
    #[test]
    #[ignore]
    fn dev_bench_alexnet() {
        let device = Device::flex();
        let net = AlexNetConfig::alexnet().init(&device).expect("valid");
        let x = Tensor::<4>::random([1, 3, 224, 224], Distribution::Default, &device);
        let median = |mut t: Vec<f64>| {
            t.sort_by(f64::total_cmp);
            t[t.len() / 2] * 1e3
        };
        crate::on_cpu_workers(&device, || {
            let time = |f: &dyn Fn()| {
                for _ in 0..10 {
                    f();
                }
                median(
                    (0..40)
                        .map(|_| {
                            let start = std::time::Instant::now();
                            f();
                            start.elapsed().as_secs_f64()
                        })
                        .collect(),
                )
            };
            let features = net.forward_pooled(x.clone());
            let whole = time(&|| {
                let _ = net.forward(x.clone()).into_data();
            });
            let feat = time(&|| {
                let _ = net.forward_pooled(x.clone()).into_data();
            });
            let head = time(&|| {
                let _ = run_vector_layers(&net.classifier, features.clone()).into_data();
            });
            println!("whole {whole:.2} ms, features {feat:.2} ms, classifier {head:.2} ms");
            let mut v = features.clone();
            for (i, layer) in net.classifier.iter().enumerate() {
                let input = v.clone();
                let t = time(&|| {
                    let _ = layer.forward(input.clone()).into_data();
                });
                println!("classifier.{i}: {t:.3} ms");
                v = layer.forward(v);
            }
            let mut v = x.clone();
            for (i, layer) in net.features.iter().enumerate() {
                let input = v.clone();
                let t = time(&|| {
                    let _ = layer.forward(input.clone()).into_data();
                });
                println!("features.{i}: {t:.3} ms");
                v = layer.forward(v);
            }
        });
    }
}
