//! `cargo xtask bench`: the zoo's speed beside PyTorch's and ONNX Runtime's (CPU, on torchvision's
//! model exported to ONNX), measured in the same run on the same machine with the same threads.
//! Every measurement runs in its own process (this binary re-run with `--child`, or
//! `xtask/python/bench.py`), so that its peak RSS is its own and one case cannot warm another.
//!
//! Run it from a release build: `cargo run --release -p xtask -- bench [--quick]`.

use model_zoo::Architecture;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use burn::tensor::{Distribution, Int, Tensor, TensorData};
use model_zoo::{Backend, available_backends};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use zoo_trainer::{Classifier, ImageBatch, OptimizerKind, TrainConfig};

/// Arguments of `cargo xtask bench`.
#[derive(clap::Args)]
pub struct BenchArgs {
    /// A one-minute subset: resnet18 and resnet50 at batch 8, fewer runs, the training step, no
    /// import.
    #[arg(long)]
    quick: bool,
    /// Models for inference (default: resnet18, resnet50, vgg16, googlenet, alexnet,
    /// mobilenet_v3_large, mobilenet_v3_small, shufflenet_v2_x1_0, efficientnet_b0, regnet_y_1_6gf,
    /// densenet121, convnext_tiny, vit_b_16, swin_t).
    #[arg(long, value_delimiter = ',')]
    models: Vec<String>,
    /// Batch sizes for inference (default: 1 and 8).
    #[arg(long, value_delimiter = ',', alias = "batch")]
    batches: Vec<usize>,
    /// Backends (default: every compiled one).
    #[arg(long, value_delimiter = ',')]
    backend: Vec<Backend>,
    /// Image side.
    #[arg(long, default_value_t = 224)]
    size: usize,
    /// Timed runs per case (the median is reported); default 5, 3 with --quick.
    #[arg(long)]
    runs: Option<usize>,
    /// Threads for both engines: PyTorch's `set_num_threads`, burn's `RAYON_NUM_THREADS`
    /// (default: the cores of this machine).
    #[arg(long)]
    threads: Option<usize>,
    /// Instead of whole models: every aten op of each model's forward (`--models`, default
    /// resnet50), as PyTorch records it, timed alone in burn (what the zoo runs for it) and in
    /// PyTorch, with its share of the gap. Uses the first of `--batch` (default 8) and `--backend`
    /// (default flex).
    #[arg(long)]
    ops: bool,
    /// With `--ops`: instead of ResNet-50's forward, the convolutions of resnet18's training
    /// step, each as forward, input gradient and weight gradient (the backward timed as
    /// forward + backward less the forward, in both engines).
    #[arg(long, requires = "ops")]
    ops_train: bool,
    /// Where results.md, results.json and results.png go.
    #[arg(long, default_value = "bench")]
    out: PathBuf,
    /// Skip PyTorch's timings (no `burn / PyTorch`). ONNX Runtime still runs unless `--no-ort`
    /// (its export and logits check use the venv's PyTorch).
    #[arg(long)]
    no_torch: bool,
    /// Skip ONNX Runtime: inference is otherwise also timed by ONNX Runtime's CPU execution
    /// provider on torchvision's model exported to ONNX (opset 17, cached under
    /// ~/.cache/burn-model-zoo/bench/onnx/), same threads, same input, its logits checked against
    /// PyTorch's. Always skipped with `--torch-device cuda`.
    #[arg(long)]
    no_ort: bool,
    /// Where PyTorch runs: `cpu`, or `cuda` to set a GPU backend beside PyTorch eager CUDA.
    #[arg(long, default_value = "cpu")]
    torch_device: String,
    /// The model of the training-step case.
    #[arg(long, default_value = "resnet18")]
    train_model: String,
    /// The batch of the training-step case.
    #[arg(long, default_value_t = 8)]
    train_batch: usize,
    /// Leave out the import cases (resnet152 from `.pth`, `.safetensors` and burnpack, on Flex).
    #[arg(long)]
    no_import: bool,
    /// Leave out the training-step cases (inference only: e.g. under a profiler).
    #[arg(long)]
    no_train: bool,
    /// Python with torch and torchvision (default: the repo's venv).
    #[arg(long, env = "ZOO_PYTHON")]
    python: Option<PathBuf>,
    /// Internal: run one case (JSON) in this process and print its result.
    #[arg(long, hide = true)]
    child: Option<String>,
    /// Internal: time the ops of `--ops-spec` on this backend in this process.
    #[arg(long, hide = true)]
    ops_child: Option<Backend>,
    /// Internal: the op list (JSON) for `--ops-child`.
    #[arg(long, hide = true)]
    ops_spec: Option<String>,
    /// Internal: warm-up calls per op for `--ops-child`.
    #[arg(long, hide = true, default_value_t = 2)]
    ops_warmup: usize,
}

