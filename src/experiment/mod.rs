//! Online experiments between rankers (notebook 002 §9): A/B assignment by a stable hash,
//! team-draft interleaving, and the statistics of their report. Pure functions over ids and
//! events; the server logs the events, the CLI reports them.

mod report;
mod stats;

use std::collections::HashSet;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

pub use report::{
    report, ArmReport, ExperimentReport, InterleavingReport, SegmentReport, LIGHT_RATER,
};
pub use stats::{normal_two_sided_p, sign_test_p, two_proportion_p, welch_p, wilson_interval};

use crate::catalog::Catalog;
use crate::engine::Ranker;
use crate::error::{Error, Result};

/// How an experiment compares its two rankers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Each person sees one ranker, chosen by a stable hash.
    Ab,
    /// Each list merges both rankers (team draft), each position credited to its ranker.
    Interleave,
}

/// One of the two rankers of an experiment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Arm {
    /// The first ranker named.
    A,
    /// The second.
    B,
}

impl Arm {
    /// "A" or "B".
    pub fn name(self) -> &'static str {
        match self {
            Arm::A => "A",
            Arm::B => "B",
        }
    }

    /// The arm named `text` ("A" or "B").
    pub fn parse(text: &str) -> Option<Arm> {
        match text {
            "A" => Some(Arm::A),
            "B" => Some(Arm::B),
            _ => None,
        }
    }
}

/// An experiment of `serve --experiment NAME=A:RANKER,B:RANKER[,mode=ab|interleave]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Experiment {
    /// Its name (letters, digits, '-', '_').
    pub name: String,
    /// Ranker of arm A.
    pub a: Ranker,
    /// Ranker of arm B.
    pub b: Ranker,
    /// A/B or interleaving.
    pub mode: Mode,
}

impl Experiment {
    /// Parses `NAME=A:RANKER,B:RANKER[,mode=ab|interleave]` (mode defaults to ab).
    pub fn parse(spec: &str) -> Result<Experiment> {
        let bad = |message: String| Error::InvalidArgument {
            name: "--experiment".into(),
            message: format!(
                "'{spec}': {message} (expected NAME=A:RANKER,B:RANKER[,mode=ab|interleave])"
            ),
        };
        let (name, rest) = spec
            .split_once('=')
            .ok_or_else(|| bad("no '=' after the name".into()))?;
        let name = name.trim();
        if name.is_empty()
            || !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            return Err(bad("the name is letters, digits, '-' and '_'".into()));
        }
        let (mut a, mut b, mut mode) = (None, None, Mode::Ab);
        for part in rest.split(',').map(str::trim) {
            match part.split_once(':').or_else(|| part.split_once('=')) {
                Some(("A", ranker)) => a = Some(Ranker::parse(ranker, "--experiment")?),
                Some(("B", ranker)) => b = Some(Ranker::parse(ranker, "--experiment")?),
                Some(("mode", "ab")) => mode = Mode::Ab,
                Some(("mode", "interleave")) => mode = Mode::Interleave,
                _ => return Err(bad(format!("cannot read '{part}'"))),
            }
        }
        match (a, b) {
            (Some(a), Some(b)) => Ok(Experiment {
                name: name.to_string(),
                a,
                b,
                mode,
            }),
            _ => Err(bad("both arms A and B are needed".into())),
        }
    }

    /// The ranker of `arm`.
    pub fn ranker(&self, arm: Arm) -> Ranker {
        match arm {
            Arm::A => self.a,
            Arm::B => self.b,
        }
    }

    /// The arm of `subject` (e.g. `profile:ID`, `user:42`): the first bit of
    /// sha256(name, subject), so assignment is stable, about even, and independent across
    /// experiments.
    pub fn assign(&self, subject: &str) -> Arm {
        if hash(&self.name, subject)[0] & 1 == 0 {
            Arm::A
        } else {
            Arm::B
        }
    }
}

fn hash(a: &str, b: &str) -> [u8; 32] {
    let mut hasher = Sha256::new();
    hasher.update(a.as_bytes());
    hasher.update([0]);
    hasher.update(b.as_bytes());
    hasher.finalize().into()
}

/// Team-draft interleaving (Radlinski, Kurup & Joachims 2008) of two rankings into `k`
/// positions: in each round the team with fewer picks picks first (a tie broken by a coin
/// seeded with `seed`, e.g. the list's id), and each team picks its best movie not yet
/// picked. Returns each position's movie and the team credited with it.
pub fn team_draft(a: &[u32], b: &[u32], k: usize, seed: &str) -> Vec<(u32, Arm)> {
    let mut merged: Vec<(u32, Arm)> = Vec::with_capacity(k);
    let mut cursor = [0usize, 0usize];
    let lists = [a, b];
    let mut picks = [0usize, 0usize];
    let mut round = 0u32;
    // The best movie of list `t` not picked yet.
    let next = |t: usize, cursor: &mut [usize; 2], merged: &[(u32, Arm)]| -> Option<u32> {
        while let Some(&m) = lists[t].get(cursor[t]) {
            cursor[t] += 1;
            if !merged.iter().any(|&(x, _)| x == m) {
                return Some(m);
            }
        }
        None
    };
    while merged.len() < k {
        let first = match picks[0].cmp(&picks[1]) {
            std::cmp::Ordering::Less => 0,
            std::cmp::Ordering::Greater => 1,
            std::cmp::Ordering::Equal => {
                round += 1;
                usize::from(hash(seed, &round.to_string())[0] & 1 == 1)
            }
        };
        // The team whose turn it is picks; if its list is spent, the other one does.
        let Some((team, movie)) = [first, 1 - first]
            .into_iter()
            .find_map(|t| next(t, &mut cursor, &merged).map(|m| (t, m)))
        else {
            break;
        };
        picks[team] += 1;
        merged.push((movie, if team == 0 { Arm::A } else { Arm::B }));
    }
    merged
}

