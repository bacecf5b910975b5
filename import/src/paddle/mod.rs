//! PaddlePaddle `.pdparams` files: read without executing anything, renamed from Paddle's
//! layout to the zoo's, and loaded with the same strictness as PyTorch files.
//!
//! Two layouts are understood, told apart by the file's keys:
//! - **`paddle.vision.models`**: torchvision's names (`conv1`, `layer1.0.downsample.0`, `fc`);
//!   BatchNorm's running statistics are `_mean` and `_variance`.
//! - **The dygraph ResNet tutorial** (ResNet-50/101/152 with `ConvBNLayer` and
//!   `BottleneckBlock`): `conv._conv`, `conv._batch_norm`, `bb_{stage}_{block}.conv{0,1,2}`, the
//!   first block's `short`, and the head `out`.
//!
//! In both, Paddle's `nn.Linear` stores its weight `[in, out]`, transposed against PyTorch's; every
//! 2-D `weight` is a Linear's in these networks and is transposed on reading.

mod layout;
mod pickle;

use std::path::PathBuf;

use burn::store::burn_pack::Tensor as PackTensor;
use burn::tensor::TensorData;
use model_zoo::Importable;

use crate::ImportError;
use crate::apply::{ImportReport, Options, StateDict, import_options, load_state};
pub use layout::PaddleLayout;
use pickle::{Entry, NdArray, PickleError};

/// Loads a PaddlePaddle `.pdparams` file (`paddle.save(layer.state_dict(), path)`) into a model:
/// a `paddle.vision.models` ResNet, or the dygraph tutorial's ResNet-50/101/152, into the zoo's
/// ResNet of the same depth.
///
/// ```no_run
/// use model_zoo::resnet::ResNetConfig;
/// use zoo_import::PaddleImport;
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let device = burn::tensor::Device::flex();
/// let model = ResNetConfig::resnet50().init(&device)?;
/// let (model, report) = PaddleImport::new("resnet50.pdparams").load_into(model)?;
/// println!("{report}");
/// # Ok(()) }
/// ```
///
/// The file is a pickle; only numpy's array and dtype constructors (and `_codecs.encode`,
/// protocol 2's spelling of bytes) are understood, and a pickle naming any other Python global
/// is refused with [`ImportError::UnsafePickle`] before anything is built from it.
#[derive(Debug, Clone)]
pub struct PaddleImport {
    options: Options,
}

/// The format names a report gives, one per layout.
const FORMAT_VISION: &str = "PaddlePaddle .pdparams, paddle.vision layout";
const FORMAT_TUTORIAL: &str = "PaddlePaddle .pdparams, tutorial layout";
/// What an unreadable `.pdparams` was read as.
const FORMAT: &str = "PaddlePaddle .pdparams";

