//! Element-wise math of the zoo's Flex kernels: `exp`, `erf` and the activations, written as
//! branch-free scalar `f32` code that LLVM vectorises once [`vectorized`] has compiled the loop
//! around it for the CPU's widest instruction set.
//!
//! The formulas are PyTorch's CPU ones (`aten/src/ATen/cpu/vec`, `native/cpu/Activation.cpp`):
//! GELU as `x * 0.5 * (1 + erf(x / sqrt 2))` with Abramowitz & Stegun's 7.1.26 `erf` (absolute
//! error below 1.5e-7), SiLU as `x / (1 + exp(-x))`, hardswish as `x * min(max(x + 3, 0), 6) / 6`.
//! `exp` is Cephes' `expf` (range reduction by `ln 2` in two parts and a degree-6 polynomial,
//! within 2 ulp on the range that does not overflow). Their multiply-adds are fused where the CPU
//! has FMA ([`fma_is_native`]): one instruction and one rounding instead of two. EfficientNet-B0
//! at batch 1 (6.2 M SiLUs an image), 2 threads, five pairs: 102 -> 117 img/s (median), with the
//! depthwise kernel's epilogue per plane and its masked stores.

use crate::layers::activation_kind::ActivationKind;

/// Runs `f` compiled for the best instruction set this CPU has (AVX-512, AVX2+FMA, or the
/// baseline), chosen at run time: no `target-cpu` is needed to build. `f` must be inlined into
/// it, so that its loops are vectorised for that instruction set: give the closure
/// `#[inline(always)]`. Without it LLVM compiles the closure once, for the baseline (SSE2), and
/// calls it from every dispatch branch (seen in the disassembly: no `ymm` register at all).
///
/// Through `pulp`'s dispatcher, which gemm (and so burn-flex) already builds: no new crate.
#[inline(always)]
pub(crate) fn vectorized<R>(f: impl FnOnce() -> R) -> R {
    pulp::Arch::new().dispatch(f)
}

const LOG2E: f32 = std::f32::consts::LOG2_E;
/// `1.5 * 2^23`: adding and subtracting it rounds an `f32` below `2^22` to the nearest integer
/// without a `round` instruction (SSE2 has none).
const ROUND: f32 = 12_582_912.0;
const LN2_HI: f32 = 0.693_359_4;
const LN2_LO: f32 = -2.121_944_4e-4;

/// Whether `f32::mul_add` is one instruction on this CPU (x86's FMA3, present wherever `pulp`
/// picks AVX2 or AVX-512; always on aarch64). Where it is not, it is a call into a software
/// `fmaf`, ten times slower than a multiply and an add.
#[inline(always)]
pub(crate) fn fma_is_native() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("fma")
    }
    #[cfg(target_arch = "aarch64")]
    {
        true
    }
    #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
    {
        false
    }
}

/// `a * b + c`: fused (one rounding, one instruction) with `FMA`, else a multiply and an add.
/// Rust does not contract `a * b + c` into a fused multiply-add by itself, so the polynomials
/// below were twice the instructions they need on every CPU that has one.
#[inline(always)]
fn madd<const FMA: bool>(a: f32, b: f32, c: f32) -> f32 {
    if FMA { a.mul_add(b, c) } else { a * b + c }
}

/// `e^x` (Cephes' `expf`), saturating: below -87 it returns `e^-87` (1.6e-38, the least normal
/// values: a subnormal value costs a microcode assist per value, 10x and more, in every
/// instruction that makes or reads it on x86), above 88.4 about `2^127.5`.
#[inline(always)]
pub(crate) fn exp(x: f32) -> f32 {
    exp_with::<false>(x)
}

/// [`exp`], its multiply-adds fused with `FMA` (see [`madd`]).
#[inline(always)]
fn exp_with<const FMA: bool>(x: f32) -> f32 {
    let x = x.clamp(-87.0, 88.376_26);
    let n = madd::<FMA>(x, LOG2E, ROUND) - ROUND;
    let r = madd::<FMA>(-n, LN2_LO, madd::<FMA>(-n, LN2_HI, x));
    let mut p = 1.987_569_1e-4;
    p = madd::<FMA>(p, r, 1.398_199_9e-3);
    p = madd::<FMA>(p, r, 8.333_452e-3);
    p = madd::<FMA>(p, r, 4.166_579_6e-2);
    p = madd::<FMA>(p, r, 1.666_666_5e-1);
    p = madd::<FMA>(p, r, 0.5); // Cephes' 5.0000001201e-1, which rounds to 0.5 in f32
    let y = madd::<FMA>(p * r, r, r) + 1.0;
    // 2^n by its exponent bits: the clamp keeps n in [-126, 127], a normal float's range. The
    // biased exponent n + 127 is read from the low mantissa bits of `n + 127 + ROUND`, not
    // converted by `as i32`: that conversion saturates, and LLVM's vector code for it made
    // `exp` (and GELU) 6x slower.
    y * f32::from_bits((n + (ROUND + 127.0)).to_bits() << 23)
}

