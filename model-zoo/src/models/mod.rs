//! The models, one folder per family (`models/<family>/`): `mod.rs` holds the family's
//! configuration, modules and forward, `weights.rs` its registry entries (the models it builds by
//! name, their metadata and pretrained weights), as torchvision's and timm's `models/` are laid
//! out. The family list below declares each family's module, the [`Model`] enum over their types
//! and the registry ([`models`], [`model_info`], [`create`]): adding a family is its folder and
//! one entry in that list.
//!
//! ```no_run
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let device = model_zoo::Backend::Flex.device()?;
//! for info in model_zoo::list_models("resnext*") {
//!     println!("{} {:.1}M params, {} GFLOPs", info.name, info.params as f64 / 1e6, info.gflops);
//! }
//! let model = model_zoo::create("resnext50_32x4d", 10, &device)?;
//! let weights = model_zoo::model_info("resnet50")?.weights("DEFAULT")?;
//! assert_eq!(weights.name, "IMAGENET1K_V2");
//! # Ok(()) }
//! ```

use burn::module::Module;

use crate::architecture::Architecture;
use crate::backbone::FeatureExtractor;
use burn::tensor::Device;

use crate::error::{ConfigError, InputSpec, RegistryError};
use crate::family::Family;
use crate::registry::WeightsInfo;

/// Builds the configuration `$config` as [`BuildOptions`] say (classes, drop rates, input
/// channels), naming the model `$name` in errors.
macro_rules! build_config {
    ($config:expr, $name:expr, $options:expr, $device:expr) => {{
        let mut config = $config.with_num_classes($options.num_classes);
        $crate::models::set_drop_rates(&mut config, $options, $name)?;
        $crate::models::with_in_chans(config.init($device)?, $options)
    }};
}

