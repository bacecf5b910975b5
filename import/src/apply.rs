//! What every importer shares once it has the file's tensors under the zoo's (PyTorch's) names:
//! the options, matching the keys and shapes against the model, the report, and applying.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::path::{Path, PathBuf};

use burn::store::burn_pack::Tensor as PackTensor;
use burn::store::{ModuleSnapshot, PyTorchToBurnAdapter};

use model_zoo::Importable;

use crate::{ImportError, ShapeMismatch};

/// Keys PyTorch saves that carry no weight (BatchNorm's step counter).
const IGNORED_SUFFIX: &str = "num_batches_tracked";

/// The options every importer takes; each importer's builder methods set them.
#[derive(Debug, Clone)]
pub(crate) struct Options {
    pub path: PathBuf,
    pub top_level_key: Option<String>,
    pub partial: bool,
    pub model_name: Option<String>,
}

impl Options {
    pub fn new(path: PathBuf) -> Self {
        Self {
            path,
            top_level_key: None,
            partial: false,
            model_name: None,
        }
    }
}

/// The builder methods shared by the importers, over their `options` field.
macro_rules! import_options {
    () => {
        /// With `true`, a classifier whose shape differs from the file's (another class count)
        /// is left as initialised instead of failing the load. Every other key stays strict.
        pub fn partial(mut self, partial: bool) -> Self {
            self.options.partial = partial;
            self
        }

        /// The model's name for error messages (`"resnet50"`); defaults to its family.
        pub fn model_name(mut self, name: impl Into<String>) -> Self {
            self.options.model_name = Some(name.into());
            self
        }
    };
}
pub(crate) use import_options;

/// What a successful load did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportReport {
    /// The file read.
    pub path: PathBuf,
    /// The format it was read as (`PyTorch file`, `safetensors`, `PaddlePaddle .pdparams
    /// (tutorial layout)`, ...).
    pub format: &'static str,
    /// Where the state_dict was found: `""` at the root, `"state_dict"` for a checkpoint.
    pub nested_under: String,
    /// Whether DataParallel's `module.` prefix was stripped.
    pub stripped_module_prefix: bool,
    /// Tensors loaded into the model.
    pub loaded: usize,
    /// Classifier keys left as initialised by a partial load (their shape differs).
    pub skipped: Vec<String>,
    /// File keys ignored: those that carry no weight (`num_batches_tracked`, Paddle's `@@`
    /// bookkeeping) and those of parts the model was built without (GoogLeNet's aux heads).
    pub ignored: usize,
    /// The input convolution's weight where the file's channels differ from the model's
    /// (`conv1.weight: 3 -> 1 input channels`): adapted as timm's `adapt_input_conv` does
    /// (see [`model_zoo::Architecture::with_in_chans`]).
    pub adapted: Vec<String>,
}

impl fmt::Display for ImportReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "loaded {} tensors from {} ({})",
            self.loaded,
            self.path.display(),
            self.format
        )?;
        if !self.nested_under.is_empty() {
            write!(f, ", state_dict under `{}`", self.nested_under)?;
        }
        if self.stripped_module_prefix {
            write!(f, ", `module.` prefix stripped")?;
        }
        if !self.skipped.is_empty() {
            write!(
                f,
                "; classifier left as initialised: {}",
                self.skipped.join(", ")
            )?;
        }
        if !self.adapted.is_empty() {
            write!(
                f,
                "; adapted (timm's adapt_input_conv): {}",
                self.adapted.join(", ")
            )?;
        }
        Ok(())
    }
}

/// A file's state_dict, its keys already the zoo's (PyTorch's) names and its tensors in
/// PyTorch's layout.
pub(crate) struct StateDict {
    pub tensors: Vec<PackTensor>,
    pub format: &'static str,
    pub nested_under: String,
    pub stripped_module_prefix: bool,
    /// File keys dropped before matching because they carry no weight.
    pub ignored: usize,
    /// The file's own spelling of a zoo key where the two differ (Paddle's), for error messages.
    pub file_key: fn(&str) -> Option<String>,
}

/// The model's name in messages: the caller's, else its family's.
pub(crate) fn model_name<M: Importable>(options: &Options, model: &M) -> String {
    options
        .model_name
        .clone()
        .unwrap_or_else(|| model.import_info().name)
}

