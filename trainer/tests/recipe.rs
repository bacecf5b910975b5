//! torchvision's recipe options in zoo-train: the weight-decay groups, global gradient
//! clipping, the soft-target loss of MixUp/CutMix, the EMA's schedule, the refusals, and a
//! run with all of them on that repeats by seed.

use std::path::{Path, PathBuf};

use burn::module::{Module, ModuleVisitor, Param};
use burn::optim::GradientsParams;
use burn::optim::lr_scheduler::module_lr_scheduler::ModuleLearningRate;
use burn::tensor::{Distribution, Int, Tensor, TensorData};
use burn::train::TrainStep;
use model_zoo::{Architecture, Backend, Model};
use zoo_trainer::demo::{DemoConfig, generate};
use zoo_trainer::ema::Ema;
use zoo_trainer::metrics::read_csv;
use zoo_trainer::recipe::{AutoAugmentName, WarmupMethod};
use zoo_trainer::step::{clip_grad_norm, soft_cross_entropy};
use zoo_trainer::{Classifier, OptimizerKind, RunOptions, TrainConfig, load_trained};

/// Burn's random numbers come from one generator per backend, which a seeded run seeds: the
/// tests of this file that draw (random weights, random inputs) take turns, so that the
/// seeded run repeats whatever runs beside it.
static RANDOM: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn take_turn() -> std::sync::MutexGuard<'static, ()> {
    RANDOM.lock().unwrap_or_else(|e| e.into_inner())
}

/// Every float parameter and buffer of a module by visiting order, as `f32` values.
struct Values(Vec<Vec<f32>>);

impl ModuleVisitor for Values {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        self.0.push(
            param
                .val()
                .into_data()
                .convert::<f32>()
                .try_to_vec::<f32>()
                .unwrap(),
        );
    }
}

fn values<M: Module>(module: &M) -> Vec<Vec<f32>> {
    let mut v = Values(Vec::new());
    module.visit(&mut v);
    v.0
}

/// Every float parameter and buffer with its path as Burn's optimiser sees it
/// (`ResNet.layer1.0.bn1.gamma`).
#[derive(Default)]
struct PathValues {
    path: Vec<String>,
    values: Vec<(String, Vec<f32>)>,
}

impl ModuleVisitor for PathValues {
    fn enter_module(&mut self, name: &str, _container_type: &str) {
        self.path.push(name.to_string());
    }
    fn exit_module(&mut self, _name: &str, _container_type: &str) {
        self.path.pop();
    }
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        let values = param
            .val()
            .into_data()
            .convert::<f32>()
            .try_to_vec::<f32>()
            .unwrap();
        self.values.push((self.path.join("."), values));
    }
}

fn path_values<M: Module>(module: &M) -> Vec<(String, Vec<f32>)> {
    let mut v = PathValues::default();
    module.visit(&mut v);
    v.values
}

/// torchvision's `set_weight_decay`: norms' weights and biases take `--norm-weight-decay`,
/// every bias `--bias-weight-decay` (the norms' too), the rest `--weight-decay`. One SGD step
/// of learning rate 1 on zero gradients leaves `p * (1 - decay)`.
#[test]
fn weight_decay_groups_follow_torchvision() {
    let _turn = take_turn();
    let device = Backend::Flex.device().unwrap().autodiff();
    let model = model_zoo::create("resnet18", 2, &device).unwrap();
    let before = path_values(&model);
    let mut config = TrainConfig::new("resnet18", "unused");
    config.momentum = 0.0;
    config.weight_decay = 0.1;
    config.recipe.norm_weight_decay = Some(0.0);
    config.recipe.bias_weight_decay = Some(0.5);
    let classifier = Classifier::new(model, 0.0);
    let images = Tensor::<4>::random([1, 3, 32, 32], Distribution::Default, &device);
    let logits = classifier.model.forward(images);
    let grads = GradientsParams::from_grads((logits * 0.0).sum().backward(), &classifier);
    let mut optimizer = config.optimizer();
    let stepped = classifier.optimize(&mut optimizer, ModuleLearningRate::from(1.0), grads);
    let after = path_values(&stepped.model);
    assert_eq!(before.len(), after.len());
    let (mut norms, mut biases, mut others) = (0, 0, 0);
    for ((name, b), (_, a)) in before.iter().zip(&after) {
        let factor = if name.ends_with("running_mean") || name.ends_with("running_var") {
            continue;
        } else if name.ends_with(".gamma") {
            norms += 1;
            1.0
        } else if name.ends_with(".beta") || name.ends_with(".bias") {
            // Norms' biases too: the bias group comes last, as torchvision's `bias` key first.
            biases += 1;
            0.5
        } else {
            others += 1;
            0.9
        };
        for (x, y) in b.iter().zip(a) {
            assert!(
                (x * factor - y).abs() <= 1e-6 * x.abs().max(1.0),
                "{name}: {x} -> {y}, expected x {factor}"
            );
        }
    }
    // resnet18: 20 BatchNorms, their 20 biases and the classifier's, 21 weight tensors.
    assert_eq!((norms, biases, others), (20, 21, 21));
}

