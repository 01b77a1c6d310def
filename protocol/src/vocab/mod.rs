//! Typed Passerelle messages and their validation.
//!
//! **Wire conventions.** JSON property names are camelCase (ActivityStreams style); enum
//! *values* are the snake_case wire values of the domain model (`"vacancy"`,
//! `"fonctionnaire_titulaire"`); object types are PascalCase. Every top-level message
//! carries [`CONTEXT`] as its `@context`; the Passerelle context is fixed and never fetched.
//!
//! **Dispatch.** [`Message::from_value`] reads the `type` tag first, then decodes the one
//! typed struct for that type; an unknown type is refused by name
//! ([`ParseError::UnknownType`]), never guessed (no `#[serde(untagged)]`).
//!
//! **Nothing is dropped.** Every struct keeps `proof` and every unknown property (in
//! `extra`), so that parse → serialize gives back the same JSON object. Proofs are still
//! verified over the bytes received, never over a re-serialization.
//!
//! **Validation.** Parsing refuses what the types cannot hold; [`Validate`] then checks the
//! rules across fields and returns every problem at once ([`Problems`]), each with a JSON
//! path, the value, an English message and a French one for HR officers.

mod activity;
mod actor;
mod collection;
mod discovery;
mod mad_request;
mod posting;
mod profile;
mod validate;

pub use activity::{Activity, ActivityType, ObjectRef};
pub use actor::{Collectivite, Endpoints, Multikey, OrganisationKind, Organization, Versant};
pub use collection::{OrderedCollection, OrderedCollectionPage, Tombstone};
pub use discovery::{
    ACTIVITY_JSON, Jrd, JrdLink, NODEINFO_21_REL, NodeInfo, NodeInfoLink, NodeInfoLinks,
    NodeInfoServices, NodeInfoSoftware, NodeInfoUsage, NodeInfoUsers, parse_acct,
};
pub use mad_request::{
    AgentAgreement, AgentRef, AgentStatut, Clause, Convention, DisclosedIdentity, EvaluationMode,
    IDENTITY_STATES, InvoicingPeriod, LeaveAuthority, MadHistoryEntry, MadRequest, MadTerms,
    ReimbursementMode, ReimbursementTerms,
};
pub use posting::{
    CareerDecision, CareerOfferBody, CareerRoute, Categorie, CnfptRef, Contact, CostSharing,
    DateItem, DayPart, Employer, FacilitationRequestBody, Filiere, ImmersionOfferBody,
    ImmersionSwapBody, LocalMetierRef, Location, MAD_MAX_MONTHS, MISSION_MAX_MONTHS,
    MISSION_QUOTITE_PCT, MadOfferBody, MetierRef, OpenToContractuels, Posting, PostingBody,
    PostingDates, PostingKind, PostingStatus, ProjectMissionBody, Reciprocity,
    ReimbursementExpected, Remuneration, RomeRef, Route, Slot, Statutory, SwapPair, Telework,
    TrainerKind, TrainingSessionBody, VacancyBody, VacancyKind, VacancyReason, Visibility,
    WaiverReason, WorkingTime, WorkingTimeKind, add_months, months_between,
};
pub use profile::{
    AgentProfile, Appetite, Area, Availability, Horizon, ProfileVisibility, VolunteerRole,
    Volunteering, looks_like_personal_data,
};
pub use validate::{Problem, Problems, Report, Rule, Validate, ValidationContext, check_no_nul};

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;

/// The ActivityStreams 2.0 context.
pub const AS_CONTEXT: &str = "https://www.w3.org/ns/activitystreams";
/// The W3C Data Integrity v2 context (for `proof`).
pub const DATA_INTEGRITY_CONTEXT: &str = "https://w3id.org/security/data-integrity/v2";
/// The Passerelle context (fixed, never fetched; see `spec/context/passerelle-v1.jsonld`).
pub const PASSERELLE_CONTEXT: &str = "https://w3id.org/passerelle/v1";
/// The `@context` of every top-level Passerelle message, in this order.
pub const CONTEXT: [&str; 3] = [AS_CONTEXT, DATA_INTEGRITY_CONTEXT, PASSERELLE_CONTEXT];
/// The ActivityStreams public collection (`to`/`cc` value meaning "everyone").
pub const PUBLIC: &str = "https://www.w3.org/ns/activitystreams#Public";