impl PaddleImport {
    /// An import of `path`.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self {
            options: Options::new(path.into()),
        }
    }

    pub(crate) fn with_options(options: Options) -> Self {
        Self { options }
    }

    import_options!();

    /// Fills `model` from the file, strictly (see [`PaddleImport::partial`]). Keys in errors are
    /// the zoo's, each followed by the file's own spelling.
    ///
    /// On success the model holds the file's weights and the report says what was read and in
    /// which layout; on error nothing was applied.
    pub fn load_into<M: Importable>(&self, model: M) -> Result<(M, ImportReport), ImportError> {
        let (arrays, ignored) = self.read_arrays()?;
        let expected = model_zoo::layers::torch_shapes(&model);
        let keys: Vec<&str> = arrays.iter().map(|(k, _)| k.as_str()).collect();
        let layout = PaddleLayout::detect(&keys, &expected).ok_or_else(|| {
            self.unreadable(format!(
                "its keys fit neither Paddle layout the zoo reads ({}); keys seen: {}",
                PaddleLayout::ALL
                    .iter()
                    .map(|l| l.describe())
                    .collect::<Vec<_>>()
                    .join("; "),
                sample(&keys)
            ))
        })?;
        let tensors = arrays
            .into_iter()
            .map(|(key, array)| {
                let name = layout.to_zoo(&key);
                self.tensor(&key, name, array)
            })
            .collect::<Result<Vec<PackTensor>, ImportError>>()?;
        let state = StateDict {
            tensors,
            format: match layout {
                PaddleLayout::Vision => FORMAT_VISION,
                PaddleLayout::Tutorial => FORMAT_TUTORIAL,
            },
            nested_under: String::new(),
            stripped_module_prefix: false,
            ignored,
            file_key: layout.file_key_fn(),
        };
        load_state(&self.options, model, state)
    }

    fn unreadable(&self, message: String) -> ImportError {
        ImportError::Unreadable {
            path: self.options.path.clone(),
            format: FORMAT,
            message,
        }
    }

    /// The file's arrays by their Paddle keys, split arrays rejoined, and the number of
    /// bookkeeping entries dropped.
    fn read_arrays(&self) -> Result<(Vec<(String, NdArray)>, usize), ImportError> {
        let path = &self.options.path;
        let bytes = std::fs::read(path).map_err(|source| ImportError::Io {
            path: path.clone(),
            source,
        })?;
        let entries = pickle::read_dict(&bytes).map_err(|e| match e {
            PickleError::Forbidden(global) => ImportError::UnsafePickle {
                path: path.clone(),
                global,
            },
            PickleError::Malformed(message) => self.unreadable(message),
        })?;
        let mut arrays = Vec::new();
        let mut splits = Vec::new();
        let mut ignored = 0;
        for (key, entry) in entries {
            match entry {
                Entry::Array(array) => arrays.push((key, array)),
                // `UnpackBigParamInfor@@`'s entries describe split arrays.
                Entry::Split { shape, slices } => splits.push((key, shape, slices)),
                // `StructuredToParameterName@@` and other bookkeeping.
                Entry::Other(_) if key.ends_with("@@") => ignored += 1,
                Entry::Other(kind) => {
                    return Err(self.unreadable(format!(
                        "`{key}` holds a {kind}, not an array: is this a state_dict saved with \
                         paddle.save(layer.state_dict(), path)?"
                    )));
                }
            }
        }
        if !splits.is_empty() {
            ignored += 1; // `UnpackBigParamInfor@@` itself.
        }
        for (key, shape, slices) in splits {
            let array = self.rejoin(&key, shape, &slices, &mut arrays)?;
            arrays.push((key, array));
        }
        Ok((arrays, ignored))
    }

    /// Concatenates the 1-D slices `key@@.0`, `key@@.1`, ... that Paddle writes for an array over
    /// 2^30 bytes in protocols 2 and 3, and gives the result `shape`.
    fn rejoin(
        &self,
        key: &str,
        shape: Vec<usize>,
        slices: &[String],
        arrays: &mut Vec<(String, NdArray)>,
    ) -> Result<NdArray, ImportError> {
        let mut joined: Option<NdArray> = None;
        for slice in slices {
            let at = arrays.iter().position(|(k, _)| k == slice).ok_or_else(|| {
                self.unreadable(format!("`{key}`: its slice `{slice}` is missing"))
            })?;
            let (_, part) = arrays.remove(at);
            match &mut joined {
                None => joined = Some(part),
                Some(whole) => {
                    if part.dtype != whole.dtype || part.big_endian != whole.big_endian {
                        return Err(
                            self.unreadable(format!("`{key}`: its slices have different dtypes"))
                        );
                    }
                    whole.data.extend(part.data);
                }
            }
        }
        let mut whole =
            joined.ok_or_else(|| self.unreadable(format!("`{key}`: split into no slices")))?;
        whole.shape = shape;
        whole.fortran = false;
        Ok(whole)
    }

    /// One array as f32 in C order, named `name`, in PyTorch's layout. `key` is the file's name.
    fn tensor(&self, key: &str, name: String, array: NdArray) -> Result<PackTensor, ImportError> {
        let values = to_f32(&array).map_err(|m| self.unreadable(format!("`{key}`: {m}")))?;
        let mut shape = array.shape;
        let mut values = if array.fortran {
            fortran_to_c(&values, &shape)
        } else {
            values
        };
        if shape.len() == 2 && name.ends_with(".weight") {
            values = transpose(&values, shape[0], shape[1]);
            shape.swap(0, 1);
        }
        Ok(burn::store::bridge::from_data(
            TensorData::new(values, shape),
            name,
            None,
        ))
    }
}

/// The first keys of a file, for an error message.
fn sample(keys: &[&str]) -> String {
    let mut out = keys.iter().take(8).copied().collect::<Vec<_>>().join(", ");
    if keys.len() > 8 {
        out.push_str(&format!(", ... ({} keys)", keys.len()));
    }
    if keys.is_empty() {
        out.push_str("none");
    }
    out
}

