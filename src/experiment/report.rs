//! `reelrank experiment report`: an experiment's events summed up per arm (A/B) or per list
//! (interleaving), with confidence intervals, p-values, the long-tail share and segments.

use std::collections::{BTreeMap, HashSet};

use serde::Serialize;

use super::stats::{sign_test_p, welch_p, wilson_interval};
use super::{interleaving_winner, Arm};
use crate::profiles::{ExperimentEvent, IMPRESSION};

/// A person with fewer ratings than this when shown a list counts as a light rater.
pub const LIGHT_RATER: u32 = 50;

/// One arm (or one segment of one arm) of an A/B test.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ArmReport {
    /// "A" or "B".
    pub arm: String,
    /// The ranker's name.
    pub ranker: String,
    /// Lists shown.
    pub lists: u64,
    /// Movies shown.
    pub impressions: u64,
    /// Clicks.
    pub clicks: u64,
    /// Likes, and ratings of 4 or more.
    pub likes: u64,
    /// Clicks / impressions, with its 95 % Wilson interval.
    pub click_through: f64,
    /// The interval of the click-through.
    pub click_through_95: (f64, f64),
    /// Likes (or ratings ≥ 4) / impressions.
    pub liked_rate: f64,
    /// The interval of the liked rate.
    pub liked_rate_95: (f64, f64),
    /// Clicks of each list shown (the unit the p-values compare).
    #[serde(skip)]
    pub clicks_by_list: Vec<f64>,
    /// Likes of each list shown.
    #[serde(skip)]
    pub likes_by_list: Vec<f64>,
    /// Share of the impressions that are long-tail movies.
    pub long_tail_share: f64,
}

/// The A/B comparison within one segment of people.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SegmentReport {
    /// "all", "new profiles", "known users", "light raters", "heavy raters".
    pub segment: String,
    /// Arm A, then arm B.
    pub arms: Vec<ArmReport>,
    /// Two-sided p-value of the difference in clicks per list (Welch's t-test over lists: a
    /// person's clicks within one list are not independent, so the list is the unit).
    pub click_through_p: f64,
    /// The same for likes per list.
    pub liked_rate_p: f64,
}

/// Team-draft interleaving: who won each list with a click.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct InterleavingReport {
    /// Lists shown.
    pub lists: u64,
    /// Lists whose clicks favoured A.
    pub wins_a: u64,
    /// Lists whose clicks favoured B.
    pub wins_b: u64,
    /// Lists with clicks shared evenly.
    pub ties: u64,
    /// Lists without a click.
    pub no_click: u64,
    /// Two-sided sign test of wins_a against wins_b.
    pub p_value: f64,
    /// Long-tail share of the positions each team contributed (A, B).
    pub long_tail_share: (f64, f64),
}

/// The whole report.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ExperimentReport {
    /// The experiment.
    pub experiment: String,
    /// "ab" or "interleave" (read from the events).
    pub mode: String,
    /// Rankers of A and B as the events recorded them.
    pub rankers: (String, String),
    /// A/B: the comparison over everyone, then per segment.
    pub segments: Vec<SegmentReport>,
    /// Interleaving: the list-by-list comparison.
    pub interleaving: Option<InterleavingReport>,
    /// The winner at p < 0.05, if any: "A", "B" or none.
    pub winner: Option<String>,
}

/// Sums up `events` (of one experiment); `long_tail` says which movies are long-tail.
pub fn report(
    name: &str,
    events: &[ExperimentEvent],
    long_tail: &dyn Fn(u32) -> bool,
) -> ExperimentReport {
    let rankers = (ranker_of(events, Arm::A), ranker_of(events, Arm::B));
    let interleaved = events.iter().any(|e| e.arm == "interleave");
    if interleaved {
        let interleaving = interleave_report(events, long_tail);
        let winner = (interleaving.p_value < 0.05).then(|| {
            if interleaving.wins_a > interleaving.wins_b {
                "A"
            } else {
                "B"
            }
            .to_string()
        });
        return ExperimentReport {
            experiment: name.to_string(),
            mode: "interleave".into(),
            rankers,
            segments: Vec::new(),
            interleaving: Some(interleaving),
            winner,
        };
    }
    let segments: Vec<SegmentReport> = [
        (
            "all",
            &(|_: &ExperimentEvent| true) as &dyn Fn(&ExperimentEvent) -> bool,
        ),
        ("new profiles", &|e: &ExperimentEvent| {
            e.subject.starts_with("profile:")
        }),
        ("known users", &|e: &ExperimentEvent| {
            e.subject.starts_with("user:")
        }),
        ("light raters", &|e: &ExperimentEvent| {
            e.history < LIGHT_RATER
        }),
        ("heavy raters", &|e: &ExperimentEvent| {
            e.history >= LIGHT_RATER
        }),
    ]
    .into_iter()
    .map(|(segment, keep)| {
        let kept: Vec<&ExperimentEvent> = events.iter().filter(|e| keep(e)).collect();
        let arms: Vec<ArmReport> = [Arm::A, Arm::B]
            .into_iter()
            .map(|arm| arm_report(arm, &rankers, &kept, long_tail))
            .collect();
        SegmentReport {
            segment: segment.to_string(),
            click_through_p: welch_p(&arms[0].clicks_by_list, &arms[1].clicks_by_list),
            liked_rate_p: welch_p(&arms[0].likes_by_list, &arms[1].likes_by_list),
            arms,
        }
    })
    .collect();
    let all = &segments[0];
    let winner = (all.click_through_p < 0.05).then(|| {
        if all.arms[0].click_through > all.arms[1].click_through {
            "A"
        } else {
            "B"
        }
        .to_string()
    });
    ExperimentReport {
        experiment: name.to_string(),
        mode: "ab".into(),
        rankers,
        segments,
        interleaving: None,
        winner,
    }
}

