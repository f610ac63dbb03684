//! A watchdog over a filesystem's free space: samples it on a background thread, keeps the
//! timeline and the low-water mark, and signals when it drops under a floor.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::usage::available_bytes;

/// What to watch.
#[derive(Debug, Clone)]
pub struct WatchConfig {
    /// Any path on the filesystem to watch (e.g. Docker's data root).
    pub path: PathBuf,
    pub interval: Duration,
    /// Signal when available bytes fall under this.
    pub floor: Option<u64>,
}

/// One sample of available bytes, `ms` after the watch started.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sample {
    pub ms: u64,
    pub available_bytes: u64,
}

/// The record of a watch.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Timeline {
    pub samples: Vec<Sample>,
    pub low_water_bytes: u64,
    pub low_water_at_ms: u64,
    pub floor_bytes: Option<u64>,
    /// When available bytes first fell under the floor.
    pub crossed_floor_at_ms: Option<u64>,
}

struct Shared {
    stop: AtomicBool,
    below: AtomicBool,
    low_water: AtomicU64,
    /// Wakes the sampler early on stop, and waiters on a crossing.
    lock: Mutex<()>,
    wake: Condvar,
}

/// A running watchdog; [`Watchdog::stop`] ends it and returns the [`Timeline`].
pub struct Watchdog {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<Timeline>>,
}

impl std::fmt::Debug for Watchdog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Watchdog")
            .field("low_water_bytes", &self.low_water_bytes())
            .field("below_floor", &self.below_floor())
            .finish()
    }
}

impl Watchdog {
    /// Start watching. `on_floor` is called once, from the watchdog thread, when available
    /// bytes first drop under the floor.
    pub fn start(
        mut config: WatchConfig,
        on_floor: impl FnOnce(Sample) + Send + 'static,
    ) -> Result<Watchdog> {
        // statvfs is cheap, but a zero interval would spin a core.
        config.interval = config.interval.max(Duration::from_millis(5));
        let first = available_bytes(&config.path)?;
        let shared = Arc::new(Shared {
            stop: AtomicBool::new(false),
            below: AtomicBool::new(false),
            low_water: AtomicU64::new(first),
            lock: Mutex::new(()),
            wake: Condvar::new(),
        });
        let s = Arc::clone(&shared);
        let thread = std::thread::Builder::new()
            .name("headroom-watchdog".into())
            .spawn(move || sample_loop(config, first, s, on_floor))
            .map_err(|e| Error::io("watchdog thread", e))?;
        Ok(Watchdog {
            shared,
            thread: Some(thread),
        })
    }

    pub fn low_water_bytes(&self) -> u64 {
        self.shared.low_water.load(Ordering::Relaxed)
    }

    /// True once available bytes have been seen under the floor.
    pub fn below_floor(&self) -> bool {
        self.shared.below.load(Ordering::Acquire)
    }