/// One family's registry, declared once (in its `weights.rs`): for each builder, its name, the
/// architecture type, the preset configuration and what differs from [`ModelInfo::new`]'s
/// defaults (parameters, GFLOPs, weights...). Generates the family's `MODELS` table, one typed
/// constructor per builder (`model_zoo::resnet::resnet50(num_classes, &device)`, as
/// torchvision's `resnet50(num_classes=...)`), and, given `config`, the configuration's
/// `from_name` and where it keeps timm's `drop_rate` and `drop_path_rate` ([`DropRates`]: the
/// field names, for the families that have them). Each name is written once.
macro_rules! builders {
    (
        family: $family:expr, input: $input:expr, config: $config:ty
        $(, drop_rate: $drop:ident)? $(, drop_path_rate: $drop_path:ident)?;
        $($(#[$doc:meta])* $name:ident: $model:ty = $preset:expr, { $($field:ident: $value:expr),* $(,)? })*
    ) => {
        builders! {
            family: $family, input: $input;
            $($(#[$doc])* $name: $model = $preset, { $($field: $value),* })*
        }

        impl $crate::models::DropRates for $config {
            $(
                fn set_drop_rate(&mut self, rate: f64) -> bool {
                    self.$drop = rate.into();
                    true
                }
            )?
            $(
                fn set_drop_path_rate(&mut self, rate: f64) -> bool {
                    self.$drop_path = rate.into();
                    true
                }
            )?
        }

        impl $config {
            /// The preset of a registered name of this family (`"resnext50_32x4d"`).
            pub fn from_name(name: &str) -> Option<Self> {
                match name {
                    $(stringify!($name) => Some($preset),)*
                    _ => None,
                }
            }
        }
    };
    (
        family: $family:expr, input: $input:expr;
        $($(#[$doc:meta])* $name:ident: $model:ty = $preset:expr, { $($field:ident: $value:expr),* $(,)? })*
    ) => {
        $(
            $(#[$doc])*
            #[doc = concat!(
                "Builds `", stringify!($name), "` for `num_classes` classes, initialised as ",
                "torchvision does: what `model_zoo::create(\"", stringify!($name),
                "\", ...)` holds, with its own type."
            )]
            pub fn $name(
                num_classes: usize,
                device: &burn::tensor::Device,
            ) -> Result<$model, $crate::error::ConfigError> {
                $preset.with_num_classes(num_classes).init(device)
            }
        )*

        /// The family's registry entries, in torchvision's order.
        pub(crate) const MODELS: &[$crate::models::ModelInfo] = &[$(
            $crate::models::ModelInfo {
                $($field: $value,)*
                ..$crate::models::ModelInfo::new(
                    stringify!($name),
                    $family,
                    $input,
                    |options, device| build_config!($preset, stringify!($name), options, device),
                )
            }
        ),*];
    };
}

/// Declares each family's module, [`Model`] with one variant per architecture type, the one
/// `dispatch!` over it, `From` each type, and [`models`] over the families' registry tables
/// (`<family>::weights::MODELS`).
macro_rules! families {
    ($($family:ident { $($(#[$doc:meta])* $variant:ident($ty:ident),)+ })*) => {
        $(pub mod $family;)*

        /// Any model of the zoo. [`crate::create`] returns one; each family's own type (e.g.
        /// [`crate::ResNet`]) is inside, for callers who want its specific API.
        ///
        /// Enum variants add nothing to parameter paths, so a `Model` saves, loads and imports
        /// with exactly the keys of the model inside it.
        // A `Model` is held once, never in bulk, so the size of its largest variant does not
        // matter.
        #[allow(clippy::large_enum_variant)]
        #[derive(Module, Debug)]
        pub enum Model {
            $($($(#[$doc])* $variant($family::$ty),)+)*
        }

        /// Calls the same method on whichever model is inside, rewrapping `Self` results.
        macro_rules! dispatch {
            ($self:expr, $m:ident => $body:expr) => {
                match $self {
                    $($(Model::$variant($m) => $body,)+)*
                }
            };
            (map $self:expr, $m:ident => $body:expr) => {
                match $self {
                    $($(Model::$variant($m) => Model::$variant($body),)+)*
                }
            };
            (try_map $self:expr, $m:ident => $body:expr) => {
                match $self {
                    $($(Model::$variant($m) => Model::$variant($body?),)+)*
                }
            };
        }

        $($(impl From<$family::$ty> for Model {
            fn from(model: $family::$ty) -> Self {
                Model::$variant(model)
            }
        })+)*

        /// Every registered model, family by family (alphabetically), each family in
        /// torchvision's order.
        pub fn models() -> impl Iterator<Item = &'static ModelInfo> {
            [$($family::MODELS),*].into_iter().flatten()
        }
    };
}

// The family list: each family's folder, and the architecture types its models are.
families! {
    alexnet {
        /// AlexNet, torchvision's and the zoo's half-width and CIFAR variants.
        AlexNet(AlexNet),
    }
    convnext {
        /// ConvNeXt.
        ConvNeXt(ConvNeXt),
    }
    densenet {
        /// DenseNet.
        DenseNet(DenseNet),
    }
    efficientnet {
        /// EfficientNet B0–B7 and V2.
        EfficientNet(EfficientNet),
    }
    googlenet {
        /// GoogLeNet.
        GoogLeNet(GoogLeNet),
        /// GoogLeNet for 32x32 input.
        GoogLeNetCifar(GoogLeNetCifar),
    }
    inception {
        /// Inception v3.
        InceptionV3(InceptionV3),
    }
    lenet {
        /// LeNet-5.
        LeNet5(LeNet5),
    }
    maxvit {
        /// MaxViT.
        MaxVit(MaxVit),
    }
    mnasnet {
        /// MNASNet.
        MnasNet(MnasNet),
    }
    mobilenet_v2 {
        /// MobileNet V2.
        MobileNetV2(MobileNetV2),
    }
    mobilenet_v3 {
        /// MobileNet V3, Large and Small.
        MobileNetV3(MobileNetV3),
    }
    regnet {
        /// RegNet X and Y.
        RegNet(RegNet),
    }
    resnet {
        /// ResNet, ResNeXt and Wide ResNet.
        ResNet(ResNet),
    }
    shufflenet_v2 {
        /// ShuffleNet V2.
        ShuffleNetV2(ShuffleNetV2),
    }
    squeezenet {
        /// SqueezeNet 1.0 and 1.1.
        SqueezeNet(SqueezeNet),
    }
    swin {
        /// Swin Transformer V1 and V2.
        SwinTransformer(SwinTransformer),
    }
    vgg {
        /// VGG, with and without BatchNorm.
        Vgg(Vgg),
    }
    vit {
        /// Vision Transformer.
        VisionTransformer(VisionTransformer),
    }
}

mod model;

/// A registered model: its name, metadata and pretrained weights, and how to build it.
#[derive(Debug, Clone)]
pub struct ModelInfo {
    /// torchvision's name (`resnext50_32x4d`).
    pub name: &'static str,
    /// Its family.
    pub family: Family,
    /// Whether torchvision has this model. Its metadata and parity reference then come from
    /// torchvision; the others (the 32x32 CIFAR variants, `alexnet_half`) are checked against
    /// the zoo's own PyTorch modules in `xtask/python/zoo_models.py`.
    pub torchvision: bool,
    /// Learnable parameters with [`Self::num_classes`] classes, as PyTorch's `parameters()`
    /// counts them, of the model the published weights build ([`Self::create_for_weights`]):
    /// torchvision's `num_params`.
    pub params: usize,
    /// Giga multiply-accumulates of one `image_size` x `image_size` image (torchvision's `_ops`
    /// metadata; PyTorch's `FlopCounterMode` / 2 for the zoo's own models).
    pub gflops: f64,
    /// The input side the model is designed for: 224, or 32 for the CIFAR variants.
    pub image_size: usize,
    /// The class count it is built with by default: 1000 (ImageNet), or 10 for the CIFAR
    /// variants.
    pub num_classes: usize,
    /// What the model accepts: channels and smallest input size.
    pub input: InputSpec,
    /// torchvision's pretrained weights for this model, oldest first.
    pub weights: &'static [WeightsInfo],
    /// Builds the model, freshly initialised, for `num_classes` classes: torchvision's
    /// `get_model(name, weights=None, num_classes=...)`.
    build: Builder,
    /// Builds the model torchvision's builder makes when it is given weights, where that differs
    /// from `build` in more than the class count (`_ovewrite_named_param` in torchvision's
    /// builders): GoogLeNet and Inception v3. `None`: the same as `build`.
    build_with_weights: Option<Builder>,
}

/// Builds a model, freshly initialised, as the options say.
type Builder = fn(&BuildOptions, &Device) -> Result<Model, ConfigError>;

/// timm's `create_model` keywords that apply to every family: the class count, the input
/// channels and, for the families that have them, the two regularisation rates.
///
/// ```no_run
/// use model_zoo::BuildOptions;
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let device = model_zoo::Backend::Flex.device()?;
/// let options = BuildOptions::new(10).with_drop_path_rate(0.1).with_in_chans(1);
/// let model = model_zoo::create_with("convnext_tiny", &options, &device)?;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BuildOptions {
    /// Output classes.
    pub num_classes: usize,
    /// Input channels (timm's `in_chans`), 3 by default: the input convolution is built for
    /// them ([`crate::Architecture::with_in_chans`]).
    pub in_chans: usize,
    /// timm's `drop_rate`: the family's dropout, as torchvision names it (`dropout` of
    /// AlexNet, VGG, SqueezeNet, GoogLeNet, Inception v3, MobileNet V2/V3, MNASNet,
    /// EfficientNet, ViT and Swin; DenseNet's `drop_rate`). `None`: the family's default. An
    /// error for a family without dropout (ResNet, RegNet, ShuffleNet V2, ConvNeXt, MaxViT,
    /// LeNet).
    pub drop_rate: Option<f64>,
    /// timm's `drop_path_rate`: stochastic depth, torchvision's `stochastic_depth_prob` (ConvNeXt,
    /// EfficientNet, Swin, MaxViT), the rate of the last block, the others' growing linearly
    /// to it as torchvision schedules it. `None`: the family's default. An error for the other
    /// families.
    pub drop_path_rate: Option<f64>,
}

impl BuildOptions {
    /// `num_classes` classes, RGB input, the family's default rates.
    pub fn new(num_classes: usize) -> Self {
        Self {
            num_classes,
            in_chans: 3,
            drop_rate: None,
            drop_path_rate: None,
        }
    }

    /// With `in_chans` input channels.
    pub fn with_in_chans(self, in_chans: usize) -> Self {
        Self { in_chans, ..self }
    }

    /// With dropout `rate` (timm's `drop_rate`).
    pub fn with_drop_rate(self, rate: f64) -> Self {
        Self {
            drop_rate: Some(rate),
            ..self
        }
    }

    /// With stochastic depth `rate` (timm's `drop_path_rate`).
    pub fn with_drop_path_rate(self, rate: f64) -> Self {
        Self {
            drop_path_rate: Some(rate),
            ..self
        }
    }
}

/// Where a family's configuration keeps timm's `drop_rate` and `drop_path_rate`
/// ([`BuildOptions`]): each setter stores the rate and returns `true`, or returns `false` (the
/// default) where the family has no such rate. `builders!` writes it from the field names a
/// family gives.
pub trait DropRates {
    /// Sets the dropout rate, if the family has dropout.
    fn set_drop_rate(&mut self, rate: f64) -> bool {
        let _ = rate;
        false
    }

    /// Sets the stochastic depth rate, if the family has stochastic depth.
    fn set_drop_path_rate(&mut self, rate: f64) -> bool {
        let _ = rate;
        false
    }
}

/// Sets `options`' rates on `config`: each a probability in `[0, 1)`, and an error naming
/// `model` where the family has no such rate.
pub(crate) fn set_drop_rates(
    config: &mut impl DropRates,
    options: &BuildOptions,
    model: &str,
) -> Result<(), ConfigError> {
    type Setter<C> = fn(&mut C, f64) -> bool;
    let rates: [(&'static str, Option<f64>, Setter<_>); 2] = [
        ("drop_rate", options.drop_rate, DropRates::set_drop_rate),
        (
            "drop_path_rate",
            options.drop_path_rate,
            DropRates::set_drop_path_rate,
        ),
    ];
    for (field, rate, set) in rates {
        let Some(rate) = rate else { continue };
        ConfigError::probability(model, field, rate)?;
        if !set(config, rate) {
            return Err(ConfigError::Invalid {
                model: model.into(),
                field,
                value: rate.to_string(),
                expected: "no rate: this family has no such layer (see BuildOptions)",
            });
        }
    }
    Ok(())
}

/// `model` as [`Model`], built for `options.in_chans` input channels.
pub(crate) fn with_in_chans(
    model: impl Into<Model>,
    options: &BuildOptions,
) -> Result<Model, ConfigError> {
    model.into().with_in_chans(options.in_chans)
}

impl ModelInfo {
    /// An entry of torchvision's usual shape: torchvision's model, 224x224 input, 1000 classes,
    /// no weights, built as `create_for_weights` as for `create`. [`builders!`] starts every
    /// entry from it and sets the rest.
    const fn new(name: &'static str, family: Family, input: InputSpec, build: Builder) -> Self {
        Self {
            name,
            family,
            torchvision: true,
            params: 0,
            gflops: 0.0,
            image_size: 224,
            num_classes: 1000,
            input,
            weights: &[],
            build,
            build_with_weights: None,
        }
    }

    /// Builds the model with `num_classes` classes, initialised as torchvision does: what
    /// torchvision's `get_model(name, weights=None, num_classes=num_classes)` returns. For
    /// GoogLeNet and Inception v3 that is the model with aux heads and without the input
    /// transform (the model a PyTorch user trains from scratch); a file saved without aux heads
    /// conforms it when it loads. Pretrained weights are loaded into
    /// [`Self::create_for_weights`].
    pub fn create(&self, num_classes: usize, device: &Device) -> Result<Model, ConfigError> {
        self.create_with(&BuildOptions::new(num_classes), device)
    }

    /// [`Self::create`] as `options` say: timm's `create_model(name, num_classes=...,
    /// in_chans=..., drop_rate=..., drop_path_rate=...)`.
    pub fn create_with(
        &self,
        options: &BuildOptions,
        device: &Device,
    ) -> Result<Model, ConfigError> {
        (self.build)(options, device)
    }

    /// The model torchvision's builder returns when it is given pretrained weights
    /// (`get_model(name, weights=...)`), with `num_classes` classes: [`Self::create`]'s, except
    /// where the builder overrides a setting. Two do (`_ovewrite_named_param` with more than
    /// `num_classes`):
    ///
    /// | model | `weights=None` ([`Self::create`]) | with weights |
    /// |---|---|---|
    /// | `googlenet` | aux heads, `transform_input=False`, `init_weights=True` | no aux heads (dropped after loading), `transform_input=True`, `init_weights=False` |
    /// | `inception_v3` | aux head, `transform_input=False`, `init_weights=True` | aux head, `transform_input=True`, `init_weights=False` |
    ///
    /// ViT's `image_size` and MaxViT's `input_size`, which the builders also set from the
    /// weights, follow from the file's shapes when it loads (`conform_to`).
    pub fn create_for_weights(
        &self,
        num_classes: usize,
        device: &Device,
    ) -> Result<Model, ConfigError> {
        self.create_for_weights_with(&BuildOptions::new(num_classes), device)
    }

    /// [`Self::create_for_weights`] as `options` say (drop rates, input channels).
    pub fn create_for_weights_with(
        &self,
        options: &BuildOptions,
        device: &Device,
    ) -> Result<Model, ConfigError> {
        self.build_with_weights.unwrap_or(self.build)(options, device)
    }

    /// The weights torchvision's `DEFAULT` points to (the best), if there are any.
    pub fn default_weights(&self) -> Option<&'static WeightsInfo> {
        self.weights.iter().find(|w| w.is_default)
    }

    /// Weights by name: `DEFAULT`, `IMAGENET1K_V2`, or torchvision's full spelling
    /// `ResNet50_Weights.IMAGENET1K_V2`; case does not matter.
    pub fn weights(&self, name: &str) -> Result<&'static WeightsInfo, RegistryError> {
        crate::registry::find_weights(self.name, self.weights, name, |w| w.name, |w| w.is_default)
    }
}

/// The models whose name matches a glob pattern (`*` any run of characters, `?` one
/// character, `[abc]` a set), in registry order. An empty pattern or `*` lists every model.
pub fn list_models(pattern: &str) -> Vec<&'static ModelInfo> {
    let matches = crate::registry::name_matcher(pattern);
    models().filter(|m| matches(m.name)).collect()
}

/// A model's registry entry by torchvision name; an unknown name gets suggestions.
pub fn model_info(name: &str) -> Result<&'static ModelInfo, RegistryError> {
    models()
        .find(|m| m.name == name)
        .ok_or_else(|| RegistryError::UnknownModel {
            name: name.to_string(),
            suggestions: similar_names(name),
        })
}

/// Builds a model by torchvision name with `num_classes` classes, initialised as torchvision
/// does (timm's `create_model`). Load pretrained weights with `zoo-import`.
pub fn create(name: &str, num_classes: usize, device: &Device) -> Result<Model, RegistryError> {
    Ok(model_info(name)?.create(num_classes, device)?)
}

/// A model by torchvision name as a backbone: its feature maps at the stages `out_indices` of
/// its `feature_info()` (all where empty), its head removed (timm's
/// `create_model(name, features_only=True, out_indices=...)`). Initialised as [`create`];
/// `zoo_import::pretrained_features` loads pretrained weights into one.
pub fn features_only(
    name: &str,
    out_indices: &[usize],
    device: &Device,
) -> Result<FeatureExtractor<Model>, RegistryError> {
    features_only_with(name, &BuildOptions::new(1000), out_indices, device)
}

/// [`features_only`] with timm's other `create_model` keywords ([`BuildOptions`]: input
/// channels, drop rates; its class count is irrelevant, the head being removed).
pub fn features_only_with(
    name: &str,
    options: &BuildOptions,
    out_indices: &[usize],
    device: &Device,
) -> Result<FeatureExtractor<Model>, RegistryError> {
    let model = create_with(name, options, device)?;
    Ok(FeatureExtractor::new(model, out_indices)?)
}

/// [`create`] with timm's other `create_model` keywords: input channels, `drop_rate` and
/// `drop_path_rate` ([`BuildOptions`]).
pub fn create_with(
    name: &str,
    options: &BuildOptions,
    device: &Device,
) -> Result<Model, RegistryError> {
    Ok(model_info(name)?.create_with(options, device)?)
}

/// Up to three registered names close to `name`: those starting with it first, then those
/// within a small edit distance.
fn similar_names(name: &str) -> Vec<String> {
    let lower = name.to_ascii_lowercase();
    let mut scored: Vec<(bool, usize, &str)> = models()
        .map(|m| {
            let prefix = lower.len() >= 3 && m.name.starts_with(&lower);
            (!prefix, strsim::levenshtein(&lower, m.name), m.name)
        })
        .filter(|&(not_prefix, distance, _)| !not_prefix || distance <= 3)
        .collect();
    scored.sort();
    scored
        .into_iter()
        .take(3)
        .map(|(_, _, n)| n.to_string())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Architecture;
    use crate::error::InputError;
    use crate::registry::*;

    use crate::device::test_device as device;

    #[test]
    fn names_are_unique_and_found() {
        let mut names: Vec<_> = models().map(|m| m.name).collect();
        let count = names.len();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), count, "duplicate model names");
        for name in names {
            assert_eq!(model_info(name).unwrap().name, name);
        }
    }

    #[test]
    fn glob_filters() {
        let names = |p| list_models(p).iter().map(|m| m.name).collect::<Vec<_>>();
        assert_eq!(
            names("resnet*"),
            ["resnet18", "resnet34", "resnet50", "resnet101", "resnet152"]
        );
        assert_eq!(names("wide_*"), ["wide_resnet50_2", "wide_resnet101_2"]);
        assert_eq!(names("resnet?8"), ["resnet18"]);
        assert_eq!(names("*").len(), models().count());
        assert_eq!(names("").len(), models().count());
        assert_eq!(names("vit_?_16"), ["vit_b_16", "vit_l_16"]);
        assert!(names("deit*").is_empty());
        assert!(names("[").is_empty());
    }

    #[test]
    fn unknown_names_get_suggestions() {
        let err = model_info("resnet5").unwrap_err();
        let RegistryError::UnknownModel { suggestions, .. } = &err else {
            panic!("{err:?}")
        };
        assert!(
            suggestions.contains(&"resnet50".to_string()),
            "{suggestions:?}"
        );
        assert!(err.to_string().contains("did you mean"), "{err}");
        let err = model_info("resnext").unwrap_err().to_string();
        assert!(err.contains("resnext50_32x4d"), "{err}");
    }

    #[test]
    fn weight_descriptors_are_consistent() {
        for model in models() {
            assert!(
                model.weights.iter().filter(|w| w.is_default).count() <= 1,
                "{}: more than one DEFAULT",
                model.name
            );
            if !model.weights.is_empty() {
                assert!(model.default_weights().is_some(), "{}", model.name);
            }
            for w in model.weights {
                if w.source == WeightsSource::PaddleVision {
                    assert!(w.url.starts_with(PADDLE_BASE_URL), "{}", w.url);
                    assert_eq!(w.file_name(), format!("{}.pdparams", model.name));
                    let Checksum::Md5(md5) = w.checksum else {
                        panic!("{}: Paddle publishes MD5s", w.url)
                    };
                    assert!(md5.len() == 32 && md5.bytes().all(|b| b.is_ascii_hexdigit()));
                    assert!(!w.is_default && w.acc1.is_none());
                    continue;
                }
                assert!(w.url.starts_with(TORCHVISION_BASE_URL), "{}", w.url);
                let file = w.file_name();
                // torchvision's file names spell some models their own way
                // (`shufflenetv2_x0.5-…`, `mnasnet1.0_top1_73.512-…`, `shufflenetv2_x1-…`).
                let alnum = |s: &str| s.replace(['_', '.'], "");
                let stem = match model.name {
                    "shufflenet_v2_x1_0" => "shufflenetv2x1".to_string(),
                    name => alnum(name),
                };
                assert!(
                    alnum(file).starts_with(&stem)
                        && file.ends_with(&format!("-{}.pth", w.checksum.hex())),
                    "{file}"
                );
                let Checksum::Sha256Prefix(prefix) = w.checksum else {
                    panic!("{file}: torchvision names SHA-256 prefixes")
                };
                assert!([8, 10].contains(&prefix.len()), "{file}");
                assert!(prefix.bytes().all(|b| b.is_ascii_hexdigit()));
                let (acc1, acc5) = (w.acc1.unwrap(), w.acc5.unwrap());
                assert!((0.0..=100.0).contains(&acc1) && acc1 < acc5);
                assert_eq!(w.num_classes(), 1000);
                assert!(w.preprocess.crop <= w.preprocess.resize);
            }
        }
    }

    #[test]
    fn weights_by_name() {
        let info = model_info("resnet50").unwrap();
        assert_eq!(info.weights("DEFAULT").unwrap().name, "IMAGENET1K_V2");
        assert_eq!(
            info.weights("imagenet1k_v1").unwrap().checksum,
            Checksum::Sha256Prefix("0676ba61")
        );
        assert_eq!(
            info.weights("ResNet50_Weights.IMAGENET1K_V2")
                .unwrap()
                .preprocess
                .resize,
            232
        );
        let err = info.weights("IMAGENET22K").unwrap_err().to_string();
        assert!(err.contains("IMAGENET1K_V1, IMAGENET1K_V2"), "{err}");
    }

    #[test]
    fn imagenet_has_1000_named_classes() {
        let names = imagenet_classes();
        assert_eq!(names.len(), 1000);
        assert_eq!(names[0], "tench");
        assert_eq!(names[281], "tabby");
        assert_eq!(names[999], "toilet tissue");
        assert!(names.iter().all(|n| !n.is_empty()));
    }

    #[test]
    fn every_model_refuses_bad_input_with_an_error() {
        use burn::tensor::Tensor;

        let device = device();
        for info in models().filter(|m| m.params < 20_000_000) {
            let model = info.create(info.num_classes, &device).unwrap();
            let [h, w] = info.input.min_size;
            let grey = Tensor::<4>::zeros([1, 1, h, w], &device);
            assert!(
                matches!(model.try_forward(grey), Err(InputError::Channels { .. })),
                "{}",
                info.name
            );
            let empty = Tensor::<4>::zeros([0, 3, h, w], &device);
            assert!(
                matches!(model.try_forward(empty), Err(InputError::EmptyBatch { .. })),
                "{}",
                info.name
            );
            if h > 1 {
                let small = Tensor::<4>::zeros([1, 3, h - 1, w], &device);
                assert!(
                    matches!(model.try_forward(small), Err(InputError::TooSmall { .. })),
                    "{}",
                    info.name
                );
            }
        }
    }

    #[test]
    fn every_input_conv_is_a_torchvision_key_and_adapts() {
        use burn::tensor::Tensor;

        let device = device();
        for info in models() {
            let model = info.create_for_weights(info.num_classes, &device).unwrap();
            let (prefix, conv) = model.input_conv();
            let shapes = crate::layers::torch_shapes(&model);
            let key = format!("{prefix}.weight");
            assert_eq!(
                shapes.get(&key).map(Vec::as_slice),
                Some(&conv.weight.lazy_shape().dims::<4>()[..]),
                "{}: {key}",
                info.name
            );
            assert_eq!(model.in_chans(), 3, "{}", info.name);
            if info.params < 6_000_000 && !model.transform_input() {
                let [h, w] = info.input.min_size;
                let size = if info.input.exact {
                    [h, w]
                } else {
                    [h.max(64), w.max(48)]
                };
                for channels in [1, 4] {
                    let adapted = model.clone().with_in_chans(channels).unwrap();
                    assert_eq!(adapted.input_spec().channels, channels, "{}", info.name);
                    let x = Tensor::<4>::zeros([1, channels, size[0], size[1]], &device);
                    assert_eq!(adapted.forward(x).dims(), [1, info.num_classes]);
                }
            }
        }
        let googlenet = create_for_weights_of("googlenet", &device);
        assert!(googlenet.with_in_chans(1).is_err());
    }

    fn create_for_weights_of(name: &str, device: &burn::tensor::Device) -> crate::Model {
        let info = model_info(name).unwrap();
        info.create_for_weights(info.num_classes, device).unwrap()
    }

    #[test]
    fn feature_maps_are_what_feature_info_says() {
        use burn::tensor::{Tensor, Tolerance};

        let device = device();
        for info in models().filter(|m| m.params < 6_000_000) {
            let model = info.create(info.num_classes, &device).unwrap();
            let [h, w] = info.input.min_size;
            let size = if info.input.exact {
                [h, w]
            } else {
                [h.max(64), w.max(48)]
            };
            let x = Tensor::<4>::random(
                [2, 3, size[0], size[1]],
                burn::tensor::Distribution::Default,
                &device,
            );
            let stages = model.feature_info();
            let (logits, maps) = model.forward_with_intermediates(x.clone(), &[]).unwrap();
            assert_eq!(maps.len(), stages.len(), "{}", info.name);
            for (map, stage) in maps.iter().zip(&stages) {
                let [b, c, ..] = map.dims();
                assert_eq!(
                    [b, c],
                    [2, stage.channels],
                    "{} {}",
                    info.name,
                    stage.module
                );
            }
            logits.into_data().assert_approx_eq::<f32>(
                &model.forward(x.clone()).into_data(),
                Tolerance::default(),
            );
            // The head on the unpooled features is the forward, its pre-logits the pooled
            // features.
            model
                .forward_head(model.forward_features(x.clone()), false)
                .into_data()
                .assert_approx_eq::<f32>(
                    &model.forward(x.clone()).into_data(),
                    Tolerance::default(),
                );
            assert_eq!(
                model.forward_pooled(x.clone()).dims(),
                [2, model.num_features()],
                "{}",
                info.name
            );
            // One stage alone is the same map, and the forward stops there.
            let last = stages.len() - 1;
            let one = model.forward_intermediates(x.clone(), &[last, 0]).unwrap();
            one[0]
                .clone()
                .into_data()
                .assert_approx_eq::<f32>(&maps[last].clone().into_data(), Tolerance::default());
            assert_eq!(one[1].dims(), maps[0].dims(), "{}", info.name);
            assert!(
                matches!(
                    model.forward_intermediates(x, &[stages.len()]),
                    Err(InputError::FeatureIndex { .. })
                ),
                "{}",
                info.name
            );
        }
    }

    #[test]
    fn build_options_reach_every_family_that_has_them() {
        use crate::models::{convnext, efficientnet, swin, vit};
        let device = device();
        // timm's keywords by name, for every model: taken where the family has the layer, a
        // clear error naming the field where it has not.
        let with_dropout = |family| {
            ![
                Family::RESNET,
                Family::REGNET,
                Family::SHUFFLENET_V2,
                Family::CONVNEXT,
                Family::MAXVIT,
                Family::LENET,
            ]
            .contains(&family)
        };
        let with_drop_path = |family| {
            [
                Family::CONVNEXT,
                Family::EFFICIENTNET,
                Family::SWIN,
                Family::MAXVIT,
            ]
            .contains(&family)
        };
        for info in models() {
            let options = BuildOptions::new(3).with_drop_rate(0.25);
            match info.create_with(&options, &device) {
                Ok(model) => {
                    assert!(with_dropout(info.family), "{}", info.name);
                    assert_eq!(model.num_classes(), 3, "{}", info.name);
                }
                Err(e) => {
                    assert!(!with_dropout(info.family), "{}: {e}", info.name);
                    assert!(e.to_string().contains("drop_rate"), "{e}");
                }
            }
            let options = BuildOptions::new(3).with_drop_path_rate(0.1);
            let built = info.create_for_weights_with(&options, &device);
            assert_eq!(built.is_ok(), with_drop_path(info.family), "{}", info.name);
        }
        // Each lands in torchvision's field.
        let options = BuildOptions::new(5)
            .with_drop_rate(0.3)
            .with_drop_path_rate(0.2);
        let mut config = convnext::ConvNeXtConfig::convnext_tiny();
        assert!(set_drop_rates(&mut config, &options, "convnext_tiny").is_err());
        set_drop_rates(
            &mut config,
            &BuildOptions::new(5).with_drop_path_rate(0.2),
            "c",
        )
        .unwrap();
        assert_eq!(config.stochastic_depth_prob, Some(0.2));
        let mut config = efficientnet::EfficientNetConfig::efficientnet_b0();
        set_drop_rates(&mut config, &options, "efficientnet_b0").unwrap();
        assert_eq!((config.dropout, config.stochastic_depth_prob), (0.3, 0.2));
        let mut config = swin::SwinConfig::swin_t();
        set_drop_rates(&mut config, &options, "swin_t").unwrap();
        assert_eq!(
            (config.dropout, config.stochastic_depth_prob),
            (0.3, Some(0.2))
        );
        let mut config = vit::VisionTransformerConfig::vit_b_16();
        set_drop_rates(&mut config, &options.with_drop_rate(0.1), "vit_b_16").unwrap_err();
        set_drop_rates(&mut config, &BuildOptions::new(5).with_drop_rate(0.1), "v").unwrap();
        assert_eq!(config.dropout, 0.1);
        // A rate that is not a probability is refused before anything is built.
        let err = create_with(
            "convnext_tiny",
            &BuildOptions::new(5).with_drop_path_rate(1.5),
            &device,
        )
        .unwrap_err();
        assert!(err.to_string().contains("drop_path_rate"), "{err}");
        // Input channels by name.
        let model =
            create_with("resnet18", &BuildOptions::new(4).with_in_chans(1), &device).unwrap();
        assert_eq!((model.in_chans(), model.num_classes()), (1, 4));
    }

    #[test]
    fn registry_builds_what_it_describes() {
        let device = device();
        // Parameters initialise lazily and are counted by shape: even regnet_y_128gf's 645M
        // cost nothing here.
        for info in models() {
            let model = info.create_for_weights(info.num_classes, &device).unwrap();
            assert_eq!(crate::num_parameters(&model), info.params, "{}", info.name);
            assert_eq!(model.family(), info.family);
            assert_eq!(model.input_spec(), info.input);
        }
        let model = create("resnet18", 7, &device).unwrap();
        assert_eq!(model.num_classes(), 7);
        assert!(matches!(
            create("resnet18", 0, &device),
            Err(RegistryError::Config(_))
        ));
    }
}

#[cfg(test)]
mod lazy_tests {
    use super::*;
    use crate::{ImportHooks, materialised_parameters};

    /// Building a model to load into draws no random weights: every parameter is still lazy
    /// (Burn initialises a `Param` at its first `val()`, `shape()` or `dims()`), so loading a
    /// file costs the file, not an initialisation thrown away. All 85 models, at their
    /// published class count and at 10 classes (a new head); a model that reads a
    /// parameter while building shows up here by name.
    #[test]
    fn building_a_model_initialises_no_parameter() {
        let device = crate::device::test_device();
        let mut failures = Vec::new();
        for info in models() {
            for classes in [info.num_classes, 10] {
                let model = info
                    .create(classes, &device)
                    .expect("registry models build");
                assert!(crate::num_parameters(&model) > 0, "{}", info.name);
                // What the importer asks of the model before it applies a file's tensors
                // (burn-store's applier itself reads `lazy_shape`).
                let shapes: std::collections::HashMap<_, _> =
                    crate::layers::torch_shapes(&model).into_iter().collect();
                let _ = model.derived_buffers();
                let model = model.conform_to(&shapes, &device).expect("its own shapes");
                let found = materialised_parameters(&model);
                if !found.is_empty() {
                    failures.push(format!(
                        "{} ({classes} classes): {} ({})",
                        info.name,
                        found.len(),
                        found[..found.len().min(4)].join(", ")
                    ));
                }
            }
        }
        assert!(failures.is_empty(), "{}", failures.join("\n"));
    }

    /// The lazy shape walk names and shapes every tensor exactly as burn-store's `collect`
    /// (which materialises them) does, in PyTorch's layout and in Burn's: one model of each
    /// family, and the row-blocked VGG head.
    #[test]
    fn lazy_shapes_are_burn_stores() {
        use crate::layers::{ShapeNames, model_shapes};
        use burn::store::{BurnToPyTorchAdapter, ModuleSnapshot};
        let device = crate::device::test_device();
        let names = [
            "lenet5",
            "alexnet",
            "vgg11",
            "resnet18",
            "googlenet",
            "inception_v3",
            "squeezenet1_1",
            "mobilenet_v2",
            "mobilenet_v3_small",
            "shufflenet_v2_x0_5",
            "mnasnet0_5",
            "efficientnet_b0",
            "regnet_y_400mf",
            "densenet121",
            "convnext_tiny",
            "vit_b_32",
            "swin_t",
            "swin_v2_t",
            "maxvit_t",
        ];
        for name in names {
            let model = create(name, 10, &device).expect("registry model");
            let lazy_torch = model_shapes(&model, ShapeNames::PyTorch);
            let lazy_burn = model_shapes(&model, ShapeNames::Burn);
            let collected = |snapshot: Vec<burn::store::burn_pack::Tensor>| {
                snapshot
                    .into_iter()
                    .map(|t| (t.name.clone(), t.shape.to_vec()))
                    .collect::<std::collections::BTreeMap<_, _>>()
            };
            let torch = collected(model.collect(None, Some(Box::new(BurnToPyTorchAdapter)), true));
            let burn = collected(model.collect(None, None, false));
            assert_eq!(lazy_torch, torch, "{name}");
            assert_eq!(lazy_burn, burn, "{name}");
        }
    }

    /// The check itself sees a parameter that was read.
    #[test]
    fn a_read_parameter_counts_as_materialised() {
        let device = crate::device::test_device();
        let model = create("resnet18", 10, &device).expect("resnet18");
        let crate::Model::ResNet(net) = &model else {
            panic!("resnet18 is a ResNet")
        };
        let _ = net.conv1.weight.val();
        assert_eq!(materialised_parameters(&model), ["ResNet.conv1.weight"]);
    }
}
