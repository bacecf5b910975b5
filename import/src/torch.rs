//! Reading PyTorch and safetensors files, matching their keys against a model, applying them.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use burn::store::burn_pack::Tensor as PackTensor;
use burn::store::{
    BurnToPyTorchAdapter, BurnpackStore, KeyRemapper, ModuleSnapshot, ModuleStore, PytorchStore,
    PytorchStoreError,
};
use burn::tensor::TensorData;

use model_zoo::{Importable, KeyRename};
use regex::Regex;

use crate::apply::{
    ImportReport, KeyDiff, Options, StateDict, dims, import_options, load_state, same_names,
};
use crate::{ImportError, WeightFormat};

/// Top-level keys under which training scripts commonly nest a state_dict, tried in this order
/// when the caller names none.
const NESTING_KEYS: [&str; 4] = ["state_dict", "model", "model_state_dict", "net"];

/// Loads a PyTorch `state_dict` (`.pth`/`.pt`, zip or legacy) or a `.safetensors` file into a
/// model. Build it with [`TorchImport::new`], adjust, then call [`TorchImport::load_into`].
#[derive(Debug, Clone)]
pub struct TorchImport {
    options: Options,
}

impl TorchImport {
    /// An import of `path`. A safetensors file (by its content or its `.safetensors` extension)
    /// is read as safetensors, anything else as a PyTorch file (zip, legacy or tar).
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self {
            options: Options::new(path.into()),
        }
    }

    /// Reads the state_dict nested under this top-level key of a checkpoint dict (`"ema"`, say).
    /// Without it, `state_dict`, `model`, `model_state_dict` and `net` are detected.
    pub fn top_level_key(mut self, key: impl Into<String>) -> Self {
        self.options.top_level_key = Some(key.into());
        self
    }

    import_options!();

    pub(crate) fn with_options(options: Options) -> Self {
        Self { options }
    }

    fn is_safetensors(&self) -> bool {
        let path = &self.options.path;
        path.extension()
            .is_some_and(|ext| ext.eq_ignore_ascii_case("safetensors"))
            || WeightFormat::detect(path).is_ok_and(|f| f == WeightFormat::Safetensors)
    }

    fn format(&self) -> &'static str {
        if self.is_safetensors() {
            "safetensors"
        } else {
            "PyTorch file"
        }
    }

    /// Every tensor in the file, named as in the file (nested keys joined with dots).
    fn read_tensors(&self) -> Result<Vec<PackTensor>, ImportError> {
        std::fs::File::open(&self.options.path).map_err(|source| ImportError::Io {
            path: self.options.path.clone(),
            source,
        })?;
        let unreadable = |message: String| ImportError::Unreadable {
            path: self.options.path.clone(),
            format: self.format(),
            message,
        };
        if WeightFormat::detect(&self.options.path)? == WeightFormat::Pdparams {
            return Err(unreadable(
                "this is a PaddlePaddle .pdparams pickle: load it with PaddleImport (or Import, \
                 which detects the format)"
                    .into(),
            ));
        }
        if self.is_safetensors() {
            let file = std::fs::read(&self.options.path).map_err(|source| ImportError::Io {
                path: self.options.path.clone(),
                source,
            })?;
            return read_safetensors(file).map_err(unreadable);
        }
        // Keep the file's indices: torchvision's `features.3` must stay `features.3`.
        let mut store = PytorchStore::from_file(&self.options.path).map_indices_contiguous(false);
        if let Some(key) = &self.options.top_level_key {
            store = store.with_top_level_key(key);
        }
        match store.get_all_tensors() {
            Ok(tensors) => Ok(tensors.values().cloned().collect()),
            Err(PytorchStoreError::Reader(
                burn::store::pytorch_reader::PytorchError::KeyNotFound(message),
            )) => Err(ImportError::TopLevelKey {
                path: self.options.path.clone(),
                key: self.options.top_level_key.clone().unwrap_or_default(),
                available: message,
            }),
            Err(err) => Err(unreadable(err.to_string())),
        }
    }

    /// Every tensor of the file, named as in the file, nested keys joined with dots: what
    /// `torch.load` gives for a state_dict, as [`TensorData`] in the file's own dtype (`f16`,
    /// `bf16`, `i64`, `bool`, ... are kept, not converted), sorted by name. Nothing in the file
    /// is executed.
    ///
    /// With [`TorchImport::top_level_key`] the tensors under that key of a checkpoint dict
    /// (`{"epoch": 3, "state_dict": {...}}`), named from inside it (`fc.weight`); without one,
    /// every tensor in the file, a nested one under its full path (`state_dict.fc.weight`).
    /// Values that are not tensors (an epoch count, an optimizer's hyperparameters) are left
    /// out. A view (a slice at a storage offset, a transposed tensor, several tensors sharing
    /// one storage) comes back as `t.contiguous()` would: its own values, in row-major order.
    /// Safetensors files, which are flat, are read whole.
    ///
    /// # Errors
    ///
    /// [`ImportError::Io`] when the file cannot be opened, [`ImportError::TopLevelKey`] when
    /// the top-level key asked for does not hold a dict of tensors, and
    /// [`ImportError::Unreadable`] when the file is not a PyTorch or safetensors file this
    /// reader understands (truncated, damaged, a PaddlePaddle pickle), holds a tensor of a
    /// dtype it has no equivalent for, or a tensor's bytes disagree with its shape.
    pub fn read_state_dict(&self) -> Result<BTreeMap<String, TensorData>, ImportError> {
        self.read_tensors()?
            .into_iter()
            .map(|tensor| {
                let name = tensor.name.clone();
                let data = burn::store::bridge::into_data(tensor).map_err(|err| {
                    ImportError::Unreadable {
                        path: self.options.path.clone(),
                        format: self.format(),
                        message: format!("tensor `{name}`: {err}"),
                    }
                })?;
                Ok((name, data))
            })
            .collect()
    }

    /// Fills `model` from the file, strictly (see [`TorchImport::partial`]).
    ///
    /// On success the model holds the file's weights and the report says what was read; on error
    /// nothing was applied.
    pub fn load_into<M: Importable>(&self, model: M) -> Result<(M, ImportReport), ImportError> {
        let expected = model_zoo::layers::torch_shapes(&model);
        let tensors = self.read_tensors()?;
        let info = model.import_info();
        let tensors = remap(tensors, info.key_renames, &self.options.path, &info.name)?;
        let state = locate_state_dict(tensors, &expected, self.options.top_level_key.is_some());
        let state = StateDict {
            tensors: state.tensors,
            format: self.format(),
            nested_under: state.nested_under,
            stripped_module_prefix: state.stripped_module_prefix,
            ignored: 0,
            file_key: same_names,
        };
        load_state(&self.options, model, state)
    }
}

