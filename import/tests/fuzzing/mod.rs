//! The seeded fuzz harness of the zoo's readers, shared by `import/tests/fuzz.rs` (weight files,
//! images) and `trainer/tests/fuzz.rs` (a run directory's JSON files), which include this file
//! by path: test helpers cannot be a crate's dependency.
//!
//! Each seed file is damaged in thousands of seeded ways and read; every case must end in `Ok`
//! or in an `Err` whose message names the file, and none may panic. A fixed xorshift stream makes
//! every run the same, so a failure reproduces from the printed case. No fuzzing crate: the
//! coverage-guided ones need nightly or a separate harness binary, and what is tested here is
//! that no damaged input panics, which a deterministic mutation stream checks within `cargo test`
//! (`cargo test fuzz`).

#![allow(dead_code)] // each test crate uses its part

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::Path;

/// xorshift64*: a small, fixed, seeded stream.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// One damaged copy of `seed`, and what was done to it: byte-level damage.
pub fn mutate(seed: &[u8], rng: &mut Rng) -> (Vec<u8>, String) {
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
pub struct Counts {
    cases: usize,
    ok: usize,
    errors: usize,
    panics: Vec<String>,
    unnamed: Vec<String>,
}

/// Reads a file: `Err` with the reader's message.
pub type Reader<'a> = Box<dyn Fn(&Path) -> Result<(), String> + 'a>;

/// A reader under test: its seed file's name and bytes, and how to read a file.
pub struct Target<'a> {
    name: String,
    seed: Vec<u8>,
    read: Reader<'a>,
    fixed: Vec<(Vec<u8>, String)>,
    counts: Counts,
}

impl<'a> Target<'a> {
    /// A reader of files at `name` (a path relative to the directory given to [`run`]), damaged
    /// from `seed` by [`mutate`]. The file holds the seed again when the target is done.
    pub fn new(name: impl Into<String>, seed: Vec<u8>, read: Reader<'a>) -> Self {
        Self {
            name: name.into(),
            seed,
            read,
            fixed: Vec::new(),
            counts: Counts::default(),
        }
    }

    /// Tries these damaged files (bytes, what was done) first, before the seeded ones.
    pub fn with_fixed_cases(self, fixed: Vec<(Vec<u8>, String)>) -> Self {
        Self { fixed, ..self }
    }

    /// Reads `cases` damaged copies of the seed, written into `dir`.
    fn fuzz(&mut self, cases: usize, rng: &mut Rng, dir: &Path) {
        let path = dir.join(&self.name);
        if self.counts.cases == 0 {
            // Whole, the seed reads.
            std::fs::write(&path, &self.seed).unwrap();
            if let Err(err) = (self.read)(&path) {
                panic!("{}: the undamaged seed fails: {err}", self.name);
            }
            for (bytes, what) in std::mem::take(&mut self.fixed) {
                self.try_case(&path, &bytes, &what);
            }
        }
        for _ in 0..cases {
            let (bytes, what) = mutate(&self.seed, rng);
            self.try_case(&path, &bytes, &what);
        }
        // Whole again, for readers that read it beside another target's file.
        std::fs::write(&path, &self.seed).unwrap();
    }

    /// Writes `bytes` to `path` and reads it: counts how that ended.
    fn try_case(&mut self, path: &Path, bytes: &[u8], what: &str) {
        let case = self.counts.cases;
        std::fs::write(path, bytes).unwrap();
        self.counts.cases += 1;
        match catch_unwind(AssertUnwindSafe(|| (self.read)(path))) {
            Ok(Ok(())) => self.counts.ok += 1,
            Ok(Err(message)) => {
                self.counts.errors += 1;
                let file_name = path.file_name().unwrap().to_string_lossy();
                if !message.contains(file_name.as_ref()) {
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
}

/// Fuzzes every target, `cases` damaged files each (or, with `ZOO_FUZZ_SECONDS` set, as many as
/// fit in that many seconds, the targets in turn 100 cases at a time), from the seed in
/// `ZOO_FUZZ_SEED` (`cargo xtask fuzz` sets both) or a fixed one, with the files written into
/// `dir`. Prints the counts; fails on any panic, and on any error that does not name its file.
pub fn run(targets: &mut [Target], cases: usize, dir: &Path) {
    let seconds: Option<f64> = std::env::var("ZOO_FUZZ_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok());
    let seed: u64 = std::env::var("ZOO_FUZZ_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x9E37_79B9_7F4A_7C15);
    let mut rng = Rng(seed.max(1));
    // Quiet: a panic is counted and reported below, not printed per case.
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    match seconds {
        None => {
            for target in targets.iter_mut() {
                target.fuzz(cases, &mut rng, dir);
            }
        }
        Some(seconds) => {
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs_f64(seconds);
            while std::time::Instant::now() < deadline {
                for target in targets.iter_mut() {
                    target.fuzz(100, &mut rng, dir);
                }
            }
        }
    }
    std::panic::set_hook(hook);

    let mut report = format!("fuzz seed {seed}\n");
    let (mut cases, mut errors, mut panics, mut unnamed) = (0, 0, Vec::new(), Vec::new());
    for target in targets.iter() {
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