/// `clip_grad_norm_`: the norm over every gradient at once; below the limit nothing changes.
#[test]
fn gradients_are_clipped_by_their_global_norm() {
    let _turn = take_turn();
    let device = Backend::Flex.device().unwrap().autodiff();
    let model = model_zoo::create("lenet5", 3, &device).unwrap();
    let images = Tensor::<4>::random([2, 3, 32, 32], Distribution::Default, &device);
    let gradients = || {
        let loss = model.forward(images.clone()).sum();
        GradientsParams::from_grads(loss.backward(), &model)
    };
    let grads = gradients();
    let norm_of = |grads: &GradientsParams| {
        let mut total = 0.0f64;
        struct Sum<'a>(&'a GradientsParams, &'a mut f64);
        impl ModuleVisitor for Sum<'_> {
            fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
                if let Some(g) = self.0.get::<D>(param.id) {
                    let v = g.into_data().try_to_vec::<f32>().unwrap();
                    *self.1 += v.iter().map(|x| f64::from(*x).powi(2)).sum::<f64>();
                }
            }
        }
        model.visit(&mut Sum(grads, &mut total));
        total.sqrt() as f32
    };
    let norm = norm_of(&grads);
    assert!(norm > 1.0, "{norm}");
    let mut clipped = gradients();
    let reported = clip_grad_norm(&model, &mut clipped, norm / 4.0);
    assert!((reported - norm).abs() <= 1e-4 * norm);
    assert!((norm_of(&clipped) - norm / 4.0).abs() <= 1e-3 * norm);
    let mut untouched = gradients();
    clip_grad_norm(&model, &mut untouched, norm * 2.0);
    assert_eq!(norm_of(&untouched), norm);
}

/// The loss of MixUp/CutMix batches, on one-hot targets, is Burn's cross-entropy (with and
/// without label smoothing); on mixed targets, the mix of the two losses.
#[test]
fn the_soft_target_loss_is_cross_entropy() {
    let _turn = take_turn();
    let device = Backend::Flex.device().unwrap();
    let logits = Tensor::<2>::random([4, 5], Distribution::Normal(0.0, 2.0), &device);
    let labels = [1i64, 0, 4, 4];
    let one_hot: Vec<f32> = labels
        .iter()
        .flat_map(|&l| (0..5).map(move |c| if c == l { 1.0 } else { 0.0 }))
        .collect();
    let one_hot = Tensor::<2>::from_data(TensorData::new(one_hot, [4, 5]), &device);
    let targets = Tensor::<1, Int>::from_data(TensorData::new(labels.to_vec(), [4]), &device);
    for smoothing in [0.0f32, 0.1] {
        let mut ce = burn::nn::loss::CrossEntropyLossConfig::new();
        if smoothing > 0.0 {
            ce = ce.with_smoothing(Some(smoothing));
        }
        let theirs = ce
            .init(&device)
            .forward(logits.clone(), targets.clone())
            .into_scalar::<f32>();
        let ours =
            soft_cross_entropy(logits.clone(), one_hot.clone(), smoothing).into_scalar::<f32>();
        assert!(
            (ours - theirs).abs() <= 1e-5,
            "smoothing {smoothing}: {ours} vs {theirs}"
        );
    }
    // 0.3 of class 1 and 0.7 of class 0, row by row: the weighted sum of the two losses.
    let mixed = Tensor::<2>::from_data(
        TensorData::new(vec![0.7f32, 0.3, 0.0, 0.0, 0.0], [1, 5]),
        &device,
    );
    let row = logits.clone().slice([0..1, 0..5]);
    let ce = |class: i64| {
        burn::nn::loss::CrossEntropyLossConfig::new()
            .init(&device)
            .forward(
                row.clone(),
                Tensor::<1, Int>::from_data(TensorData::new(vec![class], [1]), &device),
            )
            .into_scalar::<f32>()
    };
    let expected = 0.7 * ce(0) + 0.3 * ce(1);
    let ours = soft_cross_entropy(row, mixed, 0.0).into_scalar::<f32>();
    assert!((ours - expected).abs() <= 1e-5, "{ours} vs {expected}");
}

