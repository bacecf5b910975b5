//! Inception v3, faithful to torchvision's `inception_v3` (`torchvision/models/inception.py`):
//! the same options (`aux_logits`, `transform_input`, `init_weights`, `dropout`), state_dict
//! keys (`Mixed_5b.branch5x5_1.conv.weight`, `AuxLogits.fc.weight`) and initialisation.
//!
//! Szegedy et al., *Rethinking the Inception Architecture for Computer Vision*, CVPR 2016.
//! Every convolution is GoogLeNet's [`BasicConv2d`] (no bias, BatchNorm with `eps = 0.001`,
//! ReLU), several with 1x7, 7x1, 1x3 and 3x1 kernels; designed for 299x299 input (torchvision's
//! weights are evaluated at resize 342, crop 299).
//!
//! As torchvision's builder: with pretrained weights the model keeps the auxiliary classifier
//! (`AuxLogits`, used in training only) and re-normalises its input (`transform_input`, the
//! weights come from TensorFlow); from scratch, `transform_input` is off
//! ([`InceptionV3Config::new`] against [`InceptionV3Config::pretrained`]).

// Field names are torchvision's (`Mixed_5b`, `AuxLogits`) so that keys need no map; Burn's
// derive binds them as variables too, hence the allowance for the whole module.
#![allow(non_snake_case)]

mod weights;
pub use weights::*;

use crate::layers::adaptive_avg_pool2d_with;
use burn::config::Config;
use burn::module::{Module, ParamGroup};
use burn::nn::{Dropout, DropoutConfig, Initializer, Linear};
use burn::tensor::module::avg_pool2d;
use burn::tensor::ops::{AvgPoolOptions, MaxPoolOptions};
use burn::tensor::{Device, Tensor};
use std::collections::HashMap;

use crate::architecture::{Architecture, ImportHooks};
use crate::error::{ConfigError, InputError, InputSpec};
use crate::family::Family;
use crate::features::{FeatureInfo, Features, Taps, no_stop};
use crate::layers::{BasicConv2d, transform_input};
use crate::layers::{ClassifierHead, linear_torch_default, max_pool2d_with, new_classifier};
use crate::tap;
use burn::nn::conv::Conv2d;

impl Family {
    /// Inception v3 ([`crate::inception`]).
    pub const INCEPTION: Family = Family::new("inception");
}

/// Configuration of an [`InceptionV3`]: torchvision's `Inception3(...)` arguments, with its
/// defaults.
#[derive(Config, Debug)]
pub struct InceptionV3Config {
    /// Output classes.
    #[config(default = 1000)]
    pub num_classes: usize,
    /// Build the auxiliary classifier `AuxLogits` (on `Mixed_6e`'s output, training only).
    #[config(default = true)]
    pub aux_logits: bool,
    /// Re-normalise inputs from ImageNet's mean/std to `[-1, 1]`, as the pretrained weights
    /// (ported from TensorFlow) expect.
    #[config(default = false)]
    pub transform_input: bool,
    /// Initialise as torchvision's `init_weights=True` (convolutions and linear layers from
    /// `N(0, 0.1)`, `N(0, 0.01)` for the aux head's 5x5 convolution and `N(0, 0.001)` for its
    /// linear layer); `false` keeps PyTorch's default initialisation, as `init_weights=False`.
    #[config(default = true)]
    pub init_weights: bool,
    /// Dropout before `fc`.
    #[config(default = 0.5)]
    pub dropout: f64,
}

impl InceptionV3Config {
    /// The model torchvision's `inception_v3(weights=...)` builds: `transform_input=True`,
    /// aux head kept (its weights are in the file), `init_weights=False`.
    pub fn pretrained() -> Self {
        Self::new()
            .with_transform_input(true)
            .with_init_weights(false)
    }

