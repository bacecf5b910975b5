//! [`Model`]: any model of the zoo behind one type, as the registry builds it.

use burn::module::{Module, ModuleVisitor, Param, ParamGroup};
use burn::store::ModuleSnapshot;
use burn::tensor::{Device, Tensor};

use crate::alexnet::AlexNet;
use crate::device::max_tensor_bytes;
use crate::error::{ConfigError, DeviceError, InputError, InputSpec};
use crate::googlenet::{GoogLeNet, GoogLeNetCifar};
use crate::layers::VectorLayer;
use crate::lenet::LeNet5;
use crate::registry::Family;
use crate::resnet::ResNet;
use crate::vgg::Vgg;

/// Any model of the zoo. [`crate::create`] returns one; each family's own type (e.g.
/// [`ResNet`]) is inside, for callers who want its specific API.
///
/// Enum variants add nothing to parameter paths, so a `Model` saves, loads and imports with
/// exactly the keys of the model inside it.
// A `Model` is held once, never in bulk, so the size of its largest variant does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Module, Debug)]
pub enum Model {
    /// AlexNet, torchvision's and the zoo's half-width and CIFAR variants.
    AlexNet(AlexNet),
    /// GoogLeNet.
    GoogLeNet(GoogLeNet),
    /// GoogLeNet for 32x32 input.
    GoogLeNetCifar(GoogLeNetCifar),
    /// LeNet-5.
    LeNet5(LeNet5),
    /// ResNet, ResNeXt and Wide ResNet.
    ResNet(ResNet),
    /// VGG, with and without BatchNorm.
    Vgg(Vgg),
}

/// Calls the same method on whichever model is inside.
macro_rules! dispatch {
    ($self:expr, $model:ident => $body:expr) => {
        match $self {
            Model::AlexNet($model) => $body,
            Model::GoogLeNet($model) => $body,
            Model::GoogLeNetCifar($model) => $body,
            Model::LeNet5($model) => $body,
            Model::ResNet($model) => $body,
            Model::Vgg($model) => $body,
        }
    };
}

impl Model {
    /// The family of the model inside.
    pub fn family(&self) -> Family {
        match self {
            Model::AlexNet(_) => Family::AlexNet,
            Model::GoogLeNet(_) | Model::GoogLeNetCifar(_) => Family::GoogLeNet,
            Model::LeNet5(_) => Family::LeNet,
            Model::ResNet(_) => Family::ResNet,
            Model::Vgg(_) => Family::Vgg,
        }
    }

    /// What this model accepts: channels and smallest spatial size.
    pub fn input_spec(&self) -> InputSpec {
        dispatch!(self, m => m.input_spec())
    }

