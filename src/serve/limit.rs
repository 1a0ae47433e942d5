//! Requests per second per API key: a token bucket per key name (GCRA,
//! the `governor` crate), refilled at `rate` per second and holding a
//! burst of twice that. Over the limit: 429 with `Retry-After` (whole
//! seconds, at least 1) in the one error shape. Keyed by the key's name,
//! set by [`super::middleware::require_key`], so only valid keys get a
//! bucket and the map cannot grow with garbage.

use std::num::NonZeroU32;
use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{HeaderValue, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

use super::error::ApiError;
use super::middleware::KeyName;

/// The default: 20 requests per second per key, bursts of 40.
pub const DEFAULT_RATE: u32 = 20;

/// A limiter per key name; `None` when the limit is off.
#[derive(Clone)]
pub struct KeyLimiter {
    limiter: Arc<DefaultKeyedRateLimiter<String>>,
    clock: DefaultClock,
}

impl KeyLimiter {
    /// `rate` requests per second per key, bursts of twice that; `None`
    /// for 0 (no limit).
    pub fn per_second(rate: u32) -> Option<KeyLimiter> {
        let rate = NonZeroU32::new(rate)?;
        let burst = rate.saturating_mul(NonZeroU32::new(2).expect("2 is not 0"));
        Some(KeyLimiter {
            limiter: Arc::new(RateLimiter::keyed(
                Quota::per_second(rate).allow_burst(burst),
            )),
            clock: DefaultClock::default(),
        })
    }

    /// `Ok` if `key` may make a request now, else the whole seconds to
    /// wait (at least 1).
    pub fn check(&self, key: &str) -> Result<(), u64> {
        match self.limiter.check_key(&key.to_string()) {
            Ok(()) => Ok(()),
            Err(not_until) => {
                let wait = not_until.wait_time_from(self.clock.now());
                Err(wait.as_secs_f64().ceil().max(1.0) as u64)
            }
        }
    }
}

/// The middleware: inside the key check (it needs [`KeyName`]).
pub async fn rate_limit(
    State(limiter): State<Option<KeyLimiter>>,
    request: Request,
    next: Next,
) -> Response {
    if let (Some(limiter), Some(KeyName(name))) = (&limiter, request.extensions().get::<KeyName>())
        && let Err(seconds) = limiter.check(name)
    {
        let mut response = ApiError::from_status(axum::http::StatusCode::TOO_MANY_REQUESTS)
            .with_details(serde_json::json!({"retry_after_seconds": seconds}))
            .into_response();
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        return response;
    }
    next.run(request).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_over_the_limit_waits_and_other_keys_do_not() {
        let limiter = KeyLimiter::per_second(5).unwrap();
        for _ in 0..10 {
            assert!(limiter.check("a").is_ok());
        }
        assert_eq!(limiter.check("a"), Err(1));
        assert!(limiter.check("b").is_ok());
        assert!(KeyLimiter::per_second(0).is_none());
    }
}
