//! `cargo xtask bench --ops`: where the time of a ResNet-50 forward goes, op by op, in burn and
//! in PyTorch on the same shapes. Every convolution of the model (by shape, with how often it
//! occurs), its BatchNorm, ReLU and residual add, the stem's max-pool and the classifier, timed in
//! isolation. The sum over the model says which op holds how much of the gap to PyTorch, and each
//! row is a minimal reproducer for an upstream report: one op, one shape, two numbers.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use anyhow::{Context, Result, bail};
use burn::module::Param;
use burn::nn::PaddingConfig2d;
use burn::nn::conv::Conv2d;
use burn::tensor::module::{batch_norm, conv2d, linear, max_pool2d};
use burn::tensor::ops::{ConvOptions, MaxPoolOptions};
use burn::tensor::{Device, Distribution, Tensor, activation::relu, s};
use model_zoo::Backend;
use serde::{Deserialize, Serialize};

/// One op on one shape, as the model runs it (batch `n`, NCHW).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Op {
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
    /// A strided 1x1 convolution as the zoo's ResNets run their projection shortcut: subsample
    /// (`slice` with steps) then a 1x1 convolution at stride 1.
    Subsampled {
        n: usize,
        cin: usize,
        cout: usize,
        stride: usize,
        size: usize,
    },
    /// BatchNorm in eval mode (running statistics).
    BatchNorm { n: usize, c: usize, size: usize },
    /// ReLU on a tensor the op may overwrite (PyTorch's `inplace=True`).
    Relu { n: usize, c: usize, size: usize },
    /// The residual `out += identity`.
    Add { n: usize, c: usize, size: usize },
    /// The stem's 3×3, stride 2, padding 1 max-pool.
    MaxPool { n: usize, c: usize, size: usize },
    /// The classifier: `[n, cin] × [cin, cout] + bias`.
    Linear { n: usize, cin: usize, cout: usize },
    /// The input gradient of a convolution, as autodiff computes it in a training step: timed
    /// as forward + backward with only the input requiring a gradient, less the forward alone
    /// (each engine's own).
    ConvInputGrad(ConvShape),
    /// The weight gradient of a convolution, timed as [`Op::ConvInputGrad`] with only the
    /// weight requiring a gradient.
    ConvWeightGrad(ConvShape),
}