    /// Builds the model.
    pub fn init(&self, device: &Device) -> Result<InceptionV3, ConfigError> {
        ConfigError::nonzero("inception_v3", "num_classes", self.num_classes)?;
        ConfigError::probability("inception_v3", "dropout", self.dropout)?;
        let std = self.init_weights.then_some(0.1);
        let c = |c_in, c_out, k, stride, pad| conv(c_in, c_out, [k, k], stride, [pad, pad], std);
        let fc = linear_torch_default(2048, self.num_classes, device);
        Ok(InceptionV3 {
            Conv2d_1a_3x3: c(3, 32, 3, 2, 0).init(device),
            Conv2d_2a_3x3: c(32, 32, 3, 1, 0).init(device),
            Conv2d_2b_3x3: c(32, 64, 3, 1, 1).init(device),
            Conv2d_3b_1x1: c(64, 80, 1, 1, 0).init(device),
            Conv2d_4a_3x3: c(80, 192, 3, 1, 0).init(device),
            Mixed_5b: InceptionA::new(192, 32, std, device),
            Mixed_5c: InceptionA::new(256, 64, std, device),
            Mixed_5d: InceptionA::new(288, 64, std, device),
            Mixed_6a: InceptionB::new(288, std, device),
            Mixed_6b: InceptionC::new(768, 128, std, device),
            Mixed_6c: InceptionC::new(768, 160, std, device),
            Mixed_6d: InceptionC::new(768, 160, std, device),
            Mixed_6e: InceptionC::new(768, 192, std, device),
            AuxLogits: self
                .aux_logits
                .then(|| InceptionAux::new(768, self.num_classes, self.init_weights, device)),
            Mixed_7a: InceptionD::new(768, std, device),
            Mixed_7b: InceptionE::new(1280, std, device),
            Mixed_7c: InceptionE::new(2048, std, device),
            dropout: DropoutConfig::new(self.dropout).init(),
            fc: Some(match std {
                Some(std) => normal_weight(fc, std, device),
                None => fc,
            }),
            transform_input: self.transform_input,
        })
    }
}

/// A [`BasicConv2d`] to build: channels, kernel, stride, padding and the weights' standard
/// deviation (`None`: PyTorch's default initialisation).
struct Conv {
    channels: [usize; 2],
    kernel: [usize; 2],
    stride: usize,
    padding: [usize; 2],
    std: Option<f64>,
}

fn conv(
    c_in: usize,
    c_out: usize,
    kernel: [usize; 2],
    stride: usize,
    padding: [usize; 2],
    std: Option<f64>,
) -> Conv {
    Conv {
        channels: [c_in, c_out],
        kernel,
        stride,
        padding,
        std,
    }
}

impl Conv {
    fn init(&self, device: &Device) -> BasicConv2d {
        let std = match self.std {
            Some(std) => std,
            // PyTorch's default: kaiming_uniform_(a=sqrt(5)), uniform in ±1/sqrt(fan_in), whose
            // standard deviation is 1/sqrt(3 * fan_in); a normal of that deviation stands in.
            None => {
                let fan_in = self.channels[0] * self.kernel[0] * self.kernel[1];
                1.0 / (3.0 * fan_in as f64).sqrt()
            }
        };
        BasicConv2d::rect(
            self.channels,
            self.kernel,
            self.stride,
            self.padding,
            std,
            device,
        )
    }
}

/// `linear` with its weight redrawn from `N(0, std)` (its bias stays PyTorch's default, as
/// torchvision leaves it).
fn normal_weight(linear: Linear, std: f64, device: &Device) -> Linear {
    let [d_in, d_out] = linear.weight.lazy_shape().dims::<2>();
    Linear {
        weight: Initializer::Normal { mean: 0.0, std }.init([d_in, d_out], device),
        ..linear
    }
}

/// 3x3 average pool, stride 1, padding 1, counting the padding (PyTorch's default).
fn avg_pool_3x3(x: Tensor<4>) -> Tensor<4> {
    avg_pool2d(
        x,
        AvgPoolOptions::new([3, 3])
            .with_stride([1, 1])
            .with_padding([1, 1]),
    )
}

/// 3x3 max-pool, stride 2, no padding.
fn max_pool_3x3_s2(x: Tensor<4>) -> Tensor<4> {
    max_pool2d_with(x, MaxPoolOptions::new([3, 3]).with_stride([2, 2]))
}

/// torchvision's `InceptionA` (35x35 grid): 1x1, 1x1 → 5x5, 1x1 → 3x3 → 3x3, pool → 1x1.
#[allow(missing_docs)]
#[derive(Module, Debug)]
pub struct InceptionA {
    pub branch1x1: BasicConv2d,
    pub branch5x5_1: BasicConv2d,
    pub branch5x5_2: BasicConv2d,
    pub branch3x3dbl_1: BasicConv2d,
    pub branch3x3dbl_2: BasicConv2d,
    pub branch3x3dbl_3: BasicConv2d,
    pub branch_pool: BasicConv2d,
}

