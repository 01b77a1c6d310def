//! Outgoing HTTP: one `reqwest` client per process (connections reused per host), with
//! the protocol's bounds (§11): connect and total timeouts, 1 MiB responses, at most three
//! redirects on `GET` (each target re-checked and the request re-signed) and none on
//! `POST`, and the SSRF rule: outside development mode, no connection to a loopback,
//! private, link-local or otherwise special address, checked on every resolved address at
//! connection time (a resolver that filters what DNS answers, against rebinding) and on
//! literal addresses before each request. An operator allow-list lets named partners, or
//! ranges, resolve to private (intranet) addresses; it never covers loopback or link-local.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use ipnet::IpNet;
use passerelle_protocol::httpsig;
use reqwest::header::{HeaderMap, HeaderValue};
use url::Url;

use super::Signer;

/// Largest response body read from a partner (protocol §11).
pub const MAX_RESPONSE_BYTES: usize = 1024 * 1024;
/// Redirects followed on `GET`.
pub const MAX_REDIRECTS: usize = 3;
/// Media type of ActivityStreams documents.
pub const ACTIVITY_JSON: &str = "application/activity+json";
/// How long an idle outgoing connection is kept for reuse. The pool closes idle
/// connections on a timer of the same period, so one is closed 10–20 s after its last
/// use: long enough to serve a burst (a fan-out, the pages of a pull, an actor fetch and
/// the `Accept` that follows), short enough that a node with 1,000 partners does not keep
/// 1,000 sockets and their buffers (about 27 KB each, measured) between bursts.
pub const POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(10);
/// Idle connections kept per partner origin: the deliveries in flight to one inbox.
pub const POOL_MAX_IDLE_PER_HOST: usize = 4;

/// Why an outgoing request was not made or failed.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum NetError {
    /// The URL may not be fetched (scheme, userinfo, host).
    #[error("refused URL {url}: {reason}")]
    Refused {
        /// The URL.
        url: String,
        /// Why.
        reason: String,
    },
    /// Connection, TLS, DNS or timeout failure.
    #[error("cannot reach {url}: {reason}")]
    Unreachable {
        /// The URL.
        url: String,
        /// What failed.
        reason: String,
        /// Whether it was a timeout.
        timeout: bool,
    },
    /// The response body is over the limit.
    #[error("the response of {url} is larger than {MAX_RESPONSE_BYTES} bytes")]
    TooLarge {
        /// The URL.
        url: String,
    },
    /// Too many redirects, or a redirect to another scheme.
    #[error("bad redirect from {url}: {reason}")]
    Redirect {
        /// The URL.
        url: String,
        /// Why.
        reason: String,
    },
    /// Signing the request failed (a bug).
    #[error("cannot sign the request to {url}: {reason}")]
    Sign {
        /// The URL.
        url: String,
        /// Why.
        reason: String,
    },
}

/// Which addresses the node may connect to.
#[derive(Debug, Clone, Default)]
pub struct NetPolicy {
    /// Development mode: loopback addresses (and plain http to them) are allowed.
    pub allow_loopback: bool,
    /// Host names allowed to resolve to private addresses.
    pub private_hosts: Vec<String>,
    /// Private ranges allowed.
    pub private_ranges: Vec<IpNet>,
}

/// What kind of address an IP is, for the SSRF rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AddressClass {
    /// A public unicast address.
    Global,
    /// `127.0.0.0/8`, `::1`.
    Loopback,
    /// RFC 1918, `fc00::/7`, shared `100.64.0.0/10`.
    Private,
    /// `169.254.0.0/16`, `fe80::/10`.
    LinkLocal,
    /// Unspecified, multicast, broadcast, reserved, documentation, benchmarking and other
    /// special-purpose addresses: never connected to.
    Special,
}

