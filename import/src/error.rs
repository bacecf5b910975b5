//! Import errors: each names the file and, where it applies, the model and the keys.

use std::fmt;
use std::path::PathBuf;

/// How many keys of each kind an error message lists before it says "and N more".
const LISTED: usize = 12;

/// A key whose tensor has another shape in the file than in the model (PyTorch layout).
/// Where the file spells the key otherwise (Paddle), its spelling follows: `fc.weight (file:
/// out.weight)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShapeMismatch {
    /// The torchvision key (`fc.weight`).
    pub key: String,
    /// The model's shape.
    pub expected: Vec<usize>,
    /// The file's shape.
    pub found: Vec<usize>,
}

impl fmt::Display for ShapeMismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: expected {:?}, found {:?}",
            self.key, self.expected, self.found
        )
    }
}

/// Why weights could not be loaded. A failed load never hands back a partly filled model: the
/// model moved into it is dropped, and no file is written.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// The file could not be opened.
    #[error("cannot open weight file {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The file is not a readable PyTorch, safetensors or burnpack file (truncated, corrupt, or
    /// another format).
    #[error("cannot read {path} as {format}: {message}")]
    Unreadable {
        /// The file.
        path: PathBuf,
        /// The format it was read as.
        format: &'static str,
        /// The reader's explanation.
        message: String,
    },
    /// A pickle (`.pdparams`) names a Python global outside the allow-list of numpy's array
    /// constructors: refused, and nothing in the file was executed.
    #[error(
        "refusing to load {path}: its pickle calls `{global}`, which is not a numpy array \
         constructor (nothing was executed)"
    )]
    UnsafePickle {
        /// The file.
        path: PathBuf,
        /// The global, `module.name` (`os.system`).
        global: String,
    },
    /// The file spells some keys the old way torchvision renames on load (DenseNet's
    /// `denselayer1.norm.1.weight`) and others the current way (`denselayer2.norm1.weight`):
    /// no published or saved file does, so it is refused rather than guessed at.
    #[error(
        "{path}: mixes two spellings of {model}'s keys: `{old_key}` is the old one (as in \
         torchvision's published files) and `{current_key}` the current one; save the file with \
         one of them"
    )]
    MixedKeySpellings {
        /// The file.
        path: PathBuf,
        /// The model's family.
        model: String,
        /// A key in the old spelling.
        old_key: String,
        /// A key in the current spelling.
        current_key: String,
    },
    /// A buffer the model derives from its configuration (Swin's `relative_position_index`)
    /// has other values (or another shape) in the file: the file was saved from a model
    /// configured otherwise.
    #[error(
        "{path}: `{key}` differs from the value {model} derives from its configuration \
         ({detail}); the file is for a differently configured model"
    )]
    BufferMismatch {
        /// The file.
        path: PathBuf,
        /// The model.
        model: String,
        /// The buffer's key.
        key: String,
        /// How it differs.
        detail: String,
    },
    /// The top-level key asked for (or found) does not hold a state_dict.
    #[error(
        "{path}: no state_dict under top-level key `{key}`; top-level keys in the file: {available}"
    )]
    TopLevelKey {
        /// The file.
        path: PathBuf,
        /// The key asked for.
        key: String,
        /// The top-level keys the file has.
        available: String,
    },
    /// The file's keys or shapes do not match the model.
    #[error("{}", describe_mismatch(path, model, missing, unexpected, shapes))]
    KeyMismatch {
        /// The file.
        path: PathBuf,
        /// The model (its name when the caller gave one, else its family).
        model: String,
        /// Keys the model has and the file lacks, with the model's shapes.
        missing: Vec<(String, Vec<usize>)>,
        /// Keys the file has and the model lacks, with the file's shapes.
        unexpected: Vec<(String, Vec<usize>)>,
        /// Keys present in both with different shapes.
        shapes: Vec<ShapeMismatch>,
    },
    /// burn-store refused a tensor while applying it (an unsupported dtype, say).
    #[error("{path}: could not apply weights to {model}:\n  {}", errors.join("\n  "))]
    Apply {
        /// The file.
        path: PathBuf,
        /// The model.
        model: String,
        /// One line per refused tensor.
        errors: Vec<String>,
    },
    /// Writing a burnpack file failed.
    #[error("cannot write {path}: {message}")]
    Write {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        message: String,
    },
}

fn describe_mismatch(
    path: &std::path::Path,
    model: &str,
    missing: &[(String, Vec<usize>)],
    unexpected: &[(String, Vec<usize>)],
    shapes: &[ShapeMismatch],
) -> String {
    let mut out = format!(
        "{} does not fit {model}: {} missing, {} unexpected and {} mis-shaped key(s)",
        path.display(),
        missing.len(),
        unexpected.len(),
        shapes.len()
    );
    let mut section = |title: &str, lines: Vec<String>| {
        if lines.is_empty() {
            return;
        }
        out.push_str(&format!("\n  {title}:"));
        for line in lines.iter().take(LISTED) {
            out.push_str(&format!("\n    {line}"));
        }
        if lines.len() > LISTED {
            out.push_str(&format!("\n    ... and {} more", lines.len() - LISTED));
        }
    };
    section(
        "missing from the file",
        missing.iter().map(|(k, s)| format!("{k} {s:?}")).collect(),
    );
    section(
        "unexpected in the file",
        unexpected
            .iter()
            .map(|(k, s)| format!("{k} {s:?}"))
            .collect(),
    );
    section(
        "shape mismatch",
        shapes.iter().map(ToString::to_string).collect(),
    );
    if !shapes.is_empty() && missing.is_empty() && unexpected.is_empty() {
        out.push_str(
            "\n  (if only the classifier differs, load with TorchImport::partial(true) and train a new head)",
        );
    }
    out
}
