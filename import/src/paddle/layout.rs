//! The two key layouts of Paddle ResNet files, and their names in the zoo (torchvision's).

use std::collections::BTreeMap;

/// How a Paddle file names its parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PaddleLayout {
    /// `paddle.vision.models`: torchvision's names; BatchNorm statistics `_mean`/`_variance`.
    Vision,
    /// The dygraph ResNet tutorial: `conv._conv`, `bb_{s}_{i}.conv{0,1,2}`, `short`, `out`.
    Tutorial,
}

/// BatchNorm's parameters and buffers: Paddle's name, PyTorch's.
const BATCH_NORM: [(&str, &str); 4] = [
    ("weight", "weight"),
    ("bias", "bias"),
    ("_mean", "running_mean"),
    ("_variance", "running_var"),
];

impl PaddleLayout {
    /// Every layout, in the order detection prefers them.
    pub const ALL: [PaddleLayout; 2] = [PaddleLayout::Tutorial, PaddleLayout::Vision];

    /// The layout, for error messages.
    pub fn describe(self) -> &'static str {
        match self {
            PaddleLayout::Vision => {
                "paddle.vision.models: torchvision's names with BatchNorm `_mean`/`_variance`"
            }
            PaddleLayout::Tutorial => {
                "the dygraph ResNet tutorial: `conv._conv`, `bb_{stage}_{block}.conv0`, `short`, \
                 `out`"
            }
        }
    }

    /// The layout of a file with these keys: by the tutorial's own names if it has them, else
    /// by which layout names more of the model's `expected` keys. `None` when neither names any.
    pub fn detect(keys: &[&str], expected: &BTreeMap<String, Vec<usize>>) -> Option<Self> {
        if keys
            .iter()
            .any(|k| k.starts_with("bb_") || k.starts_with("conv._conv."))
        {
            return Some(PaddleLayout::Tutorial);
        }
        if keys
            .iter()
            .any(|k| k.ends_with("._mean") || k.ends_with("._variance"))
        {
            return Some(PaddleLayout::Vision);
        }
        let score = |layout: PaddleLayout| {
            keys.iter()
                .filter(|k| expected.contains_key(&layout.to_zoo(k)))
                .count()
        };
        Self::ALL
            .into_iter()
            .map(|layout| (score(layout), layout))
            .filter(|(score, _)| *score > 0)
            .max_by_key(|(score, layout)| (*score, *layout == PaddleLayout::Vision))
            .map(|(_, layout)| layout)
    }

    /// The zoo's name for a file key; keys the layout does not know stay as they are (and are
    /// reported as unexpected).
    pub fn to_zoo(self, key: &str) -> String {
        match self {
            PaddleLayout::Vision => rename_last(key, |p| {
                BATCH_NORM
                    .iter()
                    .find(|(pd, _)| *pd == p)
                    .map(|(_, pt)| *pt)
            }),
            PaddleLayout::Tutorial => tutorial_to_zoo(key).unwrap_or_else(|| key.to_string()),
        }
    }

    /// The file's name for a zoo key, where the layout has one.
    pub fn to_file(self, key: &str) -> Option<String> {
        match self {
            PaddleLayout::Vision => Some(rename_last(key, |p| {
                BATCH_NORM
                    .iter()
                    .find(|(_, pt)| *pt == p)
                    .map(|(pd, _)| *pd)
            })),
            PaddleLayout::Tutorial => zoo_to_tutorial(key),
        }
    }

    /// [`Self::to_file`] as a plain function, for the shared key matcher.
    pub(crate) fn file_key_fn(self) -> fn(&str) -> Option<String> {
        match self {
            PaddleLayout::Vision => |k| PaddleLayout::Vision.to_file(k),
            PaddleLayout::Tutorial => |k| PaddleLayout::Tutorial.to_file(k),
        }
    }
}

/// `key` with its last segment renamed where `rename` knows it.
fn rename_last(key: &str, rename: impl Fn(&str) -> Option<&'static str>) -> String {
    let (head, last) = key.rsplit_once('.').unwrap_or(("", key));
    match rename(last) {
        Some(new) if head.is_empty() => new.to_string(),
        Some(new) => format!("{head}.{new}"),
        None => key.to_string(),
    }
}

/// A `ConvBNLayer`'s tensor (`_conv.weight`, `_batch_norm._mean`) as the zoo's conv and BN
/// names.
fn conv_bn_to_zoo(rest: &str, conv: &str, bn: &str) -> Option<String> {
    if rest == "_conv.weight" {
        return Some(format!("{conv}.weight"));
    }
    let param = rest.strip_prefix("_batch_norm.")?;
    let (_, torch) = BATCH_NORM.iter().find(|(pd, _)| *pd == param)?;
    Some(format!("{bn}.{torch}"))
}

