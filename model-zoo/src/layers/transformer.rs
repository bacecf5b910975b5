//! The transformer blocks of the modern backbones: PyTorch's `nn.MultiheadAttention` with its
//! packed projection ([`MultiheadAttention`]), the `Permute` of torchvision's `ops.misc`, and
//! LayerNorm as torchvision configures it.

use burn::module::{Module, Param};
use burn::nn::{Initializer, LayerNorm, LayerNormConfig, Linear, LinearConfig};
use burn::tensor::activation::softmax;
use burn::tensor::{Device, Int, Tensor, TensorData};

/// `softmax(q k^T / sqrt(head_dim) + bias) v`, PyTorch's math path of
/// `scaled_dot_product_attention`, as two matmuls and a softmax.
///
/// Burn 0.22's fused [`burn::tensor::module::attention`] gives the same logits (checked by
/// parity on all three backends) and no speed-up on the CPU backends at these sequence lengths
/// (197 tokens for ViT-B/16), but on wgpu it autotunes its kernels for every new shape: 83 s
/// instead of 40 s for `vit_b_32`'s parity on lavapipe, where CI runs it. The composed form
/// is differentiable on every backend, as the fused op is under autodiff only by this same
/// composition.
///
/// # Shapes
/// - `q`, `k`, `v`: `[batch, heads, sequence, head_dim]`
/// - `bias`: broadcastable to `[batch, heads, sequence, sequence]`
/// - output: `[batch, heads, sequence, head_dim]`
pub fn scaled_dot_product(
    q: Tensor<4>,
    k: Tensor<4>,
    v: Tensor<4>,
    bias: Option<Tensor<4>>,
) -> Tensor<4> {
    let head_dim = q.dims()[3];
    let scores = q.matmul(k.swap_dims(2, 3)) * (1.0 / (head_dim as f64).sqrt());
    let scores = match bias {
        Some(bias) => scores + bias,
        None => scores,
    };
    softmax_last(scores).matmul(v)
}

/// `linear` over the last axis of `x`: on Flex the zoo's kernel (one gemm with the bias as its
/// initial output, the columns shared among the threads for one to four rows), elsewhere one
/// matrix product over all the leading axes flattened, where Burn's `Linear::forward` on a 3-d
/// or 4-d input broadcasts the weight over a batched matmul.
///
/// # Shapes
/// - input: `[..., d_input]`
/// - output: `[..., d_output]`
pub fn linear_last<const D: usize>(linear: &Linear, x: Tensor<D>) -> Tensor<D> {
    let bias = linear.bias.as_ref().map(Param::val);
    let x = match linear_kernel(x, &linear.weight.val(), bias.as_ref()) {
        Ok(y) => return y,
        Err(x) => x,
    };
    let mut dims = x.dims();
    let d_input = dims[D - 1];
    let rows = dims[..D - 1].iter().product();
    let y = linear.forward(x.reshape([rows, d_input]));
    dims[D - 1] = y.dims()[1];
    y.reshape(dims)
}

/// `x weight + bias` over the last axis by the zoo's Flex kernel (`weight` `[d_in, d_out]`, any
/// strides), or `x` back for Burn's ops: on every other device, and without the `flex` feature.
// `Err` hands the input back untouched, as the kernels do (see `kernels`).
#[allow(clippy::result_large_err)]
pub(crate) fn linear_kernel<const D: usize>(
    x: Tensor<D>,
    weight: &Tensor<2>,
    bias: Option<&Tensor<1>>,
) -> Result<Tensor<D>, Tensor<D>> {
    #[cfg(feature = "flex")]
    return crate::kernels::linear(x, weight, bias);
    #[cfg(not(feature = "flex"))]
    {
        let _ = (weight, bias);
        Err(x)
    }
}

