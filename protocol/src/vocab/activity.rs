//! The activity envelope: `Create`, `Update`, `Delete`, `Follow`, `Accept`, `Reject`,
//! `Undo`, `Offer`, `Announce`, `Add`, over an embedded object or a bare id.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;
use time::OffsetDateTime;

use super::{Extra, Message, Report, Rule, Validate, is_public, one_or_many};
use crate::ids::{ActorId, ObjectId};

/// The activity types Passerelle speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[non_exhaustive]
pub enum ActivityType {
    /// Publish a new object (posting, profile, convention…).
    Create,
    /// Replace an object with a newer version (`version` increases), or the actor itself.
    Update,
    /// Delete an object (a `Tombstone` wins over any version).
    Delete,
    /// Ask to become a partner.
    Follow,
    /// Accept a `Follow` or the terms of a MAD request.
    Accept,
    /// Refuse a `Follow` or the terms of a MAD request.
    Reject,
    /// Withdraw an earlier activity of the same actor.
    Undo,
    /// Propose a MAD request or a career offer.
    Offer,
    /// Relay a partner's object (receivers verify the original proof).
    Announce,
    /// Add something to a collection (a signature to a convention…).
    Add,
}

impl ActivityType {
    /// Every activity type.
    pub const ALL: [ActivityType; 10] = [
        Self::Create,
        Self::Update,
        Self::Delete,
        Self::Follow,
        Self::Accept,
        Self::Reject,
        Self::Undo,
        Self::Offer,
        Self::Announce,
        Self::Add,
    ];

    /// The `type` name.
    pub fn name(self) -> &'static str {
        match self {
            Self::Create => "Create",
            Self::Update => "Update",
            Self::Delete => "Delete",
            Self::Follow => "Follow",
            Self::Accept => "Accept",
            Self::Reject => "Reject",
            Self::Undo => "Undo",
            Self::Offer => "Offer",
            Self::Announce => "Announce",
            Self::Add => "Add",
        }
    }

    /// The activity type named `name`, if Passerelle speaks it.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.name() == name)
    }
}

/// The `object` (or `target`) of an activity: a bare id, or the object embedded.
#[derive(Debug, Clone, PartialEq)]
pub enum ObjectRef {
    /// A bare id, to dereference (or already known).
    Id(ObjectId),
    /// The object itself, decoded after dispatch on its `type`.
    Embedded(Box<Message>),
}

impl ObjectRef {
    /// The id: the bare id, or the embedded object's id.
    pub fn id(&self) -> Option<&str> {
        match self {
            ObjectRef::Id(id) => Some(id.as_str()),
            ObjectRef::Embedded(m) => m.id(),
        }
    }

    /// The embedded object, if any.
    pub fn embedded(&self) -> Option<&Message> {
        match self {
            ObjectRef::Id(_) => None,
            ObjectRef::Embedded(m) => Some(m),
        }
    }
}

impl<'de> Deserialize<'de> for ObjectRef {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match Value::deserialize(d)? {
            Value::String(s) => s
                .parse()
                .map(ObjectRef::Id)
                .map_err(serde::de::Error::custom),
            v @ Value::Object(_) => Message::from_value(v)
                .map(|m| ObjectRef::Embedded(Box::new(m)))
                .map_err(serde::de::Error::custom),
            other => Err(serde::de::Error::custom(format!(
                "expected an id (string) or an embedded object, got {other}"
            ))),
        }
    }
}

impl Serialize for ObjectRef {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            ObjectRef::Id(id) => id.serialize(s),
            ObjectRef::Embedded(m) => m.serialize(s),
        }
    }
}

