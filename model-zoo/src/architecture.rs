//! The two traits every family implements: [`Architecture`], the model's public API (forward,
//! features, classifier, folding), and [`ImportHooks`], what the importer needs to know about it
//! (which keys are the classifier, which parts are optional, which old spellings to rename, how
//! to conform to a file's layout), so that [`crate::Model`] dispatches once and `zoo-import` has
//! no per-family code.

use std::collections::HashMap;

use burn::module::{Module, Param, ParamGroup};
use burn::nn::conv::Conv2d;
use burn::tensor::{Device, Tensor, TensorData};

use crate::error::{ConfigError, InputError, InputSpec};
use crate::family::Family;
use crate::features::{FeatureInfo, Features, Taps};

/// An old spelling of some keys, as torchvision's `_load_from_state_dict` renames it: keys
/// matching the regex `old` become `replacement` (with `$1`-style groups). A file with keys
/// matching `old` and keys matching `current` (the spelling the model has) mixes the two, which
/// no published or saved file does: the importer refuses it rather than guess.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyRename {
    /// Regex of the old spelling, anchored as needed.
    pub old: &'static str,
    /// What a match becomes.
    pub replacement: &'static str,
    /// Regex that finds the current spelling in a key.
    pub current: &'static str,
}

/// A tensor torchvision keeps in the state_dict although the model derives it from its
/// configuration (Swin's `relative_position_index` and V2's `relative_coords_table`). The
/// importer checks a file's copy against the model's own values and loads nothing from it; a
/// file without it (one the zoo saved) loads all the same.
#[derive(Debug, Clone, PartialEq)]
pub struct DerivedBuffer {
    /// The torchvision key.
    pub key: String,
    /// Its shape.
    pub shape: Vec<usize>,
    /// Its values in C order, as `f64` (integer indices exactly).
    pub values: Vec<f64>,
}

/// The most input channels [`Architecture::with_in_chans`] builds a model for (hyperspectral
/// images have a few hundred bands), so that a damaged configuration cannot ask for a weight
/// of billions of values.
pub const MAX_IN_CHANS: usize = 1024;

/// What every model of the zoo is: a Burn [`Module`] that maps `[batch, 3, height, width]`
/// images to `[batch, num_classes]` logits, with torchvision's state_dict keys.
///
/// ```no_run
/// use model_zoo::Architecture;
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let device = model_zoo::Backend::Flex.device()?;
/// let model = model_zoo::resnet::resnet18(10, &device)?;
/// let logits = model.forward(burn::tensor::Tensor::zeros([1, 3, 64, 64], &device));
/// assert_eq!(logits.dims(), [1, 10]);
/// # Ok(()) }
/// ```
pub trait Architecture: Module + Sized {
    /// The family, for messages and the registry.
    fn family(&self) -> Family;

    /// The model's name in messages (`mobilenet_v3_large`); the family's where the family does
    /// not say which of its models it is.
    fn display_name(&self) -> &str {
        self.family().name()
    }

    /// What this model accepts: channels and smallest spatial size.
    fn input_spec(&self) -> InputSpec;