/// The array's elements as f32, checking that its bytes hold exactly its shape.
fn to_f32(array: &NdArray) -> Result<Vec<f32>, String> {
    let size = match array.dtype.as_str() {
        "f2" | "e" => 2,
        "f4" | "f" => 4,
        "f8" | "d" => 8,
        other => {
            return Err(format!(
                "dtype {other} is not a float dtype (f2, f4 or f8); weights are floats"
            ));
        }
    };
    let count = array
        .shape
        .iter()
        .try_fold(1usize, |n, &d| n.checked_mul(d))
        .ok_or_else(|| format!("shape {:?} overflows", array.shape))?;
    let expected = count.checked_mul(size);
    if expected != Some(array.data.len()) {
        return Err(format!(
            "{} bytes of data for shape {:?} of {} ({} bytes expected)",
            array.data.len(),
            array.shape,
            array.dtype,
            count * size
        ));
    }
    let big = array.big_endian;
    let values = array.data.chunks_exact(size).map(|c| match size {
        2 => {
            let bits = [c[0], c[1]];
            burn::tensor::f16::from_bits(if big {
                u16::from_be_bytes(bits)
            } else {
                u16::from_le_bytes(bits)
            })
            .to_f32()
        }
        4 => {
            let bits = [c[0], c[1], c[2], c[3]];
            if big {
                f32::from_be_bytes(bits)
            } else {
                f32::from_le_bytes(bits)
            }
        }
        _ => {
            let mut bits = [0; 8];
            bits.copy_from_slice(c);
            (if big {
                f64::from_be_bytes(bits)
            } else {
                f64::from_le_bytes(bits)
            }) as f32
        }
    });
    Ok(values.collect())
}

/// Column-major `values` of `shape` in row-major order.
fn fortran_to_c(values: &[f32], shape: &[usize]) -> Vec<f32> {
    let mut out = vec![0.0; values.len()];
    let mut index = vec![0usize; shape.len()];
    for slot in out.iter_mut() {
        // Row-major position `index`, read from its column-major offset.
        let mut offset = 0;
        let mut stride = 1;
        for (i, &d) in index.iter().zip(shape) {
            offset += i * stride;
            stride *= d;
        }
        *slot = values[offset];
        for axis in (0..shape.len()).rev() {
            index[axis] += 1;
            if index[axis] < shape[axis] {
                break;
            }
            index[axis] = 0;
        }
    }
    out
}

/// `[rows, cols]` row-major `values` transposed to `[cols, rows]`.
fn transpose(values: &[f32], rows: usize, cols: usize) -> Vec<f32> {
    let mut out = vec![0.0; values.len()];
    for r in 0..rows {
        for c in 0..cols {
            out[c * rows + r] = values[r * cols + c];
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fortran_order_is_reordered() {
        // [[0, 1, 2], [3, 4, 5]] stored column-major.
        let f = [0.0, 3.0, 1.0, 4.0, 2.0, 5.0];
        assert_eq!(fortran_to_c(&f, &[2, 3]), [0.0, 1.0, 2.0, 3.0, 4.0, 5.0]);
        let c: Vec<f32> = (0..24).map(|v| v as f32).collect();
        // Column-major of a [2, 3, 4] array: element (i, j, k) at i + 2j + 6k.
        let mut f = vec![0.0; 24];
        for i in 0..2 {
            for j in 0..3 {
                for k in 0..4 {
                    f[i + 2 * j + 6 * k] = c[i * 12 + j * 4 + k];
                }
            }
        }
        assert_eq!(fortran_to_c(&f, &[2, 3, 4]), c);
    }

    #[test]
    fn short_data_names_both_lengths() {
        let array = NdArray {
            shape: vec![2, 3],
            dtype: "f4".into(),
            big_endian: false,
            fortran: false,
            data: vec![0; 20],
        };
        let err = to_f32(&array).unwrap_err();
        assert!(
            err.contains("20 bytes") && err.contains("24 bytes expected"),
            "{err}"
        );
        let ints = NdArray {
            dtype: "i8".into(),
            data: vec![0; 48],
            ..array
        };
        assert!(to_f32(&ints).unwrap_err().contains("dtype i8"));
    }

    #[test]
    fn half_and_double_become_f32() {
        let half = NdArray {
            shape: vec![2],
            dtype: "f2".into(),
            big_endian: false,
            fortran: false,
            data: [
                burn::tensor::f16::from_f32(1.5).to_le_bytes(),
                burn::tensor::f16::from_f32(-2.0).to_le_bytes(),
            ]
            .concat(),
        };
        assert_eq!(to_f32(&half).unwrap(), [1.5, -2.0]);
        let double = NdArray {
            dtype: "f8".into(),
            big_endian: true,
            data: [0.25f64.to_be_bytes(), 3.0f64.to_be_bytes()].concat(),
            ..half
        };
        assert_eq!(to_f32(&double).unwrap(), [0.25, 3.0]);
    }
}