fn v4_class(ip: Ipv4Addr) -> AddressClass {
    let o = ip.octets();
    if ip.is_loopback() {
        AddressClass::Loopback
    } else if ip.is_private() || (o[0] == 100 && (o[1] & 0xc0) == 64) {
        AddressClass::Private
    } else if ip.is_link_local() {
        AddressClass::LinkLocal
    } else if ip.is_unspecified()
        || o[0] == 0
        || ip.is_multicast()
        || ip.is_broadcast()
        || o[0] >= 240
        || ip.is_documentation()
        || (o[0] == 198 && (o[1] & 0xfe) == 18)
        || (o[0] == 192 && o[1] == 0 && o[2] == 0)
        || (o[0] == 192 && o[1] == 88 && o[2] == 99)
    {
        AddressClass::Special
    } else {
        AddressClass::Global
    }
}

/// Classifies an address (IPv4-mapped and NAT64 IPv6 addresses by the IPv4 they carry).
pub fn classify(ip: IpAddr) -> AddressClass {
    match ip {
        IpAddr::V4(v4) => v4_class(v4),
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return v4_class(v4);
            }
            let s = v6.segments();
            if s[0] == 0x64 && s[1] == 0xff9b && s[2..6] == [0, 0, 0, 0] {
                let v4 = Ipv4Addr::new(
                    (s[6] >> 8) as u8,
                    (s[6] & 0xff) as u8,
                    (s[7] >> 8) as u8,
                    (s[7] & 0xff) as u8,
                );
                return v4_class(v4);
            }
            if v6.is_loopback() {
                AddressClass::Loopback
            } else if (s[0] & 0xfe00) == 0xfc00 {
                AddressClass::Private
            } else if (s[0] & 0xffc0) == 0xfe80 {
                AddressClass::LinkLocal
            } else if v6.is_unspecified()
                || v6.is_multicast()
                || (s[0] == 0x2001 && s[1] == 0x0db8)
                || (s[0] == 0x2001 && s[1] < 0x0200)
                || s[0] == 0x2002
                || (s[0] == 0x0100 && s[1..4] == [0, 0, 0])
                || (s[0] & 0xffc0) == 0xfec0
                || v6 == Ipv6Addr::UNSPECIFIED
                || (s[0] & 0xe000) != 0x2000
            {
                AddressClass::Special
            } else {
                AddressClass::Global
            }
        }
    }
}

fn is_loopback_name(host: &str) -> bool {
    let h = host.trim_end_matches('.').to_ascii_lowercase();
    h == "localhost" || h.ends_with(".localhost")
}

impl NetPolicy {
    /// Whether `host` may be connected to at `ip`.
    pub fn allows(&self, host: &str, ip: IpAddr) -> bool {
        match classify(ip) {
            AddressClass::Global => true,
            AddressClass::Loopback => self.allow_loopback,
            AddressClass::Private => {
                let h = host.trim_end_matches('.').to_ascii_lowercase();
                self.private_hosts
                    .iter()
                    .any(|a| a.eq_ignore_ascii_case(&h))
                    || self.private_ranges.iter().any(|r| r.contains(&ip))
            }
            AddressClass::LinkLocal | AddressClass::Special => false,
        }
    }

    /// Checks a URL before any request: `https` (or `http` to a loopback host in
    /// development mode), no userinfo, and a literal address host that is allowed.
    ///
    /// # Errors
    /// [`NetError::Refused`] with the reason.
    pub fn check_url(&self, url: &Url) -> Result<(), NetError> {
        let refuse = |reason: &str| NetError::Refused {
            url: url.to_string(),
            reason: reason.to_owned(),
        };
        if !url.username().is_empty() || url.password().is_some() {
            return Err(refuse("URLs with userinfo are not fetched"));
        }
        let host = url.host().ok_or_else(|| refuse("no host"))?;
        let loopback_host = match &host {
            url::Host::Domain(d) => is_loopback_name(d),
            url::Host::Ipv4(ip) => ip.is_loopback(),
            url::Host::Ipv6(ip) => ip.is_loopback(),
        };
        match url.scheme() {
            "https" => {}
            "http" if self.allow_loopback && loopback_host => {}
            "http" => {
                return Err(refuse(
                    "plain http is refused (only loopback peers in development mode)",
                ));
            }
            _ => return Err(refuse("only https URLs are fetched")),
        }
        let literal = match host {
            url::Host::Ipv4(ip) => Some(IpAddr::V4(ip)),
            url::Host::Ipv6(ip) => Some(IpAddr::V6(ip)),
            url::Host::Domain(_) => None,
        };
        if let Some(ip) = literal
            && !self.allows(&ip.to_string(), ip)
        {
            return Err(refuse(&format!(
                "{ip} is a {:?} address; outside development mode only public addresses (and intranet ones allowed by federation.private_network_*) are reached",
                classify(ip)
            )));
        }
        Ok(())
    }
}