/// One measurement.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
enum Case {
    /// Forward passes in eval mode (with `fold`, BatchNorm folded into the convolutions).
    Infer {
        model: String,
        backend: String,
        batch: usize,
        size: usize,
        warmup: usize,
        runs: usize,
        #[serde(default)]
        fold: bool,
    },
    /// Training steps (forward, backward, SGD with momentum) in train mode; `phase` says which
    /// part of each step is timed (the whole step runs every time).
    Train {
        model: String,
        backend: String,
        batch: usize,
        size: usize,
        warmup: usize,
        runs: usize,
        #[serde(default)]
        phase: TrainPhase,
    },
    /// Loading a weight file into a fresh model.
    Import {
        model: String,
        file: PathBuf,
        burnpack: bool,
    },
}

/// What a measurement reports.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct Measured {
    /// Median seconds of one run (or the whole import).
    seconds: f64,
    /// Images per second (inference and training).
    images_per_second: Option<f64>,
    /// Peak resident memory of the process, MiB.
    peak_rss_mb: f64,
}

/// One row of the results.
#[derive(Debug, Clone, Serialize)]
struct Row {
    what: String,
    model: String,
    backend: String,
    batch: usize,
    burn: Measured,
    torch: Option<Measured>,
    /// ONNX Runtime (CPU) on the model exported to ONNX: inference rows only.
    ort: Option<Ort>,
    /// burn images/s divided by PyTorch's (inference, training), or PyTorch's seconds divided
    /// by burn's (import): above 1, burn is faster.
    ratio: Option<f64>,
    /// burn images/s divided by ONNX Runtime's (inference).
    ratio_ort: Option<f64>,
    /// burn's failure, empty when it ran.
    note: String,
    /// Why ONNX Runtime has no number for an inference row (its export, run or logits check
    /// failed); a failure of the bench like burn's.
    #[serde(skip_serializing_if = "Option::is_none")]
    ort_error: Option<String>,
}

/// What ONNX Runtime reports for one inference case.
#[derive(Debug, Clone, Serialize)]
struct Ort {
    #[serde(flatten)]
    measured: Measured,
    /// max |ONNX Runtime's logits - PyTorch's| / max |PyTorch's logits|, same input.
    max_rel_diff: f64,
    /// onnxruntime's version.
    version: String,
    /// How the ONNX file was made.
    exporter: String,
}

/// Peak RSS of this process in MiB (`VmHWM`), 0 where /proc is not there.
fn peak_rss_mb() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<f64>().ok())
        })
        .map_or(0.0, |kb| kb / 1024.0)
}

/// The median; the mean of the two middle values for an even count.
pub(crate) fn median(mut times: Vec<f64>) -> f64 {
    times.sort_by(f64::total_cmp);
    let n = times.len();
    if n == 0 {
        return f64::NAN;
    }
    if n % 2 == 1 {
        times[n / 2]
    } else {
        (times[n / 2 - 1] + times[n / 2]) / 2.0
    }
}

/// Inference warms up for at least this long as well as `--warmup` calls, in every engine (the
/// same constant in `bench.py`): on this project's 2-core VM a process's first forwards of a
/// small model ran up to 3x slower than its later ones (MobileNetV3-Small at batch 1 after 2
/// warm-up calls: 123-407 img/s over 8 processes; after 30: 327-475), so two calls were not
/// enough for the median of nine to measure the steady state.
const WARMUP_SECONDS: f64 = 1.0;

/// Times `run` after `warmup` untimed calls, and untimed calls for at least `min_warmup`
/// seconds: the median of `runs`.
fn time_runs(
    warmup: usize,
    min_warmup: f64,
    runs: usize,
    mut run: impl FnMut() -> Result<()>,
) -> Result<f64> {
    let start = Instant::now();
    let mut done = 0;
    while done < warmup || start.elapsed().as_secs_f64() < min_warmup {
        run()?;
        done += 1;
    }
    time_runs_with(0, runs, || (), |()| run())
}

/// [`time_runs`] where every call gets a fresh input from `setup`, made outside the clock.
pub(crate) fn time_runs_with<I>(
    warmup: usize,
    runs: usize,
    mut setup: impl FnMut() -> I,
    mut run: impl FnMut(I) -> Result<()>,
) -> Result<f64> {
    let mut times = Vec::with_capacity(runs);
    for i in 0..warmup + runs.max(1) {
        let input = setup();
        let start = Instant::now();
        run(input)?;
        if i >= warmup {
            times.push(start.elapsed().as_secs_f64());
        }
    }
    Ok(median(times))
}

/// Reads `tensor` back to the host: a GPU backend has finished computing it when this returns.
pub(crate) fn read_back<const D: usize>(tensor: Tensor<D>) -> Result<()> {
    model_zoo::read_back(tensor, "the result")?
        .try_to_vec::<f32>()
        .map(|_| ())
        .map_err(|e| anyhow::anyhow!("{e:?}"))
}