    /// The convolution that takes the image (ViT's patch embedding), with its torchvision key
    /// prefix (`conv1`, `features.0.0`): its input channels are the model's, and
    /// [`Self::with_in_chans`] and the importer adapt it for images of other than 3 channels.
    fn input_conv(&self) -> (&'static str, &Conv2d);

    /// [`Self::input_conv`], to replace its weight.
    fn input_conv_mut(&mut self) -> &mut Conv2d;

    /// The input channels (3 for RGB), [`Self::input_conv`]'s.
    fn in_chans(&self) -> usize {
        self.input_conv().1.weight.lazy_shape().dims::<4>()[1]
    }

    /// The model for images of `in_chans` channels (timm's `in_chans`): the input convolution's
    /// weight adapted as timm's `adapt_input_conv` does (1 channel: summed over RGB; more:
    /// RGB repeated and scaled by `3 / in_chans`; see [`crate::layers::adapt_input_conv`]), so
    /// that pretrained weights carry over; call it after loading them, or build the model with
    /// those channels and let `zoo-import` adapt a 3-channel file the same way. An error for
    /// zero or over [`MAX_IN_CHANS`] channels, a weight that cannot be adapted, or an input transform (GoogLeNet's and
    /// Inception v3's `transform_input` is for RGB).
    fn with_in_chans(mut self, in_chans: usize) -> Result<Self, ConfigError> {
        let from = self.in_chans();
        if in_chans == from {
            return Ok(self);
        }
        let invalid = |expected: &'static str, model: &Self| ConfigError::Invalid {
            model: model.display_name().to_string(),
            field: "in_chans",
            value: in_chans.to_string(),
            expected,
        };
        if in_chans > MAX_IN_CHANS {
            return Err(invalid("at most 1024 input channels", &self));
        }
        if self.transform_input() {
            return Err(invalid(
                "transform_input normalises RGB: turn it off for other channel counts",
                &self,
            ));
        }
        let conv = self.input_conv_mut();
        let weight = conv.weight.val();
        let device = weight.device();
        let dims: [usize; 4] = weight.dims();
        let values = weight
            .into_data()
            .convert::<f32>()
            .try_into_vec::<f32>()
            .unwrap_or_else(|e| unreachable!("converted to f32 above: {e:?}"));
        let (adapted, shape) = match crate::layers::adapt_input_conv(&values, dims, in_chans) {
            Ok(adapted) => adapted,
            Err(_) => {
                return Err(invalid(
                    "timm's adapt_input_conv goes from 3 channels to any count",
                    &self,
                ));
            }
        };
        let conv = self.input_conv_mut();
        conv.weight =
            Param::from_tensor(Tensor::from_data(TensorData::new(adapted, shape), &device));
        Ok(self)
    }

    /// The last features before the head, unpooled (timm's `forward_features`): the last
    /// stage's map for the convolutional families and Swin, ViT's tokens. Pooled, they are
    /// `forward_head(features, true)`; `forward_head(forward_features(x), false)` is the logits.
    /// The input is not checked (as `forward`, a wrong one panics in the layer it reaches).
    ///
    /// # Shapes
    /// - input: `[batch, 3, height, width]`, at least [`Self::input_spec`]'s size
    /// - output: see [`Features`]
    fn forward_features(&self, x: Tensor<4>) -> Features {
        self.forward_features_tapped(x, &mut Taps::none())
            .unwrap_or_else(crate::features::no_stop)
    }

    /// The head on [`Self::forward_features`]' output (timm's `forward_head`): pooling and the
    /// classifier, or with `pre_logits` the pooled features the classifier takes
    /// (`[batch, num_features]`, what transfer learning and embeddings use).
    ///
    /// # Shapes
    /// - input: this model's [`Features`]
    /// - output: `[batch, num_classes]`, or `[batch, num_features]` with `pre_logits`
    ///
    /// # Panics
    /// On features of the other kind (tokens for a convolutional head).
    fn forward_head(&self, features: Features, pre_logits: bool) -> Tensor<2>;

    /// The pooled features the classifier takes, `forward_head(forward_features(x), true)`:
    /// an image embedding, the input of a new head.
    ///
    /// # Shapes
    /// - input: `[batch, 3, height, width]`, at least [`Self::input_spec`]'s size
    /// - output: `[batch, num_features]`
    fn forward_pooled(&self, x: Tensor<4>) -> Tensor<2> {
        self.forward_head(self.forward_features(x), true)
    }

    /// [`Self::forward_features`], keeping the outputs of the stages `taps` asks for; `None`
    /// where `taps` stopped the forward after its last asked-for stage. The one forward of the
    /// model, which every other forward runs.
    ///
    /// # Shapes
    /// - input: `[batch, 3, height, width]`, at least [`Self::input_spec`]'s size
    /// - output: see [`Features`]
    fn forward_features_tapped(&self, x: Tensor<4>, taps: &mut Taps) -> Option<Features>;

    /// Logits, or an error naming what is wrong with the input (channels, size, empty batch).
    ///
    /// # Shapes
    /// - input: `[batch, 3, height, width]`, at least [`Self::input_spec`]'s size
    /// - output: `[batch, num_classes]`
    fn try_forward(&self, x: Tensor<4>) -> Result<Tensor<2>, InputError> {
        self.input_spec().check(self.display_name(), x.dims())?;
        Ok(self
            .forward_tapped(x, &mut Taps::none())
            .unwrap_or_else(crate::features::no_stop))
    }