/// The properties a message keeps without knowing them (unknown properties).
pub type Extra = serde_json::Map<String, Value>;

/// The standard `@context` value: [`CONTEXT`] as a JSON array.
pub fn context() -> Value {
    Value::Array(
        CONTEXT
            .iter()
            .map(|c| Value::String((*c).to_owned()))
            .collect(),
    )
}

/// Whether an addressing value means "public" (`as:Public`, `Public` or the full URL).
pub fn is_public(address: &str) -> bool {
    matches!(address, PUBLIC | "as:Public" | "Public")
}

/// Checks `@context` of a top-level message: present and listing the AS and Passerelle
/// contexts (and Data Integrity when `has_proof`).
pub(crate) fn check_context(report: &mut Report<'_>, context: Option<&Value>, has_proof: bool) {
    let listed = |url: &str| match context {
        Some(Value::String(s)) => s == url,
        Some(Value::Array(items)) => items.iter().any(|v| v.as_str() == Some(url)),
        _ => false,
    };
    let mut required = vec![AS_CONTEXT, PASSERELLE_CONTEXT];
    if has_proof {
        required.push(DATA_INTEGRITY_CONTEXT);
    }
    for missing in required.into_iter().filter(|u| !listed(u)) {
        report.push(
            "@context",
            context.cloned().unwrap_or(Value::Null),
            Rule::Context { missing },
        );
    }
}

/// Declares a one-value enum used as a struct's `type` field, so that a typed struct only
/// accepts its own type name and writes it back.
macro_rules! type_tag {
    ($(#[$doc:meta])* $name:ident = $value:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
        pub enum $name {
            #[doc = concat!("`\"", $value, "\"`")]
            #[default]
            #[serde(rename = $value)]
            Tag,
        }
    };
}
pub(crate) use type_tag;

/// Deserializes a value that AS2 allows as either one item or an array of items.
pub(crate) fn one_or_many<'de, D, T>(d: D) -> Result<Vec<T>, D::Error>
where
    D: Deserializer<'de>,
    T: serde::de::DeserializeOwned,
{
    match Value::deserialize(d)? {
        Value::Array(items) => items
            .into_iter()
            .map(|v| serde_json::from_value(v).map_err(serde::de::Error::custom))
            .collect(),
        one => serde_json::from_value(one)
            .map(|x| vec![x])
            .map_err(serde::de::Error::custom),
    }
}

/// Serde helpers for calendar dates (`YYYY-MM-DD`).
pub(crate) mod date_format {
    time::serde::format_description!(pub day, Date, "[year]-[month]-[day]");
}

/// Why a JSON document is not a Passerelle message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ParseError {
    /// The bytes are not JSON.
    #[error("not JSON: {0}")]
    Json(String),
    /// The document is not a JSON object.
    #[error("a message must be a JSON object, got {found}")]
    NotAnObject {
        /// The JSON type found ("array", "string"…).
        found: &'static str,
    },
    /// The object has no `type`.
    #[error(
        "the object has no \"type\"; every message names its type (e.g. \"Create\", \"Posting\")"
    )]
    MissingType,
    /// `type` is not a single string.
    #[error("\"type\" must be a single string, got {found}")]
    TypeNotString {
        /// The JSON found, compact.
        found: String,
    },
    /// The type is not one Passerelle knows.
    #[error("unknown message type {name:?}; Passerelle accepts {expected}")]
    UnknownType {
        /// The type name received.
        name: String,
        /// The accepted types, for the message.
        expected: &'static str,
    },
    /// The type is known but the object does not match it.
    #[error("invalid {type_name} at {path}: {message}")]
    Invalid {
        /// The message type.
        type_name: &'static str,
        /// JSON path of the first offending field (`.` for the root).
        path: String,
        /// The decoder's explanation.
        message: String,
    },
}

impl ParseError {
    /// The French message for HR officers.
    pub fn message_fr(&self) -> String {
        match self {
            ParseError::Json(e) => format!("Le document n'est pas du JSON valide : {e}."),
            ParseError::NotAnObject { .. } => "Le message doit être un objet JSON.".to_owned(),
            ParseError::MissingType => "Le message n'indique pas son type (« type »).".to_owned(),
            ParseError::TypeNotString { .. } => {
                "Le type du message (« type ») doit être une chaîne unique.".to_owned()
            }
            ParseError::UnknownType { name, .. } => {
                format!("Type de message inconnu : « {name} ».")
            }
            ParseError::Invalid {
                type_name,
                path,
                message,
            } => format!("{type_name} invalide, champ {path} : {message}."),
        }
    }
}

