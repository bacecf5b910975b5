//! Activations, and a residual add with its activation, as `Autodiff<Flex>` operations with the
//! zoo's vectorised, threaded forward and backward.
//!
//! burn-flex 0.22's activations and their backward (`relu_backward`, `gelu_backward`, ...) are
//! scalar loops on one thread, and a residual `relu(x + identity)` under autodiff is two
//! operations with a tensor between them. Here the forward is [`super::activation`]'s kernel
//! (in place where the input is not shared) and the backward one pass of
//! [`derivative_slice`] over the threads, from the output (ReLU, ReLU6, sigmoid, tanh, as
//! PyTorch's backward kernels read it) or the input (the others); the residual's two
//! gradients are the same tensor, shared. Formulas are PyTorch's (`math.rs`), so a training step
//! follows PyTorch's gradients (`cargo xtask parity --train-step`).
//!
//! A checkpointing autodiff device, or any other backend or dtype, keeps Burn's ops.

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::NoCheckpointing;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::{Autodiff, Flex, flex::FlexTensor};
use burn::tensor::{DType, Tensor};

use super::math::{derivative_from_output, derivative_slice, vectorized};
use super::{CHUNK, activate, contiguous, owned, par_chunks, slice, sum};
use crate::layers::activation_kind::ActivationKind;

type Ad = Autodiff<Flex>;

/// `x`'s autodiff primitive where it is an `f32` tensor on `Autodiff<Flex>`.
macro_rules! autodiff_f32 {
    ($x:expr) => {
        $x.clone()
            .try_into_primitive::<Ad>()
            .ok()
            .filter(|ad| ad.primitive().dtype() == DType::F32)
    };
}

/// `kind(x)` as one `Autodiff<Flex>` operation; `Err(x)` (untouched) where it does not apply.
///
/// # Shapes
/// - `x`, output: any, the same
pub(crate) fn activation<const D: usize>(
    kind: ActivationKind,
    x: Tensor<D>,
) -> Result<Tensor<D>, Tensor<D>> {
    let Some(ad) = autodiff_f32!(x) else {
        return Err(x);
    };
    drop(x);
    let out = match ZooActivation::<1>(kind)
        .prepare::<NoCheckpointing>([ad.node()])
        .compute_bound()
        .stateful()
    {
        OpsKind::Tracked(prep) => {
            let (out, kept) = forward(kind, ad.into_primitive());
            prep.finish(kept, out)
        }
        OpsKind::UnTracked(prep) => prep.finish(forward(kind, ad.into_primitive()).0),
    };
    Ok(Tensor::from_primitive::<Ad>(out))
}

/// `kind(x + identity)` (a residual connection) as one `Autodiff<Flex>` operation; `Err` (both
/// untouched) where it does not apply (no activation: Burn's add, whose backward copies
/// nothing), shapes that differ included.
///
/// # Shapes
/// - `x`, `identity`, output: the same, any
pub(crate) fn add_activation<const D: usize>(
    x: Tensor<D>,
    identity: Tensor<D>,
    kind: Option<ActivationKind>,
) -> Result<Tensor<D>, (Tensor<D>, Tensor<D>)> {
    let (Some(kind), Some(a), Some(b)) = (kind, autodiff_f32!(x), autodiff_f32!(identity)) else {
        return Err((x, identity));
    };
    if a.primitive().layout().shape() != b.primitive().layout().shape() {
        return Err((x, identity));
    }
    drop((x, identity));
    let (nodes, a, b) = ([a.node(), b.node()], a.into_primitive(), b.into_primitive());
    let out = match ZooActivation::<2>(kind)
        .prepare::<NoCheckpointing>(nodes)
        .compute_bound()
        .stateful()
    {
        OpsKind::Tracked(prep) => {
            let (out, kept) = add_forward(kind, a, b);
            prep.finish(kept, out)
        }
        OpsKind::UnTracked(prep) => prep.finish(add_forward(kind, a, b).0),
    };
    Ok(Tensor::from_primitive::<Ad>(out))
}

/// `kind(a + b)` and what the backward reads: one pass where that is the output, else the sum
/// kept and activated into a copy.
fn add_forward(kind: ActivationKind, a: FlexTensor, b: FlexTensor) -> (FlexTensor, FlexTensor) {
    if derivative_from_output(kind) {
        let out = sum(a, b, Some(kind));
        (out.clone(), out)
    } else {
        forward(kind, sum(a, b, None))
    }
}

/// The activation's output, and what its backward reads (the output or the input).
fn forward(kind: ActivationKind, x: FlexTensor) -> (FlexTensor, FlexTensor) {
    if derivative_from_output(kind) {
        let mut out = owned(x);
        activate(kind, &mut out);
        (out.clone(), out)
    } else {
        let x = contiguous(x);
        let mut out = FlexTensor::from_data(x.clone().into_data());
        // `into_data` of a shared buffer copies it: `out` is `x`'s values in a buffer of its own.
        activate(kind, &mut out);
        (out, x)
    }
}

/// The activation of `N` inputs' sum (1: the activation alone; 2: a residual add), its state
/// the output or the input ([`derivative_from_output`]).
#[derive(Debug)]
struct ZooActivation<const N: usize>(ActivationKind);

impl<const N: usize> Backward<Flex, N> for ZooActivation<N> {
    type State = FlexTensor;

