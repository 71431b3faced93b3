//! Samples, figures and the Markdown table.

use super::*;

#[derive(Default)]
pub(crate) struct Samples {
    pub(crate) times: Vec<Duration>,
    pub(crate) lost: usize,
}

impl Samples {
    pub(crate) fn absorb(&mut self, other: Samples) {
        self.times.extend(other.times);
        self.lost += other.lost;
    }

    /// The `q` quantile by the nearest-rank method (1.0 is the maximum).
    pub(crate) fn quantile(&self, q: f64) -> Option<Duration> {
        let mut sorted = self.times.clone();
        sorted.sort();
        let rank = (q * sorted.len() as f64).ceil() as usize;
        sorted.get(rank.clamp(1, sorted.len().max(1)) - 1).copied()
    }
}

pub(crate) fn plural(count: usize) -> &'static str {
    if count == 1 { "" } else { "s" }
}

pub(crate) fn time_figure(time: Option<Duration>) -> Figure {
    time.map_or(Figure::None("no sample".into()), Figure::Time)
}

pub(crate) fn lost_note(chat: &Samples, floor: &Samples) -> String {
    if chat.lost + floor.lost == 0 {
        String::new()
    } else {
        format!("; timed out: {} / {}", chat.lost, floor.lost)
    }
}

pub(crate) enum Figure {
    Time(Duration),
    /// Messages per second: more is better.
    Rate(f64),
    Bytes(u64),
    /// Events per second: more is worse.
    PerSecond(f64),
    None(String),
}

impl Figure {
    /// The cost as a number, larger worse: a rate is inverted.
    pub(crate) fn cost(&self) -> Option<f64> {
        match self {
            Figure::Time(t) => Some(t.as_secs_f64()),
            Figure::Rate(r) if *r > 0.0 => Some(1.0 / r),
            Figure::Bytes(b) => Some(*b as f64),
            Figure::PerSecond(p) => Some(*p),
            Figure::Rate(_) | Figure::None(_) => None,
        }
    }
}

impl fmt::Display for Figure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Figure::Time(t) => {
                let micros = t.as_secs_f64() * 1e6;
                match micros {
                    m if m < 1_000.0 => write!(f, "{m:.0} µs"),
                    m if m < 10_000.0 => write!(f, "{:.2} ms", m / 1e3),
                    m if m < 1_000_000.0 => write!(f, "{:.1} ms", m / 1e3),
                    m => write!(f, "{:.2} s", m / 1e6),
                }
            }
            Figure::Rate(r) => write!(f, "{:.1} k msg/s", r / 1e3),
            Figure::Bytes(b) if *b >= 1 << 20 => write!(f, "{:.2} MiB", *b as f64 / 1048576.0),
            Figure::Bytes(b) => write!(f, "{:.0} KiB", *b as f64 / 1024.0),
            Figure::PerSecond(p) => write!(f, "{p:.1} /s"),
            Figure::None(why) => f.write_str(why),
        }
    }
}

pub(crate) struct Row {
    pub(crate) what: String,
    pub(crate) chat: Figure,
    pub(crate) floor: Figure,
    /// For latency rows: the floor's one-way latency at the same quantile.
    pub(crate) one_way: Option<Figure>,
    /// How the floor was measured (and any lost samples).
    pub(crate) how: String,
}

#[derive(Default)]
pub(crate) struct Table {
    pub(crate) rows: Vec<Row>,
}

impl Table {
    pub(crate) fn row(&mut self, row: Row) {
        self.rows.push(row);
    }

    pub(crate) fn failed(&mut self, what: &str, why: &str) {
        self.rows.push(Row {
            what: what.into(),
            chat: Figure::None("—".into()),
            floor: Figure::None("—".into()),
            one_way: None,
            how: why.into(),
        });
    }
}

pub(crate) fn ratio(chat: &Figure, floor: &Figure) -> String {
    match (chat.cost(), floor.cost()) {
        (Some(c), Some(f)) if f > 0.0 => format!("{:.2}", c / f),
        _ => "—".into(),
    }
}

impl fmt::Display for Table {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let header = [
            "measurement",
            "p2pchat",
            "floor",
            "×floor",
            "×1-way",
            "floor measured as",
        ];
        let cells: Vec<[String; 6]> = self
            .rows
            .iter()
            .map(|row| {
                [
                    row.what.clone(),
                    row.chat.to_string(),
                    row.floor.to_string(),
                    ratio(&row.chat, &row.floor),
                    row.one_way
                        .as_ref()
                        .map_or("".into(), |one_way| ratio(&row.chat, one_way)),
                    row.how.clone(),
                ]
            })
            .collect();
        let mut widths = header.map(|h| h.chars().count());
        for row in &cells {
            for (width, cell) in widths.iter_mut().zip(row) {
                *width = (*width).max(cell.chars().count());
            }
        }
        let line = |f: &mut fmt::Formatter<'_>, cells: &[String]| -> fmt::Result {
            for (i, (cell, width)) in cells.iter().zip(widths).enumerate() {
                let pad = width - cell.chars().count();
                // Numbers are right-aligned, words left-aligned.
                if (1..=4).contains(&i) {
                    write!(f, "| {}{cell} ", " ".repeat(pad))?;
                } else {
                    write!(f, "| {cell}{} ", " ".repeat(pad))?;
                }
            }
            writeln!(f, "|")
        };
        line(f, &header.map(String::from))?;
        let rule: Vec<String> = widths
            .iter()
            .enumerate()
            .map(|(i, &w)| {
                if (1..=4).contains(&i) {
                    format!("{}:", "-".repeat(w - 1))
                } else {
                    "-".repeat(w)
                }
            })
            .collect();
        writeln!(
            f,
            "|{}|",
            rule.iter()
                .map(|r| format!(" {r} "))
                .collect::<Vec<_>>()
                .join("|")
        )?;
        for row in &cells {
            line(f, row)?;
        }
        Ok(())
    }
}
