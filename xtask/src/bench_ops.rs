//! `cargo xtask bench --ops [--models vit_b_16,...]`: where the time of a model's forward goes,
//! op by op, in burn and in PyTorch on the same shapes, for any model of the zoo.
//!
//! The op list is PyTorch's, not written by hand: `xtask/python/bench_ops.py` runs the
//! torchvision model's forward (eval, no_grad, the batch at `size x size`) under a
//! `TorchDispatchMode` that records every aten op with its input shapes, strides and other
//! arguments, groups identical calls with their count, and times each alone (and the whole
//! forward). Here each aten op is mapped to what the zoo runs for it (the zoo's own functions
//! where it has one: [`model_zoo::layers::conv2d`], its `BatchNorm`, `layer_norm`, activations,
//! `MultiheadAttention`, ...; Burn's op where the zoo calls Burn's) and timed alone on the chosen
//! backend, on tensors with PyTorch's shapes and strides, in child processes of this binary. An
//! op with no mapping is listed with PyTorch's time only ("unmapped"), never dropped; the views
//! (reshape, permute, slices, ...) are one kind, timed in both engines. An element-wise op
//! (activation, BatchNorm, add, mul, softmax, ...) gets a fresh copy of its input before each
//! call (outside the clock) in burn, as in a model, where the op before hands over its output and
//! the zoo's kernels may write over it; PyTorch gets a fresh copy for its in-place ops (`relu_`,
//! `add_`). Fusions the zoo makes inside a model (BatchNorm with its activation, say) are not
//! seen op by op: the whole forward is timed beside the sums for that. The sums over the model
//! (time of one call x count) say which kind of op holds how much of the gap to PyTorch; each row
//! is a minimal reproducer (one op, one shape, two numbers).
//!
//! `--ops-train` keeps the earlier table of resnet18's training step: each convolution's forward,
//! input gradient and weight gradient.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{Context, Result, anyhow, bail};
use burn::module::Param;
use burn::nn::conv::Conv2d;
use burn::nn::pool::{AvgPool2dConfig, MaxPool2dConfig};
use burn::nn::{Linear, PaddingConfig2d};
use burn::tensor::ops::PadMode;
use burn::tensor::{Bool, Device, Distribution, Int, Slice, Tensor};
use model_zoo::layers::{ActivationKind, BatchNormConfig, MultiheadAttention};
use model_zoo::{Architecture, Backend};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// The models of `bench --ops` without `--models`.
pub const DEFAULT_MODELS: [&str; 1] = ["resnet50"];

/// One timed case of a child process.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Op {
    /// A convolution of the training-step table (`--ops-train`).
    Train(TrainOp),
    /// One aten op as PyTorch recorded it, run as the zoo runs it.
    Aten(AtenOp),
    /// The zoo model's whole forward (eval, a random input, the logits read back).
    Forward {
        model: String,
        batch: usize,
        size: usize,
    },
}

/// What a child reports for one [`Op`].
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BurnTime {
    /// Median seconds of one call.
    Seconds(f64),
    /// No burn counterpart is mapped for this aten op.
    Unmapped,
    /// The mapping ran and failed (error or panic).
    Failed(String),
}

impl BurnTime {
    fn seconds(&self) -> Option<f64> {
        match self {
            BurnTime::Seconds(s) => Some(*s),
            _ => None,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The training-step table (`--ops-train`), as before.

/// One op of resnet18's training step on one shape (batch `n`, NCHW).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum TrainOp {
    /// `conv2d` without bias (torchvision's ResNet convolutions have none).
    Conv2d {
        n: usize,
        cin: usize,
        cout: usize,
        k: usize,
        stride: usize,
        pad: usize,
        size: usize,
    },
    /// The input gradient of a convolution, as autodiff computes it in a training step: timed
    /// as forward + backward with only the input requiring a gradient, less the forward alone
    /// (each engine's own).
    ConvInputGrad(ConvShape),
    /// The weight gradient of a convolution, timed as [`TrainOp::ConvInputGrad`] with only the
    /// weight requiring a gradient.
    ConvWeightGrad(ConvShape),
}

/// A bias-free convolution's shape (the fields of [`TrainOp::Conv2d`]), for its gradients.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ConvShape {
    n: usize,
    cin: usize,
    cout: usize,
    k: usize,
    stride: usize,
    pad: usize,
    size: usize,
}

impl ConvShape {
    /// The forward convolution.
    fn forward(self) -> TrainOp {
        let ConvShape {
            n,
            cin,
            cout,
            k,
            stride,
            pad,
            size,
        } = self;
        TrainOp::Conv2d {
            n,
            cin,
            cout,
            k,
            stride,
            pad,
            size,
        }
    }
}

impl TrainOp {
    fn kind(&self) -> &'static str {
        match self {
            TrainOp::Conv2d { k: 1, .. } => "conv 1x1",
            TrainOp::Conv2d { k: 3, .. } => "conv 3x3",
            TrainOp::Conv2d { .. } => "conv 7x7 (stem)",
            TrainOp::ConvInputGrad(_) => "conv input gradient",
            TrainOp::ConvWeightGrad(_) => "conv weight gradient",
        }
    }

    fn shape(&self) -> ConvShape {
        match *self {
            TrainOp::ConvInputGrad(shape) | TrainOp::ConvWeightGrad(shape) => shape,
            TrainOp::Conv2d {
                n,
                cin,
                cout,
                k,
                stride,
                pad,
                size,
            } => ConvShape {
                n,
                cin,
                cout,
                k,
                stride,
                pad,
                size,
            },
        }
    }

    fn describe(&self) -> String {
        let ConvShape {
            n,
            cin,
            cout,
            k,
            stride,
            pad,
            size,
        } = self.shape();
        format!("[{n},{cin},{size},{size}] {k}x{k} -> {cout}, stride {stride}, pad {pad}")
    }

    /// Multiply-adds x2 of the convolution, for GFLOP/s.
    fn flops(&self) -> f64 {
        let ConvShape {
            n,
            cin,
            cout,
            k,
            stride,
            pad,
            size,
        } = self.shape();
        let out = (size + 2 * pad - k) / stride + 1;
        2.0 * (n * cout * out * out * cin * k * k) as f64
    }
}

/// The convolutions of a training step of a torchvision ResNet with basic blocks (`layers`
/// blocks per stage; resnet18 is `[2, 2, 2, 2]`) at batch `n` and image side `size`: each
/// convolution's forward, input gradient (not for the stem, whose input needs none) and weight
/// gradient, with how often each occurs. The projection shortcut is the zoo's subsample + 1x1 at
/// stride 1, so its gradients are those of that 1x1 convolution.
pub fn basic_resnet_train_ops(
    layers: [usize; 4],
    n: usize,
    size: usize,
) -> BTreeMap<TrainOp, usize> {
    let mut ops = BTreeMap::new();
    let mut add = |shape: ConvShape, input_grad: bool| {
        if input_grad {
            *ops.entry(TrainOp::ConvInputGrad(shape)).or_insert(0) += 1;
        }
        *ops.entry(TrainOp::ConvWeightGrad(shape)).or_insert(0) += 1;
        *ops.entry(shape.forward()).or_insert(0) += 1;
    };
    let conv = |cin, cout, k, stride, pad, size| ConvShape {
        n,
        cin,
        cout,
        k,
        stride,
        pad,
        size,
    };
    add(conv(3, 64, 7, 2, 3, size), false);
    let mut side = size.div_ceil(2).div_ceil(2);
    let mut inplanes = 64;
    for (stage, &blocks) in layers.iter().enumerate() {
        let planes = 64 << stage;
        for block in 0..blocks {
            let stride = if stage > 0 && block == 0 { 2 } else { 1 };
            let out_side = side.div_ceil(stride);
            add(conv(inplanes, planes, 3, stride, 1, side), true);
            add(conv(planes, planes, 3, 1, 1, out_side), true);
            if block == 0 && (stride > 1 || inplanes != planes) {
                add(conv(inplanes, planes, 1, 1, 0, out_side), true);
            }
            inplanes = planes;
            side = out_side;
        }
    }
    ops
}

// ---------------------------------------------------------------------------------------------
// Aten ops as PyTorch recorded them.

/// One aten op as `bench_ops.py record` saw it: its name (`aten.convolution.default`), its
/// arguments in schema order with defaults filled in (tensors as `{"tensor": {shape, stride,
/// dtype}}`), and its outputs' shapes.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AtenOp {
    pub name: String,
    pub args: Vec<(String, Value)>,
    #[serde(default)]
    pub outputs: Vec<Vec<usize>>,
}

/// A tensor argument: shape, strides (in elements, PyTorch's) and dtype.
#[derive(Debug, Clone, Deserialize)]
struct TensorSpec {
    shape: Vec<usize>,
    stride: Vec<usize>,
    dtype: String,
}

impl TensorSpec {
    fn rank(&self) -> usize {
        self.shape.len()
    }

    fn numel(&self) -> usize {
        self.shape.iter().product()
    }

    /// Row-major dense, size-1 dimensions ignored (PyTorch's `is_contiguous`).
    fn is_contiguous(&self) -> bool {
        let mut expected = 1;
        for (&n, &s) in self.shape.iter().zip(&self.stride).rev() {
            if n != 1 && s != expected {
                return false;
            }
            expected *= n;
        }
        true
    }

    /// The same tensor seen at rank `rank` (leading size-1 dimensions), as broadcasting does.
    fn padded(&self, rank: usize) -> TensorSpec {
        let extra = rank.saturating_sub(self.rank());
        let mut shape = vec![1; extra];
        shape.extend(&self.shape);
        let mut stride = vec![self.numel().max(1); extra];
        stride.extend(&self.stride);
        TensorSpec {
            shape,
            stride,
            dtype: self.dtype.clone(),
        }
    }

    fn dims<const D: usize>(&self) -> Result<[usize; D]> {
        to_dims(&self.shape)
    }
}

fn to_dims<const D: usize>(shape: &[usize]) -> Result<[usize; D]> {
    shape
        .try_into()
        .map_err(|_| anyhow!("expected rank {D}, got {shape:?}"))
}

/// A binary op's other operand.
enum Operand {
    Tensor(TensorSpec),
    Scalar(f64),
}

impl AtenOp {
    /// `convolution` of `aten.convolution.default`.
    fn base(&self) -> &str {
        self.name.split('.').nth(1).unwrap_or(&self.name)
    }

    /// The base name without the in-place `_` (`relu` for `relu_`).
    fn func(&self) -> &str {
        let base = self.base();
        base.strip_suffix('_')
            .filter(|b| !b.ends_with('_'))
            .unwrap_or(base)
    }

    fn overload(&self) -> &str {
        self.name.split('.').nth(2).unwrap_or("default")
    }