/// `erf(x)` (multiply-adds fused with `FMA`): Abramowitz & Stegun 7.1.26, PyTorch's vectorised `erf` (within 1.5e-7 of `erf` in
/// exact arithmetic, 5e-7 in `f32`).
#[inline(always)]
fn erf_with<const FMA: bool>(x: f32) -> f32 {
    // erf is 1.0 in f32 from 4 on; at 9 the product below is still a normal value, past it
    // a subnormal one (slow, see `exp`).
    let a = x.abs().min(9.0);
    let t = 1.0 / madd::<FMA>(0.327_591_1, a, 1.0);
    let mut r = 1.061_405_4_f32;
    r = madd::<FMA>(r, t, -1.453_152_1);
    r = madd::<FMA>(r, t, 1.421_413_8);
    r = madd::<FMA>(r, t, -0.284_496_74);
    r = madd::<FMA>(r, t, 0.254_829_6);
    let y = 1.0 - r * t * exp_with::<FMA>(-(a * a));
    y.copysign(x)
}

/// The activation of `kind` on one value, as PyTorch's CPU kernel computes it (multiply-adds
/// fused with `FMA`).
#[inline(always)]
fn activate_with<const FMA: bool>(kind: ActivationKind, x: f32) -> f32 {
    match kind {
        // `x < 0` rather than `max`: NaN passes through, as in PyTorch.
        ActivationKind::Relu => {
            if x < 0.0 {
                0.0
            } else {
                x
            }
        }
        // NaN passes through `clamp` too.
        ActivationKind::Relu6 => x.clamp(0.0, 6.0),
        ActivationKind::Hardswish => x * (x + 3.0).clamp(0.0, 6.0) / 6.0,
        ActivationKind::Hardsigmoid => (x + 3.0).clamp(0.0, 6.0) / 6.0,
        ActivationKind::Silu => x / (1.0 + exp_with::<FMA>(-x)),
        ActivationKind::Sigmoid => 1.0 / (1.0 + exp_with::<FMA>(-x)),
        ActivationKind::Gelu => {
            x * 0.5 * (1.0 + erf_with::<FMA>(x * std::f32::consts::FRAC_1_SQRT_2))
        }
        // The standard library's (not vectorised): only MaxViT's head, on one vector, has it.
        ActivationKind::Tanh => x.tanh(),
    }
}

/// `values[i] = act(values[i])`, vectorised.
#[inline(always)]
pub(crate) fn activate_slice(kind: ActivationKind, values: &mut [f32]) {
    if fma_is_native() {
        map_slice::<true>(values, Some(kind), |x| x);
    } else {
        map_slice::<false>(values, Some(kind), |x| x);
    }
}

/// `out[i] = act(values[i] * scale + shift)`, vectorised: eval BatchNorm (or a convolution's
/// bias, with `scale` 1) and its activation in one pass over a channel's values.
#[inline(always)]
pub(crate) fn scale_shift_slice(
    values: &mut [f32],
    scale: f32,
    shift: f32,
    kind: Option<ActivationKind>,
) {
    if fma_is_native() {
        map_slice::<true>(values, kind, |x| x.mul_add(scale, shift));
    } else {
        map_slice::<false>(values, kind, |x| x * scale + shift);
    }
}

