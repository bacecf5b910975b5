//! [`Model`]'s methods: each the inside model's (the enum and its `dispatch!` are declared by
//! the family list in [`crate::models`]).

use std::collections::HashMap;

use burn::module::{Module, ModuleVisitor, Param, ParamGroup};
use burn::nn::conv::Conv2d;
use burn::store::ModuleSnapshot;
use burn::tensor::{Device, Tensor};

use crate::architecture::{Architecture, DerivedBuffer, ImportHooks, KeyRename};
use crate::device::max_tensor_bytes;
use crate::error::{ConfigError, DeviceError, InputError, InputSpec};
use crate::family::Family;
use crate::features::{FeatureInfo, Features, Taps};

use super::Model;

/// Every method is the inside model's; `try_forward` first checks that the input's device can
/// hold the model and the input (see [`Model::check_device`]).
impl Architecture for Model {
    fn family(&self) -> Family {
        dispatch!(self, m => m.family())
    }

    fn input_spec(&self) -> InputSpec {
        dispatch!(self, m => m.input_spec())
    }

    fn display_name(&self) -> &str {
        dispatch!(self, m => m.display_name())
    }

    fn forward_features(&self, x: Tensor<4>) -> Features {
        let device = x.device();
        crate::on_cpu_workers(&device, || dispatch!(self, m => m.forward_features(x)))
    }

    fn forward_head(&self, features: Features, pre_logits: bool) -> Tensor<2> {
        let device = match &features {
            Features::Map(x) => x.device(),
            Features::Tokens(x) => x.device(),
        };
        crate::on_cpu_workers(
            &device,
            || dispatch!(self, m => m.forward_head(features, pre_logits)),
        )
    }

    fn forward_features_tapped(&self, x: Tensor<4>, taps: &mut Taps) -> Option<Features> {
        let device = x.device();
        crate::on_cpu_workers(
            &device,
            || dispatch!(self, m => m.forward_features_tapped(x, taps)),
        )
    }

    /// Logits, or an error naming what is wrong with the input (channels, size, empty batch),
    /// or what the input's device cannot hold: a parameter or the input over its limit on one
    /// buffer (see [`Model::check_device`]).
    fn try_forward(&self, x: Tensor<4>) -> Result<Tensor<2>, InputError> {
        let device = x.device();
        self.check_input_device(&x)?;
        crate::on_cpu_workers(&device, || dispatch!(self, m => m.try_forward(x)))
    }

    fn input_conv(&self) -> (&'static str, &Conv2d) {
        dispatch!(self, m => m.input_conv())
    }

    fn input_conv_mut(&mut self) -> &mut Conv2d {
        dispatch!(self, m => m.input_conv_mut())
    }

    fn feature_info(&self) -> Vec<FeatureInfo> {
        dispatch!(self, m => m.feature_info())
    }

    fn forward_tapped(&self, x: Tensor<4>, taps: &mut Taps) -> Option<Tensor<2>> {
        let device = x.device();
        crate::on_cpu_workers(&device, || dispatch!(self, m => m.forward_tapped(x, taps)))
    }

    /// As the trait's, with the device checks of [`Self::try_forward`].
    fn forward_intermediates(
        &self,
        x: Tensor<4>,
        indices: &[usize],
    ) -> Result<Vec<Tensor<4>>, InputError> {
        let device = x.device();
        self.check_input_device(&x)?;
        crate::on_cpu_workers(
            &device,
            || dispatch!(self, m => m.forward_intermediates(x, indices)),
        )
    }

    /// As the trait's, with the device checks of [`Self::try_forward`].
    fn forward_with_intermediates(
        &self,
        x: Tensor<4>,
        indices: &[usize],
    ) -> Result<(Tensor<2>, Vec<Tensor<4>>), InputError> {
        let device = x.device();
        self.check_input_device(&x)?;
        crate::on_cpu_workers(
            &device,
            || dispatch!(self, m => m.forward_with_intermediates(x, indices)),
        )
    }

    fn for_input_size(self, size: [usize; 2]) -> Result<Self, ConfigError> {
        Ok(dispatch!(try_map self, m => m.for_input_size(size)))
    }

    fn num_features(&self) -> usize {
        dispatch!(self, m => m.num_features())
    }

    fn num_classes(&self) -> usize {
        dispatch!(self, m => m.num_classes())
    }

    fn reset_classifier(self, num_classes: usize, device: &Device) -> Result<Self, ConfigError> {
        Ok(dispatch!(try_map self, m => m.reset_classifier(num_classes, device)))
    }

    fn without_head(self) -> Self {
        dispatch!(map self, m => m.without_head())
    }

    fn classifier_group(&self) -> ParamGroup {
        dispatch!(self, m => m.classifier_group())
    }

    fn can_fold_batchnorm(&self) -> bool {
        dispatch!(self, m => m.can_fold_batchnorm())
    }

