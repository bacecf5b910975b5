//! Import cases particular to a family: old key spellings, files of a sibling model.

mod common;

use common::{device, temp_path};

use burn::tensor::{Tensor, Tolerance};
use model_zoo::Architecture;
use model_zoo::densenet::{DenseNet, DenseNetConfig};
use safetensors::SafeTensors;
use safetensors::tensor::TensorView;
use zoo_import::{ImportError, TorchImport};

/// A small DenseNet (one layer per block), so that the test builds in milliseconds.
fn small_densenet() -> DenseNet {
    DenseNetConfig::new()
        .with_growth_rate(8)
        .with_block_config([2, 1, 1, 1])
        .with_num_init_features(8)
        .with_num_classes(5)
        .init(&device())
        .unwrap()
}

/// torchvision's published spelling of a current key: `denselayer1.norm1.weight` was
/// `denselayer1.norm.1.weight`.
fn old_spelling(key: &str) -> String {
    ["norm1.", "norm2.", "conv1.", "conv2."]
        .iter()
        .find_map(|part| {
            key.contains("denselayer")
                .then(|| key.replacen(part, &format!("{}.{}", &part[..4], &part[4..]), 1))
                .filter(|renamed| renamed != key)
        })
        .unwrap_or_else(|| key.to_string())
}

/// Rewrites a safetensors file with each key passed through `rename`.
fn rewrite_keys(from: &std::path::Path, to: &std::path::Path, rename: impl Fn(&str) -> String) {
    let bytes = std::fs::read(from).unwrap();
    let file = SafeTensors::deserialize(&bytes).unwrap();
    let views: Vec<(String, TensorView)> = file
        .tensors()
        .into_iter()
        .map(|(name, view)| (rename(&name), view))
        .collect();
    safetensors::serialize_to_file(views, None, to).unwrap();
}

fn assert_same_logits(a: &DenseNet, b: &DenseNet) {
    let x = Tensor::<4>::ones([1, 3, 40, 36], &device());
    b.forward(x.clone())
        .into_data()
        .assert_approx_eq::<f32>(&a.forward(x).into_data(), Tolerance::default());
}

#[test]
fn densenet_loads_either_key_spelling_and_refuses_a_mix() {
    let saved = small_densenet();
    let current = temp_path("densenet_current.safetensors");
    zoo_import::save_safetensors(&saved, &current).unwrap();
    let (loaded, _) = TorchImport::new(&current)
        .load_into(small_densenet())
        .unwrap();
    assert_same_logits(&saved, &loaded);

    assert_eq!(
        old_spelling("features.denseblock1.denselayer2.conv1.weight"),
        "features.denseblock1.denselayer2.conv.1.weight"
    );
    let old = temp_path("densenet_old.safetensors");
    rewrite_keys(&current, &old, old_spelling);
    let (loaded, report) = TorchImport::new(&old).load_into(small_densenet()).unwrap();
    assert_same_logits(&saved, &loaded);
    assert_eq!(report.loaded, model_zoo::layers::torch_shapes(&saved).len());

    // Only the first block's first layer in the old spelling.
    let mixed = temp_path("densenet_mixed.safetensors");
    rewrite_keys(&current, &mixed, |key| {
        if key.contains("denseblock1.denselayer1.") {
            old_spelling(key)
        } else {
            key.to_string()
        }
    });
    let err = TorchImport::new(&mixed)
        .load_into(small_densenet())
        .unwrap_err();
    let ImportError::MixedKeySpellings {
        old_key,
        current_key,
        ..
    } = &err
    else {
        panic!("expected MixedKeySpellings, got {err}");
    };
    assert!(
        old_key.contains("denseblock1.denselayer1.")
            && (old_key.contains(".norm.") || old_key.contains(".conv.")),
        "{err}"
    );
    assert!(!current_key.contains("denseblock1.denselayer1."), "{err}");
    assert!(
        err.to_string().contains("densenet_mixed.safetensors"),
        "{err}"
    );
}

