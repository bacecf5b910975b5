//! Linear and convolution layers too large for a device to bind whole, kept as row blocks.
//!
//! Burn binds every tensor a kernel reads as one storage buffer, and many devices cap a binding:
//! WebGPU's default `maxStorageBufferBindingSize` is 128 MiB, and so is lavapipe's (software
//! Vulkan) and several integrated GPUs'. VGG's first classifier weight (`[4096, 25088]`, 392 MiB)
//! and AlexNet's (`[4096, 9216]`, 144 MiB) are over it. [`BlockedLinear`] keeps such a weight as
//! a few `Linear` layers, each under [`MAX_TENSOR_BYTES`], over disjoint ranges of the outputs,
//! and concatenates their outputs: each output is the same dot product as in one `Linear`, so
//! the numbers do not change.
//!
//! In parameter paths the blocks sit under `row_blocks` (`classifier.0.row_blocks.1.weight`).
//! What users and the importer see is torchvision's single tensor: [`torch_shapes`] merges the
//! blocks back into `classifier.0.weight` `[4096, 25088]`, [`split_row_blocks`] cuts a file's
//! tensor into the blocks before it is applied, and [`merge_row_blocks`] joins them for export.

use super::conv2d;
use std::collections::BTreeMap;

use super::BatchNorm;
use burn::module::{Module, ModuleVisitor, Param, RunningState};
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::{Initializer, Linear, LinearConfig};
use burn::store::burn_pack::{Bytes, Tensor as PackTensor};
use burn::tensor::{Bool, Device, Int, Tensor};

/// The largest tensor the zoo keeps in one piece, in bytes: 128 MiB, WebGPU's default
/// `maxStorageBufferBindingSize` (and lavapipe's limit).
pub const MAX_TENSOR_BYTES: usize = 128 << 20;

/// The field that holds the blocks, as it appears in parameter paths.
pub const ROW_BLOCKS: &str = "row_blocks";

/// A linear layer whose weight is kept as row blocks (ranges of output features), each under
/// [`MAX_TENSOR_BYTES`] in `f32`. Equal to one `Linear` of the whole size; see the module docs.
#[derive(Module, Debug)]
pub struct BlockedLinear {
    /// `Linear` layers over consecutive ranges of the outputs, in order.
    pub row_blocks: Vec<Linear>,
}

/// How many `f32` rows of `row_bytes` each fit under [`MAX_TENSOR_BYTES`], split as evenly as
/// possible over the fewest blocks: `[4096]` stays whole when it fits.
pub fn row_block_sizes(rows: usize, row_bytes: usize) -> Vec<usize> {
    let total = rows.saturating_mul(row_bytes);
    let blocks = total.div_ceil(MAX_TENSOR_BYTES).clamp(1, rows.max(1));
    (0..blocks)
        .map(|i| rows / blocks + usize::from(i < rows % blocks))
        .collect()
}

impl BlockedLinear {
    /// A `Linear` of `config`'s size, as blocks of output features each under
    /// [`MAX_TENSOR_BYTES`], every block initialised as `config` says (the fan-in, and so the
    /// initial distribution, is the whole layer's).
    pub fn new(config: &LinearConfig, device: &Device) -> Self {
        let row_bytes = config.d_input * std::mem::size_of::<f32>();
        let row_blocks = row_block_sizes(config.d_output, row_bytes)
            .into_iter()
            .map(|rows| {
                LinearConfig {
                    d_output: rows,
                    ..config.clone()
                }
                .init(device)
            })
            .collect();
        Self { row_blocks }
    }

    /// Input and output features of the whole layer.
    pub fn dims(&self) -> [usize; 2] {
        let d_in = self
            .row_blocks
            .first()
            .map_or(0, |b| b.weight.shape().dims::<2>()[0]);
        let d_out = self
            .row_blocks
            .iter()
            .map(|b| b.weight.shape().dims::<2>()[1])
            .sum();
        [d_in, d_out]
    }

    /// `x W^T + b` with the whole weight, each block through [`super::linear_last`] (the zoo's
    /// kernel on Flex: at batch 1 Burn's own product ran AlexNet's first classifier layer at
    /// 17 GB/s, a third of its batch-1 forward).
    ///
    /// # Shapes
    /// - input: `[batch, d_input]`
    /// - output: `[batch, d_output]`
    pub fn forward(&self, x: Tensor<2>) -> Tensor<2> {
        match self.row_blocks.as_slice() {
            [single] => super::linear_last(single, x),
            blocks => Tensor::cat(
                blocks
                    .iter()
                    .map(|b| super::linear_last(b, x.clone()))
                    .collect(),
                1,
            ),
        }
    }
}

