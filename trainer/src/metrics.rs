//! `metrics.csv`: one row per epoch of a run, written by the reporter after every epoch and
//! read back by `--resume`, `best/` and the plots.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::TrainError;

/// One epoch's numbers, a row of `metrics.csv`.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct EpochRecord {
    /// 1-based epoch.
    pub epoch: usize,
    /// Mean training loss.
    pub train_loss: f64,
    /// Training top-1 accuracy, percent (on augmented crops).
    pub train_acc: f64,
    /// Training top-5 accuracy, percent.
    pub train_top5: f64,
    /// Mean validation loss.
    pub val_loss: f64,
    /// Validation top-1 accuracy, percent.
    pub val_acc: f64,
    /// Validation top-5 accuracy, percent.
    pub val_top5: f64,
    /// Learning rate of the epoch's last step.
    pub lr: f64,
    /// Wall-clock seconds of the epoch (training and validation).
    pub seconds: f64,
}

const CSV_HEADER: &str =
    "epoch,train_loss,train_acc,train_top5,val_loss,val_acc,val_top5,lr,seconds";

impl EpochRecord {
    fn csv_row(&self) -> String {
        format!(
            "{},{:.6},{:.4},{:.4},{:.6},{:.4},{:.4},{:.6e},{:.2}",
            self.epoch,
            self.train_loss,
            self.train_acc,
            self.train_top5,
            self.val_loss,
            self.val_acc,
            self.val_top5,
            self.lr,
            self.seconds
        )
    }

    fn parse(line: &str) -> Option<Self> {
        let v: Vec<&str> = line.split(',').collect();
        if v.len() != 9 {
            return None;
        }
        let f = |i: usize| v[i].trim().parse::<f64>().ok();
        Some(Self {
            epoch: v[0].trim().parse().ok()?,
            train_loss: f(1)?,
            train_acc: f(2)?,
            train_top5: f(3)?,
            val_loss: f(4)?,
            val_acc: f(5)?,
            val_top5: f(6)?,
            lr: f(7)?,
            seconds: f(8)?,
        })
    }
}

/// Writes `records` as CSV, atomically.
pub fn write_csv(path: &Path, records: &[EpochRecord]) -> Result<(), TrainError> {
    let mut text = String::from(CSV_HEADER);
    text.push('\n');
    for r in records {
        text.push_str(&r.csv_row());
        text.push('\n');
    }
    crate::artifact::write_atomically(path, text.as_bytes())
}

/// Reads a CSV written by [`write_csv`]; a missing file is an empty history.
pub fn read_csv(path: &Path) -> Result<Vec<EpochRecord>, TrainError> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(TrainError::io(path, e)),
    };
    text.lines()
        .skip(1)
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            EpochRecord::parse(l).ok_or_else(|| TrainError::Json {
                path: path.to_path_buf(),
                message: format!("not a metrics row: `{l}`"),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_round_trips_and_rejects_garbage() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("metrics.csv");
        assert!(read_csv(&path).unwrap().is_empty());
        let rows = vec![
            EpochRecord {
                epoch: 1,
                train_loss: 1.5,
                train_acc: 40.0,
                train_top5: 90.0,
                val_loss: 1.25,
                val_acc: 50.5,
                val_top5: 95.0,
                lr: 1e-3,
                seconds: 12.5,
            },
            EpochRecord {
                epoch: 2,
                ..Default::default()
            },
        ];
        write_csv(&path, &rows).unwrap();
        assert_eq!(read_csv(&path).unwrap(), rows);
        std::fs::write(&path, format!("{CSV_HEADER}\n1,2,3\n")).unwrap();
        let err = read_csv(&path).unwrap_err().to_string();
        assert!(
            err.contains("metrics.csv") && err.contains("1,2,3"),
            "{err}"
        );
    }
}