/// Runs one case in this process.
fn run_case(case: &Case) -> Result<Measured> {
    match case {
        Case::Infer {
            model,
            backend,
            batch,
            size,
            warmup,
            runs,
            fold,
        } => {
            let device = backend.parse::<Backend>()?.device()?;
            let net = model_zoo::create(model, 1000, &device)?;
            let net = if *fold { net.fold_batchnorm() } else { net };
            let x = Tensor::<4>::random(
                [*batch, 3, *size, *size],
                Distribution::Normal(0.0, 1.0),
                &device,
            );
            // Reading the logits back waits for the device: GPU backends are synchronised
            // before the clock stops.
            let seconds = time_runs(*warmup, WARMUP_SECONDS, *runs, || {
                read_back(net.forward(x.clone()))
            })?;
            Ok(Measured {
                seconds,
                images_per_second: Some(*batch as f64 / seconds),
                peak_rss_mb: peak_rss_mb(),
            })
        }
        Case::Train {
            model,
            backend,
            batch,
            size,
            warmup,
            runs,
            phase,
        } => {
            let device = backend.parse::<Backend>()?.device()?.autodiff();
            let net = model_zoo::create(model, 1000, &device)?;
            let images = Tensor::<4>::random(
                [*batch, 3, *size, *size],
                Distribution::Normal(0.0, 1.0),
                &device,
            );
            let targets: Vec<i64> = (0..*batch as i64).map(|i| (i * 37) % 1000).collect();
            let targets = Tensor::<1, Int>::from_data(TensorData::new(targets, [*batch]), &device);
            let batch_data = ImageBatch::new(images, targets);
            let mut config = TrainConfig::new(model.as_str(), ".");
            config.optimizer = OptimizerKind::Sgd;
            config.lr = 0.01;
            let mut optimizer = config.optimizer();
            let mut classifier = Some(Classifier::new(net, 0.0));
            // Each step in phases; what `phase` names is timed. The loss read back waits for
            // the forward; the update of each step is waited for by the next step's forward
            // (and by reading one updated value for the backward phase).
            let mut times = Vec::with_capacity(*runs);
            for i in 0..warmup + (*runs).max(1) {
                let current = classifier.take().context("no model")?;
                let start = Instant::now();
                let output = current.forward_classification(batch_data.clone());
                read_back(output.loss.clone())?;
                let forward = start.elapsed().as_secs_f64();
                let grads = output.loss.backward();
                let grads = burn::optim::GradientsParams::from_grads(grads, &current);
                let next = optimizer.step(config.lr, current, grads);
                if *phase == TrainPhase::Backward {
                    sync_params(&next)?;
                }
                let step = start.elapsed().as_secs_f64();
                classifier = Some(next);
                if i >= *warmup {
                    times.push(match phase {
                        TrainPhase::Step => step,
                        TrainPhase::Forward => forward,
                        TrainPhase::Backward => step - forward,
                    });
                }
            }
            let seconds = median(times);
            Ok(Measured {
                seconds,
                images_per_second: Some(*batch as f64 / seconds),
                peak_rss_mb: peak_rss_mb(),
            })
        }
        Case::Import {
            model,
            file,
            burnpack,
        } => {
            let device = Backend::Flex.device()?;
            let start = Instant::now();
            let net = model_zoo::create(model, 1000, &device)?;
            let net = if *burnpack {
                zoo_import::load_burnpack(net, file)?
            } else {
                zoo_import::TorchImport::new(file)
                    .model_name(model.as_str())
                    .load_into(net)?
                    .0
            };
            // A load may leave parameters lazy, or backed by a memory-mapped file that is read
            // at first use (burnpack): the time counts until every weight has been read once
            // (a sum over each, so that the page-in counts), as after `load_state_dict`.
            let (total, lazy) = materialise(&net)?;
            if lazy > 0 {
                bail!("{lazy} of {total} parameters still lazy after the load");
            }
            Ok(Measured {
                seconds: start.elapsed().as_secs_f64(),
                images_per_second: None,
                peak_rss_mb: peak_rss_mb(),
            })
        }
    }
}

/// Waits for the device to finish the update of `model`'s parameters (reads one value of each).
fn sync_params<M: burn::module::Module>(model: &M) -> Result<()> {
    #[derive(Default)]
    struct Firsts(Vec<Tensor<1>>);
    impl burn::module::ModuleVisitor for Firsts {
        fn visit_float<const D: usize>(&mut self, param: &burn::module::Param<Tensor<D>>) {
            self.0.push(param.val().flatten::<1>(0, D - 1).slice(0..1));
        }
    }
    let mut firsts = Firsts::default();
    model.visit(&mut firsts);
    if !firsts.0.is_empty() {
        read_back(Tensor::cat(firsts.0, 0))?;
    }
    Ok(())
}

