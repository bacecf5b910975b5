//! The data side of the trainer on real files: the demo generator, ImageFolder reading, splits,
//! bad images and statistics.

use std::path::PathBuf;

use zoo_trainer::TrainError;
use zoo_trainer::demo::{DemoConfig, SHAPES, generate};
use zoo_trainer::folder::{ImageFolder, same_classes, verify_images};
use zoo_trainer::stats::channel_stats;

/// A fresh `name` folder in a scratch folder of the target directory (`CARGO_TARGET_TMPDIR`),
/// emptied at the start of each run rather than left per process in the system's temporary
/// directory.
fn temp_dir(name: &str) -> PathBuf {
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("zoo-trainer-data")
        .join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn small_demo(root: &std::path::Path) -> PathBuf {
    let config = DemoConfig {
        classes: 4,
        train_per_class: 6,
        val_per_class: 2,
        size: 32,
        seed: 7,
    };
    generate(&root.join("shapes"), &config).unwrap()
}

#[test]
fn demo_dataset_is_an_image_folder_with_sorted_classes() {
    let root = small_demo(&temp_dir("demo"));
    let train = ImageFolder::open(root.join("train")).unwrap();
    let val = ImageFolder::open(root.join("val")).unwrap();
    same_classes(&train, &val).unwrap();
    let mut expected: Vec<String> = SHAPES[..4].iter().map(|s| s.to_string()).collect();
    expected.sort();
    assert_eq!(train.classes.names, expected);
    assert_eq!(train.samples.len(), 24);
    assert_eq!(val.samples.len(), 8);
    // Labels follow the sorted class names, files sorted within a class.
    let first = &train.samples[0];
    assert_eq!(first.label, 0);
    assert!(first.path.ends_with(format!("{}/00000.png", expected[0])));
    let image = image::open(&first.path).unwrap();
    assert_eq!((image.width(), image.height()), (32, 32));
    // The same seed draws the same pixels; generating again keeps the files.
    let again = generate(
        &root,
        &DemoConfig {
            classes: 4,
            train_per_class: 6,
            val_per_class: 2,
            size: 32,
            seed: 7,
        },
    )
    .unwrap();
    assert_eq!(again, root);
}

#[test]
fn demo_images_differ_and_are_not_blank() {
    let root = small_demo(&temp_dir("pixels"));
    let folder = ImageFolder::open(root.join("train")).unwrap();
    let a = image::open(&folder.samples[0].path).unwrap().to_rgb8();
    let b = image::open(&folder.samples[1].path).unwrap().to_rgb8();
    assert_ne!(a.as_raw(), b.as_raw());
    let distinct: std::collections::BTreeSet<_> = a.pixels().map(|p| p.0).collect();
    assert!(distinct.len() > 50, "{} colours", distinct.len());
}

#[test]
fn split_is_seeded_stratified_and_disjoint() {
    let root = small_demo(&temp_dir("split"));
    let folder = ImageFolder::open(root.join("train")).unwrap();
    let (train, val) = folder.split(0.25, 3).unwrap();
    let (train2, val2) = folder.split(0.25, 3).unwrap();
    assert_eq!((train.clone(), val.clone()), (train2, val2));
    assert_eq!(val.len(), 4 * 2); // round(6 * 0.25) = 2 per class
    assert_eq!(train.len() + val.len(), folder.samples.len());
    for s in &val {
        assert!(!train.contains(s));
    }
    let (_, other) = folder.split(0.25, 4).unwrap();
    assert_ne!(val, other);
    assert!(matches!(folder.split(1.5, 0), Err(TrainError::Config(_))));
}

#[test]
fn corrupt_image_is_named_or_skipped() {
    let root = small_demo(&temp_dir("corrupt"));
    let bad = root.join("train").join("circle").join("zz-truncated.png");
    let good = std::fs::read(root.join("train/circle/00000.png")).unwrap();
    std::fs::write(&bad, &good[..good.len() / 3]).unwrap();
    let folder = ImageFolder::open(root.join("train")).unwrap();
    let err = verify_images(folder.samples.clone(), 2, false).unwrap_err();
    let message = err.to_string();
    assert!(message.contains("zz-truncated.png"), "{message}");
    assert!(message.contains("--skip-bad-images"), "{message}");
    let (kept, skipped) = verify_images(folder.samples.clone(), 2, true).unwrap();
    assert_eq!(kept.len(), folder.samples.len() - 1);
    assert_eq!(skipped.len(), 1);
    assert_eq!(skipped[0].0, bad);
}

#[test]
fn empty_and_missing_folders_are_clear_errors() {
    let dir = temp_dir("layout");
    let err = ImageFolder::open(dir.join("nope")).unwrap_err().to_string();
    assert!(err.contains("nope"), "{err}");
    let err = ImageFolder::open(&dir).unwrap_err().to_string();
    assert!(err.contains("no class folders"), "{err}");
    std::fs::create_dir_all(dir.join("cats")).unwrap();
    std::fs::write(dir.join("cats/readme.txt"), "not an image").unwrap();
    let err = ImageFolder::open(&dir).unwrap_err().to_string();
    assert!(err.contains("`cats` holds no image"), "{err}");
}

#[test]
fn statistics_of_known_images() {
    let dir = temp_dir("stats");
    std::fs::create_dir_all(dir.join("a")).unwrap();
    // Half the pixels black, half (255, 51, 0): mean (0.5, 0.1, 0), std (0.5, 0.1, 0).
    image::RgbImage::from_pixel(4, 4, image::Rgb([0, 0, 0]))
        .save(dir.join("a/black.png"))
        .unwrap();
    image::RgbImage::from_pixel(4, 4, image::Rgb([255, 51, 0]))
        .save(dir.join("a/orange.png"))
        .unwrap();
    let folder = ImageFolder::open(&dir).unwrap();
    let stats = channel_stats(&folder.samples, 2).unwrap();
    assert_eq!(stats.images, 2);
    assert_eq!(stats.pixels, 32);
    for (got, want) in stats.mean.iter().zip([0.5, 0.1, 0.0]) {
        assert!((got - want).abs() < 1e-6, "{got}");
    }
    for (got, want) in stats.std.iter().zip([0.5, 0.1, 0.0]) {
        assert!((got - want).abs() < 1e-6, "{got}");
    }
}

/// Every batch of `epochs` epochs of `loader`, as (targets, image bytes).
fn epochs_of(
    loader: &zoo_trainer::data::OrderedLoader,
    epochs: usize,
) -> Vec<Vec<(Vec<i64>, Vec<u8>)>> {
    use burn::data::dataloader::DataLoader;
    (0..epochs)
        .map(|_| {
            let mut iter = loader.iter();
            let mut batches = Vec::new();
            for batch in iter.by_ref() {
                let batch = batch.unwrap();
                let targets = batch
                    .targets
                    .to_data()
                    .convert::<i64>()
                    .try_to_vec()
                    .unwrap();
                let images = batch.images.to_data().as_bytes().to_vec();
                batches.push((targets, images));
            }
            assert!(iter.progress().is_completed(), "{:?}", iter.progress());
            batches
        })
        .collect()
}

/// The loader's batches and augmentations depend on the seed and the epoch only: equal with 1,
/// 2 and 5 workers, different from epoch to epoch and from seed to seed; a loader started at
/// epoch 1 (a resumed run) yields the uninterrupted run's second epoch; two halves (devices'
/// slices) yield the whole epoch between them.
#[test]
fn loader_epochs_repeat_whatever_the_workers() {
    use burn::data::dataloader::DataLoader;
    use zoo_trainer::data::{ImageBatcher, OrderedLoader, Split};
    let root = small_demo(&temp_dir("loader"));
    let samples = ImageFolder::open(root.join("train")).unwrap().samples;
    let transforms = zoo_trainer::Transforms {
        train_size: 16,
        resize: 16,
        crop: 16,
        mean: [0.5; 3],
        std: [0.25; 3],
        scale: (0.3, 1.0),
        ratio: (0.75, 4.0 / 3.0),
        flip: 0.5,
        interpolation: zoo_trainer::augment::Resampling::Bilinear,
        auto_augment: Some(zoo_trainer::augment::policy::AutoAugment::TaWide),
        color_jitter: None,
        random_erase: 0.5,
    };
    let device = burn::tensor::Device::flex();
    let loader = |workers: usize, seed: u64| {
        OrderedLoader::new(
            samples.clone(),
            ImageBatcher::new(transforms, Split::Train, 3, seed),
            5,
            workers,
            device.clone(),
        )
        .shuffled(seed)
    };
    // MixUp and CutMix draw per batch: the same whatever the workers too.
    let mixing = zoo_trainer::augment::batch::MixupCutmix {
        mixup_alpha: 0.2,
        cutmix_alpha: 1.0,
    };
    let mixed = |workers: usize| {
        OrderedLoader::new(
            samples.clone(),
            ImageBatcher::new(transforms, Split::Train, 3, 9).mixing(mixing, 4),
            5,
            workers,
            device.clone(),
        )
        .shuffled(9)
    };
    let mixed_epochs = epochs_of(&mixed(1), 2);
    assert_eq!(mixed_epochs, epochs_of(&mixed(2), 2));
    assert_eq!(mixed_epochs, epochs_of(&mixed(5), 2));
    let one = epochs_of(&loader(1, 9), 2);
    assert_eq!(one[0].len(), 24usize.div_ceil(5));
    assert_eq!(one, epochs_of(&loader(2, 9), 2));
    assert_eq!(one, epochs_of(&loader(5, 9), 2));
    assert_ne!(one[0], one[1], "two epochs drew the same");
    assert_ne!(one, epochs_of(&loader(2, 10), 2), "two seeds drew the same");
    assert_eq!(epochs_of(&loader(2, 9).starting_at(1), 1)[0], one[1]);

    let whole = loader(2, 9);
    let halves: Vec<_> = [(0, 12), (12, 24)]
        .iter()
        .map(|&(a, b)| whole.slice(a, b))
        .collect();
    let mut targets: Vec<i64> = Vec::new();
    for half in &halves {
        assert_eq!(half.num_items(), 12);
        for batch in half.iter() {
            targets.extend(
                batch
                    .unwrap()
                    .targets
                    .to_data()
                    .convert::<i64>()
                    .try_to_vec::<i64>()
                    .unwrap(),
            );
        }
    }
    let epoch0: Vec<i64> = one[0].iter().flat_map(|(t, _)| t.clone()).collect();
    assert_eq!(targets, epoch0, "the slices are not the epoch's order");
}
