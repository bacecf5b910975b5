//! A model as the backbone of a detector or a segmenter: timm's `features_only` model
//! (`timm.create_model(name, features_only=True, out_indices=...)`), the feature maps of chosen
//! stages and nothing of the classifier.
//!
//! ```no_run
//! use model_zoo::{Backend, FeatureExtractor};
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let device = Backend::Flex.device()?;
//! // layer2..layer4 of ResNet-50: strides 8, 16, 32, as a feature pyramid takes them.
//! let backbone = model_zoo::features_only("resnet50", &[2, 3, 4], &device)?;
//! assert_eq!(backbone.channels(), [512, 1024, 2048]);
//! let maps = backbone.forward(burn::tensor::Tensor::zeros([1, 3, 224, 224], &device));
//! assert_eq!(maps[2].dims(), [1, 2048, 7, 7]);
//! # Ok(()) }
//! ```
//!
//! Pretrained weights load into it from the classifier's own file, the head's keys ignored
//! (not unexpected): `zoo_import::pretrained_features(name, "DEFAULT", &[2, 3, 4], &device)`,
//! or any torchvision state_dict with
//! `backbone.map_model(|m| zoo_import::Import::new(path).load_into(m).map(|(m, _)| m))`.

use burn::module::Module;
use burn::tensor::Tensor;

use crate::architecture::Architecture;
use crate::error::{ConfigError, InputError};
use crate::features::FeatureInfo;

/// A model without its head that returns the feature maps of the stages `out_indices` of its
/// [`Architecture::feature_info`] (timm's `FeatureListNet`). Its parameters and keys are the
/// model's without the head's ([`Architecture::without_head`]), so a torchvision state_dict
/// loads into it (the head's keys ignored) and a saved backbone holds no classifier.
#[derive(Module, Debug)]
pub struct FeatureExtractor<M: Module> {
    /// The headless model.
    model: M,
    /// Stages returned, as indices into the model's `feature_info()`, in the order asked.
    #[module(skip)]
    out_indices: Vec<usize>,
}

impl<M: Architecture> FeatureExtractor<M> {
    /// `model` without its head, returning the stages `out_indices` (every stage where it is
    /// empty, as timm's default). An index past the model's stages is a [`ConfigError`].
    pub fn new(model: M, out_indices: &[usize]) -> Result<Self, ConfigError> {
        let stages = model.feature_info().len();
        if let Some(&index) = out_indices.iter().find(|&&i| i >= stages) {
            return Err(ConfigError::OutIndex {
                model: model.display_name().to_string(),
                index,
                stages,
            });
        }
        let out_indices = if out_indices.is_empty() {
            (0..stages).collect()
        } else {
            out_indices.to_vec()
        };
        Ok(Self {
            model: model.without_head(),
            out_indices,
        })
    }

    /// The feature maps of the stages asked for, in that order; an error for an input the
    /// model rejects. The forward stops after the last of them.
    ///
    /// # Shapes
    /// - input: `[batch, in_chans, height, width]`, at least the model's
    ///   [`Architecture::input_spec`] size
    /// - output `k`: `[batch, channels()[k], height / reductions()[k], width / reductions()[k]]`
    ///   (sizes rounded as the model's layers round)
    pub fn try_forward(&self, x: Tensor<4>) -> Result<Vec<Tensor<4>>, InputError> {
        self.model.forward_intermediates(x, &self.out_indices)
    }

    /// [`Self::try_forward`] for an input known to be valid.
    ///
    /// # Shapes
    /// As [`Self::try_forward`].
    ///
    /// # Panics
    /// On an input that [`Self::try_forward`] rejects, with its message.
    pub fn forward(&self, x: Tensor<4>) -> Vec<Tensor<4>> {
        crate::error::or_panic(self.try_forward(x))
    }

    /// The stages returned, in order: torchvision's module path, channels and reduction of
    /// each (timm's `feature_info.get_dicts()`).
    pub fn feature_info(&self) -> Vec<FeatureInfo> {
        let all = self.model.feature_info();
        self.out_indices.iter().map(|&i| all[i].clone()).collect()
    }

    /// Channels of each returned map (timm's `feature_info.channels()`).
    pub fn channels(&self) -> Vec<usize> {
        self.feature_info().iter().map(|f| f.channels).collect()
    }

    /// Reduction (stride) of each returned map (timm's `feature_info.reduction()`).
    pub fn reductions(&self) -> Vec<usize> {
        self.feature_info().iter().map(|f| f.reduction).collect()
    }

    /// The stages returned, as indices into the model's `feature_info()`.
    pub fn out_indices(&self) -> &[usize] {
        &self.out_indices
    }

