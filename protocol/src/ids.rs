//! Validated identifiers: actor and object ids, key ids, SIREN/SIRET and COG codes.
//!
//! Every type here is a newtype that can only hold a valid value: it is built by
//! [`FromStr`] (or a `parse_with` that takes a [`UrlPolicy`]), printed by [`Display`], and
//! deserialized through the same check, so a value of these types that exists is valid.
//!
//! **URLs.** Ids are absolute `https` URLs without userinfo; object and actor ids carry no
//! fragment, key ids must carry one. Plain `http` is a development convenience: it is
//! accepted only for loopback hosts (`127.0.0.0/8`, `::1`, `localhost`). [`FromStr`] and
//! serde accept such loopback `http` ids (multi-node tests run on loopback), and
//! [`UrlPolicy`] decides whether a node accepts them: [`ObjectId::parse_with`] with
//! [`UrlPolicy::HttpsOnly`] refuses them, and the vocabulary's validation reports them
//! unless its context allows them. Production nodes run with `HttpsOnly`.
//!
//! **Minting.** Every object a node creates gets `{base}/{path}/{uuidv7}` from [`mint`]; the
//! caller passes the UUID (see [`uuid_v7`] to build one from a time and random bytes), so
//! this module stays pure.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use url::{Host, Url};
use uuid::Uuid;

/// Which URL schemes an id may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum UrlPolicy {
    /// Only `https` (production).
    #[default]
    HttpsOnly,
    /// `https`, and plain `http` when the host is a loopback address (development mode,
    /// multi-node tests).
    AllowLoopbackHttp,
}

/// Errors about identifiers. Each message names the value, the rule and how to fix it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum IdError {
    /// The string is not an absolute URL.
    #[error(
        "{value:?} is not an absolute URL ({reason}); use a full URL such as https://ville.example/actor"
    )]
    NotAUrl {
        /// The string received.
        value: String,
        /// The URL parser's explanation.
        reason: String,
    },
    /// The URL scheme is not allowed by the policy.
    #[error(
        "{value:?} uses scheme {scheme:?}; ids must use https (plain http only for loopback hosts in development mode)"
    )]
    Scheme {
        /// The URL received.
        value: String,
        /// Its scheme.
        scheme: String,
    },
    /// The URL has no host.
    #[error("{value:?} has no host; ids must name the node's domain")]
    NoHost {
        /// The URL received.
        value: String,
    },
    /// The URL carries a user name or password.
    #[error("{value:?} carries userinfo (user:password@); remove it, ids never carry credentials")]
    Userinfo {
        /// The URL received (with its userinfo, since it is the caller's own input).
        value: String,
    },
    /// An object or actor id has a fragment.
    #[error("{value:?} has a fragment (#...); object and actor ids must not, only key ids do")]
    Fragment {
        /// The URL received.
        value: String,
    },
    /// A key id has no fragment.
    #[error(
        "key id {value:?} has no fragment; key ids look like https://ville.example/actor#key-2026-1"
    )]
    NoFragment {
        /// The URL received.
        value: String,
    },
    /// A SIREN or SIRET has the wrong length or non-digit characters.
    #[error("{what} {value:?} must be exactly {len} digits")]
    DigitsLength {
        /// "SIREN" or "SIRET".
        what: &'static str,
        /// The string received.
        value: String,
        /// The expected number of digits.
        len: usize,
    },
    /// A SIREN or SIRET fails its Luhn checksum.
    #[error("{what} {value:?} fails the Luhn checksum; check for a mistyped digit")]
    Checksum {
        /// "SIREN" or "SIRET".
        what: &'static str,
        /// The string received.
        value: String,
    },
    /// A COG code (commune, département, région) is not a valid code.
    #[error("{what} {value:?} is not valid: {rule}")]
    Cog {
        /// Which code ("commune COG code", "département code", "région code").
        what: &'static str,
        /// The string received.
        value: String,
        /// The rule broken.
        rule: &'static str,
    },
    /// The UUID passed to [`mint`] is not a version 7 UUID.
    #[error(
        "{value} is not a UUIDv7 (version {version}); minted ids end in a UUIDv7 so that they sort by time"
    )]
    NotUuidV7 {
        /// The UUID received.
        value: Uuid,
        /// Its version number.
        version: usize,
    },
    /// The path passed to [`mint`] is empty or malformed.
    #[error(
        "path segment {value:?} is not valid for minting: use lower-case ASCII segments such as \"postings\""
    )]
    MintPath {
        /// The path received.
        value: String,
    },
}

fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(Host::Ipv4(a)) => IpAddr::V4(a).is_loopback(),
        Some(Host::Ipv6(a)) => IpAddr::V6(a).is_loopback(),
        Some(Host::Domain(d)) => {
            let d = d.trim_end_matches('.');
            d.eq_ignore_ascii_case("localhost") || d.to_ascii_lowercase().ends_with(".localhost")
        }
        None => false,
    }
}

/// Parses and checks an id URL: absolute, `https` (or loopback `http` if `policy` allows),
/// with a host and without userinfo. Fragments are checked by the callers.
fn parse_url(value: &str, policy: UrlPolicy) -> Result<Url, IdError> {
    let url = Url::parse(value).map_err(|e| IdError::NotAUrl {
        value: value.to_owned(),
        reason: e.to_string(),
    })?;
    if url.host().is_none() {
        return Err(IdError::NoHost {
            value: value.to_owned(),
        });
    }
    let scheme_ok = match url.scheme() {
        "https" => true,
        "http" => policy == UrlPolicy::AllowLoopbackHttp && is_loopback(&url),
        _ => false,
    };
    if !scheme_ok {
        return Err(IdError::Scheme {
            value: value.to_owned(),
            scheme: url.scheme().to_owned(),
        });
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(IdError::Userinfo {
            value: value.to_owned(),
        });
    }
    Ok(url)
}

macro_rules! url_id {
    ($(#[$doc:meta])* $name:ident, fragment: $frag:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(Url);

        impl $name {
            /// Parses `value` under `policy`.
            ///
            /// # Errors
            /// An [`IdError`] naming the rule the value breaks.
            pub fn parse_with(value: &str, policy: UrlPolicy) -> Result<Self, IdError> {
                let url = parse_url(value, policy)?;
                check_fragment(value, &url, $frag)?;
                Ok(Self(url))
            }

            /// The URL.
            pub fn as_url(&self) -> &Url {
                &self.0
            }

            /// The URL as a string.
            pub fn as_str(&self) -> &str {
                self.0.as_str()
            }

            /// The origin (scheme, host, port) of the URL, for same-origin checks.
            pub fn origin(&self) -> url::Origin {
                self.0.origin()
            }

            /// Whether `self` and `other` have the same origin (scheme, host and port).
            pub fn same_origin<T: AsRef<Url>>(&self, other: &T) -> bool {
                self.0.origin() == other.as_ref().origin()
            }

            /// Whether this id uses plain `http` (allowed only on loopback in development).
            pub fn is_plain_http(&self) -> bool {
                self.0.scheme() == "http"
            }

            /// Checks the id against a stricter policy than the one it was parsed with.
            ///
            /// # Errors
            /// [`IdError::Scheme`] when the id uses `http` and `policy` is `HttpsOnly`.
            pub fn check_policy(&self, policy: UrlPolicy) -> Result<(), IdError> {
                parse_url(self.0.as_str(), policy).map(|_| ())
            }
        }

        impl AsRef<Url> for $name {
            fn as_ref(&self) -> &Url {
                &self.0
            }
        }

        impl FromStr for $name {
            type Err = IdError;
            /// Parses with [`UrlPolicy::AllowLoopbackHttp`]: `https`, or `http` on a loopback
            /// host. Nodes enforce their own policy with `check_policy` or validation.
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Self::parse_with(s, UrlPolicy::AllowLoopbackHttp)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.0.as_str())
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.0.as_str())
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = std::borrow::Cow::<'de, str>::deserialize(d)?;
                s.parse().map_err(serde::de::Error::custom)
            }
        }
    };
}

fn check_fragment(value: &str, url: &Url, wanted: bool) -> Result<(), IdError> {
    match (url.fragment(), wanted) {
        (Some(f), true) if !f.is_empty() => Ok(()),
        (_, true) => Err(IdError::NoFragment {
            value: value.to_owned(),
        }),
        (Some(_), false) => Err(IdError::Fragment {
            value: value.to_owned(),
        }),
        (None, false) => Ok(()),
    }
}

url_id!(
    /// The id of an object (posting, activity, profile, MAD request, convention…): an
    /// absolute `https` URL without userinfo or fragment.
    ObjectId,
    fragment: false
);
url_id!(
    /// The id of an actor (a node's `Organization`): same rules as [`ObjectId`].
    ActorId,
    fragment: false
);
url_id!(
    /// The id of a verification key: the actor's URL with a fragment, e.g.
    /// `https://ville.example/actor#key-2026-1`.
    KeyId,
    fragment: true
);