/// `values[i] = act(pre(values[i]))` (no activation with `None`), with one loop per kind so
/// that each is a straight vectorised loop with no `match` inside: the kind's list is written
/// here once.
#[inline(always)]
fn map_slice<const FMA: bool>(
    values: &mut [f32],
    kind: Option<ActivationKind>,
    pre: impl Fn(f32) -> f32,
) {
    #[inline(always)]
    fn each(values: &mut [f32], f: impl Fn(f32) -> f32) {
        for v in values.iter_mut() {
            *v = f(*v);
        }
    }
    use ActivationKind::*;
    match kind {
        None => each(values, pre),
        Some(Relu) => each(values, |x| activate_with::<FMA>(Relu, pre(x))),
        Some(Relu6) => each(values, |x| activate_with::<FMA>(Relu6, pre(x))),
        Some(Hardswish) => each(values, |x| activate_with::<FMA>(Hardswish, pre(x))),
        Some(Hardsigmoid) => each(values, |x| activate_with::<FMA>(Hardsigmoid, pre(x))),
        Some(Silu) => each(values, |x| activate_with::<FMA>(Silu, pre(x))),
        Some(Sigmoid) => each(values, |x| activate_with::<FMA>(Sigmoid, pre(x))),
        Some(Gelu) => each(values, |x| activate_with::<FMA>(Gelu, pre(x))),
        Some(Tanh) => each(values, |x| activate_with::<FMA>(Tanh, pre(x))),
    }
}

/// Whether the gradient of `kind` is computed from the activation's output (PyTorch's
/// `threshold_backward`, `hardtanh_backward` (equivalent on the clamped output), `sigmoid_backward`
/// and `tanh_backward`) rather than from its input.
pub(crate) fn derivative_from_output(kind: ActivationKind) -> bool {
    use ActivationKind::*;
    matches!(kind, Relu | Relu6 | Sigmoid | Tanh)
}

/// `dy * act'(v)`, as PyTorch's CPU backward kernels compute it (`native/cpu/Activation.cpp`,
/// `BinaryOpsKernel.cpp`), `v` being the output where [`derivative_from_output`] says so and
/// the input elsewhere.
#[inline(always)]
fn derivative_with<const FMA: bool>(kind: ActivationKind, v: f32, dy: f32) -> f32 {
    match kind {
        // `output <= 0 ? 0 : grad`: NaN passes the gradient, as in PyTorch.
        ActivationKind::Relu => {
            if v <= 0.0 {
                0.0
            } else {
                dy
            }
        }
        // `(x <= 0 || x >= 6) ? 0 : grad`; on the output, `x <= 0` iff `y <= 0` and `x >= 6`
        // iff `y >= 6`.
        ActivationKind::Relu6 => {
            if v <= 0.0 || v >= 6.0 {
                0.0
            } else {
                dy
            }
        }
        ActivationKind::Hardswish => {
            if v < -3.0 {
                0.0
            } else if v <= 3.0 {
                dy * madd::<FMA>(v, 1.0 / 3.0, 0.5)
            } else {
                dy
            }
        }
        ActivationKind::Hardsigmoid => {
            if v > -3.0 && v < 3.0 {
                dy * (1.0 / 6.0)
            } else {
                0.0
            }
        }
        ActivationKind::Silu => {
            let sigmoid = 1.0 / (1.0 + exp_with::<FMA>(-v));
            dy * sigmoid * madd::<FMA>(v, 1.0 - sigmoid, 1.0)
        }
        ActivationKind::Sigmoid => dy * (1.0 - v) * v,
        ActivationKind::Gelu => {
            // kBeta = M_2_SQRTPI * M_SQRT1_2 * 0.5 = 1 / sqrt(2 pi).
            const BETA: f32 = 0.398_942_3;
            let cdf = 0.5 * (1.0 + erf_with::<FMA>(v * std::f32::consts::FRAC_1_SQRT_2));
            let pdf = exp_with::<FMA>(-0.5 * v * v) * BETA;
            dy * madd::<FMA>(v, pdf, cdf)
        }
        ActivationKind::Tanh => dy * (1.0 - v * v),
    }
}