/// Fills `model` from `state`, strictly unless `options.partial`; on error nothing is applied.
pub(crate) fn load_state<M: Importable>(
    options: &Options,
    mut model: M,
    state: StateDict,
) -> Result<(M, ImportReport), ImportError> {
    let path = &options.path;
    let model_name = model_name(options, &model);
    let apply_error = |errors: Vec<String>| ImportError::Apply {
        path: path.clone(),
        model: model_name.clone(),
        errors,
    };
    // A file in an older layout of the same model (MNASNet's first version) rebuilds the
    // model in that layout, as torchvision's `_load_from_state_dict` does.
    let file_shapes: HashMap<String, Vec<usize>> = state
        .tensors
        .iter()
        .map(|t| (t.name.clone(), dims(t)))
        .collect();
    if let Some(device) = model.devices().into_iter().next() {
        model = model
            .conform_to_file(&file_shapes, &device)
            .map_err(|e| apply_error(vec![e.to_string()]))?;
    }
    // The model's keys and shapes in PyTorch's layout (`bn.weight`, linear `[out, in]`),
    // with weights the model keeps in row blocks seen whole, as torchvision has them.
    let expected = model_zoo::layers::torch_shapes(&model);

    let mut ignored = state.ignored;
    let mut found: BTreeMap<String, PackTensor> = BTreeMap::new();
    // Parts the model was built without: optional ones (aux heads), and the whole head of a
    // features-only backbone (`without_head`), whose keys a classifier's file holds.
    let info = model.import_info();
    let headless = !info.has_head;
    let optional = |key: &str| {
        !expected.contains_key(key)
            && (info.optional_prefixes.iter().any(|p| key.starts_with(p))
                || headless && info.head_prefixes.iter().any(|p| key.starts_with(p)))
    };
    let buffers = &info.derived_buffers;
    for tensor in state.tensors {
        if let Some(buffer) = buffers.iter().find(|b| b.key == tensor.name) {
            check_buffer(buffer, &tensor).map_err(|detail| ImportError::BufferMismatch {
                path: path.clone(),
                model: model_name.clone(),
                key: buffer.key.clone(),
                detail,
            })?;
            ignored += 1;
        } else if tensor.name.rsplit('.').next() == Some(IGNORED_SUFFIX) || optional(&tensor.name) {
            ignored += 1;
        } else {
            found.insert(tensor.name.clone(), tensor);
        }
    }

    // A file of another channel count than the model's input convolution (torchvision's RGB
    // weights into a 1-channel model) has that weight adapted, as timm loads them.
    let adapted = adapt_input_conv(info.input_conv, &expected, &mut found)
        .map_err(|detail| apply_error(vec![detail]))?;

    let is_classifier = |key: &str| info.classifier_prefixes.iter().any(|p| key.starts_with(p));
    let found_shapes = found.iter().map(|(k, t)| (k.clone(), dims(t))).collect();
    let mut diff = KeyDiff::between(&expected, &found_shapes);
    // A partial load leaves a mis-shaped head as initialised: weight and bias together,
    // never half of it.
    let mut skipped = Vec::new();
    if options.partial && diff.shapes.iter().any(|m| is_classifier(&m.key)) {
        diff.shapes.retain(|m| !is_classifier(&m.key));
        skipped = expected
            .keys()
            .filter(|k| is_classifier(k) && found.contains_key(*k))
            .cloned()
            .collect();
    }
    diff.with_file_keys(state.file_key)
        .into_result(path, &model_name)?;

    let to_apply: Vec<PackTensor> = found
        .into_values()
        .filter(|t| !skipped.contains(&t.name))
        .collect();
    let loaded = to_apply.len();
    let to_apply = model_zoo::layers::split_row_blocks(&model, to_apply)
        .map_err(|e| apply_error(vec![e.to_string()]))?;
    let result = model.apply(to_apply, None, Some(Box::new(PyTorchToBurnAdapter)), true);
    let mut errors: Vec<String> = result.errors.iter().map(ToString::to_string).collect();
    // Keys left out on purpose come back as missing; anything else missing is a bug here.
    errors.extend(
        result
            .missing
            .iter()
            .map(|(path, _)| path)
            .filter(|path| !skipped.iter().any(|s| same_key(s, path)))
            .map(|path| format!("{path}: not applied")),
    );
    if !errors.is_empty() {
        return Err(apply_error(errors));
    }
    let report = ImportReport {
        path: path.clone(),
        format: state.format,
        nested_under: state.nested_under,
        stripped_module_prefix: state.stripped_module_prefix,
        loaded,
        skipped,
        ignored,
        adapted,
    };
    Ok((model, report))
}

/// Adapts `found`'s copy of the model's input convolution weight where only its input
/// channels differ from the model's (see [`model_zoo::layers::adapt_input_conv`]); returns
/// what was adapted. A weight the formula cannot adapt is left for the shape check to report.
fn adapt_input_conv(
    input_conv: Option<&str>,
    expected: &BTreeMap<String, Vec<usize>>,
    found: &mut BTreeMap<String, PackTensor>,
) -> Result<Vec<String>, String> {
    let Some(input_conv) = input_conv else {
        return Ok(Vec::new());
    };
    let key = format!("{input_conv}.weight");
    let (Some(want), Some(tensor)) = (expected.get(&key), found.get(&key)) else {
        return Ok(Vec::new());
    };
    let have = dims(tensor);
    let &[o, i, kh, kw] = have.as_slice() else {
        return Ok(Vec::new());
    };
    if want.len() != 4 || *want == have || want[0] != o || want[2..] != have[2..] {
        return Ok(Vec::new());
    }
    let bytes = tensor
        .to_bytes()
        .map_err(|e| format!("{key}: unreadable: {e:?}"))?;
    let values = burn::tensor::TensorData::from_bytes(bytes, tensor.shape.clone(), tensor.dtype)
        .convert::<f32>()
        .try_into_vec::<f32>()
        .map_err(|e| format!("{key}: {e:?}"))?;
    let Ok((weight, shape)) = model_zoo::layers::adapt_input_conv(&values, [o, i, kh, kw], want[1])
    else {
        return Ok(Vec::new());
    };
    if shape.as_slice() != want.as_slice() {
        return Ok(Vec::new());
    }
    let data = burn::tensor::TensorData::new(weight, shape).convert_dtype(tensor.dtype);
    let adapted = PackTensor::new(
        key.clone(),
        tensor.dtype,
        shape.to_vec(),
        tensor.param_id,
        data.into_bytes(),
    );
    found.insert(key.clone(), adapted);
    Ok(vec![format!("{key}: {i} -> {} input channels", want[1])])
}

