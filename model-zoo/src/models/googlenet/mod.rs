//! GoogLeNet (Inception v1), faithful to torchvision's `googlenet.py`, and its 32x32 CIFAR
//! variant.
//!
//! Szegedy et al., *Going Deeper with Convolutions*, CVPR 2015. As in torchvision:
//! - every convolution is a [`BasicConv2d`]: convolution without bias, BatchNorm with
//!   `eps = 0.001`, ReLU;
//! - every max-pool rounds its output size up (`ceil_mode=True`);
//! - the "5x5" branch of each [`Inception`] block is in fact a 3x3 convolution, a known quirk of
//!   torchvision's port that its pretrained weights depend on;
//! - field names are torchvision's (`inception4a.branch2.1.conv.weight`), so weights import
//!   without a key map.

mod weights;
pub use weights::*;

use crate::layers::relu;
use crate::layers::adaptive_avg_pool2d_with;
use crate::layers::max_pool2d;
use burn::config::Config;
use burn::module::{Module, ParamGroup};
use burn::nn::pool::{AdaptiveAvgPool2d, AdaptiveAvgPool2dConfig, MaxPool2d, MaxPool2dConfig};
use burn::nn::{Dropout, DropoutConfig, Initializer, Linear, PaddingConfig2d};
use burn::tensor::{Device, Tensor};
use std::collections::HashMap;

use crate::architecture::{Architecture, ImportHooks};
use crate::error::{ConfigError, InputSpec};
use crate::family::Family;
use crate::features::{FeatureInfo, Features, Taps, no_stop};
pub use crate::layers::BasicConv2d;
use crate::layers::transform_input;
use crate::tap;
use burn::nn::conv::Conv2d;

use crate::layers::{ClassifierHead, linear_torch_default, new_classifier};

impl Family {
    /// GoogLeNet and its 32x32 variant ([`crate::googlenet`]).
    pub const GOOGLENET: Family = Family::new("googlenet");
}

/// A max-pool that rounds its output size up, as all of GoogLeNet's do.
fn ceil_pool(kernel: usize, stride: usize, padding: usize) -> MaxPool2d {
    MaxPool2dConfig::new([kernel, kernel])
        .with_strides([stride, stride])
        .with_padding(PaddingConfig2d::Explicit(
            padding, padding, padding, padding,
        ))
        .with_ceil_mode(true)
        .init()
}

/// The channel widths of one [`Inception`] block, in torchvision's argument order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InceptionWidths {
    /// Input channels.
    pub in_channels: usize,
    /// Output of the 1x1 branch.
    pub ch1x1: usize,
    /// Reduction before the 3x3 branch.
    pub ch3x3red: usize,
    /// Output of the 3x3 branch.
    pub ch3x3: usize,
    /// Reduction before the "5x5" branch.
    pub ch5x5red: usize,
    /// Output of the "5x5" branch (a 3x3 convolution, as in torchvision).
    pub ch5x5: usize,
    /// Output of the pooling branch's projection.
    pub pool_proj: usize,
}

impl InceptionWidths {
    const fn new(c: [usize; 7]) -> Self {
        Self {
            in_channels: c[0],
            ch1x1: c[1],
            ch3x3red: c[2],
            ch3x3: c[3],
            ch5x5red: c[4],
            ch5x5: c[5],
            pool_proj: c[6],
        }
    }

    /// Channels of the block's output (the four branches concatenated).
    pub const fn out_channels(&self) -> usize {
        self.ch1x1 + self.ch3x3 + self.ch5x5 + self.pool_proj
    }
}

/// The nine inception blocks of GoogLeNet, `3a` to `5b`.
pub const INCEPTIONS: [InceptionWidths; 9] = [
    InceptionWidths::new([192, 64, 96, 128, 16, 32, 32]),
    InceptionWidths::new([256, 128, 128, 192, 32, 96, 64]),
    InceptionWidths::new([480, 192, 96, 208, 16, 48, 64]),
    InceptionWidths::new([512, 160, 112, 224, 24, 64, 64]),
    InceptionWidths::new([512, 128, 128, 256, 24, 64, 64]),
    InceptionWidths::new([512, 112, 144, 288, 32, 64, 64]),
    InceptionWidths::new([528, 256, 160, 320, 32, 128, 128]),
    InceptionWidths::new([832, 256, 160, 320, 32, 128, 128]),
    InceptionWidths::new([832, 384, 192, 384, 48, 128, 128]),
];

