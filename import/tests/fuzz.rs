//! Seeded fuzzing of every reader the zoo has: PyTorch's zip and legacy pickle `.pth`,
//! safetensors, burnpack, Paddle's `.pdparams` (all through the importer into a small model),
//! and the image decoders (`model_zoo::transforms::load_image`, PNG, JPEG, BMP, WebP).
//!
//! Each seed file is damaged (truncation, bit flips, byte runs, inserted and repeated bytes, a
//! wrong magic number, huge numbers) by the shared harness in `fuzzing/`, which says what each
//! case must do: end in `Ok` or in an `Err` naming the file, never panic (`cargo test fuzz`).

mod common;
mod fuzzing;

use common::{Tiny, device, fixture, temp_path};
use fuzzing::Target;
use zoo_import::{Import, load_burnpack, save_burnpack};

fn encoded_image(format: &str) -> Vec<u8> {
    use image::ImageEncoder;
    let (w, h) = (24u32, 16u32);
    let pixels: Vec<u8> = (0..w * h * 3).map(|i| (i * 13 % 251) as u8).collect();
    let rgb = image::ExtendedColorType::Rgb8;
    let mut out = Vec::new();
    match format {
        "jpg" => image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 85)
            .write_image(&pixels, w, h, rgb),
        "png" => image::codecs::png::PngEncoder::new(&mut out).write_image(&pixels, w, h, rgb),
        "bmp" => image::codecs::bmp::BmpEncoder::new(&mut out).write_image(&pixels, w, h, rgb),
        "webp" => {
            image::codecs::webp::WebPEncoder::new_lossless(&mut out).write_image(&pixels, w, h, rgb)
        }
        other => unreachable!("{other}"),
    }
    .unwrap();
    out
}

/// Every weight reader and image decoder, 1000 damaged files each (9000 cases, a few seconds
/// in a debug build): no panic, and every error names its file.
///
/// `cargo xtask fuzz --seconds N` runs this test for N seconds instead (`ZOO_FUZZ_SECONDS`), the
/// readers in turn 100 cases at a time, from the seed in `ZOO_FUZZ_SEED` (printed, so that a
/// failing run reproduces).
#[test]
fn fuzz_every_reader_errs_without_panicking() {
    let device = device();

    let burnpack = temp_path("fuzz-seed.bpk");
    save_burnpack(&Tiny::new(3, &device), &burnpack).unwrap();
    let mut targets: Vec<Target> = Vec::new();
    for (name, file) in [
        ("zip.pth", "tiny.pth"),
        ("legacy.pth", "tiny_legacy.pth"),
        ("tiny.safetensors", "tiny.safetensors"),
        ("tiny.pdparams", "tiny.pdparams"),
    ] {
        let device = device.clone();
        targets.push(Target::new(
            name,
            std::fs::read(fixture(file)).unwrap(),
            Box::new(move |path| {
                Import::new(path)
                    .load_into(Tiny::new(3, &device))
                    .map(|_| ())
                    .map_err(|e| e.to_string())
            }),
        ));
    }
    let bpk_device = device.clone();
    targets.push(Target::new(
        "tiny.bpk",
        std::fs::read(&burnpack).unwrap(),
        Box::new(move |path| {
            // Burnpack's tensors may be read at first use: read one here.
            let model =
                load_burnpack(Tiny::new(3, &bpk_device), path).map_err(|e| e.to_string())?;
            let _ = model
                .fc
                .as_ref()
                .map(|fc| fc.weight.val().sum().into_data());
            Ok(())
        }),
    ));
    for format in ["png", "jpg", "bmp", "webp"] {
        targets.push(Target::new(
            format!("image.{format}"),
            encoded_image(format),
            Box::new(|path| {
                model_zoo::transforms::load_image(path)
                    .map(|_| ())
                    .map_err(|e| e.to_string())
            }),
        ));
    }

    let dir = temp_path("fuzz");
    std::fs::create_dir_all(&dir).unwrap();
    fuzzing::run(&mut targets, 1000, &dir);
}

/// A pickle nested 100,000 lists deep, as a legacy `.pth`: an error, not a stack overflow.
#[test]
fn fuzz_deeply_nested_pickle_is_an_error() {
    let depth = 100_000;
    let mut pickle = vec![0x80, 0x02];
    pickle.extend(std::iter::repeat_n(b']', depth));
    pickle.extend(std::iter::repeat_n(b'a', depth - 1));
    pickle.push(b'.');
    let path = temp_path("fuzz-deep.pth");
    std::fs::write(&path, &pickle).unwrap();
    let err = Import::new(&path)
        .load_into(Tiny::new(3, &device()))
        .unwrap_err();
    assert!(err.to_string().contains("fuzz-deep.pth"), "{err}");
}

/// A PNG whose header declares 100000 x 100000 pixels (30 GB of RGB) over one pixel of data:
/// refused before anything that size is allocated.
#[test]
fn fuzz_image_with_absurd_dimensions_is_refused_before_allocating() {
    let mut png = encoded_image("png");
    // IHDR's width and height follow the signature (8), the chunk length (4) and type (4).
    png[16..20].copy_from_slice(&100_000u32.to_be_bytes());
    png[20..24].copy_from_slice(&100_000u32.to_be_bytes());
    // The chunk's CRC over its type and data, so only the size is wrong.
    let crc = crc32(&png[12..29]);
    png[29..33].copy_from_slice(&crc.to_be_bytes());
    let path = temp_path("fuzz-huge.png");
    std::fs::write(&path, &png).unwrap();
    let err = model_zoo::transforms::load_image(&path).unwrap_err();
    assert!(err.to_string().contains("fuzz-huge.png"), "{err}");
}

/// CRC-32 (IEEE), as PNG chunks carry it.
fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in bytes {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}
