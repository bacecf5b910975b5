//! A training run on Burn's `SupervisedTraining` + `Learner`: data, model, optimiser and
//! schedule from a [`TrainConfig`], checkpoints every epoch, `--resume`, the best model saved
//! for inference.

use model_zoo::Architecture;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use burn::data::dataloader::DataLoader;
use burn::module::{Module, ParamGroup};
use burn::store::ModuleRecord;
use burn::tensor::Device;
use burn::train::checkpoint::{
    ComposedCheckpointingStrategy, KeepLastNCheckpoints, MetricCheckpointingStrategy,
};
use burn::train::metric::store::{Aggregate, Direction, Split as MetricSplit};
use burn::train::metric::{AccuracyMetric, LearningRateMetric, LossMetric, TopKAccuracyMetric};
use burn::train::{
    ExecutionStrategy, Learner, MultiDeviceOptim, SupervisedTraining, TrainingStrategy,
};
use model_zoo::{Backend, Model};

use crate::artifact::{ModelCard, save_trained};
use crate::augment::Transforms;
use crate::config::{Mode, TrainConfig};
use crate::data::{ImageBatcher, OrderedLoader, Split};
use crate::ema::Ema;
use crate::error::TrainError;
use crate::folder::{ClassMap, ImageFolder, Sample, same_classes, verify_images};
use crate::metrics::EpochRecord;
use crate::report::EpochReporter;
use crate::rundir::RunDir;
use crate::step::{Classifier, ImageBatch};

/// How a run is executed (as opposed to what it computes, the [`TrainConfig`]).
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// Where checkpoints, metrics, plots and the best model go.
    pub dir: PathBuf,
    /// Backend to train on (always with autodiff).
    pub backend: Backend,
    /// The backend's devices to train on, data-parallel (one model replica each, Burn's
    /// multi-device strategy) where more than one: `[0]` for the default device. The batch size
    /// stays the effective batch: each device takes `batch_size / devices` images a step.
    pub devices: Vec<usize>,
    /// Burn's TUI when stdout is a terminal.
    pub tui: bool,
    /// Print nothing (tests).
    pub quiet: bool,
}

/// What a finished run reports.
#[derive(Debug, Clone)]
pub struct TrainSummary {
    /// The saved best model's card.
    pub best: ModelCard,
    /// Where it was saved.
    pub best_dir: PathBuf,
    /// Every epoch's numbers.
    pub history: Vec<EpochRecord>,
    /// Images left out as unreadable.
    pub skipped_images: usize,
    /// Training and validation images used.
    pub train_images: usize,
    /// See `train_images`.
    pub val_images: usize,
    /// The epoch the run started from (0 for a fresh run).
    pub resumed_from: usize,
    /// Wall-clock seconds of this invocation.
    pub seconds: f64,
}

/// The data of a run, read and checked.
#[derive(Debug, Clone)]
pub struct RunData {
    /// Class names.
    pub classes: ClassMap,
    /// Training samples.
    pub train: Vec<Sample>,
    /// Validation samples.
    pub val: Vec<Sample>,
    /// Unreadable files left out, with the reason.
    pub skipped: Vec<(PathBuf, String)>,
}

/// Reads the ImageFolder(s) of `config`, splits when there is no validation folder, and decodes
/// every image once so that a corrupt file fails now (naming it) or is skipped.
pub fn load_data(config: &TrainConfig) -> Result<RunData, TrainError> {
    let folder = ImageFolder::open(&config.train_dir)?;
    let (train, val) = match &config.val_dir {
        Some(val_dir) => {
            let val = ImageFolder::open(val_dir)?;
            same_classes(&folder, &val)?;
            (folder.samples.clone(), val.samples)
        }
        None => folder.split(config.val_fraction, config.seed)?,
    };
    let (train, mut skipped) = verify_images(train, config.workers, config.skip_bad_images)?;
    let (val, skipped_val) = verify_images(val, config.workers, config.skip_bad_images)?;
    skipped.extend(skipped_val);
    for (path, reason) in &skipped {
        log::warn!("skipping {}: {reason}", path.display());
    }
    if train.is_empty() || val.is_empty() {
        return Err(TrainError::Dataset(format!(
            "{}: {} training and {} validation images; both must be non-empty",
            config.train_dir.display(),
            train.len(),
            val.len()
        )));
    }
    Ok(RunData {
        classes: folder.classes,
        train,
        val,
        skipped,
    })
}