/// `grads[i] = grads[i] * act'(values[i])`, vectorised (see [`derivative_with`] for what
/// `values` holds).
#[inline(always)]
pub(crate) fn derivative_slice(kind: ActivationKind, values: &[f32], grads: &mut [f32]) {
    #[inline(always)]
    fn each<const FMA: bool>(kind: ActivationKind, values: &[f32], grads: &mut [f32]) {
        #[inline(always)]
        fn zip(values: &[f32], grads: &mut [f32], f: impl Fn(f32, f32) -> f32) {
            for (g, v) in grads.iter_mut().zip(values) {
                *g = f(*v, *g);
            }
        }
        use ActivationKind::*;
        // One loop per kind, so that each is a straight vectorised loop (as in `map_slice`).
        match kind {
            Relu => zip(values, grads, |v, g| derivative_with::<FMA>(Relu, v, g)),
            Relu6 => zip(values, grads, |v, g| derivative_with::<FMA>(Relu6, v, g)),
            Hardswish => zip(values, grads, |v, g| {
                derivative_with::<FMA>(Hardswish, v, g)
            }),
            Hardsigmoid => zip(values, grads, |v, g| {
                derivative_with::<FMA>(Hardsigmoid, v, g)
            }),
            Silu => zip(values, grads, |v, g| derivative_with::<FMA>(Silu, v, g)),
            Sigmoid => zip(values, grads, |v, g| derivative_with::<FMA>(Sigmoid, v, g)),
            Gelu => zip(values, grads, |v, g| derivative_with::<FMA>(Gelu, v, g)),
            Tanh => zip(values, grads, |v, g| derivative_with::<FMA>(Tanh, v, g)),
        }
    }
    if fma_is_native() {
        each::<true>(kind, values, grads);
    } else {
        each::<false>(kind, values, grads);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every float32 bit pattern step over [-100, 100] (and the saturated ends), against the
    /// standard library's `f64` functions.
    fn samples() -> impl Iterator<Item = f32> {
        (-200_000..=200_000).map(|i| i as f32 * 5e-4).chain([
            -1e30, -100.0, -88.0, -87.0, 87.0, 88.0, 88.3, 100.0, 1e30, 0.0, -0.0,
        ])
    }

    /// Both forms of each function: fused multiply-adds (software `fmaf` here, outside the
    /// vectorised loops: slow but exact) and separate ones.
    type Forms<T> = [(bool, T); 2];

    #[test]
    fn exp_is_within_two_ulp_where_it_does_not_saturate() {
        let forms: Forms<fn(f32) -> f32> = [(true, exp_with::<true>), (false, exp_with::<false>)];
        for (fma, exp) in forms {
            for x in samples().filter(|x| (-87.0..88.0).contains(x)) {
                let want = (x as f64).exp();
                let got = exp(x) as f64;
                let ulp = (want as f32).abs() * f32::EPSILON;
                assert!(
                    (got - want).abs() <= 2.0 * ulp as f64,
                    "exp({x}) = {got}, want {want} (fused: {fma})"
                );
            }
            assert!(exp(-1e30) >= 0.0 && exp(-1e30) < 1e-37);
            assert!(exp(1e30) > 1e38 && exp(1e30).is_finite());
        }
    }

    #[test]
    fn erf_is_within_its_bound() {
        let forms: Forms<fn(f32) -> f32> = [(true, erf_with::<true>), (false, erf_with::<false>)];
        for (fma, erf) in forms {
            for x in samples() {
                let want = libm::erf(x as f64);
                let got = erf(x) as f64;
                assert!(
                    (got - want).abs() < 5e-7,
                    "erf({x}) = {got}, want {want} (fused: {fma})"
                );
            }
        }
    }

    #[test]
    fn activations_match_their_definitions() {
        let sigmoid = |x: f64| 1.0 / (1.0 + (-x).exp());
        for x in samples().filter(|x| x.abs() < 50.0) {
            let xd = x as f64;
            let cases = [
                (ActivationKind::Relu, xd.max(0.0)),
                (ActivationKind::Relu6, xd.clamp(0.0, 6.0)),
                (
                    ActivationKind::Hardswish,
                    xd * (xd + 3.0).clamp(0.0, 6.0) / 6.0,
                ),
                (
                    ActivationKind::Hardsigmoid,
                    (xd + 3.0).clamp(0.0, 6.0) / 6.0,
                ),
                (ActivationKind::Silu, xd * sigmoid(xd)),
                (ActivationKind::Sigmoid, sigmoid(xd)),
                (
                    ActivationKind::Gelu,
                    0.5 * xd * (1.0 + libm::erf(xd / std::f64::consts::SQRT_2)),
                ),
                (ActivationKind::Tanh, xd.tanh()),
            ];
            let forms: Forms<fn(ActivationKind, f32) -> f32> = [
                (true, activate_with::<true>),
                (false, activate_with::<false>),
            ];
            for (kind, want) in cases {
                for (fma, activate) in forms {
                    let got = activate(kind, x) as f64;
                    let tolerance = 4e-7 * want.abs().max(1.0);
                    assert!(
                        (got - want).abs() <= tolerance,
                        "{kind:?}({x}) = {got}, want {want} (fused: {fma})"
                    );
                }
            }
        }
        assert!(activate_with::<true>(ActivationKind::Relu, f32::NAN).is_nan());
    }

    /// Each gradient against its definition in `f64`, away from the kinks (where PyTorch's
    /// one-sided choices are checked by `the_kinks_take_pytorchs_side`).
    #[test]
    fn derivatives_match_their_definitions() {
        let sigmoid = |x: f64| 1.0 / (1.0 + (-x).exp());
        let pdf = |x: f64| (-0.5 * x * x).exp() / (2.0 * std::f64::consts::PI).sqrt();
        let kinks = [-3.0, 0.0, 3.0, 6.0];
        for x in samples().filter(|x| x.abs() < 50.0) {
            if kinks.iter().any(|k| (x - k).abs() < 1e-3) {
                continue;
            }
            let xd = x as f64;
            let step = |inside: bool, d: f64| if inside { d } else { 0.0 };
            let cases = [
                (ActivationKind::Relu, step(xd > 0.0, 1.0)),
                (ActivationKind::Relu6, step(xd > 0.0 && xd < 6.0, 1.0)),
                (
                    ActivationKind::Hardswish,
                    if xd < -3.0 {
                        0.0
                    } else if xd <= 3.0 {
                        xd / 3.0 + 0.5
                    } else {
                        1.0
                    },
                ),
                (ActivationKind::Hardsigmoid, step(xd.abs() < 3.0, 1.0 / 6.0)),
                (
                    ActivationKind::Silu,
                    sigmoid(xd) * (1.0 + xd * (1.0 - sigmoid(xd))),
                ),
                (ActivationKind::Sigmoid, sigmoid(xd) * (1.0 - sigmoid(xd))),
                (
                    ActivationKind::Gelu,
                    0.5 * (1.0 + libm::erf(xd / std::f64::consts::SQRT_2)) + xd * pdf(xd),
                ),
                (ActivationKind::Tanh, 1.0 - xd.tanh() * xd.tanh()),
            ];
            for (kind, want) in cases {
                let v = if derivative_from_output(kind) {
                    activate_with::<true>(kind, x)
                } else {
                    x
                };
                for (fma, got) in [
                    (true, derivative_with::<true>(kind, v, 1.5)),
                    (false, derivative_with::<false>(kind, v, 1.5)),
                ] {
                    let (got, want) = (got as f64, 1.5 * want);
                    assert!(
                        (got - want).abs() <= 1e-6 * want.abs().max(1.0),
                        "{kind:?}'({x}) = {got}, want {want} (fused: {fma})"
                    );
                }
            }
        }
    }

    /// At the kinks, the side PyTorch's backward kernels take; NaN passes ReLU's gradient.
    #[test]
    fn the_kinks_take_pytorchs_side() {
        use ActivationKind::*;
        let d = |kind, x: f32| {
            let v = if derivative_from_output(kind) {
                activate_with::<true>(kind, x)
            } else {
                x
            };
            derivative_with::<true>(kind, v, 1.0)
        };
        assert_eq!(d(Relu, 0.0), 0.0);
        assert_eq!((d(Relu6, 0.0), d(Relu6, 6.0)), (0.0, 0.0));
        assert_eq!((d(Hardswish, -3.0), d(Hardswish, 3.0)), (-0.5, 1.5));
        assert_eq!((d(Hardsigmoid, -3.0), d(Hardsigmoid, 3.0)), (0.0, 0.0));
        assert_eq!(derivative_with::<true>(Relu, f32::NAN, 2.0), 2.0);
        let mut grads = vec![2.0f32; 40];
        let values: Vec<f32> = (0..40).map(|i| i as f32 - 20.0).collect();
        vectorized(|| derivative_slice(Hardswish, &values, &mut grads));
        for (x, g) in values.iter().zip(&grads) {
            assert_eq!(*g, 2.0 * d(Hardswish, *x));
        }
    }

    #[test]
    fn the_slices_apply_the_scalar_function() {
        let values: Vec<f32> = (0..1000).map(|i| (i as f32 - 500.0) * 0.013).collect();
        let mut a = values.clone();
        vectorized(|| activate_slice(ActivationKind::Gelu, &mut a));
        let mut b = values.clone();
        vectorized(|| scale_shift_slice(&mut b, 2.0, -1.0, Some(ActivationKind::Silu)));
        let activate = if fma_is_native() {
            activate_with::<true>
        } else {
            activate_with::<false>
        };
        for (i, x) in values.iter().enumerate() {
            assert_eq!(a[i], activate(ActivationKind::Gelu, *x));
            let want = activate(ActivationKind::Silu, x * 2.0 - 1.0);
            assert!((b[i] - want).abs() <= 1e-6 * want.abs().max(1.0));
        }
    }
}