/// Renames the keys that `renames` gives an old spelling of, as torchvision's
/// `_load_from_state_dict` does; a file holding both spellings of one rename is an error.
fn remap(
    tensors: Vec<PackTensor>,
    renames: &[KeyRename],
    path: &Path,
    model: &str,
) -> Result<Vec<PackTensor>, ImportError> {
    if renames.is_empty() {
        return Ok(tensors);
    }
    let mut remapper = KeyRemapper::new();
    for rename in renames {
        // The patterns are the zoo's own constants, checked by each family's key tests.
        let old = Regex::new(rename.old).expect("a family's `old` key pattern is a valid regex");
        let current =
            Regex::new(rename.current).expect("a family's `current` key pattern is a valid regex");
        let old_key = tensors.iter().find(|t| old.is_match(&t.name));
        let current_key = tensors.iter().find(|t| current.is_match(&t.name));
        if let (Some(old_key), Some(current_key)) = (old_key, current_key) {
            return Err(ImportError::MixedKeySpellings {
                path: path.to_path_buf(),
                model: model.to_string(),
                old_key: old_key.name.clone(),
                current_key: current_key.name.clone(),
            });
        }
        remapper = remapper
            .add_pattern(rename.old, rename.replacement)
            .expect("a family's `old` key pattern is a valid regex");
    }
    Ok(remapper.remap(tensors).0)
}

struct Located {
    tensors: Vec<PackTensor>,
    nested_under: String,
    stripped_module_prefix: bool,
}

