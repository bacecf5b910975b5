//! Semantic segmentation: torchvision's six models (`torchvision/models/segmentation/`),
//! `deeplabv3_resnet50`, `deeplabv3_resnet101`, `deeplabv3_mobilenet_v3_large`,
//! `fcn_resnet50`, `fcn_resnet101` and `lraspp_mobilenet_v3_large`, on the zoo's dilated
//! ResNet and MobileNetV3 backbones, with torchvision's keys (`backbone.layer1.0.conv1.weight`,
//! `classifier.0.convs.0.0.weight`, `aux_classifier.0.weight`), so that its files load strictly
//! through `zoo-import` with no key map.
//!
//! ```no_run
//! use model_zoo::segmentation;
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let device = model_zoo::Backend::Flex.device()?;
//! let model = segmentation::create("lraspp_mobilenet_v3_large", 21, &device)?;
//! let masks = model.forward(burn::tensor::Tensor::zeros([1, 3, 520, 694], &device));
//! assert_eq!(masks.dims(), [1, 21, 520, 694]);
//! # Ok(()) }
//! ```
//!
//! Pretrained weights: `zoo_import::pretrained_segmentation("deeplabv3_resnet50", "DEFAULT",
//! &device)`, or `TorchImport::new(path).load_into(model)` for any torchvision state_dict.

mod heads;
mod weights;

use heads::classifier_conv;
pub use heads::{
    Aspp, DeepLabSlot, LrasppHead, deeplab_head, fcn_head, run_deeplab_head, upsample_bilinear,
};
pub use weights::{SegmentationInfo, SegmentationTransform, SegmentationWeights};

use burn::config::Config;
use burn::module::{Module, ParamGroup};
use burn::tensor::{Device, Tensor};

use crate::architecture::{Architecture, ImportInfo, Importable};
use crate::error::{ConfigError, InputError, InputSpec, RegistryError};
use crate::layers::{ImageLayer, run_image_layers};
use crate::models::{Model, mobilenet_v3::MobileNetV3Config};
use crate::resnet::{ResNet, ResNetConfig};

/// Which of torchvision's segmentation models.
#[derive(Config, Debug, Copy, PartialEq, Eq)]
pub enum SegmentationArch {
    /// `deeplabv3_mobilenet_v3_large`.
    DeepLabV3MobileNetV3Large,
    /// `deeplabv3_resnet50`.
    DeepLabV3ResNet50,
    /// `deeplabv3_resnet101`.
    DeepLabV3ResNet101,
    /// `fcn_resnet50`.
    FcnResNet50,
    /// `fcn_resnet101`.
    FcnResNet101,
    /// `lraspp_mobilenet_v3_large`.
    LrasppMobileNetV3Large,
}

/// The head on top of the backbone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum HeadKind {
    DeepLabV3,
    Fcn,
    Lraspp,
}

impl SegmentationArch {
    /// Every model, in torchvision's order.
    pub const ALL: [SegmentationArch; 6] = [
        SegmentationArch::DeepLabV3MobileNetV3Large,
        SegmentationArch::DeepLabV3ResNet50,
        SegmentationArch::DeepLabV3ResNet101,
        SegmentationArch::FcnResNet50,
        SegmentationArch::FcnResNet101,
        SegmentationArch::LrasppMobileNetV3Large,
    ];

    /// torchvision's builder name.
    pub fn name(self) -> &'static str {
        self.info().name
    }

    /// The registry entry.
    pub fn info(self) -> &'static SegmentationInfo {
        weights::MODELS
            .iter()
            .find(|m| m.arch == self)
            .unwrap_or_else(|| unreachable!("every architecture has its entry in MODELS"))
    }

    /// The classifier whose trunk is the backbone (`resnet50`, `mobilenet_v3_large`): the
    /// model whose ImageNet weights torchvision's `weights_backbone` loads.
    pub fn backbone_name(self) -> &'static str {
        match self {
            SegmentationArch::DeepLabV3ResNet50 | SegmentationArch::FcnResNet50 => "resnet50",
            SegmentationArch::DeepLabV3ResNet101 | SegmentationArch::FcnResNet101 => "resnet101",
            SegmentationArch::DeepLabV3MobileNetV3Large
            | SegmentationArch::LrasppMobileNetV3Large => "mobilenet_v3_large",
        }
    }

    /// Whether the model can have torchvision's auxiliary FCN head (LRASPP cannot).
    pub fn supports_aux(self) -> bool {
        self.head() != HeadKind::Lraspp
    }

    fn head(self) -> HeadKind {
        match self {
            SegmentationArch::DeepLabV3MobileNetV3Large
            | SegmentationArch::DeepLabV3ResNet50
            | SegmentationArch::DeepLabV3ResNet101 => HeadKind::DeepLabV3,
            SegmentationArch::FcnResNet50 | SegmentationArch::FcnResNet101 => HeadKind::Fcn,
            SegmentationArch::LrasppMobileNetV3Large => HeadKind::Lraspp,
        }
    }
}