    /// The stages whose feature maps [`Self::forward_intermediates`] returns, in the order the
    /// forward reaches them (timm's `feature_info`): each with torchvision's module path, its
    /// channels and its reduction. Index `i` of `forward_intermediates` is entry `i` here.
    fn feature_info(&self) -> Vec<FeatureInfo>;

    /// The logits, with the outputs of the stages `taps` asks for kept in it; `None` where
    /// `taps` stopped the forward after its last asked-for stage. The input is not checked:
    /// call [`Self::try_forward`], [`Self::forward_intermediates`] or
    /// [`Self::forward_with_intermediates`].
    ///
    /// # Shapes
    /// - input: `[batch, 3, height, width]`, at least [`Self::input_spec`]'s size
    /// - output: `[batch, num_classes]`
    fn forward_tapped(&self, x: Tensor<4>, taps: &mut Taps) -> Option<Tensor<2>> {
        let features = self.forward_features_tapped(x, taps)?;
        Some(self.forward_head(features, false))
    }

    /// The feature maps of the stages `indices` of [`Self::feature_info`] (every stage where
    /// `indices` is empty, as timm's `indices=None`), in the order asked; the forward stops
    /// after the last of them. Maps are NCHW for every family: Swin's channels-last stages are
    /// permuted, and ViT's tokens (class token dropped) laid out on the patch grid, as timm's
    /// `output_fmt='NCHW'`. An error for an input the model rejects or an index it lacks.
    ///
    /// # Shapes
    /// - input: `[batch, 3, height, width]`, at least [`Self::input_spec`]'s size
    /// - output `k`: `[batch, channels, height / reduction, width / reduction]` of stage
    ///   `indices[k]` (sizes rounded as the model's layers round)
    fn forward_intermediates(
        &self,
        x: Tensor<4>,
        indices: &[usize],
    ) -> Result<Vec<Tensor<4>>, InputError> {
        let name = self.display_name();
        self.input_spec().check(name, x.dims())?;
        let mut taps = Taps::new(name, indices, self.feature_info().len(), true)?;
        let _ = self.forward_tapped(x, &mut taps);
        Ok(taps.into_maps(indices))
    }

    /// The logits and the feature maps of `indices` (as [`Self::forward_intermediates`]) from
    /// one forward.
    ///
    /// # Shapes
    /// - input: `[batch, 3, height, width]`, at least [`Self::input_spec`]'s size
    /// - output: `[batch, num_classes]` and the maps of [`Self::forward_intermediates`]
    fn forward_with_intermediates(
        &self,
        x: Tensor<4>,
        indices: &[usize],
    ) -> Result<(Tensor<2>, Vec<Tensor<4>>), InputError> {
        let name = self.display_name();
        self.input_spec().check(name, x.dims())?;
        let mut taps = Taps::new(name, indices, self.feature_info().len(), false)?;
        let logits = self
            .forward_tapped(x, &mut taps)
            .unwrap_or_else(crate::features::no_stop);
        Ok((logits, taps.into_maps(indices)))
    }

    /// Logits.
    ///
    /// # Shapes
    /// - input: `[batch, 3, height, width]`, at least [`Self::input_spec`]'s size
    /// - output: `[batch, num_classes]`
    ///
    /// # Panics
    /// On an input that [`Self::try_forward`] rejects, with the same message.
    fn forward(&self, x: Tensor<4>) -> Tensor<2> {
        crate::error::or_panic(self.try_forward(x))
    }

    /// The model for `[height, width]` inputs, where its input size is fixed
    /// ([`InputSpec::exact`]): ViT's position embedding resized as torchvision's
    /// `interpolate_embeddings` does, MaxViT's attention grids rebuilt. A model that takes any
    /// size is returned as it is. An error names the sizes the model can take.
    fn for_input_size(self, size: [usize; 2]) -> Result<Self, ConfigError> {
        let _ = size;
        Ok(self)
    }

    /// Width of the pooled features, the classifier's input.
    fn num_features(&self) -> usize;

