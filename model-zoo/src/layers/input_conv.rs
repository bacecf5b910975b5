//! Input convolutions for images of other than 3 channels: timm's `adapt_input_conv`, the one
//! formula both [`crate::Architecture::with_in_chans`] and the importer (a 3-channel file into
//! a model of other channels) use.

/// A first convolution's weight, `[out, in, kh, kw]` in C order, adapted to `in_chans` input
/// channels as timm's `adapt_input_conv` does: for 1 channel the sum over the input channels
/// (over each RGB triple where `in` is a larger multiple of 3, as space-to-depth stems have); for
/// another count, the RGB weights repeated over the channels and scaled by `3 / in_chans`, so
/// that an input whose channels are equal gives the same activations. Returns the weights and
/// their shape, or why the weight cannot be adapted (a 4-channel weight to 5 channels, say).
pub fn adapt_input_conv(
    weight: &[f32],
    shape: [usize; 4],
    in_chans: usize,
) -> Result<(Vec<f32>, [usize; 4]), String> {
    let [out, inp, kh, kw] = shape;
    let plane = kh * kw;
    if weight.len() != out * inp * plane {
        return Err(format!(
            "{} values for a weight of shape {shape:?}",
            weight.len()
        ));
    }
    if in_chans == 0 {
        return Err("zero input channels".into());
    }
    if in_chans == inp {
        return Ok((weight.to_vec(), shape));
    }
    if in_chans == 1 {
        if inp > 3 && !inp.is_multiple_of(3) {
            return Err(format!(
                "a weight of {inp} input channels sums to 1 channel only from at most 3 or a \
                 multiple of 3"
            ));
        }
        // [out, inp / 3, 3, kh, kw] summed over the 3 (over all inp channels up to 3).
        let (groups, per_group) = if inp > 3 { (inp / 3, 3) } else { (1, inp) };
        let adapted_channels = groups;
        let mut result = vec![0.0f32; out * adapted_channels * plane];
        for o in 0..out {
            for g in 0..groups {
                for c in 0..per_group {
                    let src = &weight[((o * inp) + g * per_group + c) * plane..][..plane];
                    let dst = &mut result[((o * adapted_channels) + g) * plane..][..plane];
                    for (d, s) in dst.iter_mut().zip(src) {
                        *d += s;
                    }
                }
            }
        }
        return Ok((result, [out, adapted_channels, kh, kw]));
    }
    if inp != 3 {
        return Err(format!(
            "a weight of {inp} input channels adapts to {in_chans} only from 3 (RGB)"
        ));
    }
    let scale = 3.0 / in_chans as f32;
    let mut adapted = vec![0.0f32; out * in_chans * plane];
    for o in 0..out {
        for c in 0..in_chans {
            let src = &weight[((o * 3) + c % 3) * plane..][..plane];
            let dst = &mut adapted[((o * in_chans) + c) * plane..][..plane];
            for (d, s) in dst.iter_mut().zip(src) {
                *d = s * scale;
            }
        }
    }
    Ok((adapted, [out, in_chans, kh, kw]))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// timm's formula, written out: `[2, 3, 1, 2]` weights `w[o][c][k] = 100 o + 10 c + k`.
    fn rgb() -> Vec<f32> {
        (0..2)
            .flat_map(|o| {
                (0..3).flat_map(move |c| (0..2).map(move |k| (100 * o + 10 * c + k) as f32))
            })
            .collect()
    }

    #[test]
    fn one_channel_sums_rgb() {
        let (w, shape) = adapt_input_conv(&rgb(), [2, 3, 1, 2], 1).unwrap();
        assert_eq!(shape, [2, 1, 1, 2]);
        // sum over c of 100 o + 10 c + k = 300 o + 30 + 3 k
        assert_eq!(w, [30.0, 33.0, 330.0, 333.0]);
    }

    #[test]
    fn more_channels_repeat_rgb_scaled() {
        let (w, shape) = adapt_input_conv(&rgb(), [2, 3, 1, 2], 4).unwrap();
        assert_eq!(shape, [2, 4, 1, 2]);
        let s = 3.0 / 4.0;
        // channel 3 repeats channel 0
        let expected: Vec<f32> = (0..2)
            .flat_map(|o| {
                (0..4)
                    .flat_map(move |c| (0..2).map(move |k| (100 * o + 10 * (c % 3) + k) as f32 * s))
            })
            .collect();
        assert_eq!(w, expected);
    }

    #[test]
    fn what_cannot_be_adapted_is_an_error() {
        let w = vec![0.0; 2 * 4];
        assert!(adapt_input_conv(&w, [2, 4, 1, 1], 5).is_err());
        assert!(adapt_input_conv(&w, [2, 4, 1, 1], 1).is_err());
        // Fewer than 3 channels sum to 1, as timm's.
        assert_eq!(
            adapt_input_conv(&[1.0, 2.0], [1, 2, 1, 1], 1).unwrap().0,
            [3.0]
        );
        assert!(adapt_input_conv(&rgb(), [2, 3, 1, 2], 0).is_err());
        assert!(adapt_input_conv(&rgb()[1..], [2, 3, 1, 2], 1).is_err());
    }
}
