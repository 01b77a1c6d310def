//! Rate limits (token buckets, per process): per partner on the inbox (by the origin of the
//! signing key it names), per client elsewhere (by API token or session, else by address,
//! with `X-Forwarded-For` honoured from trusted proxies only). Beyond the limit: `429`
//! `rate_limited` with `Retry-After`, which partners' delivery workers honour (protocol
//! §8.2), instead of falling over. Health, readiness and metrics are never limited.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::extract::{ConnectInfo, Request, State};
use axum::http::HeaderMap;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use ipnet::IpNet;
use sha2::Digest as _;

use super::error::AppError;
use crate::federation::error::ProtocolError;
use crate::state::AppState;

/// Buckets kept before idle ones are dropped.
const MAX_BUCKETS: usize = 10_000;

/// A token-bucket limiter keyed by client.
#[derive(Debug)]
pub struct RateLimiter {
    rate: f64,
    burst: f64,
    buckets: Mutex<BTreeMap<String, (f64, Instant)>>,
}

impl RateLimiter {
    /// `rate` requests per second, with bursts of `burst`.
    pub fn new(rate: u32, burst: u32) -> Self {
        Self {
            rate: f64::from(rate.max(1)),
            burst: f64::from(burst.max(1)),
            buckets: Mutex::new(BTreeMap::new()),
        }
    }

    /// Takes one token for `key`: `Ok`, or how long to wait for the next one.
    ///
    /// # Errors
    /// The delay before a token is available.
    pub fn check(&self, key: &str, now: Instant) -> Result<(), Duration> {
        let mut buckets = self
            .buckets
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if buckets.len() >= MAX_BUCKETS {
            // Drop the clients that have been idle long enough to be full again.
            let full_after = Duration::from_secs_f64(self.burst / self.rate);
            buckets.retain(|_, (_, last)| now.duration_since(*last) < full_after);
        }
        let (tokens, last) = buckets.entry(key.to_owned()).or_insert((self.burst, now));
        let refill = now.duration_since(*last).as_secs_f64() * self.rate;
        *tokens = (*tokens + refill).min(self.burst);
        *last = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - *tokens) / self.rate))
        }
    }
}

/// The limiters of a node.
#[derive(Debug)]
pub struct Limits {
    clients: RateLimiter,
    partners: RateLimiter,
    trusted: Vec<IpNet>,
}

impl Limits {
    /// Limits from the configuration.
    pub fn new(config: &crate::config::Config) -> Self {
        Self {
            clients: RateLimiter::new(
                config.server.rate_limit_per_second,
                config.server.rate_limit_burst,
            ),
            partners: RateLimiter::new(
                config.federation.inbox_rate_per_second,
                config.federation.inbox_rate_burst,
            ),
            trusted: config.server.trusted_proxy_ranges().unwrap_or_default(),
        }
    }
}

/// The client's address: the peer, or the last untrusted hop of `X-Forwarded-For` when
/// the peer is a trusted proxy.
fn client_ip(peer: Option<IpAddr>, headers: &HeaderMap, trusted: &[IpNet]) -> Option<IpAddr> {
    let peer = peer?;
    if !trusted.iter().any(|r| r.contains(&peer)) {
        return Some(peer);
    }
    let forwarded: Vec<IpAddr> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|a| a.trim().parse().ok())
        .collect();
    Some(
        forwarded
            .into_iter()
            .rev()
            .find(|ip| !trusted.iter().any(|r| r.contains(ip)))
            .unwrap_or(peer),
    )
}

/// The origin named by the `keyid` of a request's signature (unverified: only a bucket).
fn signer_origin(headers: &HeaderMap) -> Option<String> {
    let input = headers.get("signature-input")?.to_str().ok()?;
    let keyid = input.split("keyid=\"").nth(1)?.split('"').next()?;
    let url = url::Url::parse(keyid).ok()?;
    Some(url.origin().ascii_serialization())
}