    fn fold_batchnorm(self) -> Self {
        dispatch!(map self, m => m.fold_batchnorm())
    }

    fn transform_input(&self) -> bool {
        dispatch!(self, m => m.transform_input())
    }

    fn with_transform_input(self, on: bool) -> Result<Self, ConfigError> {
        Ok(dispatch!(try_map self, m => m.with_transform_input(on)))
    }
}

impl ImportHooks for Model {
    fn classifier_prefixes(&self) -> &'static [&'static str] {
        dispatch!(self, m => m.classifier_prefixes())
    }

    fn head_prefixes(&self) -> &'static [&'static str] {
        dispatch!(self, m => m.head_prefixes())
    }

    fn optional_prefixes(&self) -> &'static [&'static str] {
        dispatch!(self, m => m.optional_prefixes())
    }

    fn key_renames(&self) -> &'static [KeyRename] {
        dispatch!(self, m => m.key_renames())
    }

    fn derived_buffers(&self) -> Vec<DerivedBuffer> {
        dispatch!(self, m => m.derived_buffers())
    }

    fn conform_to(
        self,
        shapes: &HashMap<String, Vec<usize>>,
        device: &Device,
    ) -> Result<Self, ConfigError> {
        Ok(dispatch!(try_map self, m => m.conform_to(shapes, device)))
    }
}

impl Model {
    /// Checks that the input's device can hold every parameter and the input in one buffer
    /// each (see [`Model::check_device`]).
    fn check_input_device(&self, x: &Tensor<4>) -> Result<(), InputError> {
        let device = x.device();
        if let Some(limit) = max_tensor_bytes(&device) {
            self.check_limit(limit, &device)?;
            let dims = x.dims().to_vec();
            let bytes = dims.iter().product::<usize>() as u64 * x.dtype().size() as u64;
            if bytes > limit {
                return Err(self
                    .too_large("input", dims, bytes, limit, &device, "use a smaller batch")
                    .into());
            }
        }
        Ok(())
    }

    /// Checks that `device` can hold every parameter of the model in one buffer each, as Burn
    /// binds them: wgpu devices cap a binding (128 MiB on lavapipe and in WebGPU by default).
    /// The zoo keeps its large layers in blocks under 128 MiB (see
    /// [`crate::layers::BlockedLinear`]), so this fails only on a device with a smaller limit,
    /// or for a layer the zoo did not build. Always `Ok` on the CPU backends.
    pub fn check_device(&self, device: &Device) -> Result<(), DeviceError> {
        match max_tensor_bytes(device) {
            Some(limit) => self.check_limit(limit, device),
            None => Ok(()),
        }
    }

    fn check_limit(&self, limit: u64, device: &Device) -> Result<(), DeviceError> {
        // The common case, every tensor within the limit, reads shapes only; the names are
        // collected when one is over.
        let mut largest = LargestTensor::default();
        self.visit(&mut largest);
        if largest.bytes <= limit {
            return Ok(());
        }
        for tensor in self.collect(None, None, true) {
            let bytes = tensor.byte_len() as u64;
            if bytes > limit {
                return Err(self.too_large(
                    &tensor.name,
                    tensor.shape.to_vec(),
                    bytes,
                    limit,
                    device,
                    "this layer cannot run on this device",
                ));
            }
        }
        Ok(())
    }

    fn too_large(
        &self,
        tensor: &str,
        shape: Vec<usize>,
        bytes: u64,
        limit: u64,
        device: &Device,
        advice: &'static str,
    ) -> DeviceError {
        DeviceError::TensorTooLarge {
            model: self.family().name(),
            tensor: tensor.to_string(),
            shape: shape.into(),
            bytes,
            limit,
            device: format!("{device:?}"),
            advice,
        }
    }
}

/// The size in bytes of a module's largest float tensor.
#[derive(Default)]
struct LargestTensor {
    bytes: u64,
}

impl ModuleVisitor for LargestTensor {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        // A parameter not initialised yet is read by shape (it will be `f32`, as every zoo
        // model initialises), so that checking draws no random weights.
        let item = if param.is_initialized() {
            param.val().dtype().size()
        } else {
            std::mem::size_of::<f32>()
        };
        let bytes = param.lazy_shape().num_elements() as u64 * item as u64;
        self.bytes = self.bytes.max(bytes);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::device::test_device as device;

    /// Every model of the registry keeps each tensor within one WebGPU binding (128 MiB), its
    /// largest layers as row blocks (VGG's classifier, RegNet Y 128GF's 1x1 convolutions).
    #[test]
    fn every_tensor_fits_one_webgpu_binding() {
        let device = device();
        for info in crate::models() {
            let model = info.create(info.num_classes, &device).unwrap();
            let mut largest = LargestTensor::default();
            model.visit(&mut largest);
            assert!(
                largest.bytes <= crate::layers::MAX_TENSOR_BYTES as u64,
                "{}: a tensor of {} bytes",
                info.name,
                largest.bytes
            );
        }
    }
}
