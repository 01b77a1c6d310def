//! RFC 9421 HTTP Message Signatures, `alg="ed25519"`.
//!
//! Every server-to-server request between Passerelle nodes is signed (DESIGN.md, *Transport
//! signatures*). This module builds signature bases, signs requests and verifies them,
//! without any HTTP crate: callers describe a message with [`RequestParts`] (or
//! [`ResponseParts`]) made of plain strings and the body bytes.
//!
//! # Signing
//! [`sign_passerelle_request`] applies Passerelle's profile: it adds a SHA-256
//! `Content-Digest` when there is a body, and covers `@method`, `@target-uri` and, with a
//! body, `content-digest` and `content-type`, with `created`, `expires`, `keyid` and
//! `alg="ed25519"`. [`sign_request`] signs any list of [`Component`]s.
//!
//! # Verifying, in two phases
//! 1. [`parse_signature`] reads `Signature-Input` and `Signature`, checks their structure
//!    (labels present in both, no duplicated label), builds the signature base and returns a
//!    [`SignatureCandidate`] exposing the `keyid`, so that the caller can find the key
//!    (cache, then fetch) asynchronously.
//! 2. [`SignatureCandidate::verify`] applies a [`VerifyPolicy`] (algorithm, `created` window,
//!    `expires`, required components), checks the Ed25519 signature and, when
//!    `content-digest` is covered, checks it against the body. The body is a mandatory part
//!    of [`RequestParts`], so the digest check cannot be forgotten, and the Passerelle policy
//!    requires `content-digest` to be covered whenever the body is not empty.
//!
//! # Supported components
//! Derived: `@method`, `@target-uri`, `@authority`, `@scheme`, `@request-target` (origin
//! form), `@path`, `@query`, `@query-param;name=…`, `@status` (responses). Fields: any
//! header field by its lower-cased name, with the `sf`, `key="…"` and `bs` parameters.
//! Not supported (refused with [`HttpSigError::UnsupportedComponent`]): the `req` and `tr`
//! parameters and any other derived component.

use base64::Engine as _;
use sfv::FieldType as _;

use crate::digest::{DigestAlgorithm, DigestError, verify_content_digest};
use crate::keys::{PublicKey, Signature, SigningKey};

/// The only algorithm Passerelle signs and verifies with.
pub const ALG_ED25519: &str = "ed25519";
/// Label used by [`sign_passerelle_request`].
pub const PASSERELLE_LABEL: &str = "sig1";
/// Lifetime given to signatures by [`sign_passerelle_request`] (`expires - created`).
pub const PASSERELLE_SIGNATURE_LIFETIME_SECS: i64 = 300;

/// An HTTP request, as the parts a signature can cover. Borrowed, so an axum handler or a
/// reqwest client can fill it without copying.
#[derive(Debug, Clone, Copy)]
pub struct RequestParts<'a> {
    /// The method, e.g. `POST` (case-sensitive, as sent).
    pub method: &'a str,
    /// The absolute target URI, e.g. `https://mairie.example/inbox?x=1`. A server rebuilds
    /// it from its configured public base URL and the request's path and query.
    pub target_uri: &'a str,
    /// The header fields in the order received; names in any case; a name may repeat.
    pub headers: &'a [(&'a str, &'a str)],
    /// The body (content) as sent, empty when there is none. Covered through
    /// `Content-Digest`.
    pub body: &'a [u8],
}

/// An HTTP response, as the parts a signature can cover (`@status` and header fields).
#[derive(Debug, Clone, Copy)]
pub struct ResponseParts<'a> {
    /// The status code, e.g. 200.
    pub status: u16,
    /// The header fields in the order received; names in any case; a name may repeat.
    pub headers: &'a [(&'a str, &'a str)],
    /// The body (content), empty when there is none.
    pub body: &'a [u8],
}

/// A covered component (RFC 9421 §2): a derived component or a header field.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Component {
    /// `@method`.
    Method,
    /// `@target-uri`.
    TargetUri,
    /// `@authority` (lower-cased host, default port removed).
    Authority,
    /// `@scheme`.
    Scheme,
    /// `@request-target` (origin form: path and query).
    RequestTarget,
    /// `@path`.
    Path,
    /// `@query` (`?` alone when there is no query).
    Query,
    /// `@query-param;name="…"`; the name as it appears in the identifier (percent-encoded).
    QueryParam(String),
    /// `@status` (responses only).
    Status,
    /// A header field by lower-case name, value as combined field lines.
    Field(String),
    /// A header field re-serialized as a structured field (`;sf`).
    FieldSf(String),
    /// One member of a Dictionary header field (`;key="…"`).
    FieldKey {
        /// Lower-case field name.
        name: String,
        /// Dictionary member key.
        key: String,
    },
    /// A header field with each line wrapped as a Byte Sequence (`;bs`).
    FieldBs(String),
}

impl Component {
    /// A header field component; the name is lower-cased.
    pub fn field(name: &str) -> Self {
        Self::Field(name.to_ascii_lowercase())
    }

    /// The component name (`@method`, `content-type`…).
    pub fn name(&self) -> &str {
        match self {
            Self::Method => "@method",
            Self::TargetUri => "@target-uri",
            Self::Authority => "@authority",
            Self::Scheme => "@scheme",
            Self::RequestTarget => "@request-target",
            Self::Path => "@path",
            Self::Query => "@query",
            Self::QueryParam(_) => "@query-param",
            Self::Status => "@status",
            Self::Field(n) | Self::FieldSf(n) | Self::FieldBs(n) => n,
            Self::FieldKey { name, .. } => name,
        }
    }

    /// The component identifier as serialized in `Signature-Input` and in the signature
    /// base, e.g. `"@query-param";name="Pet"`.
    ///
    /// # Errors
    /// [`HttpSigError::InvalidParameter`] when a name or key cannot be an RFC 8941 string.
    pub fn identifier(&self) -> Result<String, HttpSigError> {
        Ok(self.to_item()?.serialize())
    }