/// Configuration of a [`SegmentationModel`]: torchvision's builder arguments
/// (`deeplabv3_resnet50(num_classes=21, aux_loss=None)`). The backbone is built as torchvision
/// builds it (`replace_stride_with_dilation=[False, True, True]`, MobileNetV3 `dilated=True`),
/// randomly initialised; torchvision's `weights_backbone` (ImageNet weights in the backbone) is
/// `zoo_import::WeightsCache::segmentation_with_backbone`, or [`SegmentationModel::with_backbone`]
/// with a classifier you loaded.
#[derive(Config, Debug)]
pub struct SegmentationConfig {
    /// Which model.
    pub arch: SegmentationArch,
    /// Output classes (21 for the VOC labels of the published weights).
    #[config(default = 21)]
    pub num_classes: usize,
    /// Add the auxiliary FCN head on the stride-8 (MobileNet) or `layer3` (ResNet) features,
    /// as torchvision's `aux_loss=True` (its published DeepLabV3 and FCN weights have it).
    /// LRASPP has none.
    #[config(default = false)]
    pub aux_loss: bool,
}

impl SegmentationConfig {
    /// Builds the model, initialised as torchvision does: the backbone as its classifier
    /// (`kaiming_normal_(mode="fan_out")` convolutions, BatchNorm ones and zeros), the heads
    /// with PyTorch's layer defaults.
    pub fn init(&self, device: &Device) -> Result<SegmentationModel, ConfigError> {
        let name = self.arch.name();
        ConfigError::nonzero(name, "num_classes", self.num_classes)?;
        if self.aux_loss && !self.arch.supports_aux() {
            return Err(ConfigError::Invalid {
                model: name.to_string(),
                field: "aux_loss",
                value: "true".into(),
                expected: "false: LRASPP has no auxiliary head (torchvision's NotImplementedError)",
            });
        }
        let (backbone, low, high, low_channels, high_channels) = match self.arch.backbone_name() {
            "mobilenet_v3_large" => {
                let config = MobileNetV3Config::large().with_dilated(true);
                let features = config.init(device)?.features;
                // torchvision's `stage_indices`: the stem, every block that strides (`_is_cn`,
                // whether or not it is dilated), the last layer.
                let mut stages = vec![0];
                stages.extend(
                    config
                        .blocks
                        .iter()
                        .enumerate()
                        .filter(|(_, b)| b.stride > 1)
                        .map(|(i, _)| i + 1),
                );
                stages.push(features.len() - 1);
                let (low, high) = (stages[stages.len() - 4], stages[stages.len() - 1]);
                let channels = ImageLayer::elements(&features, 3);
                let (low_channels, high_channels) = (channels[low].1, channels[high].1);
                (
                    Backbone::MobileNetV3(features),
                    low,
                    high,
                    low_channels,
                    high_channels,
                )
            }
            resnet => {
                let config = match resnet {
                    "resnet50" => ResNetConfig::resnet50(),
                    _ => ResNetConfig::resnet101(),
                };
                let model = config
                    .with_replace_stride_with_dilation(vec![false, true, true])
                    .init(device)?
                    .without_head();
                let info = model.feature_info();
                let stage = |module: &str| {
                    info.iter()
                        .position(|f| f.module == module)
                        .unwrap_or_else(|| unreachable!("a ResNet has {module}"))
                };
                let (low, high) = (stage("layer3"), stage("layer4"));
                let channels = (info[low].channels, info[high].channels);
                (Backbone::ResNet(model), low, high, channels.0, channels.1)
            }
        };
        let n = self.num_classes;
        let classifier = match self.arch.head() {
            HeadKind::DeepLabV3 => Head::DeepLabV3(deeplab_head(high_channels, n, device)),
            HeadKind::Fcn => Head::Fcn(fcn_head(high_channels, n, device)),
            HeadKind::Lraspp => Head::Lraspp(LrasppHead::new(
                low_channels,
                high_channels,
                n,
                LRASPP_CHANNELS,
                device,
            )),
        };
        let aux_classifier = self.aux_loss.then(|| fcn_head(low_channels, n, device));
        Ok(SegmentationModel {
            backbone,
            classifier,
            aux_classifier,
            arch: self.arch,
            num_classes: n,
            stages: [low, high],
            channels: [low_channels, high_channels],
        })
    }
}

