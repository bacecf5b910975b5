//! The classifier head, one for every family (timm's `layers/classifier.py` is the model): a
//! single `Linear` (`fc`, `head`, `classifier`) or torchvision's `nn.Sequential` of dropout,
//! linear and activation slots whose last linear layer is the one a new task replaces.
//! [`ClassifierHead`] says what the head is; [`classifier_head!`] writes
//! [`crate::Architecture`]'s `num_classes`, `reset_classifier`, `classifier_group` and
//! `without_head` for a model whose head is one field, so that no family writes them again.
//!
//! A head can be removed (timm's `features_only` backbone, [`crate::FeatureExtractor`]): a
//! single layer is held as an `Option<Linear>` that becomes `None`, a sequence is cut after its
//! pre-logits slots. A removed head has no parameters and no keys, classifies nothing (its
//! [`ClassifierHead::classify`] passes the pre-logits through) and has zero classes.

use burn::module::{Module, ParamGroup};
use burn::nn::Linear;
use burn::tensor::{Device, Tensor};

use super::{
    VectorLayer, last_linear, last_linear_group, new_classifier, replace_last_linear,
    run_vector_layers,
};
use crate::error::ConfigError;

/// A model's classifier: its class count, its parameters (a parameter group, which feature
/// extraction leaves trainable), and a fresh copy for another class count.
pub trait ClassifierHead: Module + Sized {
    /// Outputs of the last linear layer, read without initialising a lazy parameter.
    fn num_classes(&self) -> usize;

    /// The parameters [`Self::reset`] replaces.
    fn param_group(&self) -> ParamGroup;

    /// The head for `num_classes` classes, its last linear layer initialised as PyTorch's
    /// `nn.Linear` is and the rest kept; zero classes, or a removed head, are a [`ConfigError`]
    /// naming `model`.
    fn reset(self, model: &str, num_classes: usize, device: &Device) -> Result<Self, ConfigError>;

    /// The logits of the pre-logits `x`; `x` itself once the head is removed.
    ///
    /// # Shapes
    /// - input: `[batch, pre-logits]`
    /// - output: `[batch, num_classes]` (`[batch, pre-logits]` once removed)
    fn classify(&self, x: Tensor<2>) -> Tensor<2>;

    /// The head without its classifying layers: a single layer removed, a sequence cut to its
    /// first `keep` slots (those the pre-logits are taken after).
    fn removed(self, keep: usize) -> Self;

    /// timm's `forward_head` after pooling: the pre-logits of the pooled features `x` (after
    /// the first `keep` slots of a sequence, ConvNeXt's LayerNorm), returned where
    /// `pre_logits`, else classified by the rest.
    ///
    /// # Shapes
    /// - input: `[batch, num_features]`
    /// - output: `[batch, num_classes]` (the pre-logits where `pre_logits` or removed)
    fn forward_pooled(&self, x: Tensor<2>, keep: usize, pre_logits: bool) -> Tensor<2> {
        let _ = keep;
        if pre_logits { x } else { self.classify(x) }
    }
}

/// A single classifier layer (`fc`, `head`), `None` once removed.
impl ClassifierHead for Option<Linear> {
    fn num_classes(&self) -> usize {
        self.as_ref()
            .map_or(0, |fc| fc.weight.lazy_shape().dims::<2>()[1])
    }

    fn param_group(&self) -> ParamGroup {
        self.as_ref().map_or_else(
            || ParamGroup::from_ids(Vec::new()),
            |fc| ParamGroup::ids_from_module(fc.clone()),
        )
    }

    fn reset(self, model: &str, num_classes: usize, device: &Device) -> Result<Self, ConfigError> {
        let fc = self.ok_or_else(|| removed_head(model))?;
        let [num_features, _] = fc.weight.lazy_shape().dims::<2>();
        new_classifier(model, num_features, num_classes, device).map(Some)
    }

    fn classify(&self, x: Tensor<2>) -> Tensor<2> {
        match self {
            Some(fc) => fc.forward(x),
            None => x,
        }
    }

    fn removed(self, _keep: usize) -> Self {
        None
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
        if last_linear(&self).is_none() {
            return Err(removed_head(model));
        }
        replace_last_linear(self, model, num_classes, device)
    }

    fn classify(&self, x: Tensor<2>) -> Tensor<2> {
        run_vector_layers(self, x)
    }

    fn removed(mut self, keep: usize) -> Self {
        self.truncate(keep);
        self
    }

    fn forward_pooled(&self, x: Tensor<2>, keep: usize, pre_logits: bool) -> Tensor<2> {
        let (before, after) = self.split_at(keep.min(self.len()));
        let x = run_vector_layers(before, x);
        if pre_logits {
            x
        } else {
            run_vector_layers(after, x)
        }
    }
}

/// The error of resetting a head that [`crate::Architecture::without_head`] removed.
pub(crate) fn removed_head(model: &str) -> ConfigError {
    ConfigError::NoClassifier {
        model: model.to_string(),
    }
}

/// `num_classes`, `reset_classifier`, `classifier_group` and `without_head` of
/// [`crate::Architecture`] for a model whose classifier is the [`ClassifierHead`] at the field
/// path given (`fc`, `heads.head`), inside the trait's `impl`; `keep:` the slots of a sequence
/// that `without_head` keeps (those before the pre-logits, none by default); with `pool`, also
/// `forward_head` as global average pooling and the head (timm's `ClassifierHead`). Errors
/// name the model by `display_name()`.
macro_rules! classifier_head {
    ($($field:ident).+) => {
        $crate::layers::classifier_head!($($field).+, keep: 0);
    };
    ($($field:ident).+, pool) => {
        $crate::layers::classifier_head!($($field).+, keep: 0, pool);
    };
    ($($field:ident).+, keep: $keep:expr, pool) => {
        $crate::layers::classifier_head!($($field).+, keep: $keep);

        /// Global average pooling, then the classifier (see `ClassifierHead::forward_pooled`).
        fn forward_head(
            &self,
            features: $crate::features::Features,
            pre_logits: bool,
        ) -> burn::tensor::Tensor<2> {
            let x = features.expect_map(self.display_name());
            let x = $crate::layers::adaptive_avg_pool2d_with(x, [1, 1]).flatten(1, 3);
            $crate::layers::ClassifierHead::forward_pooled(&self.$($field).+, x, $keep, pre_logits)
        }
    };
    ($($field:ident).+, keep: $keep:expr) => {
        fn without_head(mut self) -> Self {
            self.$($field).+ = $crate::layers::ClassifierHead::removed(self.$($field).+, $keep);
            self
        }

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