    fn to_item(&self) -> Result<sfv::Item, HttpSigError> {
        let mut params = sfv::Parameters::new();
        match self {
            Self::QueryParam(n) => {
                params.insert(key("name")?, string_bare(n, "@query-param name")?);
            }
            Self::FieldSf(_) => {
                params.insert(key("sf")?, sfv::BareItem::Boolean(true));
            }
            Self::FieldBs(_) => {
                params.insert(key("bs")?, sfv::BareItem::Boolean(true));
            }
            Self::FieldKey { key: k, .. } => {
                params.insert(key("key")?, string_bare(k, "dictionary key")?);
            }
            _ => {}
        }
        Ok(sfv::Item::with_params(
            string_bare(self.name(), "component name")?,
            params,
        ))
    }

    fn from_item(item: &sfv::Item) -> Result<Self, HttpSigError> {
        let shown = item.serialize();
        let name = item
            .bare_item
            .as_string()
            .ok_or_else(|| HttpSigError::MalformedSignatureInput {
                reason: format!("component identifier {shown} is not a string"),
            })?
            .as_str();
        if name.bytes().any(|b| b.is_ascii_uppercase()) {
            return Err(HttpSigError::MalformedSignatureInput {
                reason: format!("component name {name:?} must be lower-case"),
            });
        }
        let unsupported = || HttpSigError::UnsupportedComponent {
            component: shown.clone(),
        };
        let mut sf = false;
        let mut bs = false;
        let mut dict_key = None;
        let mut qp_name = None;
        for (k, v) in &item.params {
            match (k.as_str(), v) {
                ("sf", sfv::BareItem::Boolean(true)) => sf = true,
                ("bs", sfv::BareItem::Boolean(true)) => bs = true,
                ("key", sfv::BareItem::String(s)) => dict_key = Some(s.as_str().to_owned()),
                ("name", sfv::BareItem::String(s)) => qp_name = Some(s.as_str().to_owned()),
                _ => return Err(unsupported()),
            }
        }
        if let Some(derived) = name.strip_prefix('@') {
            let c = match (derived, qp_name, sf || bs || dict_key.is_some()) {
                ("query-param", Some(n), false) => Self::QueryParam(n),
                (_, Some(_), _) | (_, _, true) => return Err(unsupported()),
                ("method", None, false) => Self::Method,
                ("target-uri", None, false) => Self::TargetUri,
                ("authority", None, false) => Self::Authority,
                ("scheme", None, false) => Self::Scheme,
                ("request-target", None, false) => Self::RequestTarget,
                ("path", None, false) => Self::Path,
                ("query", None, false) => Self::Query,
                ("status", None, false) => Self::Status,
                _ => return Err(unsupported()),
            };
            return Ok(c);
        }
        let name = name.to_owned();
        match (sf, bs, dict_key, qp_name) {
            (false, false, None, None) => Ok(Self::Field(name)),
            (true, false, None, None) => Ok(Self::FieldSf(name)),
            (false, true, None, None) => Ok(Self::FieldBs(name)),
            (false, false, Some(key), None) => Ok(Self::FieldKey { name, key }),
            _ => Err(unsupported()),
        }
    }
}

/// What to sign: label, covered components and signature parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignatureParams {
    /// The label (dictionary key) in `Signature-Input` and `Signature`, e.g. `sig1`.
    pub label: String,
    /// Covered components, in order.
    pub components: Vec<Component>,
    /// The `keyid` parameter: for Passerelle, the key's URL (`https://…/actor#key-1`).
    pub key_id: String,
    /// The `created` parameter (Unix seconds).
    pub created: i64,
    /// The `expires` parameter (Unix seconds), if any.
    pub expires: Option<i64>,
    /// Whether to include `alg="ed25519"` (Passerelle does; RFC 9421 B.2.6 does not).
    pub include_alg: bool,
    /// The `nonce` parameter, if any.
    pub nonce: Option<String>,
    /// The `tag` parameter, if any.
    pub tag: Option<String>,
}

impl SignatureParams {
    /// The `@signature-params` value: the inner list of component identifiers followed by
    /// the parameters in the order `created`, `expires`, `keyid`, `alg`, `nonce`, `tag`.
    ///
    /// # Errors
    /// [`HttpSigError::InvalidParameter`] when a value cannot be serialized.
    pub fn serialize(&self) -> Result<String, HttpSigError> {
        Ok(self.to_inner_list()?.1)
    }

    fn to_inner_list(&self) -> Result<(sfv::InnerList, String), HttpSigError> {
        let items = self
            .components
            .iter()
            .map(Component::to_item)
            .collect::<Result<Vec<_>, _>>()?;
        let mut params = sfv::Parameters::new();
        params.insert(key("created")?, int_bare(self.created, "created")?);
        if let Some(expires) = self.expires {
            params.insert(key("expires")?, int_bare(expires, "expires")?);
        }
        params.insert(key("keyid")?, string_bare(&self.key_id, "keyid")?);
        if self.include_alg {
            params.insert(key("alg")?, string_bare(ALG_ED25519, "alg")?);
        }
        if let Some(nonce) = &self.nonce {
            params.insert(key("nonce")?, string_bare(nonce, "nonce")?);
        }
        if let Some(tag) = &self.tag {
            params.insert(key("tag")?, string_bare(tag, "tag")?);
        }
        let list = sfv::InnerList::with_params(items, params);
        let text = serialize_inner_list(&list)?;
        Ok((list, text))
    }
}

/// The two header fields to add to a signed request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignatureHeaders {
    /// Value of the `Signature-Input` field, e.g. `sig1=("@method" …);created=…`.
    pub signature_input: String,
    /// Value of the `Signature` field, e.g. `sig1=:…:`.
    pub signature: String,
}

/// Header fields to add to a request signed by [`sign_passerelle_request`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PasserelleSignedHeaders {
    /// `Content-Digest` value, present when the body is not empty.
    pub content_digest: Option<String>,
    /// `Signature-Input` and `Signature` values.
    pub signature: SignatureHeaders,
}