impl InceptionA {
    fn new(c_in: usize, pool_features: usize, std: Option<f64>, device: &Device) -> Self {
        let c = |i, o, k, p| conv(i, o, [k, k], 1, [p, p], std).init(device);
        Self {
            branch1x1: c(c_in, 64, 1, 0),
            branch5x5_1: c(c_in, 48, 1, 0),
            branch5x5_2: c(48, 64, 5, 2),
            branch3x3dbl_1: c(c_in, 64, 1, 0),
            branch3x3dbl_2: c(64, 96, 3, 1),
            branch3x3dbl_3: c(96, 96, 3, 1),
            branch_pool: c(c_in, pool_features, 1, 0),
        }
    }

    /// # Shapes
    /// - input: `[batch, c_in, h, w]`
    /// - output: `[batch, 224 + pool_features, h, w]`
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let b1 = self.branch1x1.forward(x.clone());
        let b5 = self
            .branch5x5_2
            .forward(self.branch5x5_1.forward(x.clone()));
        let b3 = self.branch3x3dbl_1.forward(x.clone());
        let b3 = self.branch3x3dbl_3.forward(self.branch3x3dbl_2.forward(b3));
        let bp = self.branch_pool.forward(avg_pool_3x3(x));
        Tensor::cat(vec![b1, b5, b3, bp], 1)
    }
}

/// torchvision's `InceptionB` (35 → 17 grid reduction).
#[allow(missing_docs)]
#[derive(Module, Debug)]
pub struct InceptionB {
    pub branch3x3: BasicConv2d,
    pub branch3x3dbl_1: BasicConv2d,
    pub branch3x3dbl_2: BasicConv2d,
    pub branch3x3dbl_3: BasicConv2d,
}

impl InceptionB {
    fn new(c_in: usize, std: Option<f64>, device: &Device) -> Self {
        Self {
            branch3x3: conv(c_in, 384, [3, 3], 2, [0, 0], std).init(device),
            branch3x3dbl_1: conv(c_in, 64, [1, 1], 1, [0, 0], std).init(device),
            branch3x3dbl_2: conv(64, 96, [3, 3], 1, [1, 1], std).init(device),
            branch3x3dbl_3: conv(96, 96, [3, 3], 2, [0, 0], std).init(device),
        }
    }

    /// # Shapes
    /// - input: `[batch, c_in, h, w]`
    /// - output: `[batch, 480 + c_in, (h - 3) / 2 + 1, (w - 3) / 2 + 1]`
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let b3 = self.branch3x3.forward(x.clone());
        let bd = self.branch3x3dbl_1.forward(x.clone());
        let bd = self.branch3x3dbl_3.forward(self.branch3x3dbl_2.forward(bd));
        Tensor::cat(vec![b3, bd, max_pool_3x3_s2(x)], 1)
    }
}

/// torchvision's `InceptionC` (17x17 grid, factorised 7x7 convolutions).
#[allow(missing_docs)]
#[derive(Module, Debug)]
pub struct InceptionC {
    pub branch1x1: BasicConv2d,
    pub branch7x7_1: BasicConv2d,
    pub branch7x7_2: BasicConv2d,
    pub branch7x7_3: BasicConv2d,
    pub branch7x7dbl_1: BasicConv2d,
    pub branch7x7dbl_2: BasicConv2d,
    pub branch7x7dbl_3: BasicConv2d,
    pub branch7x7dbl_4: BasicConv2d,
    pub branch7x7dbl_5: BasicConv2d,
    pub branch_pool: BasicConv2d,
}

impl InceptionC {
    fn new(c_in: usize, c7: usize, std: Option<f64>, device: &Device) -> Self {
        let one = |i, o| conv(i, o, [1, 1], 1, [0, 0], std).init(device);
        let row = |i, o| conv(i, o, [1, 7], 1, [0, 3], std).init(device);
        let col = |i, o| conv(i, o, [7, 1], 1, [3, 0], std).init(device);
        Self {
            branch1x1: one(c_in, 192),
            branch7x7_1: one(c_in, c7),
            branch7x7_2: row(c7, c7),
            branch7x7_3: col(c7, 192),
            branch7x7dbl_1: one(c_in, c7),
            branch7x7dbl_2: col(c7, c7),
            branch7x7dbl_3: row(c7, c7),
            branch7x7dbl_4: col(c7, c7),
            branch7x7dbl_5: row(c7, 192),
            branch_pool: one(c_in, 192),
        }
    }