/// torchvision's `Inception` block: four branches concatenated along channels.
#[derive(Module, Debug)]
pub struct Inception {
    /// 1x1 convolution.
    pub branch1: BasicConv2d,
    /// 1x1 reduction, then 3x3 (`branch2.0`, `branch2.1`).
    pub branch2: (BasicConv2d, BasicConv2d),
    /// 1x1 reduction, then a 3x3 where the paper has a 5x5 (`branch3.0`, `branch3.1`).
    pub branch3: (BasicConv2d, BasicConv2d),
    /// 3x3 max-pool (stride 1, padding 1), then a 1x1 projection (`branch4.1`).
    pub branch4: (MaxPool2d, BasicConv2d),
}

impl Inception {
    fn new(w: InceptionWidths, device: &Device) -> Self {
        let c = w.in_channels;
        Self {
            branch1: BasicConv2d::new(c, w.ch1x1, 1, 1, 0, device),
            branch2: (
                BasicConv2d::new(c, w.ch3x3red, 1, 1, 0, device),
                BasicConv2d::new(w.ch3x3red, w.ch3x3, 3, 1, 1, device),
            ),
            branch3: (
                BasicConv2d::new(c, w.ch5x5red, 1, 1, 0, device),
                BasicConv2d::new(w.ch5x5red, w.ch5x5, 3, 1, 1, device),
            ),
            branch4: (
                ceil_pool(3, 1, 1),
                BasicConv2d::new(c, w.pool_proj, 1, 1, 0, device),
            ),
        }
    }

    /// Runs the four branches and concatenates them.
    ///
    /// # Shapes
    /// - input: `[batch, in_channels, height, width]`
    /// - output: `[batch, out_channels, height, width]`
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let b1 = self.branch1.forward(x.clone());
        let b2 = self.branch2.1.forward(self.branch2.0.forward(x.clone()));
        let b3 = self.branch3.1.forward(self.branch3.0.forward(x.clone()));
        let b4 = self.branch4.1.forward(max_pool2d(&self.branch4.0, x));
        Tensor::cat(vec![b1, b2, b3, b4], 1)
    }
}

/// torchvision's `InceptionAux`: an auxiliary classifier on an intermediate feature map,
/// used in training only.
#[derive(Module, Debug)]
pub struct InceptionAux {
    /// 1x1 convolution to 128 channels.
    pub conv: BasicConv2d,
    /// 2048 → 1024.
    pub fc1: Linear,
    /// 1024 → classes.
    pub fc2: Linear,
    /// Dropout between the two linear layers (0.7 in torchvision).
    pub dropout: Dropout,
}

impl InceptionAux {
    fn new(in_channels: usize, num_classes: usize, dropout: f64, device: &Device) -> Self {
        Self {
            conv: BasicConv2d::new(in_channels, 128, 1, 1, 0, device),
            fc1: normal_linear(2048, 1024, device),
            fc2: normal_linear(1024, num_classes, device),
            dropout: DropoutConfig::new(dropout).init(),
        }
    }

    /// Logits of the auxiliary head.
    ///
    /// # Shapes
    /// - input: `[batch, in_channels, height, width]` (14x14 at 224 input)
    /// - output: `[batch, num_classes]`
    pub fn forward(&self, x: Tensor<4>) -> Tensor<2> {
        let x = adaptive_avg_pool2d_with(x, [4, 4]);
        let x = self.conv.forward(x).flatten(1, 3);
        let x = relu(self.fc1.forward(x));
        self.fc2.forward(self.dropout.forward(x))
    }
}

/// A linear layer as torchvision's GoogLeNet initialises it: weight from `N(0, 0.01)`, bias as
/// PyTorch's default (uniform in `±1/sqrt(in)`), which torchvision leaves alone.
fn normal_linear(d_in: usize, d_out: usize, device: &Device) -> Linear {
    let mut linear = linear_torch_default(d_in, d_out, device);
    linear.weight = Initializer::Normal {
        mean: 0.0,
        std: 0.01,
    }
    .init([d_in, d_out], device);
    linear
}

/// Configuration of a [`GoogLeNet`]. The defaults are those of torchvision's `GoogLeNet` class
/// (aux heads on, no input transform); torchvision's builder with pretrained weights, and this
/// zoo's registry entry `googlenet`, use [`GoogLeNetConfig::pretrained`] instead.
#[derive(Config, Debug)]
pub struct GoogLeNetConfig {
    /// Output classes.
    #[config(default = 1000)]
    pub num_classes: usize,
    /// Build the auxiliary classifiers `aux1` and `aux2` (used in training only).
    #[config(default = true)]
    pub aux_logits: bool,
    /// Re-normalise inputs from ImageNet's mean/std to `[-1, 1]`, as the pretrained weights
    /// (ported from TensorFlow) expect.
    #[config(default = false)]
    pub transform_input: bool,
    /// Dropout before the final classifier.
    #[config(default = 0.2)]
    pub dropout: f64,
    /// Dropout inside the auxiliary classifiers.
    #[config(default = 0.7)]
    pub dropout_aux: f64,
}