/// The backbone: a dilated ResNet without its pooling and classifier (keys `backbone.conv1`,
/// `backbone.layer4.2.conv3`), or a dilated MobileNetV3-Large's `features` (keys
/// `backbone.0.0`, `backbone.16.1`), as torchvision's `IntermediateLayerGetter` keeps them.
// A ResNet's description next to a list of layers: one per model.
#[allow(clippy::large_enum_variant)]
#[derive(Module, Debug)]
pub enum Backbone {
    /// `resnet50` or `resnet101`, `replace_stride_with_dilation=[False, True, True]`.
    ResNet(ResNet),
    /// `mobilenet_v3_large(dilated=True).features`.
    MobileNetV3(Vec<ImageLayer>),
}

/// The head on the backbone's features (torchvision's `classifier`).
// One head per model.
#[allow(clippy::large_enum_variant)]
#[derive(Module, Debug)]
pub enum Head {
    /// `DeepLabHead`.
    DeepLabV3(Vec<DeepLabSlot>),
    /// `FCNHead`.
    Fcn(Vec<ImageLayer>),
    /// `LRASPPHead`.
    Lraspp(LrasppHead),
}

/// What [`SegmentationModel::try_forward_with_aux`] returns: torchvision's output dict.
#[derive(Debug, Clone)]
pub struct SegmentationOutput {
    /// `out`: `[batch, num_classes, height, width]` scores at the input's size.
    pub out: Tensor<4>,
    /// `aux`: the auxiliary head's scores, same shape, where the model has it.
    pub aux: Option<Tensor<4>>,
}

/// One of torchvision's segmentation models. Build it with [`SegmentationConfig`] or
/// [`create`].
#[derive(Module, Debug)]
pub struct SegmentationModel {
    /// The dilated backbone.
    pub backbone: Backbone,
    /// The head.
    pub classifier: Head,
    /// The auxiliary `FCNHead`, where built (`aux_loss`).
    pub aux_classifier: Option<Vec<ImageLayer>>,
    #[module(skip)]
    arch: SegmentationArch,
    #[module(skip)]
    num_classes: usize,
    /// The backbone stages the heads read: the low (stride 8: the aux head's and LRASPP's
    /// `low`) and the high (the classifier's), as indices into the ResNet's `feature_info` or
    /// MobileNetV3's `features`.
    #[module(skip)]
    stages: [usize; 2],
    /// Channels of those two maps.
    #[module(skip)]
    channels: [usize; 2],
}

/// Channels of DeepLabV3's ASPP and of the layers after it.
const DEEPLAB_CHANNELS: usize = 256;
/// LRASPP's `inter_channels`.
const LRASPP_CHANNELS: usize = 128;

/// That `a` and `b` have the same keys and shapes (torchvision's names); else the first key
/// that differs, with both shapes.
fn same_shapes<A: Module, B: Module>(a: &A, b: &B) -> Result<(), String> {
    let (a, b) = (
        crate::layers::torch_shapes(a),
        crate::layers::torch_shapes(b),
    );
    if a == b {
        return Ok(());
    }
    let key = a
        .keys()
        .chain(b.keys())
        .find(|k| a.get(*k) != b.get(*k))
        .cloned()
        .unwrap_or_default();
    Err(format!(
        "`{key}` is {:?} in the backbone, {:?} in the classifier",
        a.get(&key),
        b.get(&key)
    ))
}

/// What every segmentation model accepts: 3 channels, any size (torchvision's `min_size` is
/// 1x1).
pub const SEGMENTATION_INPUT: InputSpec = InputSpec {
    channels: 3,
    min_size: [1, 1],
    exact: false,
};

impl SegmentationModel {
    /// Which model this is.
    pub fn arch(&self) -> SegmentationArch {
        self.arch
    }

