//! `zoo-train list` and `zoo-train info`: what the zoo has, and what a model is made of.

use anyhow::Result;
use burn::module::{Module, ModuleVisitor, Param};
use burn::tensor::Tensor;

/// Arguments of `zoo-train list`.
#[derive(clap::Args)]
pub struct ListArgs {
    /// Glob over model names (`resnet*`, `*resnext*`); all models when absent.
    pattern: Option<String>,
    /// Only the names, one a line (for scripts).
    #[arg(long)]
    names: bool,
    /// The book's models page (`docs/src/models-generated.md`): a Markdown table of every
    /// matching model, its size, cost, input and published weights with their accuracy.
    #[arg(long, conflicts_with = "names")]
    markdown: bool,
}

/// Arguments of `zoo-train info`.
#[derive(clap::Args)]
pub struct InfoArgs {
    /// Model name (`resnet50`).
    model: String,
    /// Classes of the classifier (default: the model's own, 1000 or 10 for the CIFAR models).
    #[arg(long)]
    num_classes: Option<usize>,
    /// Also list every parameter and buffer as PyTorch names it, with its shape (what
    /// `for n, p in model.state_dict().items(): print(n, p.shape)` prints).
    #[arg(long)]
    params: bool,
    /// Tree depth to print (0: the whole tree).
    #[arg(long, default_value_t = 3)]
    depth: usize,
}

/// `zoo-train list [PATTERN]`.
pub fn list(args: &ListArgs) -> Result<bool> {
    let pattern = args.pattern.as_deref().unwrap_or("*");
    let models = model_zoo::list_models(pattern);
    let segmenters = model_zoo::segmentation::list_models(pattern);
    if models.is_empty() && segmenters.is_empty() {
        println!("no model matches `{pattern}`");
        return Ok(false);
    }
    if args.names {
        for name in models
            .iter()
            .map(|m| m.name)
            .chain(segmenters.iter().map(|m| m.name))
        {
            println!("{name}");
        }
        return Ok(true);
    }
    if args.markdown {
        print!("{}", markdown_table(&models, &segmenters));
        return Ok(true);
    }
    if !models.is_empty() {
        println!(
            "{:<18} {:<13} {:>9} {:>7} {:>5} {:>9}  weights (acc@1 on ImageNet-1K; * = DEFAULT)",
            "model", "family", "params", "GFLOPs", "at", "min input"
        );
    }
    for info in &models {
        let weights = weights_summary(info, false);
        println!(
            "{:<18} {:<13} {:>8.2}M {:>7.3} {:>5} {:>9}  {weights}",
            info.name,
            info.family.name(),
            info.params as f64 / 1e6,
            info.gflops,
            info.image_size,
            format!(
                "{}{}x{}",
                if info.input.exact { "=" } else { "" },
                info.input.min_size[0],
                info.input.min_size[1]
            ),
        );
    }
    if !segmenters.is_empty() {
        if !models.is_empty() {
            println!();
        }
        println!(
            "{:<30} {:>9} {:>8}  segmentation weights (mIoU / pixel acc on COCO val2017, VOC labels; * = DEFAULT)",
            "segmentation model", "params", "GFLOPs"
        );
        for info in &segmenters {
            println!(
                "{:<30} {:>8.2}M {:>8.3}  {}",
                info.name,
                info.params as f64 / 1e6,
                info.gflops,
                segmentation_weights(info, false)
            );
        }
    }
    match (models.len(), segmenters.len()) {
        (n, 0) => println!("{n} models"),
        (0, s) => println!("{s} segmentation models"),
        (n, s) => println!("{n} models and {s} segmentation models"),
    }
    Ok(true)
}