/// Finds the state_dict in a file's flattened tensors: at the root, or nested under one of
/// [`NESTING_KEYS`] (the candidate holding most of the model's keys wins), then strips a
/// `module.` prefix that DataParallel leaves on every key.
fn locate_state_dict(
    tensors: Vec<PackTensor>,
    expected: &BTreeMap<String, Vec<usize>>,
    caller_chose_key: bool,
) -> Located {
    let score = |prefix: &str| {
        let keys: BTreeSet<String> = tensors
            .iter()
            .filter_map(|t| t.name.strip_prefix(prefix))
            .map(|k| k.strip_prefix("module.").unwrap_or(k).to_string())
            .collect();
        expected.keys().filter(|k| keys.contains(*k)).count()
    };
    let mut nested_under = String::new();
    if !caller_chose_key {
        let mut best = score("");
        for key in NESTING_KEYS {
            let s = score(&format!("{key}."));
            if s > best {
                best = s;
                nested_under = key.to_string();
            }
        }
    }
    let prefix = if nested_under.is_empty() {
        String::new()
    } else {
        format!("{nested_under}.")
    };
    let mut tensors: Vec<PackTensor> = tensors
        .into_iter()
        .filter_map(|mut t| {
            let name = t.name.strip_prefix(&prefix)?.to_string();
            t.name = name;
            Some(t)
        })
        .collect();
    let stripped_module_prefix =
        !tensors.is_empty() && tensors.iter().all(|t| t.name.starts_with("module."));
    if stripped_module_prefix {
        for t in &mut tensors {
            t.name = t.name["module.".len()..].to_string();
        }
    }
    Located {
        tensors,
        nested_under,
        stripped_module_prefix,
    }
}

/// The burnpack metadata key recording [`model_zoo::Architecture::transform_input`], a setting that no
/// weight holds: a GoogLeNet saved from pretrained weights reloads with its input transform.
const TRANSFORM_INPUT_KEY: &str = "transform_input";

/// Saves `model` in Burn's own burnpack format, for fast reloads without PyTorch's reader.
/// The file also records the model's [`model_zoo::Architecture::transform_input`].
/// The file is written beside its destination and renamed into place, so an interrupted save
/// never leaves a partial file.
pub fn save_burnpack<M: Importable>(model: &M, path: impl AsRef<Path>) -> Result<(), ImportError> {
    let info = model.import_info();
    write_atomically(path.as_ref(), |tmp| {
        let mut store = BurnpackStore::from_file(tmp)
            .auto_extension(false)
            .overwrite(true)
            .metadata("family", &info.name)
            .metadata(TRANSFORM_INPUT_KEY, info.transform_input.to_string());
        model.save_into(&mut store).map_err(|e| e.to_string())
    })
}

/// Saves `model` as a `.safetensors` file with PyTorch's names and layouts (Linear weights
/// transposed back to `[out, in]`, weights kept in row blocks joined into torchvision's single
/// tensor), so that `model.load_state_dict(safetensors.torch.load_file(p))` reads it in PyTorch,
/// and [`TorchImport`] reads it back here. Written atomically.
pub fn save_safetensors<M: Importable>(
    model: &M,
    path: impl AsRef<Path>,
) -> Result<(), ImportError> {
    write_atomically(path.as_ref(), |tmp| {
        let tensors = model.collect(None, Some(Box::new(BurnToPyTorchAdapter)), true);
        let tensors = model_zoo::layers::merge_row_blocks(tensors).map_err(|e| e.to_string())?;
        let views = tensors
            .into_iter()
            .map(|t| Ok((t.name.clone(), SafetensorsView::new(t)?)))
            .collect::<Result<Vec<_>, String>>()?;
        let metadata = [
            ("format".to_string(), "pt".to_string()),
            ("family".to_string(), model.import_info().name),
        ];
        safetensors::serialize_to_file(views, Some(metadata.into_iter().collect()), tmp)
            .map_err(|e| e.to_string())
    })
}

