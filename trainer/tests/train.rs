//! Training runs end to end on the demo dataset: a frozen backbone stays bit-identical, an
//! interrupted run resumes with its schedule, and the saved model predicts.

use model_zoo::Architecture;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use burn::module::Module;
use burn::store::ModuleSnapshot;
use burn::tensor::{Distribution, Tensor};
use model_zoo::{Backend, Model};
use zoo_trainer::demo::{DemoConfig, generate};
use zoo_trainer::metrics::read_csv;
use zoo_trainer::train::complete_checkpoints;
use zoo_trainer::{Mode, OptimizerKind, RunOptions, Schedule, TrainConfig, load_trained};

/// Burn draws its random numbers (weight initialisation, random inputs) from one generator per
/// backend, which a seeded run seeds before building its model. A test that compares two seeded
/// runs takes the write side, so that no other test of this binary draws in between; every
/// other test takes the read side and runs beside the rest.
static RANDOM: std::sync::RwLock<()> = std::sync::RwLock::new(());

fn draws_beside_others() -> std::sync::RwLockReadGuard<'static, ()> {
    RANDOM.read().unwrap_or_else(|e| e.into_inner())
}

fn draws_alone() -> std::sync::RwLockWriteGuard<'static, ()> {
    RANDOM.write().unwrap_or_else(|e| e.into_inner())
}

/// A fresh directory under the system's temporary one, removed when the test ends (a trained
/// run is hundreds of MB; left behind, every `cargo test` would add them up).
struct TempDir(tempfile::TempDir);

impl std::ops::Deref for TempDir {
    type Target = Path;
    fn deref(&self) -> &Path {
        self.0.path()
    }
}

fn temp_dir(name: &str) -> TempDir {
    TempDir(
        tempfile::Builder::new()
            .prefix(&format!("zoo-train-{name}-"))
            .tempdir()
            .unwrap(),
    )
}

fn demo(root: &Path, classes: usize, per_class: usize) -> PathBuf {
    let config = DemoConfig {
        classes,
        train_per_class: per_class,
        val_per_class: per_class / 2,
        size: 32,
        seed: 3,
    };
    generate(&root.join("shapes"), &config).unwrap()
}

/// Every tensor of a model (parameters and BatchNorm buffers) by path, as raw bytes.
fn tensors(model: &Model) -> BTreeMap<String, Vec<u8>> {
    model
        .collect(None, None, false)
        .into_iter()
        .map(|tensor| {
            let bytes = tensor.to_bytes().unwrap().to_vec();
            (tensor.name, bytes)
        })
        .collect()
}

/// A config training `model` on `data` for `epochs` quick epochs at 32x32.
fn quick_config(model: &str, data: &Path, epochs: usize) -> TrainConfig {
    let mut config = TrainConfig::new(model, data.join("train"));
    config.val_dir = Some(data.join("val"));
    config.epochs = epochs;
    config.batch_size = 8;
    config.image_size = Some(32);
    config.workers = 2;
    config
}

fn options(dir: PathBuf) -> RunOptions {
    RunOptions {
        dir,
        backend: Backend::Flex,
        devices: vec![0],
        tui: false,
        quiet: true,
    }
}

