//! Watching a run: one line per epoch (or Burn's TUI on a terminal), `metrics.csv` and
//! `curves.png` rewritten after every epoch.
//!
//! [`EpochReporter`] is a Burn [`MetricsRenderer`]: the learner hands it every metric update.
//! It keeps each epoch's final values (train and validation loss, top-1, top-5, learning rate),
//! and at the end of each epoch appends a row to the CSV, redraws the plot and, when stdout is
//! not a terminal, prints one readable line. On a terminal it forwards everything to Burn's
//! TUI as well.

use std::collections::HashMap;
use std::io::IsTerminal;
use std::path::PathBuf;
use std::time::Instant;

use burn::train::logger::{EvaluationProgressLogger, TrainingProgressLogger};
use burn::train::metric::{MetricDefinition, MetricId, NumericEntry};
use burn::train::renderer::{
    EvaluationName, MetricState, MetricsRenderer, MetricsRendererEvaluation,
    MetricsRendererTraining,
};
use burn::train::{Interrupter, LearnerSummary};
use indicatif::{ProgressBar, ProgressStyle};

use crate::metrics::{EpochRecord, write_csv};

/// Which of our columns a Burn metric feeds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Column {
    Loss,
    Accuracy,
    Top5,
    Lr,
}

fn column(name: &str) -> Option<Column> {
    if name == "Loss" {
        Some(Column::Loss)
    } else if name == "Accuracy" {
        Some(Column::Accuracy)
    } else if name.starts_with("Top-K Accuracy") {
        Some(Column::Top5)
    } else if name.contains("Learning Rate") || name.eq_ignore_ascii_case("lr") {
        Some(Column::Lr)
    } else {
        None
    }
}

/// Burn [`MetricsRenderer`] that writes `metrics.csv` and `curves.png` in the run directory
/// after every epoch and prints one line per epoch; on a terminal it also drives Burn's TUI.
pub struct EpochReporter {
    dir: PathBuf,
    inner: Option<Box<dyn MetricsRenderer>>,
    columns: HashMap<MetricId, Column>,
    current: EpochRecord,
    history: Vec<EpochRecord>,
    total_epochs: usize,
    started: Instant,
    bar: Option<ProgressBar>,
    show_bar: bool,
    quiet: bool,
    /// Stops the run when `metrics.csv` cannot be written.
    interrupter: Interrupter,
}

impl EpochReporter {
    /// A reporter writing into `dir`. `history` holds the epochs before a resumed run's start
    /// (later rows are dropped as the run rewrites them). With `tui`, and stdout a terminal,
    /// Burn's TUI shows the run; otherwise a line per epoch goes to stdout and, when stderr is a
    /// terminal, a progress bar to stderr. `quiet` prints nothing (tests).
    pub fn new(
        dir: impl Into<PathBuf>,
        history: Vec<EpochRecord>,
        interrupter: Interrupter,
        checkpoint: Option<usize>,
        tui: bool,
        quiet: bool,
    ) -> Self {
        let inner = (tui && !quiet && std::io::stdout().is_terminal())
            .then(|| burn::train::renderer::default_renderer(interrupter.clone(), checkpoint));
        let show_bar = inner.is_none() && !quiet && std::io::stderr().is_terminal();
        Self {
            dir: dir.into(),
            inner,
            columns: HashMap::new(),
            current: EpochRecord::default(),
            history,
            total_epochs: 0,
            started: Instant::now(),
            bar: None,
            show_bar,
            quiet,
            interrupter,
        }
    }