impl GoogLeNetConfig {
    /// The model torchvision's `googlenet(weights=...)` returns: `transform_input=True`, no aux
    /// heads (the weight file has them; the importer ignores them for this model).
    pub fn pretrained() -> Self {
        Self::new()
            .with_aux_logits(false)
            .with_transform_input(true)
    }

    /// Builds the model, initialised as torchvision does (`init_weights=True`).
    pub fn init(&self, device: &Device) -> Result<GoogLeNet, ConfigError> {
        if self.num_classes == 0 {
            return Err(ConfigError::Zero {
                model: "googlenet".into(),
                field: "num_classes",
            });
        }
        ConfigError::probability("googlenet", "dropout", self.dropout)?;
        ConfigError::probability("googlenet", "dropout_aux", self.dropout_aux)?;
        let [i3a, i3b, i4a, i4b, i4c, i4d, i4e, i5a, i5b] =
            INCEPTIONS.map(|w| Inception::new(w, device));
        let aux = |c_in| InceptionAux::new(c_in, self.num_classes, self.dropout_aux, device);
        Ok(GoogLeNet {
            conv1: BasicConv2d::new(3, 64, 7, 2, 3, device),
            maxpool1: ceil_pool(3, 2, 0),
            conv2: BasicConv2d::new(64, 64, 1, 1, 0, device),
            conv3: BasicConv2d::new(64, 192, 3, 1, 1, device),
            maxpool2: ceil_pool(3, 2, 0),
            inception3a: i3a,
            inception3b: i3b,
            maxpool3: ceil_pool(3, 2, 0),
            inception4a: i4a,
            inception4b: i4b,
            inception4c: i4c,
            inception4d: i4d,
            inception4e: i4e,
            maxpool4: ceil_pool(2, 2, 0),
            inception5a: i5a,
            inception5b: i5b,
            aux1: self.aux_logits.then(|| aux(512)),
            aux2: self.aux_logits.then(|| aux(528)),
            avgpool: AdaptiveAvgPool2dConfig::new([1, 1]).init(),
            dropout: DropoutConfig::new(self.dropout).init(),
            fc: Some(normal_linear(1024, self.num_classes, device)),
            transform_input: self.transform_input,
        })
    }
}

/// What GoogLeNet accepts: below 15x15 the third max-pool has nothing left to pool.
pub const GOOGLENET_INPUT: InputSpec = InputSpec {
    channels: 3,
    min_size: [15, 15],
    exact: false,
};

/// torchvision's GoogLeNet: a stem of three convolutions, nine inception blocks, global average
/// pooling, dropout and a 1024 → classes classifier, with optional auxiliary classifiers after
/// `inception4a` and `inception4d`.
#[derive(Module, Debug)]
pub struct GoogLeNet {
    /// 7x7 stride-2 convolution to 64 channels.
    pub conv1: BasicConv2d,
    /// 3x3 stride-2 max-pool.
    pub maxpool1: MaxPool2d,
    /// 1x1 convolution, 64 channels.
    pub conv2: BasicConv2d,
    /// 3x3 convolution to 192 channels.
    pub conv3: BasicConv2d,
    /// 3x3 stride-2 max-pool.
    pub maxpool2: MaxPool2d,
    /// Inception 3a (→ 256 channels).
    pub inception3a: Inception,
    /// Inception 3b (→ 480).
    pub inception3b: Inception,
    /// 3x3 stride-2 max-pool.
    pub maxpool3: MaxPool2d,
    /// Inception 4a (→ 512).
    pub inception4a: Inception,
    /// Inception 4b (→ 512).
    pub inception4b: Inception,
    /// Inception 4c (→ 512).
    pub inception4c: Inception,
    /// Inception 4d (→ 528).
    pub inception4d: Inception,
    /// Inception 4e (→ 832).
    pub inception4e: Inception,
    /// 2x2 stride-2 max-pool.
    pub maxpool4: MaxPool2d,
    /// Inception 5a (→ 832).
    pub inception5a: Inception,
    /// Inception 5b (→ 1024).
    pub inception5b: Inception,
    /// Auxiliary classifier on inception4a's output.
    pub aux1: Option<InceptionAux>,
    /// Auxiliary classifier on inception4d's output.
    pub aux2: Option<InceptionAux>,
    /// `AdaptiveAvgPool2d((1, 1))`.
    pub avgpool: AdaptiveAvgPool2d,
    /// Dropout before `fc` (0.2).
    pub dropout: Dropout,
    /// 1024 → classes.
    pub fc: Option<Linear>,
    transform_input: bool,
}