    /// Logits.
    ///
    /// # Shapes
    /// - input: `[batch, 3, height, width]`, at least [`Self::input_spec`]'s size
    /// - output: `[batch, num_classes]`
    ///
    /// # Panics
    /// On an input that [`Self::try_forward`] rejects, with the same message.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<2> {
        dispatch!(self, m => m.forward(x))
    }

    /// Logits, or an error naming what is wrong with the input (channels, size, empty batch),
    /// or what the input's device cannot hold: a parameter or the input over its limit on one
    /// buffer (see [`Self::check_device`]).
    pub fn try_forward(&self, x: Tensor<4>) -> Result<Tensor<2>, InputError> {
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
        dispatch!(self, m => m.try_forward(x))
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

    /// Pooled features before the classifier.
    ///
    /// # Shapes
    /// - input: `[batch, 3, height, width]`
    /// - output: `[batch, num_features]`
    pub fn forward_features(&self, x: Tensor<4>) -> Tensor<2> {
        dispatch!(self, m => m.forward_features(x))
    }

    /// Width of the pooled features, the classifier's input.
    pub fn num_features(&self) -> usize {
        dispatch!(self, m => m.num_features())
    }

    /// Classes of the current classifier.
    pub fn num_classes(&self) -> usize {
        dispatch!(self, m => m.num_classes())
    }

    /// The inference form of the model: BatchNorms folded into the convolutions before them,
    /// which saves a pass over every activation. ResNet, ResNeXt and Wide ResNet are folded
    /// (see [`ResNet::fold_batchnorm`]); the other families are returned as they are. For eval
    /// mode only, and after loading weights.
    pub fn fold_batchnorm(self) -> Self {
        match self {
            Model::ResNet(m) => Model::ResNet(m.fold_batchnorm()),
            other => other,
        }
    }

    /// The parameters of the classifier, the layers [`Self::reset_classifier`] replaces
    /// (`fc`, the last linear of `classifier`, GoogLeNet's `fc` and its aux heads' `fc2`,
    /// LeNet-5's `fc3`); everything else is the backbone. Feature extraction freezes
    /// `ParamGroup::all().exclude(model.classifier_group())`.
    pub fn classifier_group(&self) -> ParamGroup {
        let heads: Vec<ParamGroup> = match self {
            Model::AlexNet(m) => last_linear_group(&m.classifier),
            Model::Vgg(m) => last_linear_group(&m.classifier),
            Model::GoogLeNet(m) => std::iter::once(ParamGroup::ids_from_module(m.fc.clone()))
                .chain(
                    [&m.aux1, &m.aux2]
                        .into_iter()
                        .flatten()
                        .map(|aux| ParamGroup::ids_from_module(aux.fc2.clone())),
                )
                .collect(),
            Model::GoogLeNetCifar(m) => vec![ParamGroup::ids_from_module(m.fc.clone())],
            Model::LeNet5(m) => vec![ParamGroup::ids_from_module(m.fc3.clone())],
            Model::ResNet(m) => vec![ParamGroup::ids_from_module(m.fc.clone())],
        };
        heads
            .into_iter()
            .reduce(|a, b| a.fuse(&b))
            .unwrap_or_else(|| ParamGroup::from_ids(Vec::new()))
    }

    /// Replaces the classifier by a freshly initialised one for `num_classes` classes, keeping
    /// the backbone. The new layer lives on `device`.
    pub fn reset_classifier(
        self,
        num_classes: usize,
        device: &Device,
    ) -> Result<Self, ConfigError> {
        Ok(match self {
            Model::AlexNet(m) => Model::AlexNet(m.reset_classifier(num_classes, device)?),
            Model::GoogLeNet(m) => Model::GoogLeNet(m.reset_classifier(num_classes, device)?),
            Model::GoogLeNetCifar(m) => {
                Model::GoogLeNetCifar(m.reset_classifier(num_classes, device)?)
            }
            Model::LeNet5(m) => Model::LeNet5(m.reset_classifier(num_classes, device)?),
            Model::ResNet(m) => Model::ResNet(m.reset_classifier(num_classes, device)?),
            Model::Vgg(m) => Model::Vgg(m.reset_classifier(num_classes, device)?),
        })
    }
}

/// The size in bytes of a module's largest float tensor.
#[derive(Default)]
struct LargestTensor {
    bytes: u64,
}

impl ModuleVisitor for LargestTensor {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        let bytes = param.shape().num_elements() as u64 * param.val().dtype().size() as u64;
        self.bytes = self.bytes.max(bytes);
    }
}

fn last_linear_group(layers: &[VectorLayer]) -> Vec<ParamGroup> {
    layers
        .iter()
        .rev()
        .find_map(|layer| match layer {
            VectorLayer::Linear(linear) => Some(ParamGroup::ids_from_module(linear.clone())),
            VectorLayer::BlockedLinear(linear) => Some(ParamGroup::ids_from_module(linear.clone())),
            _ => None,
        })
        .into_iter()
        .collect()
}

impl From<ResNet> for Model {
    fn from(model: ResNet) -> Self {
        Model::ResNet(model)
    }
}
