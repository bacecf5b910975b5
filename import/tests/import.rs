//! Every input path and every error of zoo-import, on the small fixtures that
//! `tests/fixtures/make_fixtures.py` writes with real PyTorch.

mod common;

use common::{Tiny, device, fixture, floats, temp_path};

use burn::tensor::{Tensor, TensorData, Tolerance};
use model_zoo::Architecture;
use model_zoo::resnet::ResNetConfig;
use zoo_import::{ImportError, TorchImport, load_burnpack, save_burnpack};

fn reference() -> serde_json::Value {
    let text = std::fs::read_to_string(fixture("tiny_reference.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

/// Runs the model on the fixture input and compares with PyTorch's logits for `key`.
fn assert_logits(model: &Tiny, key: &str) {
    let reference = reference();
    let shape: Vec<usize> = reference["input_shape"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_u64().unwrap() as usize)
        .collect();
    let device = device();
    let x = Tensor::<4>::from_data(TensorData::new(floats(&reference["input"]), shape), &device);
    let expected = TensorData::new(floats(&reference[key]), [2, 3]);
    model
        .forward(x)
        .into_data()
        .assert_approx_eq::<f32>(&expected, Tolerance::absolute(1e-5));
}

fn load(name: &str) -> Result<(Tiny, zoo_import::ImportReport), ImportError> {
    TorchImport::new(fixture(name)).load_into(Tiny::new(3, &device()))
}

#[test]
fn zip_pth_loads_and_matches_pytorch() {
    let (model, report) = load("tiny.pth").unwrap();
    assert_eq!(report.loaded, 12);
    assert_eq!(report.ignored, 2, "two num_batches_tracked");
    assert!(report.nested_under.is_empty());
    assert_logits(&model, "logits");
}

/// torchvision's RGB weights into a model for 1 or 4 channels: the input convolution's weight
/// is adapted as timm's `adapt_input_conv` does (and reported), the rest loads as it is; the
/// same as loading into an RGB model and calling `with_in_chans`.
#[test]
fn rgb_weights_load_into_other_channels_adapted() {
    let device = device();
    let (rgb, _) = load("tiny.pth").unwrap();
    let rgb_weight = rgb.conv1.weight.val();
    for channels in [1, 4] {
        let model = Tiny::new(3, &device).with_in_chans(channels).unwrap();
        let (model, report) = TorchImport::new(fixture("tiny.pth"))
            .load_into(model)
            .unwrap();
        assert_eq!(report.loaded, 12);
        assert_eq!(
            report.adapted,
            [format!("conv1.weight: 3 -> {channels} input channels")]
        );
        assert!(report.to_string().contains("adapt_input_conv"), "{report}");
        assert_eq!(model.in_chans(), channels);
        let expected = if channels == 1 {
            rgb_weight.clone().sum_dim(1)
        } else {
            // RGB repeated (R again for the 4th channel), scaled by 3/4.
            Tensor::cat(
                vec![rgb_weight.clone(), rgb_weight.clone().narrow(1, 0, 1)],
                1,
            )
            .mul_scalar(0.75)
        };
        model
            .conv1
            .weight
            .val()
            .into_data()
            .assert_approx_eq::<f32>(&expected.into_data(), Tolerance::absolute(1e-6));
        let after = rgb.clone().with_in_chans(channels).unwrap();
        after
            .conv1
            .weight
            .val()
            .into_data()
            .assert_approx_eq::<f32>(
                &model.conv1.weight.val().into_data(),
                Tolerance::absolute(0.0),
            );
        let x = Tensor::<4>::zeros([1, channels, 4, 4], &device);
        assert_eq!(model.forward(x).dims(), [1, 3]);
    }
    // A weight the formula cannot adapt (a 4-channel model's into 5 channels) is a shape error.
    let four = Tiny::new(3, &device).with_in_chans(4).unwrap();
    assert!(four.with_in_chans(5).is_err());
}

/// `torch.save(sd, "tiny_stem_of_21_chars.pth")`: its first central header is 76 bytes, which
/// zip 9.1 to 9.9's archive-offset detection mistakes for the zip64 end records (import's
/// Cargo.toml pins zip below 9.1). Before the pin: "Invalid Central Directory header".
#[test]
fn a_21_character_stem_loads() {
    let (model, report) = load("tiny_stem_of_21_chars.pth").unwrap();
    assert_eq!(report.loaded, 12);
    assert_logits(&model, "logits");
}

/// `read_state_dict` is `torch.load` of a state_dict: every tensor by name, in the file's dtype,
/// the same from the zip and the legacy format, and from under a checkpoint's key.
#[test]
fn read_state_dict_gives_every_tensor_in_its_dtype() {
    use burn::tensor::DType;
    let zip = TorchImport::new(fixture("tiny.pth"))
        .read_state_dict()
        .unwrap();
    let legacy = TorchImport::new(fixture("tiny_legacy.pth"))
        .read_state_dict()
        .unwrap();
    let nested = TorchImport::new(fixture("tiny_checkpoint.pth"))
        .top_level_key("state_dict")
        .read_state_dict()
        .unwrap();
    assert_eq!(zip.len(), 14, "12 tensors and two num_batches_tracked");
    assert_eq!(zip["conv1.weight"].shape().to_vec(), [4, 3, 3, 3]);
    assert_eq!(zip["conv1.weight"].dtype(), DType::F32);
    assert_eq!(zip["bn1.num_batches_tracked"].dtype(), DType::I64);
    for other in [&legacy, &nested] {
        assert_eq!(
            other.keys().collect::<Vec<_>>(),
            zip.keys().collect::<Vec<_>>()
        );
        for (key, data) in &zip {
            assert_eq!(other[key].as_bytes(), data.as_bytes(), "{key}");
        }
    }
}

#[test]
fn legacy_pth_loads() {
    let (model, _) = load("tiny_legacy.pth").unwrap();
    assert_logits(&model, "logits");
}

#[test]
fn checkpoint_state_dict_is_detected() {
    let (model, report) = load("tiny_checkpoint.pth").unwrap();
    assert_eq!(report.nested_under, "state_dict");
    assert_logits(&model, "logits");
}

#[test]
fn model_key_is_detected_and_caller_can_pick_another() {
    let (model, report) = load("tiny_model_and_ema.pth").unwrap();
    assert_eq!(report.nested_under, "model");
    assert_logits(&model, "logits");
    let (ema, _) = TorchImport::new(fixture("tiny_model_and_ema.pth"))
        .top_level_key("ema")
        .load_into(Tiny::new(3, &device()))
        .unwrap();
    assert_logits(&ema, "ema_logits");
}

#[test]
fn missing_top_level_key_lists_the_available_ones() {
    let err = TorchImport::new(fixture("tiny_checkpoint.pth"))
        .top_level_key("weights")
        .load_into(Tiny::new(3, &device()))
        .unwrap_err();
    let message = err.to_string();
    assert!(matches!(err, ImportError::TopLevelKey { .. }), "{message}");
    assert!(
        message.contains("weights") && message.contains("state_dict"),
        "{message}"
    );
}

#[test]
fn dataparallel_prefix_is_stripped() {
    let (model, report) = load("tiny_dataparallel.pth").unwrap();
    assert!(report.stripped_module_prefix);
    assert_logits(&model, "logits");
}

#[test]
fn safetensors_loads() {
    let (model, report) = load("tiny.safetensors").unwrap();
    assert_eq!(report.format, "safetensors");
    assert_logits(&model, "logits");
}

#[test]
fn other_class_count_is_a_shape_error_naming_key_and_shapes() {
    let err = load("tiny_10_classes.pth").unwrap_err();
    let ImportError::KeyMismatch {
        shapes,
        missing,
        unexpected,
        model,
        ..
    } = &err
    else {
        panic!("expected KeyMismatch, got {err}");
    };
    assert_eq!(model, "tiny");
    assert!(missing.is_empty() && unexpected.is_empty());
    assert_eq!(shapes.len(), 2);
    assert_eq!(shapes[1].key, "fc.weight");
    assert_eq!(
        (shapes[1].expected.clone(), shapes[1].found.clone()),
        (vec![3, 6], vec![10, 6])
    );
    let message = err.to_string();
    assert!(message.contains("tiny_10_classes.pth"), "{message}");
    assert!(
        message.contains("fc.weight: expected [3, 6], found [10, 6]"),
        "{message}"
    );
}

/// A features-only backbone (`without_head`) loads a classifier's file strictly: the head's
/// keys are ignored, not unexpected, and the trunk is the classifier's.
#[test]
fn a_backbone_loads_a_classifiers_file_without_its_head() {
    let device = device();
    let (full, full_report) = load("tiny.pth").unwrap();
    let (backbone, report) = TorchImport::new(fixture("tiny.pth"))
        .load_into(Tiny::new(3, &device).without_head())
        .unwrap();
    assert!(backbone.fc.is_none());
    assert_eq!(
        report.ignored,
        full_report.ignored + 2,
        "fc.weight and fc.bias"
    );
    backbone
        .conv1
        .weight
        .val()
        .into_data()
        .assert_eq(&full.conv1.weight.val().into_data(), true);
    // Another class count's head is ignored as well.
    let other = TorchImport::new(fixture("tiny_10_classes.pth"))
        .load_into(Tiny::new(3, &device).without_head())
        .map(|_| ());
    assert!(other.is_ok(), "{other:?}");
    // And the classifier's Burn file, the same way.
    let path = temp_path("tiny_backbone.bpk");
    save_burnpack(&full, &path).unwrap();
    let from_burnpack = load_burnpack(Tiny::new(3, &device).without_head(), &path).unwrap();
    assert!(from_burnpack.fc.is_none());
    from_burnpack
        .conv1
        .weight
        .val()
        .into_data()
        .assert_eq(&full.conv1.weight.val().into_data(), true);
}

#[test]
fn partial_load_keeps_the_new_head_and_loads_the_backbone() {
    let device = device();
    let fresh = Tiny::new(3, &device);
    let head_before = fresh.fc.as_ref().unwrap().weight.val().into_data();
    let (model, report) = TorchImport::new(fixture("tiny_10_classes.pth"))
        .partial(true)
        .load_into(fresh)
        .unwrap();
    assert_eq!(
        report.skipped,
        vec!["fc.bias".to_string(), "fc.weight".to_string()]
    );
    model
        .fc
        .unwrap()
        .weight
        .val()
        .into_data()
        .assert_eq(&head_before, true);
    // The backbone now holds the 10-class file's conv weights, not the fresh ones.
    let (strict, _) = load("tiny.pth").unwrap();
    let differs = model
        .conv1
        .weight
        .val()
        .sub(strict.conv1.weight.val())
        .abs()
        .max();
    assert!(differs.into_scalar::<f32>() > 0.0);
}

#[test]
fn vgg_state_dict_into_resnet50_names_missing_and_unexpected_keys() {
    let model = ResNetConfig::resnet50().init(&device()).unwrap();
    let err = TorchImport::new(fixture("tiny_vgg_keys.pth"))
        .model_name("resnet50")
        .load_into(model)
        .unwrap_err();
    let ImportError::KeyMismatch {
        missing,
        unexpected,
        ..
    } = &err
    else {
        panic!("expected KeyMismatch, got {err}");
    };
    assert_eq!(
        missing.len(),
        161 + 106,
        "every resnet50 parameter and buffer"
    );
    assert!(missing.contains(&("conv1.weight".to_string(), vec![64, 3, 7, 7])));
    assert_eq!(unexpected.len(), 8);
    let message = err.to_string();
    assert!(
        message.starts_with(&format!(
            "{} does not fit resnet50",
            fixture("tiny_vgg_keys.pth").display()
        )),
        "{message}"
    );
    assert!(
        message.contains("features.0.weight [4, 3, 3, 3]"),
        "{message}"
    );
    assert!(message.contains("... and"), "long lists are cut: {message}");
}

#[test]
fn truncated_pth_is_unreadable_not_a_panic() {
    let bytes = std::fs::read(fixture("tiny.pth")).unwrap();
    for keep in [bytes.len() / 2, 100, 0] {
        let path = temp_path(&format!("truncated-{keep}.pth"));
        std::fs::write(&path, &bytes[..keep]).unwrap();
        let err = TorchImport::new(&path)
            .load_into(Tiny::new(3, &device()))
            .unwrap_err();
        assert!(
            matches!(err, ImportError::Unreadable { .. }),
            "{keep} bytes: {err}"
        );
        assert!(err.to_string().contains(&path.display().to_string()));
    }
}

#[test]
fn random_bytes_are_unreadable_not_a_panic() {
    // A fixed xorshift stream: deterministic "random" bytes.
    let mut state = 0x2545_f491_4f6c_dd1d_u64;
    let bytes: Vec<u8> = (0..4096)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect();
    for name in ["random.pth", "random.safetensors"] {
        let path = temp_path(name);
        std::fs::write(&path, &bytes).unwrap();
        let err = TorchImport::new(&path)
            .load_into(Tiny::new(3, &device()))
            .unwrap_err();
        assert!(
            matches!(err, ImportError::Unreadable { .. }),
            "{name}: {err}"
        );
    }
}

#[test]
fn missing_file_is_an_io_error_naming_it() {
    let err = load("does-not-exist.pth").unwrap_err();
    assert!(matches!(err, ImportError::Io { .. }));
    assert!(err.to_string().contains("does-not-exist.pth"), "{err}");
}

#[test]
fn burnpack_round_trip_and_strict_reload() {
    let (model, _) = load("tiny.pth").unwrap();
    let path = temp_path("tiny.bpk");
    save_burnpack(&model, &path).unwrap();
    let reloaded = load_burnpack(Tiny::new(3, &device()), &path).unwrap();
    assert_logits(&reloaded, "logits");
    let err = load_burnpack(Tiny::new(10, &device()), &path).unwrap_err();
    assert!(err.to_string().contains("fc.weight"), "{err}");
    let err = load_burnpack(Tiny::new(3, &device()), fixture("tiny.pth")).unwrap_err();
    assert!(
        matches!(
            err,
            ImportError::Unreadable {
                format: "burnpack",
                ..
            }
        ),
        "{err}"
    );
}

/// torchvision's GoogLeNet weight file holds the aux heads: it loads into a model built with
/// them (strictly, every key used) and into one without (the aux keys ignored, as torchvision's
/// builder drops them); a file without aux heads (`aux_logits=False`) conforms a model built
/// with them, which drops its own.
#[test]
fn googlenet_weights_load_with_or_without_aux_heads() {
    use model_zoo::googlenet::GoogLeNetConfig;
    let device = device();
    let with_aux = GoogLeNetConfig::new()
        .with_transform_input(true)
        .init(&device)
        .unwrap();
    let file = temp_path("googlenet-aux.safetensors");
    zoo_import::save_safetensors(&with_aux, &file).unwrap();

    let (loaded, report) = TorchImport::new(&file)
        .load_into(GoogLeNetConfig::new().init(&device).unwrap())
        .unwrap();
    assert!(loaded.has_aux_logits());
    assert_eq!(report.ignored, 0);

    let (plain, report) = TorchImport::new(&file)
        .load_into(GoogLeNetConfig::pretrained().init(&device).unwrap())
        .unwrap();
    assert!(!plain.has_aux_logits());
    // aux1 and aux2: conv weight, BN weight/bias/mean/var, fc1 and fc2 weight and bias.
    assert_eq!(report.ignored, 18);
    let x = Tensor::<4>::random([1, 3, 64, 64], burn::tensor::Distribution::Default, &device);
    plain
        .forward(x.clone())
        .into_data()
        .assert_approx_eq::<f32>(&with_aux.forward(x).into_data(), Tolerance::default());

    let no_aux_file = temp_path("googlenet-plain.safetensors");
    zoo_import::save_safetensors(&plain, &no_aux_file).unwrap();
    let (conformed, report) = TorchImport::new(&no_aux_file)
        .load_into(GoogLeNetConfig::new().init(&device).unwrap())
        .unwrap();
    assert!(!conformed.has_aux_logits());
    assert_eq!(report.ignored, 0);
    assert_eq!(
        model_zoo::num_parameters(&conformed),
        model_zoo::num_parameters(&plain)
    );

    // A partial load for 10 classes leaves all three heads' last layers as initialised.
    let (_, report) = TorchImport::new(&file)
        .partial(true)
        .load_into(
            GoogLeNetConfig::new()
                .with_num_classes(10)
                .init(&device)
                .unwrap(),
        )
        .unwrap();
    assert_eq!(
        report.skipped,
        [
            "aux1.fc2.bias",
            "aux1.fc2.weight",
            "aux2.fc2.bias",
            "aux2.fc2.weight",
            "fc.bias",
            "fc.weight"
        ]
    );
}

/// `create` is torchvision's `weights=None` model and `create_for_weights` the one its builder
/// makes for pretrained weights; the zoo's burnpack records the input transform, which no
/// weight holds, so a model saved from pretrained weights reloads into `create`'s with it, aux
/// heads conformed to the file.
#[test]
fn googlenet_burnpack_keeps_the_input_transform_of_pretrained_weights() {
    let device = device();
    let info = model_zoo::model_info("googlenet").unwrap();
    let scratch = info.create(5, &device).unwrap();
    assert!(!scratch.transform_input());
    let pretrained = info.create_for_weights(5, &device).unwrap();
    assert!(pretrained.transform_input());

    let file = temp_path("googlenet-pretrained.bpk");
    save_burnpack(&pretrained, &file).unwrap();
    let reloaded = load_burnpack(info.create(5, &device).unwrap(), &file).unwrap();
    assert!(reloaded.transform_input());
    assert_eq!(
        model_zoo::num_parameters(&reloaded),
        model_zoo::num_parameters(&pretrained)
    );
    let x = Tensor::<4>::random([1, 3, 64, 64], burn::tensor::Distribution::Default, &device);
    reloaded
        .forward(x.clone())
        .into_data()
        .assert_approx_eq::<f32>(&pretrained.forward(x).into_data(), Tolerance::default());

    // A from-scratch model (aux heads, no transform) reloads as it was saved, even into a model
    // built with the transform.
    let file = temp_path("googlenet-scratch.bpk");
    save_burnpack(&scratch, &file).unwrap();
    let model = info
        .create(5, &device)
        .unwrap()
        .with_transform_input(true)
        .unwrap();
    let reloaded = load_burnpack(model, &file).unwrap();
    assert!(!reloaded.transform_input());
    assert_eq!(
        model_zoo::num_parameters(&reloaded),
        model_zoo::num_parameters(&scratch)
    );

    // A family without the setting refuses to have it switched on.
    let resnet = model_zoo::create("resnet18", 3, &device).unwrap();
    assert!(resnet.with_transform_input(true).is_err());
}

/// The hub's second load of a ViT with weights for another image size (the SWAG files): the
/// burnpack it converted rebuilds a fresh registry model for that size, as the PyTorch file
/// did.
#[test]
fn a_vit_burnpack_of_another_image_size_conforms_the_model() {
    use model_zoo::vit::VisionTransformerConfig;
    let device = device();
    let at_64 = VisionTransformerConfig::vit_b_32()
        .with_image_size(64)
        .init(&device)
        .unwrap();
    let bpk = temp_path("vit_b_32_64.bpk");
    save_burnpack(&model_zoo::Model::from(at_64), &bpk).unwrap();
    let fresh = model_zoo::create("vit_b_32", 1000, &device).unwrap();
    let reloaded = load_burnpack(fresh, &bpk).unwrap();
    let x = Tensor::<4>::zeros([1, 3, 64, 64], &device);
    assert!(reloaded.try_forward(x).is_ok());
}

/// A file of another width of the same family (saved here by the zoo itself, in torchvision's
/// layout) is refused by a strict load, naming every mismatched key with both shapes.
#[test]
fn a_state_dict_of_another_width_names_each_mismatched_key() {
    use model_zoo::mobilenet_v2::MobileNetV2Config;
    use model_zoo::shufflenet_v2::ShuffleNetV2Config;

    let device = device();
    let narrow = MobileNetV2Config::new()
        .with_width_mult(0.75)
        .init(&device)
        .unwrap();
    let path = temp_path("mobilenet_v2_0.75.safetensors");
    zoo_import::save_safetensors(&narrow, &path).unwrap();
    let err = TorchImport::new(&path)
        .load_into(MobileNetV2Config::new().init(&device).unwrap())
        .unwrap_err();
    let ImportError::KeyMismatch {
        shapes,
        missing,
        unexpected,
        ..
    } = &err
    else {
        panic!("expected KeyMismatch, got {err}");
    };
    assert!(missing.is_empty() && unexpected.is_empty(), "{err}");
    // Every convolution and BatchNorm whose width changed, the classifier's input too.
    assert!(shapes.len() > 100, "{} mismatches", shapes.len());
    let message = err.to_string();
    assert!(
        message.contains("features.0.0.weight: expected [32, 3, 3, 3], found [24, 3, 3, 3]"),
        "{message}"
    );

    let wide = ShuffleNetV2Config::x1_0().init(&device).unwrap();
    let path = temp_path("shufflenet_v2_x1_0.safetensors");
    zoo_import::save_safetensors(&wide, &path).unwrap();
    let err = TorchImport::new(&path)
        .load_into(ShuffleNetV2Config::x0_5().init(&device).unwrap())
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("stage2.0.branch1.2.weight: expected [24, 24, 1, 1], found [58, 24, 1, 1]"),
        "{err}"
    );
}

/// MNASNet 0.5's published file is a version-1 state_dict with a 32-channel stem: it loads
/// strictly into the registry's `mnasnet0_5` (rebuilt with that stem, as torchvision does), and
/// the same file saved from the rebuilt model loads again.
#[test]
fn mnasnet_version_1_files_load_into_the_current_model() {
    use model_zoo::mnasnet::MnasNetConfig;

    let device = device();
    let v1 = MnasNetConfig::new(0.5)
        .with_v1_stem(true)
        .init(&device)
        .unwrap();
    let path = temp_path("mnasnet0_5_v1.safetensors");
    zoo_import::save_safetensors(&v1, &path).unwrap();
    let current = model_zoo::create("mnasnet0_5", 1000, &device).unwrap();
    let (loaded, _) = TorchImport::new(&path).load_into(current).unwrap();
    // The hub's second load: the burnpack it converted, into a fresh registry model.
    let bpk = temp_path("mnasnet0_5_v1.bpk");
    save_burnpack(&loaded, &bpk).unwrap();
    let fresh = model_zoo::create("mnasnet0_5", 1000, &device).unwrap();
    let reloaded = load_burnpack(fresh, &bpk).unwrap();
    assert_eq!(
        model_zoo::num_parameters(&reloaded),
        model_zoo::num_parameters(&loaded)
    );
    let model_zoo::Model::MnasNet(loaded) = loaded else {
        panic!("not an MNASNet")
    };
    assert!(loaded.v1_stem);
    let x = Tensor::<4>::ones([1, 3, 40, 40], &device);
    let expected = v1.forward(x.clone()).into_data();
    loaded
        .forward(x)
        .into_data()
        .assert_approx_eq::<f32>(&expected, Tolerance::default());
}