/// `config.model` with `num_classes` classes on `device`: initialised as torchvision does, or
/// from `config.weights` with its head replaced.
///
/// A burnpack (`.bpk`, as `zoo-train import` writes) must hold the model with its original
/// head; a PyTorch or safetensors file is imported with a head of another size left as
/// initialised.
///
/// A model of one input size (ViT, MaxViT) is resized to `--image-size` when it is given
/// (`Architecture::for_input_size`: ViT's position embedding interpolated as torchvision's
/// `interpolate_embeddings`); without it, the size the weights were saved at stays.
pub fn build_model(
    config: &TrainConfig,
    num_classes: usize,
    device: &Device,
) -> Result<Model, TrainError> {
    let model = build_model_as_saved(config, num_classes, device)?;
    match config.image_size {
        Some(size) => Ok(crate::artifact::for_side(model, size)?),
        None => Ok(model),
    }
}

fn build_model_as_saved(
    config: &TrainConfig,
    num_classes: usize,
    device: &Device,
) -> Result<Model, TrainError> {
    device.seed(config.seed);
    let info = model_zoo::model_info(&config.model)?;
    let options = config.build_options(num_classes);
    let Some(weights) = &config.weights else {
        return Ok(info.create_with(&options, device)?);
    };
    let is_burnpack = weights
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("bpk") || e.eq_ignore_ascii_case("burnpack"));
    if is_burnpack {
        let saved = saved_layout(info, &options, weights, device)?;
        let model = zoo_import::load_burnpack(info.create_with(&saved, device)?, weights)?;
        // A burnpack of other channels adapted to the run's as zoo-import adapts a PyTorch
        // file (an RGB one), its head replaced for the run's classes.
        let model = model.reset_classifier(num_classes, device)?;
        if saved.in_chans == config.in_chans {
            Ok(model)
        } else if saved.in_chans == 3 {
            Ok(model.with_in_chans(config.in_chans)?)
        } else {
            Err(TrainError::Config(format!(
                "{}: the model was saved for {} input channels; a run of --in-chans {} starts                  from RGB weights only",
                weights.display(),
                saved.in_chans,
                config.in_chans
            )))
        }
    } else {
        // torchvision's published file builds the model its builder makes for weights
        // (GoogLeNet's and Inception v3's input transform), any other the `weights=None` one.
        // Built for the run's channels: an RGB file's input convolution is adapted on import
        // (timm's `adapt_input_conv`), and the report says so.
        let model = zoo_import::hub::model_for_file(info, &options, weights, device)?;
        let (model, report) = zoo_import::Import::new(weights)
            .model_name(info.name)
            .partial(true)
            .load_into(model)?;
        log::info!("{report}");
        if !report.adapted.is_empty() {
            eprintln!("weights: {report}");
        }
        Ok(model)
    }
}

/// The class count and input channels a burnpack of `info`'s model was saved with: the
/// published weights' (an `import`ed file: ImageNet's classes, RGB), or what the file's own
/// shapes say (a run's `best/model.bpk`, of its dataset's classes and maybe grey): the first
/// layout whose keys, head and convolutions match the file's. None matching, the published layout, and
/// the load names the keys that differ.
fn saved_layout(
    info: &model_zoo::ModelInfo,
    options: &model_zoo::BuildOptions,
    path: &Path,
    device: &Device,
) -> Result<model_zoo::BuildOptions, TrainError> {
    let found = zoo_import::burnpack_shapes(path)?;
    let published = model_zoo::BuildOptions {
        num_classes: info
            .default_weights()
            .map_or(info.num_classes, |w| w.num_classes()),
        in_chans: 3,
        ..*options
    };
    // Candidates from the file: the first dimension of each tensor of the head (classes), the
    // second of each 4-d tensor (input channels of the stem among them).
    let probe = info.create_with(&published, device)?;
    let in_head = |key: &str| zoo_import::burnpack_key_in_head(&probe, key);
    let mut classes: Vec<usize> = found
        .iter()
        .filter(|(key, _)| in_head(key))
        .filter_map(|(_, shape)| shape.first().copied())
        .collect();
    let mut channels: Vec<usize> = found
        .values()
        .filter(|shape| shape.len() == 4)
        .map(|shape| shape[1])
        .filter(|c| (1..=model_zoo::MAX_IN_CHANS).contains(c))
        .collect();
    classes.sort_unstable();
    classes.dedup();
    channels.sort_unstable();
    channels.dedup();
    let layouts = std::iter::once((published.num_classes, 3)).chain(
        classes
            .iter()
            .flat_map(|&k| channels.iter().map(move |&c| (k, c)))
            .chain(classes.iter().map(|&k| (k, 3))),
    );
    for (num_classes, in_chans) in layouts {
        let candidate = model_zoo::BuildOptions {
            num_classes,
            in_chans,
            ..published
        };
        let Ok(model) = info.create_with(&candidate, device) else {
            continue;
        };
        let shapes = model_zoo::layers::model_shapes(&model, model_zoo::layers::ShapeNames::Burn);
        // The head and every convolution as in the file; other shapes may differ where the
        // load rebuilds the model (a ViT saved at another image size: its position embedding).
        let agrees = shapes.keys().eq(found.keys())
            && shapes
                .iter()
                .filter(|(key, shape)| in_head(key) || shape.len() == 4)
                .all(|(key, shape)| found.get(key) == Some(shape));
        if agrees {
            return Ok(candidate);
        }
    }
    Ok(published)
}

