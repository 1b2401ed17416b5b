//! Polling a resource until it settles, within an overall deadline.
//! Retrying a single failed GET is the API client's job; this loop only
//! decides when to look again.
//!
//! Without history the waits start short and grow to a cap. With history
//! (earlier durations of the same volume's backups) the agent looks rarely
//! while the backup cannot be done yet, densely in the window where it is
//! expected to finish, and with growing waits again once it is overdue: a
//! one-hour backup costs a few dozen GETs instead of the 1,800 of a fixed
//! 2-second loop, and is still recorded within seconds of finishing.

use std::future::Future;
use std::time::Duration;

use tokio::time::Instant;

use crate::config::PollSettings;

/// Longest wait inside the expected-finish window (the shortest is `poll.initial`).
const NEAR_WAIT_MAX: Duration = Duration::from_secs(60);
/// Looks per expected-finish window, which sets the wait inside it.
const LOOKS_PER_WINDOW: u32 = 12;
/// Before the window, a wait is at most this fraction of the time to its start
/// (as 1/N), so a backup that fails early is still noticed early enough.
const SPARSE_FRACTION: u32 = 8;
/// Margin around the shortest and longest earlier duration.
const WINDOW_MARGIN: f64 = 0.03;

/// When a resource is expected to settle, measured from its creation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Expected {
    /// Start of the window in which it is expected to finish.
    pub from: Duration,
    /// End of that window; after it the resource is overdue.
    pub until: Duration,
}

impl Expected {
    /// The window spanned by earlier durations, widened by a small margin;
    /// `None` without history (the first backup of a volume).
    pub fn from_history(durations: &[Duration]) -> Option<Self> {
        let shortest = durations.iter().min()?;
        let longest = durations.iter().max()?;
        Some(Self {
            from: shortest.mul_f64(1.0 - WINDOW_MARGIN),
            until: longest.mul_f64(1.0 + WINDOW_MARGIN),
        })
    }

    /// The wait between looks inside the window, at least `floor`.
    fn near_wait(&self, floor: Duration) -> Duration {
        ((self.until - self.from) / LOOKS_PER_WINDOW).clamp(floor, NEAR_WAIT_MAX.max(floor))
    }
}

/// The waits between polls.
#[derive(Debug, Clone)]
pub struct Cadence {
    next: Duration,
    initial: Duration,
    max: Duration,
    factor: f64,
    expected: Option<Expected>,
    /// Time since the resource was created, as far as the waits go.
    elapsed: Duration,
}

impl Cadence {
    /// `initial`, then ×`factor` each time, capped at `max`.
    pub fn new(settings: &PollSettings) -> Self {
        Self {
            next: settings.initial.min(settings.max),
            initial: settings.initial.min(settings.max),
            max: settings.max,
            factor: settings.factor.max(1.0),
            expected: None,
            elapsed: Duration::ZERO,
        }
    }

    /// Waits shaped by when the resource is expected to settle; `elapsed`
    /// is how long ago it was created (more than zero for a resumed job).
    pub fn expecting(settings: &PollSettings, expected: Expected, elapsed: Duration) -> Self {
        Self {
            expected: Some(expected),
            elapsed,
            ..Self::new(settings)
        }
    }

    /// The wait before the next poll.
    pub fn next_wait(&mut self) -> Duration {
        let wait = match self.expected {
            None => self.grow(self.max),
            Some(e) if self.elapsed < e.from => {
                let to_window = e.from - self.elapsed;
                let cap = self.max.max(e.from / SPARSE_FRACTION);
                self.grow(cap).min(to_window)
            }
            Some(e) if self.elapsed < e.until => e.near_wait(self.initial),
            Some(e) => {
                // Overdue: grow again from the near wait, up to `max`.
                let near = e.near_wait(self.initial).min(self.max);
                if self.next < near {
                    self.next = near;
                }
                self.grow(self.max)
            }
        };
        self.elapsed += wait;
        wait
    }