/// Feature extraction: starting from weights with randomised BatchNorm statistics, two epochs
/// of SGD change the new head while every backbone tensor (weights, biases, running means and
/// variances) stays bit-identical.
#[test]
fn frozen_backbone_stays_bit_identical_while_the_head_trains() {
    let _random = draws_beside_others();
    let root = temp_dir("frozen");
    let data = demo(&root, 3, 8);
    let device = Backend::Flex.device().unwrap();

    // "Pretrained" weights: a resnet18 with random BatchNorm statistics, saved as PyTorch would.
    let model = model_zoo::create("resnet18", 1000, &device).unwrap();
    let model = randomise_batchnorm(model);
    let weights = root.join("pretrained.safetensors");
    zoo_import::save_safetensors(&model, &weights).unwrap();
    let before = tensors(&model);

    let mut config = quick_config("resnet18", &data, 2);
    config.weights = Some(weights);
    config.mode = Mode::FeatureExtract;
    config.lr = 0.05;
    let summary = zoo_trainer::train(&config, &options(root.join("run"))).unwrap();
    assert_eq!(summary.history.len(), 2);

    let trained = load_trained(&summary.best_dir, &device).unwrap();
    let after = tensors(&trained.model);
    let mut backbone = 0;
    for (path, values) in &after {
        if path.split('.').any(|part| part == "fc") {
            continue;
        }
        backbone += 1;
        assert!(
            before.get(path) == Some(values),
            "backbone tensor {path} changed under --mode feature-extract"
        );
    }
    // 20 convolutions, and 20 BatchNorms' weight, bias, running_mean and running_var.
    assert_eq!(backbone, 100, "backbone tensors compared");
    let fc = after
        .iter()
        .find_map(|(path, bytes)| path.ends_with("fc.weight").then_some(bytes))
        .expect("fc.weight");
    assert_eq!(fc.len(), 512 * 3 * 4);
    // The new head trained: it is not the freshly initialised one of another run either, but
    // at least it moved away from any constant and gives non-uniform outputs.
    // The same run fine-tuning everything moves the backbone, BatchNorm statistics included:
    // the comparison above can fail.
    config.mode = Mode::Finetune;
    let finetuned = zoo_trainer::train(&config, &options(root.join("finetune"))).unwrap();
    let moved = tensors(&load_trained(&finetuned.best_dir, &device).unwrap().model);
    for suffix in ["conv1.weight", "bn1.running_mean", "bn1.running_var"] {
        let (path, values) = moved
            .iter()
            .find(|(path, _)| path.ends_with(suffix) && !path.contains("layer"))
            .unwrap();
        assert!(
            before[path] != *values,
            "{path} did not move under finetune"
        );
    }

    let x = Tensor::<4>::random([2, 3, 32, 32], Distribution::Normal(0.0, 1.0), &device);
    let logits = trained
        .model
        .forward(x)
        .into_data()
        .try_into_vec::<f32>()
        .unwrap();
    assert!(logits.iter().any(|v| v.abs() > 1e-3));
    assert!(summary.history.iter().all(|r| r.train_loss.is_finite()));
}

/// Random running statistics (and affine parameters) for every BatchNorm, so that a frozen
/// backbone that still updated its statistics would be caught.
fn randomise_batchnorm(model: Model) -> Model {
    use burn::module::{ModuleMapper, Param};
    struct Randomise;
    impl ModuleMapper for Randomise {
        fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
            let (id, tensor, mapper) = param.consume();
            let device = tensor.device();
            let shape = tensor.shape();
            let random = Tensor::<D>::random(shape, Distribution::Uniform(0.5, 1.5), &device);
            let tensor = if D == 1 { random } else { tensor };
            Param::from_mapped_value(id, tensor, mapper)
        }
    }
    model.map(&mut Randomise)
}