/// torchvision's EMA schedule: the first update copies, warmup epochs copy, then
/// `decay * average + (1 - decay) * weights` every `every` steps of an epoch.
#[test]
fn the_ema_copies_through_the_warmup_then_averages() {
    let _turn = take_turn();
    let device = Backend::Flex.device().unwrap();
    let model = |fill: f32| {
        let m = model_zoo::create("lenet5", 3, &device).unwrap();
        struct Fill(f32);
        impl burn::module::ModuleMapper for Fill {
            fn map_float<const D: usize>(&mut self, p: Param<Tensor<D>>) -> Param<Tensor<D>> {
                let v = self.0;
                p.map(|t| t.zeros_like() + v)
            }
        }
        m.map(&mut Fill(fill))
    };
    let first = |ema: &Ema| values(&ema.model)[0][0];
    // 4 steps an epoch, an update every 2, one warmup epoch, decay 0.5.
    let mut ema = Ema::new(&model(0.0), 0.5, 2, 4, 1, 0);
    let mut seen = Vec::new();
    for step in 0..12 {
        ema = ema.after_step(&model(step as f32));
        seen.push(first(&ema));
    }
    // Steps 0 and 2 (warmup epoch): copies; step 4 (first of epoch 1): a copy (reset after
    // the warmup's last update); steps 6, 8, 10: averages; odd steps: no update.
    let expected = [0.0, 0.0, 2.0, 2.0, 4.0, 4.0, 5.0, 5.0, 6.5, 6.5, 8.25, 8.25];
    assert_eq!(seen, expected);
    // A run resumed at step 6 averages at once.
    let resumed = Ema::new(&model(1.0), 0.5, 2, 4, 1, 6).after_step(&model(3.0));
    assert_eq!(first(&resumed), 2.0);
    // The average is not the model's: new parameter ids, no gradients.
    let live = model(1.0);
    let copy = Ema::new(&live, 0.5, 1, 1, 0, 0);
    let ids = |m: &Model| {
        struct Ids(Vec<burn::module::ParamId>);
        impl ModuleVisitor for Ids {
            fn visit_float<const D: usize>(&mut self, p: &Param<Tensor<D>>) {
                self.0.push(p.id);
            }
        }
        let mut ids = Ids(Vec::new());
        m.visit(&mut ids);
        ids.0
    };
    assert!(
        ids(&live)
            .iter()
            .zip(ids(&copy.model))
            .all(|(a, b)| *a != b)
    );
}

fn demo(root: &Path) -> PathBuf {
    let config = DemoConfig {
        classes: 3,
        train_per_class: 10,
        val_per_class: 5,
        size: 32,
        seed: 3,
    };
    generate(&root.join("shapes"), &config).unwrap()
}

fn recipe_config(data: &Path) -> TrainConfig {
    let mut config = TrainConfig::new("lenet5", data.join("train"));
    config.val_dir = Some(data.join("val"));
    config.epochs = 2;
    config.batch_size = 8;
    config.image_size = Some(32);
    config.workers = 2;
    config.optimizer = OptimizerKind::Sgd;
    config.lr = 0.05;
    config.weight_decay = 1e-4;
    config.label_smoothing = 0.1;
    config.warmup_epochs = 1;
    config.seed = 9;
    let recipe = &mut config.recipe;
    recipe.auto_augment = Some(AutoAugmentName::TaWide);
    recipe.random_erase = 0.25;
    recipe.mixup_alpha = 0.2;
    recipe.cutmix_alpha = 1.0;
    recipe.lr_warmup_method = WarmupMethod::Constant;
    recipe.clip_grad_norm = Some(1.0);
    recipe.norm_weight_decay = Some(0.0);
    recipe.bias_weight_decay = Some(0.0);
    recipe.model_ema = true;
    recipe.model_ema_steps = 1;
    recipe.train_crop_size = Some(28);
    recipe.val_resize_size = Some(36);
    recipe.val_crop_size = Some(32);
    config
}