    /// The current geometric wait (at most `cap`), and the next one grown.
    fn grow(&mut self, cap: Duration) -> Duration {
        let wait = self.next.min(cap);
        self.next = self.next.mul_f64(self.factor).min(cap);
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
    look: F,
) -> Result<T, PollEnd<E>>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Look<T, E>>,
{
    poll_with(Cadence::new(settings), deadline, look).await
}

/// [`poll_until`] with the waits of a given cadence.
pub async fn poll_with<T, E, F, Fut>(
    mut cadence: Cadence,
    deadline: Instant,
    mut look: F,
) -> Result<T, PollEnd<E>>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Look<T, E>>,
{
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

    /// Poll times (seconds since creation) until `done` is reached.
    fn looks_until(mut c: Cadence, done: Duration) -> Vec<u64> {
        let mut t = Duration::ZERO;
        let mut looks = Vec::new();
        while t < done {
            t += c.next_wait();
            looks.push(t.as_secs());
        }
        looks
    }

    #[test]
    fn no_history_means_no_expectation() {
        assert_eq!(Expected::from_history(&[]), None);
    }

    #[test]
    fn the_window_spans_earlier_durations_with_a_margin() {
        let e = Expected::from_history(&[
            Duration::from_secs(3500),
            Duration::from_secs(3700),
            Duration::from_secs(3600),
        ])
        .unwrap();
        assert_eq!(e.from, Duration::from_secs(3395));
        assert_eq!(e.until, Duration::from_secs(3811));
    }

    #[test]
    fn with_history_looks_are_sparse_before_the_window_and_dense_in_it() {
        let e = Expected::from_history(&[Duration::from_secs(3600)]).unwrap();
        let looks = looks_until(
            Cadence::expecting(&settings(), e, Duration::ZERO),
            Duration::from_secs(3600),
        );
        let before: Vec<_> = looks.iter().filter(|&&t| t < 3492).collect();
        let inside: Vec<_> = looks.iter().filter(|&&t| t >= 3492).collect();
        // The first look comes as early as without history, the sparse
        // waits never exceed an eighth of the time to the window.
        assert_eq!(looks[0], 2);
        assert!(before.windows(2).all(|w| w[1] - w[0] <= 3492 / 8 + 1));
        // The window is reached exactly, then looked at every 18 s
        // (216 s / 12), so the backup is seen at most 18 s late.
        assert!(looks.contains(&3492));
        assert!(inside.windows(2).all(|w| w[1] - w[0] == 18));
        assert!(*looks.last().unwrap() - 3600 < 18);
        // 60 s polling would take 60 looks; this takes fewer than 30.
        assert!(looks.len() < 30, "{} looks: {looks:?}", looks.len());
    }

    #[test]
    fn an_overdue_resource_is_looked_at_with_growing_waits_up_to_max() {
        let e = Expected::from_history(&[Duration::from_secs(600)]).unwrap();
        let mut c = Cadence::expecting(&settings(), e, Duration::ZERO);
        let looks = looks_until(c.clone(), Duration::from_secs(3600));
        let late: Vec<u64> = looks.iter().copied().filter(|&t| t > 618).collect();
        let waits: Vec<u64> = late.windows(2).map(|w| w[1] - w[0]).collect();
        assert!(waits.windows(2).all(|w| w[0] <= w[1]));
        assert_eq!(waits.last(), Some(&60));
        // Resumed long after creation, it starts in the overdue phase.
        c = Cadence::expecting(&settings(), e, Duration::from_secs(5000));
        assert_eq!(c.next_wait(), Duration::from_secs(3));
    }

    #[test]
    fn a_short_backup_is_looked_at_no_less_often_than_without_history() {
        let e = Expected::from_history(&[Duration::from_secs(2)]).unwrap();
        let mut c = Cadence::expecting(&settings(), e, Duration::from_secs(5));
        assert_eq!(c.next_wait(), Duration::from_secs(2));
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
