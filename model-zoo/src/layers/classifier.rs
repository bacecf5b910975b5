//! The classifier head, one for every family (timm's `layers/classifier.py` is the model): a
//! single `Linear` (`fc`, `head`, `classifier`) or torchvision's `nn.Sequential` of dropout,
//! linear and activation slots whose last linear layer is the one a new task replaces.
//! [`ClassifierHead`] says what the head is; [`classifier_head!`] writes
//! [`crate::Architecture`]'s `num_classes`, `reset_classifier` and `classifier_group` for a model
//! whose head is one field, so that no family writes them again.

use burn::module::{Module, ParamGroup};
use burn::nn::Linear;
use burn::tensor::Device;

use super::{VectorLayer, last_linear, last_linear_group, new_classifier, replace_last_linear};
use crate::error::ConfigError;

/// A model's classifier: its class count, its parameters (a parameter group, which feature
/// extraction leaves trainable), and a fresh copy for another class count.
pub trait ClassifierHead: Module + Sized {
    /// Outputs of the last linear layer, read without initialising a lazy parameter.
    fn num_classes(&self) -> usize;

    /// The parameters [`Self::reset`] replaces.
    fn param_group(&self) -> ParamGroup;

    /// The head for `num_classes` classes, its last linear layer initialised as PyTorch's
    /// `nn.Linear` is and the rest kept; zero classes are a [`ConfigError`] naming `model`.
    fn reset(self, model: &str, num_classes: usize, device: &Device) -> Result<Self, ConfigError>;
}

impl ClassifierHead for Linear {
    fn num_classes(&self) -> usize {
        self.weight.lazy_shape().dims::<2>()[1]
    }

    fn param_group(&self) -> ParamGroup {
        ParamGroup::ids_from_module(self.clone())
    }

    fn reset(self, model: &str, num_classes: usize, device: &Device) -> Result<Self, ConfigError> {
        let [num_features, _] = self.weight.lazy_shape().dims::<2>();
        new_classifier(model, num_features, num_classes, device)
    }
}

/// torchvision's `classifier` sequences (AlexNet, VGG, MobileNet, EfficientNet, MNASNet,
/// ConvNeXt, MaxViT): the last linear slot is the classifier.
impl ClassifierHead for Vec<VectorLayer> {
    fn num_classes(&self) -> usize {
        last_linear(self).map_or(0, |(_, _, out)| out)
    }

    fn param_group(&self) -> ParamGroup {
        last_linear_group(self)
    }

    fn reset(self, model: &str, num_classes: usize, device: &Device) -> Result<Self, ConfigError> {
        replace_last_linear(self, model, num_classes, device)
    }
}

/// `num_classes`, `reset_classifier` and `classifier_group` of [`crate::Architecture`] for a
/// model whose classifier is the [`ClassifierHead`] at the field path given (`fc`,
/// `heads.head`), inside the trait's `impl`. Errors name the model by `display_name()`.
macro_rules! classifier_head {
    ($($field:ident).+) => {
        fn num_classes(&self) -> usize {
            $crate::layers::ClassifierHead::num_classes(&self.$($field).+)
        }

        fn reset_classifier(
            mut self,
            num_classes: usize,
            device: &burn::tensor::Device,
        ) -> Result<Self, $crate::error::ConfigError> {
            let name = self.display_name().to_string();
            self.$($field).+ =
                $crate::layers::ClassifierHead::reset(self.$($field).+, &name, num_classes, device)?;
            Ok(self)
        }

        fn classifier_group(&self) -> burn::module::ParamGroup {
            $crate::layers::ClassifierHead::param_group(&self.$($field).+)
        }
    };
}
pub(crate) use classifier_head;