    fn arg(&self, name: &str) -> Result<&Value> {
        self.args
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v)
            .ok_or_else(|| anyhow!("{} has no argument {name}", self.name))
    }

    fn opt_tensor(&self, name: &str) -> Result<Option<TensorSpec>> {
        match self.arg(name)? {
            Value::Null => Ok(None),
            value => Ok(Some(tensor_of(value)?)),
        }
    }

    fn tensor(&self, name: &str) -> Result<TensorSpec> {
        self.opt_tensor(name)?
            .ok_or_else(|| anyhow!("{}: {name} is None", self.name))
    }

    fn tensor_list(&self, name: &str) -> Result<Vec<Option<TensorSpec>>> {
        let Value::Array(items) = self.arg(name)? else {
            bail!("{}: {name} is not a list", self.name)
        };
        items
            .iter()
            .map(|v| match v {
                Value::Null => Ok(None),
                v => tensor_of(v).map(Some),
            })
            .collect()
    }

    fn ints(&self, name: &str) -> Result<Vec<i64>> {
        match self.arg(name)? {
            Value::Array(items) => items
                .iter()
                .map(|v| {
                    v.as_i64()
                        .ok_or_else(|| anyhow!("{name}: {v} is not an int"))
                })
                .collect(),
            Value::Number(n) => Ok(vec![n.as_i64().context("not an int")?]),
            Value::Null => Ok(vec![]),
            v => bail!("{}: {name} = {v} is not a list of ints", self.name),
        }
    }

    fn opt_int(&self, name: &str) -> Result<Option<i64>> {
        match self.arg(name)? {
            Value::Null => Ok(None),
            v => Ok(Some(v.as_i64().ok_or_else(|| {
                anyhow!("{}: {name} = {v} is not an int", self.name)
            })?)),
        }
    }

    fn int(&self, name: &str) -> Result<i64> {
        self.opt_int(name)?
            .ok_or_else(|| anyhow!("{}: {name} is None", self.name))
    }

    fn float(&self, name: &str) -> Result<f64> {
        let v = self.arg(name)?;
        v.as_f64()
            .or_else(|| v.as_bool().map(f64::from))
            .ok_or_else(|| anyhow!("{}: {name} = {v} is not a number", self.name))
    }

    fn bool(&self, name: &str) -> Result<bool> {
        let v = self.arg(name)?;
        v.as_bool()
            .ok_or_else(|| anyhow!("{}: {name} = {v} is not a bool", self.name))
    }

    fn operand(&self, name: &str) -> Result<Operand> {
        match self.arg(name)? {
            Value::Number(n) => Ok(Operand::Scalar(n.as_f64().context("a number")?)),
            Value::Bool(b) => Ok(Operand::Scalar(f64::from(*b))),
            v => {
                let spec = tensor_of(v)?;
                // A 0-d tensor operand is PyTorch's wrapped scalar.
                if spec.rank() == 0 {
                    Ok(Operand::Scalar(1.0))
                } else {
                    Ok(Operand::Tensor(spec))
                }
            }
        }
    }

    /// The first output's shape.
    fn output(&self) -> Result<&[usize]> {
        self.outputs
            .first()
            .map(Vec::as_slice)
            .ok_or_else(|| anyhow!("{} has no tensor output", self.name))
    }

    /// The float tensor arguments.
    fn tensors(&self) -> Vec<TensorSpec> {
        let mut out = Vec::new();
        for (_, v) in &self.args {
            match v {
                Value::Array(items) => out.extend(items.iter().filter_map(|v| tensor_of(v).ok())),
                v => out.extend(tensor_of(v).ok()),
            }
        }
        out
    }

    /// What kind of op this is, for the sums by kind.
    pub fn kind(&self) -> String {
        let func = self.func();
        let broadcast = || {
            let ts = self.tensors();
            match (ts.first(), ts.get(1)) {
                (Some(a), Some(b)) if a.shape != b.shape => " (broadcast)",
                (Some(_), None) => " (scalar)",
                _ => "",
            }
        };
        match func {
            "convolution" | "conv2d" => self.conv_kind(),
            "addmm" | "linear" => "linear".into(),
            "mm" if self.mm_is_linear() => "linear".into(),
            "mm" | "bmm" | "matmul" => "matmul".into(),
            "native_batch_norm" | "_native_batch_norm_legit_no_training" | "batch_norm" => {
                "batchnorm (eval)".into()
            }
            "native_layer_norm" | "layer_norm" => "layernorm".into(),
            "hardtanh"
                if self.float("min_val").ok() == Some(0.0)
                    && self.float("max_val").ok() == Some(6.0) =>
            {
                "relu6".into()
            }
            "relu" | "hardtanh" | "hardswish" | "hardsigmoid" | "silu" | "sigmoid" | "gelu"
            | "tanh" | "clamp" | "clamp_min" => func.into(),
            "add" | "sub" | "mul" | "div" | "rsub" => format!("{func}{}", broadcast()),
            "max_pool2d_with_indices" | "max_pool2d" => "maxpool".into(),
            "avg_pool2d" => "avgpool".into(),
            "_adaptive_avg_pool2d" | "adaptive_avg_pool2d" => "adaptive avgpool".into(),
            "mean" if self.is_global_mean() => "mean (global pool)".into(),
            "mean" | "sum" => func.into(),
            "_softmax" | "softmax" => "softmax".into(),
            "_native_multi_head_attention" => "attention (MHA)".into(),
            "_scaled_dot_product_flash_attention_for_cpu" | "scaled_dot_product_attention" => {
                "attention (sdpa)".into()
            }
            "cat" => "cat".into(),
            "constant_pad_nd" => "pad".into(),
            "roll" => "roll".into(),
            "clone" | "contiguous" => "copy (contiguous)".into(),
            "index" => "index (gather)".into(),
            "new_zeros" | "zeros" | "fill" | "eq" | "ne" | "masked_fill" => {
                "attention mask ops".into()
            }
            _ if VIEWS.contains(&func) => "views".into(),
            _ => format!("unmapped: {}", self.name),
        }
    }

    fn conv_kind(&self) -> String {
        let (Ok(w), Ok(groups)) = (self.tensor("weight"), self.int("groups")) else {
            return "conv".into();
        };
        let (cout, cin_g) = (w.shape[0], w.shape.get(1).copied().unwrap_or(1));
        let kernel = w.shape[2..]
            .iter()
            .map(usize::to_string)
            .collect::<Vec<_>>()
            .join("x");
        let groups = groups as usize;
        let cin = cin_g * groups;
        let tail = if groups > 1 && groups == cin && cout.is_multiple_of(cin) {
            " depthwise"
        } else if groups > 1 {
            " grouped"
        } else if cin == 3 {
            " (stem)"
        } else {
            ""
        };
        format!("conv {kernel}{tail}")
    }

    /// `mm(x, wᵀ)` with a transposed contiguous weight: a bias-free `nn.Linear`.
    fn mm_is_linear(&self) -> bool {
        self.tensor("mat2").is_ok_and(|w| {
            w.rank() == 2 && w.stride == [1, w.shape[0]] && w.shape[0] > 1 && w.shape[1] > 1
        })
    }

    /// `mean` over the last two axes of a 4-d tensor: an adaptive average pool to 1x1.
    fn is_global_mean(&self) -> bool {
        let (Ok(x), Ok(dims)) = (self.tensor("self"), self.ints("dim")) else {
            return false;
        };
        let mut dims: Vec<i64> = dims
            .iter()
            .map(|&d| if d < 0 { d + x.rank() as i64 } else { d })
            .collect();
        dims.sort();
        x.rank() == 4 && dims == [2, 3]
    }

    /// Multiply-adds x2 of a convolution or a matrix product, for GFLOP/s.
    pub fn flops(&self) -> Option<f64> {
        let prod = |s: &[usize]| s.iter().product::<usize>() as f64;
        match self.func() {
            "convolution" | "conv2d" => {
                let w = self.tensor("weight").ok()?;
                let out = self.output().ok()?;
                Some(2.0 * prod(out) * prod(&w.shape[1..]))
            }
            "addmm" | "mm" => {
                let a = self.tensor(if self.func() == "mm" { "self" } else { "mat1" });
                let b = self.tensor("mat2").ok()?;
                Some(2.0 * prod(&a.ok()?.shape) * b.shape[1] as f64)
            }
            "bmm" => {
                let a = self.tensor("self").ok()?;
                let b = self.tensor("mat2").ok()?;
                Some(2.0 * prod(&a.shape) * b.shape[2] as f64)
            }
            "linear" => {
                let w = self.tensor("weight").ok()?;
                Some(2.0 * prod(self.output().ok()?) * w.shape[1] as f64)
            }
            "_native_multi_head_attention" => {
                let q = self.tensor("query").ok()?;
                let [b, l, d] = q.dims::<3>().ok()?.map(|v| v as f64);
                // QKV and output projections, q kᵀ and the weighted sum of v.
                Some(2.0 * b * l * d * (4.0 * d + 2.0 * l))
            }
            "_scaled_dot_product_flash_attention_for_cpu" | "scaled_dot_product_attention" => {
                let q = self.tensor("query").ok()?;
                let k = self.tensor("key").ok()?;
                let s = k.shape[k.rank() - 2] as f64;
                Some(4.0 * prod(&q.shape) * s)
            }
            _ => None,
        }
    }

    /// The row's shape column: convolutions and linear layers in words, every other op as
    /// `bench_ops.py` wrote it (`text`).
    fn describe(&self, text: &str) -> String {
        let described = match self.func() {
            "convolution" | "conv2d" => self.describe_conv(),
            "addmm" => self.describe_addmm(),
            _ => Err(anyhow!("as recorded")),
        };
        described.unwrap_or_else(|_| text.to_string())
    }

    fn describe_conv(&self) -> Result<String> {
        let x = self.tensor("input")?;
        let w = self.tensor("weight")?;
        let kernel = w.shape[2..]
            .iter()
            .map(usize::to_string)
            .collect::<Vec<_>>()
            .join("x");
        let mut s = format!("{} {kernel} -> {}", shape_text(&x.shape), w.shape[0]);
        let join = |v: Vec<i64>| {
            if v.iter().all(|&x| x == v[0]) {
                v[0].to_string()
            } else {
                format!("{v:?}")
            }
        };
        s += &format!(
            ", stride {}, pad {}",
            join(self.ints("stride")?),
            join(self.ints("padding")?)
        );
        let dilation = self.ints("dilation")?;
        if dilation.iter().any(|&d| d != 1) {
            s += &format!(", dilation {}", join(dilation));
        }
        let groups = self.int("groups")?;
        if groups != 1 {
            s += &format!(", groups {groups}");
        }
        if self.opt_tensor("bias")?.is_some() {
            s += ", bias";
        }
        Ok(s)
    }

    fn describe_addmm(&self) -> Result<String> {
        let x = self.tensor("mat1")?;
        let w = self.tensor("mat2")?;
        Ok(format!(
            "{} -> {} (+ bias)",
            shape_text(&x.shape),
            w.shape[1]
        ))
    }
}

fn shape_text(shape: &[usize]) -> String {
    format!(
        "[{}]",
        shape
            .iter()
            .map(usize::to_string)
            .collect::<Vec<_>>()
            .join(",")
    )
}

fn tensor_of(value: &Value) -> Result<TensorSpec> {
    let spec = value
        .get("tensor")
        .ok_or_else(|| anyhow!("{value} is not a tensor"))?;
    Ok(serde_json::from_value(spec.clone())?)
}

/// Ops that only make a new view of their input (or allocate without computing): PyTorch's
/// `view`, `permute`, slices and so on.
const VIEWS: [&str; 23] = [
    "view",
    "_unsafe_view",
    "reshape",
    "permute",
    "t",
    "transpose",
    "expand",
    "unsqueeze",
    "squeeze",
    "select",
    "slice",
    "alias",
    "detach",
    "as_strided",
    "empty",
    "split",
    "split_with_sizes",
    "unbind",
    "chunk",
    "narrow",
    "lift_fresh",
    "flatten",
    "_reshape_alias",
];

// ---------------------------------------------------------------------------------------------
// Timing in burn.