/// A segmentation model's published weights with their mIoU and pixel accuracy.
fn segmentation_weights(
    info: &model_zoo::segmentation::SegmentationInfo,
    markdown: bool,
) -> String {
    let (quote, star) = if markdown { ("`", "\\*") } else { ("", "*") };
    info.weights
        .iter()
        .map(|w| {
            let star = if w.is_default { star } else { "" };
            format!(
                "{quote}{}{quote}{star} {:.1}% / {:.1}%",
                w.name, w.miou, w.pixel_acc
            )
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// A model's published weights with their acc@1, `DEFAULT` starred (escaped and the names
/// quoted as code for `markdown`), or what it has instead.
fn weights_summary(info: &model_zoo::ModelInfo, markdown: bool) -> String {
    if !info.torchvision {
        return if markdown {
            format!("the zoo's own ({} classes)", info.num_classes)
        } else {
            format!("- (the zoo's own, {} classes)", info.num_classes)
        };
    }
    if info.weights.is_empty() {
        return "-".to_string();
    }
    let (quote, star) = if markdown { ("`", "\\*") } else { ("", "*") };
    info.weights
        .iter()
        .map(|w| {
            let star = if w.is_default { star } else { "" };
            match w.acc1 {
                Some(acc1) => format!("{quote}{}{quote}{star} {acc1:.2}%", w.name),
                None => format!("{quote}{}{quote}{star}", w.name),
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// The models page of the book: `zoo-train list --markdown > docs/src/models-generated.md`.
fn markdown_table(
    models: &[&model_zoo::ModelInfo],
    segmenters: &[&model_zoo::segmentation::SegmentationInfo],
) -> String {
    let mut out = String::from(
        "# Models (generated)\n\nGenerated from the registry by `cargo run -p zoo-trainer -- list \
         --markdown > docs/src/models-generated.md`: do not edit by hand. Accuracy is the \
         published top-1 on ImageNet-1K (torchvision's, or Paddle's for `PADDLE_IMAGENET`); `*` \
         marks `DEFAULT`; the input is the eval crop and the smallest size the model takes (`=`: \
         the only one).\n\n| model | family | parameters | GFLOPs | eval crop | smallest input | \
         weights |\n|---|---|---:|---:|---:|---:|---|\n",
    );
    for info in models {
        let weights = weights_summary(info, true);
        out.push_str(&format!(
            "| `{}` | {} | {} | {:.3} | {} | {}{}x{} | {weights} |\n",
            info.name,
            info.family.name(),
            thousands(info.params),
            info.gflops,
            info.image_size,
            if info.input.exact { "=" } else { "" },
            info.input.min_size[0],
            info.input.min_size[1],
        ));
    }
    out.push_str(&format!("\n{} models.\n", models.len()));
    if !segmenters.is_empty() {
        out.push_str(
            "\n## Semantic segmentation\n\nmIoU and pixel accuracy on COCO val2017 with VOC's \
             labels (torchvision's), at 520 on the shorter side; GFLOPs for a 520x520 image; \
             parameters with the aux head where the weights have one.\n\n| model | parameters | \
             GFLOPs | weights (mIoU / pixel accuracy) |\n|---|---:|---:|---|\n",
        );
        for info in segmenters {
            out.push_str(&format!(
                "| `{}` | {} | {:.3} | {} |\n",
                info.name,
                thousands(info.params),
                info.gflops,
                segmentation_weights(info, true)
            ));
        }
        out.push_str(&format!("\n{} segmentation models.\n", segmenters.len()));
    }
    out
}

/// The module tree (to `args.depth`) and, with `args.params`, every key with its shape.
fn print_modules<M: Module>(model: &M, args: &InfoArgs) {
    let mut tree = Tree::default();
    model.visit(&mut tree);
    println!("{:<44} {:>12}", "module", "parameters");
    for node in tree.modules() {
        if args.depth != 0 && node.depth > args.depth {
            continue;
        }
        let kind = node.kind.as_deref().unwrap_or("?");
        let label = format!("{}{} ({kind})", "  ".repeat(node.depth), node.name);
        println!("{label:<44} {:>12}", thousands(node.params));
    }
    if args.params {
        println!("\n{:<48} {:<20} {:>12}", "state_dict key", "shape", "numel");
        // torchvision's keys and shapes: weights kept in row blocks are shown whole.
        for (name, shape) in model_zoo::layers::torch_shapes(model) {
            let numel: usize = shape.iter().product();
            println!(
                "{:<48} {:<20} {:>12}",
                name,
                format!("{shape:?}"),
                thousands(numel)
            );
        }
    }
}

/// `zoo-train info` of a segmentation model: as torchvision builds it for its weights (the
/// aux head included where they have one).
fn segmentation_info(
    info: &model_zoo::segmentation::SegmentationInfo,
    args: &InfoArgs,
    device: &burn::tensor::Device,
) -> Result<bool> {
    let num_classes = args.num_classes.unwrap_or(21);
    let model = info.create_for_weights(num_classes, device)?;
    println!(
        "{} (segmentation, backbone {}, {} classes{}): {} parameters, {:.3} GFLOPs at 520x520\n",
        info.name,
        info.arch.backbone_name(),
        num_classes,
        if model.has_aux() { ", aux head" } else { "" },
        thousands(model_zoo::num_parameters(&model)),
        info.gflops,
    );
    print_modules(&model, args);
    for w in info.weights {
        println!(
            "\nweights {}{}: {} ({:.1} MB), mIoU {:.1}%, pixel accuracy {:.1}%, resize {}",
            w.name,
            if w.is_default { " (DEFAULT)" } else { "" },
            w.url,
            w.file_size_mb,
            w.miou,
            w.pixel_acc,
            w.transform.resize
        );
    }
    Ok(true)
}

/// `zoo-train info MODEL`.
pub fn info(args: &InfoArgs) -> Result<bool> {
    let device = model_zoo::available_backends()[0].device()?;
    let info = match model_zoo::model_info(&args.model) {
        Ok(info) => info,
        Err(err) => match model_zoo::segmentation::model_info(&args.model) {
            Ok(info) => return segmentation_info(info, args, &device),
            Err(_) => return Err(err.into()),
        },
    };
    let num_classes = args.num_classes.unwrap_or(info.num_classes);
    let size = info.image_size;
    let model = info.create(num_classes, &device)?;
    println!(
        "{} ({} family, {} classes): {} parameters, {:.3} GFLOPs at {size}x{size}, input {} {}x{}\n",
        info.name,
        info.family,
        num_classes,
        thousands(model_zoo::num_parameters(&model)),
        info.gflops,
        if info.input.exact { "exactly" } else { ">=" },
        info.input.min_size[0],
        info.input.min_size[1]
    );
    print_modules(&model, args);
    for w in info.weights {
        println!(
            "\nweights {}{}: {} ({:.1} MB, {} {}), {}, resize {} crop {}",
            w.name,
            if w.is_default { " (DEFAULT)" } else { "" },
            w.url,
            w.file_size_mb,
            w.checksum.algorithm(),
            w.checksum.hex(),
            match (w.acc1, w.acc5) {
                (Some(a1), Some(a5)) => format!("acc@1 {a1:.3}%, acc@5 {a5:.3}%"),
                _ => "no published accuracy".to_string(),
            },
            w.preprocess.resize,
            w.preprocess.crop
        );
    }
    Ok(true)
}

/// `12,345,678`.
pub fn thousands(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

struct Node {
    depth: usize,
    name: String,
    /// The module's type, learnt from its children's container type (`Conv2d`), or else from
    /// the enum variant it holds (`Relu`).
    kind: Option<String>,
    kind_is_variant: bool,
    params: usize,
    has_children: bool,
}

/// Collects the module tree with learnable parameters per module (BatchNorm's running
/// statistics excluded, as PyTorch's `parameters()` does). Enum variants (`Basic` in a
/// `Vec<Block>`) are folded into their parent, as they are in state_dict keys.
#[derive(Default)]
struct Tree {
    nodes: Vec<Node>,
    /// Per entered module: its index in `nodes`, or `None` for a folded enum variant.
    stack: Vec<Option<usize>>,
}

impl Tree {
    fn open(&self) -> impl Iterator<Item = usize> + '_ {
        self.stack.iter().flatten().copied()
    }

    /// Modules with parameters or submodules, in visiting order.
    fn modules(&self) -> impl Iterator<Item = &Node> {
        self.nodes.iter().filter(|n| n.has_children)
    }
}

impl ModuleVisitor for Tree {
    fn enter_module(&mut self, name: &str, container_type: &str) {
        let kind = container_type
            .trim_start_matches("Struct:")
            .trim_start_matches("Enum:");
        let is_variant = container_type.starts_with("Enum:");
        if let Some(parent) = self.open().last() {
            let parent = &mut self.nodes[parent];
            parent.has_children = true;
            if is_variant && parent.kind.is_none() {
                parent.kind = Some(name.to_string());
                parent.kind_is_variant = true;
            } else if !is_variant && (parent.kind.is_none() || parent.kind_is_variant) {
                parent.kind = Some(kind.to_string());
                parent.kind_is_variant = false;
            }
        }
        if container_type.starts_with("Enum:") {
            self.stack.push(None);
            return;
        }
        self.nodes.push(Node {
            depth: self.open().count(),
            name: name.to_string(),
            kind: None,
            kind_is_variant: false,
            params: 0,
            has_children: false,
        });
        self.stack.push(Some(self.nodes.len() - 1));
    }

    fn exit_module(&mut self, _name: &str, _container_type: &str) {
        self.stack.pop();
    }

    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        let open: Vec<usize> = self.open().collect();
        let Some(&own) = open.last() else { return };
        if matches!(
            self.nodes[own].name.as_str(),
            "running_mean" | "running_var"
        ) {
            return;
        }
        let n = param.shape().num_elements();
        for i in open {
            self.nodes[i].params += n;
        }
    }
}