/// Why a message could not be signed, or why a signature was refused. Each refusal has its
/// own variant so that the node can map it to 400 (malformed) or 401 (not authenticated).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum HttpSigError {
    /// The target URI is not an absolute `scheme://authority/path?query` URI.
    #[error("invalid target URI {uri:?}: {reason}; pass the absolute URI, e.g. https://host/path")]
    InvalidTargetUri {
        /// The URI given.
        uri: String,
        /// What is wrong.
        reason: &'static str,
    },
    /// A signature parameter or component name cannot be serialized.
    #[error("invalid signature parameter {name}: {reason}")]
    InvalidParameter {
        /// Which parameter.
        name: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// A covered component is absent from the message (header field or query parameter).
    #[error(
        "covered component {component} is absent from the message; send it or stop covering it"
    )]
    MissingComponent {
        /// The component identifier.
        component: String,
    },
    /// A covered component is not supported by this implementation.
    #[error(
        "covered component {component} is not supported: use @method, @target-uri, @authority, @scheme, @request-target, @path, @query, @query-param;name=, @status (responses) or a header field, optionally with sf, key= or bs (req and tr are not supported)"
    )]
    UnsupportedComponent {
        /// The component identifier.
        component: String,
    },
    /// A component is covered twice.
    #[error("component {component} is covered twice; list each component once")]
    DuplicateComponent {
        /// The component identifier.
        component: String,
    },
    /// The request has no `Signature-Input` field.
    #[error("missing Signature-Input header: the request is not signed (RFC 9421)")]
    MissingSignatureInput,
    /// The request has no `Signature` field.
    #[error("missing Signature header: Signature-Input is present but Signature is not")]
    MissingSignature,
    /// `Signature-Input` is not a valid RFC 8941 Dictionary of inner lists.
    #[error("malformed Signature-Input: {reason}")]
    MalformedSignatureInput {
        /// What is wrong.
        reason: String,
    },
    /// `Signature` is not a valid RFC 8941 Dictionary of Byte Sequences.
    #[error("malformed Signature: {reason}")]
    MalformedSignature {
        /// What is wrong.
        reason: String,
    },
    /// A label occurs twice in the same header (across all its field lines).
    #[error("label {label:?} occurs twice in {header}; each signature needs a unique label")]
    DuplicateLabel {
        /// `Signature-Input` or `Signature`.
        header: &'static str,
        /// The repeated label.
        label: String,
    },
    /// A label is present in one of `Signature-Input`/`Signature` and not in the other.
    #[error("label {label:?} is present in {present_in} but not in {missing_from}")]
    LabelMismatch {
        /// The label.
        label: String,
        /// The header that has it.
        present_in: &'static str,
        /// The header that lacks it.
        missing_from: &'static str,
    },
    /// The requested label is not in the message.
    #[error("no signature labelled {label:?} in the message (labels present: {present:?})")]
    LabelNotFound {
        /// The label asked for.
        label: String,
        /// The labels present.
        present: Vec<String>,
    },
    /// Several signatures are present and no label was given to choose one.
    #[error("several signatures ({labels:?}) and no label given; pass the label to verify")]
    AmbiguousLabel {
        /// The labels present.
        labels: Vec<String>,
    },
    /// The signature has no `keyid` parameter, so no key can be found for it.
    #[error("signature {label:?} has no keyid parameter; add keyid=\"<key URL>\"")]
    MissingKeyId {
        /// The label.
        label: String,
    },
    /// The `alg` parameter names an algorithm other than `ed25519`.
    #[error("signature algorithm {alg:?} is not accepted; Passerelle accepts only alg=\"ed25519\"")]
    UnsupportedAlgorithm {
        /// The `alg` value received.
        alg: String,
    },
    /// The signature has no `created` parameter.
    #[error("signature has no created parameter; add created=<unix seconds>")]
    MissingCreated,
    /// The signature has no `expires` parameter and the policy requires one.
    #[error("signature has no expires parameter; add expires=<unix seconds>")]
    MissingExpires,
    /// `created` is older than the policy's window.
    #[error(
        "signature created at {created} is {age} s old (now {now}); the limit is {max_age} s: re-sign the request (check the sender's clock)"
    )]
    CreatedTooOld {
        /// `created` received.
        created: i64,
        /// Verifier's clock.
        now: i64,
        /// Age in seconds.
        age: i64,
        /// Policy limit.
        max_age: i64,
    },
    /// `created` is further in the future than the policy's allowed clock skew.
    #[error(
        "signature created at {created} is in the future (now {now}, allowed skew {max_skew} s): check the sender's clock"
    )]
    CreatedInFuture {
        /// `created` received.
        created: i64,
        /// Verifier's clock.
        now: i64,
        /// Policy limit.
        max_skew: i64,
    },
    /// `expires` is in the past.
    #[error("signature expired at {expires} (now {now}); re-sign the request")]
    Expired {
        /// `expires` received.
        expires: i64,
        /// Verifier's clock.
        now: i64,
    },
    /// A component the policy requires is not covered by the signature.
    #[error(
        "signature does not cover required component {component}; Passerelle requires @method, @target-uri, and with a body content-digest and content-type"
    )]
    ComponentNotCovered {
        /// The component identifier.
        component: String,
    },
    /// The signature value is not 64 bytes long.
    #[error("signature value is {len} bytes long; an Ed25519 signature has 64")]
    BadSignatureLength {
        /// The length received.
        len: usize,
    },
    /// The Ed25519 signature does not verify over the signature base with the given key.
    #[error(
        "HTTP signature does not verify with key {key_id:?}: the message was altered or signed with another key"
    )]
    BadSignature {
        /// The `keyid` of the signature.
        key_id: String,
    },
    /// The covered `Content-Digest` does not match the body (or is malformed).
    #[error("Content-Digest check failed: {0}")]
    ContentDigest(#[source] DigestError),
}

/// Rules applied by [`SignatureCandidate::verify`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyPolicy {
    /// The verifier's clock (Unix seconds); this crate has no clock.
    pub now: i64,
    /// Maximum age of `created`, in seconds.
    pub max_age_secs: i64,
    /// Maximum amount by which `created` may be in the future, in seconds.
    pub max_future_skew_secs: i64,
    /// Whether `expires` must be present.
    pub require_expires: bool,
    /// Components every signature must cover.
    pub required_components: Vec<Component>,
    /// Components a signature must also cover when the body is not empty.
    pub required_with_body: Vec<Component>,
}