/// How a child times: the device, warm-up and timed calls, and whether to wait for the device
/// (GPU backends) before the clock stops.
struct Ctx {
    device: Device,
    warmup: usize,
    runs: usize,
    sync: bool,
}

impl Ctx {
    /// Median seconds of `runs` calls of `op` on inputs made by `input` (outside the clock),
    /// after `warmup` calls. The result is dropped inside the clock, as PyTorch's is; a GPU
    /// backend is waited for first.
    fn time<I, O>(
        &self,
        mut input: impl FnMut() -> I,
        mut op: impl FnMut(I) -> O,
    ) -> Result<BurnTime> {
        let mut times = Vec::with_capacity(self.runs);
        for i in 0..self.warmup + self.runs.max(1) {
            let x = input();
            let start = Instant::now();
            let out = op(x);
            if self.sync {
                model_zoo::sync(&self.device, "the op")?;
            }
            drop(out);
            if i >= self.warmup {
                times.push(start.elapsed().as_secs_f64());
            }
        }
        Ok(BurnTime::Seconds(crate::bench::median(times)))
    }

    fn random<const D: usize>(&self, shape: [usize; D]) -> Tensor<D> {
        Tensor::random(shape, Distribution::Normal(0.0, 1.0), &self.device)
    }

    /// A random tensor with `spec`'s shape and PyTorch's memory layout: a dense tensor in the
    /// strides' order, narrowed where the strides skip elements (a slice or a `select` of a
    /// wider tensor) and permuted to the logical order; broadcast (stride 0) axes expanded from
    /// size 1. A layout that is none of these is made contiguous.
    fn make<const D: usize>(&self, spec: &TensorSpec) -> Result<Tensor<D>> {
        let shape: [usize; D] = spec.dims()?;
        if spec.is_contiguous() {
            return Ok(self.random(shape));
        }
        let stride = &spec.stride;
        let base: [usize; D] = std::array::from_fn(|d| if stride[d] == 0 { 1 } else { shape[d] });
        // Physical order: outermost (largest stride) first; size-1 axes anywhere.
        let key = |d: usize| if base[d] == 1 { 0 } else { stride[d] };
        let mut order: [usize; D] = std::array::from_fn(|d| d);
        order.sort_by_key(|&d| (std::cmp::Reverse(key(d)), d));
        let mut physical: [usize; D] = order.map(|d| base[d]);
        let mut span = 1;
        let mut inner: Option<usize> = None;
        let mut dense = true;
        for j in (0..D).rev() {
            let d = order[j];
            if base[d] == 1 {
                continue;
            }
            let s = stride[d];
            if s != span {
                match inner {
                    Some(pj) if s > span && s.is_multiple_of(stride[order[pj]]) => {
                        physical[pj] = s / stride[order[pj]];
                    }
                    _ => {
                        dense = false;
                        break;
                    }
                }
            }
            span = s * base[d];
            inner = Some(j);
        }
        if !dense {
            return Ok(self.random(shape));
        }
        let mut t = self.random(physical);
        if (0..D).any(|j| physical[j] != base[order[j]]) {
            let slices: Vec<Slice> = (0..D)
                .map(|j| Slice::new(0, Some(base[order[j]] as isize), 1))
                .collect();
            t = t.slice(&slices);
        }
        let mut axes = [0usize; D];
        for (pos, &d) in order.iter().enumerate() {
            axes[d] = pos;
        }
        let t = t.permute(axes);
        Ok(if base != shape { t.expand(shape) } else { t })
    }

    /// A copy of `t` (made with [`Self::make`] from `spec`) that no other handle shares, with
    /// `spec`'s layout: what an op of a model gets from the op before it.
    fn fresh<const D: usize>(&self, t: &Tensor<D>, spec: &TensorSpec) -> Tensor<D> {
        if spec.is_contiguous() {
            Tensor::from_data(t.to_data(), &self.device)
        } else {
            self.make(spec).expect("made once with this rank")
        }
    }

    fn make_int<const D: usize>(&self, spec: &TensorSpec) -> Result<Tensor<D, Int>> {
        Ok(Tensor::zeros(spec.dims::<D>()?, &self.device))
    }

    fn make_bool<const D: usize>(&self, spec: &TensorSpec) -> Result<Tensor<D, Bool>> {
        Ok(Tensor::<D>::zeros(spec.dims::<D>()?, &self.device).equal_elem(1.0))
    }
}

/// Runs `$body` with `$D` bound to the const rank `$rank` (1 to 6).
macro_rules! rank {
    ($rank:expr, $D:ident => $body:expr) => {
        match $rank {
            1 => {
                const $D: usize = 1;
                $body
            }
            2 => {
                const $D: usize = 2;
                $body
            }
            3 => {
                const $D: usize = 3;
                $body
            }
            4 => {
                const $D: usize = 4;
                $body
            }
            5 => {
                const $D: usize = 5;
                $body
            }
            6 => {
                const $D: usize = 6;
                $body
            }
            rank => Err(anyhow!("rank {rank} is not supported")),
        }
    };
}

/// A dimension argument, negative ones counted from the end.
fn axis(dim: i64, rank: usize) -> usize {
    if dim < 0 {
        (dim + rank as i64) as usize
    } else {
        dim as usize
    }
}

fn pair(v: &[i64], default: usize) -> [usize; 2] {
    match v {
        [] => [default; 2],
        [a] => [*a as usize; 2],
        [a, b, ..] => [*a as usize, *b as usize],
    }
}

/// A convolution as the zoo's models run it: a `burn::nn::conv::Conv2d` through
/// [`model_zoo::layers::conv2d`].
fn zoo_conv(
    weight: Tensor<4>,
    bias: Option<Tensor<1>>,
    stride: [usize; 2],
    padding: [usize; 2],
    dilation: [usize; 2],
    groups: usize,
) -> Conv2d {
    let [_, _, kh, kw] = weight.dims();
    Conv2d {
        weight: Param::from_tensor(weight),
        bias: bias.map(Param::from_tensor),
        stride,
        kernel_size: [kh, kw],
        dilation,
        groups,
        padding: PaddingConfig2d::Explicit(padding[0], padding[1], padding[0], padding[1]),
    }
}

/// A `Linear` with a `[d_in, d_out]` weight (Burn's layout) and an optional bias.
fn zoo_linear(ctx: &Ctx, d_in: usize, d_out: usize, bias: bool) -> Linear {
    Linear {
        weight: Param::from_tensor(ctx.random([d_in, d_out])),
        bias: bias.then(|| Param::from_tensor(ctx.random([d_out]))),
    }
}

/// An element-wise op on one tensor, given a fresh copy of it before each call (outside the
/// clock): in a model its input is the previous op's output, which no other handle shares, so
/// the zoo's kernels may write over it (in place), and they do on Flex.
fn unary<const D: usize>(
    ctx: &Ctx,
    x: &TensorSpec,
    f: impl Fn(Tensor<D>) -> Tensor<D>,
) -> Result<BurnTime> {
    let t = ctx.make::<D>(x)?;
    ctx.time(|| ctx.fresh(&t, x), f)
}

#[derive(Clone, Copy)]
enum Bin {
    Add,
    Sub,
    Mul,
    Div,
}

fn binary(ctx: &Ctx, op: &AtenOp, bin: Bin) -> Result<BurnTime> {
    let alpha = op.float("alpha").unwrap_or(1.0);
    if alpha != 1.0 {
        return Ok(BurnTime::Unmapped);
    }
    let x = op.tensor("self")?;
    let other = op.operand("other")?;
    let rank = match &other {
        Operand::Tensor(y) => x.rank().max(y.rank()),
        Operand::Scalar(_) => x.rank(),
    };
    let x = x.padded(rank);
    rank!(rank, D => {
        match &other {
            Operand::Scalar(v) => {
                let v = *v;
                unary::<D>(ctx, &x, move |t| match bin {
                    Bin::Add => t.add_scalar(v),
                    Bin::Sub => t.sub_scalar(v),
                    Bin::Mul => t.mul_scalar(v),
                    Bin::Div => t.div_scalar(v),
                })
            }
            Operand::Tensor(y) => {
                let y = ctx.make::<D>(&y.padded(rank))?;
                unary::<D>(ctx, &x, move |t| match bin {
                    Bin::Add => t + y.clone(),
                    Bin::Sub => t - y.clone(),
                    Bin::Mul => t * y.clone(),
                    Bin::Div => t / y.clone(),
                })
            }
        }
    })
}

fn activation(ctx: &Ctx, op: &AtenOp, kind: ActivationKind) -> Result<BurnTime> {
    let x = op.tensor("self")?;
    let act = kind.init();
    rank!(x.rank(), D => unary::<D>(ctx, &x, |t| act.forward(t)))
}

