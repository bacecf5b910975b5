//! The trunk half of [`crate::Architecture`] that families with the same trunk share:
//! [`image_features!`] for torchvision's `features` sequence of [`crate::layers::ImageLayer`]s.

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
