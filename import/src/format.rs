//! Telling weight files apart by their content, and the importer that does so for the caller.

use std::io::Read;
use std::path::{Path, PathBuf};

use burn::store::burn_pack::MAGIC_NUMBER;
use model_zoo::Importable;

use crate::apply::{ImportReport, Options, import_options};
use crate::{ImportError, PaddleImport, TorchImport};

/// The formats a weight file can be in, as its first bytes tell.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WeightFormat {
    /// `torch.save`'s zip archive (PyTorch 1.6 and later).
    PyTorchZip,
    /// `torch.save`'s legacy format: a pickle opening with PyTorch's magic number, or a tar.
    PyTorchLegacy,
    /// A safetensors file.
    Safetensors,
    /// A plain pickle of a dict, as `paddle.save` writes `.pdparams`.
    Pdparams,
    /// Burn's burnpack.
    Burnpack,
    /// None of these.
    Unknown,
}

/// The first pickle opcodes of PyTorch's legacy format: protocol 2, then `LONG1` of
/// `torch.serialization.MAGIC_NUMBER` (0x1950a86a20f9469cfc6c).
const TORCH_LEGACY_MAGIC: &[u8] = b"\x80\x02\x8a\x0a\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19";

impl WeightFormat {
    /// Reads the first bytes of `path` and names its format. Only opening or reading fails.
    pub fn detect(path: &Path) -> Result<Self, ImportError> {
        let io = |source| ImportError::Io {
            path: path.to_path_buf(),
            source,
        };
        let mut head = Vec::with_capacity(512);
        std::fs::File::open(path)
            .map_err(io)?
            .take(512)
            .read_to_end(&mut head)
            .map_err(io)?;
        Ok(Self::of(&head))
    }

    /// The format of a file beginning with `head` (its first 512 bytes, or all of a shorter
    /// file).
    pub fn of(head: &[u8]) -> Self {
        if head.starts_with(b"PK\x03\x04") {
            return Self::PyTorchZip;
        }
        if head.starts_with(TORCH_LEGACY_MAGIC) || head.get(257..262) == Some(b"ustar") {
            return Self::PyTorchLegacy;
        }
        if head.starts_with(&MAGIC_NUMBER.to_le_bytes()) {
            return Self::Burnpack;
        }
        // Pickle: PROTO 2-5, an optional FRAME (protocol 4+), then EMPTY_DICT.
        if let [0x80, 2..=5, rest @ ..] = head {
            let body = match rest {
                [0x95, _, _, _, _, _, _, _, _, body @ ..] => body,
                body => body,
            };
            if body.first() == Some(&b'}') {
                return Self::Pdparams;
            }
        }
        // safetensors: a little-endian u64 header length, then the JSON header.
        if head.len() > 8 && head[8] == b'{' {
            let mut len = [0; 8];
            len.copy_from_slice(&head[..8]);
            if u64::from_le_bytes(len) < 100_000_000 {
                return Self::Safetensors;
            }
        }
        Self::Unknown
    }
}

/// Loads a weight file of any format the zoo reads into a model, choosing the reader by the
/// file's content: [`PaddleImport`] for a `.pdparams` pickle, [`TorchImport`] for the rest
/// (PyTorch zip or legacy, safetensors). The same strict and partial semantics as either.
///
/// ```no_run
/// use model_zoo::resnet::ResNetConfig;
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let device = burn::tensor::Device::flex();
/// let model = ResNetConfig::resnet50().init(&device)?;
/// let (model, report) = zoo_import::Import::new("resnet50.pdparams").load_into(model)?;
/// println!("{report}");
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct Import {
    options: Options,
}

impl Import {
    /// An import of `path`, in whatever format its content says.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self {
            options: Options::new(path.into()),
        }
    }

    /// For a PyTorch checkpoint: reads the state_dict nested under this top-level key (see
    /// [`TorchImport::top_level_key`]). Paddle files have no nesting; the key is ignored there.
    pub fn top_level_key(mut self, key: impl Into<String>) -> Self {
        self.options.top_level_key = Some(key.into());
        self
    }

    import_options!();

    /// The format the file's content says it is in.
    pub fn format(&self) -> Result<WeightFormat, ImportError> {
        WeightFormat::detect(&self.options.path)
    }

    /// Fills `model` from the file, with the reader its format needs.
    pub fn load_into<M: Importable>(&self, model: M) -> Result<(M, ImportReport), ImportError> {
        match self.format()? {
            WeightFormat::Pdparams => {
                PaddleImport::with_options(self.options.clone()).load_into(model)
            }
            WeightFormat::Burnpack => Err(ImportError::Unreadable {
                path: self.options.path.clone(),
                format: "PyTorch, safetensors or Paddle file",
                message: "this is a Burn burnpack file: load it with zoo_import::load_burnpack"
                    .into(),
            }),
            _ => TorchImport::with_options(self.options.clone()).load_into(model),
        }
    }
}