impl ObjectId {
    /// The UUIDv7 that ends the id, if its last path segment is one.
    pub fn uuid_v7(&self) -> Option<Uuid> {
        let last = self.0.path_segments()?.next_back()?;
        let uuid = Uuid::parse_str(last).ok()?;
        (uuid.get_version_num() == 7).then_some(uuid)
    }
}

impl From<ActorId> for ObjectId {
    fn from(actor: ActorId) -> Self {
        Self(actor.0)
    }
}

impl KeyId {
    /// The key's controller: the id without its fragment.
    pub fn controller(&self) -> ActorId {
        let mut url = self.0.clone();
        url.set_fragment(None);
        ActorId(url)
    }
}

/// Builds `{base}/{path}/{uuid}`: the id of an object a node mints.
///
/// `base` is the node's base URL (a trailing `/` is ignored), `path` one or more lower-case
/// ASCII segments (`"postings"`, `"mad/requests"`), `uuid` a UUIDv7 (see [`uuid_v7`]).
///
/// # Errors
/// [`IdError::NotUuidV7`] for another UUID version, [`IdError::MintPath`] for an empty or
/// odd path, and the URL errors of [`ObjectId::from_str`] for the base.
///
/// # Examples
/// ```
/// use passerelle_protocol::ids::{mint, uuid_v7};
/// let id = mint("https://emploi.grenoble.fr", "postings", uuid_v7(1_780_000_000_000, [7; 10]))?;
/// assert!(id.as_str().starts_with("https://emploi.grenoble.fr/postings/0"));
/// assert!(id.uuid_v7().is_some());
/// # Ok::<(), passerelle_protocol::ids::IdError>(())
/// ```
pub fn mint(base: &str, path: &str, uuid: Uuid) -> Result<ObjectId, IdError> {
    if uuid.get_version_num() != 7 {
        return Err(IdError::NotUuidV7 {
            value: uuid,
            version: uuid.get_version_num(),
        });
    }
    let path_ok = !path.is_empty()
        && path.split('/').all(|seg| {
            !seg.is_empty()
                && seg
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
        });
    if !path_ok {
        return Err(IdError::MintPath {
            value: path.to_owned(),
        });
    }
    let base = base.trim_end_matches('/');
    format!("{base}/{path}/{}", uuid.hyphenated()).parse()
}

/// A UUIDv7 from a Unix time in milliseconds and 10 random bytes (RFC 9562 §5.7). Pure: the
/// node supplies the clock and the randomness.
pub fn uuid_v7(unix_millis: u64, random: [u8; 10]) -> Uuid {
    uuid::Builder::from_unix_timestamp_millis(unix_millis, &random).into_uuid()
}

fn luhn_ok(digits: &[u8]) -> bool {
    let sum: u32 = digits
        .iter()
        .rev()
        .enumerate()
        .map(|(i, d)| {
            let d = u32::from(d - b'0');
            if i % 2 == 1 {
                let d2 = d * 2;
                if d2 > 9 { d2 - 9 } else { d2 }
            } else {
                d
            }
        })
        .sum();
    sum.is_multiple_of(10)
}

fn check_digits(what: &'static str, value: &str, len: usize) -> Result<(), IdError> {
    if value.len() != len || !value.bytes().all(|b| b.is_ascii_digit()) {
        return Err(IdError::DigitsLength {
            what,
            value: value.to_owned(),
            len,
        });
    }
    Ok(())
}

macro_rules! string_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(String);

        impl $name {
            /// The code as a string.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(&self.0)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = std::borrow::Cow::<'de, str>::deserialize(d)?;
                s.parse().map_err(serde::de::Error::custom)
            }
        }
    };
}

string_id!(
    /// A SIREN: the 9-digit INSEE number of a legal unit (a collectivité, an EPCI, a CCAS…),
    /// with its Luhn check digit.
    Siren
);
string_id!(
    /// A SIRET: 14 digits (SIREN + 5-digit establishment number), Luhn-checked, except La
    /// Poste's establishments (SIREN 356 000 000) whose digits sum to a multiple of 5.
    Siret
);
string_id!(
    /// A commune's COG code (INSEE *code officiel géographique*): 5 characters, digits, or
    /// `2A`/`2B` followed by 3 digits for Corsica; overseas codes start with `971`–`976`.
    CogCommune
);
string_id!(
    /// A département code: `01`–`95` except `20`, `2A`, `2B`, and `971`–`976`.
    CodeDepartement
);
string_id!(
    /// A région code (COG, regions since 2016): `01`–`04`, `06`, `11`, `24`, `27`, `28`,
    /// `32`, `44`, `52`, `53`, `75`, `76`, `84`, `93`, `94`.
    CodeRegion
);