/// Attention from a packed query-key-value projection by the zoo's Flex kernel: `Ok` with the
/// heads side by side ([`merge_heads`]' layout), or `qkv` back for Burn's ops (on every other
/// device, and without the `flex` feature).
///
/// The scores are `scale * q k^T`, or with `cosine` (Swin V2) `cosine[head] * normalize(q)
/// normalize(k)^T`; `bias` is added to every row's, `mask` to row `r`'s as `mask[r % mask_rows]`.
///
/// # Shapes
/// - `qkv`: `[rows, sequence, 3 * dim]` (see [`split_heads`])
/// - `cosine`: `[heads]`
/// - `bias`: `[heads, sequence, sequence]`
/// - `mask`: `[mask_rows, sequence, sequence]`
/// - output: `[rows, sequence, dim]`
#[allow(clippy::result_large_err)]
pub(crate) fn attention_kernel(
    qkv: Tensor<3>,
    heads: usize,
    scale: f64,
    cosine: Option<&Tensor<1>>,
    bias: Option<&Tensor<3>>,
    mask: Option<&Tensor<3>>,
) -> Result<Tensor<3>, Tensor<3>> {
    #[cfg(feature = "flex")]
    {
        use crate::kernels::Scores;
        let scores = match cosine {
            Some(scale) => Scores::Cosine(scale),
            None => Scores::Scaled(scale as f32),
        };
        crate::kernels::attention(qkv, heads, scores, bias, mask)
    }
    #[cfg(not(feature = "flex"))]
    {
        let _ = (heads, scale, cosine, bias, mask);
        Err(qkv)
    }
}

/// Whether the zoo's Flex kernels take `x` (so that a caller builds their inputs only then).
pub(crate) fn kernels_take<const D: usize>(x: &Tensor<D>) -> bool {
    #[cfg(feature = "flex")]
    return crate::kernels::takes(x);
    #[cfg(not(feature = "flex"))]
    {
        let _ = x;
        false
    }
}

/// `nn.LayerNorm(dim, eps=eps)`: Burn's `LayerNorm`, which normalises the last axis with the
/// biased variance and `eps` inside the square root, as PyTorch does; `weight`/`bias` are
/// `gamma`/`beta` in Burn and renamed by the importer's PyTorch adapter.
pub fn layer_norm(dim: usize, eps: f64, device: &Device) -> LayerNorm {
    LayerNormConfig::new(dim).with_epsilon(eps).init(device)
}

/// `norm` over the last axis of `x`: on Flex the zoo's kernel (PyTorch's numerics, rows shared
/// among the threads, in place where `x` is not shared), Burn's `LayerNorm::forward` elsewhere.
///
/// # Shapes
/// - `x`, output: `[..., d]`
pub fn layer_norm_last<const D: usize>(norm: &LayerNorm, x: Tensor<D>) -> Tensor<D> {
    #[cfg(feature = "flex")]
    let x = match kernels_take(&x).then(|| layer_norm_epsilon(norm)).flatten() {
        Some(epsilon) => {
            let beta = norm.beta.as_ref().map(Param::val);
            match crate::kernels::layer_norm(x, &norm.gamma.val(), beta.as_ref(), epsilon) {
                Ok(y) => return y,
                Err(x) => x,
            }
        }
        None => x,
    };
    norm.forward(x)
}

/// A `LayerNorm`'s epsilon, which Burn 0.22 keeps private, read from its display (`LayerNorm
/// {d_model: 768, epsilon: 0.000001, bias: true, params: 1536}`, the `f64` in Rust's shortest
/// form that reads back exactly); `None` if the display has no such field.
#[cfg(feature = "flex")]
fn layer_norm_epsilon(norm: &LayerNorm) -> Option<f64> {
    let text = norm.to_string();
    let rest = &text[text.find("epsilon: ")? + "epsilon: ".len()..];
    let end = rest.find([',', '}', ' ', '\n'])?;
    rest[..end].trim().parse().ok()
}

/// Softmax over the last axis: on Flex the zoo's kernel (rows shared among the threads, one
/// vectorised pass for `exp` and the sum, in place where `x` is not shared), Burn's elsewhere.
///
/// # Shapes
/// - `x`, output: any, the same
pub fn softmax_last<const D: usize>(x: Tensor<D>) -> Tensor<D> {
    #[cfg(feature = "flex")]
    let x = match crate::kernels::softmax(x) {
        Ok(y) => return y,
        Err(x) => x,
    };
    softmax(x, D - 1)
}

/// torchvision's `ops.misc.Permute`: a parameter-free slot of an `nn.Sequential` that reorders
/// the axes of a 4-d tensor (ConvNeXt's and Swin's NCHW <-> NHWC).
#[derive(Module, Debug)]
pub struct Permute {
    /// The new order of the axes, as `torch.permute`'s argument.
    pub dims: [usize; 4],
}