/// A convolution whose weight `[out, in, kh, kw]` is over [`MAX_TENSOR_BYTES`] (RegNet Y
/// 128GF's 1x1 `[7392, 7392]`, 219 MB), kept as row blocks: convolutions over consecutive
/// ranges of the output channels, their outputs concatenated. Each output channel is the same
/// sum as in one convolution, so the numbers do not change. Ungrouped convolutions only (a
/// grouped one would split its groups); torchvision's key and shape all the same, as for
/// [`BlockedLinear`].
#[derive(Module, Debug)]
pub struct BlockedConv2d {
    /// Convolutions over consecutive ranges of the output channels, in order.
    pub row_blocks: Vec<Conv2d>,
}

impl BlockedConv2d {
    /// A convolution of `config`'s size (`groups` must be 1) as blocks of output channels each
    /// under [`MAX_TENSOR_BYTES`], weights drawn from `N(0, std)` (the whole layer's
    /// initialisation, which the caller computes from the whole layer's fan).
    pub fn new(config: &Conv2dConfig, std: f64, device: &Device) -> Self {
        let [c_in, c_out] = config.channels;
        let [kh, kw] = config.kernel_size;
        let row_bytes = c_in * kh * kw * std::mem::size_of::<f32>();
        let row_blocks = row_block_sizes(c_out, row_bytes)
            .into_iter()
            .map(|rows| {
                Conv2dConfig {
                    channels: [c_in, rows],
                    ..config.clone()
                }
                .with_initializer(Initializer::Normal { mean: 0.0, std })
                .init(device)
            })
            .collect();
        Self { row_blocks }
    }

    /// The convolution with the whole weight.
    ///
    /// # Shapes
    /// - input: `[batch, in, height, width]`
    /// - output: `[batch, out, height', width']`
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        match self.row_blocks.as_slice() {
            [single] => conv2d(single, x),
            blocks => Tensor::cat(blocks.iter().map(|b| conv2d(b, x.clone())).collect(), 1),
        }
    }

    /// `self` followed by `bn` (eval mode) as one blocked convolution: each block folded with
    /// its channels of the BatchNorm (see [`super::fold_batchnorm`]).
    pub fn fold_batchnorm(self, bn: &BatchNorm) -> Self {
        let mut start = 0;
        let row_blocks = self
            .row_blocks
            .into_iter()
            .map(|conv| {
                let rows = conv.weight.lazy_shape().dims::<4>()[0];
                let part = slice_batchnorm(bn, start..start + rows);
                start += rows;
                super::fold_batchnorm(conv, &part)
            })
            .collect();
        Self { row_blocks }
    }
}

/// Channels `range` of a BatchNorm, as a BatchNorm of their own.
fn slice_batchnorm(bn: &BatchNorm, range: std::ops::Range<usize>) -> BatchNorm {
    let slice = |t: Tensor<1>| t.slice(range.clone());
    BatchNorm {
        gamma: Param::from_tensor(slice(bn.gamma.val())),
        beta: Param::from_tensor(slice(bn.beta.val())),
        running_mean: RunningState::new(slice(bn.running_mean.value())),
        running_var: RunningState::new(slice(bn.running_var.value())),
        ..bn.clone()
    }
}

/// `prefix.row_blocks.3.weight` → (`prefix.weight`, 3).
fn parse_block_key(key: &str) -> Option<(String, usize)> {
    let marker = format!("{ROW_BLOCKS}.");
    let (prefix, rest) = if let Some(rest) = key.strip_prefix(&marker) {
        ("", rest)
    } else {
        let at = key.find(&format!(".{marker}"))?;
        (&key[..at + 1], &key[at + 1 + marker.len()..])
    };
    let (index, param) = rest.split_once('.')?;
    Some((format!("{prefix}{param}"), index.parse().ok()?))
}

/// The model's tensors as PyTorch names and shapes them (`BurnToPyTorchAdapter`, enum variants
/// skipped), with row blocks merged: exactly the keys and shapes of torchvision's state_dict
/// (less `num_batches_tracked`). Reads lazy shapes only (see [`model_shapes`]).
pub fn torch_shapes<M: Module>(model: &M) -> BTreeMap<String, Vec<usize>> {
    let (whole, groups) = group_blocks(model_shapes(model, ShapeNames::PyTorch));
    let mut shapes: BTreeMap<String, Vec<usize>> = whole.into_iter().collect();
    for (key, parts) in groups {
        let mut shape = parts[0].clone();
        shape[0] = parts.iter().map(|s| s[0]).sum();
        shapes.insert(key, shape);
    }
    shapes
}

