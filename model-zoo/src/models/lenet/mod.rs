//! LeNet-5 for 32x32 colour images, in the form PyTorch's CIFAR-10 tutorial ("Training a
//! classifier") and most courses teach it.
//!
//! LeCun et al., *Gradient-Based Learning Applied to Document Recognition*, 1998, with the
//! modern substitutions that form uses: **ReLU after each convolution and hidden linear layer**
//! (the paper's scaled tanh), max-pooling (the paper's trainable subsampling), and fully
//! connected C3 (the paper's partial connection table). An `AdaptiveAvgPool2d((5, 5))` before
//! the classifier, the identity at 32x32, lets larger inputs through as torchvision's models do.

mod weights;
pub use weights::*;

use burn::config::Config;
use burn::module::Module;
use burn::nn::Linear;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::pool::{AdaptiveAvgPool2d, AdaptiveAvgPool2dConfig, MaxPool2d, MaxPool2dConfig};
use burn::tensor::{Device, Tensor};

use crate::architecture::{Architecture, ImportHooks};
use crate::error::{ConfigError, InputSpec};
use crate::family::Family;
use crate::features::{FeatureInfo, Features, Taps};
use crate::tap;

use crate::layers::relu;
use crate::layers::{conv2d, max_pool2d};
use crate::layers::linear_torch_default;

impl Family {
    /// LeNet-5 ([`crate::lenet`]).
    pub const LENET: Family = Family::new("lenet");
}

/// Configuration of a [`LeNet5`].
#[derive(Config, Debug)]
pub struct LeNet5Config {
    /// Output classes.
    #[config(default = 10)]
    pub num_classes: usize,
}

/// What LeNet-5 accepts: designed for 32x32; 16x16 is the smallest input that leaves the second
/// max-pool a pixel.
pub const LENET5_INPUT: InputSpec = InputSpec {
    channels: 3,
    min_size: [16, 16],
    exact: false,
};

/// LeNet-5: `conv1` 5x5 → 6 channels, ReLU, 2x2 max-pool; `conv2` 5x5 → 16, ReLU, 2x2 max-pool;
/// `fc1` 400 → 120, ReLU; `fc2` 120 → 84, ReLU; `fc3` 84 → classes.
#[derive(Module, Debug)]
pub struct LeNet5 {
    /// 5x5 convolution, 3 → 6 channels, no padding.
    pub conv1: Conv2d,
    /// 5x5 convolution, 6 → 16 channels.
    pub conv2: Conv2d,
    /// 2x2 stride-2 max-pool, after each convolution.
    pub pool: MaxPool2d,
    /// `AdaptiveAvgPool2d((5, 5))`: the identity at 32x32 input.
    pub avgpool: AdaptiveAvgPool2d,
    /// 400 → 120.
    pub fc1: Linear,
    /// 120 → 84.
    pub fc2: Linear,
    /// 84 → classes.
    pub fc3: Option<Linear>,
}

impl LeNet5Config {
    /// Builds the model with PyTorch's default initialisation.
    pub fn init(&self, device: &Device) -> Result<LeNet5, ConfigError> {
        if self.num_classes == 0 {
            return Err(ConfigError::Zero {
                model: "lenet5".into(),
                field: "num_classes",
            });
        }
        Ok(LeNet5 {
            conv1: Conv2dConfig::new([3, 6], [5, 5]).init(device),
            conv2: Conv2dConfig::new([6, 16], [5, 5]).init(device),
            pool: MaxPool2dConfig::new([2, 2]).with_strides([2, 2]).init(),
            avgpool: AdaptiveAvgPool2dConfig::new([5, 5]).init(),
            fc1: linear_torch_default(16 * 5 * 5, 120, device),
            fc2: linear_torch_default(120, 84, device),
            fc3: Some(linear_torch_default(84, self.num_classes, device)),
        })
    }
}

impl LeNet5 {
    /// The second max-pool's output, tapping the stages of [`Architecture::feature_info`].
    fn trunk(&self, x: Tensor<4>, taps: &mut Taps) -> Option<Tensor<4>> {
        let x = max_pool2d(&self.pool, relu(conv2d(&self.conv1, x)));
        tap!(taps, 0, x.clone());
        let x = max_pool2d(&self.pool, relu(conv2d(&self.conv2, x)));
        tap!(taps, 1, x.clone());
        Some(x)
    }
}

impl Architecture for LeNet5 {
    crate::layers::classifier_head!(fc3);

    fn family(&self) -> Family {
        Family::LENET
    }

    /// What this model accepts: 3 channels, at least 16x16 (32x32 by design).
    fn input_spec(&self) -> InputSpec {
        InputSpec {
            channels: self.in_chans(),
            ..LENET5_INPUT
        }
    }

    fn display_name(&self) -> &str {
        "lenet5"
    }

    fn input_conv(&self) -> (&'static str, &Conv2d) {
        ("conv1", &self.conv1)
    }

    fn input_conv_mut(&mut self) -> &mut Conv2d {
        &mut self.conv1
    }

    /// The two max-pools' outputs: `pool` and `pool_1` (its second call, as torch.fx names
    /// it); reductions 2 and 4.
    fn feature_info(&self) -> Vec<FeatureInfo> {
        let channels = |conv: &Conv2d| conv.weight.lazy_shape().dims::<4>()[0];
        vec![
            FeatureInfo::new("pool", channels(&self.conv1), 2),
            FeatureInfo::new("pool_1", channels(&self.conv2), 4),
        ]
    }

    fn forward_features_tapped(&self, x: Tensor<4>, taps: &mut Taps) -> Option<Features> {
        self.trunk(x, taps).map(Features::Map)
    }

    /// `avgpool` flattened, `fc1`, `fc2` (with their ReLUs), then `fc3`; the pre-logits are `fc2`'s 84 features.
    fn forward_head(&self, features: Features, pre_logits: bool) -> Tensor<2> {
        let x = features.expect_map("lenet5");
        let x = {
            let x = crate::layers::adaptive_avg_pool2d(&self.avgpool, x).flatten(1, 3);
            relu(self.fc2.forward(relu(self.fc1.forward(x))))
        };
        if pre_logits {
            return x;
        }
        crate::layers::ClassifierHead::classify(&self.fc3, x)
    }

    fn num_features(&self) -> usize {
        84
    }

}

impl ImportHooks for LeNet5 {
    fn classifier_prefixes(&self) -> &'static [&'static str] {
        &["fc3."]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::device::test_device as device;

    #[test]
    fn any_size_from_16_and_a_clear_error_below() {
        let device = device();
        let model = LeNet5Config::new().init(&device).unwrap();
        for [h, w] in [[16, 16], [32, 32], [48, 40]] {
            assert_eq!(
                model.forward(Tensor::zeros([2, 3, h, w], &device)).dims(),
                [2, 10]
            );
        }
        let err = model
            .try_forward(Tensor::zeros([1, 3, 15, 32], &device))
            .unwrap_err();
        assert!(err.to_string().contains("at least 16x16"), "{err}");
        let model = model.reset_classifier(100, &device).unwrap();
        assert_eq!(model.num_classes(), 100);
    }
}
