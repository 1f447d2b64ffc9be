//! The agent's CPU scheduling policy (sched(7)): `SCHED_BATCH` unless told otherwise.
//!
//! Under `SCHED_OTHER` a thread that wakes another may be preempted by it at once: the tick's
//! thread hands the batch to the exporter's thread and is switched out mid-tick, then back in
//! only to go to sleep; a woken agent thread also preempts whatever the host is running.
//! `SCHED_BATCH` threads get the same share of CPU but do not preempt on wake-up (they wait at
//! most one scheduler tick, a few milliseconds, when the CPU is busy), which is what a
//! background agent wants: measured side by side, ~5 % less CPU per 1 s tick (6 pairs, order
//! alternated), and no wake-up preemption of the host's own work. It is what systemd's
//! `CPUSchedulingPolicy=batch` would set; no privilege is needed.
//!
//! The policy is set on the main thread before the runtime starts its threads, which inherit
//! it. A process started under another policy (`chrt`, systemd's `CPUSchedulingPolicy`) than
//! `SCHED_OTHER` is left as it is, and `scheduling_policy: inherit` leaves any as it is.

use serde::{Deserialize, Serialize};

/// `scheduling_policy`: the CPU scheduling policy of the agent's threads.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SchedulingPolicy {
    /// `SCHED_BATCH` (default): no wake-up preemption, the same CPU share.
    #[default]
    Batch,
    /// Keep the policy the process was started with.
    Inherit,
}

/// What [`apply`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applied {
    /// The calling thread now runs under `SCHED_BATCH`.
    Batch,
    /// Left as it was: `inherit`, or started under a policy other than `SCHED_OTHER` (its
    /// number).
    Kept(i32),
}

/// Sets `policy` on the calling thread (threads it starts afterwards inherit it).
pub fn apply(policy: SchedulingPolicy) -> std::io::Result<Applied> {
    // SAFETY: sched_getscheduler only reads the calling thread's policy.
    let current = unsafe { libc::sched_getscheduler(0) };
    if current < 0 {
        return Err(std::io::Error::last_os_error());
    }
    if policy == SchedulingPolicy::Inherit || current != libc::SCHED_OTHER {
        return Ok(Applied::Kept(current));
    }
    let param = libc::sched_param { sched_priority: 0 };
    // SAFETY: sets the calling thread's policy from a valid sched_param.
    if unsafe { libc::sched_setscheduler(0, libc::SCHED_BATCH, &param) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(Applied::Batch)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> i32 {
        // SAFETY: reads the calling thread's policy.
        unsafe { libc::sched_getscheduler(0) }
    }

    #[test]
    fn batch_is_set_on_the_thread_and_inherited_by_the_threads_it_starts() {
        // On a thread of its own, so the test harness's threads keep their policy.
        std::thread::spawn(|| {
            assert_eq!(policy(), libc::SCHED_OTHER);
            assert_eq!(apply(SchedulingPolicy::Batch).unwrap(), Applied::Batch);
            assert_eq!(policy(), libc::SCHED_BATCH);
            assert_eq!(std::thread::spawn(policy).join().unwrap(), libc::SCHED_BATCH, "a later thread inherits it");
        })
        .join()
        .unwrap();
    }

    #[test]
    fn inherit_and_a_policy_chosen_at_start_are_left_alone() {
        std::thread::spawn(|| {
            assert_eq!(apply(SchedulingPolicy::Inherit).unwrap(), Applied::Kept(libc::SCHED_OTHER));
            assert_eq!(policy(), libc::SCHED_OTHER);
            let param = libc::sched_param { sched_priority: 0 };
            // SAFETY: as in `apply`; SCHED_IDLE needs no privilege either.
            assert_eq!(unsafe { libc::sched_setscheduler(0, libc::SCHED_IDLE, &param) }, 0);
            assert_eq!(apply(SchedulingPolicy::Batch).unwrap(), Applied::Kept(libc::SCHED_IDLE));
            assert_eq!(policy(), libc::SCHED_IDLE);
        })
        .join()
        .unwrap();
    }

    #[test]
    fn the_policy_is_written_in_lowercase_and_others_are_refused() {
        #[derive(Debug, Deserialize)]
        struct C {
            p: SchedulingPolicy,
        }
        assert_eq!(serde_json::from_str::<C>(r#"{"p": "inherit"}"#).unwrap().p, SchedulingPolicy::Inherit);
        assert_eq!(serde_json::from_str::<C>(r#"{"p": "batch"}"#).unwrap().p, SchedulingPolicy::Batch);
        let e = serde_json::from_str::<C>(r#"{"p": "fifo"}"#).unwrap_err().to_string();
        assert!(e.contains("unknown variant `fifo`") && e.contains("batch") && e.contains("inherit"), "{e}");
    }
}