/// Reads every weight of `model` once (a sum over each parameter, so that a lazy parameter is
/// loaded and a memory-mapped one paged in): how many parameters, and how many of them are
/// still lazy after the read (none, unless Burn changes).
fn materialise<M: burn::module::Module>(model: &M) -> Result<(usize, usize)> {
    #[derive(Default)]
    struct Read(usize, usize, Vec<Tensor<1>>);
    impl burn::module::ModuleVisitor for Read {
        fn visit_float<const D: usize>(&mut self, param: &burn::module::Param<Tensor<D>>) {
            self.2.push(param.val().sum());
            self.0 += 1;
            self.1 += usize::from(!param.is_initialized());
        }
    }
    let mut read = Read::default();
    model.visit(&mut read);
    if !read.2.is_empty() {
        read_back(Tensor::cat(read.2, 0).sum())?;
    }
    Ok((read.0, read.1))
}

/// The part of a training step a [`Case::Train`] times.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
enum TrainPhase {
    /// Forward, loss, backward and the optimiser's update.
    #[default]
    Step,
    /// The forward and the loss, read back.
    Forward,
    /// The backward (gradients by parameter) and the optimiser's update.
    Backward,
}

impl TrainPhase {
    fn name(self) -> &'static str {
        match self {
            TrainPhase::Step => "step",
            TrainPhase::Forward => "forward",
            TrainPhase::Backward => "backward",
        }
    }
}

/// Runs `case` in a fresh process of this binary with `threads` rayon threads.
fn child(case: &Case, threads: usize) -> Result<Measured> {
    let exe = std::env::current_exe()?;
    let output = Command::new(exe)
        .args(["bench", "--child"])
        .arg(serde_json::to_string(case)?)
        .env("RAYON_NUM_THREADS", threads.to_string())
        .output()?;
    last_json(&output, "burn")
}

/// The last line of `output` that is a JSON value, or the failure with its last stderr line.
pub(crate) fn last_json<T: for<'de> Deserialize<'de>>(
    output: &std::process::Output,
    who: &str,
) -> Result<T> {
    let stdout = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() {
        bail!(
            "{who} failed ({}): {}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
                .lines()
                .rev()
                .find(|l| !l.trim().is_empty())
                .unwrap_or("")
        );
    }
    let line = stdout
        .lines()
        .rev()
        .find(|l| l.trim_start().starts_with(['{', '[']))
        .with_context(|| format!("{who} printed no result"))?;
    Ok(serde_json::from_str(line)?)
}

/// `xtask/python/bench.py` in the venv: PyTorch's side, and ONNX Runtime's.
#[derive(Clone)]
struct Torch {
    python: PathBuf,
    script: PathBuf,
    threads: usize,
    device: String,
}

impl Torch {
    /// Runs bench.py with `args` and this runner's threads and device; its JSON result.
    fn json(&self, args: &[String], who: &str) -> Result<Value> {
        let output = Command::new(&self.python)
            .arg(&self.script)
            .args(args)
            .args(["--threads", &self.threads.to_string()])
            .args(["--device", &self.device])
            .output()
            .with_context(|| format!("running {}", self.python.display()))?;
        last_json(&output, who)
    }

    fn run(&self, args: &[String]) -> Result<Measured> {
        Ok(measured(&self.json(args, "pytorch")?))
    }

    /// ONNX Runtime on an inference case: `bench.py ort` exports the model PyTorch times (same
    /// seed, same input) and fails when ONNX Runtime's logits differ from PyTorch's.
    fn ort(&self, case: &Case) -> Result<Ort> {
        let Case::Infer {
            model,
            batch,
            size,
            warmup,
            runs,
            ..
        } = case
        else {
            bail!("ONNX Runtime times inference only");
        };
        let args = [
            "ort".to_string(),
            "--model".into(),
            model.clone(),
            "--batch".into(),
            batch.to_string(),
            "--size".into(),
            size.to_string(),
            "--warmup".into(),
            warmup.to_string(),
            "--runs".into(),
            runs.to_string(),
        ];
        let value = self.json(&args, "onnxruntime")?;
        Ok(Ort {
            measured: measured(&value),
            max_rel_diff: value["max_rel_diff"].as_f64().unwrap_or(f64::NAN),
            version: value["onnxruntime"].as_str().unwrap_or("?").into(),
            exporter: value["exporter"].as_str().unwrap_or("?").into(),
        })
    }