impl Permute {
    /// `[0, 2, 3, 1]`: NCHW to NHWC.
    pub const TO_CHANNELS_LAST: Permute = Permute { dims: [0, 2, 3, 1] };
    /// `[0, 3, 1, 2]`: NHWC to NCHW.
    pub const TO_CHANNELS_FIRST: Permute = Permute { dims: [0, 3, 1, 2] };

    /// # Shapes
    /// - input: 4-d; output: the input's axes in the order `dims`
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        x.permute(self.dims)
    }
}

/// PyTorch's `nn.MultiheadAttention(embed_dim, num_heads, batch_first=True)` for
/// self-attention, with PyTorch's own parameters: one packed `in_proj_weight` `[3 * embed_dim,
/// embed_dim]` (query, key and value rows, in that order) and `in_proj_bias`, then `out_proj`.
///
/// Burn's `nn::attention::MultiHeadAttention` keeps three separate `Linear`s; keeping the packed
/// tensor instead gives the published files' keys and shapes as they are, with no split on
/// import and none to undo when saving. The attention itself is [`scaled_dot_product`], or on
/// Flex the zoo's kernel straight from the packed projection (`attention_kernel`).
/// Attention dropout is not applied: every torchvision builder sets it to 0.
#[derive(Module, Debug)]
pub struct MultiheadAttention {
    /// Query, key and value projections, stacked: `[3 * embed_dim, embed_dim]`, PyTorch's
    /// layout (`y = x W^T + b`).
    pub in_proj_weight: Param<Tensor<2>>,
    /// `[3 * embed_dim]`.
    pub in_proj_bias: Param<Tensor<1>>,
    /// The output projection.
    pub out_proj: Linear,
    /// Number of heads; `embed_dim` is a multiple of it.
    pub num_heads: usize,
}

impl MultiheadAttention {
    /// Initialised as PyTorch does: `in_proj_weight` Xavier-uniform over its `[3D, D]` shape,
    /// both biases zero, `out_proj.weight` uniform in `±1/sqrt(D)` (`nn.Linear`'s default).
    /// `embed_dim` must be a multiple of `num_heads` (the caller's configuration checks it).
    pub fn new(embed_dim: usize, num_heads: usize, device: &Device) -> Self {
        let d = embed_dim;
        let out_proj = LinearConfig::new(d, d).init(device);
        Self {
            in_proj_weight: Initializer::XavierUniform { gain: 1.0 }.init_with(
                [3 * d, d],
                Some(d),
                Some(3 * d),
                device,
            ),
            in_proj_bias: Initializer::Zeros.init([3 * d], device),
            out_proj: Linear {
                bias: Some(Initializer::Zeros.init([d], device)),
                ..out_proj
            },
            num_heads,
        }
    }

    /// Self-attention of a sequence with itself, all positions visible.
    ///
    /// # Shapes
    /// - input: `[batch, sequence, embed_dim]`
    /// - output: `[batch, sequence, embed_dim]`
    pub fn forward(&self, x: Tensor<3>) -> Tensor<3> {
        let [batch, seq, dim] = x.dims();
        let heads = self.num_heads;
        let weight = self.in_proj_weight.val();
        let bias = self.in_proj_bias.val();
        let qkv = match linear_kernel(x, &weight.clone().transpose(), Some(&bias)) {
            Ok(qkv) => qkv,
            Err(x) => x
                .reshape([batch * seq, dim])
                .matmul(weight.transpose())
                .add(bias.reshape([1, 3 * dim]))
                .reshape([batch, seq, 3 * dim]),
        };
        let scale = 1.0 / ((dim / heads) as f64).sqrt();
        let context = match attention_kernel(qkv, heads, scale, None, None, None) {
            Ok(context) => context,
            Err(qkv) => {
                let [q, k, v] = split_heads(qkv, heads);
                merge_heads(scaled_dot_product(q, k, v, None))
            }
        };
        linear_last(&self.out_proj, context)
    }
}

/// A packed query-key-value projection, PyTorch's layout (the queries, then the keys, then
/// the values, each `heads` heads of `dim / heads`), as three per-head tensors. Shared by
/// [`MultiheadAttention`], Swin's and MaxViT's attention.
///
/// # Shapes
/// - input: `[rows, sequence, 3 * dim]`
/// - output: three `[rows, heads, sequence, dim / heads]`
pub fn split_heads(qkv: Tensor<3>, heads: usize) -> [Tensor<4>; 3] {
    let [rows, seq, packed] = qkv.dims();
    let head_dim = packed / 3 / heads;
    // [rows, seq, 3, heads, head_dim] -> [3, rows, heads, seq, head_dim]
    let qkv = qkv
        .reshape([rows, seq, 3, heads, head_dim])
        .permute([2, 0, 3, 1, 4]);
    [0, 1, 2].map(|i| {
        qkv.clone()
            .narrow(0, i, 1)
            .reshape([rows, heads, seq, head_dim])
    })
}