    /// torchvision's builder name.
    pub fn name(&self) -> &'static str {
        self.arch.name()
    }

    /// Output classes.
    pub fn num_classes(&self) -> usize {
        self.num_classes
    }

    /// Whether the model has the auxiliary head.
    pub fn has_aux(&self) -> bool {
        self.aux_classifier.is_some()
    }

    /// What the model accepts.
    pub fn input_spec(&self) -> InputSpec {
        SEGMENTATION_INPUT
    }

    /// The model without its auxiliary head (what torchvision's inference needs; the head only
    /// adds a training loss).
    pub fn without_aux(self) -> Self {
        Self {
            aux_classifier: None,
            ..self
        }
    }

    /// The model with the auxiliary head, a fresh one (PyTorch's default initialisation) where
    /// it had none: for training with torchvision's `aux_loss`. An error for LRASPP, which has
    /// none.
    pub fn with_aux(self, device: &Device) -> Result<Self, ConfigError> {
        if self.has_aux() {
            return Ok(self);
        }
        if !self.arch.supports_aux() {
            return Err(ConfigError::Invalid {
                model: self.name().to_string(),
                field: "aux_loss",
                value: "true".into(),
                expected: "false: LRASPP has no auxiliary head",
            });
        }
        let [low, _] = self.channels;
        Ok(Self {
            aux_classifier: Some(fcn_head(low, self.num_classes, device)),
            ..self
        })
    }

    /// The model with `num_classes` classes: the last convolution of the head (and of the aux
    /// head) replaced by a freshly initialised one, everything else kept, as torchvision's
    /// fine-tuning replaces `classifier[4]` (LRASPP: both classifiers).
    pub fn reset_classifier(
        self,
        num_classes: usize,
        device: &Device,
    ) -> Result<Self, ConfigError> {
        ConfigError::nonzero(self.name(), "num_classes", num_classes)?;
        let [low, high] = self.channels;
        // The last layer of a head, a biased 1x1 convolution, replaced.
        let replace_last = |mut layers: Vec<ImageLayer>, in_channels: usize| {
            layers.pop();
            layers.push(ImageLayer::Conv(classifier_conv(
                in_channels,
                num_classes,
                device,
            )));
            layers
        };
        let classifier = match self.classifier {
            Head::DeepLabV3(mut slots) => {
                slots.pop();
                slots.push(DeepLabSlot::Layer(ImageLayer::Conv(classifier_conv(
                    DEEPLAB_CHANNELS,
                    num_classes,
                    device,
                ))));
                Head::DeepLabV3(slots)
            }
            Head::Fcn(layers) => Head::Fcn(replace_last(layers, high / 4)),
            Head::Lraspp(head) => Head::Lraspp(LrasppHead {
                low_classifier: classifier_conv(low, num_classes, device),
                high_classifier: classifier_conv(LRASPP_CHANNELS, num_classes, device),
                ..head
            }),
        };
        let aux_classifier = self.aux_classifier.map(|aux| replace_last(aux, low / 4));
        Ok(Self {
            classifier,
            aux_classifier,
            num_classes,
            ..self
        })
    }

    /// The model with its backbone's weights taken from `classifier`, the classifier whose
    /// trunk it is ([`SegmentationArch::backbone_name`], its head ignored): torchvision's
    /// `weights_backbone`. The dilation is this model's (a setting, not a weight). An error
    /// where the classifier is another architecture or its shapes differ.
    pub fn with_backbone(self, classifier: Model) -> Result<Self, ConfigError> {
        let name = self.name();
        let mismatch = |what: String| ConfigError::Invalid {
            model: name.to_string(),
            field: "backbone",
            value: what,
            expected: "the classifier the backbone is (resnet50, resnet101, mobilenet_v3_large)",
        };
        let found = classifier.display_name().to_string();
        let backbone = match (self.backbone, classifier) {
            (Backbone::ResNet(mine), Model::ResNet(theirs)) => {
                let theirs = theirs.without_head();
                same_shapes(&mine, &theirs).map_err(|key| mismatch(format!("{found}: {key}")))?;
                Backbone::ResNet(mine.load_record(theirs.into_record()))
            }
            (Backbone::MobileNetV3(mine), Model::MobileNetV3(theirs)) => {
                let theirs = theirs.features;
                same_shapes(&mine, &theirs).map_err(|key| mismatch(format!("{found}: {key}")))?;
                Backbone::MobileNetV3(mine.load_record(theirs.into_record()))
            }
            _ => return Err(mismatch(found)),
        };
        Ok(Self { backbone, ..self })
    }

    /// The parameters [`Self::reset_classifier`] replaces; the rest is what feature extraction
    /// freezes.
    pub fn classifier_group(&self) -> ParamGroup {
        let mut convs = Vec::new();
        let mut add = |conv: Option<&burn::nn::conv::Conv2d>| convs.extend(conv.cloned());
        fn last_conv(layer: Option<&ImageLayer>) -> Option<&burn::nn::conv::Conv2d> {
            match layer {
                Some(ImageLayer::Conv(conv)) => Some(conv),
                _ => None,
            }
        }
        match &self.classifier {
            Head::DeepLabV3(slots) => add(match slots.last() {
                Some(DeepLabSlot::Layer(layer)) => last_conv(Some(layer)),
                _ => None,
            }),
            Head::Fcn(layers) => add(last_conv(layers.last())),
            Head::Lraspp(head) => {
                add(Some(&head.low_classifier));
                add(Some(&head.high_classifier));
            }
        }
        if let Some(aux) = &self.aux_classifier {
            add(last_conv(aux.last()));
        }
        ParamGroup::ids_from_module(convs)
    }

    /// Scores for every pixel, or an error naming what is wrong with the input.
    ///
    /// # Shapes
    /// - input: `[batch, 3, height, width]`
    /// - output: `[batch, num_classes, height, width]`
    pub fn try_forward(&self, x: Tensor<4>) -> Result<Tensor<4>, InputError> {
        self.check(&x)?;
        let device = x.device();
        Ok(crate::on_cpu_workers(&device, || self.run(x, false).out))
    }

    /// [`Self::try_forward`] and the auxiliary head's scores (torchvision's `out` and `aux`),
    /// from one forward.
    ///
    /// # Shapes
    /// - input: `[batch, 3, height, width]`
    /// - output: `out` and `aux`, each `[batch, num_classes, height, width]`
    pub fn try_forward_with_aux(&self, x: Tensor<4>) -> Result<SegmentationOutput, InputError> {
        self.check(&x)?;
        let device = x.device();
        Ok(crate::on_cpu_workers(&device, || self.run(x, true)))
    }

    /// [`Self::try_forward`] for an input known to be valid.
    ///
    /// # Shapes
    /// As [`Self::try_forward`].
    ///
    /// # Panics
    /// On an input that [`Self::try_forward`] rejects, with its message.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        crate::error::or_panic(self.try_forward(x))
    }

    fn check(&self, x: &Tensor<4>) -> Result<(), InputError> {
        self.input_spec().check(self.name(), x.dims())
    }

    /// The forward: the backbone's two maps, the heads, the upsampling to the input's size.
    fn run(&self, x: Tensor<4>, with_aux: bool) -> SegmentationOutput {
        let [_, _, h, w] = x.dims();
        let aux_wanted = with_aux && self.aux_classifier.is_some();
        let need_low = aux_wanted || matches!(self.classifier, Head::Lraspp(_));
        let [low_stage, high_stage] = self.stages;
        let (low, high) = match &self.backbone {
            Backbone::ResNet(resnet) => {
                let stages: &[usize] = if need_low {
                    &[low_stage, high_stage]
                } else {
                    &[high_stage]
                };
                let mut maps = resnet
                    .forward_intermediates(x, stages)
                    .unwrap_or_else(|e| unreachable!("input checked: {e}"));
                let high = maps
                    .pop()
                    .unwrap_or_else(|| unreachable!("one map per stage"));
                (maps.pop(), high)
            }
            Backbone::MobileNetV3(features) => {
                let low = run_image_layers(&features[..=low_stage], x);
                let high = run_image_layers(&features[low_stage + 1..=high_stage], low.clone());
                (need_low.then_some(low), high)
            }
        };
        let out = match &self.classifier {
            Head::DeepLabV3(slots) => run_deeplab_head(slots, high),
            Head::Fcn(layers) => run_image_layers(layers, high),
            Head::Lraspp(head) => head.forward(
                low.clone()
                    .unwrap_or_else(|| unreachable!("LRASPP reads the low map")),
                high,
            ),
        };
        let aux = match (&self.aux_classifier, low) {
            (Some(aux), Some(low)) if aux_wanted => {
                Some(upsample_bilinear(run_image_layers(aux, low), [h, w]))
            }
            _ => None,
        };
        SegmentationOutput {
            out: upsample_bilinear(out, [h, w]),
            aux,
        }
    }
}