    fn case(&self, case: &Case) -> Result<Measured> {
        let args: Vec<String> = match case {
            Case::Infer {
                model,
                batch,
                size,
                warmup,
                runs,
                ..
            }
            | Case::Train {
                model,
                batch,
                size,
                warmup,
                runs,
                ..
            } => {
                let (what, phase) = match case {
                    Case::Infer { .. } => ("infer", TrainPhase::Step),
                    Case::Train { phase, .. } => ("train", *phase),
                    Case::Import { .. } => unreachable!("matched above"),
                };
                [
                    what.to_string(),
                    "--phase".into(),
                    phase.name().into(),
                    "--model".into(),
                    model.clone(),
                    "--batch".into(),
                    batch.to_string(),
                    "--size".into(),
                    size.to_string(),
                    "--warmup".into(),
                    warmup.to_string(),
                    "--runs".into(),
                    runs.to_string(),
                ]
                .into()
            }
            Case::Import { model, file, .. } => vec![
                "import".into(),
                "--model".into(),
                model.clone(),
                "--file".into(),
                file.display().to_string(),
            ],
        };
        self.run(&args)
    }
}

/// The timing of a bench.py result.
fn measured(value: &Value) -> Measured {
    Measured {
        seconds: value["seconds"].as_f64().unwrap_or(f64::NAN),
        images_per_second: value["images_per_second"].as_f64(),
        peak_rss_mb: value["peak_rss_mb"].as_f64().unwrap_or(0.0),
    }
}

