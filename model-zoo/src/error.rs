//! Errors shared by every model family: invalid configurations and unusable inputs.

/// A configuration that cannot build a model, caught before any tensor is allocated.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// torchvision's `BasicBlock` only supports `groups=1` and `width_per_group=64`.
    #[error(
        "{model}: BasicBlock only supports groups=1 and width_per_group=64, got groups={groups}, \
         width_per_group={width_per_group}"
    )]
    BasicBlockWidth {
        /// The model being built.
        model: String,
        /// The requested groups.
        groups: usize,
        /// The requested width per group.
        width_per_group: usize,
    },
    /// torchvision's `BasicBlock` has no dilated variant.
    #[error(
        "{model}: dilation > 1 is not supported with BasicBlock (replace_stride_with_dilation must be all false)"
    )]
    BasicBlockDilation {
        /// The model being built.
        model: String,
    },
    /// `replace_stride_with_dilation` must hold exactly one flag for each of layer2..layer4.
    #[error("{model}: replace_stride_with_dilation should have 3 elements, got {found}")]
    DilationFlags {
        /// The model being built.
        model: String,
        /// How many flags were given.
        found: usize,
    },
    /// An option outside the values torchvision accepts (a width multiplier of zero, a stride
    /// of 3, an empty block setting).
    #[error("{model}: `{field}` is {value}; {expected}")]
    Invalid {
        /// The model being built.
        model: String,
        /// The configuration field.
        field: &'static str,
        /// The value given.
        value: String,
        /// What torchvision accepts.
        expected: &'static str,
    },
    /// The classifier of a features-only backbone ([`crate::Architecture::without_head`])
    /// cannot be reset: it has none.
    #[error(
        "{model} has no classifier (a features-only backbone, built without its head): create \
         the model again for another class count"
    )]
    NoClassifier {
        /// The model.
        model: String,
    },
    /// A features-only backbone asked for a stage the model does not have.
    #[error(
        "{model}: out_indices holds {index}, but the model has {stages} stages (indices 0 to \
         {stages} - 1 of feature_info())"
    )]
    OutIndex {
        /// The model.
        model: String,
        /// The index asked for.
        index: usize,
        /// How many stages the model has ([`crate::Architecture::feature_info`]).
        stages: usize,
    },
    /// A size that must be positive (classes, groups, width, blocks per stage) is zero.
    #[error("{model}: `{field}` must be at least 1")]
    Zero {
        /// The model being built.
        model: String,
        /// The configuration field that is zero.
        field: &'static str,
    },
}

impl ConfigError {
    /// `Zero` when `value` is 0.
    pub(crate) fn nonzero(model: &str, field: &'static str, value: usize) -> Result<(), Self> {
        match value {
            0 => Err(ConfigError::Zero {
                model: model.into(),
                field,
            }),
            _ => Ok(()),
        }
    }

    /// `Invalid` unless `value` is a finite positive number (a width multiplier).
    pub(crate) fn positive(model: &str, field: &'static str, value: f64) -> Result<(), Self> {
        Self::check(
            value.is_finite() && value > 0.0,
            model,
            field,
            value,
            "it must be a positive number",
        )
    }

    /// `Invalid` unless `value` is a dropout rate in `[0, 1)`. PyTorch also takes 1 (every
    /// activation zeroed); Burn's `Dropout` panics on it, so it is refused here, before any
    /// layer is built.
    pub(crate) fn probability(model: &str, field: &'static str, value: f64) -> Result<(), Self> {
        Self::check(
            (0.0..1.0).contains(&value),
            model,
            field,
            value,
            "it must be a probability in [0, 1) (1 would zero every activation)",
        )
    }

    pub(crate) fn check(
        ok: bool,
        model: &str,
        field: &'static str,
        value: f64,
        expected: &'static str,
    ) -> Result<(), Self> {
        if ok {
            Ok(())
        } else {
            Err(ConfigError::Invalid {
                model: model.into(),
                field,
                value: value.to_string(),
                expected,
            })
        }
    }
}

/// An input tensor that the model cannot process.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InputError {
    /// The channel count differs from the model's.
    #[error(
        "{model} expects {expected} input channels ([batch, {expected}, height, width]), got {found}"
    )]
    Channels {
        /// The model.
        model: String,
        /// The channels the model takes.
        expected: usize,
        /// The channels of the input.
        found: usize,
    },
    /// The spatial size is below the model's documented minimum.
    #[error(
        "{model} needs an input of at least {}x{} (height x width), got {}x{}",
        min[0], min[1], found[0], found[1]
    )]
    TooSmall {
        /// The model.
        model: String,
        /// The smallest valid `[height, width]`.
        min: [usize; 2],
        /// The input's `[height, width]`.
        found: [usize; 2],
    },
    /// The model takes one size only, and the input has another.
    #[error(
        "{model} takes only {}x{} inputs (height x width), got {}x{}; resize or crop to {}x{}",
        expected[0], expected[1], found[0], found[1], expected[0], expected[1]
    )]
    WrongSize {
        /// The model.
        model: String,
        /// The one valid `[height, width]`.
        expected: [usize; 2],
        /// The input's `[height, width]`.
        found: [usize; 2],
    },
    /// A feature stage asked of [`crate::Architecture::forward_intermediates`] that the model
    /// does not have.
    #[error(
        "{model} has {stages} feature stages (indices 0 to {}), asked for index {index}",
        stages.saturating_sub(1)
    )]
    FeatureIndex {
        /// The model.
        model: String,
        /// The index asked for.
        index: usize,
        /// How many stages the model has ([`crate::Architecture::feature_info`]).
        stages: usize,
    },
    /// The batch holds no image.
    #[error("{model} got an empty batch")]
    EmptyBatch {
        /// The model.
        model: String,
    },
    /// A tensor of the model, or the input, is larger than the device can hold in one buffer.
    #[error(transparent)]
    Device(#[from] DeviceError),
}