impl VerifyPolicy {
    /// Passerelle's policy: `created` at most 300 s old and 60 s in the future, `expires`
    /// required, `@method` and `@target-uri` always covered, `content-digest` and
    /// `content-type` covered when there is a body.
    pub fn passerelle(now: i64) -> Self {
        Self {
            now,
            max_age_secs: 300,
            max_future_skew_secs: 60,
            require_expires: true,
            required_components: vec![Component::Method, Component::TargetUri],
            required_with_body: vec![
                Component::field("content-digest"),
                Component::field("content-type"),
            ],
        }
    }
}

/// A parsed signature, not yet verified: read [`key_id`](Self::key_id), find the key, then
/// call [`verify`](Self::verify).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignatureCandidate {
    label: String,
    components: Vec<Component>,
    key_id: String,
    created: Option<i64>,
    expires: Option<i64>,
    alg: Option<String>,
    nonce: Option<String>,
    tag: Option<String>,
    base: String,
    signature: Vec<u8>,
    body_is_empty: bool,
    digest_check: Option<Result<DigestAlgorithm, DigestError>>,
}

/// A signature that verified under a policy.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct VerifiedSignature {
    /// The label.
    pub label: String,
    /// The `keyid` parameter.
    pub key_id: String,
    /// `created`.
    pub created: i64,
    /// `expires`, if present.
    pub expires: Option<i64>,
    /// Covered components.
    pub components: Vec<Component>,
    /// The digest algorithm checked against the body, when `content-digest` was covered.
    pub content_digest: Option<DigestAlgorithm>,
}

impl SignatureCandidate {
    /// The label of this signature.
    pub fn label(&self) -> &str {
        &self.label
    }
    /// The `keyid` parameter: which key to fetch.
    pub fn key_id(&self) -> &str {
        &self.key_id
    }
    /// The `created` parameter.
    pub fn created(&self) -> Option<i64> {
        self.created
    }
    /// The `expires` parameter.
    pub fn expires(&self) -> Option<i64> {
        self.expires
    }
    /// The `alg` parameter.
    pub fn alg(&self) -> Option<&str> {
        self.alg.as_deref()
    }
    /// The `nonce` parameter.
    pub fn nonce(&self) -> Option<&str> {
        self.nonce.as_deref()
    }
    /// The `tag` parameter.
    pub fn tag(&self) -> Option<&str> {
        self.tag.as_deref()
    }
    /// The covered components, in order.
    pub fn components(&self) -> &[Component] {
        &self.components
    }
    /// The signature base (the exact bytes that were signed).
    pub fn base(&self) -> &str {
        &self.base
    }
    /// The raw signature value.
    pub fn signature_bytes(&self) -> &[u8] {
        &self.signature
    }

    /// Checks the policy, the Ed25519 signature with `key`, and the `Content-Digest` when it
    /// is covered. Cheap policy checks come first; the digest is checked last, so that a
    /// valid signature over a tampered body is reported as [`HttpSigError::ContentDigest`].
    ///
    /// # Errors
    /// One [`HttpSigError`] variant per refusal.
    pub fn verify(
        &self,
        key: &PublicKey,
        policy: &VerifyPolicy,
    ) -> Result<VerifiedSignature, HttpSigError> {
        if let Some(alg) = &self.alg
            && alg != ALG_ED25519
        {
            return Err(HttpSigError::UnsupportedAlgorithm { alg: alg.clone() });
        }
        let created = self.created.ok_or(HttpSigError::MissingCreated)?;
        let age = policy.now.saturating_sub(created);
        if age > policy.max_age_secs {
            return Err(HttpSigError::CreatedTooOld {
                created,
                now: policy.now,
                age,
                max_age: policy.max_age_secs,
            });
        }
        if created.saturating_sub(policy.now) > policy.max_future_skew_secs {
            return Err(HttpSigError::CreatedInFuture {
                created,
                now: policy.now,
                max_skew: policy.max_future_skew_secs,
            });
        }
        match self.expires {
            Some(expires) if expires <= policy.now => {
                return Err(HttpSigError::Expired {
                    expires,
                    now: policy.now,
                });
            }
            None if policy.require_expires => return Err(HttpSigError::MissingExpires),
            _ => {}
        }
        let with_body: &[Component] = if self.body_is_empty {
            &[]
        } else {
            &policy.required_with_body
        };
        for required in policy.required_components.iter().chain(with_body) {
            if !self.components.contains(required) {
                return Err(HttpSigError::ComponentNotCovered {
                    component: required.identifier()?,
                });
            }
        }
        let signature = Signature::from_slice(&self.signature).map_err(|_| {
            HttpSigError::BadSignatureLength {
                len: self.signature.len(),
            }
        })?;
        key.verify(self.base.as_bytes(), &signature)
            .map_err(|_| HttpSigError::BadSignature {
                key_id: self.key_id.clone(),
            })?;
        let content_digest = match &self.digest_check {
            None => None,
            Some(Ok(alg)) => Some(*alg),
            Some(Err(e)) => return Err(HttpSigError::ContentDigest(e.clone())),
        };
        Ok(VerifiedSignature {
            label: self.label.clone(),
            key_id: self.key_id.clone(),
            created,
            expires: self.expires,
            components: self.components.clone(),
            content_digest,
        })
    }
}

