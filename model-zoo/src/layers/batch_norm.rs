//! PyTorch's `nn.BatchNorm2d`, the one BatchNorm of every family.
//!
//! Burn's `burn::nn::BatchNorm` has the same parameters, buffers and key names, but two
//! behaviours differ from PyTorch's, and a zoo model must be PyTorch's to the last digit:
//! - in training mode Burn 0.22 adds the *biased* batch variance to `running_var`; PyTorch the
//!   unbiased one (`n / (n - 1)` larger, `n` the values per channel), so after one step of
//!   fine-tuning the running statistics, and every later evaluation, differ;
//! - in eval mode Burn's `batch_norm` makes four passes over the activation (subtract, divide,
//!   multiply, add), 3-6x PyTorch's time on Flex (`cargo xtask bench --ops`); this one makes
//!   one multiply-add with the per-channel scale and shift computed on `[channels]` vectors.
//!
//! Burn has no hook to change either, so the zoo keeps its own module with Burn's field names
//! (`gamma`, `beta`, `running_mean`, `running_var`: the importer's `weight`/`bias` map is
//! unchanged) and Burn's training op (`batch_norm_train`, with its backward) inside.

use burn::config::Config;
use burn::module::{Flag, Module, Param, RunningState};
use burn::nn::Initializer;
use burn::tensor::{Device, Tensor};

/// The configuration of a [`BatchNorm`]; PyTorch's defaults and momentum convention.
#[derive(Config, Debug)]
pub struct BatchNormConfig {
    /// The number of channels (`num_features`).
    pub num_features: usize,
    /// Added to the variance before the square root. Default: 1e-5, PyTorch's.
    #[config(default = 1e-5)]
    pub epsilon: f64,
    /// PyTorch's convention: `running = (1 - momentum) * running + momentum * batch`.
    /// Default: 0.1.
    #[config(default = 0.1)]
    pub momentum: f64,
}

impl BatchNormConfig {
    /// A BatchNorm with PyTorch's initial state: `gamma` ones, `beta` zeros, running mean
    /// zeros and running variance ones, in training mode. The parameters are lazy: nothing is
    /// allocated until they are read or loaded.
    ///
    /// The families validate `epsilon` and `momentum` in their own configurations (a typed
    /// `ConfigError`) before they get here.
    pub fn init(&self, device: &Device) -> BatchNorm {
        let n = self.num_features;
        BatchNorm {
            gamma: Initializer::Ones.init([n], device),
            beta: Initializer::Zeros.init([n], device),
            training: Param::from_bool(true),
            running_mean: RunningState::new(Tensor::zeros([n], device)),
            running_var: RunningState::new(Tensor::ones([n], device)),
            momentum: self.momentum,
            epsilon: self.epsilon,
        }
    }
}

/// PyTorch's `nn.BatchNorm2d` (and `BatchNorm1d` over `[batch, channels, ...]`): in training
/// mode it normalises with the batch statistics and updates the running ones as PyTorch does,
/// the unbiased batch variance included; in eval mode it applies the running statistics as one
/// multiply-add per element.
#[derive(Module, Debug)]
pub struct BatchNorm {
    /// The learnable scale (`weight` in PyTorch's files).
    pub gamma: Param<Tensor<1>>,
    /// The learnable shift (`bias` in PyTorch's files).
    pub beta: Param<Tensor<1>>,
    /// Whether this layer trains; `false` once frozen (`Module::freeze`), so a frozen backbone
    /// on an autodiff device uses its running statistics and leaves them unchanged.
    pub training: Param<Flag>,
    /// The running mean.
    pub running_mean: RunningState<Tensor<1>>,
    /// The running variance (of the unbiased batch variances, as PyTorch keeps it).
    pub running_var: RunningState<Tensor<1>>,
    /// PyTorch's momentum convention (see [`BatchNormConfig::momentum`]).
    pub momentum: f64,
    /// Added to the variance before the square root.
    pub epsilon: f64,
}

impl BatchNorm {
    /// Applies the layer. Training mode (an autodiff device and a layer not frozen): batch
    /// statistics, and the running statistics move by `momentum` towards the batch mean and
    /// the *unbiased* batch variance, as PyTorch's. Otherwise: the running statistics.
    ///
    /// With a single value per channel (batch 1 of a 1x1 map) PyTorch refuses to train; here
    /// the running variance then moves towards the biased variance (zero) rather than infinity.
    ///
    /// # Shapes
    /// - `x`: `[batch, channels, ...]`
    /// - output: the same
    pub fn forward<const D: usize>(&self, x: Tensor<D>) -> Tensor<D> {
        if x.device().is_autodiff() && self.training.is_enabled() {
            return self.forward_train(x);
        }
        #[cfg(feature = "flex")]
        let x = match self.host_scale_shift(&x) {
            Some((scale, shift)) => match crate::kernels::channel_affine(x, &scale, &shift, None) {
                Ok(out) => return out,
                Err(x) => x,
            },
            None => x,
        };
        let (scale, shift) = self.scale_shift();
        let [channels] = scale.dims();
        let mut shape = [1usize; D];
        shape[1] = channels;
        x * scale.reshape(shape) + shift.reshape(shape)
    }