    /// # Shapes
    /// - input: `[batch, c_in, h, w]`
    /// - output: `[batch, 768, h, w]`
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let b1 = self.branch1x1.forward(x.clone());
        let mut b7 = x.clone();
        for layer in [&self.branch7x7_1, &self.branch7x7_2, &self.branch7x7_3] {
            b7 = layer.forward(b7);
        }
        let mut bd = x.clone();
        for layer in [
            &self.branch7x7dbl_1,
            &self.branch7x7dbl_2,
            &self.branch7x7dbl_3,
            &self.branch7x7dbl_4,
            &self.branch7x7dbl_5,
        ] {
            bd = layer.forward(bd);
        }
        let bp = self.branch_pool.forward(avg_pool_3x3(x));
        Tensor::cat(vec![b1, b7, bd, bp], 1)
    }
}

/// torchvision's `InceptionD` (17 → 8 grid reduction).
#[allow(missing_docs)]
#[derive(Module, Debug)]
pub struct InceptionD {
    pub branch3x3_1: BasicConv2d,
    pub branch3x3_2: BasicConv2d,
    pub branch7x7x3_1: BasicConv2d,
    pub branch7x7x3_2: BasicConv2d,
    pub branch7x7x3_3: BasicConv2d,
    pub branch7x7x3_4: BasicConv2d,
}

impl InceptionD {
    fn new(c_in: usize, std: Option<f64>, device: &Device) -> Self {
        Self {
            branch3x3_1: conv(c_in, 192, [1, 1], 1, [0, 0], std).init(device),
            branch3x3_2: conv(192, 320, [3, 3], 2, [0, 0], std).init(device),
            branch7x7x3_1: conv(c_in, 192, [1, 1], 1, [0, 0], std).init(device),
            branch7x7x3_2: conv(192, 192, [1, 7], 1, [0, 3], std).init(device),
            branch7x7x3_3: conv(192, 192, [7, 1], 1, [3, 0], std).init(device),
            branch7x7x3_4: conv(192, 192, [3, 3], 2, [0, 0], std).init(device),
        }
    }

    /// # Shapes
    /// - input: `[batch, c_in, h, w]`
    /// - output: `[batch, 512 + c_in, (h - 3) / 2 + 1, (w - 3) / 2 + 1]`
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let b3 = self
            .branch3x3_2
            .forward(self.branch3x3_1.forward(x.clone()));
        let mut b7 = x.clone();
        for layer in [
            &self.branch7x7x3_1,
            &self.branch7x7x3_2,
            &self.branch7x7x3_3,
            &self.branch7x7x3_4,
        ] {
            b7 = layer.forward(b7);
        }
        Tensor::cat(vec![b3, b7, max_pool_3x3_s2(x)], 1)
    }
}

/// torchvision's `InceptionE` (8x8 grid, expanded filter banks).
#[allow(missing_docs)]
#[derive(Module, Debug)]
pub struct InceptionE {
    pub branch1x1: BasicConv2d,
    pub branch3x3_1: BasicConv2d,
    pub branch3x3_2a: BasicConv2d,
    pub branch3x3_2b: BasicConv2d,
    pub branch3x3dbl_1: BasicConv2d,
    pub branch3x3dbl_2: BasicConv2d,
    pub branch3x3dbl_3a: BasicConv2d,
    pub branch3x3dbl_3b: BasicConv2d,
    pub branch_pool: BasicConv2d,
}

impl InceptionE {
    fn new(c_in: usize, std: Option<f64>, device: &Device) -> Self {
        let c = |i, o, k: [usize; 2], p: [usize; 2]| conv(i, o, k, 1, p, std).init(device);
        Self {
            branch1x1: c(c_in, 320, [1, 1], [0, 0]),
            branch3x3_1: c(c_in, 384, [1, 1], [0, 0]),
            branch3x3_2a: c(384, 384, [1, 3], [0, 1]),
            branch3x3_2b: c(384, 384, [3, 1], [1, 0]),
            branch3x3dbl_1: c(c_in, 448, [1, 1], [0, 0]),
            branch3x3dbl_2: c(448, 384, [3, 3], [1, 1]),
            branch3x3dbl_3a: c(384, 384, [1, 3], [0, 1]),
            branch3x3dbl_3b: c(384, 384, [3, 1], [1, 0]),
            branch_pool: c(c_in, 192, [1, 1], [0, 0]),
        }
    }

