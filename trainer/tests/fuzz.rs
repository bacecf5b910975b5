//! Seeded fuzzing of what a run directory holds: `best/model.json`, `best/classes.json`,
//! `best/preprocess.json` (read by `predict`, `eval` and `classify` through `load_trained`, then
//! used on an image) and `train.json` (read by `--resume`).
//!
//! Each file is first edited as JSON in every single way: each value replaced by a number,
//! string, array or object that a reader might not expect (0, -1, 1e300, `u64::MAX`, "", null,
//! ...), each key or array element removed. Then it is damaged as bytes by the shared harness of
//! `import/tests/fuzzing/` (truncation, bit flips, byte runs, huge numbers). Every case must load
//! and run, or be an `Err` naming the damaged file; none may panic (`cargo test fuzz`;
//! `cargo xtask fuzz` runs it longer).

#[path = "../../import/tests/fuzzing/mod.rs"]
mod fuzzing;

use std::path::Path;

use burn::tensor::Device;
use fuzzing::Target;
use serde_json::Value;
use zoo_trainer::{ClassMap, ModelCard, TrainConfig, load_trained, predict, save_trained};

/// Values a reader might not expect in place of any other.
const ODD_VALUES: &[&str] = &[
    "0",
    "-1",
    "1",
    "2",
    "7",
    "0.5",
    "-0.5",
    "1e300",
    "-1e300",
    "1e-300",
    "4294967296",
    "18446744073709551615",
    "\"\"",
    "\"x\"",
    "\"../../x\"",
    "null",
    "true",
    "[]",
    "{}",
    "[0, 0, 0]",
    "[1e300, 1, -1]",
    "[1, 0.5]",
];

/// Every node of `value` as a JSON pointer.
fn pointers(value: &Value, at: String, out: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            for (key, child) in map {
                pointers(child, format!("{at}/{key}"), out);
            }
        }
        Value::Array(items) => {
            for (i, child) in items.iter().enumerate() {
                pointers(child, format!("{at}/{i}"), out);
            }
        }
        _ => {}
    }
    out.push(at);
}

/// Every single JSON edit of `seed`: each value (the whole document included) replaced by each
/// of [`ODD_VALUES`], and each key or array element removed.
fn every_odd_value(seed: &[u8]) -> Vec<(Vec<u8>, String)> {
    let value: Value = serde_json::from_slice(seed).expect("the seed is JSON");
    let mut all = Vec::new();
    pointers(&value, String::new(), &mut all);
    let mut cases = Vec::new();
    let mut push = |changed: &Value, what: String| {
        cases.push((serde_json::to_vec_pretty(changed).unwrap(), what));
    };
    for pointer in &all {
        for odd in ODD_VALUES {
            let mut changed = value.clone();
            *changed.pointer_mut(pointer).unwrap() = serde_json::from_str(odd).unwrap();
            push(&changed, format!("{pointer} = {odd}"));
        }
        let Some((parent, key)) = pointer.rsplit_once('/') else {
            continue;
        };
        let mut changed = value.clone();
        match changed.pointer_mut(parent) {
            Some(Value::Object(map)) => {
                map.remove(key);
            }
            Some(Value::Array(items)) => {
                items.remove(key.parse::<usize>().unwrap());
            }
            _ => unreachable!("{pointer}: a child of neither an object nor an array"),
        }
        push(&changed, format!("{pointer} removed"));
    }
    cases
}

/// A run directory in `dir` with a trained lenet5 of 3 classes in `best/` and its `train.json`,
/// and an image to predict, `image.png`.
fn run_directory(dir: &Path, device: &Device) {
    let config = TrainConfig::new("lenet5", dir.join("data"));
    config.save(&dir.join("train.json")).unwrap();
    let model = model_zoo::create("lenet5", 3, device).unwrap();
    let card = ModelCard {
        model: "lenet5".into(),
        num_classes: 3,
        in_chans: 3,
        epoch: 2,
        val_accuracy: 50.0,
        val_loss: 1.0,
    };
    let classes = ClassMap {
        names: vec!["circle".into(), "cross".into(), "square".into()],
    };
    let transforms = config.transforms().unwrap();
    save_trained(&dir.join("best"), &model, &card, &classes, &transforms).unwrap();
    image::RgbImage::from_fn(40, 30, |x, y| image::Rgb([x as u8 * 6, y as u8 * 8, 128]))
        .save(dir.join("image.png"))
        .unwrap();
}

/// Each of the four files edited in every single way ([`every_odd_value`]), then 600 seeded
/// damaged copies of each.
#[test]
fn fuzz_run_directory_files_err_without_panicking() {
    let scratch = tempfile::tempdir().unwrap();
    let dir = scratch.path();
    let device = Device::flex();
    run_directory(dir, &device);
    let read = |path: &Path| std::fs::read(path).unwrap();
    let mut targets = Vec::new();
    for file in ["model.json", "classes.json", "preprocess.json"] {
        let device = device.clone();
        let best = dir.join("best");
        let image = dir.join("image.png");
        let seed = read(&best.join(file));
        targets.push(
            Target::new(
                format!("best/{file}"),
                seed.clone(),
                Box::new(move |_path| {
                    let trained = load_trained(&best, &device).map_err(|e| e.to_string())?;
                    predict(&trained, &[image.as_path()], 3)
                        .map(|_| ())
                        .map_err(|e| e.to_string())
                }),
            )
            .with_fixed_cases(every_odd_value(&seed)),
        );
    }
    let seed = read(&dir.join("train.json"));
    targets.push(
        Target::new(
            "train.json",
            seed.clone(),
            Box::new(|path| {
                let config = TrainConfig::load(path).map_err(|e| e.to_string())?;
                config.lr_scheduler(1000).map_err(|e| e.to_string())?;
                let _ = config.optimizer();
                Ok(())
            }),
        )
        .with_fixed_cases(every_odd_value(&seed)),
    );
    fuzzing::run(&mut targets, 600, dir);
}