/// Share of the catalogue, most rated first, that is the "head"; the rest is the long tail
/// that §9.2 of notebook 002 asks to watch.
pub const HEAD_SHARE: f64 = 0.1;

/// The head of `catalog`: its most-rated [`HEAD_SHARE`] of movies (movieIds).
pub fn head_movies(catalog: &Catalog) -> HashSet<u32> {
    let mut by_count: Vec<(u32, u32)> = catalog
        .movies
        .iter()
        .map(|e| (e.rating_count, e.movie.id))
        .collect();
    by_count.sort_unstable_by(|a, b| b.cmp(a));
    let head = (catalog.movies.len() as f64 * HEAD_SHARE).ceil() as usize;
    by_count.into_iter().take(head).map(|(_, id)| id).collect()
}

/// Credits the clicks of one interleaved list: +1 per click on a position of team A, −1 per
/// click on B's; the sign says who won the list.
pub fn interleaving_winner(clicked_teams: &[Arm]) -> Option<Arm> {
    let a = clicked_teams.iter().filter(|&&t| t == Arm::A).count();
    let b = clicked_teams.len() - a;
    match a.cmp(&b) {
        std::cmp::Ordering::Greater => Some(Arm::A),
        std::cmp::Ordering::Less => Some(Arm::B),
        std::cmp::Ordering::Equal => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rank::stack::StackKind;

    #[test]
    fn parses_experiments_and_refuses_bad_ones() -> Result<()> {
        let e = Experiment::parse("ranker-test=A:candidate,B:popularity,mode=interleave")?;
        assert_eq!(
            (e.a, e.b, e.mode),
            (Ranker::Candidate, Ranker::Popularity, Mode::Interleave)
        );
        let e = Experiment::parse("x=A:logistic,B:gbdt")?;
        assert_eq!(
            (e.a, e.b, e.mode),
            (
                Ranker::Stack(StackKind::Logistic),
                Ranker::Stack(StackKind::Gbdt),
                Mode::Ab
            )
        );
        for bad in [
            "x",
            "=A:candidate,B:popularity",
            "x=A:candidate",
            "x=A:forest,B:popularity",
            "x=A:candidate,B:popularity,mode=bandit",
            "a b=A:candidate,B:popularity",
        ] {
            let error = Experiment::parse(bad).expect_err(bad).to_string();
            assert!(error.contains("--experiment"), "{error}");
        }
        Ok(())
    }

    #[test]
    fn assignment_is_stable_even_and_independent_across_experiments() -> Result<()> {
        let one = Experiment::parse("one=A:candidate,B:popularity")?;
        let two = Experiment::parse("two=A:candidate,B:popularity")?;
        let subjects: Vec<String> = (0..4000).map(|i| format!("user:{i}")).collect();
        let arms: Vec<Arm> = subjects.iter().map(|s| one.assign(s)).collect();
        assert_eq!(
            arms,
            subjects.iter().map(|s| one.assign(s)).collect::<Vec<_>>()
        );
        let a = arms.iter().filter(|&&x| x == Arm::A).count();
        assert!((1900..=2100).contains(&a), "{a} of 4000 in A");
        // Independent: being in A of one says nothing of the arm in two.
        let both = subjects
            .iter()
            .filter(|s| one.assign(s) == Arm::A && two.assign(s) == Arm::A)
            .count();
        assert!((900..=1100).contains(&both), "{both} in A of both");
        Ok(())
    }

    #[test]
    fn team_draft_keeps_each_rankers_order_and_balances_the_teams() {
        let a = [1, 2, 3, 4, 5, 6, 7, 8];
        let b = [3, 9, 1, 10, 11, 2, 12, 13];
        for seed in ["s1", "s2", "s3", "s4"] {
            let merged = team_draft(&a, &b, 8, seed);
            assert_eq!(merged.len(), 8);
            let ids: Vec<u32> = merged.iter().map(|m| m.0).collect();
            let mut unique = ids.clone();
            unique.sort_unstable();
            unique.dedup();
            assert_eq!(unique.len(), 8, "no movie twice: {ids:?}");
            for (team, list) in [(Arm::A, &a[..]), (Arm::B, &b[..])] {
                let picked: Vec<u32> = merged.iter().filter(|m| m.1 == team).map(|m| m.0).collect();
                let order: Vec<usize> = picked
                    .iter()
                    .map(|m| list.iter().position(|x| x == m).expect("from its own list"))
                    .collect();
                assert!(
                    order.windows(2).all(|w| w[0] < w[1]),
                    "{team:?} out of order: {merged:?}"
                );
            }
            // After each pair of picks the teams are level.
            for prefix in (2..=8).step_by(2) {
                let a_count = merged[..prefix].iter().filter(|m| m.1 == Arm::A).count();
                assert_eq!(a_count * 2, prefix, "{merged:?}");
            }
        }
        // Identical rankings: the merged list is that ranking.
        let same = team_draft(&a, &a, 5, "x");
        assert_eq!(
            same.iter().map(|m| m.0).collect::<Vec<_>>(),
            vec![1, 2, 3, 4, 5]
        );
        // A short list runs out: the other fills up.
        let short = team_draft(&[1], &[2, 3, 4], 4, "y");
        assert_eq!(short.len(), 4);
        assert_eq!(interleaving_winner(&[Arm::A, Arm::B, Arm::A]), Some(Arm::A));
        assert_eq!(interleaving_winner(&[Arm::A, Arm::B]), None);
    }
}