    /// Wait up to `timeout` for a floor crossing; true if one happened.
    pub fn wait_below_floor(&self, timeout: Duration) -> bool {
        let deadline = Instant::now().checked_add(timeout);
        let mut guard = self.shared.lock.lock().unwrap_or_else(|p| p.into_inner());
        while !self.below_floor() {
            let now = Instant::now();
            if deadline.is_some_and(|d| now >= d) || self.shared.stop.load(Ordering::Acquire) {
                break;
            }
            let wait = deadline.map_or(Duration::from_secs(3600), |d| d - now);
            guard = self
                .shared
                .wake
                .wait_timeout(guard, wait)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
        self.below_floor()
    }

    /// Stop sampling (after one last sample) and return the timeline.
    pub fn stop(mut self) -> Timeline {
        self.finish()
    }

    fn finish(&mut self) -> Timeline {
        {
            let _g = self.shared.lock.lock().unwrap_or_else(|p| p.into_inner());
            self.shared.stop.store(true, Ordering::Release);
            self.shared.wake.notify_all();
        }
        self.thread
            .take()
            .and_then(|t| t.join().ok())
            .unwrap_or_default()
    }
}

impl Drop for Watchdog {
    fn drop(&mut self) {
        if self.thread.is_some() {
            let _ = self.finish();
        }
    }
}

fn sample_loop(
    config: WatchConfig,
    first: u64,
    shared: Arc<Shared>,
    on_floor: impl FnOnce(Sample),
) -> Timeline {
    let start = Instant::now();
    let mut on_floor = Some(on_floor);
    let mut timeline = Timeline {
        floor_bytes: config.floor,
        low_water_bytes: first,
        ..Timeline::default()
    };
    let mut record = |available: u64, timeline: &mut Timeline| {
        let sample = Sample {
            ms: start.elapsed().as_millis() as u64,
            available_bytes: available,
        };
        timeline.samples.push(sample);
        if available < timeline.low_water_bytes || timeline.samples.len() == 1 {
            timeline.low_water_bytes = available;
            timeline.low_water_at_ms = sample.ms;
            shared.low_water.store(available, Ordering::Relaxed);
        }
        if let Some(floor) = config.floor
            && available < floor
            && timeline.crossed_floor_at_ms.is_none()
        {
            timeline.crossed_floor_at_ms = Some(sample.ms);
            let _g = shared.lock.lock().unwrap_or_else(|p| p.into_inner());
            shared.below.store(true, Ordering::Release);
            shared.wake.notify_all();
            drop(_g);
            if let Some(f) = on_floor.take() {
                f(sample);
            }
        }
    };
    record(first, &mut timeline);
    loop {
        {
            let guard = shared.lock.lock().unwrap_or_else(|p| p.into_inner());
            if !shared.stop.load(Ordering::Acquire) {
                let _ = shared
                    .wake
                    .wait_timeout(guard, config.interval)
                    .unwrap_or_else(|p| p.into_inner());
            }
        }
        if let Ok(available) = available_bytes(&config.path) {
            record(available, &mut timeline);
        }
        if shared.stop.load(Ordering::Acquire) {
            break;
        }
    }
    timeline
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_samples_and_stops_promptly() {
        let dir = tempfile::tempdir().unwrap();
        let dog = Watchdog::start(
            WatchConfig {
                path: dir.path().to_path_buf(),
                interval: Duration::from_millis(5),
                floor: None,
            },
            |_| {},
        )
        .unwrap();
        std::thread::sleep(Duration::from_millis(40));
        let t0 = Instant::now();
        let timeline = dog.stop();
        assert!(t0.elapsed() < Duration::from_secs(1));
        assert!(timeline.samples.len() >= 3, "{timeline:?}");
        let min = timeline
            .samples
            .iter()
            .map(|s| s.available_bytes)
            .min()
            .unwrap();
        assert_eq!(timeline.low_water_bytes, min);
        assert!(timeline.samples.windows(2).all(|w| w[0].ms <= w[1].ms));
    }

    #[test]
    fn signals_a_floor_above_what_is_available() {
        let dir = tempfile::tempdir().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        let dog = Watchdog::start(
            WatchConfig {
                path: dir.path().to_path_buf(),
                interval: Duration::from_millis(5),
                floor: Some(u64::MAX),
            },
            move |s| {
                let _ = tx.send(s);
            },
        )
        .unwrap();
        assert!(dog.wait_below_floor(Duration::from_secs(5)));
        assert!(rx.recv_timeout(Duration::from_secs(5)).is_ok());
        let t = dog.stop();
        assert_eq!(t.crossed_floor_at_ms, Some(t.samples[0].ms));
    }

    #[test]
    fn a_missing_path_is_an_error_naming_it() {
        let err = Watchdog::start(
            WatchConfig {
                path: "/no/such/dir".into(),
                interval: Duration::from_millis(5),
                floor: None,
            },
            |_| {},
        )
        .unwrap_err();
        assert!(err.to_string().contains("/no/such/dir"));
    }
}