fn json_kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// The `type` names Passerelle dispatches on, with an explicit branch for the rest.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum MessageType {
    /// An activity (`Create`, `Update`, … see [`ActivityType`]).
    Activity(ActivityType),
    /// `Organization`: a node's actor.
    Organization,
    /// `Posting`: an offer of any kind.
    Posting,
    /// `AgentProfile`: an agent's pseudonymous profile.
    AgentProfile,
    /// `MadRequest`: a MAD negotiation.
    MadRequest,
    /// `Convention`: a MAD convention or avenant.
    Convention,
    /// `Tombstone`: a deleted object.
    Tombstone,
    /// `OrderedCollection`: an outbox or another ordered collection.
    OrderedCollection,
    /// `OrderedCollectionPage`: one page of it.
    OrderedCollectionPage,
    /// Any other type name: refused by [`Message::from_value`].
    Unknown(String),
}

/// The accepted type names, for error messages.
const EXPECTED_TYPES: &str = "Create, Update, Delete, Follow, Accept, Reject, Undo, Offer, Announce, Add, Organization, Posting, AgentProfile, MadRequest, Convention, Tombstone, OrderedCollection, OrderedCollectionPage";

impl MessageType {
    /// Classifies a `type` name.
    pub fn from_name(name: &str) -> Self {
        if let Some(a) = ActivityType::from_name(name) {
            return MessageType::Activity(a);
        }
        match name {
            "Organization" => MessageType::Organization,
            "Posting" => MessageType::Posting,
            "AgentProfile" => MessageType::AgentProfile,
            "MadRequest" => MessageType::MadRequest,
            "Convention" => MessageType::Convention,
            "Tombstone" => MessageType::Tombstone,
            "OrderedCollection" => MessageType::OrderedCollection,
            "OrderedCollectionPage" => MessageType::OrderedCollectionPage,
            other => MessageType::Unknown(other.to_owned()),
        }
    }
}

/// Any Passerelle message or object, decoded after dispatch on its `type`.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Message {
    /// An activity.
    Activity(Box<Activity>),
    /// A node's actor.
    Organization(Box<Organization>),
    /// A posting.
    Posting(Box<Posting>),
    /// An agent's profile.
    AgentProfile(Box<AgentProfile>),
    /// A MAD request.
    MadRequest(Box<MadRequest>),
    /// A MAD convention.
    Convention(Box<Convention>),
    /// A deleted object.
    Tombstone(Box<Tombstone>),
    /// An ordered collection (outbox).
    OrderedCollection(Box<OrderedCollection>),
    /// A page of an ordered collection.
    OrderedCollectionPage(Box<OrderedCollectionPage>),
}

/// How a message is being decoded on this thread (see [`decode`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Pass {
    /// Without tracking the path; an error is only "it fails".
    Fast,
    /// Tracking the path, to say where it fails.
    Tracked,
}

thread_local! {
    /// The pass of the outermost message being decoded on this thread, if any: a message
    /// embedded in it is decoded in the same pass.
    static PASS: std::cell::Cell<Option<Pass>> = const { std::cell::Cell::new(None) };
}

/// Runs `f` with [`PASS`] set to `pass`, and unset afterwards (also on a panic).
fn in_pass<R>(pass: Pass, f: impl FnOnce() -> R) -> R {
    struct Unset;
    impl Drop for Unset {
        fn drop(&mut self) {
            PASS.set(None);
        }
    }
    PASS.set(Some(pass));
    let _unset = Unset;
    f()
}

/// Decodes a message of type `type_name`.
///
/// Tracking the path costs an allocation a member, a good part of decoding: an outermost
/// message is decoded without it, and only one that fails is decoded again to say where.
/// The messages embedded in it (an activity's object) are decoded in the same pass as
/// the outermost one, never twice each, so that a message nested n deep that fails costs
/// two decodings, not 2ⁿ.
fn decode<'de, T: serde::Deserialize<'de>>(
    type_name: &'static str,
    value: &'de Value,
) -> Result<T, ParseError> {
    match PASS.get() {
        Some(Pass::Fast) => T::deserialize(value).map_err(|e| ParseError::Invalid {
            type_name,
            path: String::new(),
            message: e.to_string(),
        }),
        Some(Pass::Tracked) => decode_tracked(type_name, value),
        None => match in_pass(Pass::Fast, || T::deserialize(value)) {
            Ok(decoded) => Ok(decoded),
            Err(_) => in_pass(Pass::Tracked, || decode_tracked(type_name, value)),
        },
    }
}

