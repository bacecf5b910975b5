//! Seeded fuzzing of every reader the zoo has: PyTorch's zip and legacy pickle `.pth`,
//! safetensors, burnpack, Paddle's `.pdparams` (all through the importer into a small model),
//! and the image decoders (`model_zoo::transforms::load_image`, PNG, JPEG, BMP, WebP).
//!
//! Each seed file is damaged in thousands of seeded ways (truncation, bit flips, byte runs,
//! inserted and repeated bytes, a wrong magic number) and read; every case must end in `Ok` or
//! in an `Err` whose message names the file, and none may panic. A fixed xorshift stream makes
//! every run the same, so a failure reproduces from the printed case. No fuzzing crate: the
//! coverage-guided ones need nightly or a separate harness binary, and what is tested here is
//! that no damaged input panics, which a deterministic mutation stream checks within `cargo test`
//! (`cargo test fuzz`).

mod common;

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::Path;

use common::{Tiny, device, fixture, temp_path};
use zoo_import::{Import, load_burnpack, save_burnpack};

/// xorshift64*: a small, fixed, seeded stream.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// One damaged copy of `seed`, and what was done to it.
fn mutate(seed: &[u8], rng: &mut Rng) -> (Vec<u8>, String) {
    let mut bytes = seed.to_vec();
    let len = bytes.len();
    let what = match rng.below(7) {
        0 => {
            let at = rng.below(len);
            bytes.truncate(at);
            format!("truncated to {at}")
        }
        1 => {
            let flips = 1 + rng.below(8);
            for _ in 0..flips {
                let at = rng.below(len);
                bytes[at] ^= 1 << rng.below(8);
            }
            format!("{flips} bit flips")
        }
        2 => {
            let at = rng.below(len);
            let run = (1 + rng.below(64)).min(len - at);
            let fill = match rng.below(3) {
                0 => 0x00,
                1 => 0xFF,
                _ => rng.next() as u8,
            };
            bytes[at..at + run].fill(fill);
            format!("{run} bytes at {at} set to {fill:#04x}")
        }
        3 => {
            let at = rng.below(len);
            let run = 1 + rng.below(64);
            let inserted: Vec<u8> = (0..run).map(|_| rng.next() as u8).collect();
            bytes.splice(at..at, inserted);
            format!("{run} random bytes inserted at {at}")
        }
        4 => {
            let at = rng.below(len);
            let run = (1 + rng.below(256)).min(len - at);
            let copy = bytes[at..at + run].to_vec();
            let to = rng.below(len);
            bytes.splice(to..to, copy);
            format!("{run} bytes from {at} repeated at {to}")
        }
        5 => {
            for b in bytes.iter_mut().take(4) {
                *b = rng.next() as u8;
            }
            "a wrong magic number".to_string()
        }
        _ => {
            // A large number where a length or shape is likely: a random 4- or 8-byte window
            // set to a huge value.
            let width = if rng.below(2) == 0 { 4 } else { 8 };
            let at = rng.below(len.saturating_sub(width));
            let huge = u64::MAX - rng.below(1 << 20) as u64;
            let end = (at + width).min(len);
            bytes[at..end].copy_from_slice(&huge.to_le_bytes()[..end - at]);
            format!("a huge {width}-byte number at {at}")
        }
    };
    (bytes, what)
}

/// How the cases of one reader ended.
#[derive(Default, Debug)]
struct Counts {
    cases: usize,
    ok: usize,
    errors: usize,
    panics: Vec<String>,
    unnamed: Vec<String>,
}

/// Reads a file: `Err` with the reader's message.
type Reader<'a> = Box<dyn Fn(&Path) -> Result<(), String> + 'a>;

/// A reader under test: its seed file's name and bytes, and how to read a file.
struct Target<'a> {
    name: String,
    seed: Vec<u8>,
    read: Reader<'a>,
    counts: Counts,
}