/// What torchvision's GoogLeNet returns in training mode: the logits and both auxiliary logits
/// (`GoogLeNetOutputs(logits, aux_logits2, aux_logits1)`).
#[derive(Debug, Clone)]
pub struct GoogLeNetOutputs {
    /// The main classifier's logits, `[batch, num_classes]`.
    pub logits: Tensor<2>,
    /// `aux2`'s logits (after inception4d); `None` in eval mode or without aux heads.
    pub aux2: Option<Tensor<2>>,
    /// `aux1`'s logits (after inception4a); `None` in eval mode or without aux heads.
    pub aux1: Option<Tensor<2>>,
}

impl GoogLeNet {
    /// Whether the auxiliary classifiers exist.
    pub fn has_aux_logits(&self) -> bool {
        self.aux1.is_some() && self.aux2.is_some()
    }

    /// Drops the auxiliary classifiers, as torchvision's builder does after loading pretrained
    /// weights when `aux_logits` was not asked for.
    pub fn without_aux_logits(mut self) -> Self {
        self.aux1 = None;
        self.aux2 = None;
        self
    }

    /// torchvision's `_transform_input`: `x * std / 0.5 + (mean - 0.5) / 0.5` per channel,
    /// which undoes ImageNet normalisation and maps to `[-1, 1]`.
    fn transform(&self, x: Tensor<4>) -> Tensor<4> {
        if self.transform_input {
            transform_input(x)
        } else {
            x
        }
    }

    /// The whole network; aux heads run only when `with_aux` and they exist.
    /// The unpooled features and the aux heads' logits (`aux2`, `aux1`) where `with_aux`,
    /// tapping the stages of [`Architecture::feature_info`].
    fn run(&self, x: Tensor<4>, with_aux: bool, taps: &mut Taps) -> Option<Trunk> {
        let x = self.conv1.forward(self.transform(x));
        tap!(taps, 0, x.clone());
        let x = max_pool2d(&self.maxpool1, x);
        let x = self.conv3.forward(self.conv2.forward(x));
        tap!(taps, 1, x.clone());
        let x = max_pool2d(&self.maxpool2, x);
        let x = self.inception3b.forward(self.inception3a.forward(x));
        tap!(taps, 2, x.clone());
        let x = max_pool2d(&self.maxpool3, x);
        let x = self.inception4a.forward(x);
        let aux1 = self
            .aux1
            .as_ref()
            .filter(|_| with_aux)
            .map(|a| a.forward(x.clone()));
        let x = self.inception4b.forward(x);
        let x = self.inception4c.forward(x);
        let x = self.inception4d.forward(x);
        let aux2 = self
            .aux2
            .as_ref()
            .filter(|_| with_aux)
            .map(|a| a.forward(x.clone()));
        let x = self.inception4e.forward(x);
        tap!(taps, 3, x.clone());
        let x = max_pool2d(&self.maxpool4, x);
        let x = self.inception5b.forward(self.inception5a.forward(x));
        tap!(taps, 4, x.clone());
        Some((x, aux2, aux1))
    }

    /// torchvision's `forward`: in training mode (an autodiff device, as Burn's dropout and
    /// BatchNorm decide it) and with aux heads, the logits of all three classifiers, to be
    /// combined as in the paper (`loss + 0.3 * (aux1_loss + aux2_loss)`); otherwise the logits
    /// alone, with `aux1` and `aux2` `None`.
    ///
    /// # Panics
    /// On an input that [`Self::try_forward`] rejects.
    pub fn forward_with_aux(&self, x: Tensor<4>) -> GoogLeNetOutputs {
        crate::error::or_panic(self.input_spec().check("googlenet", x.dims()));
        let training = x.device().is_autodiff();
        let (x, aux2, aux1) = self
            .run(x, training, &mut Taps::none())
            .unwrap_or_else(no_stop);
        GoogLeNetOutputs {
            logits: self.forward_head(Features::Map(x), false),
            aux2,
            aux1,
        }
    }
}

/// The features and the aux heads' logits of [`GoogLeNet::run`].
type Trunk = (Tensor<4>, Option<Tensor<2>>, Option<Tensor<2>>);

impl Architecture for GoogLeNet {
    fn family(&self) -> Family {
        Family::GOOGLENET
    }

    /// The main classifier `fc` and the aux heads' `fc2`.
    fn classifier_group(&self) -> ParamGroup {
        [&self.aux1, &self.aux2]
            .into_iter()
            .flatten()
            .map(|aux| ParamGroup::ids_from_module(aux.fc2.clone()))
            .fold(self.fc.param_group(), |a, b| {
                a.fuse(&b)
            })
    }

