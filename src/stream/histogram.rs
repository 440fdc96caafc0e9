//! Latency percentiles in constant memory, for streams of any length.

use serde::Serialize;

/// Bin width in milliseconds.
const BIN_MS: f64 = 0.05;
/// Bins: 0 to 1 s in 0.05 ms steps; slower values land in the last bin
/// (their exact maximum is kept aside).
const BINS: usize = 20_000;

/// A fixed-bin histogram of milliseconds (0.05 ms resolution up to 1 s).
#[derive(Debug, Clone)]
pub struct Histogram {
    counts: Box<[u32; BINS]>,
    n: u64,
    sum: f64,
    max: f64,
}

impl Default for Histogram {
    fn default() -> Histogram {
        Histogram {
            counts: Box::new([0; BINS]),
            n: 0,
            sum: 0.0,
            max: 0.0,
        }
    }
}

/// Percentiles of a [`Histogram`], in milliseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Percentiles {
    /// Samples.
    pub n: u64,
    /// Mean.
    pub mean: f64,
    /// Median.
    pub p50: f64,
    /// 95th percentile.
    pub p95: f64,
    /// 99th percentile.
    pub p99: f64,
    /// Largest sample.
    pub max: f64,
}

impl Histogram {
    /// Records one sample (negative or NaN values count as 0).
    pub fn record(&mut self, ms: f64) {
        let ms = if ms.is_finite() && ms > 0.0 { ms } else { 0.0 };
        let bin = ((ms / BIN_MS) as usize).min(BINS - 1);
        self.counts[bin] = self.counts[bin].saturating_add(1);
        self.n += 1;
        self.sum += ms;
        self.max = self.max.max(ms);
    }

    /// Number of samples.
    pub fn len(&self) -> u64 {
        self.n
    }

    /// Whether nothing was recorded.
    pub fn is_empty(&self) -> bool {
        self.n == 0
    }

    /// The value below which a fraction `q` of the samples lie (the centre
    /// of its bin, capped at the maximum seen).
    pub fn quantile(&self, q: f64) -> f64 {
        if self.n == 0 {
            return 0.0;
        }
        let rank = (q.clamp(0.0, 1.0) * (self.n - 1) as f64).round() as u64;
        let mut seen = 0u64;
        for (i, &c) in self.counts.iter().enumerate() {
            seen += u64::from(c);
            if seen > rank {
                if i == BINS - 1 {
                    return self.max;
                }
                return ((i as f64 + 0.5) * BIN_MS).min(self.max);
            }
        }
        self.max
    }

    /// Mean, median, tails and maximum.
    pub fn percentiles(&self) -> Percentiles {
        Percentiles {
            n: self.n,
            mean: if self.n > 0 {
                self.sum / self.n as f64
            } else {
                0.0
            },
            p50: self.quantile(0.5),
            p95: self.quantile(0.95),
            p99: self.quantile(0.99),
            max: self.max,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_within_a_bin() {
        let mut h = Histogram::default();
        for i in 1..=100 {
            h.record(f64::from(i));
        }
        let p = h.percentiles();
        assert_eq!(p.n, 100);
        assert!((p.p50 - 50.5).abs() <= 0.5 + BIN_MS, "{p:?}");
        assert!((p.p99 - 99.0).abs() <= 1.0 + BIN_MS, "{p:?}");
        assert_eq!(p.max, 100.0);
        assert!((p.mean - 50.5).abs() < 1e-9);
    }

    #[test]
    fn slow_and_odd_samples_do_not_break_it() {
        let mut h = Histogram::default();
        h.record(5000.0);
        h.record(f64::NAN);
        h.record(-3.0);
        assert_eq!(h.len(), 3);
        assert_eq!(h.percentiles().max, 5000.0);
        assert_eq!(h.quantile(1.0), 5000.0);
        assert_eq!(Histogram::default().percentiles().p50, 0.0);
    }
}