/// Times `op` in burn as the zoo runs it; [`BurnTime::Unmapped`] where nothing is mapped.
fn time_aten(ctx: &Ctx, op: &AtenOp) -> Result<BurnTime> {
    let device = &ctx.device;
    match op.func() {
        "convolution" | "conv2d" => {
            if op.func() == "convolution" && op.bool("transposed")? {
                return Ok(BurnTime::Unmapped);
            }
            let x = op.tensor("input")?;
            let w = op.tensor("weight")?;
            if x.rank() != 4 {
                return Ok(BurnTime::Unmapped);
            }
            let bias = op.opt_tensor("bias")?.map(|b| ctx.random([b.shape[0]]));
            let conv = zoo_conv(
                ctx.random(w.dims::<4>()?),
                bias,
                pair(&op.ints("stride")?, 1),
                pair(&op.ints("padding")?, 0),
                pair(&op.ints("dilation")?, 1),
                op.int("groups")? as usize,
            );
            let x = ctx.make::<4>(&x)?;
            ctx.time(|| x.clone(), |x| model_zoo::layers::conv2d(&conv, x))
        }
        "addmm" => {
            let x = op.tensor("mat1")?;
            let w = op.tensor("mat2")?;
            let [_, d_in] = x.dims::<2>()?;
            let linear = zoo_linear(ctx, d_in, w.shape[1], true);
            let x = ctx.make::<2>(&x)?;
            ctx.time(|| x.clone(), |x| model_zoo::layers::linear_last(&linear, x))
        }
        "linear" => {
            let x = op.tensor("input")?;
            let w = op.tensor("weight")?;
            let linear = zoo_linear(
                ctx,
                w.shape[1],
                w.shape[0],
                op.opt_tensor("bias")?.is_some(),
            );
            rank!(x.rank(), D => {
                let x = ctx.make::<D>(&x)?;
                ctx.time(|| x.clone(), |x| model_zoo::layers::linear_last(&linear, x))
            })
        }
        "mm" if op.mm_is_linear() => {
            let x = op.tensor("self")?;
            let w = op.tensor("mat2")?;
            let linear = zoo_linear(ctx, w.shape[0], w.shape[1], false);
            let x = ctx.make::<2>(&x)?;
            ctx.time(|| x.clone(), |x| model_zoo::layers::linear_last(&linear, x))
        }
        "mm" | "bmm" | "matmul" => {
            let a = op.tensor("self")?;
            let b = op.tensor(if op.func() == "matmul" {
                "other"
            } else {
                "mat2"
            })?;
            if a.rank() != b.rank() {
                return Ok(BurnTime::Unmapped);
            }
            rank!(a.rank(), D => {
                let (a, b) = (ctx.make::<D>(&a)?, ctx.make::<D>(&b)?);
                ctx.time(|| (), |()| a.clone().matmul(b.clone()))
            })
        }
        "native_batch_norm" | "_native_batch_norm_legit_no_training" => {
            if op.func() == "native_batch_norm" && op.bool("training")? {
                return Ok(BurnTime::Unmapped);
            }
            let x = op.tensor("input")?;
            let bn = BatchNormConfig::new(x.shape[1])
                .with_epsilon(op.float("eps")?)
                .init(device);
            rank!(x.rank(), D => {
                let t = ctx.make::<D>(&x)?;
                ctx.time(|| ctx.fresh(&t, &x), |x| bn.forward(x))
            })
        }
        "native_layer_norm" => {
            let x = op.tensor("input")?;
            let normalized = op.ints("normalized_shape")?;
            if normalized.len() != 1 {
                return Ok(BurnTime::Unmapped);
            }
            let ln =
                model_zoo::layers::layer_norm(normalized[0] as usize, op.float("eps")?, device);
            rank!(x.rank(), D => {
                // Shared, as a pre-norm block's input is (the residual keeps it).
                let x = ctx.make::<D>(&x)?;
                ctx.time(|| x.clone(), |x| model_zoo::layers::layer_norm_last(&ln, x))
            })
        }
        "relu" => activation(ctx, op, ActivationKind::Relu),
        "hardswish" => activation(ctx, op, ActivationKind::Hardswish),
        "hardsigmoid" => activation(ctx, op, ActivationKind::Hardsigmoid),
        "silu" => activation(ctx, op, ActivationKind::Silu),
        "sigmoid" => activation(ctx, op, ActivationKind::Sigmoid),
        "tanh" => activation(ctx, op, ActivationKind::Tanh),
        "gelu" => match op.arg("approximate").ok().and_then(Value::as_str) {
            None | Some("none") => activation(ctx, op, ActivationKind::Gelu),
            _ => Ok(BurnTime::Unmapped),
        },
        "hardtanh" | "clamp" => {
            let (lo, hi) = if op.func() == "hardtanh" {
                (op.float("min_val")?, op.float("max_val")?)
            } else {
                (op.float("min")?, op.float("max")?)
            };
            if (lo, hi) == (0.0, 6.0) {
                return activation(ctx, op, ActivationKind::Relu6);
            }
            let x = op.tensor("self")?;
            rank!(x.rank(), D => unary::<D>(ctx, &x, |t| t.clamp(lo, hi)))
        }
        "add" => binary(ctx, op, Bin::Add),
        "sub" => binary(ctx, op, Bin::Sub),
        "mul" => binary(ctx, op, Bin::Mul),
        "div" if op.overload() == "Tensor" || op.overload() == "Scalar" => {
            binary(ctx, op, Bin::Div)
        }
        "max_pool2d_with_indices" | "max_pool2d" => {
            let x = op.tensor("self")?;
            let kernel = pair(&op.ints("kernel_size")?, 1);
            let stride = op.ints("stride")?;
            let stride = if stride.is_empty() {
                kernel
            } else {
                pair(&stride, 1)
            };
            let [ph, pw] = pair(&op.ints("padding")?, 0);
            let pool = MaxPool2dConfig::new(kernel)
                .with_strides(stride)
                .with_padding(PaddingConfig2d::Explicit(ph, pw, ph, pw))
                .with_dilation(pair(&op.ints("dilation")?, 1))
                .with_ceil_mode(op.bool("ceil_mode")?)
                .init();
            let x = ctx.make::<4>(&x)?;
            ctx.time(|| x.clone(), |x| model_zoo::layers::max_pool2d(&pool, x))
        }
        "avg_pool2d" => {
            if op.opt_int("divisor_override")?.is_some() {
                return Ok(BurnTime::Unmapped);
            }
            let x = op.tensor("self")?;
            let kernel = pair(&op.ints("kernel_size")?, 1);
            let stride = op.ints("stride")?;
            let stride = if stride.is_empty() {
                kernel
            } else {
                pair(&stride, 1)
            };
            let [ph, pw] = pair(&op.ints("padding")?, 0);
            let pool = AvgPool2dConfig::new(kernel)
                .with_strides(stride)
                .with_padding(PaddingConfig2d::Explicit(ph, pw, ph, pw))
                .with_count_include_pad(op.bool("count_include_pad")?)
                .with_ceil_mode(op.bool("ceil_mode")?)
                .init();
            let x = ctx.make::<4>(&x)?;
            ctx.time(|| x.clone(), |x| pool.forward(x))
        }
        "_adaptive_avg_pool2d" | "adaptive_avg_pool2d" => {
            let x = op.tensor("self")?;
            let out = pair(&op.ints("output_size")?, 1);
            let x = ctx.make::<4>(&x)?;
            ctx.time(
                || x.clone(),
                |x| model_zoo::layers::adaptive_avg_pool2d_with(x, out),
            )
        }
        "mean" | "sum" => {
            let x = op.tensor("self")?;
            if op.func() == "mean" && op.is_global_mean() {
                // The zoo's global pool: `adaptive_avg_pool2d(x, [1, 1])`.
                let x = ctx.make::<4>(&x)?;
                return ctx.time(
                    || x.clone(),
                    |x| model_zoo::layers::adaptive_avg_pool2d_with(x, [1, 1]),
                );
            }
            let dims: Vec<usize> = op.ints("dim")?.iter().map(|&d| axis(d, x.rank())).collect();
            let mean = op.func() == "mean";
            rank!(x.rank(), D => {
                let x = ctx.make::<D>(&x)?;
                ctx.time(
                    || x.clone(),
                    |x| {
                        dims.iter().fold(x, |x, &d| if mean { x.mean_dim(d) } else { x.sum_dim(d) })
                    },
                )
            })
        }
        "_softmax" | "softmax" => {
            let x = op.tensor("self")?;
            let dim = axis(op.int("dim")?, x.rank());
            rank!(x.rank(), D => {
                let t = ctx.make::<D>(&x)?;
                if dim + 1 == D {
                    ctx.time(|| ctx.fresh(&t, &x), model_zoo::layers::softmax_last)
                } else {
                    ctx.time(|| ctx.fresh(&t, &x), |x| burn::tensor::activation::softmax(x, dim))
                }
            })
        }
        "_native_multi_head_attention" => {
            let q = op.tensor("query")?;
            let mha = MultiheadAttention::new(
                op.int("embed_dim")? as usize,
                op.int("num_head")? as usize,
                device,
            );
            let x = ctx.make::<3>(&q)?;
            ctx.time(|| x.clone(), |x| mha.forward(x))
        }
        "_scaled_dot_product_flash_attention_for_cpu" | "scaled_dot_product_attention" => {
            let [q, k, v] = ["query", "key", "value"].map(|n| op.tensor(n));
            let (q, k, v) = (
                ctx.make::<4>(&q?)?,
                ctx.make::<4>(&k?)?,
                ctx.make::<4>(&v?)?,
            );
            let bias = match op.opt_tensor("attn_mask")? {
                Some(m) => Some(ctx.make::<4>(&m.padded(4))?),
                None => None,
            };
            ctx.time(
                || (),
                |()| {
                    model_zoo::layers::scaled_dot_product(
                        q.clone(),
                        k.clone(),
                        v.clone(),
                        bias.clone(),
                    )
                },
            )
        }
        "cat" => {
            let tensors: Vec<TensorSpec> =
                op.tensor_list("tensors")?.into_iter().flatten().collect();
            let rank = tensors.first().map_or(0, TensorSpec::rank);
            let dim = axis(op.int("dim")?, rank);
            rank!(rank, D => {
                let ts = tensors
                    .iter()
                    .map(|t| ctx.make::<D>(t))
                    .collect::<Result<Vec<_>>>()?;
                ctx.time(|| ts.clone(), |ts| Tensor::cat(ts, dim))
            })
        }
        "constant_pad_nd" => {
            let x = op.tensor("self")?;
            let pad = op.ints("pad")?;
            let value = op.float("value")?;
            if pad.iter().any(|&p| p < 0) {
                return Ok(BurnTime::Unmapped);
            }
            rank!(x.rank(), D => {
                let t = ctx.make::<D>(&x)?;
                if pad.iter().all(|&p| p == 0) {
                    // The zoo's `pad_to_multiple` returns its input when nothing is to pad.
                    return ctx.time(|| t.clone(), |t| t);
                }
                let mut pairs = [(0usize, 0usize); D];
                for (i, p) in pad.chunks(2).enumerate() {
                    pairs[D - 1 - i] = (p[0] as usize, p.get(1).copied().unwrap_or(0) as usize);
                }
                ctx.time(|| t.clone(), |t| t.pad(pairs, PadMode::Constant(value as f32)))
            })
        }
        "roll" => {
            let x = op.tensor("self")?;
            let shifts = op.ints("shifts")?;
            let dims: Vec<usize> = op
                .ints("dims")?
                .iter()
                .map(|&d| axis(d, x.rank()))
                .collect();
            rank!(x.rank(), D => {
                let t = ctx.make::<D>(&x)?;
                ctx.time(|| t.clone(), |t| t.roll(&shifts, &dims))
            })
        }
        "clone" => {
            // A contiguous copy: in Burn, what a reshape of a strided tensor does (Flex copies
            // there; a contiguous tensor is not copied at all, as the zoo never clones).
            let x = op.tensor("self")?;
            let n = x.numel();
            rank!(x.rank(), D => {
                let t = ctx.make::<D>(&x)?;
                let shape = x.dims::<D>()?;
                ctx.time(|| t.clone(), |t| t.reshape([n]).reshape(shape))
            })
        }
        "index" => {
            let x = op.tensor("self")?;
            let indices = op.tensor_list("indices")?;
            match indices.as_slice() {
                [Some(idx)] if idx.rank() == 1 => {
                    let idx = ctx.make_int::<1>(idx)?;
                    rank!(x.rank(), D => {
                        let t = ctx.make::<D>(&x)?;
                        ctx.time(|| t.clone(), |t| t.select(0, idx.clone()))
                    })
                }
                _ => Ok(BurnTime::Unmapped),
            }
        }
        "new_zeros" | "zeros" => {
            let size: Vec<usize> = op.ints("size")?.iter().map(|&s| s as usize).collect();
            rank!(size.len(), D => {
                let shape = to_dims::<D>(&size)?;
                ctx.time(|| (), |()| Tensor::<D>::zeros(shape, device))
            })
        }
        "fill" => {
            let x = op.tensor("self")?;
            let value = op.float("value")?;
            rank!(x.rank(), D => {
                let t = ctx.make::<D>(&x)?;
                ctx.time(|| ctx.fresh(&t, &x), |t| t.full_like(value))
            })
        }
        "eq" | "ne" if op.overload() == "Scalar" => {
            let x = op.tensor("self")?;
            let value = op.float("other")?;
            let eq = op.func() == "eq";
            rank!(x.rank(), D => {
                let t = ctx.make::<D>(&x)?;
                ctx.time(
                    || t.clone(),
                    |t| if eq { t.equal_elem(value) } else { t.not_equal_elem(value) },
                )
            })
        }
        "masked_fill" if op.overload() == "Scalar" => {
            let x = op.tensor("self")?;
            let mask = op.tensor("mask")?;
            let value = op.float("value")?;
            if mask.shape != x.shape {
                return Ok(BurnTime::Unmapped);
            }
            rank!(x.rank(), D => {
                let t = ctx.make::<D>(&x)?;
                let m = ctx.make_bool::<D>(&mask)?;
                ctx.time(|| ctx.fresh(&t, &x), |t| t.mask_fill(m.clone(), value))
            })
        }
        func if VIEWS.contains(&func) => time_view(ctx, op),
        _ => Ok(BurnTime::Unmapped),
    }
}

