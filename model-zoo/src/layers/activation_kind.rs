//! [`ActivationKind`], on its own: the kernels (`crate::kernels`) name it, and the layers that
//! call the kernels build the modules from it (`ActivationKind::init`, in `misc.rs`), so it
//! stands apart from both and imports nothing.

/// Which [`Activation`](super::Activation); `Copy`, for configurations.
///
/// The kernels (`crate::kernels`) take it too: one list of the activations the zoo computes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ActivationKind {
    /// `nn.ReLU`.
    Relu,
    /// `nn.ReLU6`.
    Relu6,
    /// `nn.Hardswish`.
    Hardswish,
    /// `nn.Hardsigmoid`.
    Hardsigmoid,
    /// `nn.SiLU`.
    Silu,
    /// `nn.Sigmoid`.
    Sigmoid,
    /// `nn.GELU()`, exact.
    Gelu,
    /// `nn.Tanh`.
    Tanh,
}
