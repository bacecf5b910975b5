//! Parameter counting as PyTorch reports it.

use burn::module::{Module, ModuleVisitor, Param};
use burn::tensor::Tensor;

/// The number of learnable parameters, as `sum(p.numel() for p in model.parameters())` counts
/// them in PyTorch.
///
/// Burn's [`Module::num_params`] also counts BatchNorm's running mean and variance, which
/// PyTorch keeps as buffers; this count leaves them out, so it equals torchvision's published
/// numbers (25,557,032 for ResNet-50).
pub fn num_parameters<M: Module>(module: &M) -> usize {
    let mut counter = ParameterCounter::default();
    module.visit(&mut counter);
    counter.count
}

/// The learnable parameters `module` holds as tensors already (by path, Burn's names), as
/// opposed to lazy ones that Burn initialises at their first read. A model built from its
/// configuration has none, so loading a file into it costs the file and no random draws; the
/// registry's tests check it for every model. BatchNorm's running statistics are left out:
/// they are made from PyTorch's zeros and ones, never random.
pub fn materialised_parameters<M: Module>(module: &M) -> Vec<String> {
    let mut counter = ParameterCounter::default();
    module.visit(&mut counter);
    counter.materialised
}

/// Names of the non-learnable state that burn visits like parameters.
const BUFFERS: [&str; 2] = ["running_mean", "running_var"];

#[derive(Default)]
struct ParameterCounter {
    path: Vec<String>,
    count: usize,
    materialised: Vec<String>,
}

impl ModuleVisitor for ParameterCounter {
    fn enter_module(&mut self, name: &str, _container_type: &str) {
        self.path.push(name.to_string());
    }

    fn exit_module(&mut self, _name: &str, _container_type: &str) {
        self.path.pop();
    }

    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        let is_buffer = self
            .path
            .last()
            .is_some_and(|name| BUFFERS.contains(&name.as_str()));
        if !is_buffer {
            // `lazy_shape`: counting draws no random weights.
            self.count += param.lazy_shape().num_elements();
            if param.is_initialized() {
                self.materialised.push(self.path.join("."));
            }
        }
    }
}
