//! Feature maps of a model's stages: [`FeatureInfo`] describes them (timm's `feature_info`, with
//! torchvision's module paths), [`Taps`] collects them while a family runs its one forward, so
//! that [`crate::Architecture::forward_intermediates`] and the logits share a code path.
//!
//! Every family writes its forward once, as `forward_tapped`: after each stage it hands the
//! stage's output to [`Taps::keep`] (with [`tap!`](crate::tap)), which keeps it where it was
//! asked for and tells the family to stop once the last asked-for stage is done. A plain forward
//! passes [`Taps::none`], which keeps nothing and never stops.

use burn::tensor::Tensor;

use crate::error::InputError;

/// One stage whose output [`crate::Architecture::forward_intermediates`] can return, as timm's
/// `feature_info` describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeatureInfo {
    /// torchvision's path of the module whose output this is (`layer2`, `features.3`,
    /// `trunk_output.block2`): the node to ask `create_feature_extractor` for.
    pub module: String,
    /// Channels of the map.
    pub channels: usize,
    /// How much smaller than the input the map is, nominally: `height / reduction` (rounded
    /// as the model's convolutions and pools round).
    pub reduction: usize,
}

impl FeatureInfo {
    /// A stage at `module` with `channels` channels, `reduction` times smaller than the input.
    pub fn new(module: impl Into<String>, channels: usize, reduction: usize) -> Self {
        Self {
            module: module.into(),
            channels,
            reduction,
        }
    }
}

/// What [`crate::Architecture::forward_features`] returns: the model's last features before
/// its head (timm's `forward_features`), which [`crate::Architecture::forward_head`] takes.
#[derive(Debug, Clone)]
pub enum Features {
    /// `[batch, channels, height, width]`: every convolutional family's last map before
    /// pooling, and Swin's output after its final norm (channels-last in the model, permuted).
    Map(Tensor<4>),
    /// `[batch, 1 + tokens, dim]`: ViT's encoder output after its final LayerNorm, the class
    /// token first.
    Tokens(Tensor<3>),
}

impl Features {
    /// The map, for the families whose features are one.
    pub fn into_map(self) -> Option<Tensor<4>> {
        match self {
            Features::Map(map) => Some(map),
            Features::Tokens(_) => None,
        }
    }

    /// The tokens, for ViT.
    pub fn into_tokens(self) -> Option<Tensor<3>> {
        match self {
            Features::Tokens(tokens) => Some(tokens),
            Features::Map(_) => None,
        }
    }

    /// The map a head of `model` takes.
    ///
    /// # Panics
    /// On tokens: features of another model than the head's.
    pub(crate) fn expect_map(self, model: &str) -> Tensor<4> {
        self.into_map().unwrap_or_else(|| {
            panic!("{model}'s head takes a feature map, got tokens (a ViT's features)")
        })
    }
}

/// The stage outputs asked for during one forward; see the module docs.
#[derive(Debug)]
pub struct Taps {
    /// Per stage: whether it is asked for.
    wanted: Vec<bool>,
    /// Per stage: its map, once kept.
    maps: Vec<Option<Tensor<4>>>,
    /// The stage after which the forward stops (none: run to the logits).
    stop_after: Option<usize>,
}

impl Taps {
    /// Keeps nothing and never stops: the plain forward.
    pub fn none() -> Self {
        Self {
            wanted: Vec::new(),
            maps: Vec::new(),
            stop_after: None,
        }
    }

    /// Keeps the outputs of `indices` out of a model's `stages` (every stage where `indices` is
    /// empty); with `stop`, the forward ends after the last of them. An index past the stages
    /// is an error naming `model` and how many stages it has.
    pub fn new(
        model: &str,
        indices: &[usize],
        stages: usize,
        stop: bool,
    ) -> Result<Self, InputError> {
        if let Some(&index) = indices.iter().find(|&&i| i >= stages) {
            return Err(InputError::FeatureIndex {
                model: model.to_string(),
                index,
                stages,
            });
        }
        let mut wanted = vec![indices.is_empty(); stages];
        for &i in indices {
            wanted[i] = true;
        }
        let last = wanted.iter().rposition(|&w| w);
        Ok(Self {
            wanted,
            maps: vec![None; stages],
            stop_after: if stop { last } else { None },
        })
    }

    /// Hands over the output of stage `stage`; `map` makes it (NCHW) and is called only when
    /// the stage was asked for. True when the forward should stop here (see [`crate::tap!`]).
    pub fn keep(&mut self, stage: usize, map: impl FnOnce() -> Tensor<4>) -> bool {
        if self.wanted.get(stage).copied().unwrap_or(false) {
            self.maps[stage] = Some(map());
        }
        self.stop_after == Some(stage)
    }

    /// The stage ends ([`sequence_ends`]) of a sequence whose elements `elements` gives, where
    /// any stage is asked for; none for a plain forward, which so neither walks the layers'
    /// shapes nor splits the sequence at stage ends (its convolutions fuse across them).
    pub(crate) fn ends(&self, elements: impl FnOnce() -> Vec<(usize, usize)>) -> Vec<usize> {
        if self.wanted.iter().any(|&w| w) {
            sequence_ends(&elements())
        } else {
            Vec::new()
        }
    }

