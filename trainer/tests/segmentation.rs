//! Segmentation training on the offline demo masks: LRASPP learns the shapes from scratch, well
//! above chance, and the saved model predicts masks.

use model_zoo::Backend;
use zoo_trainer::RunOptions;
use zoo_trainer::segment::demo::{MaskDemoConfig, generate_masks};
use zoo_trainer::segment::{
    SegmentationOptimizer, SegmentationTrainConfig, load_segmenter, predict_masks,
    train_segmentation,
};

#[test]
fn lraspp_learns_the_demo_masks() {
    let dir = tempfile::tempdir().unwrap();
    let data = generate_masks(
        &dir.path().join("data"),
        &MaskDemoConfig {
            shapes: 2,
            train: 96,
            val: 16,
            size: 64,
            seed: 3,
        },
    )
    .unwrap();
    let mut config = SegmentationTrainConfig::new("lraspp_mobilenet_v3_large", &data);
    // torchvision's recipe, but AdamW, a batch of 4 and a narrower random resize: from scratch
    // on 96 images, MobileNetV3's BatchNorms (momentum 0.01, torchvision's) need a few hundred
    // steps before their running statistics, which validation uses, follow the weights.
    config.epochs = 40;
    config.batch_size = 4;
    config.optimizer = SegmentationOptimizer::Adamw;
    config.lr = 2e-3;
    config.base_size = 64;
    config.crop_size = 64;
    config.min_scale = 0.8;
    config.max_scale = 1.25;
    let options = RunOptions {
        dir: dir.path().join("run"),
        backend: Backend::Flex,
        devices: vec![0],
        tui: false,
        quiet: true,
    };
    let summary = train_segmentation(&config, &options).unwrap();
    let first = summary.history[0];
    let best = summary.best.miou;
    // Chance: every pixel background gives the background's IoU (0.78 here) and 0 for the two
    // shapes, a mean IoU of 26%, which is where the first epochs stay.
    assert!(first.miou < 30.0, "{:?}", summary.history);
    assert!(
        best > 38.0,
        "best mIoU {best:.1}% (first epoch {:.1}%)",
        first.miou
    );
    assert_eq!(summary.best.classes, ["background", "circle", "square"]);

    // The saved model predicts masks of the photos' size.
    let device = Backend::Flex.device().unwrap();
    let (model, card) = load_segmenter(&options.dir, &device).unwrap();
    assert_eq!((model.num_classes(), card.epoch), (3, summary.best.epoch));
    let photos: Vec<_> = (0..2)
        .map(|i| data.join(format!("val/images/{i:05}.png")))
        .collect();
    let out = dir.path().join("masks");
    let shares = predict_masks(&model, &card, &photos, &out).unwrap();
    assert_eq!(shares.len(), 2);
    for (_, share) in &shares {
        assert!((share.iter().sum::<f64>() - 1.0).abs() < 1e-9);
    }
    for file in ["00000_mask.png", "00000_overlay.png", "00000_classes.png"] {
        let image = image::open(out.join(file)).unwrap();
        assert_eq!((image.width(), image.height()), (64, 64), "{file}");
    }
}