/// [`decode`], tracking the path.
fn decode_tracked<'de, T: serde::Deserialize<'de>>(
    type_name: &'static str,
    value: &'de Value,
) -> Result<T, ParseError> {
    serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        ParseError::Invalid {
            type_name,
            path,
            message: e.into_inner().to_string(),
        }
    })
}

/// The `type` member of a message.
fn message_type(value: &Value) -> Result<&str, ParseError> {
    let obj = match value {
        Value::Object(m) => m,
        other => {
            return Err(ParseError::NotAnObject {
                found: json_kind(other),
            });
        }
    };
    match obj.get("type") {
        None => Err(ParseError::MissingType),
        Some(Value::String(s)) => Ok(s),
        Some(other) => Err(ParseError::TypeNotString {
            found: other.to_string(),
        }),
    }
}

impl Message {
    /// Parses JSON bytes into a message: strictly, as [`crate::canonical::parse_strict`]
    /// with the default limits (duplicate member names refused), then the `type` tag,
    /// then the typed decoding.
    ///
    /// # Errors
    /// A [`ParseError`] saying what is wrong, unknown types reported by name.
    pub fn from_slice(bytes: &[u8]) -> Result<Self, ParseError> {
        let value = crate::canonical::parse_strict(bytes, &Default::default())
            .map_err(|e| ParseError::Json(e.to_string()))?;
        Self::from_value(value)
    }

    /// Decodes a JSON value into a message: the `type` tag first, then the typed decoding.
    ///
    /// # Errors
    /// A [`ParseError`] saying what is wrong, unknown types reported by name.
    ///
    /// # Examples
    /// ```
    /// use passerelle_protocol::vocab::{Message, ParseError, ValidationContext};
    /// let follow = serde_json::json!({
    ///     "@context": passerelle_protocol::vocab::context(),
    ///     "id": "https://passerelle.isere.fr/activities/019aa1b2-0004-7004-8004-000000000004",
    ///     "type": "Follow",
    ///     "actor": "https://passerelle.isere.fr/actor",
    ///     "object": "https://emploi.grenoble.fr/actor",
    ///     "to": ["https://emploi.grenoble.fr/actor"]
    /// });
    /// let message = Message::from_value(follow)?;
    /// assert_eq!(message.type_name(), "Follow");
    /// message.validate(&ValidationContext::production()).unwrap();
    ///
    /// let note = serde_json::json!({"type": "Note", "content": "Bonjour"});
    /// assert!(matches!(Message::from_value(note), Err(ParseError::UnknownType { name, .. }) if name == "Note"));
    /// # Ok::<(), ParseError>(())
    /// ```
    pub fn from_value(value: Value) -> Result<Self, ParseError> {
        Self::from_value_ref(&value)
    }

    /// [`Message::from_value`] on a borrowed value, for a caller that keeps it: the typed
    /// message is decoded from the tree without copying the tree first.
    ///
    /// # Errors
    /// As [`Message::from_value`].
    pub fn from_value_ref(value: &Value) -> Result<Self, ParseError> {
        Self::decode_as(message_type(value)?, value)
    }

    fn decode_as(name: &str, value: &Value) -> Result<Self, ParseError> {
        Ok(match MessageType::from_name(name) {
            MessageType::Activity(_) => Message::Activity(decode("activity", value)?),
            MessageType::Organization => Message::Organization(decode("Organization", value)?),
            MessageType::Posting => Message::Posting(decode("Posting", value)?),
            MessageType::AgentProfile => Message::AgentProfile(decode("AgentProfile", value)?),
            MessageType::MadRequest => Message::MadRequest(decode("MadRequest", value)?),
            MessageType::Convention => Message::Convention(decode("Convention", value)?),
            MessageType::Tombstone => Message::Tombstone(decode("Tombstone", value)?),
            MessageType::OrderedCollection => {
                Message::OrderedCollection(decode("OrderedCollection", value)?)
            }
            MessageType::OrderedCollectionPage => {
                Message::OrderedCollectionPage(decode("OrderedCollectionPage", value)?)
            }
            MessageType::Unknown(name) => {
                return Err(ParseError::UnknownType {
                    name,
                    expected: EXPECTED_TYPES,
                });
            }
        })
    }

