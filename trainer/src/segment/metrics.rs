//! Segmentation's loss and metrics, as torchvision's reference computes them
//! (`references/segmentation/train.py` and `utils.ConfusionMatrix`).

use burn::tensor::activation::log_softmax;
use burn::tensor::{Int, Tensor};

use super::data::IGNORE;

/// `F.cross_entropy(scores, targets, ignore_index=255)`: the mean over the pixels not
/// [`IGNORE`]d of `-log_softmax(scores)[target]` (zero where every pixel is ignored).
///
/// # Shapes
/// - `scores`: `[batch, classes, height, width]`
/// - `targets`: `[batch, height, width]`, class indices or [`IGNORE`]
/// - output: `[1]`
pub fn masked_cross_entropy(scores: Tensor<4>, targets: Tensor<3, Int>) -> Tensor<1> {
    let valid = targets.clone().not_equal_elem(i64::from(IGNORE));
    let safe = targets.mask_fill(valid.clone().bool_not(), 0);
    let picked = log_softmax(scores, 1)
        .gather(1, safe.unsqueeze_dim::<4>(1))
        .squeeze_dim::<3>(1);
    let weight = valid.float();
    let count = weight.clone().sum().clamp_min(1.0);
    -(picked * weight).sum() / count
}

/// The confusion matrix of a validation pass: `counts[target * n + prediction]` over the
/// pixels not [`IGNORE`]d.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfusionMatrix {
    classes: usize,
    counts: Vec<u64>,
}

impl ConfusionMatrix {
    /// An empty matrix for `classes` classes.
    pub fn new(classes: usize) -> Self {
        Self {
            classes,
            counts: vec![0; classes * classes],
        }
    }

    /// Counts the pixels of one map: predicted classes beside the mask's (pixels whose mask
    /// is [`IGNORE`], or past the classes, are left out).
    pub fn add(&mut self, predicted: &[usize], targets: &[u8]) {
        for (&p, &t) in predicted.iter().zip(targets) {
            let t = usize::from(t);
            if t < self.classes && p < self.classes {
                self.counts[t * self.classes + p] += 1;
            }
        }
    }

    fn diagonal(&self, c: usize) -> u64 {
        self.counts[c * self.classes + c]
    }

    /// The share of counted pixels predicted right (torchvision's `acc_global`).
    pub fn pixel_accuracy(&self) -> f64 {
        let total: u64 = self.counts.iter().sum();
        let right: u64 = (0..self.classes).map(|c| self.diagonal(c)).sum();
        right as f64 / total.max(1) as f64
    }

    /// Each class's intersection over union, `None` for a class neither in the masks nor in
    /// the predictions (where torchvision's `iu` is 0/0).
    pub fn iou(&self) -> Vec<Option<f64>> {
        (0..self.classes)
            .map(|c| {
                let row: u64 = self.counts[c * self.classes..(c + 1) * self.classes]
                    .iter()
                    .sum();
                let column: u64 = (0..self.classes)
                    .map(|t| self.counts[t * self.classes + c])
                    .sum();
                let union = row + column - self.diagonal(c);
                (union > 0).then(|| self.diagonal(c) as f64 / union as f64)
            })
            .collect()
    }

    /// The mean IoU over the classes present (torchvision averages every class and gets NaN
    /// when one is absent from both; absent classes are left out here instead).
    pub fn mean_iou(&self) -> f64 {
        let present: Vec<f64> = self.iou().into_iter().flatten().collect();
        present.iter().sum::<f64>() / present.len().max(1) as f64
    }
}

#[cfg(test)]
mod tests {
    use burn::tensor::TensorData;

    use super::*;

    #[test]
    fn the_loss_is_cross_entropy_over_the_counted_pixels() {
        let device = model_zoo::available_backends()[0].device().unwrap();
        // Two classes, three pixels; the last is ignored.
        let scores = Tensor::<4>::from_data(
            TensorData::new(vec![0.0f32, 1.0, 5.0, 2.0, 0.0, -5.0], [1, 2, 1, 3]),
            &device,
        );
        let targets =
            Tensor::<3, Int>::from_data(TensorData::new(vec![1i64, 0, 255], [1, 1, 3]), &device);
        let loss: f32 = masked_cross_entropy(scores, targets).into_scalar();
        // Pixel 0: scores (0, 2), target 1: ln(1 + e^-2). Pixel 1: (1, 0), target 0:
        // ln(1 + e^-1).
        let want = ((1.0f32 + (-2.0f32).exp()).ln() + (1.0f32 + (-1.0f32).exp()).ln()) / 2.0;
        assert!((loss - want).abs() < 1e-6, "{loss} vs {want}");
    }

    #[test]
    fn iou_and_pixel_accuracy_as_torchvision() {
        let mut m = ConfusionMatrix::new(3);
        // Targets 0 0 1 1 255; predictions 0 1 1 1 2 (the ignored pixel not counted).
        m.add(&[0, 1, 1, 1, 2], &[0, 0, 1, 1, 255]);
        assert_eq!(m.pixel_accuracy(), 0.75);
        // Class 0: 1 / (2 + 1 - 1); class 1: 2 / (2 + 3 - 2); class 2: absent.
        assert_eq!(m.iou(), [Some(0.5), Some(2.0 / 3.0), None]);
        assert!((m.mean_iou() - (0.5 + 2.0 / 3.0) / 2.0).abs() < 1e-12);
    }
}