    /// Classes of the current classifier; 0 once [`Self::without_head`] removed it.
    fn num_classes(&self) -> usize;

    /// The model without its classifying layers (timm's `features_only` drops them; see
    /// [`crate::FeatureExtractor`]): the layers [`Self::forward_head`] runs after the
    /// pre-logits, and aux heads, are removed, with their parameters and keys (listed by
    /// [`ImportHooks::head_prefixes`], which the importer then ignores in a file). The trunk,
    /// [`Self::feature_info`] and [`Self::forward_intermediates`] are unchanged;
    /// [`Self::forward`] returns the pre-logits and [`Self::num_classes`] is 0.
    fn without_head(self) -> Self;

    /// Whether the model still has its classifier (see [`Self::without_head`]).
    fn has_head(&self) -> bool {
        self.num_classes() > 0
    }

    /// Replaces the classifier by a freshly initialised one for `num_classes` classes (timm's
    /// `reset_classifier`), keeping the backbone. The new layers live on `device`.
    fn reset_classifier(self, num_classes: usize, device: &Device) -> Result<Self, ConfigError>;

    /// The parameters [`Self::reset_classifier`] replaces; everything else is the backbone.
    /// Feature extraction freezes `ParamGroup::all().exclude(model.classifier_group())`.
    fn classifier_group(&self) -> ParamGroup;

    /// Whether [`Self::fold_batchnorm`] changes this model (it has a convolution followed by
    /// BatchNorm).
    fn can_fold_batchnorm(&self) -> bool {
        false
    }

    /// The inference form: every BatchNorm that follows a convolution folded into it, which
    /// saves a pass over each activation. Same logits in eval mode (checked against PyTorch by
    /// `cargo xtask parity`); not for training, and the keys differ (convolutions gain a bias,
    /// BatchNorms are gone), so fold after loading weights. The identity where
    /// [`Self::can_fold_batchnorm`] is false.
    fn fold_batchnorm(self) -> Self {
        self
    }

    /// Whether the model re-normalises its input to `[-1, 1]` first: torchvision's
    /// `transform_input`, which GoogLeNet and Inception v3 turn on for their pretrained weights
    /// (ported from TensorFlow). A setting, not a weight: a PyTorch file does not hold it (build
    /// the model as the file was trained: [`crate::ModelInfo::create`] for a model trained from
    /// scratch, [`crate::ModelInfo::create_for_weights`] for one fine-tuned from torchvision's
    /// weights), and the zoo's own burnpack files record it. `false` for every other family.
    fn transform_input(&self) -> bool {
        false
    }

    /// The model with [`Self::transform_input`] set to `on`. An error for a family without
    /// the setting when `on` is asked for.
    fn with_transform_input(self, on: bool) -> Result<Self, ConfigError> {
        if on {
            return Err(ConfigError::Invalid {
                model: self.family().name().to_string(),
                field: "transform_input",
                value: "true".into(),
                expected: "only GoogLeNet and Inception v3 have an input transform",
            });
        }
        Ok(self)
    }
}

/// What the importer needs to know about a model beyond [`Architecture`]: which keys are the
/// classifier, which parts are optional, which old spellings to rename, which buffers the model
/// derives itself, and how to conform to a file's layout. `zoo-import` takes any `ImportHooks`
/// model and has no per-family code; a model defined outside the zoo implements
/// [`Self::classifier_prefixes`] and keeps the defaults of the rest.
pub trait ImportHooks: Architecture {
    /// Key prefixes (torchvision names, with the trailing dot) of the classifier, which a
    /// partial load may leave as initialised when its shape differs.
    fn classifier_prefixes(&self) -> &'static [&'static str];

    /// Key prefixes of everything [`Architecture::without_head`] removes (the classifier
    /// sequence, aux heads): a file's keys under them are ignored by a model without its head.
    /// [`Self::classifier_prefixes`] by default.
    fn head_prefixes(&self) -> &'static [&'static str] {
        self.classifier_prefixes()
    }

    /// Key prefixes (with the trailing dot) of parts a file may hold that this model was built
    /// without, such as GoogLeNet's aux heads: their keys are ignored, not unexpected.
    fn optional_prefixes(&self) -> &'static [&'static str] {
        &[]
    }

    /// Old key spellings that torchvision renames when it loads (DenseNet's `norm.1`), turning
    /// a file's keys into this module's keys. Empty when the names already agree, as for most
    /// families. A file holding both spellings of one rename is refused.
    fn key_renames(&self) -> &'static [KeyRename] {
        &[]
    }

    /// The buffers torchvision saves that this model derives itself (see [`DerivedBuffer`]);
    /// none for most families.
    fn derived_buffers(&self) -> Vec<DerivedBuffer> {
        Vec::new()
    }

    /// Rebuilds the model in the layout a weight file was saved in, where torchvision's
    /// `_load_from_state_dict` does the same (MNASNet's first version); `shapes` maps each of
    /// the file's keys (after [`Self::key_renames`]) to its shape. GoogLeNet and Inception v3
    /// drop their aux heads for a file saved without them (`aux_logits=False`). The default
    /// keeps the model.
    fn conform_to(
        self,
        shapes: &HashMap<String, Vec<usize>>,
        device: &Device,
    ) -> Result<Self, ConfigError> {
        let _ = (shapes, device);
        Ok(self)
    }
}

