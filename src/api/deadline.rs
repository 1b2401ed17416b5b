//! The deadline a job puts on its API calls. Without one, a server that
//! accepts a request and never answers (or trickles the body) holds each
//! attempt for the whole request timeout, times every retry: a job with
//! `completion_timeout: 30s` ended after 5 min 23 s. With one, every
//! attempt, token fetch, rate-limit wait and body read included, ends by
//! the job's deadline, and no retry wait runs past it.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use tokio::time::Instant;

/// How long the calls a job makes at or past its deadline may take, all
/// together: one last look that records what the cloud did meanwhile (a
/// backup that finished while the agent was down, a resource a cut-off
/// create call made). A job therefore ends at most this long after its
/// completion timeout, whatever the server does.
pub const LAST_LOOK: Duration = Duration::from_secs(15);

/// When a job's calls must have their answers. Cheap to clone; clones
/// share the one last look.
#[derive(Debug, Clone)]
pub struct Deadline {
    at: Instant,
    /// When the last look ends, fixed by the first call made at or after
    /// `at`.
    last_look_ends: Arc<OnceLock<Instant>>,
}

impl Deadline {
    /// Calls must end by `at` (a call starting later gets the last look).
    pub fn new(at: Instant) -> Self {
        Self {
            at,
            last_look_ends: Arc::new(OnceLock::new()),
        }
    }

    /// When a call starting `now` must end; the first call at or past the
    /// deadline starts the last look.
    pub(super) fn for_call(&self, now: Instant) -> Instant {
        if now < self.at {
            self.at
        } else {
            *self.last_look_ends.get_or_init(|| now + LAST_LOOK)
        }
    }

    /// Whether waiting `wait` from `now` and then calling again still ends
    /// before the current limit (the deadline, or the end of the last look
    /// once it has begun).
    pub(super) fn allows_wait(&self, now: Instant, wait: Duration) -> bool {
        let limit = if now < self.at {
            self.at
        } else {
            self.last_look_ends.get().copied().unwrap_or(self.at)
        };
        now + wait < limit
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn calls_end_at_the_deadline_and_past_it_share_one_last_look() {
        let start = Instant::now();
        let deadline = Deadline::new(start + Duration::from_secs(30));
        assert_eq!(deadline.for_call(start), start + Duration::from_secs(30));
        assert!(deadline.allows_wait(start, Duration::from_secs(29)));
        assert!(!deadline.allows_wait(start, Duration::from_secs(30)));

        let late = start + Duration::from_secs(40);
        assert!(!deadline.allows_wait(late, Duration::ZERO), "no look yet");
        let ends = late + LAST_LOOK;
        assert_eq!(deadline.for_call(late), ends);
        // Later calls of the same job do not get a look of their own.
        let later = late + Duration::from_secs(10);
        assert_eq!(deadline.clone().for_call(later), ends);
        assert!(deadline.allows_wait(later, Duration::from_secs(4)));
        assert!(!deadline.allows_wait(later, Duration::from_secs(5)));
    }
}