/// EfficientNet B0's file into B1 (one block more in five stages) and into B2 (wider): strict
/// errors naming every key the file lacks, and every key of another shape with both shapes.
#[test]
fn efficientnet_b0_weights_into_b1_and_b2_name_each_key() {
    use model_zoo::efficientnet::EfficientNetArch;

    let device = device();
    let build = |arch: EfficientNetArch| arch.config().init(&device).unwrap();
    let path = temp_path("efficientnet_b0.safetensors");
    zoo_import::save_safetensors(&build(EfficientNetArch::B0), &path).unwrap();

    let err = TorchImport::new(&path)
        .load_into(build(EfficientNetArch::B1))
        .unwrap_err();
    let ImportError::KeyMismatch { missing, .. } = &err else {
        panic!("expected KeyMismatch, got {err}");
    };
    let message = err.to_string();
    // B1's second block of stage 1 is not in B0.
    assert!(
        missing
            .iter()
            .any(|(key, shape)| key == "features.1.1.block.0.0.weight" && shape == &[16, 1, 3, 3]),
        "{message}"
    );
    assert!(message.contains("efficientnet_b0.safetensors"), "{message}");

    let err = TorchImport::new(&path)
        .load_into(build(EfficientNetArch::B2))
        .unwrap_err();
    let ImportError::KeyMismatch { shapes, .. } = &err else {
        panic!("expected KeyMismatch, got {err}");
    };
    assert!(!shapes.is_empty(), "{err}");
    let message = err.to_string();
    // Stage 3's output: 40 channels in B0, 48 in B2.
    assert!(
        message.contains(
            "features.3.0.block.3.0.weight: expected [48, 144, 1, 1], found [40, 144, 1, 1]"
        ),
        "{message}"
    );
}

/// Swin's file holds `relative_position_index` (and V2's `relative_coords_table`) as torchvision
/// saves them: each is checked against the model's own and loads nothing; a file without them
/// (saved by the zoo) loads too; a wrong one is an error naming the key and the file.
#[test]
fn swin_buffers_are_checked_against_the_model_s_own() {
    use model_zoo::swin::{SwinConfig, relative_coords_table};
    use safetensors::Dtype;

    let device = device();
    let build = || {
        SwinConfig::swin_v2_t()
            .with_num_classes(3)
            .init(&device)
            .unwrap()
    };
    let saved = build();
    let plain = temp_path("swin_plain.safetensors");
    zoo_import::save_safetensors(&saved, &plain).unwrap();
    TorchImport::new(&plain).load_into(build()).unwrap();

    let index: Vec<u8> = model_zoo::layers::relative_position_index(8)
        .iter()
        .flat_map(|i| i.to_le_bytes())
        .collect();
    let coords: Vec<u8> = relative_coords_table(8)
        .iter()
        .flat_map(|v| v.to_le_bytes())
        .collect();
    let mut wrong_index = index.clone();
    wrong_index[8..16].copy_from_slice(&7i64.to_le_bytes());
    let with_buffers = |to: &std::path::Path, block_1_index: &[u8]| {
        let bytes = std::fs::read(&plain).unwrap();
        let file = SafeTensors::deserialize(&bytes).unwrap();
        let mut views: Vec<(String, TensorView)> = file.tensors();
        for (stage, blocks) in [(1, 2), (3, 2), (5, 6), (7, 2)] {
            for block in 0..blocks {
                let prefix = format!("features.{stage}.{block}.attn");
                let data = if (stage, block) == (1, 1) {
                    block_1_index
                } else {
                    &index
                };
                views.push((
                    format!("{prefix}.relative_position_index"),
                    TensorView::new(Dtype::I64, vec![64 * 64], data).unwrap(),
                ));
                views.push((
                    format!("{prefix}.relative_coords_table"),
                    TensorView::new(Dtype::F32, vec![1, 15, 15, 2], &coords).unwrap(),
                ));
            }
        }
        safetensors::serialize_to_file(views, None, to).unwrap();
    };
    let torch_like = temp_path("swin_buffers.safetensors");
    with_buffers(&torch_like, &index);
    let (_, report) = TorchImport::new(&torch_like).load_into(build()).unwrap();
    assert_eq!(report.ignored, 2 * 12);

    let wrong = temp_path("swin_wrong_buffer.safetensors");
    with_buffers(&wrong, &wrong_index);
    let err = TorchImport::new(&wrong).load_into(build()).unwrap_err();
    let ImportError::BufferMismatch { key, detail, .. } = &err else {
        panic!("expected BufferMismatch, got {err}");
    };
    assert_eq!(key, "features.1.1.attn.relative_position_index");
    assert!(detail.contains("element 1 is 7"), "{err}");
    assert!(
        err.to_string().contains("swin_wrong_buffer.safetensors"),
        "{err}"
    );
}
