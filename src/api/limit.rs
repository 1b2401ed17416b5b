//! A per-cloud request-rate limit: requests are spaced at least
//! `interval` apart, in the order they asked, so a fleet of jobs stays a
//! polite client of a rate-limited API. Nobody is dropped; callers wait.

use std::time::Duration;

use tokio::sync::Mutex;
use tokio::time::Instant;

/// Spaces requests `interval` apart.
pub struct RateLimiter {
    interval: Duration,
    next: Mutex<Option<Instant>>,
}

impl RateLimiter {
    pub fn new(interval: Duration) -> Self {
        Self {
            interval,
            next: Mutex::new(None),
        }
    }

    /// Waits for this caller's turn.
    pub async fn acquire(&self) {
        let slot = {
            // tokio's mutex is fair: callers reserve their slots in order.
            let mut next = self.next.lock().await;
            let now = Instant::now();
            let slot = next.map_or(now, |n| n.max(now));
            *next = Some(slot + self.interval);
            slot
        };
        tokio::time::sleep_until(slot).await;
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    #[tokio::test(start_paused = true)]
    async fn requests_are_spaced_and_served_in_order() {
        let limiter = Arc::new(RateLimiter::new(Duration::from_millis(100)));
        let start = Instant::now();
        let order = Arc::new(std::sync::Mutex::new(Vec::new()));
        let mut tasks = Vec::new();
        for i in 0..10 {
            let (limiter, order) = (Arc::clone(&limiter), Arc::clone(&order));
            tasks.push(tokio::spawn(async move {
                limiter.acquire().await;
                order.lock().unwrap().push((i, start.elapsed()));
            }));
            tokio::task::yield_now().await;
        }
        for t in tasks {
            t.await.unwrap();
        }
        let order = order.lock().unwrap();
        let served: Vec<usize> = order.iter().map(|(i, _)| *i).collect();
        assert_eq!(served, (0..10).collect::<Vec<_>>());
        assert_eq!(
            order.last().unwrap().1,
            Duration::from_millis(900),
            "10 requests at 10/s"
        );
    }
}