    /// Whether inputs are re-normalised to `[-1, 1]` first (the pretrained weights need it).
    fn transform_input(&self) -> bool {
        self.transform_input
    }

    fn with_transform_input(mut self, on: bool) -> Result<Self, ConfigError> {
        self.transform_input = on;
        Ok(self)
    }

    /// What this model accepts: 3 channels, at least 15x15.
    fn input_spec(&self) -> InputSpec {
        InputSpec {
            channels: self.in_chans(),
            ..GOOGLENET_INPUT
        }
    }

    fn input_conv(&self) -> (&'static str, &Conv2d) {
        ("conv1.conv", &self.conv1.conv)
    }

    fn input_conv_mut(&mut self) -> &mut Conv2d {
        &mut self.conv1.conv
    }

    /// `conv1`, `conv3`, `inception3b`, `inception4e`, `inception5b` (the outputs before each
    /// max-pool, and the last); reductions 2 to 32.
    fn feature_info(&self) -> Vec<FeatureInfo> {
        vec![
            FeatureInfo::new("conv1", self.conv1.out_channels(), 2),
            FeatureInfo::new("conv3", self.conv3.out_channels(), 4),
            FeatureInfo::new("inception3b", INCEPTIONS[1].out_channels(), 8),
            FeatureInfo::new("inception4e", INCEPTIONS[6].out_channels(), 16),
            FeatureInfo::new("inception5b", INCEPTIONS[8].out_channels(), 32),
        ]
    }

    fn forward_features_tapped(&self, x: Tensor<4>, taps: &mut Taps) -> Option<Features> {
        self.run(x, false, taps).map(|(x, _, _)| Features::Map(x))
    }

    /// `avgpool` flattened (the pre-logits), dropout, then `fc`.
    fn forward_head(&self, features: Features, pre_logits: bool) -> Tensor<2> {
        let x = features.expect_map("googlenet");
        let x = crate::layers::adaptive_avg_pool2d(&self.avgpool, x).flatten(1, 3);
        match &self.fc {
            Some(fc) if !pre_logits => fc.forward(self.dropout.forward(x)),
            _ => x,
        }
    }

    fn num_features(&self) -> usize {
        1024
    }

    /// Classes of the main classifier.
    fn num_classes(&self) -> usize {
        self.fc.num_classes()
    }

    /// Replaces the classifier (`fc`, and the aux heads' `fc2` when present) by freshly
    /// initialised ones for `num_classes` classes.
    fn reset_classifier(
        mut self,
        num_classes: usize,
        device: &Device,
    ) -> Result<Self, ConfigError> {
        self.fc = self.fc.reset("googlenet", num_classes, device)?;
        for aux in [&mut self.aux1, &mut self.aux2].into_iter().flatten() {
            aux.fc2 = new_classifier("googlenet", 1024, num_classes, device)?;
        }
        Ok(self)
    }

    /// Without `fc` and the aux heads.
    fn without_head(mut self) -> Self {
        self.fc = None;
        self.without_aux_logits()
    }
}

impl ImportHooks for GoogLeNet {
    fn classifier_prefixes(&self) -> &'static [&'static str] {
        if self.has_aux_logits() {
            &["fc.", "aux1.fc2.", "aux2.fc2."]
        } else {
            &["fc."]
        }
    }

    fn head_prefixes(&self) -> &'static [&'static str] {
        &["fc.", "aux1.", "aux2."]
    }

    /// torchvision's weight file holds the aux heads; a model built without them loads it as
    /// torchvision's builder does, leaving them out.
    fn optional_prefixes(&self) -> &'static [&'static str] {
        if self.has_aux_logits() {
            &[]
        } else {
            &["aux1.", "aux2."]
        }
    }

    /// A file saved without aux heads (`googlenet(weights=None, aux_logits=False)`, or a model
    /// fine-tuned from torchvision's weights) drops this model's.
    fn conform_to(
        self,
        shapes: &HashMap<String, Vec<usize>>,
        _device: &Device,
    ) -> Result<Self, ConfigError> {
        let file_has_aux = crate::layers::file_has_module(shapes, &["aux1", "aux2"]);
        Ok(if self.has_aux_logits() && !file_has_aux {
            self.without_aux_logits()
        } else {
            self
        })
    }
}

/// Configuration of a [`GoogLeNetCifar`].
#[derive(Config, Debug)]
pub struct GoogLeNetCifarConfig {
    /// Output classes.
    #[config(default = 10)]
    pub num_classes: usize,
    /// Dropout before the classifier.
    #[config(default = 0.4)]
    pub dropout: f64,
}

