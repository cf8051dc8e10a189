//! What a run's test losses say after each epoch, as Keras's callbacks decide it:
//! - the best so far: `ModelCheckpoint(monitor="val_loss", save_best_only=True)` keeps the
//!   checkpoint of the lowest test loss (`<run>/best/`);
//! - when to stop: `EarlyStopping(monitor="val_loss", patience, min_delta)`
//!   (keras/src/callbacks/early_stopping.py, where `min_delta` is negated for a loss): an epoch
//!   improves when its loss is below the best so far by more than `min_delta` (and then becomes
//!   the best), and training stops once `patience` epochs in a row have not improved.
//!
//! The state is replayed from metrics.csv, so a resumed run decides as one that never stopped.
use crate::config::TrainingConfig;
use crate::run::metrics::EpochRow;

#[derive(Debug, Clone)]
pub struct Watch {
    /// The lowest test loss so far (for `best/`).
    lowest: f64,
    /// EarlyStopping's `best` and `wait`.
    best: f64,
    wait: usize,
    patience: Option<usize>,
    min_delta: f64,
}

/// What one epoch's test loss says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Verdict {
    /// The lowest test loss so far: this epoch's checkpoint is the best one.
    pub best: bool,
    /// Early stopping: stop after this epoch.
    pub stop: bool,
}

impl Watch {
    /// The watch of a run of `cfg` after the epochs of `history`.
    pub fn new(cfg: &TrainingConfig, history: &[EpochRow]) -> Watch {
        let mut w = Watch {
            lowest: f64::INFINITY,
            best: f64::INFINITY,
            wait: 0,
            patience: cfg.early_stopping,
            min_delta: cfg.min_delta,
        };
        for row in history {
            w.epoch(row.test_loss);
        }
        w
    }

    /// Feeds one epoch's test loss.
    pub fn epoch(&mut self, test_loss: f64) -> Verdict {
        let best = test_loss < self.lowest;
        if best {
            self.lowest = test_loss;
        }
        if test_loss + self.min_delta < self.best {
            self.best = test_loss;
            self.wait = 0;
        } else {
            self.wait += 1;
        }
        Verdict {
            best,
            stop: self.stopped(),
        }
    }

    /// Whether early stopping has stopped the run (its patience is used up).
    pub fn stopped(&self) -> bool {
        self.patience.is_some_and(|p| self.wait >= p)
    }

    /// Epochs in a row without improvement, and the best test loss, for messages.
    pub fn waited(&self) -> (usize, f64) {
        (self.wait, self.best)
    }
}
