//! The trunk half of [`crate::Architecture`] that families with the same trunk share:
//! [`image_features!`] for torchvision's `features` sequence of [`crate::layers::ImageLayer`]s,
//! [`slot_features!`] for a sequence whose slots are a plain layer or a family's block or stage
//! ([`TrunkSlot`]: MobileNet V2, EfficientNet, MNASNet, ConvNeXt).

use burn::tensor::Tensor;

use super::ImageLayer;

/// One slot of a family's trunk sequence (torchvision's `features` or `layers`): a plain layer
/// (the stem, a 1x1 convolution, a downsampling layer) or the family's block or stage of blocks.
pub(crate) trait TrunkSlot {
    /// The slot as a plain layer; `None` for a block or a stage.
    fn layer(&self) -> Option<&ImageLayer>;

    /// [`Self::layer`], mutably.
    fn layer_mut(&mut self) -> Option<&mut ImageLayer>;

    /// The slot's stride and output channels for `channels` input channels.
    fn chain(&self, channels: usize) -> (usize, usize);

    /// # Shapes
    /// - input: `[batch, channels, height, width]`
    /// - output: `[batch, out channels, height / stride, width / stride]`
    fn forward(&self, x: Tensor<4>) -> Tensor<4>;

    /// The slot with each BatchNorm folded into the convolution before it (see
    /// `layers::fold_layers`); the slot itself where it has none.
    fn fold_batchnorm(self) -> Self
    where
        Self: Sized;

    /// Whether [`Self::fold_batchnorm`] changes the slot.
    fn can_fold(&self) -> bool;
}

/// [`TrunkSlot`]'s `layer` and `layer_mut` for a slot enum whose plain layers are the variant
/// given (`Feature::Layer`), inside the trait's `impl`.
macro_rules! slot_layer {
    ($variant:path) => {
        fn layer(&self) -> Option<&$crate::layers::ImageLayer> {
            match self {
                $variant(layer) => Some(layer),
                _ => None,
            }
        }

        fn layer_mut(&mut self) -> Option<&mut $crate::layers::ImageLayer> {
            match self {
                $variant(layer) => Some(layer),
                _ => None,
            }
        }
    };
}
pub(crate) use slot_layer;

/// Each slot's `(stride, output channels)`, from an RGB input.
pub(crate) fn slot_elements<S: TrunkSlot>(slots: &[S]) -> Vec<(usize, usize)> {
    let mut channels = 3;
    slots
        .iter()
        .map(|slot| {
            let (stride, out) = slot.chain(channels);
            channels = out;
            (stride, out)
        })
        .collect()
}

/// `input_conv`, `input_conv_mut`, `feature_info` and `forward_features_tapped` of
/// [`crate::Architecture`] for a model whose trunk is the sequence of [`TrunkSlot`]s in `field`
/// (keyed by the field's name), its input convolution in the first slot, at the key given;
/// with `fold`, also `can_fold_batchnorm` and `fold_batchnorm`, slot by slot. The stages are
/// the slots before each downsampling one after the first, and the last (timm's and
/// torchvision's nodes).
macro_rules! slot_features {
    ($field:ident, stem: $stem:literal $(, $fold:ident)?) => {
        fn input_conv(&self) -> (&'static str, &burn::nn::conv::Conv2d) {
            (
                $stem,
                $crate::layers::stem_conv(
                    self.$field
                        .first()
                        .and_then($crate::layers::TrunkSlot::layer)
                        .and_then($crate::layers::ImageLayer::first_conv),
                ),
            )
        }

        fn input_conv_mut(&mut self) -> &mut burn::nn::conv::Conv2d {
            $crate::layers::stem_conv(
                self.$field
                    .first_mut()
                    .and_then($crate::layers::TrunkSlot::layer_mut)
                    .and_then($crate::layers::ImageLayer::first_conv_mut),
            )
        }

        fn feature_info(&self) -> Vec<$crate::features::FeatureInfo> {
            let elements = $crate::layers::slot_elements(&self.$field);
            $crate::features::sequence_info(stringify!($field), &elements, 1)
        }

        fn forward_features_tapped(
            &self,
            x: burn::tensor::Tensor<4>,
            taps: &mut $crate::features::Taps,
        ) -> Option<$crate::features::Features> {
            let ends = taps.ends(|| $crate::layers::slot_elements(&self.$field));
            $crate::features::run_sequence(&self.$field, x, &ends, 0, taps, |slot, x| {
                $crate::layers::TrunkSlot::forward(slot, x)
            })
            .map($crate::features::Features::Map)
        }

        $($crate::layers::slot_features!(@$fold $field);)?
    };
    (@fold $field:ident) => {
        fn can_fold_batchnorm(&self) -> bool {
            self.$field.iter().any($crate::layers::TrunkSlot::can_fold)
        }

        fn fold_batchnorm(self) -> Self {
            Self {
                $field: self
                    .$field
                    .into_iter()
                    .map($crate::layers::TrunkSlot::fold_batchnorm)
                    .collect(),
                ..self
            }
        }
    };
}
pub(crate) use slot_features;

/// `input_conv`, `input_conv_mut`, `feature_info`, `forward_features_tapped`,
/// `can_fold_batchnorm` and `fold_batchnorm` of [`crate::Architecture`] for a model whose trunk
/// is torchvision's `features` sequence as a `features: Vec<ImageLayer>` field (AlexNet, VGG,
/// MobileNet V3), its input convolution at the key given (`features.0`, or `features.0.0` where
/// the first slot is a `Conv2dNormActivation`). The stages are `features.N` before each
/// downsampling layer after the first slot, and the last (timm's and torchvision's nodes).
macro_rules! image_features {
    (stem: $stem:literal) => {
        fn input_conv(&self) -> (&'static str, &burn::nn::conv::Conv2d) {
            (
                $stem,
                $crate::layers::stem_conv(
                    self.features
                        .first()
                        .and_then($crate::layers::ImageLayer::first_conv),
                ),
            )
        }

        fn input_conv_mut(&mut self) -> &mut burn::nn::conv::Conv2d {
            $crate::layers::stem_conv(
                self.features
                    .first_mut()
                    .and_then($crate::layers::ImageLayer::first_conv_mut),
            )
        }

        fn feature_info(&self) -> Vec<$crate::features::FeatureInfo> {
            let elements = $crate::layers::ImageLayer::elements(&self.features, 3);
            $crate::features::sequence_info("features", &elements, 1)
        }

        fn forward_features_tapped(
            &self,
            x: burn::tensor::Tensor<4>,
            taps: &mut $crate::features::Taps,
        ) -> Option<$crate::features::Features> {
            let ends = taps.ends(|| $crate::layers::ImageLayer::elements(&self.features, 3));
            $crate::layers::run_image_layers_tapped(&self.features, x, &ends, 0, taps)
                .map($crate::features::Features::Map)
        }

        fn can_fold_batchnorm(&self) -> bool {
            $crate::layers::ImageLayer::can_fold(&self.features)
        }

        fn fold_batchnorm(self) -> Self {
            Self {
                features: $crate::layers::fold_layers(self.features),
                ..self
            }
        }
    };
}
pub(crate) use image_features;