    /// The headless model (for its [`Architecture`] methods: `input_spec`, `fold_batchnorm`…).
    pub fn model(&self) -> &M {
        &self.model
    }

    /// The headless model, for a loader that takes one ([`Self::map_model`] puts it back).
    pub fn into_model(self) -> M {
        self.model
    }

    /// The extractor with its model changed by `f` (loading weights into it, folding its
    /// BatchNorms, resizing it), the stages kept. The model stays headless.
    pub fn map_model<E>(self, f: impl FnOnce(M) -> Result<M, E>) -> Result<Self, E> {
        Ok(Self {
            model: f(self.model)?.without_head(),
            out_indices: self.out_indices,
        })
    }
}

#[cfg(test)]
mod tests {
    use burn::tensor::{Distribution, Tensor};

    use super::*;
    use crate::architecture::ImportHooks;
    use crate::device::test_device as device;
    use crate::layers::torch_shapes;

    /// On every registered model, the backbone's keys are the classifier's minus exactly the
    /// keys under `head_prefixes` (none of which is left): what a torchvision state_dict holds
    /// beyond the backbone is what the importer ignores, and nothing of the trunk is lost.
    #[test]
    fn every_model_drops_exactly_its_head() {
        let device = device();
        for info in crate::models() {
            let name = info.name;
            let model = info.create_for_weights(info.num_classes, &device).unwrap();
            let full = torch_shapes(&model);
            let stages = model.feature_info();
            let prefixes = model.head_prefixes();
            assert!(model.has_head(), "{name}");
            let backbone = FeatureExtractor::new(model, &[]).unwrap();
            let headless = backbone.model();
            assert!(!headless.has_head(), "{name}");
            assert_eq!(headless.num_classes(), 0, "{name}");
            assert_eq!(backbone.feature_info(), stages, "{name}");
            assert_eq!(
                backbone.out_indices(),
                (0..stages.len()).collect::<Vec<_>>()
            );
            let kept = torch_shapes(headless);
            let in_head = |key: &str| prefixes.iter().any(|p| key.starts_with(p));
            for (key, shape) in &kept {
                assert_eq!(full.get(key), Some(shape), "{name}: {key}");
                assert!(!in_head(key), "{name}: head key {key} kept");
            }
            let dropped: Vec<_> = full.keys().filter(|k| !kept.contains_key(*k)).collect();
            assert!(!dropped.is_empty(), "{name}: nothing dropped");
            for key in dropped {
                assert!(in_head(key), "{name}: {key} dropped but not a head key");
            }
            assert!(
                matches!(
                    headless.clone().reset_classifier(10, &device),
                    Err(ConfigError::NoClassifier { .. })
                ),
                "{name}"
            );
        }
    }

    /// The backbone's maps are the classifier's intermediates, in the order asked; its model's
    /// forward is the classifier's pre-logits.
    #[test]
    fn maps_are_the_classifiers_intermediates() {
        let device = device();
        for (name, size) in [
            ("resnet18", 64),
            ("mobilenet_v3_small", 64),
            ("squeezenet1_1", 64),
            ("googlenet", 64),
            ("convnext_tiny", 64),
        ] {
            let model = crate::create(name, 10, &device).unwrap();
            let x = Tensor::<4>::random([2, 3, size, size], Distribution::Default, &device);
            let indices = [3, 1];
            let want = model.forward_intermediates(x.clone(), &indices).unwrap();
            let pre_logits = model.forward_pooled(x.clone());
            let backbone = FeatureExtractor::new(model, &indices).unwrap();
            let got = backbone.forward(x.clone());
            assert_eq!(got.len(), 2, "{name}");
            for (i, (got, want)) in got.into_iter().zip(want).enumerate() {
                let info = &backbone.feature_info()[i];
                assert_eq!(got.dims()[1], info.channels, "{name}");
                got.into_data().assert_eq(&want.into_data(), true);
            }
            backbone
                .model()
                .forward(x)
                .into_data()
                .assert_approx_eq::<f32>(&pre_logits.into_data(), Default::default());
        }
    }

    #[test]
    fn bad_indices_and_inputs_are_errors() {
        let device = device();
        let err = crate::features_only("resnet18", &[1, 5], &device).unwrap_err();
        assert!(err.to_string().contains("out_indices holds 5"), "{err}");
        assert!(err.to_string().contains("5 stages"), "{err}");
        let backbone = crate::features_only("resnet18", &[4], &device).unwrap();
        assert_eq!(backbone.channels(), [512]);
        assert_eq!(backbone.reductions(), [32]);
        let x = Tensor::<4>::zeros([1, 1, 32, 32], &device);
        assert!(matches!(
            backbone.try_forward(x),
            Err(InputError::Channels { .. })
        ));
    }
}
