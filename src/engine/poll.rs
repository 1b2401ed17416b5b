//! Polling a resource until it settles: waits that start short and grow to
//! a cap, within an overall deadline. Retrying a single failed GET is the
//! API client's job; this loop only decides when to look again.

use std::future::Future;
use std::time::Duration;

use tokio::time::Instant;

use crate::config::PollSettings;

/// The waits between polls: `initial`, then ×`factor` each time, capped at `max`.
#[derive(Debug, Clone)]
pub struct Cadence {
    next: Duration,
    max: Duration,
    factor: f64,
}

impl Cadence {
    pub fn new(settings: &PollSettings) -> Self {
        Self {
            next: settings.initial.min(settings.max),
            max: settings.max,
            factor: settings.factor.max(1.0),
        }
    }

    /// The wait before the next poll.
    pub fn next_wait(&mut self) -> Duration {
        let wait = self.next;
        self.next = self.next.mul_f64(self.factor).min(self.max);
        wait
    }
}

/// What one look at the resource found.
pub enum Look<T, E> {
    /// Settled: stop polling with this value.
    Done(T),
    /// Still working.
    Pending,
    /// Polling cannot go on.
    Fail(E),
}

/// Why polling ended without a settled resource.
#[derive(Debug, PartialEq, Eq)]
pub enum PollEnd<E> {
    Deadline,
    Failed(E),
}

/// Looks at the resource, then again after each wait of the cadence, until
/// `look` settles it or `deadline` passes. The first look happens after the
/// first wait (a resource just created is never settled at once), or at
/// once when the deadline has already passed.
pub async fn poll_until<T, E, F, Fut>(
    settings: &PollSettings,
    deadline: Instant,
    mut look: F,
) -> Result<T, PollEnd<E>>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Look<T, E>>,
{
    let mut cadence = Cadence::new(settings);
    loop {
        // Past the deadline (a job continued after a long downtime) there is
        // still one look: the resource may well have settled meanwhile.
        let wait = cadence
            .next_wait()
            .min(deadline.saturating_duration_since(Instant::now()));
        tokio::time::sleep(wait).await;
        match look().await {
            Look::Done(v) => return Ok(v),
            Look::Fail(e) => return Err(PollEnd::Failed(e)),
            Look::Pending if Instant::now() >= deadline => return Err(PollEnd::Deadline),
            Look::Pending => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use std::cell::Cell;

    use super::*;

    fn settings() -> PollSettings {
        PollSettings {
            initial: Duration::from_secs(2),
            max: Duration::from_secs(60),
            factor: 2.0,
        }
    }

    #[test]
    fn cadence_grows_to_the_cap() {
        let mut c = Cadence::new(&settings());
        let waits: Vec<u64> = (0..8).map(|_| c.next_wait().as_secs()).collect();
        assert_eq!(waits, [2, 4, 8, 16, 32, 60, 60, 60]);
    }

    #[tokio::test(start_paused = true)]
    async fn polls_until_done_on_the_cadence() {
        let start = Instant::now();
        let looks = Cell::new(0);
        let result: Result<u32, PollEnd<()>> =
            poll_until(&settings(), start + Duration::from_secs(3600), || {
                looks.set(looks.get() + 1);
                let n = looks.get();
                async move {
                    if n == 4 {
                        Look::Done(n)
                    } else {
                        Look::Pending
                    }
                }
            })
            .await;
        assert_eq!(result, Ok(4));
        // Looks at 2, 6, 14 and 30 s.
        assert_eq!(start.elapsed(), Duration::from_secs(30));
    }

    #[tokio::test(start_paused = true)]
    async fn stops_at_the_deadline() {
        let start = Instant::now();
        let result: Result<(), PollEnd<()>> =
            poll_until(&settings(), start + Duration::from_secs(100), || async {
                Look::Pending
            })
            .await;
        assert_eq!(result, Err(PollEnd::Deadline));
        assert_eq!(start.elapsed(), Duration::from_secs(100));
    }

    #[tokio::test(start_paused = true)]
    async fn past_the_deadline_there_is_one_look() {
        let start = Instant::now();
        let looks = Cell::new(0);
        let result: Result<(), PollEnd<()>> = poll_until(&settings(), start, || {
            looks.set(looks.get() + 1);
            async { Look::Pending }
        })
        .await;
        assert_eq!((result, looks.get()), (Err(PollEnd::Deadline), 1));
        assert_eq!(start.elapsed(), Duration::ZERO);
        let settled: Result<u8, PollEnd<()>> =
            poll_until(&settings(), start, || async { Look::Done(7) }).await;
        assert_eq!(settled, Ok(7));
    }

    #[tokio::test(start_paused = true)]
    async fn a_failed_look_ends_polling() {
        let result: Result<(), PollEnd<&str>> = poll_until(
            &settings(),
            Instant::now() + Duration::from_secs(100),
            || async { Look::Fail("gone") },
        )
        .await;
        assert_eq!(result, Err(PollEnd::Failed("gone")));
    }
}