/// What `zoo-import` needs to know about a model to fill it from a file (see [`Importable`]).
#[derive(Debug, Clone, PartialEq)]
pub struct ImportInfo {
    /// The model's name in messages (a classifier's family, a segmentation model's builder).
    pub name: String,
    /// Key prefix of the convolution that takes the image, whose weight a file of another
    /// channel count is adapted to ([`Architecture::input_conv`]); none where the model does
    /// not adapt one.
    pub input_conv: Option<&'static str>,
    /// Whether the model has its head ([`Architecture::has_head`]): a model without one
    /// ignores a file's keys under [`Self::head_prefixes`].
    pub has_head: bool,
    /// [`ImportHooks::classifier_prefixes`]: what a partial load may leave as initialised.
    pub classifier_prefixes: &'static [&'static str],
    /// [`ImportHooks::head_prefixes`].
    pub head_prefixes: &'static [&'static str],
    /// [`ImportHooks::optional_prefixes`]: parts a file may hold that the model lacks.
    pub optional_prefixes: &'static [&'static str],
    /// [`ImportHooks::key_renames`].
    pub key_renames: &'static [KeyRename],
    /// [`ImportHooks::derived_buffers`].
    pub derived_buffers: Vec<DerivedBuffer>,
    /// [`Architecture::transform_input`], which a saved burnpack file records.
    pub transform_input: bool,
}

/// What `zoo-import` loads weights into and saves: every classifier (any [`ImportHooks`]
/// model, through the blanket implementation) and the segmentation models, which are not
/// classifiers and describe themselves directly.
pub trait Importable: Module + Sized {
    /// What the importer needs to know (see [`ImportInfo`]).
    fn import_info(&self) -> ImportInfo;

    /// [`ImportHooks::conform_to`]: the model rebuilt in a file's layout.
    fn conform_to_file(
        self,
        shapes: &HashMap<String, Vec<usize>>,
        device: &Device,
    ) -> Result<Self, ConfigError> {
        let _ = (shapes, device);
        Ok(self)
    }

    /// [`Architecture::with_transform_input`], from a saved file's record.
    fn with_saved_transform_input(self, on: bool) -> Result<Self, ConfigError> {
        let _ = on;
        Ok(self)
    }
}

impl<M: ImportHooks> Importable for M {
    fn import_info(&self) -> ImportInfo {
        ImportInfo {
            name: self.family().name().to_string(),
            input_conv: Some(self.input_conv().0),
            has_head: self.has_head(),
            classifier_prefixes: self.classifier_prefixes(),
            head_prefixes: self.head_prefixes(),
            optional_prefixes: self.optional_prefixes(),
            key_renames: self.key_renames(),
            derived_buffers: self.derived_buffers(),
            transform_input: self.transform_input(),
        }
    }

    fn conform_to_file(
        self,
        shapes: &HashMap<String, Vec<usize>>,
        device: &Device,
    ) -> Result<Self, ConfigError> {
        self.conform_to(shapes, device)
    }

    fn with_saved_transform_input(self, on: bool) -> Result<Self, ConfigError> {
        self.with_transform_input(on)
    }
}