fn credential_key(headers: &HeaderMap) -> Option<String> {
    let value = headers
        .get(axum::http::header::AUTHORIZATION)
        .or_else(|| headers.get(axum::http::header::COOKIE))?;
    let digest = sha2::Sha256::digest(value.as_bytes());
    Some(format!("cred:{}", hex::encode(&digest[..12])))
}

/// The middleware.
pub async fn rate_limit(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let path = req.uri().path();
    if matches!(path, "/healthz" | "/readyz" | "/metrics") {
        return next.run(req).await;
    }
    let limits = state.limits();
    let peer = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip());
    let headers = req.headers();
    let ip = client_ip(peer, headers, &limits.trusted);
    let (limiter, key) = if path == "/inbox" {
        let key = signer_origin(headers)
            .map(|o| format!("partner:{o}"))
            .or_else(|| ip.map(|i| format!("ip:{i}")));
        (&limits.partners, key)
    } else {
        let key = credential_key(headers).or_else(|| ip.map(|i| format!("ip:{i}")));
        (&limits.clients, key)
    };
    let Some(key) = key else {
        return next.run(req).await;
    };
    match limiter.check(&key, Instant::now()) {
        Ok(()) => next.run(req).await,
        Err(wait) => {
            let secs = wait.as_secs().saturating_add(1);
            if path == "/inbox" {
                state.federation().metrics().inbox("push", "rate_limited");
            }
            tracing::info!(client = %key, path, retry_after_secs = secs, "rate limited");
            let mut err = ProtocolError::new(
                429,
                "rate_limited",
                format!("too many requests; retry in {secs} s (Retry-After)"),
            );
            err.retry_after = Some(secs);
            AppError::Protocol(err).into_response()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_refill_at_the_rate_and_cap_at_the_burst() {
        let l = RateLimiter::new(10, 3);
        let t0 = Instant::now();
        for _ in 0..3 {
            assert!(l.check("a", t0).is_ok());
        }
        let wait = l.check("a", t0).unwrap_err();
        assert!(
            wait <= Duration::from_millis(100) && wait > Duration::ZERO,
            "{wait:?}"
        );
        // Another client has its own bucket.
        assert!(l.check("b", t0).is_ok());
        // 100 ms later one token is back; a long idle period refills to the burst only.
        assert!(l.check("a", t0 + Duration::from_millis(100)).is_ok());
        assert!(l.check("a", t0 + Duration::from_millis(100)).is_err());
        let later = t0 + Duration::from_secs(60);
        for _ in 0..3 {
            assert!(l.check("a", later).is_ok());
        }
        assert!(l.check("a", later).is_err());
    }

    #[test]
    fn forwarded_addresses_are_trusted_from_proxies_only() {
        let trusted: Vec<IpNet> = vec!["127.0.0.1/32".parse().unwrap()];
        let mut h = HeaderMap::new();
        h.insert(
            "x-forwarded-for",
            "203.0.113.7, 198.51.100.2".parse().unwrap(),
        );
        let proxy = Some("127.0.0.1".parse().unwrap());
        assert_eq!(client_ip(proxy, &h, &trusted), "198.51.100.2".parse().ok());
        // A direct client cannot choose its address with the header.
        let direct = Some("192.0.2.9".parse().unwrap());
        assert_eq!(client_ip(direct, &h, &trusted), direct);
        assert_eq!(client_ip(proxy, &HeaderMap::new(), &trusted), proxy);
    }

    #[test]
    fn inbox_requests_are_bucketed_by_the_signer_origin() {
        let mut h = HeaderMap::new();
        h.insert(
            "signature-input",
            r#"sig1=("@method" "@target-uri");created=1;keyid="https://rh.isere.fr/actor#key-1";alg="ed25519""#
                .parse()
                .unwrap(),
        );
        assert_eq!(signer_origin(&h).as_deref(), Some("https://rh.isere.fr"));
        assert_eq!(signer_origin(&HeaderMap::new()), None);
    }
}