/// Runs the benchmark; prints the table and writes results.{md,json,png} into `--out`.
pub fn run(args: &BenchArgs) -> Result<bool> {
    if let Some(json) = &args.child {
        let case: Case = serde_json::from_str(json)?;
        let measured = run_case(&case)?;
        println!("{}", serde_json::to_string(&measured)?);
        return Ok(true);
    }
    if let Some(backend) = args.ops_child {
        let ops: Vec<crate::bench_ops::Op> =
            serde_json::from_str(args.ops_spec.as_deref().context("--ops-spec is missing")?)?;
        let times =
            crate::bench_ops::run_child(backend, &ops, args.ops_warmup, args.runs.unwrap_or(5))?;
        println!("{}", serde_json::to_string(&times)?);
        return Ok(true);
    }
    if cfg!(debug_assertions) {
        eprintln!("warning: a debug build; benchmark with `cargo run --release -p xtask -- bench`");
    }
    let threads = args
        .threads
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    // ONNX Runtime runs on the CPU (its CPU execution provider), beside PyTorch on the CPU.
    let ort_on = !args.no_ort && !args.ops && args.torch_device == "cpu";
    let python = if args.no_torch && !ort_on {
        None
    } else {
        Some(crate::parity::python(args.python.as_deref())?)
    };
    let runner = |device: &str| {
        python.as_ref().map(|python| Torch {
            python: python.clone(),
            script: crate::references::workspace_root().join("xtask/python/bench.py"),
            threads,
            device: device.into(),
        })
    };
    let torch = if args.no_torch {
        None
    } else {
        runner(&args.torch_device)
    };
    let ort = if ort_on { runner("cpu") } else { None };
    if args.ops {
        let table = crate::bench_ops::run(
            &args.models,
            args.backend.first().copied().unwrap_or(Backend::Flex),
            args.batches.first().copied().unwrap_or(8),
            args.size,
            if args.quick { 1 } else { 2 },
            args.runs.unwrap_or(if args.quick { 3 } else { 7 }),
            threads,
            torch
                .as_ref()
                .map(|t| (t.python.as_path(), t.script.as_path())),
            &args.out,
            args.ops_train,
        )?;
        println!("\n{table}");
        return Ok(true);
    }
    let models: Vec<String> = match (&args.models[..], args.quick) {
        ([], true) => vec!["resnet18".into(), "resnet50".into()],
        ([], false) => [
            "resnet18",
            "resnet50",
            "vgg16",
            "googlenet",
            "alexnet",
            "mobilenet_v3_large",
            "mobilenet_v3_small",
            "shufflenet_v2_x1_0",
            "efficientnet_b0",
            "regnet_y_1_6gf",
            "densenet121",
            "convnext_tiny",
            "vit_b_16",
            "swin_t",
        ]
        .map(String::from)
        .into(),
        (given, _) => given.to_vec(),
    };
    for name in &models {
        model_zoo::model_info(name)?;
    }
    let batches: Vec<usize> = match (&args.batches[..], args.quick) {
        ([], true) => vec![8],
        ([], false) => vec![1, 8],
        (given, _) => given.to_vec(),
    };
    let backends = if args.backend.is_empty() {
        available_backends()
    } else {
        args.backend.clone()
    };
    let runs = args.runs.unwrap_or(if args.quick { 3 } else { 5 });
    let warmup = if args.quick { 1 } else { 2 };

    let mut cases = Vec::new();
    for model in &models {
        let info = model_zoo::model_info(model)?;
        // Whether the model has a BatchNorm to fold, asked once of a freshly built one.
        let can_fold = info
            .create(info.num_classes, &model_zoo::Backend::Flex.device()?)?
            .can_fold_batchnorm();
        let folds: &[bool] = if can_fold { &[false, true] } else { &[false] };
        for &batch in &batches {
            for &backend in &backends {
                for &fold in folds {
                    cases.push(Case::Infer {
                        model: model.clone(),
                        backend: backend.name().into(),
                        batch,
                        size: args.size,
                        warmup,
                        runs,
                        fold,
                    });
                }
            }
        }
    }
    for &backend in backends.iter().filter(|_| !args.no_train) {
        for phase in [TrainPhase::Step, TrainPhase::Forward, TrainPhase::Backward] {
            cases.push(Case::Train {
                model: args.train_model.clone(),
                backend: backend.name().into(),
                batch: args.train_batch,
                size: args.size,
                warmup: 1,
                runs,
                phase,
            });
        }
    }
    if !args.quick && !args.no_import {
        let file = import_file(args, torch.as_ref())?;
        let burnpack = file.with_extension("bpk");
        let safetensors = file.with_extension("safetensors");
        if !burnpack.is_file() || !safetensors.is_file() {
            let model = model_zoo::create("resnet152", 1000, &Backend::Flex.device()?)?;
            let (model, _) = zoo_import::TorchImport::new(&file).load_into(model)?;
            zoo_import::save_burnpack(&model, &burnpack)?;
            zoo_import::save_safetensors(&model, &safetensors)?;
        }
        for (file, burnpack) in [(file, false), (safetensors, false), (burnpack, true)] {
            cases.push(Case::Import {
                model: "resnet152".into(),
                file,
                burnpack,
            });
        }
    }

    println!(
        "{} cases; PyTorch with {threads} threads{}; ONNX Runtime (CPU) with {threads} threads{}",
        cases.len(),
        if torch.is_none() { " (skipped)" } else { "" },
        match (&ort, args.no_ort) {
            (Some(_), _) => "",
            (None, true) => " (skipped)",
            (None, false) => " (skipped: PyTorch is not on the CPU)",
        }
    );
    let mut rows = Vec::new();
    // PyTorch and ONNX Runtime run once per shape, not once per backend.
    let mut torch_cache: std::collections::HashMap<String, Option<Measured>> = Default::default();
    let mut ort_cache: std::collections::HashMap<String, Result<Ort, String>> = Default::default();
    for case in &cases {
        let (what, model, backend, batch) = describe(case);
        let burn = child(case, threads);
        let key = torch_key(case);
        let torch_result = match (&torch, torch_cache.get(&key)) {
            (None, _) => None,
            (Some(_), Some(cached)) => cached.clone(),
            (Some(t), None) => {
                let measured = match t.case(case) {
                    Ok(m) => Some(m),
                    Err(e) => {
                        eprintln!("pytorch {what} {model} batch {batch}: {e:#}");
                        None
                    }
                };
                torch_cache.insert(key.clone(), measured.clone());
                measured
            }
        };
        // Right after PyTorch, on the same input: inference only.
        let ort_result = match (&ort, case) {
            (Some(o), Case::Infer { .. }) => Some(
                ort_cache
                    .entry(key)
                    .or_insert_with(|| {
                        o.ort(case).map_err(|e| {
                            eprintln!("onnxruntime {what} {model} batch {batch}: {e:#}");
                            format!("{e:#}")
                        })
                    })
                    .clone(),
            ),
            _ => None,
        };
        let (ort_result, ort_error) = match ort_result {
            Some(Ok(m)) => (Some(m), None),
            Some(Err(e)) => (None, Some(e)),
            None => (None, None),
        };
        let (burn, note) = match burn {
            Ok(m) => (m, String::new()),
            Err(e) => (Measured::default(), format!("failed: {e:#}")),
        };
        let ratio_ort = match (&ort_result, burn.images_per_second) {
            (Some(o), Some(b)) if note.is_empty() => o.measured.images_per_second.map(|o| b / o),
            _ => None,
        };
        let ratio = torch_result.as_ref().and_then(|t| {
            if !note.is_empty() {
                return None;
            }
            match (burn.images_per_second, t.images_per_second) {
                (Some(b), Some(p)) => Some(b / p),
                _ => Some(t.seconds / burn.seconds),
            }
        });
        let row = Row {
            what,
            model,
            backend,
            batch,
            burn,
            torch: torch_result,
            ort: ort_result,
            ratio,
            ratio_ort,
            note,
            ort_error,
        };
        println!("{}", markdown_row(&row, ort.is_some()));
        rows.push(row);
    }
    std::fs::create_dir_all(&args.out)?;
    let table = markdown(&rows, threads, &args.torch_device, ort.is_some());
    let first_ort = rows.iter().find_map(|r| r.ort.as_ref());
    std::fs::write(args.out.join("results.md"), &table)?;
    std::fs::write(
        args.out.join("results.json"),
        serde_json::to_string_pretty(&serde_json::json!({
            "threads": threads,
            "size": args.size,
            "release": !cfg!(debug_assertions),
            "onnxruntime": first_ort.map(|o| o.version.as_str()),
            "onnx_exporter": first_ort.map(|o| o.exporter.as_str()),
            "rows": rows,
        }))?,
    )?;
    plot(&args.out.join("results.png"), &rows)?;
    println!("\n{table}");
    println!(
        "written: {}/results.md, results.json, results.png",
        args.out.display()
    );
    Ok(rows
        .iter()
        .all(|r| r.note.is_empty() && r.ort_error.is_none()))
}

