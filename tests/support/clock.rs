//! Paused-clock tests (`#[tokio::test(start_paused = true)]`) against real
//! loopback sockets.
//!
//! On a paused clock tokio jumps time to the next timer as soon as the
//! runtime has nothing to run. Bytes in flight in the kernel do not count:
//! the runtime polls the sockets once without waiting and, if a reply has
//! not arrived at that instant, the clock jumps and a timeout fires "before"
//! a reply that was merely on its way. That would make a test depend on
//! machine load, the one thing paused time is meant to rule out.
//!
//! [`ClockHold`] closes the gap. While it is alive a `spawn_blocking` task
//! runs, and a current-thread runtime does not auto-advance a paused clock
//! while a blocking task runs (tokio's `BlockingSchedule` inhibits it): the
//! runtime waits for real I/O with virtual time frozen. A test holds the
//! clock until it has *seen* everything that must happen before the timers
//! (tokens received, the mock stalling), then releases it; from then on
//! nothing is in flight and the only thing that can happen next is the
//! earliest timer firing, at an exact virtual instant.

use std::sync::mpsc;
use std::time::Duration;

use tokio::task::JoinHandle;

/// Freezes a paused clock until released (or dropped). Needs a
/// current-thread runtime, which `#[tokio::test]` is.
pub struct ClockHold {
    release: mpsc::Sender<()>,
    task: JoinHandle<()>,
}

impl ClockHold {
    /// A real-time guard: a test that waits on its hold for something that
    /// never comes gets its clock back after this long and fails on its
    /// assertions instead of hanging.
    const GUARD: Duration = Duration::from_secs(30);

    pub fn new() -> ClockHold {
        let (release, held) = mpsc::channel::<()>();
        let task = tokio::task::spawn_blocking(move || {
            let _ = held.recv_timeout(ClockHold::GUARD);
        });
        ClockHold { release, task }
    }

    /// Lets the clock run again. tokio wakes this await a moment before it
    /// retires the blocking task and lifts the inhibition; if the runtime
    /// goes idle in between it waits on real time, with virtual time still
    /// frozen, until the retirement unparks it. Either way no virtual time
    /// passes before the hold is gone.
    pub async fn release(self) {
        drop(self.release);
        self.task.await.expect("the clock hold task ends");
    }
}