    /// # Shapes
    /// - input: `[batch, c_in, h, w]`
    /// - output: `[batch, 2048, h, w]`
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let b1 = self.branch1x1.forward(x.clone());
        let b3 = self.branch3x3_1.forward(x.clone());
        let b3 = Tensor::cat(
            vec![
                self.branch3x3_2a.forward(b3.clone()),
                self.branch3x3_2b.forward(b3),
            ],
            1,
        );
        let bd = self
            .branch3x3dbl_2
            .forward(self.branch3x3dbl_1.forward(x.clone()));
        let bd = Tensor::cat(
            vec![
                self.branch3x3dbl_3a.forward(bd.clone()),
                self.branch3x3dbl_3b.forward(bd),
            ],
            1,
        );
        let bp = self.branch_pool.forward(avg_pool_3x3(x));
        Tensor::cat(vec![b1, b3, bd, bp], 1)
    }
}

/// torchvision's `InceptionAux`: 5x5 stride-3 average pool, 1x1 convolution to 128, 5x5
/// convolution to 768, global average pool, linear layer.
#[derive(Module, Debug)]
pub struct InceptionAux {
    /// 1x1 convolution to 128 channels.
    pub conv0: BasicConv2d,
    /// 5x5 convolution to 768 channels.
    pub conv1: BasicConv2d,
    /// 768 → classes.
    pub fc: Linear,
}

impl InceptionAux {
    fn new(c_in: usize, num_classes: usize, init_weights: bool, device: &Device) -> Self {
        let std = |s: f64| init_weights.then_some(s);
        let fc = linear_torch_default(768, num_classes, device);
        Self {
            conv0: conv(c_in, 128, [1, 1], 1, [0, 0], std(0.1)).init(device),
            conv1: conv(128, 768, [5, 5], 1, [0, 0], std(0.01)).init(device),
            fc: if init_weights {
                normal_weight(fc, 0.001, device)
            } else {
                fc
            },
        }
    }

    /// # Shapes
    /// - input: `[batch, 768, h, w]`, at least 17x17 (`Mixed_6e`'s output at 299x299 input)
    /// - output: `[batch, num_classes]`
    pub fn forward(&self, x: Tensor<4>) -> Tensor<2> {
        let x = avg_pool2d(x, AvgPoolOptions::new([5, 5]).with_stride([3, 3]));
        let x = self.conv1.forward(self.conv0.forward(x));
        self.fc
            .forward(adaptive_avg_pool2d_with(x, [1, 1]).flatten(1, 3))
    }
}

/// Inception v3. Build it with [`InceptionV3Config`]. Field names are torchvision's.
#[allow(missing_docs)]
#[derive(Module, Debug)]
pub struct InceptionV3 {
    pub Conv2d_1a_3x3: BasicConv2d,
    pub Conv2d_2a_3x3: BasicConv2d,
    pub Conv2d_2b_3x3: BasicConv2d,
    pub Conv2d_3b_1x1: BasicConv2d,
    pub Conv2d_4a_3x3: BasicConv2d,
    pub Mixed_5b: InceptionA,
    pub Mixed_5c: InceptionA,
    pub Mixed_5d: InceptionA,
    pub Mixed_6a: InceptionB,
    pub Mixed_6b: InceptionC,
    pub Mixed_6c: InceptionC,
    pub Mixed_6d: InceptionC,
    pub Mixed_6e: InceptionC,
    /// The auxiliary classifier, if built.
    pub AuxLogits: Option<InceptionAux>,
    pub Mixed_7a: InceptionD,
    pub Mixed_7b: InceptionE,
    pub Mixed_7c: InceptionE,
    /// Dropout before `fc` (0.5).
    pub dropout: Dropout,
    /// 2048 → classes; `None` without its head.
    pub fc: Option<Linear>,
    transform_input: bool,
}

/// What Inception v3 accepts in eval mode: torchvision's `min_size`, 75x75 (below it
/// `Mixed_7a`'s stride-2 3x3 convolution has nothing left).
pub const INCEPTION_V3_INPUT: InputSpec = InputSpec {
    channels: 3,
    min_size: [75, 75],
    exact: false,
};