fn ranker_of(events: &[ExperimentEvent], arm: Arm) -> String {
    events
        .iter()
        .find(|e| e.team.as_deref() == Some(arm.name()) || e.arm == arm.name())
        .map(|e| e.ranker.clone())
        .unwrap_or_default()
}

fn is_like(e: &ExperimentEvent) -> bool {
    e.kind == "like" || (e.kind == "rating" && e.rating.is_some_and(|r| r >= 4.0))
}

fn arm_report(
    arm: Arm,
    rankers: &(String, String),
    events: &[&ExperimentEvent],
    long_tail: &dyn Fn(u32) -> bool,
) -> ArmReport {
    let mine: Vec<&&ExperimentEvent> = events.iter().filter(|e| e.arm == arm.name()).collect();
    let impressions: Vec<&&&ExperimentEvent> =
        mine.iter().filter(|e| e.kind == IMPRESSION).collect();
    let lists: HashSet<&str> = impressions.iter().map(|e| e.list_id.as_str()).collect();
    let clicks = mine.iter().filter(|e| e.kind == "click").count() as u64;
    let likes = mine.iter().filter(|e| is_like(e)).count() as u64;
    let mut by_list: BTreeMap<&str, (f64, f64)> = lists.iter().map(|&l| (l, (0.0, 0.0))).collect();
    for e in &mine {
        if let Some(counts) = by_list.get_mut(e.list_id.as_str()) {
            counts.0 += f64::from(u8::from(e.kind == "click"));
            counts.1 += f64::from(u8::from(is_like(e)));
        }
    }
    let n = impressions.len() as u64;
    let tail = impressions.iter().filter(|e| long_tail(e.movie_id)).count();
    let rate = |s: u64| if n == 0 { 0.0 } else { s as f64 / n as f64 };
    ArmReport {
        arm: arm.name().to_string(),
        ranker: match arm {
            Arm::A => rankers.0.clone(),
            Arm::B => rankers.1.clone(),
        },
        lists: lists.len() as u64,
        impressions: n,
        clicks,
        likes,
        click_through: rate(clicks),
        click_through_95: wilson_interval(clicks, n),
        liked_rate: rate(likes),
        liked_rate_95: wilson_interval(likes, n),
        long_tail_share: rate(tail as u64),
        clicks_by_list: by_list.values().map(|c| c.0).collect(),
        likes_by_list: by_list.values().map(|c| c.1).collect(),
    }
}

fn interleave_report(
    events: &[ExperimentEvent],
    long_tail: &dyn Fn(u32) -> bool,
) -> InterleavingReport {
    let mut lists: BTreeMap<&str, Vec<Arm>> = BTreeMap::new();
    let (mut shown, mut tail) = ([0u64; 2], [0u64; 2]);
    for e in events {
        let team = e.team.as_deref().and_then(Arm::parse);
        if e.kind == IMPRESSION {
            lists.entry(e.list_id.as_str()).or_default();
            if let Some(team) = team {
                let t = usize::from(team == Arm::B);
                shown[t] += 1;
                tail[t] += u64::from(long_tail(e.movie_id));
            }
        } else if e.kind == "click" {
            if let Some(team) = team {
                lists.entry(e.list_id.as_str()).or_default().push(team);
            }
        }
    }
    let (mut wins_a, mut wins_b, mut ties, mut no_click) = (0, 0, 0, 0);
    for clicked in lists.values() {
        if clicked.is_empty() {
            no_click += 1;
            continue;
        }
        match interleaving_winner(clicked) {
            Some(Arm::A) => wins_a += 1,
            Some(Arm::B) => wins_b += 1,
            None => ties += 1,
        }
    }
    let share = |t: usize| {
        if shown[t] == 0 {
            0.0
        } else {
            tail[t] as f64 / shown[t] as f64
        }
    };
    InterleavingReport {
        lists: lists.len() as u64,
        wins_a,
        wins_b,
        ties,
        no_click,
        p_value: sign_test_p(wins_a, wins_b),
        long_tail_share: (share(0), share(1)),
    }
}