/// DNS resolver that drops the addresses the policy refuses.
struct GuardedResolver {
    policy: Arc<NetPolicy>,
}

impl reqwest::dns::Resolve for GuardedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let policy = self.policy.clone();
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let addrs: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let allowed: Vec<SocketAddr> = addrs
                .iter()
                .copied()
                .filter(|a| policy.allows(&host, a.ip()))
                .collect();
            if allowed.is_empty() {
                let found: Vec<String> = addrs.iter().map(|a| a.ip().to_string()).collect();
                return Err(format!(
                    "{host} resolves only to refused addresses ({}); see federation.private_network_hosts",
                    found.join(", ")
                )
                .into());
            }
            let iter: reqwest::dns::Addrs = Box::new(allowed.into_iter());
            Ok(iter)
        })
    }
}

/// A response read within the bounds.
#[derive(Debug, Clone)]
pub struct Fetched {
    /// The URL finally answered (after redirects).
    pub url: Url,
    /// Status.
    pub status: u16,
    /// `Content-Type`, if any.
    pub content_type: Option<String>,
    /// `Retry-After`, if any.
    pub retry_after: Option<String>,
    /// The body (at most [`MAX_RESPONSE_BYTES`]).
    pub body: Vec<u8>,
}

/// The outgoing HTTP client.
#[derive(Clone)]
pub struct Net {
    client: reqwest::Client,
    policy: Arc<NetPolicy>,
    user_agent: String,
}

impl std::fmt::Debug for Net {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Net").field("policy", &self.policy).finish()
    }
}

impl Net {
    /// Builds the client.
    ///
    /// # Errors
    /// When the TLS backend cannot be initialised.
    pub fn new(
        policy: NetPolicy,
        connect_timeout: Duration,
        timeout: Duration,
        user_agent: String,
    ) -> Result<Self, reqwest::Error> {
        let policy = Arc::new(policy);
        let client = reqwest::Client::builder()
            .dns_resolver(Arc::new(GuardedResolver {
                policy: policy.clone(),
            }))
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(connect_timeout)
            .timeout(timeout)
            .no_proxy()
            .pool_idle_timeout(POOL_IDLE_TIMEOUT)
            .pool_max_idle_per_host(POOL_MAX_IDLE_PER_HOST)
            .user_agent(user_agent.clone())
            .build()?;
        Ok(Self {
            client,
            policy,
            user_agent,
        })
    }

    /// The address policy.
    pub fn policy(&self) -> &NetPolicy {
        &self.policy
    }

    /// The `User-Agent` sent.
    pub fn user_agent(&self) -> &str {
        &self.user_agent
    }

