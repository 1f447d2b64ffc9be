//! Which processes are reported: each is scored by CPU time used since the previous tick (or
//! since it started, the first time it is seen) or by resident memory, and the `top_n` best
//! are kept, in order of score and then pid.

use super::TopBy;
use crate::procfs::pid::PidStat;

/// One process of one tick.
pub(super) struct Candidate {
    /// Index into the tick's stats.
    pub(super) idx: usize,
    pub(super) score: u64,
    /// CPU ticks since the previous tick, `[user, system]`, when the process was seen then.
    pub(super) delta: Option<[u64; 2]>,
}

/// A process's score for the ranking: CPU ticks since the previous tick (`delta`, when it was
/// seen then; else since it started) or resident pages.
pub(super) fn score(top_by: TopBy, st: &PidStat, delta: Option<[u64; 2]>) -> u64 {
    match top_by {
        TopBy::Cpu => delta.map_or(st.utime.saturating_add(st.stime), |[u, s]| u.saturating_add(s)),
        TopBy::Memory => st.rss,
    }
}

/// Keeps the `n` best of `candidates` (every one when `n` is 0), sorted by score and then pid.
pub(super) fn keep_top(candidates: &mut Vec<Candidate>, stats: &[PidStat], n: usize) {
    let order = |a: &Candidate, b: &Candidate| b.score.cmp(&a.score).then(stats[a.idx].pid.cmp(&stats[b.idx].pid));
    if n > 0 && candidates.len() > n {
        candidates.select_nth_unstable_by(n - 1, order);
        candidates.truncate(n);
    }
    candidates.sort_unstable_by(order);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stat(pid: u32, utime: u64, stime: u64, rss: u64) -> PidStat {
        PidStat { pid, utime, stime, rss, ..PidStat::default() }
    }

    #[test]
    fn scores_by_cpu_since_the_last_tick_or_since_start_or_by_memory() {
        let st = stat(1, 70, 30, 5);
        assert_eq!(score(TopBy::Cpu, &st, None), 100);
        assert_eq!(score(TopBy::Cpu, &st, Some([2, 1])), 3);
        assert_eq!(score(TopBy::Memory, &st, Some([2, 1])), 5);
    }

    #[test]
    fn keeps_the_best_n_by_score_then_pid_and_every_one_with_n_zero() {
        let stats = vec![stat(40, 0, 0, 0), stat(10, 0, 0, 0), stat(30, 0, 0, 0), stat(20, 0, 0, 0)];
        let candidates = || vec![(0, 5), (1, 9), (2, 5), (3, 1)].into_iter().map(|(idx, score)| Candidate { idx, score, delta: None }).collect::<Vec<_>>();
        let pids = |c: &[Candidate]| c.iter().map(|c| stats[c.idx].pid).collect::<Vec<_>>();
        let mut c = candidates();
        keep_top(&mut c, &stats, 2);
        assert_eq!(pids(&c), [10, 30]);
        let mut c = candidates();
        keep_top(&mut c, &stats, 0);
        assert_eq!(pids(&c), [10, 30, 40, 20]);
    }
}