/// Something a device cannot run, found before running it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DeviceError {
    /// A tensor is over the device's limit on one buffer (`maxStorageBufferBindingSize` on wgpu:
    /// 128 MiB on lavapipe and in WebGPU by default), which Burn binds whole.
    #[error(
        "{model}: `{tensor}` {shape:?} takes {:.1} MiB, over this device's limit of {:.1} MiB \
         for one buffer ({device}); {advice}",
        *bytes as f64 / 1048576.0, *limit as f64 / 1048576.0
    )]
    TensorTooLarge {
        /// The model's family.
        model: &'static str,
        /// The tensor: a parameter's key, or `input`.
        tensor: String,
        /// Its shape.
        shape: Box<[usize]>,
        /// Its size in bytes.
        bytes: u64,
        /// The device's limit in bytes.
        limit: u64,
        /// The device, as Burn names it.
        device: String,
        /// What to do about it.
        advice: &'static str,
    },
    /// The device failed to run what was asked of it, found when reading a result back. Burn's
    /// GPU backends run lazily, so a tensor the device cannot allocate (an activation over the
    /// buffer limit, device memory exhausted) is reported here; the device stays usable.
    #[error("{}", execution_message(.what, .bytes, .limit, .message))]
    Execution {
        /// What was being read (`logits`).
        what: String,
        /// The allocation that failed, in bytes, where the device said.
        bytes: Option<u64>,
        /// The device's limit on one buffer, where it has one.
        limit: Option<u64>,
        /// What the device reported.
        message: String,
    },
}

fn execution_message(
    what: &str,
    bytes: &Option<u64>,
    limit: &Option<u64>,
    message: &str,
) -> String {
    let mib = |b: u64| b as f64 / 1048576.0;
    match (bytes, limit) {
        (Some(bytes), Some(limit)) if bytes > limit => format!(
            "computing {what}: the device cannot allocate a {:.1} MiB tensor, over its limit of \
             {:.1} MiB for one buffer; use a smaller batch or image size",
            mib(*bytes),
            mib(*limit)
        ),
        (Some(bytes), _) => format!(
            "computing {what}: the device could not allocate {:.1} MiB (out of device memory?); \
             use a smaller batch or image size",
            mib(*bytes)
        ),
        _ => format!("computing {what}: the device failed: {message}"),
    }
}

/// The value of a model's `try_forward`, or a panic with its message: what every model's
/// `forward` does.
pub(crate) fn or_panic<T>(result: Result<T, InputError>) -> T {
    match result {
        Ok(value) => value,
        Err(err) => panic!("{err}"),
    }
}

/// What a model accepts: its channel count and smallest spatial size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InputSpec {
    /// Input channels (3 for RGB).
    pub channels: usize,
    /// Smallest valid `[height, width]`; the only one where [`Self::exact`].
    pub min_size: [usize; 2],
    /// Whether the input must be exactly `min_size` (ViT and MaxViT, whose position
    /// embeddings and attention windows fix the size).
    pub exact: bool,
}

impl InputSpec {
    /// Checks `dims` (`[batch, channels, height, width]`) against this spec.
    pub fn check(&self, model: &str, dims: [usize; 4]) -> Result<(), InputError> {
        let [batch, channels, height, width] = dims;
        if batch == 0 {
            return Err(InputError::EmptyBatch {
                model: model.to_string(),
            });
        }
        if channels != self.channels {
            return Err(InputError::Channels {
                model: model.to_string(),
                expected: self.channels,
                found: channels,
            });
        }
        if self.exact && [height, width] != self.min_size {
            return Err(InputError::WrongSize {
                model: model.to_string(),
                expected: self.min_size,
                found: [height, width],
            });
        }
        if height < self.min_size[0] || width < self.min_size[1] {
            return Err(InputError::TooSmall {
                model: model.to_string(),
                min: self.min_size,
                found: [height, width],
            });
        }
        Ok(())
    }
}

/// A name the registry does not know.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum RegistryError {
    /// No model has this name.
    #[error("no model named `{name}` in the zoo{}; `zoo-train list` shows them all", suggest(.suggestions))]
    UnknownModel {
        /// The name asked for.
        name: String,
        /// Registered names that look alike.
        suggestions: Vec<String>,
    },
    /// The model has no pretrained weights of this name.
    #[error("{model} has no weights named `{name}`; available: {}", list_or_none(.available))]
    UnknownWeights {
        /// The model.
        model: String,
        /// The weights asked for.
        name: String,
        /// The model's weights (`IMAGENET1K_V1`, ...).
        available: Vec<String>,
    },
    /// The model could not be built (e.g. zero classes).
    #[error(transparent)]
    Config(#[from] ConfigError),
}

fn suggest(names: &[String]) -> String {
    if names.is_empty() {
        String::new()
    } else {
        format!(" (did you mean {}?)", names.join(", "))
    }
}

fn list_or_none(names: &[String]) -> String {
    if names.is_empty() {
        "none (this model has no pretrained weights)".into()
    } else {
        names.join(", ")
    }
}
