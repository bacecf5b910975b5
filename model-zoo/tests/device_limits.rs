//! What a device cannot run is an error value, and the device lives on: on wgpu (lavapipe in CI,
//! whose 128 MiB limit on one storage buffer is also WebGPU's default).

#![cfg(feature = "wgpu")]

use burn::nn::LinearConfig;
use burn::tensor::{Device, Distribution, Tensor};
use model_zoo::Architecture;
use model_zoo::layers::VectorLayer;
use model_zoo::vgg::VggConfig;
use model_zoo::{Backend, DeviceError, InputError, Model};

fn wgpu() -> Device {
    Backend::Wgpu
        .device()
        .expect("a wgpu adapter: lavapipe (`bash .ci/setup`) on a machine without a GPU")
}

fn logits_are_finite(model: &Model, x: Tensor<4>, classes: usize) {
    let logits = model_zoo::read_back(model.try_forward(x).unwrap(), "logits")
        .unwrap()
        .try_to_vec::<f32>()
        .unwrap();
    assert_eq!(logits.len(), classes);
    assert!(logits.iter().all(|v| v.is_finite()), "{logits:?}");
}

#[test]
fn a_layer_over_the_limit_is_an_error_and_the_zoos_blocks_run() {
    let device = wgpu();
    let limit = model_zoo::max_tensor_bytes(&device).expect("wgpu states a limit");
    let x = || Tensor::<4>::random([1, 3, 32, 32], Distribution::Normal(0.0, 1.0), &device);

    // VGG-11 as the zoo builds it: classifier.0 ([4096, 25088], 392 MiB) in blocks under 128
    // MiB, so it runs on a device that binds at most 128 MiB.
    let mut vgg = VggConfig::vgg11()
        .with_num_classes(10)
        .init(&device)
        .unwrap();
    assert!(matches!(vgg.classifier[0], VectorLayer::BlockedLinear(_)));
    logits_are_finite(&Model::Vgg(vgg.clone()), x(), 10);

    // The same layer as one plain `Linear`: named, with its size and the device's limit.
    vgg.classifier[0] = VectorLayer::Linear(LinearConfig::new(25088, 4096).init(&device));
    let oversized = Model::Vgg(vgg);
    let err = oversized.try_forward(x()).unwrap_err();
    let InputError::Device(DeviceError::TensorTooLarge {
        tensor,
        shape,
        bytes,
        limit: stated,
        ..
    }) = &err
    else {
        panic!("not a device error: {err}");
    };
    assert_eq!(tensor, "classifier.0.weight");
    assert_eq!(&shape[..], &[25088, 4096]);
    assert_eq!(*bytes, 25088 * 4096 * 4);
    assert_eq!(*stated, limit);
    let message = err.to_string();
    eprintln!("{message}");
    assert!(
        message.contains("classifier.0.weight") && message.contains("392.0 MiB"),
        "{message}"
    );
    assert!(oversized.check_device(&device).is_err());
    // The CPU backends have no such limit.
    assert!(
        oversized
            .check_device(&Backend::Flex.device().unwrap())
            .is_ok()
    );

    // The device still works.
    let small = model_zoo::create("resnet18", 10, &device).unwrap();
    logits_are_finite(&small, x(), 10);
}

#[test]
fn an_activation_over_the_limit_is_an_error_and_the_device_lives_on() {
    let device = wgpu();
    let model = model_zoo::create("resnet18", 10, &device).unwrap();
    // conv1's output, [1, 64, 1050, 1050] in f32, is 269 MiB; the input itself (50 MiB) fits.
    let x = Tensor::<4>::zeros([1, 3, 2100, 2100], &device);
    let logits = model.try_forward(x).expect("the input and the weights fit");
    let err = model_zoo::read_back(logits, "logits").unwrap_err();
    assert!(
        matches!(err, DeviceError::Execution { bytes: Some(b), .. } if b > 128 << 20),
        "{err}"
    );
    let message = err.to_string();
    eprintln!("{message}");
    assert!(message.contains("over its limit of 128.0 MiB"), "{message}");
    // Nothing is poisoned: the same model runs the next input.
    let x = Tensor::<4>::random([1, 3, 64, 64], Distribution::Normal(0.0, 1.0), &device);
    logits_are_finite(&model, x, 10);
}