/// That a file's copy of a derived buffer equals the model's own: the same shape, and the same
/// values (integers exactly, floats within 1e-6 of their scale, as PyTorch computes them in
/// `f32`); else what differs.
fn check_buffer(buffer: &model_zoo::DerivedBuffer, tensor: &PackTensor) -> Result<(), String> {
    let shape = dims(tensor);
    if shape != buffer.shape {
        return Err(format!(
            "shape {shape:?} in the file, {:?} in the model",
            buffer.shape
        ));
    }
    let bytes = tensor
        .to_bytes()
        .map_err(|e| format!("unreadable: {e:?}"))?;
    let data = burn::tensor::TensorData::from_bytes(bytes, tensor.shape.clone(), tensor.dtype)
        .convert::<f64>();
    let values = data
        .try_to_vec::<f64>()
        .map_err(|e| format!("unreadable: {e:?}"))?;
    let scale = buffer.values.iter().fold(1.0f64, |m, v| m.max(v.abs()));
    let exact = tensor.dtype.is_int() || tensor.dtype.is_uint();
    let tolerance = if exact { 0.0 } else { 1e-6 * scale };
    match values
        .iter()
        .zip(&buffer.values)
        .position(|(a, b)| (a - b).abs() > tolerance || a.is_nan())
    {
        Some(i) => Err(format!(
            "element {i} is {} in the file, {} in the model",
            values[i], buffer.values[i]
        )),
        None => Ok(()),
    }
}

/// `fc.weight` (torchvision) and `fc.weight` or `bn.gamma` (burn) name the same parameter.
fn same_key(torch_key: &str, burn_key: &str) -> bool {
    let rename = |k: &str| k.replace(".gamma", ".weight").replace(".beta", ".bias");
    rename(torch_key) == rename(burn_key)
}

/// How a file's keys and shapes differ from a model's.
pub(crate) struct KeyDiff {
    missing: Vec<(String, Vec<usize>)>,
    unexpected: Vec<(String, Vec<usize>)>,
    shapes: Vec<ShapeMismatch>,
}

impl KeyDiff {
    pub fn between(
        expected: &BTreeMap<String, Vec<usize>>,
        found: &BTreeMap<String, Vec<usize>>,
    ) -> Self {
        let only_in = |a: &BTreeMap<String, Vec<usize>>, b: &BTreeMap<String, Vec<usize>>| {
            a.iter()
                .filter(|(k, _)| !b.contains_key(*k))
                .map(|(k, s)| (k.clone(), s.clone()))
                .collect()
        };
        let shapes = expected
            .iter()
            .filter_map(|(key, e)| {
                let f = found.get(key)?;
                (f != e).then(|| ShapeMismatch {
                    key: key.clone(),
                    expected: e.clone(),
                    found: f.clone(),
                })
            })
            .collect();
        Self {
            missing: only_in(expected, found),
            unexpected: only_in(found, expected),
            shapes,
        }
    }

    /// Names each key also in the file's own spelling, where it differs: `fc.weight (file:
    /// out.weight)`.
    fn with_file_keys(mut self, file_key: fn(&str) -> Option<String>) -> Self {
        let annotate = |key: &mut String| {
            if let Some(theirs) = file_key(key).filter(|k| k != key) {
                *key = format!("{key} (file: {theirs})");
            }
        };
        for (key, _) in self.missing.iter_mut().chain(self.unexpected.iter_mut()) {
            annotate(key);
        }
        for mismatch in &mut self.shapes {
            annotate(&mut mismatch.key);
        }
        self
    }

    pub fn into_result(self, path: &Path, model: &str) -> Result<(), ImportError> {
        if self.missing.is_empty() && self.unexpected.is_empty() && self.shapes.is_empty() {
            return Ok(());
        }
        Err(ImportError::KeyMismatch {
            path: path.to_path_buf(),
            model: model.to_string(),
            missing: self.missing,
            unexpected: self.unexpected,
            shapes: self.shapes,
        })
    }
}

/// The file keys as they are: PyTorch's names are the zoo's.
pub(crate) fn same_names(_: &str) -> Option<String> {
    None
}

pub(crate) fn dims(tensor: &PackTensor) -> Vec<usize> {
    tensor.shape.to_vec()
}