/// What GoogLeNet-CIFAR accepts: its two max-pools need 2x2 at least.
pub const GOOGLENET_CIFAR_INPUT: InputSpec = InputSpec {
    channels: 3,
    min_size: [2, 2],
    exact: false,
};

/// GoogLeNet for 32x32 images (CIFAR): GoogLeNet's nine inception blocks and max-pools 3 and 4,
/// after a single 3x3 [`BasicConv2d`] stem to 192 channels in place of the ImageNet stem and its
/// two stride-2 stages; no aux heads; adaptive average pooling, dropout 0.4 and a 1024 → classes
/// classifier. At 32x32 the inception blocks see 32, 16 and 8 pixels.
#[derive(Module, Debug)]
pub struct GoogLeNetCifar {
    /// 3x3 convolution (padding 1) to 192 channels.
    pub conv1: BasicConv2d,
    /// Inception 3a.
    pub inception3a: Inception,
    /// Inception 3b.
    pub inception3b: Inception,
    /// 3x3 stride-2 max-pool.
    pub maxpool3: MaxPool2d,
    /// Inception 4a.
    pub inception4a: Inception,
    /// Inception 4b.
    pub inception4b: Inception,
    /// Inception 4c.
    pub inception4c: Inception,
    /// Inception 4d.
    pub inception4d: Inception,
    /// Inception 4e.
    pub inception4e: Inception,
    /// 2x2 stride-2 max-pool.
    pub maxpool4: MaxPool2d,
    /// Inception 5a.
    pub inception5a: Inception,
    /// Inception 5b.
    pub inception5b: Inception,
    /// `AdaptiveAvgPool2d((1, 1))`.
    pub avgpool: AdaptiveAvgPool2d,
    /// Dropout before `fc` (0.4).
    pub dropout: Dropout,
    /// 1024 → classes.
    pub fc: Option<Linear>,
}

impl GoogLeNetCifarConfig {
    /// Builds the model, initialised as torchvision's GoogLeNet.
    pub fn init(&self, device: &Device) -> Result<GoogLeNetCifar, ConfigError> {
        if self.num_classes == 0 {
            return Err(ConfigError::Zero {
                model: "googlenet_cifar".into(),
                field: "num_classes",
            });
        }
        ConfigError::probability("googlenet_cifar", "dropout", self.dropout)?;
        let [i3a, i3b, i4a, i4b, i4c, i4d, i4e, i5a, i5b] =
            INCEPTIONS.map(|w| Inception::new(w, device));
        Ok(GoogLeNetCifar {
            conv1: BasicConv2d::new(3, 192, 3, 1, 1, device),
            inception3a: i3a,
            inception3b: i3b,
            maxpool3: ceil_pool(3, 2, 0),
            inception4a: i4a,
            inception4b: i4b,
            inception4c: i4c,
            inception4d: i4d,
            inception4e: i4e,
            maxpool4: ceil_pool(2, 2, 0),
            inception5a: i5a,
            inception5b: i5b,
            avgpool: AdaptiveAvgPool2dConfig::new([1, 1]).init(),
            dropout: DropoutConfig::new(self.dropout).init(),
            fc: Some(normal_linear(1024, self.num_classes, device)),
        })
    }
}

impl GoogLeNetCifar {
    /// The unpooled features, tapping the stages of [`Architecture::feature_info`].
    fn trunk(&self, x: Tensor<4>, taps: &mut Taps) -> Option<Tensor<4>> {
        let x = self.conv1.forward(x);
        tap!(taps, 0, x.clone());
        let x = self.inception3b.forward(self.inception3a.forward(x));
        tap!(taps, 1, x.clone());
        let x = max_pool2d(&self.maxpool3, x);
        let x = self.inception4a.forward(x);
        let x = self.inception4b.forward(x);
        let x = self.inception4c.forward(x);
        let x = self.inception4d.forward(x);
        let x = self.inception4e.forward(x);
        tap!(taps, 2, x.clone());
        let x = max_pool2d(&self.maxpool4, x);
        let x = self.inception5b.forward(self.inception5a.forward(x));
        tap!(taps, 3, x.clone());
        Some(x)
    }
}

impl Architecture for GoogLeNetCifar {
    crate::layers::classifier_head!(fc);

    fn family(&self) -> Family {
        Family::GOOGLENET
    }

    /// What this model accepts: 3 channels, at least 2x2.
    fn input_spec(&self) -> InputSpec {
        InputSpec {
            channels: self.in_chans(),
            ..GOOGLENET_CIFAR_INPUT
        }
    }

    fn display_name(&self) -> &str {
        "googlenet_cifar"
    }

    fn input_conv(&self) -> (&'static str, &Conv2d) {
        ("conv1.conv", &self.conv1.conv)
    }

