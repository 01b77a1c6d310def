//! `Tombstone` and the outbox collections (`OrderedCollection`, `OrderedCollectionPage`).

use serde::{Deserialize, Serialize};
use serde_json::Value;
use time::OffsetDateTime;

use super::{Extra, Message, ObjectRef, ParseError, Report, Rule, Validate, type_tag};
use crate::ids::ObjectId;

type_tag!(
    /// The `type` of a [`Tombstone`].
    TombstoneType = "Tombstone"
);
type_tag!(
    /// The `type` of an [`OrderedCollection`].
    OrderedCollectionType = "OrderedCollection"
);
type_tag!(
    /// The `type` of an [`OrderedCollectionPage`].
    OrderedCollectionPageType = "OrderedCollectionPage"
);

/// What remains of a deleted object; it wins over any later version.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Tombstone {
    /// The deleted object's id.
    pub id: ObjectId,
    /// Always `"Tombstone"`.
    #[serde(rename = "type")]
    pub kind: TombstoneType,
    /// The type the object had (`Posting`, `AgentProfile`…).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub former_type: Option<String>,
    /// When it was deleted.
    #[serde(
        default,
        with = "time::serde::rfc3339::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub deleted: Option<OffsetDateTime>,
    /// Unknown properties, kept.
    #[serde(flatten)]
    pub extra: Extra,
}

impl Validate for Tombstone {
    fn check(&self, r: &mut Report<'_>) {
        r.check_id_policy("id", self.id.as_url());
    }
}

/// An ordered collection, e.g. a node's outbox (paged by an opaque, monotonic cursor).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OrderedCollection {
    /// JSON-LD context.
    #[serde(rename = "@context", default, skip_serializing_if = "Option::is_none")]
    pub context: Option<Value>,
    /// The collection id.
    pub id: ObjectId,
    /// Always `"OrderedCollection"`.
    #[serde(rename = "type")]
    pub kind: OrderedCollectionType,
    /// Number of items visible to the requester.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total_items: Option<u64>,
    /// The first page (an id, or an embedded `OrderedCollectionPage`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first: Option<ObjectRef>,
    /// The last page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last: Option<ObjectRef>,
    /// Items inline (small collections), raw: each is parsed and verified on its own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ordered_items: Option<Vec<Value>>,
    /// Unknown properties, kept.
    #[serde(flatten)]
    pub extra: Extra,
}

fn check_page_ref(r: &mut Report<'_>, field: &str, page: Option<&ObjectRef>) {
    if let Some(ObjectRef::Embedded(m)) = page {
        if !matches!(**m, Message::OrderedCollectionPage(_)) {
            r.push(
                field,
                m.type_name(),
                Rule::Inconsistent {
                    what: "first/last of an OrderedCollection must be an OrderedCollectionPage",
                },
            );
        } else {
            r.nested(field, |r| m.check(r));
        }
    }
}

impl Validate for OrderedCollection {
    fn check(&self, r: &mut Report<'_>) {
        r.check_id_policy("id", self.id.as_url());
        if let Some(items) = self.extra.get("items") {
            r.push(
                "items",
                items,
                Rule::NotAllowed {
                    what: "items in an OrderedCollection (use orderedItems)",
                },
            );
        }
        check_page_ref(r, "first", self.first.as_ref());
        check_page_ref(r, "last", self.last.as_ref());
    }
}

/// One page of an ordered collection.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OrderedCollectionPage {
    /// JSON-LD context.
    #[serde(rename = "@context", default, skip_serializing_if = "Option::is_none")]
    pub context: Option<Value>,
    /// The page id (carries the cursor).
    pub id: ObjectId,
    /// Always `"OrderedCollectionPage"`.
    #[serde(rename = "type")]
    pub kind: OrderedCollectionPageType,
    /// The collection this page belongs to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub part_of: Option<ObjectId>,
    /// The next page (newer items), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next: Option<ObjectId>,
    /// The previous page, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prev: Option<ObjectId>,
    /// The items, raw: each is parsed with [`Message::from_value`] and its proof verified
    /// over these bytes, so one unknown item does not hide the others.
    #[serde(default)]
    pub ordered_items: Vec<Value>,
    /// Unknown properties, kept.
    #[serde(flatten)]
    pub extra: Extra,
}

impl OrderedCollectionPage {
    /// The items, each decoded on its own.
    pub fn items(&self) -> impl Iterator<Item = Result<Message, ParseError>> + '_ {
        self.ordered_items.iter().cloned().map(Message::from_value)
    }
}

impl Validate for OrderedCollectionPage {
    fn check(&self, r: &mut Report<'_>) {
        r.check_id_policy("id", self.id.as_url());
        if let Some(items) = self.extra.get("items") {
            r.push(
                "items",
                items,
                Rule::NotAllowed {
                    what: "items in an OrderedCollectionPage (use orderedItems)",
                },
            );
        }
        for (field, link) in [
            ("partOf", &self.part_of),
            ("next", &self.next),
            ("prev", &self.prev),
        ] {
            if let Some(link) = link
                && !link.same_origin(&self.id)
            {
                r.push(
                    field,
                    link.as_str(),
                    Rule::OriginMismatch {
                        owner: "the page",
                        expected: self.id.origin().ascii_serialization(),
                    },
                );
            }
        }
    }
}