/// Signs a request: builds the signature base of `params.components` and returns the
/// `Signature-Input` and `Signature` field values to add.
///
/// # Errors
/// [`HttpSigError::MissingComponent`] when a covered header is absent,
/// [`HttpSigError::InvalidTargetUri`], [`HttpSigError::InvalidParameter`],
/// [`HttpSigError::DuplicateComponent`].
pub fn sign_request(
    parts: &RequestParts<'_>,
    key: &SigningKey,
    params: &SignatureParams,
) -> Result<SignatureHeaders, HttpSigError> {
    let (list, params_text) = params.to_inner_list()?;
    let base = signature_base(&Message::Request(parts), &params.components, &params_text)?;
    let signature = key.sign(base.as_bytes());
    let label = key_owned(&params.label, "label")?;
    let mut input = sfv::Dictionary::new();
    input.insert(label.clone(), sfv::ListEntry::InnerList(list));
    let mut sig = sfv::Dictionary::new();
    sig.insert(
        label,
        sfv::ListEntry::Item(sfv::Item::new(sfv::BareItem::ByteSequence(
            signature.to_bytes().to_vec(),
        ))),
    );
    let serialize = |d: sfv::Dictionary| {
        d.serialize().ok_or_else(|| HttpSigError::InvalidParameter {
            name: "label",
            reason: "empty dictionary".to_owned(),
        })
    };
    Ok(SignatureHeaders {
        signature_input: serialize(input)?,
        signature: serialize(sig)?,
    })
}

/// Signs a request with Passerelle's profile. With a non-empty body it computes the SHA-256
/// `Content-Digest` (returned, to be added to the request) and covers `@method`,
/// `@target-uri`, `content-digest`, `content-type`; without a body it covers `@method` and
/// `@target-uri`. Parameters: `created`, `expires = created + 300`, `keyid`,
/// `alg="ed25519"`, label `sig1`.
///
/// A `Content-Digest` already in `headers` is ignored (the returned one replaces it); with a
/// body, `headers` must contain `Content-Type`.
///
/// # Errors
/// As [`sign_request`]; [`HttpSigError::MissingComponent`] when a body is sent without
/// `Content-Type`.
///
/// # Examples
/// ```
/// use passerelle_protocol::httpsig::{
///     RequestParts, VerifyPolicy, parse_signature, sign_passerelle_request,
/// };
/// use passerelle_protocol::keys::SigningKey;
///
/// let key = SigningKey::from_seed(&[1; 32]);
/// let key_id = "https://mairie-a.example/actor#key-1";
/// let body = br#"{"type":"Follow"}"#;
/// let content_type = ("Content-Type", "application/activity+json");
/// let signed = sign_passerelle_request(
///     "POST", "https://cdg-b.example/inbox", &[content_type], body, &key, key_id, 1_790_000_000,
/// )?;
/// let digest = signed.content_digest.as_deref().unwrap_or_default();
///
/// // The receiver: headers as received, then the key found from the keyid.
/// let headers = [
///     content_type,
///     ("Content-Digest", digest),
///     ("Signature-Input", signed.signature.signature_input.as_str()),
///     ("Signature", signed.signature.signature.as_str()),
/// ];
/// let parts = RequestParts {
///     method: "POST",
///     target_uri: "https://cdg-b.example/inbox",
///     headers: &headers,
///     body,
/// };
/// let candidate = parse_signature(&parts, None)?;
/// assert_eq!(candidate.key_id(), key_id);
/// let verified = candidate.verify(&key.public_key(), &VerifyPolicy::passerelle(1_790_000_005))?;
/// assert_eq!(verified.created, 1_790_000_000);
/// # Ok::<(), passerelle_protocol::httpsig::HttpSigError>(())
/// ```
pub fn sign_passerelle_request(
    method: &str,
    target_uri: &str,
    headers: &[(&str, &str)],
    body: &[u8],
    key: &SigningKey,
    key_id: &str,
    created: i64,
) -> Result<PasserelleSignedHeaders, HttpSigError> {
    let mut components = vec![Component::Method, Component::TargetUri];
    let content_digest = (!body.is_empty()).then(|| crate::digest::content_digest(body));
    let mut all_headers: Vec<(&str, &str)> = headers
        .iter()
        .filter(|(n, _)| !n.eq_ignore_ascii_case("content-digest"))
        .copied()
        .collect();
    if let Some(digest) = &content_digest {
        all_headers.push(("content-digest", digest));
        components.push(Component::field("content-digest"));
        components.push(Component::field("content-type"));
    }
    let params = SignatureParams {
        label: PASSERELLE_LABEL.to_owned(),
        components,
        key_id: key_id.to_owned(),
        created,
        expires: Some(created.saturating_add(PASSERELLE_SIGNATURE_LIFETIME_SECS)),
        include_alg: true,
        nonce: None,
        tag: None,
    };
    let parts = RequestParts {
        method,
        target_uri,
        headers: &all_headers,
        body,
    };
    let signature = sign_request(&parts, key, &params)?;
    Ok(PasserelleSignedHeaders {
        content_digest,
        signature,
    })
}

/// Parses the signature labelled `label` (or the only one, when `None`) of a request and
/// builds its signature base.
///
/// # Errors
/// Structural refusals: [`HttpSigError::MissingSignatureInput`],
/// [`HttpSigError::MissingSignature`], [`HttpSigError::MalformedSignatureInput`],
/// [`HttpSigError::MalformedSignature`], [`HttpSigError::DuplicateLabel`],
/// [`HttpSigError::LabelMismatch`], [`HttpSigError::LabelNotFound`],
/// [`HttpSigError::AmbiguousLabel`], [`HttpSigError::MissingKeyId`], and the errors of the
/// signature base ([`HttpSigError::MissingComponent`], [`HttpSigError::UnsupportedComponent`]…).
pub fn parse_signature(
    parts: &RequestParts<'_>,
    label: Option<&str>,
) -> Result<SignatureCandidate, HttpSigError> {
    parse_message_signature(&Message::Request(parts), label)
}

/// As [`parse_signature`], for a response (covering `@status` and header fields).
///
/// # Errors
/// As [`parse_signature`].
pub fn parse_response_signature(
    parts: &ResponseParts<'_>,
    label: Option<&str>,
) -> Result<SignatureCandidate, HttpSigError> {
    parse_message_signature(&Message::Response(parts), label)
}

enum Message<'m, 'a> {
    Request(&'m RequestParts<'a>),
    Response(&'m ResponseParts<'a>),
}

impl Message<'_, '_> {
    fn headers(&self) -> &[(&str, &str)] {
        match self {
            Self::Request(r) => r.headers,
            Self::Response(r) => r.headers,
        }
    }
    fn body(&self) -> &[u8] {
        match self {
            Self::Request(r) => r.body,
            Self::Response(r) => r.body,
        }
    }
}