/// resnet152 with random weights in torchvision's format (230 MB), made once by PyTorch.
fn import_file(args: &BenchArgs, torch: Option<&Torch>) -> Result<PathBuf> {
    let dir = args.out.join("weights");
    std::fs::create_dir_all(&dir)?;
    let file = dir.join("resnet152.pth");
    if file.is_file() {
        return Ok(file);
    }
    let Some(torch) = torch else {
        bail!(
            "{} is missing and PyTorch is skipped: run once without --no-torch",
            file.display()
        );
    };
    let status = Command::new(&torch.python)
        .arg(&torch.script)
        .args(["write-weights", "--model", "resnet152", "--out"])
        .arg(&file)
        .status()?;
    if !status.success() {
        bail!("writing {} failed", file.display());
    }
    Ok(file)
}

fn describe(case: &Case) -> (String, String, String, usize) {
    match case {
        Case::Infer {
            model,
            backend,
            batch,
            fold,
            ..
        } => (
            if *fold {
                "inference, BN folded".into()
            } else {
                "inference".into()
            },
            model.clone(),
            backend.clone(),
            *batch,
        ),
        Case::Train {
            model,
            backend,
            batch,
            phase,
            ..
        } => (
            match phase {
                TrainPhase::Step => "train step".into(),
                TrainPhase::Forward => "train step: forward + loss".into(),
                TrainPhase::Backward => "train step: backward + update".into(),
            },
            model.clone(),
            backend.clone(),
            *batch,
        ),
        Case::Import { model, file, .. } => (
            format!(
                "import .{}",
                file.extension().and_then(|e| e.to_str()).unwrap_or("?")
            ),
            model.clone(),
            "flex".into(),
            0,
        ),
    }
}

fn torch_key(case: &Case) -> String {
    match case {
        Case::Infer {
            model, batch, size, ..
        } => format!("infer {model} {batch} {size}"),
        Case::Train {
            model,
            batch,
            size,
            phase,
            ..
        } => format!("train {model} {batch} {size} {}", phase.name()),
        // Both imports compare with PyTorch loading the .pth.
        Case::Import { model, .. } => format!("import {model}"),
    }
}

/// One row of the table; with `ort`, ONNX Runtime's columns (empty on training and import rows).
fn markdown_row(row: &Row, ort: bool) -> String {
    let speed = |m: &Measured| match m.images_per_second {
        Some(ips) => format!("{ips:.2} img/s"),
        None => format!("{:.2} s", m.seconds),
    };
    let ratio = |r: Option<f64>| r.map_or("-".into(), |r| format!("{r:.2}x"));
    let torch = row.torch.as_ref();
    let inference = row.what.starts_with("inference");
    // ONNX Runtime's cell: its value, "-" where it has none on an inference row, empty else.
    let ort_cell = |cell: &dyn Fn(&Ort) -> String| match (&row.ort, inference) {
        (Some(o), _) => cell(o),
        (None, true) => "-".to_string(),
        (None, false) => String::new(),
    };
    let mut notes = Vec::new();
    if !row.note.is_empty() {
        notes.push(row.note.clone());
    }
    if let Some(e) = &row.ort_error {
        notes.push(format!("ONNX Runtime failed: {e}"));
    }
    let mut cells = vec![
        row.what.clone(),
        row.model.clone(),
        row.backend.clone(),
        if row.batch == 0 {
            "-".to_string()
        } else {
            row.batch.to_string()
        },
        if row.note.is_empty() {
            speed(&row.burn)
        } else {
            "-".into()
        },
        torch.map_or("-".into(), speed),
    ];
    if ort {
        cells.push(ort_cell(&|o| speed(&o.measured)));
    }
    cells.push(ratio(row.ratio));
    if ort {
        cells.push(if inference {
            ratio(row.ratio_ort)
        } else {
            String::new()
        });
    }
    cells.push(format!("{:.0}", row.burn.peak_rss_mb));
    cells.push(torch.map_or("-".into(), |t| format!("{:.0}", t.peak_rss_mb)));
    if ort {
        cells.push(ort_cell(&|o| format!("{:.0}", o.measured.peak_rss_mb)));
    }
    cells.push(notes.join("; "));
    format!("| {} |", cells.join(" | "))
}