/// An activity.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Activity {
    /// JSON-LD context (see [`super::CONTEXT`]); absent when embedded.
    #[serde(rename = "@context", default, skip_serializing_if = "Option::is_none")]
    pub context: Option<Value>,
    /// The activity id (minted by the actor's node, ends in a UUIDv7).
    pub id: ObjectId,
    /// The activity type.
    #[serde(rename = "type")]
    pub kind: ActivityType,
    /// The node that performs it.
    pub actor: ActorId,
    /// What it acts on.
    pub object: ObjectRef,
    /// The collection or object it acts towards (`Add`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<ObjectRef>,
    /// Primary recipients (actor ids, collection ids, or the public collection).
    #[serde(
        default,
        deserialize_with = "one_or_many",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub to: Vec<String>,
    /// Secondary recipients.
    #[serde(
        default,
        deserialize_with = "one_or_many",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub cc: Vec<String>,
    /// When it was performed.
    #[serde(
        default,
        with = "time::serde::rfc3339::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub published: Option<OffsetDateTime>,
    /// Data Integrity proof (or proof set), kept as received.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proof: Option<Value>,
    /// Unknown properties, kept.
    #[serde(flatten)]
    pub extra: Extra,
}

impl Activity {
    /// A top-level activity with [`super::CONTEXT`], no `cc`, `target`, `published` or
    /// proof (set them on the returned value).
    pub fn new(
        kind: ActivityType,
        id: ObjectId,
        actor: ActorId,
        object: ObjectRef,
        to: Vec<String>,
    ) -> Self {
        Self {
            context: Some(super::context()),
            id,
            kind,
            actor,
            object,
            target: None,
            to,
            cc: Vec::new(),
            published: None,
            proof: None,
            extra: Extra::new(),
        }
    }

    /// Whether the activity is addressed to the public collection.
    pub fn is_public(&self) -> bool {
        self.to.iter().chain(&self.cc).any(|a| is_public(a))
    }

    /// All recipients (`to` then `cc`).
    pub fn recipients(&self) -> impl Iterator<Item = &str> {
        self.to.iter().chain(&self.cc).map(String::as_str)
    }
}

impl Validate for Activity {
    fn check(&self, r: &mut Report<'_>) {
        r.check_id_policy("id", self.id.as_url());
        r.check_id_policy("actor", self.actor.as_url());
        r.check_same_origin("id", &self.id, &self.actor, "actor");
        r.check_minted("id", &self.id);
        if self.to.is_empty() && self.cc.is_empty() {
            r.required("to", "at least one recipient in to or cc");
        }
        let object_must_be_own = matches!(
            self.kind,
            ActivityType::Create
                | ActivityType::Update
                | ActivityType::Delete
                | ActivityType::Undo
                | ActivityType::Offer
        );
        match &self.object {
            ObjectRef::Id(id) => {
                if matches!(self.kind, ActivityType::Create | ActivityType::Update) {
                    r.push(
                        "object",
                        id.as_str(),
                        Rule::Required {
                            what: "the embedded object (Create and Update carry the object itself)",
                        },
                    );
                }
                if object_must_be_own {
                    r.check_same_origin("object", id, &self.actor, "actor");
                }
            }
            ObjectRef::Embedded(object) => {
                if object_must_be_own {
                    if let Some(owner) = object.owner()
                        && owner != &self.actor
                    {
                        r.push(
                            "object",
                            owner.as_str(),
                            Rule::ActorMismatch {
                                what: "the object's owner (attributedTo)",
                                other: "the activity's actor",
                            },
                        );
                    }
                    if let Some(id) = object.id().and_then(|s| s.parse::<ObjectId>().ok()) {
                        r.nested("object", |r| {
                            r.check_same_origin("id", &id, &self.actor, "actor");
                        });
                    }
                }
                if object.is_private() && self.is_public() {
                    r.push(
                        "to",
                        &self.to,
                        Rule::Addressing {
                            what: "an activity carrying personal data or a private offer",
                            allowed: "the nodes concerned",
                        },
                    );
                }
                r.nested("object", |r| object.check(r));
            }
        }
        if self.kind == ActivityType::Add && self.target.is_none() {
            r.required("target", "the collection or object added to");
        }
        if let Some(ObjectRef::Embedded(t)) = &self.target {
            r.nested("target", |r| t.check(r));
        }
    }
}