const SIGNATURE_INPUT: &str = "Signature-Input";
const SIGNATURE: &str = "Signature";

fn parse_message_signature(
    message: &Message<'_, '_>,
    label: Option<&str>,
) -> Result<SignatureCandidate, HttpSigError> {
    let headers = message.headers();
    let inputs = parse_labelled_dict(headers, SIGNATURE_INPUT)?
        .ok_or(HttpSigError::MissingSignatureInput)?;
    let signatures =
        parse_labelled_dict(headers, SIGNATURE)?.ok_or(HttpSigError::MissingSignature)?;
    for (present, other, present_in, missing_from) in [
        (&inputs, &signatures, SIGNATURE_INPUT, SIGNATURE),
        (&signatures, &inputs, SIGNATURE, SIGNATURE_INPUT),
    ] {
        if let Some(k) = present.keys().find(|k| !other.contains_key(k.as_str())) {
            return Err(HttpSigError::LabelMismatch {
                label: k.as_str().to_owned(),
                present_in,
                missing_from,
            });
        }
    }
    let labels = || {
        inputs
            .keys()
            .map(|k| k.as_str().to_owned())
            .collect::<Vec<_>>()
    };
    let label = match label {
        Some(l) => l.to_owned(),
        None if inputs.len() == 1 => labels().into_iter().next().unwrap_or_default(),
        None => return Err(HttpSigError::AmbiguousLabel { labels: labels() }),
    };
    let (Some(input), Some(sig)) = (inputs.get(label.as_str()), signatures.get(label.as_str()))
    else {
        return Err(HttpSigError::LabelNotFound {
            label,
            present: labels(),
        });
    };
    let malformed_input = |reason: String| HttpSigError::MalformedSignatureInput { reason };
    let sfv::ListEntry::InnerList(list) = input else {
        return Err(malformed_input(format!(
            "the value of {label:?} must be an inner list of components, e.g. (\"@method\")"
        )));
    };
    let signature = match sig {
        sfv::ListEntry::Item(item) => item.bare_item.as_byte_sequence(),
        sfv::ListEntry::InnerList(_) => None,
    }
    .ok_or_else(|| HttpSigError::MalformedSignature {
        reason: format!("the value of {label:?} must be a byte sequence :<base64>:"),
    })?
    .to_vec();

    let components = list
        .items
        .iter()
        .map(Component::from_item)
        .collect::<Result<Vec<_>, _>>()?;
    let mut key_id = None;
    let mut created = None;
    let mut expires = None;
    let mut alg = None;
    let mut nonce = None;
    let mut tag = None;
    for (k, v) in &list.params {
        let name = k.as_str();
        let wrong_type = |expected: &str| {
            malformed_input(format!(
                "parameter {name} of {label:?} must be {expected}, got {}",
                sfv::Item::new(v.clone()).serialize()
            ))
        };
        match name {
            "created" | "expires" => {
                let n = v
                    .as_integer()
                    .map(i64::from)
                    .ok_or_else(|| wrong_type("an integer"))?;
                if name == "created" {
                    created = Some(n);
                } else {
                    expires = Some(n);
                }
            }
            "keyid" | "alg" | "nonce" | "tag" => {
                let s = v
                    .as_string()
                    .ok_or_else(|| wrong_type("a string"))?
                    .as_str()
                    .to_owned();
                match name {
                    "keyid" => key_id = Some(s),
                    "alg" => alg = Some(s),
                    "nonce" => nonce = Some(s),
                    _ => tag = Some(s),
                }
            }
            // RFC 9421 §2.3: unknown parameters are covered by the base but otherwise ignored.
            _ => {}
        }
    }
    let key_id = key_id.ok_or_else(|| HttpSigError::MissingKeyId {
        label: label.clone(),
    })?;
    let params_text = serialize_inner_list(list)?;
    let base = signature_base(message, &components, &params_text)?;
    let body = message.body();
    let digest_check = components
        .contains(&Component::field("content-digest"))
        .then(|| {
            let value = combined_field(headers, "content-digest").unwrap_or_default();
            verify_content_digest(&value, body)
        });
    Ok(SignatureCandidate {
        label,
        components,
        key_id,
        created,
        expires,
        alg,
        nonce,
        tag,
        base,
        signature,
        body_is_empty: body.is_empty(),
        digest_check,
    })
}

/// Parses all field lines named `name` as one Dictionary, refusing repeated keys (which
/// RFC 8941 would silently collapse). `None` when the field is absent.
fn parse_labelled_dict(
    headers: &[(&str, &str)],
    name: &'static str,
) -> Result<Option<sfv::Dictionary>, HttpSigError> {
    let Some(value) = combined_field(headers, name) else {
        return Ok(None);
    };
    let visitor = DuplicateAwareDict {
        dict: sfv::Dictionary::new(),
        duplicate: None,
    };
    let (dict, duplicate) = sfv::Parser::new(&value)
        .parse_dictionary_with_visitor(visitor)
        .map_err(|e| {
            let reason = format!("{e} in {value:?}");
            if name == SIGNATURE {
                HttpSigError::MalformedSignature { reason }
            } else {
                HttpSigError::MalformedSignatureInput { reason }
            }
        })?;
    if let Some(label) = duplicate {
        return Err(HttpSigError::DuplicateLabel {
            header: name,
            label,
        });
    }
    Ok(Some(dict))
}

struct DuplicateAwareDict {
    dict: sfv::Dictionary,
    duplicate: Option<String>,
}

impl<'de> sfv::visitor::DictionaryVisitor<'de> for DuplicateAwareDict {
    type Out = (sfv::Dictionary, Option<String>);
    type Error = std::convert::Infallible;

    fn entry(
        &mut self,
        key: &'de sfv::KeyRef,
    ) -> Result<impl sfv::visitor::EntryVisitor<'de>, Self::Error> {
        if self.duplicate.is_none() && self.dict.contains_key(key.as_str()) {
            self.duplicate = Some(key.as_str().to_owned());
        }
        sfv::visitor::DictionaryVisitor::entry(&mut self.dict, key)
    }

    fn finish(self) -> Result<Self::Out, Self::Error> {
        Ok((self.dict, self.duplicate))
    }
}