/// How [`model_shapes`] names and lays out a model's tensors.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ShapeNames {
    /// As `ModuleSnapshot::collect(None, Some(BurnToPyTorchAdapter), true)`: enum variants
    /// skipped, norms' `gamma`/`beta` as `weight`/`bias`, `Linear` weights `[out, in]`.
    PyTorch,
    /// As `ModuleSnapshot::collect(None, None, false)`: Burn's names with enum variants, which
    /// burnpack files keep.
    Burn,
}

/// Every tensor of `model` (parameters and BatchNorm's running statistics), by key, with its
/// shape, named as `names` says.
///
/// burn-store's `collect` gives the same keys and shapes, but it reads every parameter's value
/// (`transform_for_save().val()`), which initialises each lazy parameter, random draws and all,
/// only to be replaced by the file's: for `vit_h_14` that is 632M normal draws before a load.
/// This walk reads `lazy_shape()` and initialises nothing (the registry's tests check it).
pub fn model_shapes<M: Module>(model: &M, names: ShapeNames) -> BTreeMap<String, Vec<usize>> {
    walk(model, names).shapes
}

/// The tensors of a file with burnpack's (Burn's) keys, as `model`'s PyTorch keys and layouts
/// name them: what [`crate::ImportHooks::conform_to`] reads. A key the model does not have (an
/// aux head it was built without) is kept as it is.
pub fn burn_shapes_as_torch<M: Module>(
    model: &M,
    burn_shapes: impl IntoIterator<Item = (String, Vec<usize>)>,
) -> std::collections::HashMap<String, Vec<usize>> {
    let names = walk(model, ShapeNames::PyTorch).burn_to_torch;
    burn_shapes
        .into_iter()
        .map(|(key, mut shape)| match names.get(&key) {
            Some((torch, transposed)) => {
                if *transposed {
                    shape.swap(0, 1);
                }
                (torch.clone(), shape)
            }
            None => (key, shape),
        })
        .collect()
}

fn walk<M: Module>(model: &M, names: ShapeNames) -> ShapeWalker {
    let mut walker = ShapeWalker {
        names,
        path: Vec::new(),
        burn_path: Vec::new(),
        containers: Vec::new(),
        shapes: BTreeMap::new(),
        burn_to_torch: BTreeMap::new(),
    };
    model.visit(&mut walker);
    walker
}

struct ShapeWalker {
    names: ShapeNames,
    path: Vec<String>,
    /// The path with every container, as Burn (and burnpack) names it.
    burn_path: Vec<String>,
    containers: Vec<String>,
    shapes: BTreeMap<String, Vec<usize>>,
    /// Burn key to this walk's key, and whether the layout is transposed (Linear weights).
    burn_to_torch: BTreeMap<String, (String, bool)>,
}

impl ShapeWalker {
    fn skips(&self, container_type: &str) -> bool {
        self.names == ShapeNames::PyTorch && container_type.starts_with("Enum:")
    }

    fn add(&mut self, mut shape: Vec<usize>) {
        let Some(param) = self.path.last() else {
            return;
        };
        let mut key = self.path.join(".");
        let mut transposed = false;
        if self.names == ShapeNames::PyTorch {
            // burn-store's `BurnToPyTorchAdapter`, on the innermost user-defined module.
            let module = self
                .containers
                .iter()
                .rev()
                .find(|c| c.starts_with("Struct:") || c.starts_with("Enum:"))
                .map(String::as_str);
            let norm = matches!(
                module,
                Some(
                    "Struct:BatchNorm" | "Struct:LayerNorm" | "Struct:GroupNorm" | "Struct:RmsNorm"
                )
            );
            if module == Some("Struct:Linear") && param == "weight" && shape.len() == 2 {
                shape.swap(0, 1);
                transposed = true;
            } else if norm && (param == "gamma" || param == "beta") {
                let torch = if param == "gamma" { "weight" } else { "bias" };
                key = format!("{}{torch}", &key[..key.len() - param.len()]);
            }
        }
        self.burn_to_torch
            .insert(self.burn_path.join("."), (key.clone(), transposed));
        self.shapes.insert(key, shape);
    }
}