/// Every recipe option on at once trains, repeats exactly by seed (the augmentations and
/// mixing draw from the seed), and saves the EMA model it validated.
#[test]
fn a_run_with_the_whole_recipe_repeats_exactly() {
    let _turn = take_turn();
    let root = tempfile::tempdir().unwrap();
    let data = demo(root.path());
    let run = |name: &str| {
        let dir = root.path().join(name);
        let options = RunOptions {
            dir: dir.clone(),
            backend: Backend::Flex,
            devices: vec![0],
            tui: false,
            quiet: true,
        };
        let summary = zoo_trainer::train(&recipe_config(&data), &options).unwrap();
        let rows: Vec<String> = read_csv(&dir.join("metrics.csv"))
            .unwrap()
            .into_iter()
            .map(|r| {
                format!(
                    "{} {} {} {} {}",
                    r.epoch, r.train_loss, r.val_loss, r.val_acc, r.lr
                )
            })
            .collect();
        (summary, rows, dir)
    };
    let (summary, first, dir) = run("a");
    let (_, second, _) = run("b");
    assert_eq!(first.len(), 2);
    assert_eq!(
        first, second,
        "metrics.csv differs between two runs of seed 9"
    );
    // The constant warmup: epoch 1 at lr x 0.01.
    let lr1 = read_csv(&dir.join("metrics.csv")).unwrap()[0].lr;
    assert!((lr1 - 0.05 * 0.01).abs() < 1e-9, "{lr1}");
    // The saved model is the validated one: it reproduces the best epoch's validation loss.
    let device = Backend::Flex.device().unwrap();
    let trained = load_trained(&summary.best_dir, &device).unwrap();
    assert_eq!(trained.transforms.train_size, 28);
    assert_eq!(
        (trained.transforms.resize, trained.transforms.crop),
        (36, 32)
    );
    let evaluation = zoo_trainer::evaluate(&trained, &data.join("val"), 8, 2, false).unwrap();
    assert!(
        (evaluation.accuracy - summary.best.val_accuracy).abs() < 1e-3,
        "evaluate {} vs the run's best {}",
        evaluation.accuracy,
        summary.best.val_accuracy
    );
}

/// What cannot run is refused by name.
#[test]
fn the_recipe_refuses_what_it_cannot_do() {
    let mut config = TrainConfig::new("lenet5", "unused");
    config.recipe.amp = true;
    let err = config.validate().unwrap_err().to_string();
    assert!(err.contains("--amp"), "{err}");

    let mut config = TrainConfig::new("lenet5", "unused");
    config.recipe.clip_grad_norm = Some(1.0);
    config.grad_accumulation = 2;
    let err = config.validate().unwrap_err().to_string();
    assert!(err.contains("--clip-grad-norm"), "{err}");

    let mut config = TrainConfig::new("lenet5", "unused");
    config.recipe.color_jitter = 0.4;
    config.recipe.auto_augment = Some(AutoAugmentName::Ra);
    let err = config.transforms().unwrap_err().to_string();
    assert!(err.contains("--color-jitter"), "{err}");

    let mut config = TrainConfig::new("lenet5", "unused");
    config.recipe.auto_augment = Some(AutoAugmentName::Ra);
    config.recipe.ra_magnitude = 31;
    let err = config.transforms().unwrap_err().to_string();
    assert!(err.contains("--ra-magnitude"), "{err}");

    let mut config = TrainConfig::new("vit_b_16", "unused");
    config.recipe.train_crop_size = Some(176);
    let err = config.transforms().unwrap_err().to_string();
    assert!(err.contains("one input size"), "{err}");

    // A train.json written before the recipe options existed reads as all of them off.
    let mut json = serde_json::to_value(TrainConfig::new("lenet5", "unused")).unwrap();
    json.as_object_mut().unwrap().remove("recipe");
    let old: TrainConfig = serde_json::from_value(json).unwrap();
    assert_eq!(old.recipe, zoo_trainer::Recipe::default());
}

/// The average keeps BatchNorm statistics of its own (a `RunningState`'s clone shares its
/// cell): a training forward moves the model's running statistics, not the average's, and an
/// update averages them as torchvision's `use_buffers=True` does.
#[test]
fn the_ema_averages_batchnorm_statistics_of_its_own() {
    let _turn = take_turn();
    let device = Backend::Flex.device().unwrap().autodiff();
    let model = model_zoo::create("resnet18", 2, &device).unwrap();
    // One step into the run: the next update averages.
    let ema = Ema::new(&model, 0.5, 1, 100, 0, 1);
    // Read through `valid()`, which folds the statistics the training forwards accumulated.
    let stats = |m: &Model| -> Vec<Vec<f32>> {
        path_values(&m.valid())
            .into_iter()
            .filter(|(path, _)| path.ends_with("running_mean"))
            .map(|(_, v)| v)
            .collect()
    };
    let before = stats(&ema.model);
    assert_eq!(before.len(), 20);
    let input = Tensor::<4>::random([2, 3, 32, 32], Distribution::Normal(1.0, 1.0), &device);
    let _ = model.forward(input);
    let moved = stats(&model);
    assert_ne!(
        moved, before,
        "a training forward moves the model's statistics"
    );
    assert!(
        stats(&ema.model) == before,
        "the average's statistics moved with the model's"
    );
    let ema = ema.after_step(&model);
    for ((averaged, old), new) in stats(&ema.model).iter().zip(&before).zip(&moved) {
        for ((a, o), n) in averaged.iter().zip(old).zip(new) {
            assert!((a - (0.5 * o + 0.5 * n)).abs() <= 1e-6, "{a} {o} {n}");
        }
    }
}