/// The view ops, each as Burn's (metadata only where Burn's layout allows it; Flex copies a
/// strided tensor it must reshape, as the zoo's own reshapes do).
fn time_view(ctx: &Ctx, op: &AtenOp) -> Result<BurnTime> {
    let device = &ctx.device;
    match op.func() {
        "empty" => {
            let size: Vec<usize> = op.ints("size")?.iter().map(|&s| s as usize).collect();
            rank!(size.len(), D => {
                let shape = to_dims::<D>(&size)?;
                ctx.time(|| (), |()| Tensor::<D>::empty(shape, device))
            })
        }
        "view" | "_unsafe_view" | "reshape" | "_reshape_alias" | "squeeze" | "flatten" => {
            let x = op.tensor("self")?;
            let out = op.output()?.to_vec();
            rank!(x.rank(), D => {
                let t = ctx.make::<D>(&x)?;
                rank!(out.len(), D2 => {
                    let shape = to_dims::<D2>(&out)?;
                    ctx.time(|| t.clone(), |t| t.reshape(shape))
                })
            })
        }
        "permute" => {
            let x = op.tensor("self")?;
            let dims: Vec<usize> = op
                .ints("dims")?
                .iter()
                .map(|&d| axis(d, x.rank()))
                .collect();
            rank!(x.rank(), D => {
                let t = ctx.make::<D>(&x)?;
                let axes = to_dims::<D>(&dims)?;
                ctx.time(|| t.clone(), |t| t.permute(axes))
            })
        }
        "t" | "transpose" => {
            let x = op.tensor("self")?;
            let (a, b) = if op.func() == "t" {
                (0, x.rank().saturating_sub(1))
            } else {
                (
                    axis(op.int("dim0")?, x.rank()),
                    axis(op.int("dim1")?, x.rank()),
                )
            };
            rank!(x.rank(), D => {
                let t = ctx.make::<D>(&x)?;
                ctx.time(|| t.clone(), |t| t.swap_dims(a, b))
            })
        }
        "expand" => {
            let x = op.tensor("self")?;
            let out = op.output()?.to_vec();
            rank!(out.len(), D2 => {
                let shape = to_dims::<D2>(&out)?;
                let t = ctx.make::<D2>(&x.padded(D2))?;
                ctx.time(|| t.clone(), |t| t.expand(shape))
            })
        }
        "unsqueeze" => {
            let x = op.tensor("self")?;
            let dim = axis(op.int("dim")?, x.rank() + 1);
            rank!(x.rank(), D => {
                let t = ctx.make::<D>(&x)?;
                rank!(D + 1, D2 => ctx.time(|| t.clone(), |t| t.unsqueeze_dim::<D2>(dim)))
            })
        }
        "select" => {
            let x = op.tensor("self")?;
            let dim = axis(op.int("dim")?, x.rank());
            let index = op.int("index")?;
            let index = if index < 0 {
                (index + x.shape[dim] as i64) as usize
            } else {
                index as usize
            };
            rank!(x.rank(), D => {
                let t = ctx.make::<D>(&x)?;
                rank!(D - 1, D2 => ctx.time(
                    || t.clone(),
                    |t| t.narrow(dim, index, 1).squeeze_dim::<D2>(dim),
                ))
            })
        }
        "slice" => {
            let x = op.tensor("self")?;
            let dim = axis(op.int("dim")?, x.rank());
            let n = x.shape[dim] as i64;
            let clamp = |v: i64| if v < 0 { (v + n).max(0) } else { v.min(n) };
            let start = clamp(op.opt_int("start")?.unwrap_or(0));
            let end = clamp(op.opt_int("end")?.unwrap_or(n));
            let step = op.int("step")?;
            let slices: Vec<Slice> = (0..x.rank())
                .map(|d| {
                    if d == dim {
                        Slice::new(start as isize, Some(end as isize), step as isize)
                    } else {
                        Slice::from(..)
                    }
                })
                .collect();
            rank!(x.rank(), D => {
                let t = ctx.make::<D>(&x)?;
                ctx.time(|| t.clone(), |t| t.slice(&slices))
            })
        }
        "alias" | "detach" | "lift_fresh" => {
            let x = op.tensor("self")?;
            rank!(x.rank(), D => {
                let t = ctx.make::<D>(&x)?;
                ctx.time(|| t.clone(), |t| t)
            })
        }
        "split" | "chunk" | "split_with_sizes" | "unbind" | "narrow" => {
            let x = op.tensor("self")?;
            let dim = axis(op.int("dim")?, x.rank());
            let sizes: Vec<usize> = op.outputs.iter().map(|o| o[dim]).collect();
            match op.func() {
                "unbind" => Ok(BurnTime::Unmapped),
                "narrow" => {
                    let start = op.int("start")? as usize;
                    let length = op.int("length")? as usize;
                    rank!(x.rank(), D => {
                        let t = ctx.make::<D>(&x)?;
                        ctx.time(|| t.clone(), |t| t.narrow(dim, start, length))
                    })
                }
                _ => rank!(x.rank(), D => {
                    let t = ctx.make::<D>(&x)?;
                    ctx.time(|| t.clone(), |t| t.split_with_sizes(sizes.clone(), dim))
                }),
            }
        }
        _ => Ok(BurnTime::Unmapped),
    }
}

/// The zoo model's forward, as `bench`'s inference case times it (logits read back).
fn time_forward(ctx: &Ctx, model: &str, batch: usize, size: usize) -> Result<BurnTime> {
    let net = model_zoo::create(model, 1000, &ctx.device)?;
    let x = ctx.random([batch, 3, size, size]);
    let seconds = crate::bench::time_runs_with(
        ctx.warmup,
        ctx.runs,
        || x.clone(),
        |x| crate::bench::read_back(net.forward(x)),
    )?;
    Ok(BurnTime::Seconds(seconds))
}

/// A bias-free convolution as the zoo's models run it: [`model_zoo::layers::conv2d`] (on an
/// autodiff Flex device, the zoo's gemm gradients).
fn zoo_conv2d(x: Tensor<4>, weight: Tensor<4>, stride: usize, pad: usize) -> Tensor<4> {
    let conv = zoo_conv(weight, None, [stride; 2], [pad; 2], [1, 1], 1);
    model_zoo::layers::conv2d(&conv, x)
}

/// Median seconds of a convolution's forward and backward on an autodiff device, with only the
/// input (`input_grad`) or only the weight requiring a gradient, less the forward alone.
fn time_conv_grad(ctx: &Ctx, shape: &ConvShape, input_grad: bool) -> Result<f64> {
    let ConvShape {
        n,
        cin,
        cout,
        k,
        stride,
        pad,
        size,
    } = *shape;
    let out = (size + 2 * pad - k) / stride + 1;
    // The forward alone on the plain device: an autodiff forward never backpropagated keeps
    // its graph, which is not what a training step pays.
    let (xf, wf) = (
        ctx.random([n, cin, size, size]),
        ctx.random([cout, cin, k, k]),
    );
    let upstream = ctx.random([n, cout, out, out]);
    let forward = crate::bench::time_runs_with(
        ctx.warmup,
        ctx.runs,
        || (),
        |()| {
            let y = zoo_conv2d(xf.clone(), wf.clone(), stride, pad) * upstream.clone();
            crate::bench::read_back(y.slice([0..1, 0..1, 0..1, 0..1]))
        },
    )?;
    let device = ctx.device.clone().autodiff();
    let random = |shape: [usize; 4]| Tensor::random(shape, Distribution::Normal(0.0, 1.0), &device);
    let x = random([n, cin, size, size]);
    let w = random([cout, cin, k, k]);
    let (x, w) = if input_grad {
        (x.require_grad(), w)
    } else {
        (x, w.require_grad())
    };
    let upstream = random([n, cout, out, out]);
    let both = crate::bench::time_runs_with(
        ctx.warmup,
        ctx.runs,
        || (),
        |()| {
            let y = zoo_conv2d(x.clone(), w.clone(), stride, pad);
            let grads = (y * upstream.clone()).sum().backward();
            let grad = if input_grad {
                x.grad(&grads)
            } else {
                w.grad(&grads)
            };
            let grad = grad.context("the tensor requires a gradient")?;
            crate::bench::read_back(grad.slice([0..1, 0..1, 0..1, 0..1]))
        },
    )?;
    Ok((both - forward).max(0.0))
}

fn time_train(ctx: &Ctx, op: &TrainOp) -> Result<BurnTime> {
    let seconds = match op {
        TrainOp::ConvInputGrad(shape) => time_conv_grad(ctx, shape, true)?,
        TrainOp::ConvWeightGrad(shape) => time_conv_grad(ctx, shape, false)?,
        TrainOp::Conv2d { .. } => {
            let ConvShape {
                n,
                cin,
                cout,
                k,
                stride,
                pad,
                size,
            } = op.shape();
            let x = ctx.random([n, cin, size, size]);
            let w = ctx.random([cout, cin, k, k]);
            crate::bench::time_runs_with(
                ctx.warmup,
                ctx.runs,
                || (),
                |()| {
                    let y = zoo_conv2d(x.clone(), w.clone(), stride, pad);
                    crate::bench::read_back(y.slice([0..1, 0..1, 0..1, 0..1]))
                },
            )?
        }
    };
    Ok(BurnTime::Seconds(seconds))
}

/// Times one op; an error or a panic is that row's [`BurnTime::Failed`], not the run's end.
fn time_one(ctx: &Ctx, op: &Op) -> BurnTime {
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| match op {
        Op::Train(op) => time_train(ctx, op),
        Op::Aten(op) => time_aten(ctx, op),
        Op::Forward { model, batch, size } => time_forward(ctx, model, *batch, *size),
    }));
    match outcome {
        Ok(Ok(time)) => time,
        Ok(Err(err)) => BurnTime::Failed(format!("{err:#}")),
        Err(panic) => BurnTime::Failed(
            panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_else(|| "panicked".into()),
        ),
    }
}

/// Times every op of `ops` on `backend` in this process (`bench --ops-child`).
pub fn run_child(
    backend: Backend,
    ops: &[Op],
    warmup: usize,
    runs: usize,
) -> Result<Vec<BurnTime>> {
    let ctx = Ctx {
        device: backend.device()?,
        warmup,
        runs,
        sync: !matches!(backend, Backend::Flex | Backend::NdArray),
    };
    // A failing row's panic message is in its row; not on stderr as well.
    std::panic::set_hook(Box::new(|_| {}));
    // On the CPU's workers, as a model's forward runs its kernels (`Model::try_forward`).
    Ok(model_zoo::on_cpu_workers(&ctx.device, || {
        ops.iter().map(|op| time_one(&ctx, op)).collect()
    }))
}