/// The backbone of `model`: every parameter and training flag outside its classifier.
pub fn backbone(model: &Model) -> ParamGroup {
    ParamGroup::all().exclude(model.classifier_group())
}

/// Epochs with a complete checkpoint in the run directory `dir`, the latest last
/// ([`RunDir::complete_checkpoints`]).
pub fn complete_checkpoints(dir: &Path) -> Vec<usize> {
    RunDir::new(dir).complete_checkpoints()
}

/// Starts a fresh run of `config` in `options.dir`. The directory must not hold another run's
/// checkpoints (use [`resume`] to continue one).
pub fn train(config: &TrainConfig, options: &RunOptions) -> Result<TrainSummary, TrainError> {
    config.validate()?;
    let run_dir = RunDir::new(&options.dir);
    if !run_dir.complete_checkpoints().is_empty() {
        return Err(TrainError::Config(format!(
            "{} already holds a run's checkpoints: pass --resume to continue it, or choose \
             another --out",
            options.dir.display()
        )));
    }
    run_dir.save_config(config)?;
    run(config, options, 0)
}

/// Continues the run in `options.dir` from its last complete checkpoint, with the settings it
/// was started with (`train.json`): model, optimiser state and learning-rate schedule restored.
pub fn resume(options: &RunOptions) -> Result<TrainSummary, TrainError> {
    let run_dir = RunDir::new(&options.dir);
    let config = run_dir.load_config()?;
    let last = run_dir
        .complete_checkpoints()
        .last()
        .copied()
        .ok_or_else(|| {
            TrainError::Config(format!(
                "{}: no complete checkpoint to resume from (the run stopped before its first epoch \
             ended); start it again without --resume",
                options.dir.display()
            ))
        })?;
    if last >= config.epochs {
        return Err(TrainError::Config(format!(
            "{}: the run already finished its {} epochs",
            options.dir.display(),
            config.epochs
        )));
    }
    run(&config, options, last)
}

/// What [`make_way`] found in a run directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PreviousRun {
    /// No run there: train afresh.
    None,
    /// An unfinished run of the same settings, its last complete epoch given: [`resume`] it.
    Unfinished(usize),
    /// Another run (other settings, or finished) moved aside to this directory: train afresh.
    SetAside(PathBuf),
}

/// Makes way for a run of `config` in `options.dir` (the quickstart's re-runs): an unfinished
/// run with exactly these settings is to be continued; any other run there (other settings, a
/// finished one, one that never completed an epoch) is moved to `<dir>.previous`, replacing
/// the one set aside before it, so that nothing is trained with settings the user did not ask
/// for and the last run is not lost.
pub fn make_way(config: &TrainConfig, options: &RunOptions) -> Result<PreviousRun, TrainError> {
    let run_dir = RunDir::new(&options.dir);
    let dir = run_dir.path();
    // Reads every checkpoint's records: once.
    let last = run_dir.complete_checkpoints().last().copied();
    if !run_dir.config_file().exists() && last.is_none() {
        return Ok(PreviousRun::None);
    }
    let same = run_dir.load_config().is_ok_and(|saved| saved == *config);
    if let (true, Some(last)) = (same, last)
        && last < config.epochs
    {
        return Ok(PreviousRun::Unfinished(last));
    }
    let aside = run_dir.previous_dir();
    if aside.exists() {
        std::fs::remove_dir_all(&aside).map_err(|e| TrainError::io(&aside, e))?;
    }
    std::fs::rename(dir, &aside).map_err(|e| TrainError::io(dir, e))?;
    Ok(PreviousRun::SetAside(aside))
}