impl Target<'_> {
    /// Reads `cases` damaged copies of the seed.
    fn fuzz(&mut self, cases: usize, rng: &mut Rng) {
        let path = temp_path(&format!("fuzz-{}", self.name));
        let file_name = path.file_name().unwrap().to_string_lossy().into_owned();
        if self.counts.cases == 0 {
            // Whole, the seed reads.
            std::fs::write(&path, &self.seed).unwrap();
            if let Err(err) = (self.read)(&path) {
                panic!("{}: the undamaged seed fails: {err}", self.name);
            }
        }
        for _ in 0..cases {
            let case = self.counts.cases;
            let (bytes, what) = mutate(&self.seed, rng);
            std::fs::write(&path, &bytes).unwrap();
            self.counts.cases += 1;
            match catch_unwind(AssertUnwindSafe(|| (self.read)(&path))) {
                Ok(Ok(())) => self.counts.ok += 1,
                Ok(Err(message)) => {
                    self.counts.errors += 1;
                    if !message.contains(&file_name) {
                        let name = &self.name;
                        self.counts
                            .unnamed
                            .push(format!("{name} case {case} ({what}): {message}"));
                    }
                }
                Err(_) => self
                    .counts
                    .panics
                    .push(format!("{} case {case} ({what})", self.name)),
            }
        }
        let _ = std::fs::remove_file(&path);
    }
}

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
    let seconds: Option<f64> = std::env::var("ZOO_FUZZ_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok());
    let seed: u64 = std::env::var("ZOO_FUZZ_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x9E37_79B9_7F4A_7C15);
    let mut rng = Rng(seed.max(1));
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
        targets.push(Target {
            name: name.into(),
            seed: std::fs::read(fixture(file)).unwrap(),
            read: Box::new(move |path| {
                Import::new(path)
                    .load_into(Tiny::new(3, &device))
                    .map(|_| ())
                    .map_err(|e| e.to_string())
            }),
            counts: Counts::default(),
        });
    }
    let bpk_device = device.clone();
    targets.push(Target {
        name: "tiny.bpk".into(),
        seed: std::fs::read(&burnpack).unwrap(),
        read: Box::new(move |path| {
            // Burnpack's tensors may be read at first use: read one here.
            let model =
                load_burnpack(Tiny::new(3, &bpk_device), path).map_err(|e| e.to_string())?;
            let _ = model.fc.weight.val().sum().into_data();
            Ok(())
        }),
        counts: Counts::default(),
    });
    for format in ["png", "jpg", "bmp", "webp"] {
        targets.push(Target {
            name: format!("image.{format}"),
            seed: encoded_image(format),
            read: Box::new(|path| {
                model_zoo::transforms::load_image(path)
                    .map(|_| ())
                    .map_err(|e| e.to_string())
            }),
            counts: Counts::default(),
        });
    }

    // Quiet: a panic is counted and reported below, not printed per case.
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    match seconds {
        None => {
            for target in &mut targets {
                target.fuzz(1000, &mut rng);
            }
        }
        Some(seconds) => {
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs_f64(seconds);
            while std::time::Instant::now() < deadline {
                for target in &mut targets {
                    target.fuzz(100, &mut rng);
                }
            }
        }
    }
    std::panic::set_hook(hook);

    let mut report = format!("fuzz seed {seed}\n");
    let (mut cases, mut errors, mut panics, mut unnamed) = (0, 0, Vec::new(), Vec::new());
    for target in &targets {
        let counts = &target.counts;
        report.push_str(&format!(
            "{}: {} cases, {} read, {} errors, {} panics\n",
            target.name,
            counts.cases,
            counts.ok,
            counts.errors,
            counts.panics.len()
        ));
        cases += counts.cases;
        errors += counts.errors;
        panics.extend(counts.panics.iter().cloned());
        unnamed.extend(counts.unnamed.iter().cloned());
    }
    println!(
        "{report}fuzz: {cases} cases, {errors} errors, {} panics",
        panics.len()
    );
    assert!(panics.is_empty(), "{report}panics:\n{}", panics.join("\n"));
    assert!(
        unnamed.is_empty(),
        "errors that do not name their file:\n{}",
        unnamed[..unnamed.len().min(20)].join("\n")
    );
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