    /// `GET` with `Accept: application/activity+json`, signed when `signer` is given,
    /// following at most [`MAX_REDIRECTS`] redirects (same scheme, each target checked and
    /// the request re-signed for it).
    ///
    /// # Errors
    /// Any [`NetError`]; an HTTP error status is not an error (see [`Fetched::status`]).
    pub async fn get(
        &self,
        url: &str,
        accept: &str,
        signer: Option<&Signer>,
    ) -> Result<Fetched, NetError> {
        let mut current = Url::parse(url).map_err(|e| NetError::Refused {
            url: url.to_owned(),
            reason: e.to_string(),
        })?;
        for hop in 0..=MAX_REDIRECTS {
            self.policy.check_url(&current)?;
            let mut headers = HeaderMap::new();
            if let Ok(v) = HeaderValue::from_str(accept) {
                headers.insert(reqwest::header::ACCEPT, v);
            }
            if let Some(signer) = signer {
                sign_into(&mut headers, "GET", current.as_str(), None, &[], signer)?;
            }
            let response = self
                .client
                .get(current.clone())
                .headers(headers)
                .send()
                .await
                .map_err(|e| unreachable(current.as_str(), &e))?;
            let status = response.status();
            if status.is_redirection() {
                let location = response
                    .headers()
                    .get(reqwest::header::LOCATION)
                    .and_then(|v| v.to_str().ok())
                    .ok_or_else(|| NetError::Redirect {
                        url: current.to_string(),
                        reason: format!("{status} without Location"),
                    })?;
                let next = current.join(location).map_err(|e| NetError::Redirect {
                    url: current.to_string(),
                    reason: e.to_string(),
                })?;
                if next.scheme() != current.scheme() {
                    return Err(NetError::Redirect {
                        url: current.to_string(),
                        reason: format!("redirect to another scheme ({next})"),
                    });
                }
                if hop == MAX_REDIRECTS {
                    return Err(NetError::Redirect {
                        url: url.to_owned(),
                        reason: format!("more than {MAX_REDIRECTS} redirects"),
                    });
                }
                current = next;
                continue;
            }
            return read(current, response).await;
        }
        Err(NetError::Redirect {
            url: url.to_owned(),
            reason: format!("more than {MAX_REDIRECTS} redirects"),
        })
    }

    /// Signed `POST` of an activity to an inbox; redirects are not followed.
    ///
    /// # Errors
    /// Any [`NetError`]; an HTTP error status is not an error.
    pub async fn post_activity(
        &self,
        inbox: &str,
        body: Vec<u8>,
        signer: &Signer,
    ) -> Result<Fetched, NetError> {
        let url = Url::parse(inbox).map_err(|e| NetError::Refused {
            url: inbox.to_owned(),
            reason: e.to_string(),
        })?;
        self.policy.check_url(&url)?;
        let mut headers = HeaderMap::new();
        headers.insert(
            reqwest::header::CONTENT_TYPE,
            HeaderValue::from_static(ACTIVITY_JSON),
        );
        headers.insert(
            reqwest::header::ACCEPT,
            HeaderValue::from_static("application/problem+json, application/json"),
        );
        sign_into(
            &mut headers,
            "POST",
            url.as_str(),
            Some(ACTIVITY_JSON),
            &body,
            signer,
        )?;
        let response = self
            .client
            .post(url.clone())
            .headers(headers)
            .body(body)
            .send()
            .await
            .map_err(|e| unreachable(url.as_str(), &e))?;
        read(url, response).await
    }
}

/// Adds the RFC 9421 signature of a request (and, with a body, its `Content-Digest`).
fn sign_into(
    headers: &mut HeaderMap,
    method: &str,
    target: &str,
    content_type: Option<&str>,
    body: &[u8],
    signer: &Signer,
) -> Result<(), NetError> {
    let sign_err = |reason: String| NetError::Sign {
        url: target.to_owned(),
        reason,
    };
    let created = time::OffsetDateTime::now_utc().unix_timestamp();
    let signed_headers: Vec<(&str, &str)> = content_type
        .map(|ct| vec![("content-type", ct)])
        .unwrap_or_default();
    let signed = httpsig::sign_passerelle_request(
        method,
        target,
        &signed_headers,
        body,
        signer.key(),
        signer.key_id(),
        created,
    )
    .map_err(|e| sign_err(e.to_string()))?;
    let mut put = |name: &'static str, value: &str| -> Result<(), NetError> {
        let v = HeaderValue::from_str(value).map_err(|e| sign_err(e.to_string()))?;
        headers.insert(name, v);
        Ok(())
    };
    if let Some(digest) = &signed.content_digest {
        put("content-digest", digest)?;
    }
    put("signature-input", &signed.signature.signature_input)?;
    put("signature", &signed.signature.signature)?;
    Ok(())
}