/// Set once SIGINT or SIGTERM arrived (see [`stop_on_signals`]).
static STOP: std::sync::OnceLock<std::sync::Arc<std::sync::atomic::AtomicBool>> =
    std::sync::OnceLock::new();

pub(crate) fn stop_flag() -> &'static std::sync::Arc<std::sync::atomic::AtomicBool> {
    STOP.get_or_init(Default::default)
}

/// Makes Ctrl-C (SIGINT) and SIGTERM stop a run cleanly: the first one stops training at the
/// next batch, without writing a checkpoint of the epoch in flight (the last complete epoch's
/// stays), saves `best/` from the complete epochs, and [`train`]/[`resume`] return an error
/// saying how to `--resume`. A second one exits at once (status 130), as a plain Ctrl-C would;
/// the run directory then still holds its last complete checkpoint, written before that epoch
/// ended. For binaries, before training; later calls do nothing (handlers registered twice
/// would take the first signal for the second). Without it a signal kills the process (the same
/// as a second one here).
pub fn stop_on_signals() -> Result<(), TrainError> {
    static INSTALLED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
    if INSTALLED.swap(true, std::sync::atomic::Ordering::SeqCst) {
        return Ok(());
    }
    let flag = stop_flag();
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        // Registered first, so it sees the flag as the previous signal left it: set means this
        // is the second signal.
        signal_hook::flag::register_conditional_shutdown(signal, 130, flag.clone())
            .and_then(|_| signal_hook::flag::register(signal, flag.clone()))
            .map_err(|e| TrainError::Training(format!("cannot handle signal {signal}: {e}")))?;
    }
    Ok(())
}