/// Runs `ops` in child processes of this binary with `threads` rayon threads, in pieces small
/// enough for one command-line argument (a Swin has a few hundred distinct ops); a
/// [`Op::Forward`] runs alone.
fn run_children(
    backend: Backend,
    ops: &[Op],
    warmup: usize,
    runs: usize,
    threads: usize,
) -> Result<Vec<BurnTime>> {
    const MAX_SPEC: usize = 64 << 10;
    let mut pieces: Vec<Vec<Op>> = Vec::new();
    let mut current: Vec<Op> = Vec::new();
    let mut bytes = 0;
    for op in ops {
        let len = serde_json::to_string(op)?.len();
        let alone = matches!(op, Op::Forward { .. });
        if !current.is_empty() && (alone || bytes + len > MAX_SPEC) {
            pieces.push(std::mem::take(&mut current));
            bytes = 0;
        }
        current.push(op.clone());
        bytes += len;
        if alone {
            pieces.push(std::mem::take(&mut current));
            bytes = 0;
        }
    }
    if !current.is_empty() {
        pieces.push(current);
    }
    let exe = std::env::current_exe()?;
    let mut times = Vec::with_capacity(ops.len());
    for piece in pieces {
        let output = Command::new(&exe)
            .args(["bench", "--ops-child", backend.name()])
            .args(["--ops-spec", &serde_json::to_string(&piece)?])
            .args(["--runs", &runs.to_string()])
            .args(["--ops-warmup", &warmup.to_string()])
            .env("RAYON_NUM_THREADS", threads.to_string())
            .output()?;
        match crate::bench::last_json::<Vec<BurnTime>>(&output, "burn ops") {
            Ok(piece_times) if piece_times.len() == piece.len() => times.extend(piece_times),
            Ok(_) => bail!("the burn op timings do not match the op list"),
            // A child that died (out of memory, an abort) fails its rows, not the run.
            Err(err) => times.extend(piece.iter().map(|_| BurnTime::Failed(format!("{err:#}")))),
        }
    }
    Ok(times)
}

// ---------------------------------------------------------------------------------------------
// The run: per model, PyTorch's record, burn's times, the tables.

/// One row of `bench_ops.py record`.
#[derive(Debug, Clone, Deserialize)]
struct TorchRow {
    name: String,
    args: Vec<(String, Value)>,
    #[serde(default)]
    outputs: Vec<Vec<usize>>,
    count: usize,
    text: String,
    seconds: Option<f64>,
}

/// What `bench_ops.py record` prints.
#[derive(Debug, Clone, Deserialize)]
struct TorchRecord {
    torch: String,
    rows: Vec<TorchRow>,
    model_seconds: Option<f64>,
}

/// One op of one model, both engines.
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    pub kind: String,
    pub op: AtenOp,
    pub shape: String,
    pub count: usize,
    pub flops: Option<f64>,
    pub burn: BurnTime,
    pub torch_seconds: Option<f64>,
}

impl Row {
    fn burn_seconds(&self) -> Option<f64> {
        self.burn.seconds()
    }

    /// Burn's total less PyTorch's, where both have a time.
    fn gap(&self) -> Option<f64> {
        Some(self.count as f64 * (self.burn_seconds()? - self.torch_seconds?))
    }
}

/// The sums of one kind of op over a model.
#[derive(Debug, Clone, Default, Serialize)]
pub struct KindSum {
    pub kind: String,
    /// Calls in one forward.
    pub count: usize,
    /// Distinct (op, shape) rows.
    pub rows: usize,
    /// Sum of time x count of the rows burn timed (and PyTorch's on the same rows).
    pub burn_seconds: f64,
    pub torch_seconds: f64,
    /// PyTorch's time on the rows burn has no time for (unmapped or failed).
    pub torch_only_seconds: f64,
    /// Multiply-adds x2 of the rows both timed.
    pub flops: f64,
    pub timed_rows: usize,
}

/// One model's result.
#[derive(Debug, Clone, Serialize)]
pub struct ModelOps {
    pub model: String,
    pub backend: String,
    pub batch: usize,
    pub size: usize,
    pub threads: usize,
    pub torch: String,
    pub burn_forward_seconds: Option<f64>,
    pub burn_forward_error: Option<String>,
    pub torch_forward_seconds: Option<f64>,
    pub kinds: Vec<KindSum>,
    pub rows: Vec<Row>,
    /// The 1-minute load average before and after the model's measurements: well above 0 on
    /// an idle machine, other work ran beside them (PyTorch's OpenMP threads suffer most).
    pub load: [Option<f64>; 2],
}

impl ModelOps {
    fn mapped(&self) -> (f64, f64) {
        self.kinds.iter().fold((0.0, 0.0), |(b, t), k| {
            (b + k.burn_seconds, t + k.torch_seconds)
        })
    }

    fn torch_all(&self) -> f64 {
        self.kinds
            .iter()
            .map(|k| k.torch_seconds + k.torch_only_seconds)
            .sum()
    }
}

fn kind_sums(rows: &[Row]) -> Vec<KindSum> {
    let mut by_kind: BTreeMap<String, KindSum> = BTreeMap::new();
    for row in rows {
        // A row without a burn time is its own kind, so that it is listed, not hidden in a
        // kind whose other rows were timed.
        let kind = match row.burn {
            BurnTime::Failed(_) => format!("failed: {}", row.op.name),
            BurnTime::Unmapped => format!("unmapped: {}", row.op.name),
            BurnTime::Seconds(_) => row.kind.clone(),
        };
        let sum = by_kind.entry(kind.clone()).or_insert_with(|| KindSum {
            kind,
            ..KindSum::default()
        });
        let c = row.count as f64;
        sum.count += row.count;
        sum.rows += 1;
        match (row.burn_seconds(), row.torch_seconds) {
            (Some(b), Some(t)) => {
                sum.burn_seconds += c * b;
                sum.torch_seconds += c * t;
                sum.timed_rows += 1;
                sum.flops += c * row.flops.unwrap_or(0.0);
            }
            (Some(b), None) => {
                sum.burn_seconds += c * b;
                sum.flops += c * row.flops.unwrap_or(0.0);
            }
            (None, Some(t)) => sum.torch_only_seconds += c * t,
            (None, None) => {}
        }
    }
    let mut kinds: Vec<KindSum> = by_kind.into_values().collect();
    // Largest gap first; kinds without burn times last, by PyTorch's time.
    kinds.sort_by(|a, b| {
        let key = |k: &KindSum| {
            if k.timed_rows > 0 {
                (0, -(k.burn_seconds - k.torch_seconds))
            } else {
                (1, -k.torch_only_seconds)
            }
        };
        let (ka, kb) = (key(a), key(b));
        ka.0.cmp(&kb.0).then(ka.1.total_cmp(&kb.1))
    });
    kinds
}

/// `bench_ops.py` beside `bench.py`.
fn ops_script(bench_py: Option<&Path>) -> PathBuf {
    match bench_py {
        Some(script) => script.with_file_name("bench_ops.py"),
        None => crate::references::workspace_root().join("xtask/python/bench_ops.py"),
    }
}

#[allow(clippy::too_many_arguments)]
fn run_model(
    model: &str,
    backend: Backend,
    batch: usize,
    size: usize,
    warmup: usize,
    runs: usize,
    threads: usize,
    python: &Path,
    script: &Path,
    time_torch: bool,
) -> Result<ModelOps> {
    let load_before = load_average();
    let started = Instant::now();
    let mut command = Command::new(python);
    command
        .arg(script)
        .arg("record")
        .args(["--model", model])
        .args(["--batch", &batch.to_string()])
        .args(["--size", &size.to_string()])
        .args(["--threads", &threads.to_string()])
        .args(["--warmup", &warmup.to_string()])
        .args(["--runs", &runs.to_string()]);
    if !time_torch {
        command.arg("--no-time");
    }
    let output = command
        .output()
        .with_context(|| format!("running {}", python.display()))?;
    let record: TorchRecord = crate::bench::last_json(&output, "pytorch ops")?;
    let calls: usize = record.rows.iter().map(|r| r.count).sum();
    println!(
        "{model}: {} distinct aten ops of {calls} calls recorded{} ({:.0} s); timing them in burn",
        record.rows.len(),
        if time_torch { " and timed" } else { "" },
        started.elapsed().as_secs_f64()
    );
    let started = Instant::now();
    let mut ops: Vec<Op> = record
        .rows
        .iter()
        .map(|r| {
            Op::Aten(AtenOp {
                name: r.name.clone(),
                args: r.args.clone(),
                outputs: r.outputs.clone(),
            })
        })
        .collect();
    ops.push(Op::Forward {
        model: model.into(),
        batch,
        size,
    });
    let mut burn = run_children(backend, &ops, warmup, runs, threads)?;
    let forward = burn.pop().context("no forward time")?;
    println!(
        "{model}: burn done ({:.0} s)",
        started.elapsed().as_secs_f64()
    );
    let rows: Vec<Row> = record
        .rows
        .iter()
        .zip(ops)
        .zip(burn)
        .map(|((r, op), burn)| {
            let Op::Aten(op) = op else {
                unreachable!("aten ops first")
            };
            Row {
                kind: op.kind(),
                shape: op.describe(&r.text),
                flops: op.flops(),
                count: r.count,
                burn,
                torch_seconds: r.seconds,
                op,
            }
        })
        .collect();
    let (burn_forward_seconds, burn_forward_error) = match forward {
        BurnTime::Seconds(s) => (Some(s), None),
        BurnTime::Failed(e) => (None, Some(e)),
        BurnTime::Unmapped => (None, None),
    };
    Ok(ModelOps {
        model: model.into(),
        backend: backend.name().into(),
        batch,
        size,
        threads,
        torch: record.torch,
        burn_forward_seconds,
        burn_forward_error,
        torch_forward_seconds: record.model_seconds,
        kinds: kind_sums(&rows),
        rows,
        load: [load_before, load_average()],
    })
}