    fn record(&mut self, state: &MetricState, train: bool) {
        let MetricState::Numeric(entry, Some(value)) = state else {
            return;
        };
        let Some(&column) = self.columns.get(&entry.metric_id) else {
            return;
        };
        // Per-batch entries carry the batch's value; the epoch's own number comes as `Final` at
        // the end of each split. For the learning rate, whose `Final` is the epoch's mean, keep
        // the last step's value instead.
        let value = match (value, column) {
            (NumericEntry::Final(_), Column::Lr) => return,
            (NumericEntry::Final(v), _) => *v,
            (NumericEntry::Value(v), Column::Lr) => *v,
            (
                NumericEntry::Aggregated {
                    aggregated_value, ..
                },
                Column::Lr,
            ) => *aggregated_value,
            _ => return,
        };
        let r = &mut self.current;
        match (column, train) {
            (Column::Loss, true) => r.train_loss = value,
            (Column::Accuracy, true) => r.train_acc = value,
            (Column::Top5, true) => r.train_top5 = value,
            (Column::Loss, false) => r.val_loss = value,
            (Column::Accuracy, false) => r.val_acc = value,
            (Column::Top5, false) => r.val_top5 = value,
            (Column::Lr, _) => r.lr = value,
        }
    }

    fn finish_epoch(&mut self, epoch: usize) {
        let mut record = self.current;
        record.epoch = epoch;
        record.seconds = self.started.elapsed().as_secs_f64();
        self.history.retain(|r| r.epoch < epoch);
        self.history.push(record);
        self.current = EpochRecord::default();
        self.started = Instant::now();
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
        if self.inner.is_none() && !self.quiet {
            println!(
                "epoch {epoch:>3}/{}  train loss {:.4} acc {:5.1}% top5 {:5.1}%  |  val loss \
                 {:.4} acc {:5.1}% top5 {:5.1}%  |  lr {:.2e}  {:.1}s",
                self.total_epochs,
                record.train_loss,
                record.train_acc,
                record.train_top5,
                record.val_loss,
                record.val_acc,
                record.val_top5,
                record.lr,
                record.seconds
            );
        }
        // The run's record: without it the best epoch cannot be chosen, so a failed write
        // (a full disk) stops the run, keeping its last complete checkpoint. The plot is only a
        // view of it.
        let run_dir = crate::rundir::RunDir::new(&self.dir);
        let csv = run_dir.metrics_file();
        if let Err(e) = write_csv(&csv, &self.history) {
            self.interrupter.stop(Some(&e.to_string()));
        }
        let png = run_dir.curves_file();
        if let Err(e) = crate::plot::plot_curves(&png, &self.history) {
            log::warn!("could not draw {}: {e}", png.display());
        }
    }
}

impl MetricsRendererTraining for EpochReporter {
    fn update_train(&mut self, state: MetricState) {
        self.record(&state, true);
        if let Some(inner) = &mut self.inner {
            inner.update_train(state);
        }
    }

    fn update_valid(&mut self, state: MetricState) {
        self.record(&state, false);
        if let Some(inner) = &mut self.inner {
            inner.update_valid(state);
        }
    }

    fn on_train_end(
        &mut self,
        summary: Option<LearnerSummary>,
    ) -> Result<(), Box<dyn core::error::Error>> {
        match &mut self.inner {
            Some(inner) => inner.on_train_end(summary),
            None => Ok(()),
        }
    }
}

impl MetricsRendererEvaluation for EpochReporter {
    fn update_test(&mut self, name: EvaluationName, state: MetricState) {
        if let Some(inner) = &mut self.inner {
            inner.update_test(name, state);
        }
    }
}

impl TrainingProgressLogger for EpochReporter {
    fn start(
        &mut self,
        total_epochs: usize,
        starting_epoch: usize,
        total_items: Option<usize>,
        label: Option<&str>,
    ) {
        self.total_epochs = total_epochs;
        self.started = Instant::now();
        if let Some(inner) = &mut self.inner {
            inner.start(total_epochs, starting_epoch, total_items, label);
        }
    }

    fn update_epoch(&mut self, epoch: usize) {
        self.finish_epoch(epoch);
        if let Some(inner) = &mut self.inner {
            inner.update_epoch(epoch);
        }
    }

