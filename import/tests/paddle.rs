//! PaddlePaddle `.pdparams`: every layout of numpy's pickling that paddle.save writes, the
//! refusals, and the errors, on fixtures written by real Paddle
//! (`tests/fixtures/make_paddle_fixtures.py`) and on pickles written here.

mod common;

use burn::tensor::{Tensor, TensorData, Tolerance};
use common::{Tiny, device, fixture, floats, pickle_of, temp_path};
use model_zoo::Architecture;
use model_zoo::resnet::ResNetConfig;
use zoo_import::{Import, ImportError, PaddleImport, PaddleLayout, TorchImport, WeightFormat};

fn load(name: &str) -> Result<(Tiny, zoo_import::ImportReport), ImportError> {
    PaddleImport::new(fixture(name)).load_into(Tiny::new(3, &device()))
}

/// Paddle's own logits for the fixture input.
fn assert_paddle_logits(model: &Tiny) {
    let text = std::fs::read_to_string(fixture("tiny_paddle_reference.json")).unwrap();
    let reference: serde_json::Value = serde_json::from_str(&text).unwrap();
    let shape: Vec<usize> = reference["input_shape"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_u64().unwrap() as usize)
        .collect();
    let x = Tensor::<4>::from_data(
        TensorData::new(floats(&reference["input"]), shape),
        &device(),
    );
    let expected = TensorData::new(floats(&reference["logits"]), [2, 3]);
    model
        .forward(x)
        .into_data()
        .assert_approx_eq::<f32>(&expected, Tolerance::absolute(1e-5));
}

#[test]
fn protocol_4_and_2_files_load_and_match_paddle() {
    for name in ["tiny.pdparams", "tiny_protocol2.pdparams"] {
        let (model, report) = load(name).unwrap();
        assert_eq!(report.loaded, 12, "{name}");
        assert_eq!(report.ignored, 1, "{name}: StructuredToParameterName@@");
        assert_eq!(
            report.format,
            "PaddlePaddle .pdparams, paddle.vision layout"
        );
        assert_paddle_logits(&model);
    }
}

#[test]
fn float64_fortran_order_and_split_arrays_load() {
    for name in ["tiny_f64_fortran.pdparams", "tiny_split.pdparams"] {
        let (model, _) = load(name).unwrap();
        assert_paddle_logits(&model);
    }
}

#[test]
fn the_format_is_detected_from_the_content() {
    let copy = temp_path("paddle-weights.bin");
    std::fs::copy(fixture("tiny.pdparams"), &copy).unwrap();
    assert_eq!(WeightFormat::detect(&copy).unwrap(), WeightFormat::Pdparams);
    for (name, format) in [
        ("tiny_protocol2.pdparams", WeightFormat::Pdparams),
        ("tiny.pth", WeightFormat::PyTorchZip),
        ("tiny_legacy.pth", WeightFormat::PyTorchLegacy),
        ("tiny.safetensors", WeightFormat::Safetensors),
    ] {
        assert_eq!(
            WeightFormat::detect(&fixture(name)).unwrap(),
            format,
            "{name}"
        );
    }
    // Import picks the reader: Paddle's for the pickle whatever its name, PyTorch's for .pth.
    let (model, report) = Import::new(&copy)
        .load_into(Tiny::new(3, &device()))
        .unwrap();
    assert!(report.format.starts_with("PaddlePaddle"));
    assert_paddle_logits(&model);
    let (_, report) = Import::new(fixture("tiny.pth"))
        .load_into(Tiny::new(3, &device()))
        .unwrap();
    assert_eq!(report.format, "PyTorch file");
    // TorchImport says what the file is rather than failing obscurely.
    let err = TorchImport::new(&copy)
        .load_into(Tiny::new(3, &device()))
        .unwrap_err();
    assert!(err.to_string().contains("PaddleImport"), "{err}");
}

#[test]
fn a_pickle_calling_os_system_is_refused_and_nothing_runs() {
    let marker = std::path::Path::new("/tmp/zoo-import-pwned");
    let _ = std::fs::remove_file(marker);
    for import in [
        Import::new(fixture("evil.pdparams")).load_into(Tiny::new(3, &device())),
        PaddleImport::new(fixture("evil.pdparams")).load_into(Tiny::new(3, &device())),
    ] {
        let err = import.unwrap_err();
        assert!(
            matches!(&err, ImportError::UnsafePickle { global, .. } if global == "posix.system"),
            "{err}"
        );
        assert!(err.to_string().contains("evil.pdparams"), "{err}");
    }
    assert!(!marker.exists(), "the pickle's command ran");
}

#[test]
fn truncated_empty_and_random_files_are_errors_naming_the_file() {
    let bytes = std::fs::read(fixture("tiny.pdparams")).unwrap();
    let mut state = 0x9e37_79b9_7f4a_7c15_u64;
    let random: Vec<u8> = std::iter::once(0x80)
        .chain(std::iter::once(4))
        .chain((0..2048).map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        }))
        .collect();
    let cases = [
        ("half.pdparams", bytes[..bytes.len() / 2].to_vec()),
        ("short.pdparams", bytes[..bytes.len() - 1].to_vec()),
        ("header.pdparams", bytes[..12].to_vec()),
        ("empty.pdparams", Vec::new()),
        ("random.pdparams", random),
    ];
    for (name, content) in cases {
        let path = temp_path(name);
        std::fs::write(&path, content).unwrap();
        let err = PaddleImport::new(&path)
            .load_into(Tiny::new(3, &device()))
            .unwrap_err();
        assert!(
            matches!(err, ImportError::Unreadable { .. }),
            "{name}: {err}"
        );
        assert!(
            err.to_string().contains(&path.display().to_string()),
            "{err}"
        );
    }
}