    fn backward(self, ops: Ops<Self::State, N>, grads: &mut Gradients, _: &mut Checkpointer) {
        let mut grad = owned(grads.consume::<Flex>(&ops.node));
        let values = ops.state;
        let values = slice(&values);
        let kind = self.0;
        par_chunks(grad.storage_mut::<f32>(), |i, chunk| {
            let values = &values[i * CHUNK..][..chunk.len()];
            vectorized(
                #[inline(always)]
                || derivative_slice(kind, values, chunk),
            )
        });
        // The sum's gradient is each input's: one tensor, shared (its buffer copied on write).
        for node in ops.parents.into_iter().flatten() {
            grads.register::<Flex>(node.id, grad.clone());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::{Device, Distribution};

    use super::super::test_values as values;

    fn assert_close(what: &str, got: &[f32], want: &[f32]) {
        assert_eq!(got.len(), want.len(), "{what}");
        for (i, (g, w)) in got.iter().zip(want).enumerate() {
            assert!(
                (g - w).abs() <= 2e-5 * w.abs().max(1.0),
                "{what} at {i}: {g} against {w}"
            );
        }
    }

    /// Burn's ops composing each activation (their autodiff gives the reference gradient).
    #[allow(clippy::disallowed_methods)]
    fn reference<const D: usize>(kind: ActivationKind, x: Tensor<D>) -> Tensor<D> {
        use burn::tensor::activation as a;
        match kind {
            ActivationKind::Relu => a::relu(x),
            ActivationKind::Relu6 => x.clamp(0.0, 6.0),
            ActivationKind::Hardswish => x.clone() * (x + 3.0).clamp(0.0, 6.0) / 6.0,
            ActivationKind::Hardsigmoid => (x + 3.0).clamp(0.0, 6.0) / 6.0,
            ActivationKind::Silu => a::silu(x),
            ActivationKind::Sigmoid => a::sigmoid(x),
            ActivationKind::Gelu => a::gelu(x),
            ActivationKind::Tanh => a::tanh(x),
        }
    }

    const KINDS: [ActivationKind; 8] = [
        ActivationKind::Relu,
        ActivationKind::Relu6,
        ActivationKind::Hardswish,
        ActivationKind::Hardsigmoid,
        ActivationKind::Silu,
        ActivationKind::Sigmoid,
        ActivationKind::Gelu,
        ActivationKind::Tanh,
    ];

    /// Output and input gradient against Burn's ops, over more values than one task (several
    /// chunks), with the input used again after the activation (so a forward in place would
    /// show), and untracked inputs.
    #[test]
    fn activations_equal_burns_ops_and_gradients() {
        let device = Device::flex().autodiff();
        let dims = [2, 3, 70, 50];
        let x = Tensor::<4>::random(dims, Distribution::Normal(0.0, 4.0), &device);
        let w = Tensor::<4>::random(dims, Distribution::Normal(0.0, 1.0), &device);
        for kind in KINDS {
            let run = |ours: bool| {
                let x = x.clone().detach().require_grad();
                let y = if ours {
                    activation(kind, x.clone()).unwrap_or_else(|_| panic!("{kind:?} taken"))
                } else {
                    reference(kind, x.clone())
                };
                let loss = (y.clone() * w.clone()).sum() + (x.clone() * 0.5).sum();
                let grads = loss.backward();
                let dx = x.grad(&grads).expect("x has a gradient");
                (values(&y), values(&dx), values(&x))
            };
            let (y, dx, x_after) = run(true);
            let (y_ref, dx_ref, _) = run(false);
            assert_close(&format!("{kind:?} output"), &y, &y_ref);
            assert_close(&format!("{kind:?} gradient"), &dx, &dx_ref);
            assert_eq!(x_after, values(&x), "{kind:?} wrote into its shared input");
        }
        // Untracked, and on plain Flex / another dtype: not this op.
        let y = activation(ActivationKind::Relu, x.clone().detach()).expect("untracked taken");
        assert_eq!(
            values(&y),
            values(&reference(ActivationKind::Relu, x.clone()))
        );
        assert!(activation(ActivationKind::Relu, x.clone().inner()).is_err());
    }

    /// `kind(a + b)`: the output and both inputs' gradients against Burn's add and activation,
    /// for an activation differentiated from its output and one from its input; no activation
    /// and mismatched shapes are not taken.
    #[test]
    fn residual_add_equals_burns_ops_and_gradients() {
        let device = Device::flex().autodiff();
        let dims = [3, 4, 40, 50];
        let a = Tensor::<4>::random(dims, Distribution::Normal(0.0, 2.0), &device);
        let b = Tensor::<4>::random(dims, Distribution::Normal(0.0, 2.0), &device);
        let w = Tensor::<4>::random(dims, Distribution::Normal(0.0, 1.0), &device);
        for kind in [ActivationKind::Relu, ActivationKind::Silu] {
            let run = |ours: bool| {
                let a = a.clone().detach().require_grad();
                let b = b.clone().detach().require_grad();
                let y = if ours {
                    add_activation(a.clone(), b.clone(), Some(kind))
                        .unwrap_or_else(|_| panic!("{kind:?} taken"))
                } else {
                    reference(kind, a.clone() + b.clone())
                };
                let grads = (y.clone() * w.clone()).sum().backward();
                let da = a.grad(&grads).expect("a has a gradient");
                let db = b.grad(&grads).expect("b has a gradient");
                (values(&y), values(&da), values(&db))
            };
            let (ours, theirs) = (run(true), run(false));
            assert_close(&format!("{kind:?} output"), &ours.0, &theirs.0);
            assert_close(&format!("{kind:?} a's gradient"), &ours.1, &theirs.1);
            assert_close(&format!("{kind:?} b's gradient"), &ours.2, &theirs.2);
        }
        assert!(add_activation(a.clone(), b.clone(), None).is_err());
        let other = Tensor::<4>::zeros([3, 4, 50, 40], &device);
        assert!(add_activation(a, other, Some(ActivationKind::Relu)).is_err());
    }
}