/// The 1-minute load average (`/proc/loadavg`), where there is one.
fn load_average() -> Option<f64> {
    std::fs::read_to_string("/proc/loadavg")
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// Runs the op tables for `backend`: per model of `models` (default: [`DEFAULT_MODELS`]),
/// PyTorch's record and times (`bench_ops.py`) and burn's (child processes of this binary),
/// written to `ops-<model>-<backend>.md` / `.json` in `out`, and a summary
/// (`ops-summary-<backend>.md` / `.json`). With `train`: resnet18's training-step convolutions
/// (`ops-train-<backend>.md`). `torch` is the venv's python and `bench.py` (`bench_ops.py` is
/// beside it); without it, PyTorch only records the ops, untimed.
#[allow(clippy::too_many_arguments)]
pub fn run(
    models: &[String],
    backend: Backend,
    batch: usize,
    size: usize,
    warmup: usize,
    runs: usize,
    threads: usize,
    torch: Option<(&Path, &Path)>,
    out: &Path,
    train: bool,
) -> Result<String> {
    let script = ops_script(torch.map(|(_, s)| s));
    if train {
        return run_train(
            backend, batch, size, warmup, runs, threads, torch, &script, out,
        );
    }
    let python = match torch {
        Some((python, _)) => python.to_path_buf(),
        None => crate::parity::python(None)?,
    };
    let models: Vec<String> = if models.is_empty() {
        DEFAULT_MODELS.map(String::from).to_vec()
    } else {
        models.to_vec()
    };
    for model in &models {
        model_zoo::model_info(model)?;
    }
    std::fs::create_dir_all(out)?;
    let mut results = Vec::new();
    let mut printed = String::new();
    for model in &models {
        let result = match run_model(
            model,
            backend,
            batch,
            size,
            warmup,
            runs,
            threads,
            &python,
            &script,
            torch.is_some(),
        ) {
            Ok(result) => result,
            Err(err) => {
                eprintln!("{model}: {err:#}");
                printed.push_str(&format!("## {model}\n\nfailed: {err:#}\n\n"));
                continue;
            }
        };
        let md = model_markdown(&result);
        let stem = format!("ops-{model}-{}", backend.name());
        std::fs::write(out.join(format!("{stem}.md")), &md)?;
        std::fs::write(
            out.join(format!("{stem}.json")),
            serde_json::to_string_pretty(&result)?,
        )?;
        printed.push_str(&kind_markdown(&result));
        printed.push('\n');
        results.push(result);
    }
    let summary = summary_markdown(&results, backend);
    std::fs::write(
        out.join(format!("ops-summary-{}.md", backend.name())),
        &summary,
    )?;
    std::fs::write(
        out.join(format!("ops-summary-{}.json", backend.name())),
        serde_json::to_string_pretty(&json!({
            "backend": backend.name(),
            "batch": batch,
            "size": size,
            "threads": threads,
            "models": results.iter().map(summary_json).collect::<Vec<_>>(),
        }))?,
    )?;
    Ok(format!("{printed}{summary}"))
}

/// Milliseconds, two decimals; three below 0.1 ms (views and other tiny ops).
fn ms(seconds: f64) -> String {
    let ms = seconds * 1e3;
    if ms.abs() < 0.1 {
        format!("{ms:.3}")
    } else {
        format!("{ms:.2}")
    }
}

fn opt_ms(seconds: Option<f64>) -> String {
    seconds.map_or("-".into(), ms)
}

fn gflops(flops: Option<f64>, seconds: Option<f64>) -> String {
    match (flops, seconds) {
        (Some(f), Some(s)) if f > 0.0 && s > 0.0 => format!("{:.0}", f / s / 1e9),
        _ => "-".into(),
    }
}

fn ratio(burn: f64, torch: f64) -> String {
    if torch > 0.0 {
        format!("{:.2}", burn / torch)
    } else {
        "-".into()
    }
}

fn title(result: &ModelOps) -> String {
    format!(
        "{} op by op: {} vs PyTorch {}, batch {}, {}x{}, {} threads",
        result.model,
        result.backend,
        result.torch,
        result.batch,
        result.size,
        result.size,
        result.threads
    )
}

/// The sums by kind, with the whole forward and what the op sums cover of it.
fn kind_markdown(result: &ModelOps) -> String {
    let mut out = format!(
        "### {}\n\n\
         | kind | calls | burn ms | PyTorch ms | burn / PyTorch time | share of the gap | \
         burn GFLOP/s | PyTorch GFLOP/s |\n\
         |---|---:|---:|---:|---:|---:|---:|---:|\n",
        title(result)
    );
    let (burn_mapped, torch_mapped) = result.mapped();
    let gap = burn_mapped - torch_mapped;
    // Without PyTorch's times (`--no-torch`), its columns are empty.
    let has_torch = result.rows.iter().any(|r| r.torch_seconds.is_some());
    let t = |text: String| if has_torch { text } else { "-".into() };
    for k in &result.kinds {
        if k.timed_rows == 0 && k.burn_seconds == 0.0 {
            let why = if k.kind.starts_with("failed") {
                "failed"
            } else {
                "unmapped"
            };
            out.push_str(&format!(
                "| {} | {} | {why} | {} | - | - | - | - |\n",
                k.kind,
                k.count,
                ms(k.torch_only_seconds)
            ));
            continue;
        }
        let has_flops = k.flops > 0.0;
        out.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} | {} | {} |\n",
            k.kind,
            k.count,
            ms(k.burn_seconds),
            t(ms(k.torch_seconds)),
            t(ratio(k.burn_seconds, k.torch_seconds)),
            if gap != 0.0 && has_torch {
                format!("{:.0}%", 100.0 * (k.burn_seconds - k.torch_seconds) / gap)
            } else {
                "-".into()
            },
            gflops(has_flops.then_some(k.flops), Some(k.burn_seconds)),
            t(gflops(has_flops.then_some(k.flops), Some(k.torch_seconds))),
        ));
    }
    out.push_str(&format!(
        "| **all timed in both** | {} | {} | {} | **{}** | 100% | | |\n",
        result
            .kinds
            .iter()
            .filter(|k| k.burn_seconds > 0.0)
            .map(|k| k.count)
            .sum::<usize>(),
        ms(burn_mapped),
        t(ms(torch_mapped)),
        t(ratio(burn_mapped, torch_mapped)),
    ));
    let torch_all = result.torch_all();
    let forward_ratio = match (result.burn_forward_seconds, result.torch_forward_seconds) {
        (Some(b), Some(t)) => ratio(b, t),
        _ => "-".into(),
    };
    out.push_str(&format!(
        "| **whole forward** | | {} | {} | **{}** | | | |\n",
        result.burn_forward_error.as_ref().map_or_else(
            || opt_ms(result.burn_forward_seconds),
            |e| format!("failed: {e}")
        ),
        opt_ms(result.torch_forward_seconds),
        forward_ratio,
    ));
    let cover = |sum: f64, whole: Option<f64>| {
        whole.map_or("-".into(), |w| format!("{:.0}%", 100.0 * sum / w))
    };
    let load = |l: Option<f64>| l.map_or("-".into(), |l| format!("{l:.2}"));
    out.push_str(&format!(
        "\nThe op sums cover {} of burn's forward (its timed ops) and {} of PyTorch's (all its \
         ops, {} ms; {} ms of it in ops without a burn time). Load average {} before, {} after \
         (other work on the machine makes both engines, PyTorch most, slower).\n",
        cover(burn_mapped, result.burn_forward_seconds),
        cover(torch_all, result.torch_forward_seconds),
        ms(torch_all),
        ms(torch_all - torch_mapped),
        load(result.load[0]),
        load(result.load[1]),
    ));
    out
}

/// One model's file: the kinds, then every row (largest gap first).
fn model_markdown(result: &ModelOps) -> String {
    let mut out = format!(
        "{}\n\nEach aten op PyTorch runs in the forward (eval, no_grad), with its shape and how \
         often it occurs, timed alone in both engines: burn runs what the zoo runs for it \
         (`cargo xtask bench --ops`, `xtask/src/bench_ops.rs`). Times are medians of one call; \
         `total` is time x count. Each row is a minimal reproducer: one op, one shape.\n\n",
        kind_markdown(result)
    );
    out.push_str(
        "| kind | aten op | shape | count | burn ms | PyTorch ms | burn / PyTorch time | \
         burn GFLOP/s | PyTorch GFLOP/s | burn total ms | PyTorch total ms | gap ms |\n\
         |---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n",
    );
    let mut rows: Vec<&Row> = result.rows.iter().collect();
    rows.sort_by(|a, b| {
        let key = |r: &Row| match r.gap() {
            Some(g) => (0, -g),
            None => (1, -(r.count as f64 * r.torch_seconds.unwrap_or(0.0))),
        };
        let (ka, kb) = (key(a), key(b));
        ka.0.cmp(&kb.0).then(ka.1.total_cmp(&kb.1))
    });
    for row in rows {
        let c = row.count as f64;
        let burn = match &row.burn {
            BurnTime::Seconds(s) => ms(*s),
            BurnTime::Unmapped => "unmapped".into(),
            BurnTime::Failed(e) => format!("failed: {}", e.replace('|', "/").replace('\n', " ")),
        };
        out.push_str(&format!(
            "| {} | `{}` | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |\n",
            row.kind,
            row.op.name.trim_start_matches("aten."),
            row.shape.replace('|', "/"),
            row.count,
            burn,
            opt_ms(row.torch_seconds),
            match (row.burn_seconds(), row.torch_seconds) {
                (Some(b), Some(t)) => ratio(b, t),
                _ => "-".into(),
            },
            gflops(row.flops, row.burn_seconds()),
            gflops(row.flops, row.torch_seconds),
            opt_ms(row.burn_seconds().map(|s| c * s)),
            opt_ms(row.torch_seconds.map(|s| c * s)),
            opt_ms(row.gap()),
        ));
    }
    out
}

/// The kinds with the largest share of the gap, as `kind 40%, kind 20%`.
fn top_kinds(result: &ModelOps, n: usize) -> String {
    let (burn, torch) = result.mapped();
    let gap = burn - torch;
    result
        .kinds
        .iter()
        .filter(|k| k.timed_rows > 0)
        .take(n)
        .map(|k| {
            format!(
                "{} {:.0}%",
                k.kind,
                100.0 * (k.burn_seconds - k.torch_seconds) / gap
            )
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn summary_markdown(results: &[ModelOps], backend: Backend) -> String {
    let mut out = format!(
        "### Summary: {} vs PyTorch, op by op\n\n\
         | model | burn forward ms | PyTorch forward ms | burn / PyTorch time | \
         burn op sum ms | PyTorch op sum ms | op sum burn / PyTorch | op sums / forward \
         (burn, PyTorch) | most burn time over PyTorch's (share of the gap) | ops without a burn time |\n\
         |---|---:|---:|---:|---:|---:|---:|---|---|---|\n",
        backend.name()
    );
    for r in results {
        let (burn, torch) = r.mapped();
        let torch_all = r.torch_all();
        let cover = |sum: f64, whole: Option<f64>| {
            whole.map_or("-".into(), |w| format!("{:.0}%", 100.0 * sum / w))
        };
        let missing: Vec<String> = r
            .kinds
            .iter()
            .filter(|k| k.timed_rows == 0 && k.burn_seconds == 0.0)
            .map(|k| format!("{} ({})", k.kind, k.count))
            .collect();
        out.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} | {} | {}, {} | {} | {} |\n",
            r.model,
            opt_ms(r.burn_forward_seconds),
            opt_ms(r.torch_forward_seconds),
            match (r.burn_forward_seconds, r.torch_forward_seconds) {
                (Some(b), Some(t)) => ratio(b, t),
                _ => "-".into(),
            },
            ms(burn),
            ms(torch),
            ratio(burn, torch),
            cover(burn, r.burn_forward_seconds),
            cover(torch_all, r.torch_forward_seconds),
            top_kinds(r, 3),
            if missing.is_empty() {
                "none".into()
            } else {
                missing.join(", ")
            },
        ));
    }
    out
}

fn summary_json(r: &ModelOps) -> Value {
    let (burn, torch) = r.mapped();
    json!({
        "model": r.model,
        "burn_forward_seconds": r.burn_forward_seconds,
        "torch_forward_seconds": r.torch_forward_seconds,
        "burn_op_sum_seconds": burn,
        "torch_op_sum_seconds": torch,
        "torch_all_ops_seconds": r.torch_all(),
        "kinds": r.kinds,
    })
}

// ---------------------------------------------------------------------------------------------
// `--ops-train`.

/// One op of the training-step table with both engines' times.
#[derive(Debug, Clone, Serialize)]
pub struct TrainRow {
    pub op: TrainOp,
    pub count: usize,
    pub burn_seconds: Option<f64>,
    pub torch_seconds: Option<f64>,
}