    fn forward_train<const D: usize>(&self, x: Tensor<D>) -> Tensor<D> {
        let device = x.device();
        let dims = x.dims();
        let per_channel = dims.iter().product::<usize>() / dims[1].max(1);
        let (gamma, beta) = (self.gamma.val(), self.beta.val());
        // On `Autodiff<Flex>`, the zoo's op (two passes forward, two backward); elsewhere
        // Burn's.
        #[cfg(feature = "flex")]
        let kernel = crate::kernels::batch_norm_train(&x, &gamma, &beta, self.epsilon)
            .map(|r| (r.output, r.mean, r.variance));
        #[cfg(not(feature = "flex"))]
        let kernel = None;
        let (output, batch_mean, batch_var) = kernel.unwrap_or_else(|| {
            let r = burn::tensor::module::batch_norm_train(x, gamma, beta, self.epsilon);
            (r.output, r.mean, r.variance)
        });
        // PyTorch's `running_var` takes the unbiased variance: `var * n / (n - 1)`.
        let unbiased = if per_channel > 1 {
            per_channel as f64 / (per_channel - 1) as f64
        } else {
            1.0
        };
        let momentum = self.momentum;
        let mean = self.running_mean.value_sync().to_device(&device);
        let var = self.running_var.value_sync().to_device(&device);
        let mean = mean.mul_scalar(1.0 - momentum) + batch_mean.detach().mul_scalar(momentum);
        let var =
            var.mul_scalar(1.0 - momentum) + batch_var.detach().mul_scalar(momentum * unbiased);
        self.running_mean.update(mean.detach());
        self.running_var.update(var.detach());
        output
    }

    /// [`Self::scale_shift`] as host values, where `x` and the layer's tensors are on plain
    /// Flex in `f32` (the zoo's kernels then take them); else `None`.
    #[cfg(feature = "flex")]
    pub(crate) fn host_scale_shift<const D: usize>(
        &self,
        x: &Tensor<D>,
    ) -> Option<(Vec<f32>, Vec<f32>)> {
        if !crate::kernels::takes(x) {
            return None;
        }
        crate::kernels::batch_norm_scale_shift(
            &self.gamma.val(),
            &self.beta.val(),
            &self.running_mean.value(),
            &self.running_var.value(),
            self.epsilon,
        )
    }

    /// Eval mode as `x * scale + shift` per channel: `scale = gamma / sqrt(running_var +
    /// eps)`, `shift = beta - running_mean * scale`, on the device of `gamma`. Shared by
    /// [`Self::forward`] and [`super::fold_batchnorm`].
    ///
    /// # Shapes
    /// - both outputs: `[channels]`
    pub fn scale_shift(&self) -> (Tensor<1>, Tensor<1>) {
        let gamma = self.gamma.val();
        let device = gamma.device();
        let mean = self.running_mean.value().to_device(&device);
        let var = self.running_var.value().to_device(&device);
        let scale = gamma / (var + self.epsilon).sqrt();
        let shift = self.beta.val() - mean * scale.clone();
        (scale, shift)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::device::test_device;
    use burn::tensor::TensorData;

    /// One training-mode forward of a `[2, 2, 1, 2]` batch: per channel `n = 4` values.
    #[test]
    fn training_updates_running_var_with_the_unbiased_variance() {
        let device = test_device().autodiff();
        let bn = BatchNormConfig::new(2).with_momentum(0.5).init(&device);
        // Channel 0: 1, 2, 3, 4 (mean 2.5, biased var 1.25, unbiased 5/3).
        // Channel 1: 0, 0, 0, 8 (mean 2, biased var 12, unbiased 16).
        let x = Tensor::<4>::from_data(
            TensorData::new(
                vec![1.0f32, 2.0, 0.0, 0.0, 3.0, 4.0, 0.0, 8.0],
                [2, 2, 1, 2],
            ),
            &device,
        );
        let y = bn.forward(x);
        // Normalised with the *biased* variance, as PyTorch.
        let y = y.into_data().try_to_vec::<f32>().expect("f32");
        let expected0 = (1.0 - 2.5) / (1.25f32 + 1e-5).sqrt();
        assert!((y[0] - expected0).abs() < 1e-5, "{} vs {expected0}", y[0]);
        // `value_sync` applies the forward's pending update (Burn's running state is lazy).
        let read = |state: &RunningState<Tensor<1>>| {
            state
                .value_sync()
                .into_data()
                .try_to_vec::<f32>()
                .expect("f32")
        };
        let (mean, var) = (read(&bn.running_mean), read(&bn.running_var));
        // 0.5 * initial + 0.5 * batch.
        assert!((mean[0] - 1.25).abs() < 1e-6, "{mean:?}");
        assert!((mean[1] - 1.0).abs() < 1e-6, "{mean:?}");
        let (v0, v1) = (0.5 + 0.5 * 5.0 / 3.0, 0.5 + 0.5 * 16.0);
        assert!((var[0] - v0).abs() < 1e-5, "{} vs {v0}", var[0]);
        assert!((var[1] - v1).abs() < 1e-4, "{} vs {v1}", var[1]);
    }

    #[test]
    fn eval_mode_is_the_running_statistics_and_leaves_them_alone() {
        let device = test_device();
        let mut bn = BatchNormConfig::new(1).with_epsilon(0.0).init(&device);
        bn.gamma = Param::from_tensor(Tensor::from_data(TensorData::from([2.0f32]), &device));
        bn.beta = Param::from_tensor(Tensor::from_data(TensorData::from([1.0f32]), &device));
        bn.running_mean = RunningState::new(Tensor::from_data(TensorData::from([3.0f32]), &device));
        bn.running_var = RunningState::new(Tensor::from_data(TensorData::from([4.0f32]), &device));
        let x = Tensor::<4>::from_data(TensorData::new(vec![5.0f32, 7.0], [1, 1, 1, 2]), &device);
        let y = bn.forward(x).into_data().try_to_vec::<f32>().expect("f32");
        // 2 * (x - 3) / 2 + 1.
        assert_eq!(y, vec![3.0, 5.0]);
        let var = bn
            .running_var
            .value()
            .into_data()
            .try_to_vec::<f32>()
            .expect("f32");
        assert_eq!(var, vec![4.0]);
    }
}