/// Stops `interrupter` when a signal arrives (see [`stop_on_signals`]), until the returned guard
/// is dropped.
fn watch_signals(interrupter: burn::train::Interrupter) -> SignalWatch {
    use std::sync::atomic::Ordering;
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let finished = done.clone();
    let thread = std::thread::spawn(move || {
        while !finished.load(Ordering::Relaxed) {
            if stop_flag().load(Ordering::Relaxed) {
                interrupter.stop(Some("stopped by Ctrl-C or SIGTERM"));
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
    });
    SignalWatch {
        done,
        thread: Some(thread),
    }
}

struct SignalWatch {
    done: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Drop for SignalWatch {
    fn drop(&mut self) {
        self.done.store(true, std::sync::atomic::Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// That `model`, as built (and conformed to its weights), takes `crop x crop` images.
fn check_input_size(config: &TrainConfig, model: &Model, crop: usize) -> Result<(), TrainError> {
    model
        .input_spec()
        .check(&config.model, [1, config.in_chans, crop, crop])
        .map_err(|err| TrainError::Config(format!("{err}: set --image-size to match")))
}

/// On a device with a limit on one buffer (the GPU backends), one training step on a batch of the
/// run's size before Burn's learner starts: a layer or an activation the device cannot hold is
/// then a [`TrainError::Device`] naming it and the limit, where inside the learner it would be a
/// panic. It runs on a freshly initialised model of the same architecture (and the same frozen
/// part), because a training step updates BatchNorm's running statistics, which every clone of
/// a Burn module shares. The CPU backends have no such limit and skip it.
fn preflight(
    config: &TrainConfig,
    frozen: bool,
    batch: usize,
    crop: usize,
    num_classes: usize,
    device: &Device,
) -> Result<(), TrainError> {
    use burn::tensor::{Distribution, Int, Tensor, TensorData};
    use burn::train::TrainStep;

    if model_zoo::max_tensor_bytes(device).is_none() {
        return Ok(());
    }
    let model = model_zoo::create_with(&config.model, &config.build_options(num_classes), device)?;
    let model = crate::artifact::for_side(model, crop)?;
    model.check_device(device)?;
    let model = if frozen {
        let group = backbone(&model);
        model.freeze_group(group)
    } else {
        model
    };
    let classifier = Classifier::new(model, config.label_smoothing);
    let batch = batch.max(1);
    let images = Tensor::<4>::random(
        [batch, config.in_chans, crop, crop],
        Distribution::Default,
        device,
    );
    let targets: Vec<i64> = (0..batch)
        .map(|i| (i % num_classes.max(1)) as i64)
        .collect();
    let targets = Tensor::<1, Int>::from_data(TensorData::new(targets, [batch]), device);
    let output = TrainStep::step(&classifier, ImageBatch::new(images, targets));
    model_zoo::read_back(output.item.loss, "a training step (the loss)")?;
    model_zoo::sync(device, "a training step (the gradients)")?;
    Ok(())
}

fn run(
    config: &TrainConfig,
    options: &RunOptions,
    start: usize,
) -> Result<TrainSummary, TrainError> {
    let started = Instant::now();
    let data = load_data(config)?;
    let transforms = config.transforms()?;
    let num_classes = data.classes.len();
    let devices = options.backend.devices(&options.devices)?;
    let replicas = devices.len();
    if !config.batch_size.is_multiple_of(replicas) {
        return Err(TrainError::Config(format!(
            "--batch-size {} is the effective batch, split over {replicas} devices: make it a \
             multiple of {replicas}",
            config.batch_size
        )));
    }
    let device_batch = config.batch_size / replicas;
    let device = devices[0].clone();
    let train_device = device.clone().autodiff();
    if !options.quiet {
        announce(
            config,
            &data,
            &transforms,
            options,
            replicas,
            device_batch,
            start,
        );
    }
    let run_dir = RunDir::new(&options.dir);
    let mut history = run_dir.metrics()?;
    history.retain(|r| r.epoch <= start);

    // Each device iterates its share of the training set (Burn splits the loader in
    // `replicas` contiguous parts, the last taking the remainder), one batch a step.
    let largest_share = data.train.len() - (replicas - 1) * (data.train.len() / replicas);
    let batches = largest_share.div_ceil(device_batch);
    let steps_per_epoch = batches.div_ceil(config.grad_accumulation);
    let batcher_train = ImageBatcher::new(transforms, Split::Train, config.in_chans, config.seed)
        .mixing(config.recipe.mixup_cutmix(), num_classes);
    if config.recipe.clip_grad_norm.is_some() && replicas > 1 {
        return Err(TrainError::Config(
            "--clip-grad-norm on several devices: each would clip its own share's gradients, \
             not the step's; train on one device to clip"
                .into(),
        ));
    }
    let batcher_val = ImageBatcher::new(transforms, Split::Eval, config.in_chans, config.seed);
    // Epoch `start` draws what it would have drawn in a run that was never interrupted.
    let loader_train: Arc<dyn DataLoader<ImageBatch>> = Arc::new(
        OrderedLoader::new(
            data.train.clone(),
            batcher_train.clone(),
            device_batch,
            config.workers,
            train_device.clone(),
        )
        .shuffled(config.seed)
        .accumulating(config.grad_accumulation)
        .starting_at(start),
    );
    let loader_val: Arc<dyn DataLoader<ImageBatch>> = Arc::new(OrderedLoader::new(
        data.val.clone(),
        batcher_val.clone(),
        config.batch_size,
        config.workers,
        device.clone(),
    ));

    // Phases: a frozen backbone until `unfreeze_after`, then everything.
    let frozen_until = match config.mode {
        Mode::Finetune => 0,
        Mode::FeatureExtract => config.unfreeze_after.unwrap_or(config.epochs),
    };
    let mut phases = Vec::new();
    if start < frozen_until {
        phases.push((start, frozen_until, true));
    }
    if frozen_until < config.epochs {
        phases.push((start.max(frozen_until), config.epochs, false));
    }
    let mut interrupted = None;
    for (from, to, frozen) in phases {
        let model = build_model(config, num_classes, &train_device)?;
        check_input_size(config, &model, transforms.crop)?;
        let classifier = phase_classifier(config, model, frozen, replicas, steps_per_epoch, from);
        preflight(
            config,
            frozen,
            device_batch,
            transforms.crop,
            num_classes,
            &train_device,
        )?;
        let learner = Learner::new(
            classifier,
            config.optimizer(),
            config.lr_scheduler(steps_per_epoch)?,
        );
        let training = phase_training(
            config,
            options,
            (loader_train.clone(), loader_val.clone()),
            num_classes,
            &devices,
            (from, to),
        );
        let reporter = EpochReporter::new(
            &options.dir,
            history.clone(),
            training.interrupter(),
            (from > 0).then_some(from),
            options.tui,
            options.quiet,
        );
        let watch = watch_signals(training.interrupter());
        let training = training.renderer(Box::new(reporter));
        let result = training.launch(learner);
        drop(watch);
        if let Some(error) = result.error {
            let kept = run_dir.complete_checkpoints();
            let resume = match kept.last() {
                Some(epoch) => format!(
                    "; the run keeps its checkpoint of epoch {epoch}: continue with \
                     `zoo-train train --resume --out {}`",
                    options.dir.display()
                ),
                None => String::new(),
            };
            return Err(TrainError::Training(format!("{error}{resume}")));
        }
        history = run_dir.metrics()?;
        if result.interrupted.is_some() {
            interrupted = result.interrupted;
            break;
        }
    }
    let best_dir = run_dir.best_dir();
    let best = save_best(
        config,
        &options.dir,
        &best_dir,
        &history,
        &data.classes,
        &transforms,
        &train_device,
    );
    if let Some(stop) = interrupted {
        // Epochs with a checkpoint: `metrics.csv` may hold a row past them, of an epoch whose
        // checkpoint could not be written, which a resumed run trains again.
        let done = run_dir.complete_checkpoints().last().copied().unwrap_or(0);
        // The interruption is the news; a `best/` that could not be updated as well (the same
        // full disk, say) is said after it.
        let best_note = match &best {
            Ok(_) => String::new(),
            Err(e) => format!(" (and {} was not updated: {e})", best_dir.display()),
        };
        return Err(TrainError::Training(format!(
            "interrupted{} after {done} complete epoch(s) of {}; continue with \
             `zoo-train train --resume --out {}`{best_note}",
            stop.reason.map(|r| format!(": {r}")).unwrap_or_default(),
            config.epochs,
            options.dir.display()
        )));
    }
    let best = best?;
    Ok(TrainSummary {
        best,
        best_dir,
        history,
        skipped_images: data.skipped.len() + batcher_train.skipped() + batcher_val.skipped(),
        train_images: data.train.len(),
        val_images: data.val.len(),
        resumed_from: start,
        seconds: started.elapsed().as_secs_f64(),
    })
}

/// Burn's training of epochs `from..to` (given as `span`): the metrics, checkpoints every
/// epoch (the last two and the best kept), accumulation, the devices, and the checkpoint a
/// resumed phase starts from.
fn phase_training(
    config: &TrainConfig,
    options: &RunOptions,
    loaders: (
        Arc<dyn DataLoader<ImageBatch>>,
        Arc<dyn DataLoader<ImageBatch>>,
    ),
    num_classes: usize,
    devices: &[Device],
    span: (usize, usize),
) -> SupervisedTraining<Classifier> {
    let (from, to) = span;
    let replicas = devices.len();
    let mut training = SupervisedTraining::new(&options.dir, loaders.0, loaders.1)
        .metrics((
            AccuracyMetric::new(),
            TopKAccuracyMetric::new(5.min(num_classes)),
            LossMetric::new(),
        ))
        .metric_train_numeric(LearningRateMetric::new())
        .with_default_checkpointers()
        .with_checkpointing_strategy(
            ComposedCheckpointingStrategy::builder()
                .add(KeepLastNCheckpoints::new(2))
                .add(MetricCheckpointingStrategy::new(
                    &AccuracyMetric::new(),
                    Aggregate::Mean,
                    Direction::Highest,
                    MetricSplit::Valid,
                ))
                .build(),
        )
        .num_epochs(to);
    if config.grad_accumulation > 1 {
        training = training.grads_accumulation(config.grad_accumulation);
    }
    if replicas > 1 {
        training =
            training.with_training_strategy(TrainingStrategy::Default(ExecutionStrategy::multi(
                devices.iter().map(|d| d.clone().autodiff()).collect(),
                MultiDeviceOptim::OptimMainDevice,
            )));
    }
    if from > 0 {
        training = training.checkpoint(from);
    }
    training
}

/// The run's first line: data, model, crop, device(s), mode, and where it resumes.
fn announce(
    config: &TrainConfig,
    data: &RunData,
    transforms: &Transforms,
    options: &RunOptions,
    replicas: usize,
    device_batch: usize,
    start: usize,
) {
    let num_classes = data.classes.len();
    println!(
        "{}: {} classes, {} training / {} validation images{}; {} at {}x{} on {}, {:?}{}",
        config.train_dir.display(),
        num_classes,
        data.train.len(),
        data.val.len(),
        if data.skipped.is_empty() {
            String::new()
        } else {
            format!(", {} unreadable skipped", data.skipped.len())
        },
        config.model,
        transforms.crop,
        transforms.crop,
        if replicas > 1 {
            format!(
                "{} x{replicas} ({device_batch} images each)",
                options.backend
            )
        } else {
            options.backend.to_string()
        },
        config.mode,
        if start > 0 {
            format!("; resuming after epoch {start}")
        } else {
            String::new()
        }
    );
}

/// The model of a phase as the learner trains it: the backbone frozen or not, the loss scaled
/// for `replicas` devices, the recipe's gradient clipping, and its EMA (a resumed phase's
/// average comes back with the checkpoint's record), counting steps from epoch `from`.
fn phase_classifier(
    config: &TrainConfig,
    model: Model,
    frozen: bool,
    replicas: usize,
    steps_per_epoch: usize,
    from: usize,
) -> Classifier {
    let model = if frozen {
        let group = backbone(&model);
        model.freeze_group(group)
    } else {
        model
    };
    let mut classifier = Classifier {
        loss_scale: 1.0 / replicas as f32,
        clip_grad_norm: config.recipe.clip_grad_norm.unwrap_or(0.0),
        ..Classifier::new(model, config.label_smoothing)
    };
    if config.recipe.model_ema {
        let effective_batch = config.batch_size * config.grad_accumulation;
        classifier.ema = Some(Ema::new(
            &classifier.model,
            config
                .recipe
                .ema_update_decay(effective_batch, config.epochs),
            config.recipe.model_ema_steps,
            steps_per_epoch,
            config.warmup_epochs,
            from * steps_per_epoch,
        ));
    }
    classifier
}

/// Saves the checkpoint of the epoch with the best validation accuracy (among those kept:
/// the checkpointing strategy keeps it) into `best_dir`, with its class map and transforms.
fn save_best(
    config: &TrainConfig,
    run_dir: &Path,
    best_dir: &Path,
    history: &[EpochRecord],
    classes: &ClassMap,
    transforms: &Transforms,
    device: &Device,
) -> Result<ModelCard, TrainError> {
    let kept = RunDir::new(run_dir).complete_checkpoints();
    let best = history
        .iter()
        .filter(|r| kept.contains(&r.epoch))
        .max_by(|a, b| {
            a.val_acc
                .total_cmp(&b.val_acc)
                .then(b.val_loss.total_cmp(&a.val_loss))
        })
        .copied()
        .ok_or_else(|| {
            TrainError::Training(format!(
                "{}: no epoch finished with a checkpoint",
                run_dir.display()
            ))
        })?;
    let path = RunDir::new(run_dir).checkpoint("model", best.epoch);
    let record = ModuleRecord::load(&path).map_err(|e| TrainError::Json {
        path: path.clone(),
        message: format!("unreadable checkpoint: {e}"),
    })?;
    let model = build_model(
        &TrainConfig {
            weights: None,
            ..config.clone()
        },
        classes.len(),
        device,
    )?;
    let mut classifier = Classifier::new(model, config.label_smoothing);
    if config.recipe.model_ema {
        // The record's average replaces this copy: the saved model is the validated one.
        classifier.ema = Some(Ema::new(&classifier.model, 0.0, 1, 1, 0, 0));
    }
    let classifier = classifier
        .try_load_record(record)
        .map_err(|e| TrainError::Json {
            path: path.clone(),
            message: format!("the checkpoint does not fit the run's model: {e}"),
        })?;
    let card = ModelCard {
        model: config.model.clone(),
        num_classes: classes.len(),
        in_chans: config.in_chans,
        epoch: best.epoch,
        val_accuracy: best.val_acc,
        val_loss: best.val_loss,
    };
    save_trained(
        best_dir,
        &classifier.validated_model().valid(),
        &card,
        classes,
        transforms,
    )?;
    Ok(card)
}