#[test]
fn an_array_short_of_its_shape_names_the_key_and_both_lengths() {
    let path = temp_path("short-array.pdparams");
    std::fs::write(
        &path,
        pickle_of(&[("conv1.weight".into(), vec![4, 3, 3, 3], vec![0; 100])]),
    )
    .unwrap();
    let err = load_path(&path).unwrap_err();
    let message = err.to_string();
    assert!(matches!(err, ImportError::Unreadable { .. }), "{message}");
    assert!(
        message.contains("`conv1.weight`")
            && message.contains("100 bytes")
            && message.contains("432 bytes expected"),
        "{message}"
    );
}

fn load_path(path: &std::path::Path) -> Result<(Tiny, zoo_import::ImportReport), ImportError> {
    PaddleImport::new(path).load_into(Tiny::new(3, &device()))
}

#[test]
fn a_dict_of_other_values_is_an_error_naming_the_key() {
    // {'conv1.weight': 'not an array'}, protocol 2.
    let path = temp_path("strings.pdparams");
    std::fs::write(
        &path,
        b"\x80\x02}q\x00X\x0c\x00\x00\x00conv1.weightq\x01X\x0c\x00\x00\x00not an arrayq\x02s.",
    )
    .unwrap();
    let message = load_path(&path).unwrap_err().to_string();
    assert!(message.contains("`conv1.weight` holds a str"), "{message}");
}

#[test]
fn keys_in_neither_layout_name_the_keys_and_the_layouts_tried() {
    let path = temp_path("other-keys.pdparams");
    std::fs::write(
        &path,
        pickle_of(&[("encoder.blocks.0.w".into(), vec![1], vec![0; 4])]),
    )
    .unwrap();
    let message = load_path(&path).unwrap_err().to_string();
    assert!(message.contains("encoder.blocks.0.w"), "{message}");
    assert!(
        message.contains("paddle.vision") && message.contains("tutorial"),
        "{message}"
    );
}

/// A resnet101 file in the tutorial layout, written here with the real keys and shapes (zero
/// weights): into resnet50 it is a strict error listing the keys each side lacks, in both
/// spellings.
#[test]
fn a_resnet101_file_into_resnet50_lists_missing_and_unexpected_keys() {
    let device = device();
    let resnet101 = ResNetConfig::resnet101().init(&device).unwrap();
    let arrays: Vec<(String, Vec<usize>, Vec<u8>)> = model_zoo::layers::torch_shapes(&resnet101)
        .into_iter()
        .filter(|(k, _)| !k.ends_with("num_batches_tracked"))
        .map(|(key, mut shape)| {
            if key == "fc.weight" {
                shape.reverse(); // Paddle's Linear: [in, out].
            }
            let bytes = shape.iter().product::<usize>() * 4;
            let paddle = PaddleLayout::Tutorial.to_file(&key).unwrap();
            (paddle, shape, vec![0; bytes])
        })
        .collect();
    let path = temp_path("tutorial-resnet101.pdparams");
    std::fs::write(&path, pickle_of(&arrays)).unwrap();
    drop(arrays);

    let resnet50 = ResNetConfig::resnet50().init(&device).unwrap();
    let err = PaddleImport::new(&path)
        .model_name("resnet50")
        .load_into(resnet50)
        .unwrap_err();
    let ImportError::KeyMismatch {
        missing,
        unexpected,
        shapes,
        ..
    } = &err
    else {
        panic!("{err}")
    };
    assert!(missing.is_empty() && shapes.is_empty(), "{err}");
    // Stage 3 has 23 blocks in resnet101 and 6 in resnet50: 17 blocks of 3 convs and 3 BNs.
    assert_eq!(unexpected.len(), 17 * (3 + 3 * 4), "{err}");
    let message = err.to_string();
    assert!(
        message
            .contains("layer3.10.bn1.running_mean (file: bb_2_10.conv0._batch_norm._mean) [256]"),
        "{message}"
    );
    std::fs::remove_file(&path).unwrap();
}

#[test]
fn a_partial_load_leaves_another_class_count_as_initialised() {
    // The fixture has 3 classes; a 5-class model keeps its own head.
    let (_, report) = PaddleImport::new(fixture("tiny.pdparams"))
        .partial(true)
        .load_into(Tiny::new(5, &device()))
        .unwrap();
    assert_eq!(report.skipped, ["fc.bias", "fc.weight"]);
    let err = load_path(&fixture("tiny.pdparams"))
        .map(|_| ())
        .and_then(|_| {
            PaddleImport::new(fixture("tiny.pdparams"))
                .load_into(Tiny::new(5, &device()))
                .map(|_| ())
        })
        .unwrap_err();
    assert!(err.to_string().contains("fc.weight"), "{err}");
}
