//! Schedules as pure functions of the step (official `src/utils/schedulers.py` and the
//! momentum generator in `src/train.py`; reference §4). The official schedulers are stateful
//! objects stepped once per iteration, starting their counter at 1 on the first step; here
//! `k` is that counter (the first optimiser step uses k = 1).

use ijepa_dsl::config::{EmaConfig, LrSchedule, WdSchedule, WdShape};

/// All schedules of a run, evaluated at any step.
#[derive(Debug, Clone)]
pub struct Schedules {
    lr: LrSchedule,
    wd: WdSchedule,
    ema: EmaConfig,
    warmup_steps: usize,
    /// The warm-up is `np.linspace(start, peak, W)` (DINO), reaching the peak on its last step.
    linspace_warmup: bool,
    /// The cosine is floored at the final rate (I-JEPA's `max(final_lr, ...)`).
    final_floor: bool,
    total_steps: usize,
    ema_steps: usize,
    ema_denom: f64,
}

impl Schedules {
    /// Schedules for `epochs` epochs of `ipe` iterations, scaled by `ipe_scale`.
    pub fn new(lr: &LrSchedule, wd: &WdSchedule, ema: &EmaConfig, ipe: usize, epochs: usize, ipe_scale: f64) -> Self {
        let total = (ipe_scale * epochs as f64 * ipe as f64) as usize;
        // (the official generator's `int(ipe*num_epochs*ipe_scale)+1` values, multiplied in
        // its order: `int(0.3*3*30)` is 26, `int(30*3*0.3)` 27)
        let ema_denom = (ipe * epochs) as f64 * ipe_scale;
        Self {
            lr: lr.clone(),
            wd: wd.clone(),
            ema: ema.clone(),
            warmup_steps: (lr.warmup_epochs * ipe as f64) as usize,
            linspace_warmup: false,
            final_floor: true,
            total_steps: total,
            ema_steps: ema_denom as usize + 1,
            ema_denom,
        }
    }

    /// The same schedules with the learning-rate warm-up of DINO's `cosine_scheduler` when
    /// `yes`: `np.linspace(start, peak, W)`, the peak on the warm-up's last step `W - 1`
    /// (I-JEPA's `WarmupCosineSchedule` and MAE's `lr * epoch / warmup_epochs` reach it on the
    /// step after, `W`). The cosine part is the same.
    pub fn with_linspace_warmup(self, yes: bool) -> Self {
        Self { linspace_warmup: yes, ..self }
    }

    /// The same schedules with the cosine floored at the final learning rate when `yes` (the
    /// default: I-JEPA's `WarmupCosineSchedule`, where a final rate above the peak holds from
    /// the warm-up's end and the cosine past its end stays above it); MAE's
    /// `adjust_learning_rate` and DINO's `cosine_scheduler` are not floored (a final rate above
    /// the peak is reached along the half cosine).
    pub fn with_final_floor(self, yes: bool) -> Self {
        Self { final_floor: yes, ..self }
    }

    /// Steps the schedules span, T = int(ipe_scale * epochs * ipe).
    pub fn total_steps(&self) -> usize {
        self.total_steps
    }

    /// Steps of the learning-rate warmup, int(warmup_epochs * ipe).
    pub fn warmup_steps(&self) -> usize {
        self.warmup_steps
    }

    /// Learning rate at counter k (warmup then cosine, official `WarmupCosineSchedule`; DINO's
    /// warm-up with [`Self::with_linspace_warmup`]).
    pub fn lr(&self, k: usize) -> f64 {
        let (s, r, f) = (self.lr.start, self.lr.peak, self.lr.final_);
        if k < self.warmup_steps {
            let span = match self.linspace_warmup {
                // np.linspace(s, r, 1) is [s]
                true => (self.warmup_steps - 1).max(1),
                false => self.warmup_steps,
            };
            s + (k as f64 / span as f64) * (r - s)
        } else {
            let t = self.total_steps.saturating_sub(self.warmup_steps).max(1) as f64;
            let p = (k - self.warmup_steps) as f64 / t;
            let lr = f + (r - f) * 0.5 * (1.0 + (std::f64::consts::PI * p).cos());
            if self.final_floor {
                lr.max(f)
            } else {
                lr
            }
        }
    }

    /// Weight decay at counter k (official `CosineWDSchedule`, or linear), for the decayed groups.
    pub fn wd(&self, k: usize) -> f64 {
        let (r, f) = (self.wd.start, self.wd.final_);
        let t = self.total_steps.max(1) as f64;
        let p = k as f64 / t;
        let wd = match self.wd.shape {
            WdShape::Cosine => f + (r - f) * 0.5 * (1.0 + (std::f64::consts::PI * p).cos()),
            WdShape::Linear => r + (f - r) * p.min(1.0),
        };
        if f <= r {
            wd.max(f)
        } else {
            wd.min(f)
        }
    }