    /// The message's `type` name.
    pub fn type_name(&self) -> &'static str {
        match self {
            Message::Activity(a) => a.kind.name(),
            Message::Organization(_) => "Organization",
            Message::Posting(_) => "Posting",
            Message::AgentProfile(_) => "AgentProfile",
            Message::MadRequest(_) => "MadRequest",
            Message::Convention(_) => "Convention",
            Message::Tombstone(_) => "Tombstone",
            Message::OrderedCollection(_) => "OrderedCollection",
            Message::OrderedCollectionPage(_) => "OrderedCollectionPage",
        }
    }

    /// The message's id, when it has one.
    pub fn id(&self) -> Option<&str> {
        match self {
            Message::Activity(a) => Some(a.id.as_str()),
            Message::Organization(o) => Some(o.id.as_str()),
            Message::Posting(p) => Some(p.id.as_str()),
            Message::AgentProfile(p) => Some(p.id.as_str()),
            Message::MadRequest(m) => Some(m.id.as_str()),
            Message::Convention(c) => Some(c.id.as_str()),
            Message::Tombstone(t) => Some(t.id.as_str()),
            Message::OrderedCollection(c) => Some(c.id.as_str()),
            Message::OrderedCollectionPage(p) => Some(p.id.as_str()),
        }
    }

    /// The actor that owns the object: the actor of an activity, the `attributedTo` of an
    /// object, the actor itself for an `Organization`; `None` for collections and tombstones.
    pub fn owner(&self) -> Option<&crate::ids::ActorId> {
        match self {
            Message::Activity(a) => Some(&a.actor),
            Message::Organization(o) => Some(&o.id),
            Message::Posting(p) => Some(&p.attributed_to),
            Message::AgentProfile(p) => Some(&p.attributed_to),
            Message::MadRequest(m) => Some(&m.attributed_to),
            Message::Convention(c) => Some(&c.attributed_to),
            Message::Tombstone(_)
            | Message::OrderedCollection(_)
            | Message::OrderedCollectionPage(_) => None,
        }
    }

    /// Whether the object must never be addressed to the public (personal data, private
    /// offers, MAD negotiation).
    pub fn is_private(&self) -> bool {
        match self {
            Message::Activity(a) => a.object.embedded().is_some_and(Message::is_private),
            Message::Posting(p) => p.posting_kind() == PostingKind::CareerOffer,
            Message::AgentProfile(_) | Message::MadRequest(_) | Message::Convention(_) => true,
            Message::Organization(_)
            | Message::Tombstone(_)
            | Message::OrderedCollection(_)
            | Message::OrderedCollectionPage(_) => false,
        }
    }

    /// Serializes the message back to JSON.
    ///
    /// # Errors
    /// Only if a custom serializer fails (none does for these types).
    pub fn to_value(&self) -> Result<Value, serde_json::Error> {
        match self {
            Message::Activity(a) => serde_json::to_value(a),
            Message::Organization(o) => serde_json::to_value(o),
            Message::Posting(p) => serde_json::to_value(p),
            Message::AgentProfile(p) => serde_json::to_value(p),
            Message::MadRequest(m) => serde_json::to_value(m),
            Message::Convention(c) => serde_json::to_value(c),
            Message::Tombstone(t) => serde_json::to_value(t),
            Message::OrderedCollection(c) => serde_json::to_value(c),
            Message::OrderedCollectionPage(p) => serde_json::to_value(p),
        }
    }

    /// Validates the message as a top-level message (with its `@context`).
    ///
    /// # Errors
    /// Every problem found.
    pub fn validate(&self, ctx: &ValidationContext) -> Result<(), Problems> {
        let mut report = Report::new(ctx);
        self.check_top(&mut report);
        report.finish()
    }

    fn check_top(&self, report: &mut Report<'_>) {
        match self {
            Message::Activity(a) => {
                check_context(report, a.context.as_ref(), a.proof.is_some());
                a.check(report);
            }
            Message::Organization(o) => {
                check_context(report, o.context.as_ref(), o.proof.is_some());
                o.check(report);
            }
            Message::Posting(p) => {
                check_context(report, p.context.as_ref(), p.proof.is_some());
                p.check(report);
            }
            Message::AgentProfile(p) => {
                check_context(report, p.context.as_ref(), p.proof.is_some());
                p.check(report);
            }
            Message::MadRequest(m) => {
                check_context(report, m.context.as_ref(), m.proof.is_some());
                m.check(report);
            }
            Message::Convention(c) => {
                check_context(report, c.context.as_ref(), c.proof.is_some());
                c.check(report);
            }
            Message::Tombstone(t) => t.check(report),
            Message::OrderedCollection(c) => c.check(report),
            Message::OrderedCollectionPage(p) => p.check(report),
        }
    }
}