/// The heads of an attention's output side by side again: the inverse of one of
/// [`split_heads`]'s outputs.
///
/// # Shapes
/// - input: `[rows, heads, sequence, head_dim]`
/// - output: `[rows, sequence, heads * head_dim]`
pub fn merge_heads(x: Tensor<4>) -> Tensor<3> {
    let [rows, heads, seq, head_dim] = x.dims();
    x.swap_dims(1, 2).reshape([rows, seq, heads * head_dim])
}

/// torchvision's `relative_position_index` for a `window x window` window: for each pair of
/// positions `(i, j)` (row-major), the row of the bias table of their offset.
pub fn relative_position_index(window: usize) -> Vec<i64> {
    let n = window * window;
    let side = 2 * window as i64 - 1;
    let mut index = Vec::with_capacity(n * n);
    for i in 0..n {
        for j in 0..n {
            let dh = (i / window) as i64 - (j / window) as i64 + window as i64 - 1;
            let dw = (i % window) as i64 - (j % window) as i64 + window as i64 - 1;
            index.push(dh * side + dw);
        }
    }
    index
}

/// The relative position bias of one `window x window` window from its table (`[(2w - 1)^2,
/// heads]`, rows indexed as [`relative_position_index`]): torchvision's
/// `_get_relative_position_bias` (Swin) and `get_relative_positional_bias` (MaxViT).
///
/// # Shapes
/// - `table`: `[(2 * window - 1)^2, heads]`
/// - output: `[1, heads, window^2, window^2]`
pub fn relative_position_bias(table: Tensor<2>, window: usize) -> Tensor<4> {
    let n = window * window;
    let [_, heads] = table.dims();
    let index = Tensor::<1, Int>::from_data(
        TensorData::new(relative_position_index(window), [n * n]),
        &table.device(),
    );
    table
        .select(0, index)
        .reshape([n, n, heads])
        .permute([2, 0, 1])
        .unsqueeze()
}

#[cfg(test)]
mod tests {
    use burn::tensor::Distribution;

    use super::*;

    #[test]
    #[cfg(feature = "flex")]
    fn layer_norm_epsilon_reads_back_exactly() {
        let device = Device::flex();
        for eps in [1e-5, 1e-6, 1e-3, 0.1, 1.5e-7] {
            assert_eq!(layer_norm_epsilon(&layer_norm(8, eps, &device)), Some(eps));
        }
    }

    /// The Flex kernels against Burn's ops (their fallback) on the same device.
    #[test]
    fn the_kernels_agree_with_burn_s_ops() {
        let device = Device::flex();
        let random = |shape: [usize; 3]| Tensor::<3>::random(shape, Distribution::Default, &device);
        let close = |a: Tensor<3>, b: Tensor<3>, tolerance: f32| {
            let (a, b) = (a.to_data(), b.to_data());
            a.assert_approx_eq::<f32>(&b, burn::tensor::Tolerance::absolute(tolerance));
        };
        let x = random([2, 11, 24]) * 4.0 - 1.0;
        let mut norm = layer_norm(24, 1e-6, &device);
        norm.gamma = Param::from_tensor(Tensor::random([24], Distribution::Default, &device));
        close(
            layer_norm_last(&norm, x.clone()),
            norm.forward(x.clone()),
            1e-5,
        );
        close(softmax_last(x.clone()), softmax(x.clone(), 2), 1e-6);

        let mha = MultiheadAttention::new(24, 4, &device);
        let [q, k, v] = split_heads(
            x.clone()
                .reshape([22, 24])
                .matmul(mha.in_proj_weight.val().transpose())
                .add(mha.in_proj_bias.val().reshape([1, 72]))
                .reshape([2, 11, 72]),
            4,
        );
        let burn = merge_heads(scaled_dot_product(q, k, v, None));
        let burn = mha.out_proj.forward(burn);
        close(mha.forward(x), burn, 1e-5);
    }
}