    fn start_split(&mut self, split: &str, total_items: usize) {
        if self.show_bar {
            let bar = ProgressBar::new(total_items as u64);
            bar.set_style(
                ProgressStyle::with_template("{msg:>6} [{bar:30}] {pos}/{len} {per_sec} eta {eta}")
                    .unwrap_or_else(|_| ProgressStyle::default_bar())
                    .progress_chars("=> "),
            );
            bar.set_message(split.to_string());
            self.bar = Some(bar);
        }
        if let Some(inner) = &mut self.inner {
            inner.start_split(split, total_items);
        }
    }

    fn update_split(&mut self, items_processed: usize) {
        if let Some(bar) = &self.bar {
            bar.set_position(items_processed as u64);
        }
        if let Some(inner) = &mut self.inner {
            inner.update_split(items_processed);
        }
    }

    fn end_split(&mut self) {
        if let Some(inner) = &mut self.inner {
            inner.end_split();
        }
    }

    fn end(&mut self) {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
        if let Some(inner) = &mut self.inner {
            inner.end();
        }
    }

    fn log_event_training(&mut self, event: String) {
        if let Some(inner) = &mut self.inner {
            inner.log_event_training(event);
        }
    }
}

impl EvaluationProgressLogger for EpochReporter {
    fn start_global_progress(&mut self, total_tests: usize) {
        if let Some(inner) = &mut self.inner {
            inner.start_global_progress(total_tests);
        }
    }

    fn start_test(&mut self, name: &str, total_items: usize) {
        if let Some(inner) = &mut self.inner {
            inner.start_test(name, total_items);
        }
    }

    fn update_test_progress(&mut self, items_processed: usize) {
        if let Some(inner) = &mut self.inner {
            inner.update_test_progress(items_processed);
        }
    }

    fn end_test(&mut self) {
        if let Some(inner) = &mut self.inner {
            inner.end_test();
        }
    }

    fn end_global_progress(&mut self) {
        if let Some(inner) = &mut self.inner {
            inner.end_global_progress();
        }
    }

    fn log_event_evaluation(&mut self, event: String) {
        if let Some(inner) = &mut self.inner {
            inner.log_event_evaluation(event);
        }
    }
}

impl MetricsRenderer for EpochReporter {
    fn manual_close(&mut self) {
        if let Some(inner) = &mut self.inner {
            inner.manual_close();
        }
    }

    fn register_metric(&mut self, definition: MetricDefinition) {
        if let Some(column) = column(&definition.name) {
            self.columns.insert(definition.metric_id.clone(), column);
        }
        if let Some(inner) = &mut self.inner {
            inner.register_metric(definition);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A `metrics.csv` that cannot be written (here a directory is in its way; a full disk
    /// fails the same write) stops the run with the reason naming the file, where a warning
    /// would let it go on with a record that no longer says which epoch was best.
    #[test]
    fn a_metrics_csv_that_cannot_be_written_stops_the_run() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("metrics.csv")).unwrap();
        let interrupter = Interrupter::new();
        let mut reporter = EpochReporter::new(
            dir.path(),
            Vec::new(),
            interrupter.clone(),
            None,
            false,
            true,
        );
        reporter.finish_epoch(1);
        assert!(interrupter.should_stop());
        let reason = interrupter.interruption().and_then(|i| i.reason);
        assert!(
            reason.as_deref().is_some_and(|r| r.contains("metrics.csv")),
            "{reason:?}"
        );
    }

    #[test]
    fn burn_metric_names_map_to_columns() {
        use burn::train::metric::{
            AccuracyMetric, LearningRateMetric, LossMetric, Metric, TopKAccuracyMetric,
        };
        assert_eq!(
            column(&AccuracyMetric::new().name()),
            Some(Column::Accuracy)
        );
        assert_eq!(column(&LossMetric::new().name()), Some(Column::Loss));
        assert_eq!(
            column(&TopKAccuracyMetric::new(5).name()),
            Some(Column::Top5)
        );
        assert_eq!(column(&LearningRateMetric::new().name()), Some(Column::Lr));
    }
}
