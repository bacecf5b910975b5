//! What the integration tests share: `Tiny`, the small model the fixtures hold, and paths.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use burn::module::Module;
use burn::module::ParamGroup;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::{Linear, LinearConfig, PaddingConfig2d};
use burn::tensor::{Device, Tensor};
use model_zoo::features::Taps;
use model_zoo::layers::relu;
use model_zoo::layers::{BatchNorm, BatchNormConfig, conv2d};
use model_zoo::{
    Architecture, ConfigError, Family, FeatureInfo, Features, ImportHooks, InputSpec, tap,
};

/// The Rust twin of `Tiny` in make_fixtures.py.
#[derive(Module, Debug)]
pub struct Tiny {
    pub conv1: Conv2d,
    pub bn1: BatchNorm,
    pub downsample: (Conv2d, BatchNorm),
    pub fc: Option<Linear>,
}

impl Tiny {
    pub fn new(num_classes: usize, device: &Device) -> Self {
        Self {
            conv1: Conv2dConfig::new([3, 4], [3, 3])
                .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
                .with_bias(false)
                .init(device),
            bn1: BatchNormConfig::new(4).init(device),
            downsample: (
                Conv2dConfig::new([4, 6], [1, 1])
                    .with_bias(false)
                    .init(device),
                BatchNormConfig::new(6).init(device),
            ),
            fc: Some(LinearConfig::new(6, num_classes).init(device)),
        }
    }
}

impl Tiny {
    /// The features before pooling, tapping `conv1`'s (after its BatchNorm and ReLU) and
    /// `downsample`'s outputs.
    fn trunk(&self, x: Tensor<4>, taps: &mut Taps) -> Option<Tensor<4>> {
        let x = relu(self.bn1.forward(conv2d(&self.conv1, x)));
        tap!(taps, 0, x.clone());
        let x = self.downsample.1.forward(conv2d(&self.downsample.0, x));
        tap!(taps, 1, x.clone());
        Some(x)
    }
}

/// Everything the importer asks of a model, for a module outside the zoo.
impl Architecture for Tiny {
    fn family(&self) -> Family {
        Family::new("tiny")
    }

    fn input_spec(&self) -> InputSpec {
        InputSpec {
            channels: self.in_chans(),
            min_size: [1, 1],
            exact: false,
        }
    }

    fn input_conv(&self) -> (&'static str, &Conv2d) {
        ("conv1", &self.conv1)
    }

    fn input_conv_mut(&mut self) -> &mut Conv2d {
        &mut self.conv1
    }

    fn feature_info(&self) -> Vec<FeatureInfo> {
        vec![
            FeatureInfo::new("conv1", 4, 1),
            FeatureInfo::new("downsample.1", 6, 1),
        ]
    }

    fn forward_features_tapped(&self, x: Tensor<4>, taps: &mut Taps) -> Option<Features> {
        self.trunk(x, taps).map(Features::Map)
    }

    fn forward_head(&self, features: Features, pre_logits: bool) -> Tensor<2> {
        let x = features.into_map().expect("a feature map");
        let [b, c, _, _] = x.dims();
        let x = x.mean_dims(&[2, 3]).reshape([b, c]);
        match &self.fc {
            Some(fc) if !pre_logits => fc.forward(x),
            _ => x,
        }
    }

    fn num_features(&self) -> usize {
        6
    }

    fn num_classes(&self) -> usize {
        self.fc.as_ref().map_or(0, |fc| fc.weight.dims()[1])
    }

    fn reset_classifier(self, num_classes: usize, device: &Device) -> Result<Self, ConfigError> {
        Ok(Self {
            fc: Some(LinearConfig::new(6, num_classes).init(device)),
            ..self
        })
    }

    fn without_head(self) -> Self {
        Self { fc: None, ..self }
    }

    fn classifier_group(&self) -> ParamGroup {
        ParamGroup::ids_from_module(self.fc.clone())
    }
}

impl ImportHooks for Tiny {
    fn classifier_prefixes(&self) -> &'static [&'static str] {
        &["fc."]
    }
}

pub fn device() -> Device {
    model_zoo::available_backends()[0].device().unwrap()
}

pub fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

pub fn floats(value: &serde_json::Value) -> Vec<f32> {
    value
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap() as f32)
        .collect()
}

/// `name` in a scratch folder of the target directory (cargo's `CARGO_TARGET_TMPDIR`), one
/// for all runs: each run overwrites the last one's files. A folder per process in the system's
/// temporary directory left 338 MB per `cargo test` behind (85 of them were found).
pub fn temp_path(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("zoo-import-tests");
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

/// A pickle of `{key: array}` as numpy 2 writes one (protocol 4, dtype `<f4`), with `data` as
/// each array's bytes whatever its shape says.
pub fn pickle_of(arrays: &[(String, Vec<usize>, Vec<u8>)]) -> Vec<u8> {
    let text = |p: &mut Vec<u8>, s: &str| {
        p.push(b'X');
        p.extend((s.len() as u32).to_le_bytes());
        p.extend(s.as_bytes());
    };
    let mut p = b"\x80\x04}(".to_vec();
    for (key, shape, data) in arrays {
        text(&mut p, key);
        p.extend(
            b"cnumpy._core.multiarray\n_reconstruct\ncnumpy\nndarray\nK\x00\x85C\x01b\x87R(K\x01(",
        );
        for d in shape {
            p.push(b'J');
            p.extend((*d as i32).to_le_bytes());
        }
        p.extend(b"tcnumpy\ndtype\n");
        text(&mut p, "f4");
        p.extend(b"\x89\x88\x87R(K\x03");
        text(&mut p, "<");
        p.extend(b"NNNJ\xff\xff\xff\xffJ\xff\xff\xff\xffK\x00tb\x89\x8e");
        p.extend((data.len() as u64).to_le_bytes());
        p.extend(data);
        p.extend(b"tb");
    }
    p.extend(b"u.");
    p
}