impl Importable for SegmentationModel {
    fn import_info(&self) -> ImportInfo {
        let classifier_prefixes: &'static [&'static str] = match self.classifier {
            Head::Lraspp(_) => &["classifier.low_classifier.", "classifier.high_classifier."],
            _ => &["classifier.4.", "aux_classifier.4."],
        };
        ImportInfo {
            name: self.name().to_string(),
            input_conv: None,
            has_head: true,
            classifier_prefixes,
            head_prefixes: &["classifier.", "aux_classifier."],
            // torchvision's published DeepLabV3 and FCN files hold the aux head: a model built
            // without it (inference) ignores those keys.
            optional_prefixes: if self.has_aux() {
                &[]
            } else {
                &["aux_classifier."]
            },
            key_renames: &[],
            derived_buffers: Vec::new(),
            transform_input: false,
        }
    }
}

/// Every registered segmentation model, in torchvision's order.
pub fn models() -> impl Iterator<Item = &'static SegmentationInfo> {
    weights::MODELS.iter()
}

/// The segmentation models whose name matches a glob pattern (as [`crate::list_models`]), in
/// registry order.
pub fn list_models(pattern: &str) -> Vec<&'static SegmentationInfo> {
    let matches = crate::registry::name_matcher(pattern);
    models().filter(|m| matches(m.name)).collect()
}