/// Every tensor of a `.safetensors` file's bytes, sharing them (no copy per tensor).
///
/// burn-store's `SafetensorsStore` parses the whole JSON header again for each tensor it hands
/// out, which is quadratic in the number of tensors: resnet152's 777 took 0.88 s against 0.3 s
/// for the same weights in a `.pth` (`cargo xtask bench`). Here the `safetensors` crate parses
/// the header once and checks every tensor's offsets against the file's length and its shape
/// and dtype; a damaged file is its error, never a panic.
fn read_safetensors(file: Vec<u8>) -> Result<Vec<PackTensor>, String> {
    use burn::store::burn_pack::Bytes;
    use burn::tensor::DType;
    use safetensors::Dtype;
    let mut layout = Vec::new();
    {
        let parsed = safetensors::SafeTensors::deserialize(&file).map_err(|e| e.to_string())?;
        let base = file.as_ptr() as usize;
        for (name, view) in parsed.tensors() {
            let dtype = match view.dtype() {
                Dtype::F64 => DType::F64,
                Dtype::F32 => DType::F32,
                Dtype::F16 => DType::F16,
                Dtype::BF16 => DType::BF16,
                Dtype::I64 => DType::I64,
                Dtype::I32 => DType::I32,
                Dtype::I16 => DType::I16,
                Dtype::I8 => DType::I8,
                Dtype::U64 => DType::U64,
                Dtype::U32 => DType::U32,
                Dtype::U8 => DType::U8,
                Dtype::BOOL => DType::Bool(burn::tensor::BoolStore::Native),
                other => return Err(format!("`{name}`: dtype {other:?} is not supported")),
            };
            let from = view.data().as_ptr() as usize - base;
            layout.push((
                name,
                dtype,
                view.shape().to_vec(),
                from,
                from + view.data().len(),
            ));
        }
    }
    let bytes = Bytes::from_bytes_vec(file).shared();
    Ok(layout
        .into_iter()
        .map(|(name, dtype, shape, from, to)| {
            let window = match bytes.view(from, to) {
                Ok(window) => window,
                // Bytes that cannot be windowed: copy this tensor.
                Err(_) => Bytes::from_bytes_vec(bytes[from..to].to_vec()),
            };
            PackTensor::new(name, dtype, shape, None, window)
        })
        .collect())
}

/// One tensor as the `safetensors` crate writes it. burn-store's safetensors writer takes a
/// module, not a list of tensors, so it cannot write the merged row blocks. The bytes are read
/// (back from the device) before writing starts, so that a failed read is an error rather than
/// a damaged file: `View::data` has no error path.
struct SafetensorsView {
    bytes: burn::store::burn_pack::Bytes,
    dtype: safetensors::Dtype,
    shape: Vec<usize>,
}

impl SafetensorsView {
    fn new(tensor: PackTensor) -> Result<Self, String> {
        use burn::tensor::DType;
        use safetensors::Dtype;
        let dtype = match tensor.dtype {
            DType::F64 => Dtype::F64,
            DType::F32 | DType::Flex32 => Dtype::F32,
            DType::F16 => Dtype::F16,
            DType::BF16 => Dtype::BF16,
            DType::I64 => Dtype::I64,
            DType::I32 => Dtype::I32,
            DType::I16 => Dtype::I16,
            DType::I8 => Dtype::I8,
            DType::U8 => Dtype::U8,
            DType::Bool(_) => Dtype::BOOL,
            other => {
                return Err(format!(
                    "`{}`: {other:?} has no safetensors equivalent",
                    tensor.name
                ));
            }
        };
        let shape = tensor.shape.to_vec();
        let name = tensor.name.clone();
        let bytes = tensor.into_bytes().map_err(|e| format!("`{name}`: {e}"))?;
        Ok(Self {
            bytes,
            dtype,
            shape,
        })
    }
}

impl safetensors::View for SafetensorsView {
    fn dtype(&self) -> safetensors::Dtype {
        self.dtype
    }

    fn shape(&self) -> &[usize] {
        &self.shape
    }

    fn data(&self) -> std::borrow::Cow<'_, [u8]> {
        std::borrow::Cow::Borrowed(&self.bytes)
    }

    fn data_len(&self) -> usize {
        self.bytes.len()
    }
}

/// Runs `write` on a temporary file beside `path`, then renames it into place; on any failure
/// the temporary file is removed and `path` is untouched.
fn write_atomically(
    path: &Path,
    write: impl FnOnce(&Path) -> Result<(), String>,
) -> Result<(), ImportError> {
    let write_err = |message: String| ImportError::Write {
        path: path.to_path_buf(),
        message,
    };
    let file_name = path
        .file_name()
        .ok_or_else(|| write_err("not a file path".into()))?
        .to_string_lossy();
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| write_err(e.to_string()))?;
    }
    let tmp = path.with_file_name(format!(".{file_name}.partial-{}", std::process::id()));
    let renamed = write(&tmp)
        .map_err(write_err)
        .and_then(|()| std::fs::rename(&tmp, path).map_err(|e| write_err(e.to_string())));
    if renamed.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    renamed
}

