//! `zoo-train import MODEL`: download torchvision's weights (verified, cached), convert them to
//! Burn's format, check the result loads and runs, and say how to use it.

use model_zoo::Architecture;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use burn::tensor::{Distribution, Tensor};
use model_zoo::Backend;
use zoo_import::hub::{WeightsCache, import_published, published_as, sha256_file};
use zoo_import::{load_burnpack, save_burnpack};

/// Arguments of `zoo-train import`.
#[derive(clap::Args)]
pub struct ImportArgs {
    /// Model name (`resnet50`).
    model: String,
    /// Which published weights: torchvision's `DEFAULT`, `IMAGENET1K_V1`, `IMAGENET1K_V2`, ...,
    /// or paddle.vision's `PADDLE_IMAGENET` (ResNet-18 to 152).
    #[arg(long, default_value = "DEFAULT")]
    weights: String,
    /// Convert this local file instead of downloading: PyTorch (.pth), safetensors or
    /// PaddlePaddle (.pdparams, either layout), told apart by content. When it is a published
    /// file (same SHA-256 prefix, or Paddle's MD5), the result goes into the cache where
    /// `zoo_import::pretrained` finds it.
    #[arg(long, value_name = "FILE")]
    from: Option<PathBuf>,
    /// Classes of the file's classifier, for a `--from` checkpoint fine-tuned on other classes.
    #[arg(long)]
    num_classes: Option<usize>,
    /// Where to write the Burn file (default: the cache).
    #[arg(long, value_name = "PATH")]
    out: Option<PathBuf>,
    /// Backend that runs the check forward pass.
    #[arg(long, default_value_t = model_zoo::available_backends()[0])]
    backend: Backend,
    /// Cache directory (default: $ZOO_CACHE, else the platform cache dir).
    #[arg(long, value_name = "DIR")]
    cache: Option<PathBuf>,
    /// Convert again even if the Burn file exists.
    #[arg(long)]
    force: bool,
}

/// Runs `zoo-train import`.
pub fn run(args: &ImportArgs) -> Result<bool> {
    let info = model_zoo::model_info(&args.model)?;
    let device = args.backend.device()?;
    let cache = match &args.cache {
        Some(dir) => WeightsCache::new(dir),
        None => WeightsCache::from_env(),
    };
    let descriptor = if info.weights.is_empty() && args.from.is_some() {
        None
    } else {
        Some(info.weights(&args.weights)?)
    };

    // 1-2. The PyTorch file: given, or from the caches (the zoo's, PyTorch's hub), or downloaded
    // and verified into the zoo's cache.
    let started = Instant::now();
    let (torch_file, descriptor, published) = match (&args.from, descriptor) {
        (Some(file), descriptor) => {
            // Any of the model's published files (torchvision's or Paddle's), by its digest.
            let published_as = published_as(info, file);
            let digest = sha256_file(file)?;
            match published_as {
                Some(d) => println!(
                    "{}: {} {}… is the published {} {}",
                    file.display(),
                    d.checksum.algorithm(),
                    d.checksum.short(),
                    info.name,
                    d.name
                ),
                None => println!(
                    "{}: SHA-256 {}… is not a published file of {}; converting it as a custom \
                     checkpoint",
                    file.display(),
                    &digest[..12],
                    info.name
                ),
            }
            let published = published_as.is_some();
            (file.clone(), published_as.or(descriptor), published)
        }
        (None, Some(descriptor)) => {
            let cached = cache.published_path(descriptor);
            if cached.is_file() {
                println!("cached: {}", cached.display());
            } else {
                println!(
                    "fetching {} ({:.1} MB): PyTorch's hub cache, else the download",
                    cache.url(descriptor),
                    descriptor.file_size_mb
                );
            }
            let path = cache.fetch(descriptor)?;
            if path != cached {
                println!("from PyTorch's hub cache: {}", path.display());
            }
            println!(
                "verified {} {} ({:.1}s)",
                descriptor.checksum.algorithm(),
                descriptor.checksum.short(),
                started.elapsed().as_secs_f32()
            );
            (path, Some(descriptor), true)
        }
        (None, None) => bail!("{} has no pretrained weights; pass --from FILE", info.name),
    };

    // 3. Convert (strictly) to Burn's format.
    let num_classes = args
        .num_classes
        .or(descriptor.map(|d| d.num_classes()))
        .unwrap_or(1000);
    let out = match (&args.out, descriptor) {
        (Some(out), _) => out.clone(),
        (None, Some(d)) if published => cache.burnpack_path(info.name, d),
        (None, _) => {
            let stem = torch_file
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_else(|| "weights".into());
            cache
                .root()
                .join("burn")
                .join(format!("{}-{stem}.bpk", info.name))
        }
    };
    if out.is_file() && !args.force {
        println!("already converted: {}", out.display());
    } else {
        let started = Instant::now();
        // A published file builds torchvision's with-weights model (GoogLeNet's and Inception
        // v3's input transform); a custom checkpoint its `weights=None` model.
        let model = if published {
            import_published(info, num_classes, &torch_file, &device)?
        } else {
            let model = info.create(num_classes, &device)?;
            zoo_import::Import::new(&torch_file)
                .model_name(info.name)
                .load_into(model)?
                .0
        };
        save_burnpack(&model, &out)?;
        println!(
            "converted {} -> {} ({:.1}s)",
            torch_file.display(),
            out.display(),
            started.elapsed().as_secs_f32()
        );
    }

    // 4. Load the Burn file and run one forward pass (the file records the input transform and
    // conforms the aux heads).
    let started = Instant::now();
    let model = load_burnpack(info.create(num_classes, &device)?, &out)
        .with_context(|| format!("reloading {}", out.display()))?;
    let side = descriptor.map_or(224, |d| d.preprocess.crop);
    let x = Tensor::<4>::random([1, 3, side, side], Distribution::Normal(0.0, 1.0), &device);
    let logits: Vec<f32> = model_zoo::read_back(model.try_forward(x)?, "logits")?
        .try_to_vec::<f32>()
        .map_err(|e| anyhow::anyhow!("reading logits: {e:?}"))?;
    if logits.len() != num_classes || logits.iter().any(|v| !v.is_finite()) {
        bail!(
            "{}: the check forward pass gave {} logits, {} of them not finite",
            out.display(),
            logits.len(),
            logits.iter().filter(|v| !v.is_finite()).count()
        );
    }
    println!(
        "checked: loads and runs on {} ({num_classes} finite logits, {:.1}s)",
        args.backend,
        started.elapsed().as_secs_f32()
    );

    // 5. Where it is and how to use it.
    print_snippet(
        info.name,
        descriptor.map(|d| d.name),
        published,
        num_classes,
        &out,
    );
    Ok(true)
}

fn print_snippet(
    model: &str,
    weights: Option<&str>,
    published: bool,
    num_classes: usize,
    out: &Path,
) {
    println!("\n{}\n", out.display());
    println!("// Cargo.toml: model-zoo, zoo-import, burn = \"0.22\"");
    println!("let device = model_zoo::Backend::Flex.device()?;");
    match weights {
        Some(weights) if published => {
            println!("let model = zoo_import::pretrained(\"{model}\", \"{weights}\", &device)?;");
            println!("// or, from this file:");
        }
        _ => {}
    }
    println!(
        "let model = zoo_import::load_burnpack(model_zoo::create(\"{model}\", {num_classes}, &device)?, {:?})?;",
        out.display().to_string()
    );
}