/// A segmentation model's registry entry by torchvision name; an unknown name gets
/// suggestions.
pub fn model_info(name: &str) -> Result<&'static SegmentationInfo, RegistryError> {
    models()
        .find(|m| m.name == name)
        .ok_or_else(|| RegistryError::UnknownModel {
            name: name.to_string(),
            suggestions: models()
                .filter(|m| strsim::jaro_winkler(m.name, name) > 0.8)
                .map(|m| m.name.to_string())
                .collect(),
        })
}

/// The segmentation model `name` with `num_classes` classes and no aux head, as torchvision's
/// `get_model(name, weights=None, weights_backbone=None, num_classes=num_classes)`.
pub fn create(
    name: &str,
    num_classes: usize,
    device: &Device,
) -> Result<SegmentationModel, RegistryError> {
    let info = model_info(name)?;
    Ok(SegmentationConfig::new(info.arch)
        .with_num_classes(num_classes)
        .init(device)?)
}

impl SegmentationInfo {
    /// The model torchvision's builder makes for these weights: `num_classes` classes, with the
    /// aux head where the architecture has one (`aux_loss=True`, as the published files hold).
    pub fn create_for_weights(
        &self,
        num_classes: usize,
        device: &Device,
    ) -> Result<SegmentationModel, ConfigError> {
        SegmentationConfig::new(self.arch)
            .with_num_classes(num_classes)
            .with_aux_loss(self.arch.supports_aux())
            .init(device)
    }

    /// The weights torchvision's `DEFAULT` points to.
    pub fn default_weights(&self) -> Option<&'static SegmentationWeights> {
        self.weights.iter().find(|w| w.is_default)
    }

    /// Weights by name: `DEFAULT`, `COCO_WITH_VOC_LABELS_V1`, or torchvision's full spelling
    /// (`DeepLabV3_ResNet50_Weights.COCO_WITH_VOC_LABELS_V1`); case does not matter.
    pub fn weights(&self, name: &str) -> Result<&'static SegmentationWeights, RegistryError> {
        crate::registry::find_weights(self.name, self.weights, name, |w| w.name, |w| w.is_default)
    }
}

#[cfg(test)]
mod tests {
    use burn::tensor::Distribution;

    use super::*;
    use crate::device::test_device as device;

    /// `sum(p.numel() for p in model.parameters())` of torchvision's builders
    /// (`weights=None, weights_backbone=None`): 21 classes without and with the aux head, and 7
    /// classes without.
    #[test]
    fn parameter_counts_equal_torchvision() {
        let device = device();
        for (arch, plain, aux, seven) in [
            (
                SegmentationArch::DeepLabV3MobileNetV3Large,
                11_025_477,
                Some(11_029_328),
                11_021_879,
            ),
            (
                SegmentationArch::DeepLabV3ResNet50,
                39_638_869,
                Some(42_004_074),
                39_635_271,
            ),
            (
                SegmentationArch::FcnResNet50,
                32_957_013,
                Some(35_322_218),
                32_949_831,
            ),
            (
                SegmentationArch::LrasppMobileNetV3Large,
                3_221_538,
                None,
                3_219_158,
            ),
        ] {
            let count =
                |config: SegmentationConfig| crate::num_parameters(&config.init(&device).unwrap());
            let config = SegmentationConfig::new(arch);
            assert_eq!(count(config.clone()), plain, "{arch:?}");
            if let Some(aux) = aux {
                assert_eq!(count(config.clone().with_aux_loss(true)), aux, "{arch:?}");
                assert_eq!(arch.info().params, aux, "{arch:?}");
            } else {
                assert_eq!(arch.info().params, plain, "{arch:?}");
            }
            assert_eq!(count(config.with_num_classes(7)), seven, "{arch:?}");
        }
    }