impl FromStr for Siren {
    type Err = IdError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        check_digits("SIREN", s, 9)?;
        if !luhn_ok(s.as_bytes()) {
            return Err(IdError::Checksum {
                what: "SIREN",
                value: s.to_owned(),
            });
        }
        Ok(Self(s.to_owned()))
    }
}

/// La Poste's SIREN: its establishments' SIRETs use a different check (digit sum ≡ 0 mod 5).
const LA_POSTE_SIREN: &str = "356000000";

impl FromStr for Siret {
    type Err = IdError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        check_digits("SIRET", s, 14)?;
        let ok = luhn_ok(s.as_bytes())
            || (s.starts_with(LA_POSTE_SIREN)
                && s.bytes()
                    .map(|b| u32::from(b - b'0'))
                    .sum::<u32>()
                    .is_multiple_of(5));
        if !ok {
            return Err(IdError::Checksum {
                what: "SIRET",
                value: s.to_owned(),
            });
        }
        Ok(Self(s.to_owned()))
    }
}

impl Siret {
    /// The SIREN of the legal unit this establishment belongs to (its first 9 digits).
    pub fn siren(&self) -> Siren {
        Siren(self.0[..9].to_owned())
    }
}

impl FromStr for CodeDepartement {
    type Err = IdError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = |rule| IdError::Cog {
            what: "département code",
            value: s.to_owned(),
            rule,
        };
        let ok = match s.as_bytes() {
            [b'2', b'A' | b'B'] => true,
            [a, b] if a.is_ascii_digit() && b.is_ascii_digit() => {
                let n = u32::from(a - b'0') * 10 + u32::from(b - b'0');
                (1..=95).contains(&n) && n != 20
            }
            [b'9', b'7', c] => (b'1'..=b'6').contains(c),
            _ => false,
        };
        if ok {
            Ok(Self(s.to_owned()))
        } else {
            Err(err(
                "expected 01-95 (not 20), 2A, 2B or 971-976 (use 2A/2B for Corsica)",
            ))
        }
    }
}

impl FromStr for CogCommune {
    type Err = IdError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = |rule| IdError::Cog {
            what: "commune COG code",
            value: s.to_owned(),
            rule,
        };
        if s.len() != 5 || !s.is_ascii() {
            return Err(err("expected 5 characters, e.g. 38185 or 2A004"));
        }
        let (dep, rest) = if s.starts_with("97") {
            s.split_at(3)
        } else {
            s.split_at(2)
        };
        if !rest.bytes().all(|b| b.is_ascii_digit()) {
            return Err(err("expected digits after the département part"));
        }
        if dep.parse::<CodeDepartement>().is_err() || rest.bytes().all(|b| b == b'0') {
            return Err(err(
                "the code must start with a département code (01-95 except 20, 2A, 2B, 971-976) followed by a non-zero commune number",
            ));
        }
        Ok(Self(s.to_owned()))
    }
}

impl CogCommune {
    /// The département of the commune (first 2 characters, 3 for overseas `97x`).
    pub fn departement(&self) -> CodeDepartement {
        let n = if self.0.starts_with("97") { 3 } else { 2 };
        CodeDepartement(self.0[..n].to_owned())
    }
}

/// The current région codes (COG, since 1 January 2016).
pub const REGION_CODES: [&str; 18] = [
    "01", "02", "03", "04", "06", "11", "24", "27", "28", "32", "44", "52", "53", "75", "76", "84",
    "93", "94",
];