impl ModuleVisitor for ShapeWalker {
    fn enter_module(&mut self, name: &str, container_type: &str) {
        if !self.skips(container_type) {
            self.path.push(name.to_string());
        }
        self.burn_path.push(name.to_string());
        self.containers.push(container_type.to_string());
    }

    fn exit_module(&mut self, _name: &str, container_type: &str) {
        self.containers.pop();
        self.burn_path.pop();
        if !self.skips(container_type) {
            self.path.pop();
        }
    }

    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        self.add(param.lazy_shape().to_vec());
    }

    fn visit_int<const D: usize>(&mut self, param: &Param<Tensor<D, Int>>) {
        self.add(param.lazy_shape().to_vec());
    }

    fn visit_bool<const D: usize>(&mut self, param: &Param<Tensor<D, Bool>>) {
        self.add(param.lazy_shape().to_vec());
    }
}

/// The row blocks a model keeps: for each merged PyTorch key, its blocks' keys in order with
/// their row counts.
fn block_layout<M: Module>(model: &M) -> BTreeMap<String, Vec<(String, usize)>> {
    let shapes = model_shapes(model, ShapeNames::PyTorch);
    let (_, groups) = group_blocks(shapes.into_iter().map(|(name, shape)| {
        let rows = shape.first().copied().unwrap_or(0);
        (name.clone(), (name, rows))
    }));
    groups.into_iter().collect()
}

/// Tensors kept whole, by key; and row-block groups, by merged key, their parts in block order.
type Grouped<T> = (Vec<(String, T)>, Vec<(String, Vec<T>)>);

/// Sorts `items`, named by their PyTorch keys, into those kept whole and the row-block groups:
/// each group under its merged key, in the order first seen, its parts in block order.
fn group_blocks<T>(items: impl IntoIterator<Item = (String, T)>) -> Grouped<T> {
    let mut whole = Vec::new();
    let mut groups: Vec<(String, Vec<(usize, T)>)> = Vec::new();
    for (name, item) in items {
        match parse_block_key(&name) {
            Some((merged, index)) => match groups.iter_mut().find(|(key, _)| *key == merged) {
                Some((_, parts)) => parts.push((index, item)),
                None => groups.push((merged, vec![(index, item)])),
            },
            None => whole.push((name, item)),
        }
    }
    let groups = groups
        .into_iter()
        .map(|(key, mut parts)| {
            parts.sort_by_key(|(index, _)| *index);
            (key, parts.into_iter().map(|(_, item)| item).collect())
        })
        .collect();
    (whole, groups)
}

/// A row-block operation that the tensors given cannot take.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{key}`: {message}")]
pub struct RowBlockError {
    /// The tensor's PyTorch key.
    pub key: String,
    /// What is wrong.
    pub message: String,
}

/// Cuts each tensor (PyTorch names and layout, as read from a torchvision file) that `model`
/// keeps in row blocks into those blocks, named as the model names them, ready for
/// `ModuleSnapshot::apply` with `PyTorchToBurnAdapter`. The file's bytes are shared, not copied,
/// where the reader allows it. Tensors the model keeps whole pass through unchanged; shapes
/// must already have been checked against [`torch_shapes`].
pub fn split_row_blocks<M: Module>(
    model: &M,
    tensors: Vec<PackTensor>,
) -> Result<Vec<PackTensor>, RowBlockError> {
    let layout = block_layout(model);
    if layout.is_empty() {
        return Ok(tensors);
    }
    let mut out = Vec::with_capacity(tensors.len());
    for tensor in tensors {
        let Some(parts) = layout.get(&tensor.name) else {
            out.push(tensor);
            continue;
        };
        let key = tensor.name.clone();
        let fail = |message: String| RowBlockError {
            key: key.clone(),
            message,
        };
        let shape = tensor.shape.to_vec();
        let rows = shape.first().copied().unwrap_or(0);
        let byte_len = tensor.byte_len();
        if rows == 0 || byte_len % rows != 0 {
            return Err(fail(format!(
                "cannot cut {byte_len} bytes of shape {shape:?} into rows"
            )));
        }
        let row_bytes = byte_len / rows;
        let (dtype, param_id) = (tensor.dtype, tensor.param_id);
        let bytes = tensor
            .into_bytes()
            .map_err(|e| fail(e.to_string()))?
            .shared();
        let mut start = 0;
        for (name, block_rows) in parts {
            let end = start + block_rows;
            let (from, to) = (start * row_bytes, end * row_bytes);
            let window = match bytes.view(from, to) {
                Ok(window) => window,
                // A reader whose bytes cannot be windowed: copy this block.
                Err(_) => Bytes::from_bytes_vec(bytes[from..to].to_vec()),
            };
            let mut block_shape = shape.clone();
            block_shape[0] = *block_rows;
            out.push(PackTensor::new(
                name.clone(),
                dtype,
                block_shape,
                param_id,
                window,
            ));
            start = end;
        }
        if start != rows {
            return Err(fail(format!(
                "the model's blocks hold {start} rows, the tensor {rows}"
            )));
        }
    }
    Ok(out)
}