    fn input_conv_mut(&mut self) -> &mut Conv2d {
        &mut self.conv1.conv
    }

    /// `conv1`, `inception3b`, `inception4e`, `inception5b` (the outputs before each max-pool,
    /// and the last); reductions 1 to 4.
    fn feature_info(&self) -> Vec<FeatureInfo> {
        vec![
            FeatureInfo::new("conv1", self.conv1.out_channels(), 1),
            FeatureInfo::new("inception3b", INCEPTIONS[1].out_channels(), 1),
            FeatureInfo::new("inception4e", INCEPTIONS[6].out_channels(), 2),
            FeatureInfo::new("inception5b", INCEPTIONS[8].out_channels(), 4),
        ]
    }

    fn forward_features_tapped(&self, x: Tensor<4>, taps: &mut Taps) -> Option<Features> {
        self.trunk(x, taps).map(Features::Map)
    }

    /// `avgpool` flattened (the pre-logits), dropout, then `fc`.
    fn forward_head(&self, features: Features, pre_logits: bool) -> Tensor<2> {
        let x = features.expect_map("googlenet");
        let x = crate::layers::adaptive_avg_pool2d(&self.avgpool, x).flatten(1, 3);
        match &self.fc {
            Some(fc) if !pre_logits => fc.forward(self.dropout.forward(x)),
            _ => x,
        }
    }

    fn num_features(&self) -> usize {
        1024
    }

}