impl FromStr for CodeRegion {
    type Err = IdError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if REGION_CODES.contains(&s) {
            Ok(Self(s.to_owned()))
        } else {
            Err(IdError::Cog {
                what: "région code",
                value: s.to_owned(),
                rule: "not a current région code (01-04, 06, 11, 24, 27, 28, 32, 44, 52, 53, 75, 76, 84, 93, 94)",
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn object_ids() {
        let id: ObjectId = "https://emploi.grenoble.fr/postings/1".parse().unwrap();
        assert_eq!(id.to_string(), "https://emploi.grenoble.fr/postings/1");
        for bad in [
            "ftp://x.example/a",
            "http://ville.example/a",
            "https://user:pw@ville.example/a",
            "https://ville.example/a#frag",
            "/relative/path",
            "urn:uuid:0190",
        ] {
            assert!(bad.parse::<ObjectId>().is_err(), "{bad} accepted");
        }
        let local: ObjectId = "http://127.0.0.1:8080/actor".parse().unwrap();
        assert!(local.is_plain_http());
        assert!(local.check_policy(UrlPolicy::HttpsOnly).is_err());
        assert!(ObjectId::parse_with("http://[::1]/a", UrlPolicy::HttpsOnly).is_err());
        assert!(ObjectId::parse_with("http://localhost/a", UrlPolicy::AllowLoopbackHttp).is_ok());
        assert!(ObjectId::parse_with("http://10.0.0.1/a", UrlPolicy::AllowLoopbackHttp).is_err());
    }

    #[test]
    fn origins_and_keys() {
        let a: ObjectId = "https://ville.example/postings/1".parse().unwrap();
        let actor: ActorId = "https://ville.example/actor".parse().unwrap();
        let other: ActorId = "https://ville.example:8443/actor".parse().unwrap();
        assert!(a.same_origin(&actor));
        assert!(!a.same_origin(&other));
        let key: KeyId = "https://ville.example/actor#key-2026-1".parse().unwrap();
        assert_eq!(key.controller(), actor);
        assert!("https://ville.example/actor".parse::<KeyId>().is_err());
        assert!("https://ville.example/actor#".parse::<KeyId>().is_err());
    }

    #[test]
    fn minting() {
        let u = uuid_v7(1_780_000_000_000, [1; 10]);
        let id = mint("https://ville.example/", "mad/requests", u).unwrap();
        assert_eq!(
            id.as_str(),
            format!("https://ville.example/mad/requests/{u}")
        );
        assert_eq!(id.uuid_v7(), Some(u));
        assert!(mint("https://ville.example", "Postings", u).is_err());
        assert!(mint("https://ville.example", "", u).is_err());
        assert!(matches!(
            mint("https://ville.example", "p", Uuid::nil()),
            Err(IdError::NotUuidV7 { .. })
        ));
        // Sorted by time.
        let later = uuid_v7(1_780_000_000_001, [0; 10]);
        assert!(later > u);
    }

    #[test]
    fn siren_siret() {
        // Ville de Grenoble (SIREN 213 801 855), Département de l'Isère (223 800 012).
        for ok in ["213801855", "223800012", "732829320"] {
            ok.parse::<Siren>().unwrap();
        }
        assert!(matches!(
            "213801856".parse::<Siren>(),
            Err(IdError::Checksum { .. })
        ));
        assert!("21380185".parse::<Siren>().is_err());
        assert!("21380185a".parse::<Siren>().is_err());
        let siret: Siret = "21380185500015".parse().unwrap();
        assert_eq!(siret.siren().as_str(), "213801855");
        assert!("21380185500016".parse::<Siret>().is_err());
        // La Poste: Luhn fails, digit sum is a multiple of 5.
        assert!(!luhn_ok(b"35600000000010"));
        "35600000000010".parse::<Siret>().unwrap();
        assert!("35600000000011".parse::<Siret>().is_err());
    }

    #[test]
    fn cog_codes() {
        for ok in ["38185", "2A004", "2B033", "97411", "01001"] {
            ok.parse::<CogCommune>().unwrap();
        }
        for bad in [
            "20004", "2C004", "3818", "00001", "96001", "97701", "38000", "2A00X",
        ] {
            assert!(bad.parse::<CogCommune>().is_err(), "{bad} accepted");
        }
        assert_eq!(
            "2A004"
                .parse::<CogCommune>()
                .unwrap()
                .departement()
                .as_str(),
            "2A"
        );
        assert_eq!(
            "97411"
                .parse::<CogCommune>()
                .unwrap()
                .departement()
                .as_str(),
            "974"
        );
        for ok in ["01", "38", "95", "2A", "2B", "971", "976"] {
            ok.parse::<CodeDepartement>().unwrap();
        }
        for bad in ["00", "20", "96", "977", "2C", "1", "380"] {
            assert!(bad.parse::<CodeDepartement>().is_err(), "{bad} accepted");
        }
        "84".parse::<CodeRegion>().unwrap();
        assert!("82".parse::<CodeRegion>().is_err());
        assert!("05".parse::<CodeRegion>().is_err());
    }

    #[test]
    fn serde_validates() {
        let r: Result<Siren, _> = serde_json::from_str("\"213801856\"");
        assert!(r.unwrap_err().to_string().contains("Luhn"));
        let id: ActorId = serde_json::from_str("\"https://ville.example/actor\"").unwrap();
        assert_eq!(
            serde_json::to_string(&id).unwrap(),
            "\"https://ville.example/actor\""
        );
    }
}