    /// EMA momentum for the i-th step (i from 0): linear over int(ipe*epochs*ipe_scale)+1 values,
    /// `m0 + i*(m1-m0)/(ipe*epochs*ipe_scale)` (official generator); past them (ipe-scale below
    /// 1, where the official generator runs out and its run stops) the last value holds.
    pub fn momentum(&self, i: usize) -> f64 {
        let (m0, m1) = (self.ema.start, self.ema.final_);
        let i = i.min(self.ema_steps - 1);
        m0 + i as f64 * (m1 - m0) / self.ema_denom.max(1.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ijepa_dsl::config::OptimizerConfig;

    fn sched(ipe: usize, epochs: usize) -> Schedules {
        let o = OptimizerConfig::default();
        Schedules::new(&o.lr, &o.weight_decay, &EmaConfig::default(), ipe, epochs, 1.0)
    }

    #[test]
    fn lr_warms_up_then_decays_to_final() {
        // official: 40 warmup epochs of 300
        let s = sched(10, 300);
        assert!((s.lr(0) - 2e-4).abs() < 1e-12);
        assert!((s.lr(200) - (2e-4 + 0.5 * (1e-3 - 2e-4))).abs() < 1e-12);
        assert!((s.lr(400) - 1e-3).abs() < 1e-12);
        assert!((s.lr(3000) - 1e-6).abs() < 1e-12);
        assert!(s.lr(1700) < 1e-3 && s.lr(1700) > 1e-6);
    }

    #[test]
    fn dino_warmup_is_a_linspace_that_ends_at_the_peak() {
        let o = OptimizerConfig::default();
        let lr = LrSchedule { start: 0.0, peak: 1e-3, final_: 1e-6, warmup_epochs: 2.0, blr: None };
        let dino = |warmup_epochs: f64| {
            let lr = LrSchedule { warmup_epochs, ..lr.clone() };
            Schedules::new(&lr, &o.weight_decay, &EmaConfig::default(), 2, 10, 1.0).with_linspace_warmup(true)
        };
        // main_dino's cosine_scheduler(1e-3, 1e-6, 10, 2, warmup_epochs=2): np.linspace(0, 1e-3, 4),
        // then 1e-6 + 0.5 * (1e-3 - 1e-6) * (1 + cos(pi * i / 16)) for i in 0..16
        let want = [0.0, 1e-3 / 3.0, 2e-3 / 3.0, 1e-3, 1e-3, 1e-6 + 0.5 * (1e-3 - 1e-6) * (1.0 + (std::f64::consts::PI / 16.0).cos())];
        for (k, w) in want.iter().enumerate() {
            assert!((dino(2.0).lr(k) - w).abs() < 1e-15, "step {k}: {} against {w}", dino(2.0).lr(k));
        }
        // I-JEPA's and MAE's warm-up reach the peak a step later
        let plain = Schedules::new(&lr, &o.weight_decay, &EmaConfig::default(), 2, 10, 1.0);
        assert!((plain.lr(3) - 7.5e-4).abs() < 1e-15 && (plain.lr(4) - 1e-3).abs() < 1e-15);
        // np.linspace(0, peak, 1) is [0]; no warm-up starts at the peak
        assert_eq!(dino(0.5).lr(0), 0.0);
        assert!((dino(0.5).lr(1) - 1e-3).abs() < 1e-15);
        assert!((dino(0.0).lr(0) - 1e-3).abs() < 1e-15);
    }

    #[test]
    fn wd_cosine_from_start_to_final() {
        let s = sched(10, 300);
        assert!((s.wd(0) - 0.04).abs() < 1e-12);
        assert!((s.wd(1500) - 0.22).abs() < 1e-12);
        assert!((s.wd(3000) - 0.4).abs() < 1e-12);
        // past T the official formula turns back down (cos > pi); only passing `final` is
        // clamped, so we do the same
        assert!((s.wd(4000) - 0.31).abs() < 1e-12, "{}", s.wd(4000));
    }

    #[test]
    fn momentum_is_linear() {
        let s = sched(10, 300);
        assert!((s.momentum(0) - 0.996).abs() < 1e-12);
        assert!((s.momentum(1500) - 0.998).abs() < 1e-12);
        assert!((s.momentum(3000) - 1.0).abs() < 1e-12);
        // the official generator's length, `int(ipe*num_epochs*ipe_scale)+1`, in its order of
        // products: 90 * 0.3 is 27.0, where 0.3 * 3 * 30 is 26.999999999999996 (its last value
        // was held short of the final momentum)
        let o = OptimizerConfig::default();
        let short = Schedules::new(&o.lr, &o.weight_decay, &EmaConfig::default(), 30, 3, 0.3);
        assert_eq!(short.total_steps(), 26);
        assert!((short.momentum(27) - 1.0).abs() < 1e-15 && short.momentum(26) < 1.0, "{}", short.momentum(27));
        assert_eq!(short.momentum(60), short.momentum(27));
    }

    /// I-JEPA's cosine is floored at a final rate above the peak (it holds from the warm-up's
    /// end); MAE's and DINO's rise to it along the half cosine (they were held there too).
    #[test]
    fn a_final_rate_above_the_peak_is_a_floor_for_ijepa_alone() {
        let o = OptimizerConfig::default();
        let lr = LrSchedule { start: 0.0, peak: 5e-4, final_: 1e-3, warmup_epochs: 1.0, blr: None };
        let s = Schedules::new(&lr, &o.weight_decay, &EmaConfig::default(), 5, 3, 1.0);
        assert_eq!(s.lr(5), 1e-3);
        assert_eq!(s.lr(10), 1e-3);
        let unfloored = s.with_final_floor(false);
        // adjust_learning_rate(lr=5e-4, min_lr=1e-3, warmup_epochs=1, epochs=3) at step 5 of 5 an epoch
        assert!((unfloored.lr(5) - 5e-4).abs() < 1e-15);
        let half = 1e-3 + (5e-4 - 1e-3) * 0.5 * (1.0 + (std::f64::consts::PI * 5.0 / 10.0).cos());
        assert!((unfloored.lr(10) - half).abs() < 1e-15, "{}", unfloored.lr(10));
        assert!((unfloored.lr(15) - 1e-3).abs() < 1e-15);
    }
}