impl Validate for Message {
    /// Validates as an embedded object (no `@context` required).
    fn check(&self, report: &mut Report<'_>) {
        match self {
            Message::Activity(a) => a.check(report),
            Message::Organization(o) => o.check(report),
            Message::Posting(p) => p.check(report),
            Message::AgentProfile(p) => p.check(report),
            Message::MadRequest(m) => m.check(report),
            Message::Convention(c) => c.check(report),
            Message::Tombstone(t) => t.check(report),
            Message::OrderedCollection(c) => c.check(report),
            Message::OrderedCollectionPage(p) => p.check(report),
        }
    }
}

impl<'de> Deserialize<'de> for Message {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let value = Value::deserialize(d)?;
        Message::from_value(value).map_err(serde::de::Error::custom)
    }
}

impl Serialize for Message {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Message::Activity(a) => a.serialize(s),
            Message::Organization(o) => o.serialize(s),
            Message::Posting(p) => p.serialize(s),
            Message::AgentProfile(p) => p.serialize(s),
            Message::MadRequest(m) => m.serialize(s),
            Message::Convention(c) => c.serialize(s),
            Message::Tombstone(t) => t.serialize(s),
            Message::OrderedCollection(c) => c.serialize(s),
            Message::OrderedCollectionPage(p) => p.serialize(s),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Found by `props::message_from_slice_is_as_strict_as_parse_strict`: `from_slice` used
    /// serde_json, which keeps the last of two members with the same name.
    #[test]
    fn from_slice_refuses_duplicate_member_names() {
        let doc = br#"{"type":"Follow","id":"https://a.example/activities/1","actor":"https://a.example/actor","object":"https://b.example/actor","actor":"https://evil.example/actor"}"#;
        let err = Message::from_slice(doc).unwrap_err();
        assert!(
            matches!(&err, ParseError::Json(m) if m.contains("\"actor\"")),
            "{err}"
        );
    }

    /// Regression: when an outermost message failed without path tracking, it was decoded
    /// again with it, and so was each embedded message at each level, so that a failing
    /// message nested n deep was decoded 2ⁿ times (this test did not finish). Each level is
    /// a valid `Announce` but the innermost object, a `Note`; the error still says where.
    #[test]
    fn a_deeply_nested_failing_message_is_decoded_twice_not_exponentially() {
        let announce = |n: usize, object: Value| {
            serde_json::json!({
                "@context": context(),
                "id": format!("https://a.example/activities/{n}"),
                "type": "Announce",
                "actor": "https://a.example/actor",
                "object": object,
                "to": ["https://b.example/actor"],
            })
        };
        let mut doc = serde_json::json!({"type": "Note", "content": "Bonjour"});
        for n in 0..40 {
            doc = announce(n, doc);
        }
        let err = Message::from_value_ref(&doc).unwrap_err();
        let ParseError::Invalid { path, message, .. } = &err else {
            panic!("{err}");
        };
        assert_eq!(path, "object", "{err}");
        assert!(message.contains("Note"), "{err}");
        // The same error as a decoding that tracks the path all the way down.
        let tracked = in_pass(Pass::Tracked, || {
            decode::<activity::Activity>("activity", &doc)
        })
        .map(|_| ())
        .unwrap_err();
        assert_eq!(tracked.to_string(), err.to_string());
        assert_eq!(PASS.get(), None, "the pass is unset afterwards");
        // And a valid one nested as deep decodes.
        let mut ok = serde_json::json!("https://a.example/postings/1");
        for n in 0..40 {
            ok = announce(n, ok);
        }
        assert_eq!(
            Message::from_value_ref(&ok).unwrap().type_name(),
            "Announce"
        );
    }
}
