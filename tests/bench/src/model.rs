//! The results model: figures, the variants measured in each, their samples and the ratios.

use serde::{Deserialize, Serialize};

/// Who a variant belongs to: ours, a peer we compare against, or the limit (native).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Side {
    Ours,
    Peer,
    Limit,
}

/// One variant of a figure: its samples, or why it was not measured.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Row {
    pub name: String,
    pub side: Side,
    pub samples: Vec<f64>,
    /// Set when the variant could not be measured in this run (part not landed, tool missing...).
    pub not_measured: Option<String>,
    /// A secondary value per row (UDP loss %, p99 latency), as free text.
    pub note: Option<String>,
}

impl Row {
    pub fn new(name: &str, side: Side) -> Self {
        Row {
            name: name.to_string(),
            side,
            samples: Vec::new(),
            not_measured: None,
            note: None,
        }
    }

    pub fn median(&self) -> Option<f64> {
        median(&self.samples)
    }
}

/// A headline figure: what is measured, its unit, and every variant.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Figure {
    pub id: String,
    pub title: String,
    pub unit: String,
    pub higher_is_better: bool,
    pub conditions: String,
    pub rows: Vec<Row>,
}

/// ours / peer for one pair, oriented so that > 1 means burrow is better.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Ratio {
    pub ours: String,
    pub peer: String,
    pub ratio: f64,
}

impl Figure {
    /// The median of the first row whose name starts with `prefix`.
    pub fn median_of(&self, prefix: &str) -> Option<f64> {
        self.rows
            .iter()
            .find(|r| r.name.starts_with(prefix))
            .and_then(|r| r.median())
    }

    pub fn row_mut(&mut self, name: &str) -> &mut Row {
        let idx = self
            .rows
            .iter()
            .position(|r| r.name == name)
            .expect("row declared before use");
        &mut self.rows[idx]
    }

    /// Every ours-vs-peer ratio that both sides measured, "better" oriented above 1.
    pub fn ratios(&self) -> Vec<Ratio> {
        let mut out = Vec::new();
        for ours in self.rows.iter().filter(|r| r.side == Side::Ours) {
            for peer in self.rows.iter().filter(|r| r.side != Side::Ours) {
                if let (Some(o), Some(p)) = (ours.median(), peer.median()) {
                    if o > 0.0 && p > 0.0 {
                        let ratio = if self.higher_is_better { o / p } else { p / o };
                        out.push(Ratio {
                            ours: ours.name.clone(),
                            peer: peer.name.clone(),
                            ratio,
                        });
                    }
                }
            }
        }
        out
    }
}

/// The machine the run happened on, for the report's conditions.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MachineInfo {
    pub cores: usize,
    pub memory_gib: f64,
    pub kernel: String,
    pub os: String,
}

/// One whole benchmark run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Results {
    pub date: String,
    pub quick: bool,
    pub repetitions: usize,
    pub machine: MachineInfo,
    pub figures: Vec<Figure>,
}

/// The median of a sample set (mean of the middle two for even counts).
pub fn median(samples: &[f64]) -> Option<f64> {
    if samples.is_empty() {
        return None;
    }
    let mut v = samples.to_vec();
    v.sort_by(|a, b| a.total_cmp(b));
    let n = v.len();
    Some(if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    })
}

/// The p-th percentile (0..=100) by nearest rank.
pub fn percentile(samples: &[f64], p: f64) -> Option<f64> {
    if samples.is_empty() {
        return None;
    }
    let mut v = samples.to_vec();
    v.sort_by(|a, b| a.total_cmp(b));
    let rank = ((p / 100.0) * v.len() as f64).ceil().max(1.0) as usize;
    Some(v[rank.min(v.len()) - 1])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_odd_even_empty() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), Some(2.5));
        assert_eq!(median(&[]), None);
    }

    #[test]
    fn percentile_nearest_rank() {
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&v, 99.0), Some(99.0));
        assert_eq!(percentile(&v, 50.0), Some(50.0));
        assert_eq!(percentile(&[5.0], 99.0), Some(5.0));
    }

    #[test]
    fn ratios_orient_to_better_is_above_one() {
        let mut f = Figure {
            id: "x".into(),
            title: "x".into(),
            unit: "s".into(),
            higher_is_better: false,
            conditions: String::new(),
            rows: vec![Row::new("ours", Side::Ours), Row::new("peer", Side::Peer)],
        };
        f.row_mut("ours").samples = vec![1.0];
        f.row_mut("peer").samples = vec![2.0];
        let r = f.ratios();
        assert_eq!(r.len(), 1);
        assert!((r[0].ratio - 2.0).abs() < 1e-9);
        f.higher_is_better = true;
        assert!((f.ratios()[0].ratio - 0.5).abs() < 1e-9);
    }

    #[test]
    fn unmeasured_rows_give_no_ratio() {
        let mut f = Figure {
            id: "x".into(),
            title: "x".into(),
            unit: "Gbit/s".into(),
            higher_is_better: true,
            conditions: String::new(),
            rows: vec![Row::new("ours", Side::Ours), Row::new("peer", Side::Peer)],
        };
        f.row_mut("peer").samples = vec![2.0];
        f.row_mut("ours").not_measured = Some("not landed".into());
        assert!(f.ratios().is_empty());
    }
}