impl ImportHooks for GoogLeNetCifar {
    fn classifier_prefixes(&self) -> &'static [&'static str] {
        &["fc."]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::store::{BurnToPyTorchAdapter, ModuleSnapshot};

    use crate::device::test_device as device;

    #[test]
    fn a_dropout_of_one_is_an_error_not_a_panic() {
        let device = device();
        for result in [
            GoogLeNetConfig::new().with_dropout(1.0).init(&device).err(),
            GoogLeNetConfig::new()
                .with_dropout_aux(1.0)
                .init(&device)
                .err(),
        ] {
            assert!(
                matches!(result, Some(ConfigError::Invalid { .. })),
                "{result:?}"
            );
        }
        let alexnet = crate::models::alexnet::AlexNetConfig::new()
            .with_dropout(1.0)
            .init(&device);
        assert!(matches!(alexnet, Err(ConfigError::Invalid { .. })));
    }

    #[test]
    fn parameter_counts_equal_pytorch() {
        let device = device();
        // sum(p.numel() for p in torchvision.models.googlenet().parameters()): aux heads on.
        let with_aux = GoogLeNetConfig::new().init(&device).unwrap();
        assert_eq!(crate::num_parameters(&with_aux), 13_004_888);
        // GoogLeNet_Weights.IMAGENET1K_V1.meta["num_params"]: aux heads dropped.
        let pretrained = GoogLeNetConfig::pretrained().init(&device).unwrap();
        assert_eq!(crate::num_parameters(&pretrained), 6_624_904);
        assert_eq!(
            crate::num_parameters(&with_aux.without_aux_logits()),
            6_624_904
        );
        // The reference module in xtask/python/zoo_models.py, 10 classes.
        let cifar = GoogLeNetCifarConfig::new().init(&device).unwrap();
        assert_eq!(crate::num_parameters(&cifar), 5_490_986);
    }

    /// torchvision's keys of one inception block and an aux head, `num_batches_tracked` left
    /// out: `[k for k in torchvision.models.googlenet().state_dict() if k.startswith(...)]`.
    #[test]
    fn keys_are_torchvisions() {
        let model = GoogLeNetConfig::new().init(&device()).unwrap();
        let keys: Vec<String> = model
            .collect(None, Some(Box::new(BurnToPyTorchAdapter)), true)
            .into_iter()
            .map(|t| t.name)
            .collect();
        let block: Vec<&str> = keys
            .iter()
            .filter(|k| k.starts_with("inception3a.") && k.ends_with(".weight"))
            .map(|k| k.as_str())
            .collect();
        assert_eq!(
            block,
            [
                "inception3a.branch1.conv.weight",
                "inception3a.branch1.bn.weight",
                "inception3a.branch2.0.conv.weight",
                "inception3a.branch2.0.bn.weight",
                "inception3a.branch2.1.conv.weight",
                "inception3a.branch2.1.bn.weight",
                "inception3a.branch3.0.conv.weight",
                "inception3a.branch3.0.bn.weight",
                "inception3a.branch3.1.conv.weight",
                "inception3a.branch3.1.bn.weight",
                "inception3a.branch4.1.conv.weight",
                "inception3a.branch4.1.bn.weight",
            ]
        );
        let aux: Vec<&str> = keys
            .iter()
            .filter(|k| k.starts_with("aux1."))
            .map(|k| k.as_str())
            .collect();
        assert_eq!(
            aux,
            [
                "aux1.conv.conv.weight",
                "aux1.conv.bn.weight",
                "aux1.conv.bn.bias",
                "aux1.conv.bn.running_mean",
                "aux1.conv.bn.running_var",
                "aux1.fc1.weight",
                "aux1.fc1.bias",
                "aux1.fc2.weight",
                "aux1.fc2.bias",
            ]
        );
        // The "5x5" branch is a 3x3, as torchvision's.
        let shapes = model.collect(None, Some(Box::new(BurnToPyTorchAdapter)), true);
        let branch3 = shapes
            .iter()
            .find(|t| t.name == "inception3a.branch3.1.conv.weight")
            .unwrap();
        assert_eq!(branch3.shape.to_vec(), [32, 16, 3, 3]);
    }

    #[test]
    fn bn_eps_is_one_thousandth() {
        let model = GoogLeNetConfig::new().init(&device()).unwrap();
        assert_eq!(model.conv1.bn.epsilon, 1e-3);
        assert_eq!(model.inception5b.branch4.1.bn.epsilon, 1e-3);
    }

    #[test]
    fn any_size_from_15_and_a_clear_error_below() {
        let device = device();
        let model = GoogLeNetConfig::pretrained()
            .with_num_classes(4)
            .init(&device)
            .unwrap();
        for [h, w] in [[15, 15], [15, 40], [97, 64]] {
            assert_eq!(
                model.forward(Tensor::zeros([1, 3, h, w], &device)).dims(),
                [1, 4],
                "{h}x{w}"
            );
        }
        let err = model
            .try_forward(Tensor::zeros([1, 3, 14, 64], &device))
            .unwrap_err();
        assert!(err.to_string().contains("at least 15x15"), "{err}");
        let model = model.reset_classifier(2, &device).unwrap();
        assert_eq!(model.num_classes(), 2);
        assert_eq!(
            model
                .forward_pooled(Tensor::zeros([2, 3, 32, 32], &device))
                .dims(),
            [2, 1024]
        );
    }

    #[test]
    fn aux_logits_only_in_training_mode() {
        let device = device();
        let model = GoogLeNetConfig::new()
            .with_num_classes(5)
            .init(&device)
            .unwrap();
        let eval = model.forward_with_aux(Tensor::zeros([1, 3, 64, 64], &device));
        assert!(eval.aux1.is_none() && eval.aux2.is_none());
        assert_eq!(eval.logits.dims(), [1, 5]);

        let train_device = device.clone().autodiff();
        let model = model.reset_classifier(3, &device).unwrap().train();
        let out = model.forward_with_aux(Tensor::zeros([1, 3, 64, 64], &train_device));
        assert_eq!(out.logits.dims(), [1, 3]);
        assert_eq!(out.aux1.map(|t| t.dims()), Some([1, 3]));
        assert_eq!(out.aux2.map(|t| t.dims()), Some([1, 3]));

        // Without aux heads there is nothing to return, in any mode.
        let model = model.without_aux_logits();
        let out = model.forward_with_aux(Tensor::zeros([1, 3, 64, 64], &train_device));
        assert!(out.aux1.is_none() && out.aux2.is_none());
    }

    #[test]
    fn transform_input_maps_imagenet_normalised_to_unit_range() {
        let device = device();
        let model = GoogLeNetConfig::pretrained().init(&device).unwrap();
        // A pixel of value v in [0, 1] normalised as ImageNet's becomes 2v - 1.
        let v = 0.75f32;
        let x = Tensor::<1>::from_floats(
            [0, 1, 2].map(|c| {
                (v - crate::registry::IMAGENET_MEAN[c]) / crate::registry::IMAGENET_STD[c]
            }),
            &device,
        )
        .reshape([1, 3, 1, 1]);
        let y: Vec<f32> = model.transform(x).into_data().try_to_vec().unwrap();
        for got in y {
            assert!((got - (2.0 * v - 1.0)).abs() < 1e-6, "{got}");
        }
    }

    #[test]
    fn cifar_variant_runs_on_32x32_and_up() {
        let device = device();
        let model = GoogLeNetCifarConfig::new().init(&device).unwrap();
        for [h, w] in [[2, 2], [32, 32], [40, 36]] {
            assert_eq!(
                model.forward(Tensor::zeros([1, 3, h, w], &device)).dims(),
                [1, 10]
            );
        }
        assert!(
            model
                .try_forward(Tensor::zeros([1, 3, 1, 8], &device))
                .is_err()
        );
    }
}