/// Kills a training run (SIGKILL) after its first checkpoint, resumes it, and checks that it
/// finishes every epoch once, with the learning-rate schedule continued where it stopped.
#[test]
fn killed_run_resumes_from_its_last_checkpoint() {
    let _random = draws_beside_others();
    let root = temp_dir("resume");
    let data = demo(&root, 3, 16);
    let run = root.join("run");
    let epochs = 4;
    let train = || {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_zoo-train"));
        cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
        cmd
    };
    let mut child = train()
        .args(["train", "--model", "lenet5", "--data"])
        .arg(&data)
        .args(["--out"])
        .arg(&run)
        .args([
            "--epochs",
            &epochs.to_string(),
            "--batch-size",
            "4",
            "--image-size",
            "32",
            "--optimizer",
            "sgd",
            "--lr",
            "0.01",
            "--schedule",
            "cosine",
            "--workers",
            "1",
            "--no-tui",
        ])
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(300);
    // Kill as soon as one checkpoint (model, optimiser and scheduler) is complete on disk.
    while complete_checkpoints(&run).is_empty() {
        if let Some(status) = child.try_wait().unwrap() {
            let output = child.wait_with_output().unwrap();
            panic!(
                "the run ended ({status}) before it could be killed: {}",
                String::from_utf8_lossy(&output.stderr)
            );
        }
        assert!(Instant::now() < deadline, "no checkpoint after 300 s");
        std::thread::sleep(Duration::from_millis(50));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let done_before = read_csv(&run.join("metrics.csv")).unwrap().len();
    assert!(
        done_before < epochs,
        "killed too late: {done_before} epochs done"
    );

    let output = train()
        .args(["train", "--resume", "--no-tui", "--out"])
        .arg(&run)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "resume failed: {stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(stdout.contains("resuming after epoch"), "{stdout}");

    let history = read_csv(&run.join("metrics.csv")).unwrap();
    let numbers: Vec<usize> = history.iter().map(|r| r.epoch).collect();
    assert_eq!(numbers, (1..=epochs).collect::<Vec<_>>(), "{history:?}");
    // Cosine over all steps: the last step of epoch e is step e*s of 4*s (12 batches of 4 here,
    // 48 training images), so the lr is 0.01 * (1 + cos(pi * e / 4)) / 2 at the end of epoch e
    // up to one step. A scheduler restarted on resume would repeat epoch 1's value.
    let steps = 12usize;
    for record in &history {
        let t = (record.epoch * steps) as f64 / (epochs * steps) as f64;
        let expected = 0.01 * (1.0 + (std::f64::consts::PI * t).cos()) / 2.0;
        let one_step = 0.01 * std::f64::consts::PI / (2.0 * (epochs * steps) as f64);
        assert!(
            (record.lr - expected).abs() <= one_step * 1.5,
            "epoch {}: lr {} where the uninterrupted schedule has {expected}",
            record.epoch,
            record.lr
        );
    }
    let trained = load_trained(&run, &Backend::Flex.device().unwrap()).unwrap();
    assert_eq!(trained.card.model, "lenet5");
    assert_eq!(trained.classes.len(), 3);
}

/// Starts `zoo-train train` on `data` into `run` (lenet5, 32x32, batch 4, one worker), waits
/// for its first complete checkpoint, sends it `signals` SIGINTs one right after the other
/// (the run polls for the first every 50 ms, so a second lands before it has stopped), and
/// returns its exit status and output.
fn interrupt_after_first_checkpoint(
    data: &Path,
    run: &Path,
    epochs: usize,
    signals: usize,
) -> (std::process::ExitStatus, String) {
    let child = Command::new(env!("CARGO_BIN_EXE_zoo-train"))
        .args(["train", "--model", "lenet5", "--data"])
        .arg(data)
        .arg("--out")
        .arg(run)
        .args(["--epochs", &epochs.to_string(), "--batch-size", "4"])
        .args(["--image-size", "32", "--workers", "1", "--no-tui"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(300);
    let mut child = child;
    while complete_checkpoints(run).is_empty() {
        if let Some(status) = child.try_wait().unwrap() {
            panic!("the run ended ({status}) before it could be interrupted");
        }
        assert!(Instant::now() < deadline, "no checkpoint after 300 s");
        std::thread::sleep(Duration::from_millis(20));
    }
    for _ in 0..signals {
        let sent = Command::new("kill")
            .args(["-INT", &child.id().to_string()])
            .status()
            .unwrap();
        assert!(sent.success());
        // Two SIGINTs sent before the first is delivered merge into one (standard signals are
        // not queued), which a busy machine does: wait for the first to leave the pending set.
        wait_until_delivered(child.id(), libc_sigint_mask());
    }
    let output = child.wait_with_output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status, text)
}

/// SIGINT's bit in `/proc/<pid>/status`'s pending masks.
fn libc_sigint_mask() -> u64 {
    1 << (2 - 1)
}

/// Waits (up to 5 s) until `pid` has no pending signal of `mask` (Linux: `ShdPnd`/`SigPnd` in
/// `/proc/<pid>/status`); elsewhere a 50 ms pause.
fn wait_until_delivered(pid: u32, mask: u64) {
    let status = format!("/proc/{pid}/status");
    if !Path::new(&status).exists() {
        std::thread::sleep(Duration::from_millis(50));
        return;
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        let Ok(text) = std::fs::read_to_string(&status) else {
            return;
        };
        let pending = text
            .lines()
            .filter(|l| l.starts_with("ShdPnd:") || l.starts_with("SigPnd:"))
            .filter_map(|l| u64::from_str_radix(l.split_whitespace().nth(1)?, 16).ok())
            .fold(0, |a, b| a | b);
        if pending & mask == 0 {
            return;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// Ctrl-C during training: the run stops after the batch in flight, exits non-zero saying how
/// to resume, keeps its complete checkpoints and a best model, and resumes to the end. A second
/// Ctrl-C exits at once (130) and still leaves a run that resumes.
#[cfg(unix)]
#[test]
fn ctrl_c_stops_cleanly_and_the_run_resumes() {
    let _random = draws_beside_others();
    use std::os::unix::process::ExitStatusExt;
    let root = temp_dir("sigint");
    let data = demo(&root, 3, 16);
    let epochs = 6;
    for (signals, name) in [(1, "once"), (2, "twice")] {
        let run = root.join(name);
        let (status, output) = interrupt_after_first_checkpoint(&data, &run, epochs, signals);
        assert!(!status.success(), "{name}: {output}");
        assert!(
            status.signal().is_none(),
            "{name}: killed by a signal: {output}"
        );
        if signals == 1 {
            assert!(
                output.contains("interrupted") && output.contains("--resume"),
                "{output}"
            );
            // The best model of the complete epochs was saved on the way out.
            let best = load_trained(&run, &Backend::Flex.device().unwrap()).unwrap();
            assert_eq!(best.card.model, "lenet5");
        } else {
            assert_eq!(status.code(), Some(130), "{output}");
        }
        let done = complete_checkpoints(&run);
        assert!(
            !done.is_empty() && *done.last().unwrap() < epochs,
            "{name}: {done:?}"
        );
        resume_to_the_end(&run, epochs, name);
    }
}

/// `zoo-train train --resume --out run` succeeds, and `metrics.csv` then has every epoch once.
fn resume_to_the_end(run: &Path, epochs: usize, name: &str) {
    let resumed = Command::new(env!("CARGO_BIN_EXE_zoo-train"))
        .args(["train", "--resume", "--no-tui", "--out"])
        .arg(run)
        .output()
        .unwrap();
    assert!(
        resumed.status.success(),
        "{name}: resume failed: {}",
        String::from_utf8_lossy(&resumed.stderr)
    );
    let history = read_csv(&run.join("metrics.csv")).unwrap();
    let numbers: Vec<usize> = history.iter().map(|r| r.epoch).collect();
    assert_eq!(numbers, (1..=epochs).collect::<Vec<_>>(), "{name}");
}

/// `zoo-train train --resume --out run` with every file it writes limited to 64 KiB
/// (`ulimit -f`, SIGXFSZ ignored: a write past the limit fails with EFBIG where a full disk
/// fails with ENOSPC, the same failed `write` mid-file; a size-limited tmpfs would need root).
/// The metrics fit; lenet5's 250 KB checkpoints and best model do not. With `interrupt`, a
/// SIGINT is sent as soon as the run says it is resuming, before its first epoch ends.
#[cfg(target_os = "linux")]
fn resume_on_a_full_disk(run: &Path, interrupt: bool) -> (std::process::ExitStatus, String) {
    use std::io::{BufRead, BufReader};
    let mut child = Command::new("bash")
        .args(["-c", "trap '' XFSZ; ulimit -f 64; exec \"$0\" \"$@\""])
        .arg(env!("CARGO_BIN_EXE_zoo-train"))
        .args(["train", "--resume", "--no-tui", "--out"])
        .arg(run)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = String::new();
    for line in BufReader::new(child.stdout.take().unwrap()).lines() {
        let line = line.unwrap();
        if interrupt && line.contains("resuming after epoch") {
            let sent = Command::new("kill")
                .args(["-INT", &child.id().to_string()])
                .status()
                .unwrap();
            assert!(sent.success());
        }
        stdout.push_str(&line);
        stdout.push('\n');
    }
    let output = child.wait_with_output().unwrap();
    (
        output.status,
        format!("{stdout}{}", String::from_utf8_lossy(&output.stderr)),
    )
}

/// A disk that fills while a checkpoint is written, and then while `best/` is: each time the
/// run stops with an error naming the file and saying how to resume; the earlier checkpoints,
/// `best/` and `metrics.csv` are untouched and load; nothing partial is left; and, room made,
/// the run resumes to the end.
#[cfg(target_os = "linux")]
#[test]
fn a_full_disk_while_checkpointing_is_an_error_that_loses_nothing() {
    let _random = draws_beside_others();
    use std::os::unix::process::ExitStatusExt;
    let root = temp_dir("full-disk");
    // 240 images: an epoch long enough (about half a second) for a SIGINT sent when the run
    // starts to land before it ends.
    let data = demo(&root, 3, 80);
    let run = root.join("run");
    let epochs = 6;
    let (status, output) = interrupt_after_first_checkpoint(&data, &run, epochs, 1);
    assert!(!status.success(), "{output}");
    let kept = complete_checkpoints(&run);
    let read = |path: &Path| std::fs::read(path).unwrap();
    let best_before = read(&run.join("best/model.bpk"));
    let metrics_before = read_csv(&run.join("metrics.csv")).unwrap();
    let checkpoint_before =
        read(&run.join(format!("checkpoint/model-{}.bpk", kept[kept.len() - 1])));

    let (status, text) = resume_on_a_full_disk(&run, false);
    assert!(!status.success(), "{text}");
    assert!(status.signal().is_none(), "killed by a signal: {text}");
    assert!(!text.contains("panicked"), "{text}");
    let next = kept[kept.len() - 1] + 1;
    // Burn writes each checkpoint (model, optimiser, scheduler: whichever fails first) through
    // a temporary file beside it, which its error names.
    assert!(
        text.contains(&format!("-{next}.bpk")) && text.contains("--resume"),
        "the error names neither the checkpoint nor how to resume: {text}"
    );
    assert_eq!(complete_checkpoints(&run), kept, "{text}");
    assert_eq!(read(&run.join("best/model.bpk")), best_before);
    assert_eq!(
        read(&run.join(format!("checkpoint/model-{}.bpk", kept[kept.len() - 1]))),
        checkpoint_before
    );
    let metrics = read_csv(&run.join("metrics.csv")).unwrap();
    assert_eq!(metrics[..metrics_before.len()], metrics_before[..]);
    load_trained(&run, &Backend::Flex.device().unwrap()).unwrap();
    let partial: Vec<_> = std::fs::read_dir(run.join("checkpoint"))
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| !e.file_name().to_string_lossy().ends_with(".bpk"))
        .map(|e| e.file_name())
        .collect();
    assert!(partial.is_empty(), "left behind: {partial:?}");

    // Stopped before an epoch ends, the run saves `best/` from its checkpoints: that write
    // fails too, and is said after the interruption.
    let (status, text) = resume_on_a_full_disk(&run, true);
    assert!(!status.success(), "{text}");
    assert!(status.signal().is_none(), "killed by a signal: {text}");
    assert!(!text.contains("panicked"), "{text}");
    assert!(
        text.contains(&format!(
            "interrupted: stopped by Ctrl-C or SIGTERM after {} complete",
            kept[kept.len() - 1]
        )) && text.contains("--resume")
            && text.contains("best")
            && text.contains("was not updated")
            && text.contains("model.bpk"),
        "{text}"
    );
    assert_eq!(complete_checkpoints(&run), kept, "{text}");
    assert_eq!(read(&run.join("best/model.bpk")), best_before);
    load_trained(&run, &Backend::Flex.device().unwrap()).unwrap();
    let staging: Vec<_> = std::fs::read_dir(run.join("best"))
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name())
        .filter(|name| name.to_string_lossy().starts_with('.'))
        .collect();
    assert!(staging.is_empty(), "left behind: {staging:?}");

    resume_to_the_end(&run, epochs, "after a full disk");
}

/// The saved best model predicts, and `eval` reports consistent numbers; bad settings and a
/// second fresh run into the same directory are clear errors.
#[test]
fn quick_run_saves_a_model_that_predicts_and_evaluates() {
    let _random = draws_beside_others();
    let root = temp_dir("predict");
    let data = demo(&root, 3, 8);
    let mut config = quick_config("lenet5", &data, 2);
    config.optimizer = OptimizerKind::Adam;
    config.schedule = Schedule::Step;
    config.step_epochs = 1;
    config.label_smoothing = 0.1;
    config.grad_accumulation = 2;
    let dir = root.join("run");
    let summary = zoo_trainer::train(&config, &options(dir.clone())).unwrap();
    assert!(dir.join("curves.png").is_file());
    assert!(dir.join("train.json").is_file());

    let trained = load_trained(&dir, &Backend::Flex.device().unwrap()).unwrap();
    assert_eq!(trained.card, summary.best);
    let image = data.join("val").join("circle").join("00000.png");
    let top = zoo_trainer::predict(&trained, &[image.as_path()], 3).unwrap();
    assert_eq!(top[0].len(), 3);
    let total: f32 = top[0].iter().map(|(_, p)| p).sum();
    assert!(
        (total - 1.0).abs() < 1e-4,
        "three classes' probabilities sum to {total}"
    );

    let evaluation = zoo_trainer::evaluate(&trained, &data.join("val"), 4, 1, false).unwrap();
    assert_eq!(evaluation.images, 12);
    assert_eq!(evaluation.confusion.iter().flatten().sum::<usize>(), 12);
    // The saved model is the best epoch's: evaluating it reproduces that epoch's accuracy.
    assert!(
        (evaluation.accuracy - summary.best.val_accuracy).abs() < 1e-3,
        "eval {} vs training's {}",
        evaluation.accuracy,
        summary.best.val_accuracy
    );

    let again = zoo_trainer::train(&config, &options(dir))
        .unwrap_err()
        .to_string();
    assert!(again.contains("--resume"), "{again}");
    config.unfreeze_after = Some(1);
    let err = config.validate().unwrap_err().to_string();
    assert!(err.contains("--unfreeze-after"), "{err}");
}

/// The same training code on the wgpu backend (lavapipe on a CPU-only machine): a short LeNet-5
/// run trains, checkpoints and saves a model that loads back on the CPU.
#[test]
fn trains_on_wgpu() {
    let _random = draws_beside_others();
    let root = temp_dir("wgpu");
    let data = demo(&root, 3, 8);
    let mut config = quick_config("lenet5", &data, 2);
    config.optimizer = OptimizerKind::Adamw;
    config.lr = 3e-3;
    let options = RunOptions {
        backend: Backend::Wgpu,
        ..options(root.join("run"))
    };
    let summary = zoo_trainer::train(&config, &options).unwrap();
    assert_eq!(summary.history.len(), 2);
    assert!(
        summary
            .history
            .iter()
            .all(|r| r.train_loss.is_finite() && r.val_loss.is_finite())
    );
    let trained = load_trained(&summary.best_dir, &Backend::Flex.device().unwrap()).unwrap();
    let evaluation = zoo_trainer::evaluate(&trained, &data.join("val"), 4, 1, false).unwrap();
    assert!(
        (evaluation.accuracy - summary.best.val_accuracy).abs() < 1e-3,
        "the wgpu-trained model on flex: {} vs {} on wgpu",
        evaluation.accuracy,
        summary.best.val_accuracy
    );
}

/// An ImageFolder that a small network learns in a few epochs: dark against bright noise images.
fn dark_and_bright(root: &Path, per_class: usize) -> PathBuf {
    let mut seed = 7u32;
    let mut next = move || {
        seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
        (seed >> 24) as u8
    };
    for (split, count) in [("train", per_class), ("val", per_class / 2)] {
        for (class, base) in [("bright", 150u8), ("dark", 40u8)] {
            let dir = root.join("tones").join(split).join(class);
            std::fs::create_dir_all(&dir).unwrap();
            for i in 0..count {
                let image = image::RgbImage::from_fn(32, 32, |_, _| {
                    image::Rgb([0; 3].map(|_: u8| base.saturating_add(next() / 3)))
                });
                image.save(dir.join(format!("{i}.png"))).unwrap();
            }
        }
    }
    root.join("tones")
}

/// Data-parallel training on two devices (Burn's multi-device strategy; on this CPU machine two
/// replicas on the one Flex device, which runs the same code path as two GPUs) reaches the
/// validation accuracy of one device with the same effective batch; a batch that does not split
/// evenly is refused.
#[test]
fn two_devices_train_as_well_as_one_with_the_same_effective_batch() {
    let _random = draws_beside_others();
    let root = temp_dir("devices");
    let data = dark_and_bright(&root, 48);
    let mut config = quick_config("lenet5", &data, 4);
    config.batch_size = 12;
    config.optimizer = OptimizerKind::Adamw;
    config.lr = 3e-3;
    let run = |config: &TrainConfig, devices: Vec<usize>, dir: &str| {
        let options = RunOptions {
            devices,
            ..options(root.join(dir))
        };
        zoo_trainer::train(config, &options)
    };
    let one = run(&config, vec![0], "one").unwrap();
    let two = run(&config, vec![0, 1], "two").unwrap();
    assert_eq!(two.history.len(), 4);
    for summary in [&one, &two] {
        // Chance is 50%.
        assert!(summary.best.val_accuracy >= 95.0, "{:?}", summary.history);
    }
    assert!(
        (one.best.val_accuracy - two.best.val_accuracy).abs() <= 5.0,
        "one device {:.1}%, two {:.1}%",
        one.best.val_accuracy,
        two.best.val_accuracy
    );

    config.batch_size = 7;
    let err = run(&config, vec![0, 1], "odd").unwrap_err();
    assert!(err.to_string().contains("multiple of 2"), "{err}");
}

/// A model of one input size follows `--image-size`: ViT's position embedding is resized
/// (`for_input_size`), MaxViT refuses a size its grids cannot take, and without `--image-size`
/// the registry's size stays.
#[test]
fn one_size_models_follow_image_size() {
    let _random = draws_beside_others();
    use zoo_trainer::train::build_model;

    let device = Backend::Flex.device().unwrap();
    let dir = temp_dir("one-size");
    let mut config = TrainConfig::new("vit_b_32", dir.to_path_buf());
    config.image_size = Some(64);
    let model = build_model(&config, 3, &device).unwrap();
    assert_eq!(model.input_spec().min_size, [64, 64]);
    assert!(model.input_spec().exact);
    assert_eq!(model.num_classes(), 3);
    // Saved as a run saves its best model, it loads for `eval`/`predict` at its own size.
    let transforms = config.transforms().unwrap();
    assert_eq!(transforms.crop, 64);
    let card = zoo_trainer::ModelCard {
        model: "vit_b_32".into(),
        num_classes: 3,
        in_chans: 3,
        epoch: 1,
        val_accuracy: 50.0,
        val_loss: 1.0,
    };
    let classes = zoo_trainer::ClassMap {
        names: vec!["a".into(), "b".into(), "c".into()],
    };
    let best = dir.join("best");
    zoo_trainer::save_trained(&best, &model, &card, &classes, &transforms).unwrap();
    let trained = load_trained(&best, &device).unwrap();
    assert_eq!(trained.model.input_spec().min_size, [64, 64]);
    assert_eq!(tensors(&trained.model), tensors(&model));

    config.image_size = None;
    let model = build_model(&config, 3, &device).unwrap();
    assert_eq!(model.input_spec().min_size, [224, 224]);

    let mut config = TrainConfig::new("maxvit_t", dir.to_path_buf());
    config.image_size = Some(32);
    let err = build_model(&config, 3, &device).unwrap_err();
    assert!(err.to_string().contains("input_size"), "{err}");
}

/// An ImageFolder of grey (8-bit luma) PNGs, two classes told apart by brightness.
fn grey_folder(root: &Path, per_class: usize) -> PathBuf {
    for (split, count) in [("train", per_class), ("val", per_class / 2)] {
        for (class, base) in [("bright", 170u8), ("dark", 40u8)] {
            let dir = root.join("grey").join(split).join(class);
            std::fs::create_dir_all(&dir).unwrap();
            for i in 0..count {
                let image = image::GrayImage::from_fn(32, 32, |x, y| {
                    image::Luma([base.saturating_add(((x + y + i as u32) % 16) as u8)])
                });
                image.save(dir.join(format!("{i}.png"))).unwrap();
            }
        }
    }
    root.join("grey")
}

/// `--in-chans 1`: RGB weights (a torchvision-layout safetensors file) start a 1-channel
/// ResNet-18 whose input convolution is their sum over RGB (timm's `adapt_input_conv`); one
/// epoch trains on grey images, and the saved model loads back with 1 channel and predicts.
#[test]
fn in_chans_1_fine_tunes_rgb_weights_on_grey_images() {
    let _random = draws_beside_others();
    let root = temp_dir("grey");
    let data = grey_folder(&root, 6);
    let device = Backend::Flex.device().unwrap();
    let rgb = model_zoo::create("resnet18", 1000, &device).unwrap();
    let weights = root.join("resnet18.safetensors");
    zoo_import::save_safetensors(&rgb, &weights).unwrap();

    let mut config = quick_config("resnet18", &data, 1);
    config.weights = Some(weights);
    config.in_chans = 1;
    let model = zoo_trainer::train::build_model(&config, 2, &device).unwrap();
    assert_eq!(model.in_chans(), 1);
    model
        .input_conv()
        .1
        .weight
        .val()
        .into_data()
        .assert_approx_eq::<f32>(
            &rgb.input_conv().1.weight.val().sum_dim(1).into_data(),
            burn::tensor::Tolerance::absolute(1e-6),
        );

    let dir = root.join("run");
    let summary = zoo_trainer::train(&config, &options(dir.clone())).unwrap();
    assert_eq!(summary.best.in_chans, 1);
    let trained = load_trained(&dir, &device).unwrap();
    assert_eq!(trained.model.in_chans(), 1);
    let image = data.join("val").join("dark").join("0.png");
    let top = zoo_trainer::predict(&trained, &[image.as_path()], 2).unwrap();
    assert_eq!(top[0].len(), 2);
}

/// A seeded run repeats: two runs of the same configuration with 2 data-loading workers give
/// the same `metrics.csv` (but the seconds) and bit-identical weights; another seed gives other
/// numbers.
#[test]
fn a_seeded_run_repeats_exactly() {
    let _random = draws_alone();
    let root = temp_dir("repeat");
    let data = demo(&root, 3, 10);
    let run = |name: &str, seed: u64| {
        let mut config = quick_config("lenet5", &data, 2);
        config.workers = 2;
        config.seed = seed;
        config.optimizer = OptimizerKind::Adamw;
        config.lr = 3e-3;
        config.min_scale = 0.35;
        let dir = root.join(name);
        zoo_trainer::train(&config, &options(dir.clone())).unwrap();
        let rows: Vec<String> = read_csv(&dir.join("metrics.csv"))
            .unwrap()
            .into_iter()
            .map(|r| {
                format!(
                    "{} {} {} {} {} {} {} {}",
                    r.epoch,
                    r.train_loss,
                    r.train_acc,
                    r.train_top5,
                    r.val_loss,
                    r.val_acc,
                    r.val_top5,
                    r.lr
                )
            })
            .collect();
        let model = load_trained(&dir, &Backend::Flex.device().unwrap()).unwrap();
        (rows, tensors(&model.model))
    };
    let first = run("a", 5);
    let second = run("b", 5);
    assert_eq!(first.0.len(), 2);
    assert_eq!(
        first.0, second.0,
        "metrics.csv differs between two runs of seed 5"
    );
    assert!(
        first.1 == second.1,
        "the weights differ between two runs of seed 5"
    );
    let other = run("c", 6);
    assert_ne!(first.0, other.0, "seeds 5 and 6 gave the same metrics");
}

/// `--grad-accumulation 2` at batch 4 is batch 8: the same samples, augmentations and
/// initialisation give the same weights after an epoch (LeNet-5 has no BatchNorm, so the
/// batch statistics cannot differ). Burn sums the window's gradients; each loss is divided by
/// the window's size so that the step follows the mean loss, as PyTorch's `loss / k`.
#[test]
fn gradient_accumulation_averages_like_a_larger_batch() {
    let _random = draws_alone();
    let root = temp_dir("accumulate");
    let data = demo(&root, 3, 8); // 24 training images: 6 batches of 4, 3 of 8
    let run = |name: &str, batch: usize, accumulation: usize| {
        let mut config = quick_config("lenet5", &data, 1);
        config.batch_size = batch;
        config.grad_accumulation = accumulation;
        config.lr = 0.05;
        let dir = root.join(name);
        zoo_trainer::train(&config, &options(dir.clone())).unwrap();
        tensors(
            &load_trained(&dir, &Backend::Flex.device().unwrap())
                .unwrap()
                .model,
        )
    };
    let (accumulated, whole) = (run("accumulated", 4, 2), run("whole", 8, 1));
    let initial = {
        let config = quick_config("lenet5", &data, 1);
        let device = Backend::Flex.device().unwrap();
        tensors(&zoo_trainer::train::build_model(&config, 3, &device).unwrap())
    };
    let floats = |bytes: &[u8]| -> Vec<f32> {
        bytes
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect()
    };
    for (name, a) in &accumulated {
        let (a, w, start) = (floats(a), floats(&whole[name]), floats(&initial[name]));
        let moved: f32 = w.iter().zip(&start).map(|(w, s)| (w - s).abs()).sum();
        let differ: f32 = a.iter().zip(&w).map(|(a, w)| (a - w).abs()).sum();
        assert!(moved > 0.0, "{name} did not train");
        assert!(
            differ <= 1e-3 * moved,
            "{name}: accumulated and whole batches differ by {differ} (the step moved it {moved})"
        );
    }
}

/// Running the quickstart again with other settings trains those settings (the first run set
/// aside as `<out>.previous`), not the old run resumed; an interrupted run of the same settings
/// is continued; a finished one is trained afresh.
#[test]
fn quickstart_again_trains_what_it_is_asked() {
    let _random = draws_beside_others();
    let root = temp_dir("quickstart-again");
    let (data, out) = (root.join("shapes"), root.join("run"));
    let quickstart = |epochs: &str| {
        let output = Command::new(env!("CARGO_BIN_EXE_zoo-train"))
            .args(["quickstart", "--no-tui", "--epochs", epochs, "--data"])
            .arg(&data)
            .arg("--out")
            .arg(&out)
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
        assert!(
            output.status.success(),
            "quickstart --epochs {epochs}: {stdout}\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
        stdout
    };
    quickstart("1");
    let stdout = quickstart("2");
    assert!(stdout.contains("moved to"), "{stdout}");
    assert_eq!(read_csv(&out.join("metrics.csv")).unwrap().len(), 2);
    let previous = root.join("run.previous");
    assert_eq!(read_csv(&previous.join("metrics.csv")).unwrap().len(), 1);
    // The same settings, finished: trained again, the finished run set aside.
    let stdout = quickstart("2");
    assert!(stdout.contains("moved to"), "{stdout}");
    assert_eq!(read_csv(&previous.join("metrics.csv")).unwrap().len(), 2);
}

/// A run's own `best/model.bpk` (3 classes) is a starting point for a run on 4 classes: its
/// trunk loads as it was saved, the head is replaced (the file's class count read from it, not
/// assumed to be the published weights').
#[test]
fn a_fine_tuned_model_starts_a_run_on_other_classes() {
    let _random = draws_beside_others();
    let root = temp_dir("refine");
    let three = demo(&root.join("three"), 3, 8);
    let four = demo(&root.join("four"), 4, 8);
    let first = root.join("first");
    zoo_trainer::train(&quick_config("lenet5", &three, 1), &options(first.clone())).unwrap();
    let mut config = quick_config("lenet5", &four, 1);
    config.weights = Some(first.join("best").join("model.bpk"));
    let device = Backend::Flex.device().unwrap();
    let start = tensors(&zoo_trainer::train::build_model(&config, 4, &device).unwrap());
    let saved = tensors(&load_trained(&first, &device).unwrap().model);
    for (name, bytes) in &saved {
        if name.contains("fc3") {
            assert_ne!(
                start[name].len(),
                bytes.len(),
                "{name}: the head kept 3 classes"
            );
        } else {
            assert_eq!(&start[name], bytes, "{name} is not the saved model's");
        }
    }
    let summary = zoo_trainer::train(&config, &options(root.join("second"))).unwrap();
    assert_eq!(summary.history.len(), 1);
}