    #[test]
    fn keys_are_torchvision_s() {
        let device = device();
        let keys = |arch, aux| {
            let model = SegmentationConfig::new(arch)
                .with_aux_loss(aux)
                .init(&device)
                .unwrap();
            crate::layers::torch_shapes(&model)
        };
        let deeplab = keys(SegmentationArch::DeepLabV3MobileNetV3Large, true);
        for (key, shape) in [
            ("backbone.0.0.weight", vec![16, 3, 3, 3]),
            ("backbone.16.0.weight", vec![960, 160, 1, 1]),
            ("classifier.0.convs.0.0.weight", vec![256, 960, 1, 1]),
            ("classifier.0.convs.3.1.running_var", vec![256]),
            ("classifier.0.convs.4.1.weight", vec![256, 960, 1, 1]),
            ("classifier.0.convs.4.2.bias", vec![256]),
            ("classifier.0.project.0.weight", vec![256, 1280, 1, 1]),
            ("classifier.1.weight", vec![256, 256, 3, 3]),
            ("classifier.4.bias", vec![21]),
            ("aux_classifier.0.weight", vec![10, 40, 3, 3]),
            ("aux_classifier.4.weight", vec![21, 10, 1, 1]),
        ] {
            assert_eq!(deeplab.get(key), Some(&shape), "{key}");
        }
        let lraspp = keys(SegmentationArch::LrasppMobileNetV3Large, false);
        for (key, shape) in [
            ("classifier.cbr.0.weight", vec![128, 960, 1, 1]),
            ("classifier.scale.1.weight", vec![128, 960, 1, 1]),
            ("classifier.low_classifier.weight", vec![21, 40, 1, 1]),
            ("classifier.high_classifier.bias", vec![21]),
        ] {
            assert_eq!(lraspp.get(key), Some(&shape), "{key}");
        }
        let fcn = keys(SegmentationArch::FcnResNet50, true);
        for (key, shape) in [
            ("backbone.conv1.weight", vec![64, 3, 7, 7]),
            ("backbone.layer4.2.conv3.weight", vec![2048, 512, 1, 1]),
            ("classifier.0.weight", vec![512, 2048, 3, 3]),
            ("aux_classifier.0.weight", vec![256, 1024, 3, 3]),
        ] {
            assert_eq!(fcn.get(key), Some(&shape), "{key}");
        }
        assert!(!fcn.keys().any(|k| k.starts_with("backbone.fc")));
    }

    #[test]
    fn outputs_are_at_the_input_size() {
        let device = device();
        for arch in [
            SegmentationArch::LrasppMobileNetV3Large,
            SegmentationArch::DeepLabV3MobileNetV3Large,
            SegmentationArch::FcnResNet50,
        ] {
            let model = SegmentationConfig::new(arch)
                .with_num_classes(5)
                .with_aux_loss(arch.supports_aux())
                .init(&device)
                .unwrap();
            for [h, w] in [[37, 50], [1, 1]] {
                let x = Tensor::<4>::random([2, 3, h, w], Distribution::Default, &device);
                let both = model.try_forward_with_aux(x.clone()).unwrap();
                assert_eq!(both.out.dims(), [2, 5, h, w], "{arch:?}");
                assert_eq!(
                    both.aux.map(|a| a.dims()),
                    arch.supports_aux().then_some([2, 5, h, w])
                );
                model
                    .forward(x)
                    .into_data()
                    .assert_eq(&both.out.into_data(), true);
            }
        }
    }