/// What the aux head needs in training: `Mixed_6e`'s output at least 17x17 (its 5x5 stride-3
/// pool, then a 5x5 convolution), which takes a 299x299 input, the size the network is
/// designed for.
pub const INCEPTION_V3_AUX_INPUT: InputSpec = InputSpec {
    channels: 3,
    min_size: [299, 299],
    exact: false,
};

/// What torchvision's Inception v3 returns in training mode with the aux head: both logits
/// (`InceptionOutputs(logits, aux_logits)`).
#[derive(Debug, Clone)]
pub struct InceptionOutputs {
    /// The main classifier's logits, `[batch, num_classes]`.
    pub logits: Tensor<2>,
    /// `AuxLogits`' logits; `None` in eval mode or without the aux head.
    pub aux_logits: Option<Tensor<2>>,
}

impl InceptionV3 {
    /// Whether the auxiliary classifier exists.
    pub fn has_aux_logits(&self) -> bool {
        self.AuxLogits.is_some()
    }

    /// Drops the auxiliary classifier, as torchvision's builder does after loading when
    /// `aux_logits=False` was asked for.
    pub fn without_aux_logits(mut self) -> Self {
        self.AuxLogits = None;
        self
    }

    /// The network up to `Mixed_7c`; the aux head runs on `Mixed_6e`'s output when `with_aux`.
    /// Taps the stages of [`Architecture::feature_info`].
    fn run(
        &self,
        x: Tensor<4>,
        with_aux: bool,
        taps: &mut Taps,
    ) -> Option<(Tensor<4>, Option<Tensor<2>>)> {
        let x = if self.transform_input {
            transform_input(x)
        } else {
            x
        };
        let x = self
            .Conv2d_2b_3x3
            .forward(self.Conv2d_2a_3x3.forward(self.Conv2d_1a_3x3.forward(x)));
        tap!(taps, 0, x.clone());
        let x = max_pool_3x3_s2(x);
        let x = self.Conv2d_4a_3x3.forward(self.Conv2d_3b_1x1.forward(x));
        tap!(taps, 1, x.clone());
        let x = max_pool_3x3_s2(x);
        let x = self
            .Mixed_5d
            .forward(self.Mixed_5c.forward(self.Mixed_5b.forward(x)));
        tap!(taps, 2, x.clone());
        let x = self.Mixed_6a.forward(x);
        let x = self.Mixed_6b.forward(x);
        let x = self.Mixed_6c.forward(x);
        let x = self.Mixed_6d.forward(x);
        let x = self.Mixed_6e.forward(x);
        tap!(taps, 3, x.clone());
        let aux = self
            .AuxLogits
            .as_ref()
            .filter(|_| with_aux)
            .map(|aux| aux.forward(x.clone()));
        let x = self.Mixed_7a.forward(x);
        let x = self.Mixed_7c.forward(self.Mixed_7b.forward(x));
        tap!(taps, 4, x.clone());
        Some((x, aux))
    }

    fn head(&self, x: Tensor<4>) -> Tensor<2> {
        let x = adaptive_avg_pool2d_with(x, [1, 1]);
        match &self.fc {
            Some(fc) => fc.forward(self.dropout.forward(x).flatten(1, 3)),
            None => x.flatten(1, 3),
        }
    }

    /// torchvision's `forward`: in training mode (an autodiff device) with the aux head, both
    /// logits, to be combined as torchvision's reference training does
    /// (`loss + 0.4 * aux_loss`); otherwise the logits alone.
    ///
    /// # Shapes
    /// - input: `[batch, 3, height, width]`, at least 75x75, and 299x299 when the aux head
    ///   runs
    /// - output: `[batch, num_classes]` each
    pub fn try_forward_with_aux(&self, x: Tensor<4>) -> Result<InceptionOutputs, InputError> {
        let with_aux = x.device().is_autodiff() && self.has_aux_logits();
        let spec = if with_aux {
            INCEPTION_V3_AUX_INPUT
        } else {
            INCEPTION_V3_INPUT
        };
        spec.check("inception_v3", x.dims())?;
        let (x, aux_logits) = self
            .run(x, with_aux, &mut Taps::none())
            .unwrap_or_else(no_stop);
        Ok(InceptionOutputs {
            logits: self.head(x),
            aux_logits,
        })
    }
}

