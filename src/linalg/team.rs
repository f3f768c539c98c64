//! A fixed team of threads that share the matrix products of one short forward pass.
//!
//! Why not rayon: a 7-token query runs 24 products of well under 0.1 ms each, and waking a
//! sleeping rayon worker for each cost more than the split saved (measured: 2.1 → 2.7 ms a
//! query on 2 cores). A team's helpers spin between the products of a pass and sleep only
//! after [`SPIN`] without work, so a pass pays one wake-up, not one per product.

use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How long a helper spins for the next job before it sleeps: longer than the gaps between
/// the products of one pass (attention, LayerNorm), shorter than anyone would notice a core
/// busy after a query.
const SPIN: Duration = Duration::from_micros(200);

/// A job: called once with each member's index, 0 on the caller's thread.
type Job = &'static (dyn Fn(usize) + Sync);

/// What the caller and the helpers share.
struct Shared {
    /// The current job (valid while `run` waits for it).
    job: Mutex<Option<Job>>,
    /// Bumped when a job is posted.
    posted: AtomicU64,
    /// Helpers finished with the current job.
    finished: AtomicUsize,
    /// Helpers that may be asleep (they check `posted` again after saying so).
    sleeping: AtomicUsize,
    /// A helper's job panicked.
    panicked: AtomicBool,
    /// The team is being dropped.
    stop: AtomicBool,
}

/// A caller and `size − 1` helper threads running one job at a time.
pub struct Team {
    shared: Arc<Shared>,
    helpers: Vec<JoinHandle<()>>,
    /// One job at a time: a second caller meanwhile runs its job alone.
    running: Mutex<()>,
}

impl Team {
    /// A team of `size` (at least 1): the caller and `size − 1` helpers, named `name-i`.
    pub fn new(size: usize, name: &str) -> std::io::Result<Team> {
        let shared = Arc::new(Shared {
            job: Mutex::new(None),
            posted: AtomicU64::new(0),
            finished: AtomicUsize::new(0),
            sleeping: AtomicUsize::new(0),
            panicked: AtomicBool::new(false),
            stop: AtomicBool::new(false),
        });
        let mut team = Team {
            shared: shared.clone(),
            helpers: Vec::new(),
            running: Mutex::new(()),
        };
        for index in 1..size.max(1) {
            let shared = shared.clone();
            let handle = std::thread::Builder::new()
                .name(format!("{name}-{index}"))
                .spawn(move || help(&shared, index))?;
            // On an error here, `team`'s drop stops the helpers already started.
            team.helpers.push(handle);
        }
        Ok(team)
    }

    /// Members, the caller included.
    pub fn size(&self) -> usize {
        self.helpers.len() + 1
    }

    /// Calls `job(i)` for every member `i` at once (0 on this thread) and returns when all
    /// have finished. While another caller's job runs, this one runs every `i` itself.
    ///
    /// # Panics
    /// When `job` panics, on any member (after every member has finished).
    pub fn run(&self, job: &(dyn Fn(usize) + Sync)) {
        let _running = match self.running.try_lock() {
            Ok(guard) => guard,
            // A panic that went through here left nothing half-done: the team is idle.
            Err(std::sync::TryLockError::Poisoned(poisoned)) => poisoned.into_inner(),
            Err(std::sync::TryLockError::WouldBlock) => {
                (0..self.size()).for_each(job);
                return;
            }
        };
        if self.helpers.is_empty() {
            job(0);
            return;
        }
        // SAFETY: the reference is only used by the helpers between the `posted` bump below
        // and their `finished` increments, and this function does not return (nor unwind)
        // before every helper has incremented `finished`: `job` outlives every use.
        #[allow(unsafe_code)]
        let job: Job = unsafe { std::mem::transmute::<&(dyn Fn(usize) + Sync), Job>(job) };
        let shared = &self.shared;
        *lock(&shared.job) = Some(job);
        shared.finished.store(0, Ordering::SeqCst);
        shared.posted.fetch_add(1, Ordering::SeqCst);
        if shared.sleeping.load(Ordering::SeqCst) > 0 {
            for helper in &self.helpers {
                helper.thread().unpark();
            }
        }
        let mine = catch_unwind(AssertUnwindSafe(|| job(0)));
        while shared.finished.load(Ordering::Acquire) < self.helpers.len() {
            std::hint::spin_loop();
        }
        *lock(&shared.job) = None;
        if let Err(panic) = mine {
            resume_unwind(panic);
        }
        if shared.panicked.swap(false, Ordering::SeqCst) {
            panic!("a job of the thread team panicked");
        }
    }
}