/// Builds the signature base (RFC 9421 §2.5): one line per covered component, then the
/// `@signature-params` line; lines joined by LF, no trailing LF.
fn signature_base(
    message: &Message<'_, '_>,
    components: &[Component],
    params_text: &str,
) -> Result<String, HttpSigError> {
    let mut base = String::with_capacity(256);
    let mut seen: Vec<&Component> = Vec::with_capacity(components.len());
    let uri = match message {
        Message::Request(r) => Some(TargetUri::parse(r.target_uri)?),
        Message::Response(_) => None,
    };
    for component in components {
        if seen.contains(&component) {
            return Err(HttpSigError::DuplicateComponent {
                component: component.identifier()?,
            });
        }
        seen.push(component);
        let id = component.identifier()?;
        let missing = || HttpSigError::MissingComponent {
            component: id.clone(),
        };
        let unsupported = || HttpSigError::UnsupportedComponent {
            component: id.clone(),
        };
        let headers = message.headers();
        let values: Vec<String> = match (component, message, &uri) {
            (Component::Method, Message::Request(r), _) => vec![r.method.to_owned()],
            (Component::TargetUri, Message::Request(r), _) => vec![r.target_uri.to_owned()],
            (Component::Authority, _, Some(u)) => vec![u.authority()],
            (Component::Scheme, _, Some(u)) => vec![u.scheme.to_ascii_lowercase()],
            (Component::RequestTarget, _, Some(u)) => vec![u.request_target()],
            (Component::Path, _, Some(u)) => vec![u.path().to_owned()],
            (Component::Query, _, Some(u)) => vec![format!("?{}", u.query.unwrap_or(""))],
            (Component::QueryParam(name), _, Some(u)) => {
                let v = u.query_param(name);
                if v.is_empty() {
                    return Err(missing());
                }
                v
            }
            (Component::Status, Message::Response(r), _) => vec![r.status.to_string()],
            (Component::Field(name), _, _) => {
                vec![combined_field(headers, name).ok_or_else(missing)?]
            }
            (Component::FieldSf(name), _, _) => {
                let raw = combined_field(headers, name).ok_or_else(missing)?;
                vec![reserialize_sf(&raw).ok_or_else(unsupported)?]
            }
            (Component::FieldKey { name, key }, _, _) => {
                let raw = combined_field(headers, name).ok_or_else(missing)?;
                vec![dictionary_member(&raw, key).ok_or_else(missing)?]
            }
            (Component::FieldBs(name), _, _) => {
                let lines: Vec<String> = field_lines(headers, name)
                    .map(|v| {
                        format!(
                            ":{}:",
                            base64::engine::general_purpose::STANDARD.encode(v.trim_matches(OWS))
                        )
                    })
                    .collect();
                if lines.is_empty() {
                    return Err(missing());
                }
                vec![lines.join(", ")]
            }
            _ => return Err(unsupported()),
        };
        for value in values {
            base.push_str(&id);
            base.push_str(": ");
            base.push_str(&value);
            base.push('\n');
        }
    }
    base.push_str("\"@signature-params\": ");
    base.push_str(params_text);
    Ok(base)
}

const OWS: &[char] = &[' ', '\t'];

fn field_lines<'h>(headers: &'h [(&str, &'h str)], name: &str) -> impl Iterator<Item = &'h str> {
    let name = name.to_owned();
    headers
        .iter()
        .filter(move |(n, _)| n.eq_ignore_ascii_case(&name))
        .map(|(_, v)| *v)
}

/// The field's canonical value (RFC 9421 §2.1): obsolete line folding replaced by one space,
/// each line trimmed, lines joined by ", ". `None` when absent.
fn combined_field(headers: &[(&str, &str)], name: &str) -> Option<String> {
    let mut out: Option<String> = None;
    for value in field_lines(headers, name) {
        let value = unfold(value);
        let value = value.trim_matches(OWS);
        match &mut out {
            None => out = Some(value.to_owned()),
            Some(s) => {
                s.push_str(", ");
                s.push_str(value);
            }
        }
    }
    out
}

fn unfold(value: &str) -> std::borrow::Cow<'_, str> {
    if !value.contains(['\r', '\n']) {
        return std::borrow::Cow::Borrowed(value);
    }
    let mut out = String::with_capacity(value.len());
    let mut chars = value.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\r' || c == '\n' {
            if c == '\r' && chars.peek() == Some(&'\n') {
                chars.next();
            }
            while chars.peek().is_some_and(|c| OWS.contains(c)) {
                chars.next();
            }
            out.push(' ');
        } else {
            out.push(c);
        }
    }
    std::borrow::Cow::Owned(out)
}

/// Strict re-serialization for `;sf`. The field's type is not known here, so it is parsed
/// as a Dictionary, then a List, then an Item; for the values these three accept in common
/// the serializations coincide.
fn reserialize_sf(raw: &str) -> Option<String> {
    if let Ok(d) = sfv::Parser::new(raw).parse::<sfv::Dictionary>() {
        return d.serialize();
    }
    if let Ok(l) = sfv::Parser::new(raw).parse::<sfv::List>() {
        return l.serialize();
    }
    sfv::Parser::new(raw)
        .parse::<sfv::Item>()
        .ok()
        .map(|i| i.serialize())
}

fn dictionary_member(raw: &str, member: &str) -> Option<String> {
    let dict: sfv::Dictionary = sfv::Parser::new(raw).parse().ok()?;
    match dict.get(member)? {
        sfv::ListEntry::Item(item) => Some(item.serialize()),
        sfv::ListEntry::InnerList(list) => serialize_inner_list(list).ok(),
    }
}