fn markdown(rows: &[Row], threads: usize, torch_device: &str, ort: bool) -> String {
    let n_threads = threads;
    let threads = format!("{threads} thread{}", if threads == 1 { "" } else { "s" });
    let torch = if torch_device == "cpu" {
        threads.clone()
    } else {
        format!("eager, {torch_device}")
    };
    let mut out = if ort {
        format!(
            "| what | model | backend | batch | burn | PyTorch ({torch}) | ONNX Runtime (CPU, \
             {threads}) | burn / PyTorch | burn / ORT | burn peak RSS (MiB) | PyTorch peak RSS \
             (MiB) | ORT peak RSS (MiB) | note |\n\
             |---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|\n"
        )
    } else {
        format!(
            "| what | model | backend | batch | burn | PyTorch ({torch}) | burn / PyTorch | \
             burn peak RSS (MiB) | PyTorch peak RSS (MiB) | note |\n\
             |---|---|---|---:|---:|---:|---:|---:|---:|---|\n"
        )
    };
    for row in rows {
        out.push_str(&markdown_row(row, ort));
        out.push('\n');
    }
    if let Some(o) = rows.iter().find_map(|r| r.ort.as_ref()) {
        let worst = rows
            .iter()
            .filter_map(|r| r.ort.as_ref().map(|o| o.max_rel_diff))
            .fold(0.0f64, f64::max);
        out.push_str(&format!(
            "\nONNX Runtime {}: CPUExecutionProvider, ORT_ENABLE_ALL, intra_op_num_threads \
             {n_threads}, inter_op_num_threads 1, on torchvision's model exported to ONNX (opset \
             17, {}); its logits within {worst:.1e} of PyTorch's (max abs difference / max abs \
             logit) on every row.\n",
            o.version, o.exporter
        ));
    }
    out
}

/// A bar chart of burn's ratios to PyTorch (blue) and to ONNX Runtime (orange), one bar per
/// row and peer that has one.
fn plot(path: &Path, rows: &[Row]) -> Result<()> {
    use plotters::prelude::*;
    let orange = RGBColor(230, 120, 0);
    let bars: Vec<(String, f64, RGBColor)> = rows
        .iter()
        .flat_map(|r| {
            let batch = if r.batch == 0 {
                String::new()
            } else {
                format!(" b{}", r.batch)
            };
            let label = format!("{} {} {}{batch}", r.what, r.model, r.backend);
            [
                r.ratio
                    .map(|ratio| (format!("{label} / PyTorch"), ratio, BLUE)),
                r.ratio_ort
                    .map(|ratio| (format!("{label} / ORT"), ratio, orange)),
            ]
        })
        .flatten()
        .collect();
    if bars.is_empty() {
        return Ok(());
    }
    let _ = plotters::style::register_font(
        "sans-serif",
        plotters::style::FontStyle::Normal,
        dejavu::sans::regular(),
    );
    let height = 60 + 26 * bars.len() as u32;
    let width = 1000u32;
    let mut buffer = vec![0u8; (width * height * 3) as usize];
    {
        let root = BitMapBackend::with_buffer(&mut buffer, (width, height)).into_drawing_area();
        root.fill(&WHITE)?;
        let max = bars.iter().map(|b| b.1).fold(1.2f64, f64::max) * 1.1;
        let mut chart = ChartBuilder::on(&root)
            .caption(
                "burn / PyTorch (blue) and burn / ONNX Runtime (orange); same machine, same run; \
                 1.0 = parity",
                ("sans-serif", 18),
            )
            .margin(10)
            .x_label_area_size(30)
            .y_label_area_size(400)
            .build_cartesian_2d(0.0..max, (0..bars.len()).into_segmented())?;
        chart
            .configure_mesh()
            .disable_y_mesh()
            .y_labels(bars.len())
            .y_label_formatter(&|v| match v {
                SegmentValue::CenterOf(i) => bars.get(*i).map_or(String::new(), |b| b.0.clone()),
                _ => String::new(),
            })
            .draw()?;
        chart.draw_series(bars.iter().enumerate().map(|(i, (_, r, color))| {
            let mut bar = Rectangle::new(
                [
                    (0.0, SegmentValue::Exact(i)),
                    (*r, SegmentValue::Exact(i + 1)),
                ],
                color.mix(0.7).filled(),
            );
            bar.set_margin(3, 3, 0, 0);
            bar
        }))?;
        chart.draw_series(std::iter::once(PathElement::new(
            vec![(1.0, SegmentValue::Exact(0)), (1.0, SegmentValue::Last)],
            RED.stroke_width(2),
        )))?;
        root.present()?;
    }
    let image = image::RgbImage::from_raw(width, height, buffer).context("plot buffer")?;
    image.save(path)?;
    Ok(())
}
