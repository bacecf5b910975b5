//! The ten kinds of image a photo folder holds besides 8-bit RGB (grey, grey with alpha, RGBA,
//! palette with and without transparency, 16-bit RGB and grey PNGs, grey and CMYK JPEGs, a JPEG
//! with an EXIF orientation) load as torchvision's ImageFolder loader makes them:
//! `PIL.Image.open(path).convert("RGB")`, recorded by `fixtures/images/make_images.py` in
//! `expected.json`.
//!
//! - **EXIF orientation**: not applied, as torchvision's loader does not call
//!   `ImageOps.exif_transpose`: a photo taken sideways is fed to the model as stored, as in
//!   PyTorch.
//! - **16-bit grey PNGs** are the one deliberate difference: Pillow converts `I;16` to RGB by
//!   clipping each value at 255 (white wherever the value is above 255 of 65535); the zoo scales
//!   16 bits to 8, as both Pillow and the zoo do for a 16-bit RGB PNG.

#![cfg(feature = "image")]

use std::path::{Path, PathBuf};

use model_zoo::transforms::load_image;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/images")
        .join(name)
}

/// The largest difference between `ours` and `theirs`, value by value.
fn max_difference(ours: &[u8], theirs: &[u8]) -> u8 {
    ours.iter()
        .zip(theirs)
        .map(|(a, b)| a.abs_diff(*b))
        .max()
        .unwrap_or(0)
}

#[test]
fn every_image_mode_loads_as_torchvisions_loader_does() {
    let text = std::fs::read_to_string(fixture("expected.json")).unwrap();
    let expected: serde_json::Value = serde_json::from_str(&text).unwrap();
    let cases = expected.as_object().unwrap();
    assert_eq!(cases.len(), 10, "{:?}", cases.keys().collect::<Vec<_>>());
    for (name, case) in cases {
        let image = load_image(fixture(name))
            .unwrap_or_else(|e| panic!("{name}: {e}"))
            .to_rgb8();
        let shape: Vec<u64> = case["shape"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_u64().unwrap())
            .collect();
        // [height, width, 3]: as stored, not rotated by the EXIF orientation.
        assert_eq!(
            [u64::from(image.height()), u64::from(image.width()), 3],
            shape[..],
            "{name}"
        );
        let values = |key: &str| -> Vec<u64> {
            case[key]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_u64().unwrap())
                .collect()
        };
        let pil: Vec<u8> = values("rgb").iter().map(|&v| v as u8).collect();
        let ours = image.as_raw();
        if name == "grey16.png" {
            // Pillow clips; the zoo scales 16 bits to 8 (each grey value on all three channels).
            let scaled: Vec<u8> = values("raw16")
                .iter()
                .flat_map(|&v| [((v as f64) / 257.0).round() as u8; 3])
                .collect();
            assert_eq!(max_difference(ours, &scaled), 0, "{name}");
            assert!(
                max_difference(ours, &pil) > 200,
                "{name}: Pillow no longer clips?"
            );
            continue;
        }
        // PNGs decode to the same values (16-bit ones up to rounding: Pillow keeps the high
        // byte, the zoo rounds). JPEG decoders may differ in their IDCT and upsampling: here by
        // at most 1 (CMYK, whose Adobe inversion both undo, included).
        let tolerance = match name.as_str() {
            "rgb16.png" => 1,
            n if n.ends_with(".jpg") => 2,
            _ => 0,
        };
        let difference = max_difference(ours, &pil);
        assert!(
            difference <= tolerance,
            "{name} ({}): differs from PIL's convert(\"RGB\") by up to {difference}",
            case["mode"]
        );
    }
}