    #[test]
    fn bad_inputs_and_options_are_errors() {
        let device = device();
        let model = create("lraspp_mobilenet_v3_large", 3, &device).unwrap();
        let err = model
            .try_forward(Tensor::zeros([1, 1, 32, 32], &device))
            .unwrap_err();
        assert!(matches!(err, InputError::Channels { .. }), "{err}");
        assert!(matches!(
            model.try_forward(Tensor::zeros([0, 3, 32, 32], &device)),
            Err(InputError::EmptyBatch { .. })
        ));
        let err = SegmentationConfig::new(SegmentationArch::LrasppMobileNetV3Large)
            .with_aux_loss(true)
            .init(&device)
            .unwrap_err();
        assert!(err.to_string().contains("aux_loss"), "{err}");
        let err = create("deeplabv3_resnet5", 21, &device).unwrap_err();
        assert!(err.to_string().contains("deeplabv3_resnet50"), "{err}");
        assert!(create("lraspp_mobilenet_v3_large", 0, &device).is_err());
        let info = model_info("fcn_resnet50").unwrap();
        assert_eq!(info.weights("DEFAULT").unwrap().num_classes(), 21);
        assert!(
            info.weights("FCN_ResNet50_Weights.COCO_WITH_VOC_LABELS_V1")
                .is_ok()
        );
        assert!(info.weights("IMAGENET1K_V1").is_err());
    }

    /// A new class count replaces exactly the last convolution of each head, which is what
    /// [`SegmentationModel::classifier_group`] holds.
    #[test]
    fn reset_classifier_replaces_the_last_convolutions() {
        let device = device();
        for arch in [
            SegmentationArch::DeepLabV3MobileNetV3Large,
            SegmentationArch::LrasppMobileNetV3Large,
        ] {
            let model = SegmentationConfig::new(arch)
                .with_aux_loss(arch.supports_aux())
                .init(&device)
                .unwrap();
            let before = crate::layers::torch_shapes(&model);
            let reset = model.reset_classifier(4, &device).unwrap();
            let after = crate::layers::torch_shapes(&reset);
            assert_eq!(reset.num_classes(), 4);
            let changed: Vec<_> = before
                .keys()
                .filter(|k| before.get(*k) != after.get(*k))
                .cloned()
                .collect();
            let want: Vec<&str> = match arch {
                SegmentationArch::LrasppMobileNetV3Large => vec![
                    "classifier.high_classifier.bias",
                    "classifier.high_classifier.weight",
                    "classifier.low_classifier.bias",
                    "classifier.low_classifier.weight",
                ],
                _ => vec![
                    "aux_classifier.4.bias",
                    "aux_classifier.4.weight",
                    "classifier.4.bias",
                    "classifier.4.weight",
                ],
            };
            assert_eq!(changed, want, "{arch:?}");
            let x = Tensor::<4>::zeros([1, 3, 24, 24], &device);
            assert_eq!(reset.forward(x).dims(), [1, 4, 24, 24]);
            let group = reset.classifier_group();
            let mut in_group = 0;
            reset.visit(&mut CountIn(&group, &mut in_group));
            assert_eq!(in_group, 4, "{arch:?}");
        }
    }

    struct CountIn<'a>(&'a ParamGroup, &'a mut usize);

    impl burn::module::ModuleVisitor for CountIn<'_> {
        fn visit_float<const D: usize>(&mut self, param: &burn::module::Param<Tensor<D>>) {
            if self.0.matches(&param.id, None) {
                *self.1 += 1;
            }
        }
    }

    /// torchvision's `weights_backbone`: the classifier's trunk weights, this model's dilation.
    #[test]
    fn the_backbone_loads_from_its_classifier() {
        let device = device();
        let model = create("lraspp_mobilenet_v3_large", 21, &device).unwrap();
        let classifier = crate::create("mobilenet_v3_large", 1000, &device).unwrap();
        let Model::MobileNetV3(theirs) = &classifier else {
            unreachable!("mobilenet_v3_large is a MobileNetV3")
        };
        let want = theirs.features[16].forward(Tensor::ones([1, 160, 3, 3], &device));
        let model = model.with_backbone(classifier.clone()).unwrap();
        let Backbone::MobileNetV3(features) = &model.backbone else {
            unreachable!("LRASPP's backbone is a MobileNetV3")
        };
        features[16]
            .forward(Tensor::ones([1, 160, 3, 3], &device))
            .into_data()
            .assert_eq(&want.into_data(), true);
        // Still dilated: stride 16, so a 64x64 input's high map is 4x4.
        assert_eq!(
            run_image_layers(features, Tensor::zeros([1, 3, 64, 64], &device)).dims(),
            [1, 960, 4, 4]
        );
        let err = model
            .with_backbone(crate::create("resnet50", 10, &device).unwrap())
            .unwrap_err();
        assert!(err.to_string().contains("resnet50"), "{err}");
    }
}