fn unreachable(url: &str, e: &reqwest::Error) -> NetError {
    let mut reason = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        reason.push_str(": ");
        reason.push_str(&s.to_string());
        source = s.source();
    }
    NetError::Unreachable {
        url: url.to_owned(),
        reason,
        timeout: e.is_timeout(),
    }
}

async fn read(url: Url, mut response: reqwest::Response) -> Result<Fetched, NetError> {
    let status = response.status().as_u16();
    let header = |name: reqwest::header::HeaderName| {
        response
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let content_type = header(reqwest::header::CONTENT_TYPE);
    let retry_after = header(reqwest::header::RETRY_AFTER);
    if response
        .content_length()
        .is_some_and(|n| n > MAX_RESPONSE_BYTES as u64)
    {
        return Err(NetError::TooLarge {
            url: url.to_string(),
        });
    }
    let mut body = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| unreachable(url.as_str(), &e))?
    {
        if body.len() + chunk.len() > MAX_RESPONSE_BYTES {
            return Err(NetError::TooLarge {
                url: url.to_string(),
            });
        }
        body.extend_from_slice(&chunk);
    }
    Ok(Fetched {
        url,
        status,
        content_type,
        retry_after,
        body,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

    /// Reads one HTTP/1.1 request head (the test's `GET`s have no body).
    async fn read_request(sock: &mut tokio::net::TcpStream) -> bool {
        let mut got = Vec::new();
        let mut buf = [0u8; 1024];
        while !got.windows(4).any(|w| w == b"\r\n\r\n") {
            match sock.read(&mut buf).await {
                Ok(0) | Err(_) => return false,
                Ok(n) => got.extend_from_slice(&buf[..n]),
            }
        }
        true
    }

    /// A partner's connection is reused by the next request, and closed once it has been
    /// idle for [`POOL_IDLE_TIMEOUT`] (with 1,000 partners, 1,000 idle sockets and their
    /// buffers would otherwise stay open; the previous 90 s timeout kept them for up to
    /// three minutes).
    #[tokio::test]
    async fn an_idle_connection_is_reused_then_closed() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(async move {
            // One connection only: a second request on another connection would hang
            // and fail the client.
            let (mut sock, _) = listener.accept().await.unwrap();
            for _ in 0..2 {
                assert!(
                    read_request(&mut sock).await,
                    "a second request on the same connection"
                );
                sock.write_all(b"HTTP/1.1 200 OK\r\ncontent-type: application/activity+json\r\ncontent-length: 2\r\n\r\n{}")
                    .await
                    .unwrap();
            }
            // Then the client closes it when it has been idle long enough.
            let mut buf = [0u8; 64];
            while !matches!(sock.read(&mut buf).await, Ok(0) | Err(_)) {}
        });
        let net = Net::new(
            NetPolicy {
                allow_loopback: true,
                ..NetPolicy::default()
            },
            Duration::from_secs(5),
            Duration::from_secs(10),
            "test".to_owned(),
        )
        .unwrap();
        for _ in 0..2 {
            let fetched = net
                .get(&format!("http://{addr}/outbox"), ACTIVITY_JSON, None)
                .await
                .unwrap();
            assert_eq!(fetched.status, 200);
        }
        // Liveness bound only, three times what the pool needs (closed within 2 × 10 s);
        // the previous 90 s timeout would not close it before 90 s.
        tokio::time::timeout(Duration::from_secs(60), server)
            .await
            .expect("the idle connection was never closed")
            .unwrap();
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn addresses_are_classified() {
        for (a, c) in [
            ("8.8.8.8", AddressClass::Global),
            ("2a01:e0a::1", AddressClass::Global),
            ("127.0.0.1", AddressClass::Loopback),
            ("127.255.0.9", AddressClass::Loopback),
            ("::1", AddressClass::Loopback),
            ("10.1.2.3", AddressClass::Private),
            ("172.16.0.1", AddressClass::Private),
            ("192.168.1.1", AddressClass::Private),
            ("100.64.0.1", AddressClass::Private),
            ("fd12::1", AddressClass::Private),
            ("169.254.169.254", AddressClass::LinkLocal),
            ("fe80::1", AddressClass::LinkLocal),
            ("0.0.0.0", AddressClass::Special),
            ("::", AddressClass::Special),
            ("224.0.0.1", AddressClass::Special),
            ("255.255.255.255", AddressClass::Special),
            ("240.0.0.1", AddressClass::Special),
            ("192.0.2.1", AddressClass::Special),
            ("198.18.0.1", AddressClass::Special),
            ("2001:db8::1", AddressClass::Special),
            ("ff02::1", AddressClass::Special),
            // IPv4-mapped and NAT64 forms are judged by the IPv4 they carry.
            ("::ffff:127.0.0.1", AddressClass::Loopback),
            ("::ffff:169.254.169.254", AddressClass::LinkLocal),
            ("::ffff:10.0.0.1", AddressClass::Private),
            ("64:ff9b::a9fe:a9fe", AddressClass::LinkLocal),
            ("64:ff9b::808:808", AddressClass::Global),
        ] {
            assert_eq!(classify(ip(a)), c, "{a}");
        }
    }

    #[test]
    fn policy_allows_public_refuses_special_and_honours_the_allow_list() {
        let prod = NetPolicy::default();
        assert!(prod.allows("example.org", ip("93.184.215.14")));
        assert!(!prod.allows("localhost", ip("127.0.0.1")));
        assert!(!prod.allows("intranet", ip("10.0.0.5")));
        assert!(!prod.allows("x", ip("169.254.169.254")));
        let rie = NetPolicy {
            private_hosts: vec!["rh.agglo.rie.gouv.fr".into()],
            private_ranges: vec!["10.20.0.0/16".parse().unwrap()],
            ..NetPolicy::default()
        };
        assert!(rie.allows("RH.agglo.rie.gouv.fr.", ip("172.16.3.4")));
        assert!(rie.allows("other.example", ip("10.20.1.1")));
        assert!(!rie.allows("other.example", ip("10.21.1.1")));
        // The allow-list never opens loopback or link-local addresses.
        assert!(!rie.allows("rh.agglo.rie.gouv.fr", ip("127.0.0.1")));
        assert!(!rie.allows("rh.agglo.rie.gouv.fr", ip("169.254.1.1")));
        let dev = NetPolicy {
            allow_loopback: true,
            ..NetPolicy::default()
        };
        assert!(dev.allows("localhost", ip("127.0.0.1")));
        assert!(!dev.allows("x", ip("169.254.169.254")));
    }

    #[test]
    fn urls_are_checked_before_any_request() {
        let prod = NetPolicy::default();
        let dev = NetPolicy {
            allow_loopback: true,
            ..NetPolicy::default()
        };
        let u = |s: &str| Url::parse(s).unwrap();
        assert!(
            prod.check_url(&u("https://emploi.grenoble.fr/actor"))
                .is_ok()
        );
        for bad in [
            "http://emploi.grenoble.fr/actor",
            "https://127.0.0.1/actor",
            "https://[::1]/actor",
            "https://169.254.169.254/latest/meta-data",
            "https://10.0.0.1/actor",
            "https://user:pw@emploi.grenoble.fr/actor",
            "ftp://emploi.grenoble.fr/actor",
            "http://127.0.0.1:8080/actor",
        ] {
            assert!(prod.check_url(&u(bad)).is_err(), "{bad}");
        }
        assert!(dev.check_url(&u("http://127.0.0.1:8080/actor")).is_ok());
        assert!(dev.check_url(&u("http://localhost:8080/actor")).is_ok());
        assert!(
            dev.check_url(&u("http://emploi.grenoble.fr/actor"))
                .is_err()
        );
        assert!(dev.check_url(&u("https://169.254.169.254/")).is_err());
    }
}