impl Architecture for InceptionV3 {
    fn family(&self) -> Family {
        Family::INCEPTION
    }

    fn input_spec(&self) -> InputSpec {
        InputSpec {
            channels: self.in_chans(),
            ..INCEPTION_V3_INPUT
        }
    }

    fn display_name(&self) -> &str {
        "inception_v3"
    }

    fn input_conv(&self) -> (&'static str, &Conv2d) {
        ("Conv2d_1a_3x3.conv", &self.Conv2d_1a_3x3.conv)
    }

    fn input_conv_mut(&mut self) -> &mut Conv2d {
        &mut self.Conv2d_1a_3x3.conv
    }

    /// `Conv2d_2b_3x3`, `Conv2d_4a_3x3`, `Mixed_5d`, `Mixed_6e`, `Mixed_7c` (timm's); reductions
    /// 2 to 32.
    fn feature_info(&self) -> Vec<FeatureInfo> {
        vec![
            FeatureInfo::new("Conv2d_2b_3x3", self.Conv2d_2b_3x3.out_channels(), 2),
            FeatureInfo::new("Conv2d_4a_3x3", self.Conv2d_4a_3x3.out_channels(), 4),
            FeatureInfo::new("Mixed_5d", 288, 8),
            FeatureInfo::new("Mixed_6e", 768, 16),
            FeatureInfo::new("Mixed_7c", 2048, 32),
        ]
    }

    fn forward_features_tapped(&self, x: Tensor<4>, taps: &mut Taps) -> Option<Features> {
        self.run(x, false, taps).map(|(x, _)| Features::Map(x))
    }

    /// Global average pooling (the pre-logits, 2048 wide), dropout, then `fc`.
    fn forward_head(&self, features: Features, pre_logits: bool) -> Tensor<2> {
        let x = features.expect_map("inception_v3");
        if pre_logits {
            return adaptive_avg_pool2d_with(x, [1, 1]).flatten(1, 3);
        }
        self.head(x)
    }

    fn num_features(&self) -> usize {
        2048
    }

    fn num_classes(&self) -> usize {
        self.fc.num_classes()
    }

    /// Replaces `fc` (and the aux head's `fc`, if any) by freshly initialised linear layers
    /// (PyTorch's default).
    fn reset_classifier(
        mut self,
        num_classes: usize,
        device: &Device,
    ) -> Result<Self, ConfigError> {
        self.fc = self.fc.reset("inception_v3", num_classes, device)?;
        if let Some(aux) = &mut self.AuxLogits {
            aux.fc = new_classifier("inception_v3", 768, num_classes, device)?;
        }
        Ok(self)
    }

    /// Without `fc` and the aux head.
    fn without_head(mut self) -> Self {
        self.fc = None;
        self.without_aux_logits()
    }

    /// `fc`, and `AuxLogits.fc` when present.
    fn classifier_group(&self) -> ParamGroup {
        let mut ids = self.fc.param_group();
        if let Some(aux) = &self.AuxLogits {
            ids = ids.fuse(&ParamGroup::ids_from_module(aux.fc.clone()));
        }
        ids
    }

    /// Whether inputs are re-normalised to `[-1, 1]` first (the pretrained weights need it).
    fn transform_input(&self) -> bool {
        self.transform_input
    }

    fn with_transform_input(mut self, on: bool) -> Result<Self, ConfigError> {
        self.transform_input = on;
        Ok(self)
    }
}