impl Drop for Team {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        for helper in self.helpers.drain(..) {
            helper.thread().unpark();
            let _ = helper.join();
        }
    }
}

/// A mutex's guard even if a panic poisoned it (the slot holds no invariant).
fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// A helper's loop: wait for a job (spinning, then asleep), run it, say so.
fn help(shared: &Shared, index: usize) {
    let mut seen = 0u64;
    loop {
        let started = Instant::now();
        let mut spins = 0u32;
        while shared.posted.load(Ordering::Acquire) == seen {
            if shared.stop.load(Ordering::Relaxed) {
                return;
            }
            spins = spins.wrapping_add(1);
            if spins.is_multiple_of(64) && started.elapsed() > SPIN {
                // Say so before looking again, so a caller posting meanwhile unparks us.
                shared.sleeping.fetch_add(1, Ordering::SeqCst);
                if shared.posted.load(Ordering::SeqCst) == seen
                    && !shared.stop.load(Ordering::SeqCst)
                {
                    std::thread::park();
                }
                shared.sleeping.fetch_sub(1, Ordering::SeqCst);
            } else {
                std::hint::spin_loop();
            }
        }
        seen = shared.posted.load(Ordering::Acquire);
        let job = *lock(&shared.job);
        if let Some(job) = job {
            if catch_unwind(AssertUnwindSafe(|| job(index))).is_err() {
                shared.panicked.store(true, Ordering::SeqCst);
            }
        }
        shared.finished.fetch_add(1, Ordering::Release);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_member_runs_each_job_once() {
        let team = Team::new(3, "test-team").expect("threads");
        assert_eq!(team.size(), 3);
        for round in 0..200u64 {
            let counts: Vec<AtomicU64> = (0..3).map(|_| AtomicU64::new(0)).collect();
            team.run(&|i| {
                counts[i].fetch_add(round + 1, Ordering::SeqCst);
            });
            for count in &counts {
                assert_eq!(count.load(Ordering::SeqCst), round + 1);
            }
            if round % 50 == 0 {
                // Long enough for the helpers to fall asleep: they must wake for the next.
                std::thread::sleep(SPIN * 3);
            }
        }
    }

    #[test]
    fn a_busy_team_runs_a_second_callers_job_on_its_thread() {
        let team = Team::new(2, "test-team").expect("threads");
        let total = AtomicU64::new(0);
        std::thread::scope(|scope| {
            for _ in 0..4 {
                scope.spawn(|| {
                    for _ in 0..100 {
                        team.run(&|i| {
                            total.fetch_add(i as u64 + 1, Ordering::SeqCst);
                        });
                    }
                });
            }
        });
        // Each run adds 1 + 2 whoever ran it.
        assert_eq!(total.load(Ordering::SeqCst), 4 * 100 * 3);
    }

    #[test]
    fn a_helpers_panic_reaches_the_caller_after_everyone_finished() {
        let team = Team::new(2, "test-team").expect("threads");
        let result = catch_unwind(AssertUnwindSafe(|| {
            team.run(&|i| {
                if i == 1 {
                    panic!("helper fails");
                }
            })
        }));
        assert!(result.is_err());
        // The team still works afterwards.
        let ran = AtomicUsize::new(0);
        team.run(&|_| {
            ran.fetch_add(1, Ordering::SeqCst);
        });
        assert_eq!(ran.load(Ordering::SeqCst), 2);
    }
}