fn tutorial_to_zoo(key: &str) -> Option<String> {
    if let Some(rest) = key.strip_prefix("conv.") {
        return conv_bn_to_zoo(rest, "conv1", "bn1");
    }
    if let Some(param) = key.strip_prefix("out.") {
        return Some(format!("fc.{param}"));
    }
    let (block, rest) = key.strip_prefix("bb_")?.split_once('.')?;
    let (stage, index) = block.split_once('_')?;
    let stage: usize = stage.parse().ok()?;
    let index: usize = index.parse().ok()?;
    let prefix = format!("layer{}.{index}", stage + 1);
    let (layer, rest) = rest.split_once('.')?;
    match layer {
        "short" => conv_bn_to_zoo(
            rest,
            &format!("{prefix}.downsample.0"),
            &format!("{prefix}.downsample.1"),
        ),
        "conv0" | "conv1" | "conv2" => {
            let j = layer[4..].parse::<usize>().ok()? + 1;
            conv_bn_to_zoo(
                rest,
                &format!("{prefix}.conv{j}"),
                &format!("{prefix}.bn{j}"),
            )
        }
        _ => None,
    }
}

/// The zoo's conv or BN tensor as a tutorial `ConvBNLayer`'s, `layer` being its name there.
fn zoo_to_conv_bn(layer: &str, is_conv: bool, param: &str) -> Option<String> {
    if is_conv {
        return (param == "weight").then(|| format!("{layer}._conv.weight"));
    }
    let (paddle, _) = BATCH_NORM.iter().find(|(_, pt)| *pt == param)?;
    Some(format!("{layer}._batch_norm.{paddle}"))
}

fn zoo_to_tutorial(key: &str) -> Option<String> {
    let (head, param) = key.rsplit_once('.')?;
    match head {
        "conv1" => return zoo_to_conv_bn("conv", true, param),
        "bn1" => return zoo_to_conv_bn("conv", false, param),
        "fc" => return Some(format!("out.{param}")),
        _ => {}
    }
    let mut parts = head.split('.');
    let stage: usize = parts.next()?.strip_prefix("layer")?.parse().ok()?;
    let index: usize = parts.next()?.parse().ok()?;
    let block = format!("bb_{}_{index}", stage.checked_sub(1)?);
    let (layer, is_conv) = match (parts.next()?, parts.next()) {
        ("downsample", Some("0")) => ("short".to_string(), true),
        ("downsample", Some("1")) => ("short".to_string(), false),
        (name, None) => {
            let (kind, j) = name.split_at(name.find(|c: char| c.is_ascii_digit())?);
            let j: usize = j.parse().ok()?;
            (format!("conv{}", j.checked_sub(1)?), kind == "conv")
        }
        _ => return None,
    };
    zoo_to_conv_bn(&format!("{block}.{layer}"), is_conv, param)
}

#[cfg(test)]
mod tests {
    use super::*;

    const PAIRS: [(&str, &str); 8] = [
        ("conv._conv.weight", "conv1.weight"),
        ("conv._batch_norm._mean", "bn1.running_mean"),
        ("bb_0_0.conv0._conv.weight", "layer1.0.conv1.weight"),
        (
            "bb_2_22.conv2._batch_norm._variance",
            "layer3.22.bn3.running_var",
        ),
        ("bb_1_3.conv1._batch_norm.weight", "layer2.3.bn2.weight"),
        ("bb_3_0.short._conv.weight", "layer4.0.downsample.0.weight"),
        (
            "bb_3_0.short._batch_norm.bias",
            "layer4.0.downsample.1.bias",
        ),
        ("out.weight", "fc.weight"),
    ];

    #[test]
    fn tutorial_names_map_both_ways() {
        for (paddle, zoo) in PAIRS {
            assert_eq!(PaddleLayout::Tutorial.to_zoo(paddle), zoo);
            assert_eq!(PaddleLayout::Tutorial.to_file(zoo).as_deref(), Some(paddle));
        }
        assert_eq!(PaddleLayout::Tutorial.to_zoo("bb_x.conv0"), "bb_x.conv0");
    }

    #[test]
    fn vision_names_map_both_ways() {
        let v = PaddleLayout::Vision;
        assert_eq!(
            v.to_zoo("layer1.0.bn1._variance"),
            "layer1.0.bn1.running_var"
        );
        assert_eq!(v.to_zoo("fc.weight"), "fc.weight");
        assert_eq!(
            v.to_file("layer1.0.downsample.1.running_mean").as_deref(),
            Some("layer1.0.downsample.1._mean")
        );
    }

    #[test]
    fn detects_by_markers_then_by_the_model() {
        let none = BTreeMap::new();
        assert_eq!(
            PaddleLayout::detect(&["conv._conv.weight", "out.bias"], &none),
            Some(PaddleLayout::Tutorial)
        );
        assert_eq!(
            PaddleLayout::detect(&["conv1.weight", "bn1._mean"], &none),
            Some(PaddleLayout::Vision)
        );
        let expected = BTreeMap::from([("features.0.weight".to_string(), vec![1])]);
        assert_eq!(
            PaddleLayout::detect(&["features.0.weight"], &expected),
            Some(PaddleLayout::Vision)
        );
        assert_eq!(PaddleLayout::detect(&["foo", "bar"], &expected), None);
    }
}