/// Whether a burnpack key (Burn's names, which may begin with the enum variant of `Model`:
/// `ResNet.fc.weight`) lies in `model`'s head ([`model_zoo::ImportInfo::head_prefixes`]).
pub fn burnpack_key_in_head<M: Importable>(model: &M, key: &str) -> bool {
    let unwrapped = key.split_once('.').map_or(key, |(_, rest)| rest);
    model
        .import_info()
        .head_prefixes
        .iter()
        .any(|p| key.starts_with(p) || unwrapped.starts_with(p))
}

/// Every tensor of a burnpack file by key (Burn's names, enum variants kept), with its shape;
/// nothing is read but the header. What a caller reads to build the model a file was saved
/// from (its class count, its input channels) before [`load_burnpack`].
pub fn burnpack_shapes(
    path: impl AsRef<Path>,
) -> Result<BTreeMap<String, Vec<usize>>, ImportError> {
    let path = path.as_ref();
    std::fs::File::open(path).map_err(|source| ImportError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let mut store = BurnpackStore::from_file(path).auto_extension(false);
    Ok(store
        .get_all_tensors()
        .map_err(|e| ImportError::Unreadable {
            path: path.to_path_buf(),
            format: "burnpack",
            message: e.to_string(),
        })?
        .iter()
        .map(|(k, t)| (k.clone(), dims(t)))
        .collect())
}

/// Loads a burnpack file written by [`save_burnpack`] into `model`, strictly: the file must hold
/// exactly the model's tensors with the same shapes.
pub fn load_burnpack<M: Importable>(
    mut model: M,
    path: impl AsRef<Path>,
) -> Result<M, ImportError> {
    let path = path.as_ref();
    let found = burnpack_shapes(path)?;
    let mut store = BurnpackStore::from_file(path).auto_extension(false);
    // A file of another layout of the same model (ViT saved at another image size, MNASNet
    // 0.5's first stem, GoogLeNet without aux heads) rebuilds it, as the PyTorch importer does.
    // `conform_to` reads PyTorch's names, which burnpack's keys (enum variants kept) are not.
    if let Some(device) = model.devices().into_iter().next() {
        let name = model.import_info().name;
        let shapes = model_zoo::layers::burn_shapes_as_torch(&model, found.clone());
        model = model
            .conform_to_file(&shapes, &device)
            .map_err(|e| ImportError::Apply {
                path: path.to_path_buf(),
                model: name.to_string(),
                errors: vec![e.to_string()],
            })?;
    }
    // The input transform as saved; a file without the record (written before it was kept)
    // leaves the model's own.
    let unreadable = |message: String| ImportError::Unreadable {
        path: path.to_path_buf(),
        format: "burnpack",
        message,
    };
    let metadata = burn::store::burn_pack::Reader::from_file(path)
        .map_err(|e| unreadable(e.to_string()))?
        .metadata()
        .clone();
    if let Some(value) = metadata.get(TRANSFORM_INPUT_KEY) {
        let on = value.parse::<bool>().map_err(|_| {
            unreadable(format!(
                "metadata `{TRANSFORM_INPUT_KEY}` is {value:?}, not true or false"
            ))
        })?;
        let name = model.import_info().name;
        model = model
            .with_saved_transform_input(on)
            .map_err(|e| ImportError::Apply {
                path: path.to_path_buf(),
                model: name.to_string(),
                errors: vec![e.to_string()],
            })?;
    }
    // Burnpack is burn's native format: its paths keep enum variant names (`Basic`).
    let expected = model_zoo::layers::model_shapes(&model, model_zoo::layers::ShapeNames::Burn);
    // A features-only backbone (`without_head`) loads a classifier's file without its head.
    // Burn's keys may begin with the enum variant of `Model` (`ResNet.fc.weight`).
    let mut found = found;
    let name = model.import_info().name;
    if !model.import_info().has_head {
        found.retain(|key, _| expected.contains_key(key) || !burnpack_key_in_head(&model, key));
    }
    KeyDiff::between(&expected, &found).into_result(path, &name)?;
    model
        .load_from(&mut store)
        .map_err(|e| ImportError::Apply {
            path: path.to_path_buf(),
            model: name,
            errors: vec![e.to_string()],
        })?;
    Ok(model)
}