/// Serializes an inner list on its own (sfv only serializes it inside a container).
fn serialize_inner_list(list: &sfv::InnerList) -> Result<String, HttpSigError> {
    let mut dict = sfv::Dictionary::new();
    dict.insert(key("x")?, sfv::ListEntry::InnerList(list.clone()));
    dict.serialize()
        .and_then(|s| s.strip_prefix("x=").map(str::to_owned))
        .ok_or_else(|| HttpSigError::InvalidParameter {
            name: "components",
            reason: "cannot serialize the inner list".to_owned(),
        })
}

struct TargetUri<'a> {
    scheme: &'a str,
    authority: &'a str,
    path: &'a str,
    query: Option<&'a str>,
}

impl<'a> TargetUri<'a> {
    fn parse(uri: &'a str) -> Result<Self, HttpSigError> {
        let err = |reason| HttpSigError::InvalidTargetUri {
            uri: uri.to_owned(),
            reason,
        };
        let (scheme, rest) = uri.split_once("://").ok_or_else(|| err("no scheme"))?;
        if scheme.is_empty()
            || !scheme
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c))
        {
            return Err(err("invalid scheme"));
        }
        let rest = rest.split_once('#').map_or(rest, |(r, _)| r);
        let end = rest.find(['/', '?']).unwrap_or(rest.len());
        let (authority, path_query) = rest.split_at(end);
        if authority.is_empty() {
            return Err(err("no authority (host)"));
        }
        if authority.contains(|c: char| c.is_ascii_whitespace() || c.is_ascii_control()) {
            return Err(err("whitespace in the authority"));
        }
        let (path, query) = match path_query.split_once('?') {
            Some((p, q)) => (p, Some(q)),
            None => (path_query, None),
        };
        Ok(Self {
            scheme,
            authority,
            path,
            query,
        })
    }

    fn path(&self) -> &str {
        if self.path.is_empty() { "/" } else { self.path }
    }

    fn authority(&self) -> String {
        let host = self
            .authority
            .rsplit_once('@')
            .map_or(self.authority, |(_, h)| h)
            .to_ascii_lowercase();
        let default_port = match self.scheme.to_ascii_lowercase().as_str() {
            "https" => Some(":443"),
            "http" => Some(":80"),
            _ => None,
        };
        match default_port.and_then(|p| host.strip_suffix(p)) {
            Some(h) => h.to_owned(),
            None => host,
        }
    }

    fn request_target(&self) -> String {
        match self.query {
            Some(q) => format!("{}?{q}", self.path()),
            None => self.path().to_owned(),
        }
    }

    /// Values of the query parameters named `encoded_name`, each decoded as
    /// `application/x-www-form-urlencoded` and re-encoded (RFC 9421 §2.2.8).
    fn query_param(&self, encoded_name: &str) -> Vec<String> {
        let Some(query) = self.query else {
            return Vec::new();
        };
        query
            .split('&')
            .filter_map(|pair| {
                let (n, v) = pair.split_once('=').unwrap_or((pair, ""));
                (reencode(n) == encoded_name).then(|| reencode(v))
            })
            .collect()
    }
}

fn reencode(part: &str) -> String {
    let bytes = part.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => decoded.push(b' '),
            b'%' if i + 2 < bytes.len() => match hex_pair(bytes[i + 1], bytes[i + 2]) {
                Some(b) => {
                    decoded.push(b);
                    i += 2;
                }
                None => decoded.push(b'%'),
            },
            b => decoded.push(b),
        }
        i += 1;
    }
    let mut out = String::with_capacity(decoded.len() * 3);
    for b in decoded {
        if b.is_ascii_alphanumeric() || b"*-._".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn hex_pair(h: u8, l: u8) -> Option<u8> {
    let d = |c: u8| char::from(c).to_digit(16);
    u8::try_from(d(h)? * 16 + d(l)?).ok()
}

fn key(name: &str) -> Result<sfv::Key, HttpSigError> {
    key_owned(name, "parameter name")
}

fn key_owned(name: &str, what: &'static str) -> Result<sfv::Key, HttpSigError> {
    sfv::KeyRef::from_str(name)
        .map(sfv::KeyRef::to_owned)
        .map_err(|e| HttpSigError::InvalidParameter {
            name: what,
            reason: format!("{name:?} is not an RFC 8941 key ({e}): use lower-case letters, digits, '_', '-', '.', '*'"),
        })
}

fn string_bare(value: &str, what: &'static str) -> Result<sfv::BareItem, HttpSigError> {
    sfv::StringRef::from_str(value)
        .map(|s| sfv::BareItem::String(s.to_owned()))
        .map_err(|e| HttpSigError::InvalidParameter {
            name: what,
            reason: format!("{value:?} is not an RFC 8941 string ({e}): use printable ASCII"),
        })
}

fn int_bare(value: i64, what: &'static str) -> Result<sfv::BareItem, HttpSigError> {
    sfv::Integer::try_from(value)
        .map(sfv::BareItem::Integer)
        .map_err(|e| HttpSigError::InvalidParameter {
            name: what,
            reason: format!("{value} is out of the RFC 8941 integer range ({e})"),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn authority_is_normalized() {
        let u = TargetUri::parse("HTTPS://user@Mairie.EXAMPLE:443/a/b?c=d#frag").unwrap();
        assert_eq!(u.authority(), "mairie.example");
        assert_eq!(u.path(), "/a/b");
        assert_eq!(u.query, Some("c=d"));
        let u = TargetUri::parse("http://mairie.example:8080").unwrap();
        assert_eq!(u.authority(), "mairie.example:8080");
        assert_eq!(u.path(), "/");
        assert_eq!(u.request_target(), "/");
        assert!(TargetUri::parse("/inbox").is_err());
        assert!(TargetUri::parse("https:///inbox").is_err());
    }

    #[test]
    fn query_param_reencoding_keeps_bad_escapes() {
        assert_eq!(reencode("a+b%41%zz%"), "a%20bA%25zz%25");
    }

    #[test]
    fn obs_fold_and_whitespace() {
        let headers = [("X-A", "  one\r\n\t two  "), ("x-a", "three")];
        assert_eq!(
            combined_field(&headers, "x-a").as_deref(),
            Some("one two, three")
        );
        assert_eq!(combined_field(&headers, "x-b"), None);
    }
}