/// A bias-free convolution's shape (the fields of [`Op::Conv2d`]), for its gradients.
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
    fn forward(self) -> Op {
        let ConvShape {
            n,
            cin,
            cout,
            k,
            stride,
            pad,
            size,
        } = self;
        Op::Conv2d {
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

impl Op {
    fn kind(&self) -> &'static str {
        match self {
            Op::Conv2d { k: 1, .. } => "conv 1x1",
            Op::Conv2d { k: 3, .. } => "conv 3x3",
            Op::Conv2d { .. } => "conv 7x7 (stem)",
            Op::Subsampled { .. } => "conv 1x1",
            Op::BatchNorm { .. } => "batchnorm",
            Op::Relu { .. } => "relu",
            Op::Add { .. } => "add",
            Op::MaxPool { .. } => "maxpool",
            Op::Linear { .. } => "linear",
            Op::ConvInputGrad(_) => "conv input gradient",
            Op::ConvWeightGrad(_) => "conv weight gradient",
        }
    }

    /// The forward convolution whose gradient this is.
    fn conv(&self) -> Option<Op> {
        match self {
            Op::ConvInputGrad(shape) | Op::ConvWeightGrad(shape) => Some(shape.forward()),
            _ => None,
        }
    }

    fn describe(&self) -> String {
        if let Some(conv) = self.conv() {
            return conv.describe();
        }
        match self {
            Op::Conv2d {
                n,
                cin,
                cout,
                k,
                stride,
                pad,
                size,
            } => format!("[{n},{cin},{size},{size}] {k}x{k} -> {cout}, stride {stride}, pad {pad}"),
            Op::Subsampled {
                n,
                cin,
                cout,
                stride,
                size,
            } => format!(
                "[{n},{cin},{size},{size}] 1x1 -> {cout}, stride {stride}, as subsample + stride 1"
            ),
            Op::BatchNorm { n, c, size }
            | Op::Relu { n, c, size }
            | Op::Add { n, c, size }
            | Op::MaxPool { n, c, size } => format!("[{n},{c},{size},{size}]"),
            Op::Linear { n, cin, cout } => format!("[{n},{cin}] -> {cout}"),
            Op::ConvInputGrad(_) | Op::ConvWeightGrad(_) => {
                unreachable!("described as their convolution")
            }
        }
    }

    /// Multiply-adds ×2 of a convolution or linear layer, for GFLOP/s.
    fn flops(&self) -> Option<f64> {
        if let Some(conv) = self.conv() {
            return conv.flops();
        }
        match *self {
            Op::Conv2d {
                n,
                cin,
                cout,
                k,
                stride,
                pad,
                size,
            } => {
                let out = (size + 2 * pad - k) / stride + 1;
                Some(2.0 * (n * cout * out * out * cin * k * k) as f64)
            }
            Op::Subsampled {
                n,
                cin,
                cout,
                stride,
                size,
            } => {
                let out = size.div_ceil(stride);
                Some(2.0 * (n * cout * out * out * cin) as f64)
            }
            Op::Linear { n, cin, cout } => Some(2.0 * (n * cin * cout) as f64),
            _ => None,
        }
    }
}

/// Every op of a torchvision ResNet with bottleneck blocks (`layers` blocks per stage, as
/// `_make_layer` builds them) at batch `n` and image side `size`, with how often it occurs in the
/// zoo's forward. The strided 1x1 shortcut convolutions run as [`Op::Subsampled`]; the plain
/// strided `conv2d` on those shapes is listed too, with count 0, as the reproducer of why.
pub fn bottleneck_resnet_ops(layers: [usize; 4], n: usize, size: usize) -> BTreeMap<Op, usize> {
    let mut ops = BTreeMap::new();
    fn add(ops: &mut BTreeMap<Op, usize>, op: Op) {
        *ops.entry(op).or_insert(0) += 1;
    }
    let conv = |cin, cout, k, stride, pad, size| Op::Conv2d {
        n,
        cin,
        cout,
        k,
        stride,
        pad,
        size,
    };
    // Stem: conv 7×7/2, BN, ReLU, max-pool 3×3/2.
    let mut side = size.div_ceil(2);
    add(&mut ops, conv(3, 64, 7, 2, 3, size));
    add(
        &mut ops,
        Op::BatchNorm {
            n,
            c: 64,
            size: side,
        },
    );
    add(
        &mut ops,
        Op::Relu {
            n,
            c: 64,
            size: side,
        },
    );
    add(
        &mut ops,
        Op::MaxPool {
            n,
            c: 64,
            size: side,
        },
    );
    side = side.div_ceil(2);
    let mut inplanes = 64;
    for (stage, &blocks) in layers.iter().enumerate() {
        let planes = 64 << stage;
        let out_planes = planes * 4;
        for block in 0..blocks {
            let stride = if stage > 0 && block == 0 { 2 } else { 1 };
            let out_side = side.div_ceil(stride);
            // conv1 1×1, conv2 3×3 (carries the stride, ResNet v1.5), conv3 1×1.
            add(&mut ops, conv(inplanes, planes, 1, 1, 0, side));
            add(
                &mut ops,
                Op::BatchNorm {
                    n,
                    c: planes,
                    size: side,
                },
            );
            add(
                &mut ops,
                Op::Relu {
                    n,
                    c: planes,
                    size: side,
                },
            );
            add(&mut ops, conv(planes, planes, 3, stride, 1, side));
            add(
                &mut ops,
                Op::BatchNorm {
                    n,
                    c: planes,
                    size: out_side,
                },
            );
            add(
                &mut ops,
                Op::Relu {
                    n,
                    c: planes,
                    size: out_side,
                },
            );
            add(&mut ops, conv(planes, out_planes, 1, 1, 0, out_side));
            add(
                &mut ops,
                Op::BatchNorm {
                    n,
                    c: out_planes,
                    size: out_side,
                },
            );
            if block == 0 && stride > 1 {
                add(
                    &mut ops,
                    Op::Subsampled {
                        n,
                        cin: inplanes,
                        cout: out_planes,
                        stride,
                        size: side,
                    },
                );
                ops.entry(conv(inplanes, out_planes, 1, stride, 0, side))
                    .or_insert(0);
                add(
                    &mut ops,
                    Op::BatchNorm {
                        n,
                        c: out_planes,
                        size: out_side,
                    },
                );
            } else if block == 0 {
                add(&mut ops, conv(inplanes, out_planes, 1, stride, 0, side));
                add(
                    &mut ops,
                    Op::BatchNorm {
                        n,
                        c: out_planes,
                        size: out_side,
                    },
                );
            }
            add(
                &mut ops,
                Op::Add {
                    n,
                    c: out_planes,
                    size: out_side,
                },
            );
            add(
                &mut ops,
                Op::Relu {
                    n,
                    c: out_planes,
                    size: out_side,
                },
            );
            inplanes = out_planes;
            side = out_side;
        }
    }
    add(
        &mut ops,
        Op::Linear {
            n,
            cin: inplanes,
            cout: 1000,
        },
    );
    ops
}

/// The convolutions of a training step of a torchvision ResNet with basic blocks (`layers`
/// blocks per stage; resnet18 is `[2, 2, 2, 2]`) at batch `n` and image side `size`: each
/// convolution's forward, input gradient (not for the stem, whose input needs none) and weight
/// gradient, with how often each occurs. The projection shortcut is the zoo's subsample + 1x1 at
/// stride 1, so its gradients are those of that 1x1 convolution.
pub fn basic_resnet_train_ops(layers: [usize; 4], n: usize, size: usize) -> BTreeMap<Op, usize> {
    let mut ops = BTreeMap::new();
    let mut add = |shape: ConvShape, input_grad: bool| {
        if input_grad {
            *ops.entry(Op::ConvInputGrad(shape)).or_insert(0) += 1;
        }
        *ops.entry(Op::ConvWeightGrad(shape)).or_insert(0) += 1;
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

fn random<const D: usize>(shape: [usize; D], device: &Device) -> Tensor<D> {
    Tensor::random(shape, Distribution::Normal(0.0, 1.0), device)
}

/// Median seconds of `runs` timed calls of `op` on fresh inputs made by `input` (untimed), after
/// `warmup` calls.
///
/// One element of the result is read back, so a GPU backend has finished computing it before
/// the clock stops. Not the whole result: PyTorch's CPU timings copy nothing out, and a copy of
/// the whole output to the host would count against burn's op.
fn time_op<I>(
    warmup: usize,
    runs: usize,
    input: impl FnMut() -> I,
    mut op: impl FnMut(I) -> Tensor<4>,
) -> Result<f64> {
    crate::bench::time_runs_with(warmup, runs, input, |x| {
        crate::bench::read_back(op(x).slice(s![0..1, 0..1, 0..1, 0..1]))
    })
}

/// A fresh copy of `t` that no other handle shares, so an op may reuse its buffer.
fn fresh(t: &Tensor<4>) -> Tensor<4> {
    Tensor::from_data(t.to_data(), &t.device())
}

/// A bias-free convolution as the zoo's models run it: [`model_zoo::layers::conv2d`] (on an
/// autodiff Flex device, the zoo's gemm gradients).
fn zoo_conv2d(x: Tensor<4>, weight: Tensor<4>, stride: usize, pad: usize) -> Tensor<4> {
    let [_, _, kh, kw] = weight.dims();
    let conv = Conv2d {
        weight: Param::from_tensor(weight),
        bias: None,
        stride: [stride; 2],
        kernel_size: [kh, kw],
        dilation: [1, 1],
        groups: 1,
        padding: PaddingConfig2d::Explicit(pad, pad, pad, pad),
    };
    model_zoo::layers::conv2d(&conv, x)
}

/// Median seconds of a convolution's forward and backward on an autodiff device, with only the
/// input (`input_grad`) or only the weight requiring a gradient, less the forward alone.
fn time_conv_grad(
    shape: &ConvShape,
    input_grad: bool,
    device: &Device,
    warmup: usize,
    runs: usize,
) -> Result<f64> {
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
        random([n, cin, size, size], device),
        random([cout, cin, k, k], device),
    );
    let upstream = random([n, cout, out, out], device);
    let forward = time_op(
        warmup,
        runs,
        || (),
        |()| zoo_conv2d(xf.clone(), wf.clone(), stride, pad) * upstream.clone(),
    )?;
    let device = device.clone().autodiff();
    let x = random([n, cin, size, size], &device);
    let w = random([cout, cin, k, k], &device);
    let (x, w) = if input_grad {
        (x.require_grad(), w)
    } else {
        (x, w.require_grad())
    };
    let upstream = random([n, cout, out, out], &device);
    let both = time_op(
        warmup,
        runs,
        || (),
        |()| {
            let y = zoo_conv2d(x.clone(), w.clone(), stride, pad);
            let grads = (y * upstream.clone()).sum().backward();
            let grad = if input_grad {
                x.grad(&grads)
            } else {
                w.grad(&grads)
            };
            grad.expect("the tensor requires a gradient")
        },
    )?;
    Ok((both - forward).max(0.0))
}

/// Times one op on `device` (median seconds).
pub fn time_burn(op: &Op, device: &Device, warmup: usize, runs: usize) -> Result<f64> {
    match op {
        Op::ConvInputGrad(shape) => return time_conv_grad(shape, true, device, warmup, runs),
        Op::ConvWeightGrad(shape) => return time_conv_grad(shape, false, device, warmup, runs),
        _ => {}
    }
    match *op {
        Op::Conv2d {
            n,
            cin,
            cout,
            k,
            stride,
            pad,
            size,
        } => {
            let x = random([n, cin, size, size], device);
            let w = random([cout, cin, k, k], device);
            time_op(
                warmup,
                runs,
                || (),
                |()| zoo_conv2d(x.clone(), w.clone(), stride, pad),
            )
        }
        Op::Subsampled {
            n,
            cin,
            cout,
            stride,
            size,
        } => {
            let x = random([n, cin, size, size], device);
            let w = random([cout, cin, 1, 1], device);
            let options = ConvOptions::new([1; 2], [0; 2], [1; 2], 1);
            time_op(
                warmup,
                runs,
                || (),
                |()| {
                    let x = x.clone().slice(s![.., .., ..;stride, ..;stride]);
                    conv2d(x, w.clone(), None, options.clone())
                },
            )
        }
        Op::BatchNorm { n, c, size } => {
            let x = random([n, c, size, size], device);
            let [gamma, beta, mean] = [(); 3].map(|()| random([c], device));
            let var = random([c], device).abs() + 0.5;
            time_op(
                warmup,
                runs,
                || fresh(&x),
                |x| {
                    batch_norm(
                        x,
                        gamma.clone(),
                        beta.clone(),
                        mean.clone(),
                        var.clone(),
                        1e-5,
                    )
                },
            )
        }
        Op::Relu { n, c, size } => {
            let x = random([n, c, size, size], device);
            time_op(warmup, runs, || fresh(&x), relu)
        }
        Op::Add { n, c, size } => {
            let x = random([n, c, size, size], device);
            let y = random([n, c, size, size], device);
            time_op(warmup, runs, || fresh(&x), |x| x + y.clone())
        }
        Op::MaxPool { n, c, size } => {
            let x = random([n, c, size, size], device);
            let options = MaxPoolOptions::new([3, 3])
                .with_stride([2, 2])
                .with_padding([1, 1]);
            time_op(
                warmup,
                runs,
                || (),
                |()| max_pool2d(x.clone(), options.clone()),
            )
        }
        Op::Linear { n, cin, cout } => {
            let x = random([n, cin], device);
            let w = random([cin, cout], device);
            let b = random([cout], device);
            time_op(
                warmup,
                runs,
                || (),
                |()| linear(x.clone(), w.clone(), Some(b.clone())).unsqueeze::<4>(),
            )
        }
        Op::ConvInputGrad(_) | Op::ConvWeightGrad(_) => {
            unreachable!("timed by time_conv_grad")
        }
    }
}

/// Times every op of `ops` on `backend` in this process: median seconds per op.
pub fn run_child(backend: Backend, ops: &[Op], warmup: usize, runs: usize) -> Result<Vec<f64>> {
    let device = backend.device()?;
    ops.iter()
        .map(|op| time_burn(op, &device, warmup, runs).with_context(|| op.describe()))
        .collect()
}

/// One op's row: its count in the model and both engines' times.
#[derive(Debug, Clone, Serialize)]
pub struct OpRow {
    pub op: Op,
    pub count: usize,
    pub burn_seconds: f64,
    pub torch_seconds: Option<f64>,
}

/// Runs the op table for `backend` (in a child process of this binary) and PyTorch (one Python
/// process), and writes `ops-<backend>.md` / `.json` into `out`.
#[allow(clippy::too_many_arguments)]
pub fn run(
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
    let (model, table) = if train {
        (
            "resnet18",
            basic_resnet_train_ops([2, 2, 2, 2], batch, size),
        )
    } else {
        ("resnet50", bottleneck_resnet_ops([3, 4, 6, 3], batch, size))
    };
    let ops: Vec<Op> = table.keys().cloned().collect();
    let count: usize = table.values().sum();
    println!(
        "{model} at batch {batch}, {size}x{size}: {} distinct ops of {count}, {} backend",
        ops.len(),
        backend.name()
    );
    let spec = serde_json::to_string(&ops)?;
    let exe = std::env::current_exe()?;
    let output = Command::new(exe)
        .args(["bench", "--ops-child", backend.name()])
        .args(["--ops-spec", &spec])
        .args(["--runs", &runs.to_string()])
        .args(["--ops-warmup", &warmup.to_string()])
        .env("RAYON_NUM_THREADS", threads.to_string())
        .output()?;
    let burn: Vec<f64> = crate::bench::last_json(&output, "burn ops")?;
    let torch: Option<Vec<f64>> = match torch {
        None => None,
        Some((python, script)) => {
            let output = Command::new(python)
                .arg(script)
                .arg("ops")
                .args(["--spec", &spec])
                .args(["--threads", &threads.to_string()])
                .args(["--warmup", &warmup.to_string()])
                .args(["--runs", &runs.to_string()])
                .output()
                .with_context(|| format!("running {}", python.display()))?;
            Some(crate::bench::last_json(&output, "pytorch ops")?)
        }
    };
    if burn.len() != ops.len() || torch.as_ref().is_some_and(|t| t.len() != ops.len()) {
        bail!("the op timings do not match the op list");
    }
    let rows: Vec<OpRow> = ops
        .iter()
        .enumerate()
        .map(|(i, op)| OpRow {
            op: op.clone(),
            count: table[op],
            burn_seconds: burn[i],
            torch_seconds: torch.as_ref().map(|t| t[i]),
        })
        .collect();
    let md = markdown(&rows, model, train, backend, batch, size, threads);
    std::fs::create_dir_all(out)?;
    let stem = format!(
        "ops-{}{}",
        if train { "train-" } else { "" },
        backend.name()
    );
    std::fs::write(out.join(format!("{stem}.md")), &md)?;
    std::fs::write(
        out.join(format!("{stem}.json")),
        serde_json::to_string_pretty(&serde_json::json!({
            "model": model,
            "train": train,
            "backend": backend.name(),
            "batch": batch,
            "size": size,
            "threads": threads,
            "rows": rows,
        }))?,
    )?;
    Ok(md)
}

fn ms(seconds: f64) -> String {
    format!("{:.2}", seconds * 1e3)
}

fn markdown(
    rows: &[OpRow],
    model: &str,
    train: bool,
    backend: Backend,
    batch: usize,
    size: usize,
    threads: usize,
) -> String {
    let what = if train {
        "the convolutions of one training step"
    } else {
        "one forward"
    };
    let mut out = format!(
        "{model} op by op, batch {batch}, {size}x{size}, {} vs PyTorch, {threads} threads. \
         Times are medians of one call; `total` is time × count, the op's share of {what}.\n\n\
         | op | shape | count | burn ms | PyTorch ms | burn / PyTorch time | burn GFLOP/s | \
         PyTorch GFLOP/s | burn total ms | PyTorch total ms | gap ms |\n\
         |---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n",
        backend.name()
    );
    let mut by_kind: BTreeMap<&str, (f64, f64)> = BTreeMap::new();
    for row in rows {
        let c = row.count as f64;
        let torch = row.torch_seconds;
        let entry = by_kind.entry(row.op.kind()).or_default();
        entry.0 += c * row.burn_seconds;
        entry.1 += c * torch.unwrap_or(f64::NAN);
        let gflops = |s: f64| {
            row.op
                .flops()
                .map_or("-".into(), |f| format!("{:.0}", f / s / 1e9))
        };
        out.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |\n",
            row.op.kind(),
            row.op.describe(),
            row.count,
            ms(row.burn_seconds),
            torch.map_or("-".into(), ms),
            torch.map_or("-".into(), |t| format!("{:.2}", row.burn_seconds / t)),
            gflops(row.burn_seconds),
            torch.map_or("-".into(), gflops),
            ms(c * row.burn_seconds),
            torch.map_or("-".into(), |t| ms(c * t)),
            torch.map_or("-".into(), |t| ms(c * (row.burn_seconds - t))),
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
        "| **all** | {} | {} | {:.2} | 100% |\n",
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
    fn resnet50_op_table_has_torchvisions_counts() {
        let ops = bottleneck_resnet_ops([3, 4, 6, 3], 8, 224);
        let count = |kind: &str| -> usize {
            ops.iter()
                .filter(|(op, _)| op.kind().starts_with(kind))
                .map(|(_, n)| n)
                .sum()
        };
        // 53 convolutions and as many BatchNorms; 16 blocks with a residual add each; ReLUs:
        // the stem's and 3 per block.
        assert_eq!(count("conv"), 53);
        assert_eq!(count("batchnorm"), 53);
        assert_eq!(count("add"), 16);
        assert_eq!(count("relu"), 49);
        // Multiply-adds of the convolutions and the classifier: torchvision's 4.09 GFLOPs
        // (multiply-adds) per image for resnet50.
        let macs: f64 = ops
            .iter()
            .filter_map(|(op, n)| op.flops().map(|f| f * *n as f64 / 2.0))
            .sum::<f64>()
            / 8.0;
        assert!((macs / 1e9 - 4.09).abs() < 0.02, "{macs}");
        // The last stage runs at 7x7.
        assert!(ops.contains_key(&Op::Conv2d {
            n: 8,
            cin: 2048,
            cout: 512,
            k: 1,
            stride: 1,
            pad: 0,
            size: 7
        }));
    }

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
            .filter(|(op, _)| matches!(op, Op::Conv2d { .. }))
            .filter_map(|(op, n)| op.flops().map(|f| f * *n as f64 / 2.0))
            .sum::<f64>()
            / 8.0;
        assert!((macs / 1e9 - 1.81).abs() < 0.01, "{macs}");
    }
}