impl ImportHooks for InceptionV3 {
    fn classifier_prefixes(&self) -> &'static [&'static str] {
        &["fc.", "AuxLogits.fc."]
    }

    fn optional_prefixes(&self) -> &'static [&'static str] {
        &["AuxLogits."]
    }

    fn head_prefixes(&self) -> &'static [&'static str] {
        &["fc.", "AuxLogits."]
    }

    /// A file saved without the aux head (`inception_v3(weights=None, aux_logits=False)`)
    /// drops this model's.
    fn conform_to(
        self,
        shapes: &HashMap<String, Vec<usize>>,
        _device: &Device,
    ) -> Result<Self, ConfigError> {
        let file_has_aux = crate::layers::file_has_module(shapes, &["AuxLogits"]);
        Ok(if self.has_aux_logits() && !file_has_aux {
            self.without_aux_logits()
        } else {
            self
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::device::test_device as device;

    #[test]
    fn parameter_counts_equal_torchvision() {
        let device = device();
        // Inception_V3_Weights.IMAGENET1K_V1.meta["num_params"] (aux head included) and
        // sum(p.numel() for p in Inception3(aux_logits=False).parameters()).
        let pretrained = InceptionV3Config::pretrained().init(&device).unwrap();
        assert_eq!(crate::num_parameters(&pretrained), 27_161_264);
        let plain = InceptionV3Config::new()
            .with_aux_logits(false)
            .init(&device)
            .unwrap();
        assert_eq!(crate::num_parameters(&plain), 23_834_568);
    }

    #[test]
    fn keys_are_torchvision_s() {
        let model = InceptionV3Config::pretrained().init(&device()).unwrap();
        let keys = crate::layers::torch_shapes(&model);
        for (key, shape) in [
            ("Conv2d_1a_3x3.conv.weight", vec![32, 3, 3, 3]),
            ("Conv2d_4a_3x3.bn.running_var", vec![192]),
            ("Mixed_5b.branch5x5_2.conv.weight", vec![64, 48, 5, 5]),
            ("Mixed_6b.branch7x7_2.conv.weight", vec![128, 128, 1, 7]),
            ("Mixed_6e.branch7x7dbl_4.conv.weight", vec![192, 192, 7, 1]),
            ("Mixed_7c.branch3x3dbl_3b.conv.weight", vec![384, 384, 3, 1]),
            ("AuxLogits.conv1.conv.weight", vec![768, 128, 5, 5]),
            ("AuxLogits.fc.weight", vec![1000, 768]),
            ("fc.weight", vec![1000, 2048]),
        ] {
            assert_eq!(keys.get(key), Some(&shape), "{key}");
        }
    }

    #[test]
    fn sizes_from_75_and_a_clear_error_below() {
        let device = device();
        let model = InceptionV3Config::new()
            .with_num_classes(4)
            .init(&device)
            .unwrap();
        let x = Tensor::<4>::zeros([1, 3, 75, 90], &device);
        assert_eq!(model.forward(x).dims(), [1, 4]);
        for [h, w] in [[74, 299], [299, 74], [1, 1]] {
            let x = Tensor::<4>::zeros([1, 3, h, w], &device);
            assert!(
                matches!(
                    model.try_forward(x),
                    Err(InputError::TooSmall { min: [75, 75], .. })
                ),
                "{h}x{w}"
            );
        }
        // No aux head in eval mode, whatever the size.
        let x = Tensor::<4>::zeros([1, 3, 80, 80], &device);
        let out = model.try_forward_with_aux(x).unwrap();
        assert!(out.aux_logits.is_none());
    }

    #[test]
    fn from_scratch_no_input_transform_pretrained_with_it() {
        assert!(!InceptionV3Config::new().transform_input);
        let pretrained = InceptionV3Config::pretrained().init(&device()).unwrap();
        assert!(pretrained.transform_input() && pretrained.has_aux_logits());
    }

    /// `create` is `inception_v3(weights=None)` (aux head, no transform); a file without the
    /// aux head conforms it; `create_for_weights` is the pretrained builder's model.
    #[test]
    fn create_is_weights_none_and_conforms_to_a_file_without_aux() {
        use crate::Architecture as _;
        let device = device();
        let info = crate::model_info("inception_v3").unwrap();
        let crate::Model::InceptionV3(scratch) = info.create(4, &device).unwrap() else {
            panic!("not an InceptionV3");
        };
        assert!(!scratch.transform_input() && scratch.has_aux_logits());
        let pretrained = info.create_for_weights(4, &device).unwrap();
        assert!(pretrained.transform_input());
        let shapes: HashMap<String, Vec<usize>> = [("fc.weight".to_string(), vec![4, 2048])].into();
        assert!(
            !scratch
                .clone()
                .conform_to(&shapes, &device)
                .unwrap()
                .has_aux_logits()
        );
        let with_aux: HashMap<String, Vec<usize>> =
            [("AuxLogits.fc.weight".to_string(), vec![4, 768])].into();
        assert!(
            scratch
                .conform_to(&with_aux, &device)
                .unwrap()
                .has_aux_logits()
        );
    }
}