/// Joins row blocks (PyTorch names and layout, as `collect` with `BurnToPyTorchAdapter` gives
/// them) back into torchvision's single tensors, for export. Other tensors pass through.
pub fn merge_row_blocks(tensors: Vec<PackTensor>) -> Result<Vec<PackTensor>, RowBlockError> {
    let (whole, groups) = group_blocks(tensors.into_iter().map(|t| (t.name.clone(), t)));
    let mut out: Vec<PackTensor> = whole.into_iter().map(|(_, t)| t).collect();
    for (key, parts) in groups {
        let fail = |message: String| RowBlockError {
            key: key.clone(),
            message,
        };
        let first = &parts[0];
        let (dtype, param_id) = (first.dtype, first.param_id);
        let mut shape = first.shape.to_vec();
        shape[0] = parts.iter().map(|t| t.shape.to_vec()[0]).sum();
        let mut data = Vec::with_capacity(parts.iter().map(PackTensor::byte_len).sum());
        for part in parts {
            let bytes = part.into_bytes().map_err(|e| fail(e.to_string()))?;
            data.extend_from_slice(&bytes);
        }
        out.push(PackTensor::new(
            key.clone(),
            dtype,
            shape,
            param_id,
            Bytes::from_bytes_vec(data),
        ));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::store::PyTorchToBurnAdapter;
    use burn::store::{BurnToPyTorchAdapter, ModuleSnapshot};
    use burn::tensor::TensorData;

    use crate::device::test_device as device;

    #[test]
    fn blocks_stay_under_the_limit_and_cover_every_row() {
        // VGG's classifier.0 ([4096, 25088] f32) and AlexNet's ([4096, 9216]).
        assert_eq!(row_block_sizes(4096, 25088 * 4), [1024; 4]);
        assert_eq!(row_block_sizes(4096, 9216 * 4), [2048; 2]);
        assert_eq!(row_block_sizes(4096, 4096 * 4), [4096]);
        for (rows, row_bytes) in [(4097, 100_000), (7, 40_000_000), (1, 1 << 30), (0, 4)] {
            let sizes = row_block_sizes(rows, row_bytes);
            assert_eq!(sizes.iter().sum::<usize>(), rows);
            if rows > 1 {
                assert!(sizes.iter().all(|r| r * row_bytes <= MAX_TENSOR_BYTES));
            }
        }
    }

    #[test]
    fn block_keys_parse_to_the_merged_key() {
        assert_eq!(
            parse_block_key("classifier.0.row_blocks.3.weight"),
            Some(("classifier.0.weight".into(), 3))
        );
        assert_eq!(
            parse_block_key("row_blocks.0.bias"),
            Some(("bias".into(), 0))
        );
        assert_eq!(parse_block_key("classifier.0.weight"), None);
        assert_eq!(parse_block_key("blocks.0.weight"), None);
    }

    /// A model holding one blocked layer, small enough for a test: the blocks are made by hand.
    #[derive(Module, Debug)]
    struct Holder {
        fc: BlockedLinear,
    }

    fn holder(rows: &[usize], d_in: usize, device: &Device) -> Holder {
        let row_blocks = rows
            .iter()
            .map(|&r| LinearConfig::new(d_in, r).init(device))
            .collect();
        Holder {
            fc: BlockedLinear { row_blocks },
        }
    }

    #[test]
    fn blocks_compute_one_linear_and_round_trip_through_torch_layout() {
        let device = device();
        let model = holder(&[3, 2], 4, &device);
        assert_eq!(model.fc.dims(), [4, 5]);
        let shapes = torch_shapes(&model);
        assert_eq!(shapes["fc.weight"], [5, 4]);
        assert_eq!(shapes["fc.bias"], [5]);
        assert_eq!(shapes.len(), 2);

        // Export: one torchvision tensor each, rows in block order.
        let exported =
            merge_row_blocks(model.collect(None, Some(Box::new(BurnToPyTorchAdapter)), true))
                .unwrap();
        let weight = exported.iter().find(|t| t.name == "fc.weight").unwrap();
        assert_eq!(weight.shape.to_vec(), [5, 4]);

        // The same values as one Linear with that weight.
        let w: Vec<f32> = bytes_f32(weight);
        let b: Vec<f32> = bytes_f32(exported.iter().find(|t| t.name == "fc.bias").unwrap());
        let x = Tensor::<2>::from_data(
            TensorData::new(vec![1.0f32, -2.0, 0.5, 3.0], [1, 4]),
            &device,
        );
        let got = model.fc.forward(x).into_data().try_to_vec::<f32>().unwrap();
        for o in 0..5 {
            let expected: f32 = b[o]
                + [1.0f32, -2.0, 0.5, 3.0]
                    .iter()
                    .enumerate()
                    .map(|(i, xi)| w[o * 4 + i] * xi)
                    .sum::<f32>();
            assert!(
                (got[o] - expected).abs() < 1e-5,
                "{o}: {} vs {expected}",
                got[o]
            );
        }

        // Import: the merged tensors split back into the blocks reproduce the model.
        let mut copy = holder(&[3, 2], 4, &device);
        let split = split_row_blocks(&copy, exported).unwrap();
        let names: Vec<&str> = split.iter().map(|t| t.name.as_str()).collect();
        assert!(names.contains(&"fc.row_blocks.1.weight"), "{names:?}");
        let result = copy.apply(split, None, Some(Box::new(PyTorchToBurnAdapter)), true);
        assert!(
            result.errors.is_empty() && result.missing.is_empty(),
            "{result:?}"
        );
        for (a, b) in model.fc.row_blocks.iter().zip(&copy.fc.row_blocks) {
            a.weight
                .val()
                .into_data()
                .assert_eq(&b.weight.val().into_data(), true);
        }
    }

    #[derive(Module, Debug)]
    struct ConvHolder {
        conv: BlockedConv2d,
    }

    /// A blocked convolution computes, folds and imports as one convolution of the whole
    /// weight.
    #[test]
    fn blocked_convolution_is_one_convolution() {
        use super::super::BatchNormConfig;

        let device = device();
        let whole = Conv2dConfig::new([4, 5], [3, 3])
            .with_padding(burn::nn::PaddingConfig2d::Explicit(1, 1, 1, 1))
            .init(&device);
        let rows = |range: std::ops::Range<usize>| Conv2d {
            weight: Param::from_tensor(whole.weight.val().slice(range.clone())),
            bias: whole
                .bias
                .as_ref()
                .map(|b| Param::from_tensor(b.val().slice(range))),
            ..whole.clone()
        };
        let blocked = BlockedConv2d {
            row_blocks: vec![rows(0..3), rows(3..5)],
        };
        let x = Tensor::<4>::random(
            [2, 4, 7, 6],
            burn::tensor::Distribution::Normal(0.0, 1.0),
            &device,
        );
        let expected = conv2d(&whole, x.clone()).into_data();
        blocked
            .forward(x.clone())
            .into_data()
            .assert_approx_eq::<f32>(&expected, burn::tensor::Tolerance::default());

        // torchvision's single key and shape.
        let holder = ConvHolder { conv: blocked };
        let shapes = torch_shapes(&holder);
        assert_eq!(shapes.get("conv.weight"), Some(&vec![5, 4, 3, 3]));
        assert_eq!(shapes.get("conv.bias"), Some(&vec![5]));

        // Folding a BatchNorm into the blocks is folding it into the whole convolution.
        let mut bn = BatchNormConfig::new(5).init(&device);
        bn.running_mean =
            RunningState::new(Tensor::from_floats([0.1, -0.2, 0.3, 0.0, 0.5], &device));
        bn.running_var = RunningState::new(Tensor::from_floats([0.5, 1.5, 2.0, 0.7, 1.1], &device));
        bn.gamma = Param::from_tensor(Tensor::from_floats([1.2, 0.8, -0.5, 1.0, 0.3], &device));
        let expected = conv2d(&super::super::fold_batchnorm(whole, &bn), x.clone()).into_data();
        holder
            .conv
            .fold_batchnorm(&bn)
            .forward(x)
            .into_data()
            .assert_approx_eq::<f32>(&expected, burn::tensor::Tolerance::default());
    }

    fn bytes_f32(tensor: &PackTensor) -> Vec<f32> {
        tensor
            .to_bytes()
            .unwrap()
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect()
    }
}