#[allow(clippy::too_many_arguments)]
fn run_train(
    backend: Backend,
    batch: usize,
    size: usize,
    warmup: usize,
    runs: usize,
    threads: usize,
    torch: Option<(&Path, &Path)>,
    script: &Path,
    out: &Path,
) -> Result<String> {
    let table = basic_resnet_train_ops([2, 2, 2, 2], batch, size);
    let ops: Vec<TrainOp> = table.keys().cloned().collect();
    let count: usize = table.values().sum();
    println!(
        "resnet18's training step at batch {batch}, {size}x{size}: {} distinct ops of {count}, \
         {} backend",
        ops.len(),
        backend.name()
    );
    let child_ops: Vec<Op> = ops.iter().cloned().map(Op::Train).collect();
    let burn = run_children(backend, &child_ops, warmup, runs, threads)?;
    let torch: Option<Vec<f64>> = match torch {
        None => None,
        Some((python, _)) => {
            std::fs::create_dir_all(out)?;
            let spec = out.join(format!(".ops-train-spec-{}.json", std::process::id()));
            std::fs::write(&spec, serde_json::to_string(&ops)?)?;
            let output = Command::new(python)
                .arg(script)
                .arg("train")
                .arg("--spec")
                .arg(&spec)
                .args(["--threads", &threads.to_string()])
                .args(["--warmup", &warmup.to_string()])
                .args(["--runs", &runs.to_string()])
                .output()
                .with_context(|| format!("running {}", python.display()));
            std::fs::remove_file(&spec).ok();
            Some(crate::bench::last_json(&output?, "pytorch ops")?)
        }
    };
    if torch.as_ref().is_some_and(|t| t.len() != ops.len()) {
        bail!("the op timings do not match the op list");
    }
    let rows: Vec<TrainRow> = ops
        .iter()
        .enumerate()
        .map(|(i, op)| TrainRow {
            op: op.clone(),
            count: table[op],
            burn_seconds: burn[i].seconds(),
            torch_seconds: torch.as_ref().map(|t| t[i]),
        })
        .collect();
    for (row, time) in rows.iter().zip(&burn) {
        if let BurnTime::Failed(err) = time {
            eprintln!("{}: {err}", row.op.describe());
        }
    }
    let md = train_markdown(&rows, backend, batch, size, threads);
    std::fs::create_dir_all(out)?;
    let stem = format!("ops-train-{}", backend.name());
    std::fs::write(out.join(format!("{stem}.md")), &md)?;
    std::fs::write(
        out.join(format!("{stem}.json")),
        serde_json::to_string_pretty(&json!({
            "model": "resnet18",
            "train": true,
            "backend": backend.name(),
            "batch": batch,
            "size": size,
            "threads": threads,
            "rows": rows,
        }))?,
    )?;
    Ok(md)
}

fn train_markdown(
    rows: &[TrainRow],
    backend: Backend,
    batch: usize,
    size: usize,
    threads: usize,
) -> String {
    let mut out = format!(
        "resnet18 op by op, batch {batch}, {size}x{size}, {} vs PyTorch, {threads} threads. \
         Times are medians of one call; `total` is time × count, the op's share of the \
         convolutions of one training step.\n\n\
         | op | shape | count | burn ms | PyTorch ms | burn / PyTorch time | burn GFLOP/s | \
         PyTorch GFLOP/s | burn total ms | PyTorch total ms | gap ms |\n\
         |---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n",
        backend.name()
    );
    let mut by_kind: BTreeMap<&str, (f64, f64)> = BTreeMap::new();
    for row in rows {
        let c = row.count as f64;
        let burn = row.burn_seconds.unwrap_or(f64::NAN);
        let torch = row.torch_seconds;
        let entry = by_kind.entry(row.op.kind()).or_default();
        entry.0 += c * burn;
        entry.1 += c * torch.unwrap_or(f64::NAN);
        let flops = Some(row.op.flops());
        out.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |\n",
            row.op.kind(),
            row.op.describe(),
            row.count,
            ms(burn),
            opt_ms(torch),
            torch.map_or("-".into(), |t| format!("{:.2}", burn / t)),
            gflops(flops, Some(burn)),
            gflops(flops, torch),
            ms(c * burn),
            torch.map_or("-".into(), |t| ms(c * t)),
            torch.map_or("-".into(), |t| ms(c * (burn - t))),
        ));
    }
    let burn_total: f64 = by_kind.values().map(|v| v.0).sum();
    let torch_total: f64 = by_kind.values().map(|v| v.1).sum();
    out.push_str(
        "\nBy kind (sum of time × count over the model):\n\n\
         | kind | burn ms | PyTorch ms | burn / PyTorch time | share of the gap |\n\
         |---|---:|---:|---:|---:|\n",
    );
    let gap = burn_total - torch_total;
    for (kind, (b, t)) in &by_kind {
        out.push_str(&format!(
            "| {kind} | {} | {} | {:.2} | {:.0}% |\n",
            ms(*b),
            ms(*t),
            b / t,
            100.0 * (b - t) / gap
        ));
    }
    out.push_str(&format!(
        "| **all** | {} | {} | **{:.2}** | 100% |\n",
        ms(burn_total),
        ms(torch_total),
        burn_total / torch_total
    ));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resnet18_training_table_has_every_convolution_three_times() {
        let ops = basic_resnet_train_ops([2, 2, 2, 2], 8, 224);
        let count = |kind: &str| -> usize {
            ops.iter()
                .filter(|(op, _)| op.kind().starts_with(kind))
                .map(|(_, n)| n)
                .sum()
        };
        // 20 convolutions (3 of them projection shortcuts); the stem's input needs no gradient.
        assert_eq!(
            count("conv 1x1") + count("conv 3x3") + count("conv 7x7"),
            20
        );
        assert_eq!(count("conv input gradient"), 19);
        assert_eq!(count("conv weight gradient"), 20);
        // The forward convolutions are torchvision's 1.81 GFLOPs (multiply-adds) per image,
        // less the classifier's 0.0005, with the shortcuts run on the subsampled input.
        let macs: f64 = ops
            .iter()
            .filter(|(op, _)| matches!(op, TrainOp::Conv2d { .. }))
            .map(|(op, n)| op.flops() * *n as f64 / 2.0)
            .sum::<f64>()
            / 8.0;
        assert!((macs / 1e9 - 1.81).abs() < 0.01, "{macs}");
    }

    fn spec(shape: &[usize], stride: &[usize]) -> TensorSpec {
        TensorSpec {
            shape: shape.to_vec(),
            stride: stride.to_vec(),
            dtype: "float32".into(),
        }
    }

    fn op(json: Value) -> AtenOp {
        serde_json::from_value(json).unwrap()
    }

    fn t(shape: &[usize], stride: &[usize]) -> Value {
        json!({"tensor": {"shape": shape, "stride": stride, "dtype": "float32"}})
    }

    #[test]
    fn kinds_and_flops_of_recorded_ops() {
        let conv = op(json!({
            "name": "aten.convolution.default",
            "args": [["input", t(&[8, 64, 56, 56], &[200704, 3136, 56, 1])],
                     ["weight", t(&[64, 64, 3, 3], &[576, 9, 3, 1])],
                     ["bias", null], ["stride", [1, 1]], ["padding", [1, 1]],
                     ["dilation", [1, 1]], ["transposed", false], ["output_padding", [0, 0]],
                     ["groups", 1]],
            "outputs": [[8, 64, 56, 56]],
        }));
        assert_eq!(conv.kind(), "conv 3x3");
        assert_eq!(conv.flops(), Some(2.0 * (8 * 64 * 56 * 56 * 64 * 9) as f64));
        assert_eq!(conv.describe(""), "[8,64,56,56] 3x3 -> 64, stride 1, pad 1");
        let depthwise = op(json!({
            "name": "aten.convolution.default",
            "args": [["input", t(&[8, 96, 56, 56], &[301056, 3136, 56, 1])],
                     ["weight", t(&[96, 1, 7, 7], &[49, 49, 7, 1])],
                     ["bias", t(&[96], &[1])], ["stride", [1, 1]], ["padding", [3, 3]],
                     ["dilation", [1, 1]], ["transposed", false], ["output_padding", [0, 0]],
                     ["groups", 96]],
            "outputs": [[8, 96, 56, 56]],
        }));
        assert_eq!(depthwise.kind(), "conv 7x7 depthwise");
        let relu = op(json!({"name": "aten.relu_.default",
                             "args": [["self", t(&[8, 64], &[64, 1])]], "outputs": [[8, 64]]}));
        assert_eq!(relu.kind(), "relu");
        let mul = op(json!({"name": "aten.mul.Tensor",
                            "args": [["self", t(&[8, 64, 7, 7], &[3136, 49, 7, 1])],
                                     ["other", t(&[8, 64, 1, 1], &[64, 1, 1, 1])]]}));
        assert_eq!(mul.kind(), "mul (broadcast)");
        let view = op(json!({"name": "aten.view.default",
                             "args": [["self", t(&[8, 64], &[64, 1])], ["size", [512]]]}));
        assert_eq!(view.kind(), "views");
        let other = op(json!({"name": "aten.frobnicate.default", "args": []}));
        assert_eq!(other.kind(), "unmapped: aten.frobnicate.default");
    }

    #[test]
    fn layouts_are_recognised() {
        assert!(spec(&[8, 64, 1, 1], &[64, 1, 7, 99]).is_contiguous());
        assert!(!spec(&[8, 56, 56, 96], &[301056, 56, 1, 3136]).is_contiguous());
        let padded = spec(&[64], &[1]).padded(4);
        assert_eq!(padded.shape, [1, 1, 1, 64]);
        assert!(padded.is_contiguous());
    }

    /// Tensors made with PyTorch's strides hold the layout Burn gives them: permuted, narrowed
    /// (a `select` of a packed projection) and broadcast, and a plain copy gives back the shape.
    #[cfg(feature = "flex")]
    #[test]
    fn strided_inputs_have_their_shape() {
        let ctx = Ctx {
            device: Backend::Flex.device().unwrap(),
            warmup: 0,
            runs: 1,
            sync: false,
        };
        // NHWC view of an NCHW tensor (ConvNeXt's LayerNorm input).
        let x = ctx
            .make::<4>(&spec(&[8, 5, 5, 6], &[150, 5, 1, 25]))
            .unwrap();
        assert_eq!(x.dims(), [8, 5, 5, 6]);
        // Swin's q: [512, 3, 49, 32] strides (14112, 32, 288, 1), a select of a packed qkv.
        let q = ctx
            .make::<4>(&spec(&[4, 3, 49, 32], &[14112, 32, 288, 1]))
            .unwrap();
        assert_eq!(q.dims(), [4, 3, 49, 32]);
        // A broadcast axis.
        let e = ctx.make::<3>(&spec(&[2, 5, 7], &[7, 0, 1])).unwrap();
        assert_eq!(e.dims(), [2, 5, 7]);
        // Every mapped op of a small recording runs (no unmapped, no failure).
        let ops = [
            json!({"name": "aten.clone.default",
                   "args": [["self", t(&[4, 3, 49, 32], &[14112, 32, 288, 1])],
                            ["memory_format", "contiguous_format"]],
                   "outputs": [[4, 3, 49, 32]]}),
            json!({"name": "aten.add.Tensor",
                   "args": [["self", t(&[2, 3, 4, 4], &[48, 16, 4, 1])],
                            ["other", t(&[3, 1, 1], &[1, 1, 1])], ["alpha", 1]],
                   "outputs": [[2, 3, 4, 4]]}),
            json!({"name": "aten.select.int",
                   "args": [["self", t(&[3, 2, 4], &[8, 4, 1])], ["dim", 0], ["index", 1]],
                   "outputs": [[2, 4]]}),
            json!({"name": "aten.mean.dim",
                   "args": [["self", t(&[2, 3, 4, 4], &[48, 16, 4, 1])], ["dim", [-1, -2]],
                            ["keepdim", true], ["dtype", null]],
                   "outputs": [[2, 3, 1, 1]]}),
        ];
        for json in ops {
            let op = op(json);
            let time = time_aten(&ctx, &op).unwrap();
            assert!(
                matches!(time, BurnTime::Seconds(_)),
                "{}: {time:?}",
                op.name
            );
        }
    }
}