    /// The kept maps of `indices` (every stage where empty), in that order.
    pub(crate) fn into_maps(self, indices: &[usize]) -> Vec<Tensor<4>> {
        let all: Vec<usize>;
        let indices = if indices.is_empty() {
            all = (0..self.maps.len()).collect();
            &all
        } else {
            indices
        };
        indices
            .iter()
            .map(|&i| {
                self.maps[i]
                    .clone()
                    .unwrap_or_else(|| unreachable!("stage {i} ran before the forward stopped"))
            })
            .collect()
    }
}

/// What a forward run with [`Taps::none`] cannot return: `None`, which only a stopping
/// [`Taps`] gives (`forward_tapped(x, &mut Taps::none()).unwrap_or_else(no_stop)`).
pub(crate) fn no_stop<T>() -> T {
    unreachable!("a forward whose taps do not stop runs to its end")
}

/// `tap!(taps, stage, map)`: hands stage `stage`'s output to [`Taps::keep`] (`map` is
/// evaluated only if that stage was asked for) and returns `None` from the enclosing
/// `forward_tapped` when the forward should stop there.
#[macro_export]
macro_rules! tap {
    ($taps:expr, $stage:expr, $map:expr) => {
        if $taps.keep($stage, || $map) {
            return None;
        }
    };
}

/// The element indices of a sequence that end a stage: the one before each element that
/// downsamples (`strides[i] > 1`, not the first) and the last, as timm picks the features of
/// torchvision's `features` sequences (MobileNet, EfficientNet, VGG, ConvNeXt, Swin).
pub(crate) fn stage_ends(strides: &[usize]) -> Vec<usize> {
    let mut ends: Vec<usize> = (1..strides.len())
        .filter(|&i| strides[i] > 1)
        .map(|i| i - 1)
        .collect();
    if let Some(last) = strides.len().checked_sub(1)
        && ends.last() != Some(&last)
    {
        ends.push(last);
    }
    ends
}

/// The stage ends (see [`stage_ends`]) of a sequence of `(stride, channels)` elements.
fn sequence_ends(elements: &[(usize, usize)]) -> Vec<usize> {
    stage_ends(&elements.iter().map(|&(s, _)| s).collect::<Vec<_>>())
}

/// [`FeatureInfo`] for the stage ends of a sequence called `prefix` (see [`stage_ends`]): each
/// element's stride and output channels, the reduction before the sequence's first element.
pub(crate) fn sequence_info(
    prefix: &str,
    elements: &[(usize, usize)],
    reduction: usize,
) -> Vec<FeatureInfo> {
    let mut reductions = Vec::with_capacity(elements.len());
    let mut r = reduction;
    for &(s, _) in elements {
        r *= s;
        reductions.push(r);
    }
    sequence_ends(elements)
        .into_iter()
        .map(|i| FeatureInfo::new(format!("{prefix}.{i}"), elements[i].1, reductions[i]))
        .collect()
}

/// Runs `elements` in turn with `forward`, tapping the output of each element that ends a stage
/// (`ends`, from [`stage_ends`]; stage `first + k` for `ends[k]`). `None` when the taps stop
/// the forward.
pub(crate) fn run_sequence<T>(
    elements: &[T],
    mut x: Tensor<4>,
    ends: &[usize],
    first: usize,
    taps: &mut Taps,
    forward: impl Fn(&T, Tensor<4>) -> Tensor<4>,
) -> Option<Tensor<4>> {
    let mut stage = first;
    for (i, element) in elements.iter().enumerate() {
        x = forward(element, x);
        if ends.get(stage - first) == Some(&i) {
            tap!(taps, stage, x.clone());
            stage += 1;
        }
    }
    Some(x)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stage_ends_before_each_downsampling_and_the_last() {
        // MobileNet V3 Large's 17 features: strides at 0, 2, 4, 7, 13.
        let mut strides = vec![1; 17];
        for i in [0, 2, 4, 7, 13] {
            strides[i] = 2;
        }
        assert_eq!(stage_ends(&strides), [1, 3, 6, 12, 16]);
        // A downsampling last element is its own end once.
        assert_eq!(stage_ends(&[2, 1, 2]), [1, 2]);
        assert!(stage_ends(&[]).is_empty());
    }

    #[test]
    fn taps_refuse_an_index_past_the_stages() {
        let err = Taps::new("resnet", &[0, 5], 5, true).unwrap_err();
        assert_eq!(
            err.to_string(),
            "resnet has 5 feature stages (indices 0 to 4), asked for index 5"
        );
    }

    #[test]
    fn taps_stop_after_the_last_wanted_stage() {
        let device = Default::default();
        let map = || Tensor::<4>::zeros([1, 1, 1, 1], &device);
        let mut taps = Taps::new("m", &[2, 0], 4, true).unwrap();
        assert!(!taps.keep(0, map));
        assert!(!taps.keep(1, || unreachable!("stage 1 was not asked for")));
        assert!(taps.keep(2, map));
        assert_eq!(taps.into_maps(&[2, 0]).len(), 2);
        let mut none = Taps::none();
        assert!(!none.keep(0, || unreachable!("nothing is kept")));
    }
}
