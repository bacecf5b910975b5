//! `--model-ema`: torchvision's `ExponentialMovingAverage` of the weights and buffers
//! (`AveragedModel(use_buffers=True)`), updated every `--model-ema-steps` optimiser steps of an
//! epoch (`i % steps == 0`, after the step), copied rather than averaged through the warmup
//! epochs (torchvision resets `n_averaged` there) and on the first update of a run. The
//! average is a second [`Model`] inside the [`crate::Classifier`], so checkpoints keep it and
//! `--resume` continues it; it has its own parameter ids and no gradients, so the optimiser
//! never touches it. Validation and the saved best model use it, as timm's recipe does.

use burn::module::{Module, ModuleMapper, ModuleVisitor, Param, ParamId};
use burn::tensor::Tensor;
use model_zoo::Model;

/// The moving average and its schedule.
#[derive(Module, Debug)]
pub struct Ema {
    /// The averaged weights and BatchNorm statistics.
    pub model: Model,
    /// Decay per update (see [`crate::recipe::Recipe::ema_update_decay`]).
    pub decay: f64,
    /// Optimiser steps between updates, counted within each epoch.
    pub every: usize,
    /// Optimiser steps per epoch.
    pub steps_per_epoch: usize,
    /// Warmup epochs, through which updates copy.
    pub warmup_epochs: usize,
    /// Optimiser steps taken so far in the run (the epochs before a resume included).
    pub step: usize,
}

/// The model's floating-point parameters and buffers, in visiting order, detached.
struct Collect(Vec<Tensor<1>>);

impl ModuleVisitor for Collect {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        self.0.push(param.val().detach().reshape([-1]));
    }
}

/// Maps the average's parameters and buffers, in the same order, to `decay * average +
/// (1 - decay) * current` (`decay` 0: a copy).
struct Average {
    current: std::vec::IntoIter<Tensor<1>>,
    decay: f64,
}

impl ModuleMapper for Average {
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        let current = self
            .current
            .next()
            .expect("the average has the model's structure");
        let decay = self.decay;
        param.map(|average| {
            // The model's values come from its `valid()` view (no autodiff); the average lives
            // beside the model on the autodiff device.
            let current = Tensor::from_inner(current).reshape(average.shape());
            if decay == 0.0 {
                current
            } else {
                (average * decay + current * (1.0 - decay)).detach()
            }
        })
    }
}

/// Fresh parameter ids, no gradients: a copy the optimiser does not see as `model`'s.
struct Detach;

impl ModuleMapper for Detach {
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        let value = param.val().detach();
        Param::initialized(ParamId::new(), value).set_require_grad(false)
    }
}

impl Ema {
    /// An average starting as a copy of `model`, `start_step` optimiser steps into the run.
    pub fn new(
        model: &Model,
        decay: f64,
        every: usize,
        steps_per_epoch: usize,
        warmup_epochs: usize,
        start_step: usize,
    ) -> Self {
        // `valid().train()` gives the BatchNorm statistics cells of their own: a clone of a
        // `RunningState` shares its cell with the original (and `map` writes into it), so the
        // average's statistics would be the model's.
        Self {
            model: model.valid().train().map(&mut Detach).no_grad(),
            decay,
            every: every.max(1),
            steps_per_epoch: steps_per_epoch.max(1),
            warmup_epochs,
            step: start_step,
        }
    }

    /// After an optimiser step of `model`: updates the average where torchvision's recipe
    /// would, and counts the step.
    pub fn after_step(mut self, model: &Model) -> Self {
        let (epoch, i) = (
            self.step / self.steps_per_epoch,
            self.step % self.steps_per_epoch,
        );
        if i.is_multiple_of(self.every) {
            // `n_averaged` is 0 on the run's first update, and after each update of a warmup
            // epoch: those copy.
            let copy = self.step == 0
                || epoch < self.warmup_epochs
                || (self.warmup_epochs > 0 && epoch == self.warmup_epochs && i == 0);
            // `valid()` first: it folds the BatchNorm statistics the forward passes of this
            // epoch accumulated (per thread) into their values, which a visit reads.
            let mut collect = Collect(Vec::new());
            model.valid().visit(&mut collect);
            self.model = self.model.map(&mut Average {
                current: collect.0.into_iter(),
                decay: if copy { 0.0 } else { self.decay },
            });
        }
        self.step += 1;
        self
    }
}
