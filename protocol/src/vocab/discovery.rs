//! Discovery documents: WebFinger JRD (RFC 7033) and NodeInfo 2.1.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::Extra;
use crate::ids::ActorId;

/// The media type of ActivityStreams documents, used in the JRD `self` link.
pub const ACTIVITY_JSON: &str = "application/activity+json";
/// The JSON-LD media type with the ActivityStreams profile (also accepted in `self` links).
const LD_JSON_AS: &str = "application/ld+json; profile=\"https://www.w3.org/ns/activitystreams\"";
/// The NodeInfo 2.1 schema relation (well-known document link `rel`).
pub const NODEINFO_21_REL: &str = "http://nodeinfo.diaspora.software/ns/schema/2.1";

/// A link of a JRD.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JrdLink {
    /// Relation type (`self`, `http://webfinger.net/rel/profile-page`…).
    pub rel: String,
    /// Media type of the target.
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    /// Target URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub href: Option<String>,
    /// Titles by language tag.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub titles: BTreeMap<String, String>,
    /// Link properties (values may be null).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub properties: BTreeMap<String, Option<String>>,
    /// Unknown members (e.g. `template`), kept.
    #[serde(flatten)]
    pub extra: Extra,
}

/// A JSON Resource Descriptor (RFC 7033 §4.4), the WebFinger response.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Jrd {
    /// The resource, e.g. `acct:grenoble@emploi.grenoble.fr`.
    pub subject: String,
    /// Other URIs of the resource (the actor id).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub aliases: Vec<String>,
    /// Properties (values may be null).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub properties: BTreeMap<String, Option<String>>,
    /// Links.
    #[serde(default)]
    pub links: Vec<JrdLink>,
    /// Unknown members, kept (clients must ignore them, RFC 7033 §4.4).
    #[serde(flatten)]
    pub extra: Extra,
}

impl Jrd {
    /// The JRD a node serves for its actor: subject `acct:{username}@{domain}`, the actor id
    /// as alias and as the `self` link.
    pub fn for_actor(username: &str, domain: &str, actor: &ActorId) -> Self {
        Self {
            subject: format!("acct:{username}@{domain}"),
            aliases: vec![actor.to_string()],
            properties: BTreeMap::new(),
            links: vec![JrdLink {
                rel: "self".to_owned(),
                media_type: Some(ACTIVITY_JSON.to_owned()),
                href: Some(actor.to_string()),
                titles: BTreeMap::new(),
                properties: BTreeMap::new(),
                extra: Extra::new(),
            }],
            extra: Extra::new(),
        }
    }

    /// The links with relation `rel`, in order.
    pub fn links_with_rel<'a>(&'a self, rel: &'a str) -> impl Iterator<Item = &'a JrdLink> {
        self.links.iter().filter(move |l| l.rel == rel)
    }

    /// The actor id: the first `self` link of an ActivityStreams media type whose href is a
    /// valid id.
    pub fn actor_id(&self) -> Option<ActorId> {
        self.links_with_rel("self")
            .filter(|l| {
                l.media_type
                    .as_deref()
                    .is_some_and(|t| t == ACTIVITY_JSON || t == LD_JSON_AS)
            })
            .find_map(|l| l.href.as_deref()?.parse().ok())
    }
}

/// Splits an `acct:` URI (RFC 7565) into user name and domain: `acct:grenoble@emploi.grenoble.fr`
/// gives `("grenoble", "emploi.grenoble.fr")`. Returns `None` for anything else.
pub fn parse_acct(resource: &str) -> Option<(&str, &str)> {
    let rest = resource.strip_prefix("acct:")?;
    let (user, domain) = rest.rsplit_once('@')?;
    let ok = !user.is_empty()
        && !domain.is_empty()
        && !domain.contains(['/', '?', '#', '@'])
        && !user.contains(['/', '?', '#']);
    ok.then_some((user, domain))
}

/// `software` of a NodeInfo document.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NodeInfoSoftware {
    /// Canonical name (`[a-z0-9-]+`), `passerelle` for us.
    pub name: String,
    /// Version string.
    pub version: String,
    /// Source repository URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repository: Option<String>,
    /// Homepage URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub homepage: Option<String>,
    /// Unknown members, kept.
    #[serde(flatten)]
    pub extra: Extra,
}

/// `services` of a NodeInfo document (absent in some real documents, e.g. Wildebeest's).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct NodeInfoServices {
    /// Services the node can retrieve from.
    pub inbound: Vec<String>,
    /// Services the node can publish to.
    pub outbound: Vec<String>,
}

/// `usage.users` of a NodeInfo document.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NodeInfoUsers {
    /// Total users.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total: Option<u64>,
    /// Users active in the last 180 days.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub active_halfyear: Option<u64>,
    /// Users active in the last 30 days.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub active_month: Option<u64>,
}

/// `usage` of a NodeInfo document.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NodeInfoUsage {
    /// User counts.
    pub users: NodeInfoUsers,
    /// Local posts (postings, for us).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub local_posts: Option<u64>,
    /// Local comments.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub local_comments: Option<u64>,
}

/// A NodeInfo 2.1 document.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NodeInfo {
    /// Schema version, `"2.1"`.
    pub version: String,
    /// The server software.
    pub software: NodeInfoSoftware,
    /// Protocols supported (`activitypub`).
    pub protocols: Vec<String>,
    /// Third-party services (tolerated when absent; always written).
    #[serde(default)]
    pub services: NodeInfoServices,
    /// Whether users can register (never, for a node: accounts come from ProConnect/HR).
    pub open_registrations: bool,
    /// Usage statistics.
    pub usage: NodeInfoUsage,
    /// Free-form metadata; ours carries `passerelle.protocolVersion` and the SIREN.
    #[serde(default)]
    pub metadata: serde_json::Map<String, Value>,
}

impl NodeInfo {
    /// The NodeInfo 2.1 document of a Passerelle node: software `passerelle`
    /// `software_version`, protocol `activitypub`, closed registrations, and
    /// `metadata.passerelle` = `{protocolVersion, actor, siren}`.
    pub fn passerelle(
        software_version: &str,
        actor: &ActorId,
        siren: &crate::ids::Siren,
        usage: NodeInfoUsage,
    ) -> Self {
        let mut passerelle = serde_json::Map::new();
        passerelle.insert(
            "protocolVersion".to_owned(),
            Value::String(crate::PROTOCOL_VERSION.to_owned()),
        );
        passerelle.insert("actor".to_owned(), Value::String(actor.to_string()));
        passerelle.insert("siren".to_owned(), Value::String(siren.to_string()));
        let mut metadata = serde_json::Map::new();
        metadata.insert("passerelle".to_owned(), Value::Object(passerelle));
        Self {
            version: "2.1".to_owned(),
            software: NodeInfoSoftware {
                name: "passerelle".to_owned(),
                version: software_version.to_owned(),
                repository: None,
                homepage: None,
                extra: Extra::new(),
            },
            protocols: vec!["activitypub".to_owned()],
            services: NodeInfoServices::default(),
            open_registrations: false,
            usage,
            metadata,
        }
    }

    /// The Passerelle protocol version advertised in `metadata.passerelle.protocolVersion`.
    pub fn passerelle_protocol_version(&self) -> Option<&str> {
        self.metadata
            .get("passerelle")?
            .get("protocolVersion")?
            .as_str()
    }
}

/// One link of the `/.well-known/nodeinfo` document.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NodeInfoLink {
    /// The schema relation, e.g. [`NODEINFO_21_REL`].
    pub rel: String,
    /// Where the NodeInfo document is.
    pub href: String,
}

/// The `/.well-known/nodeinfo` document: links to the NodeInfo documents by schema.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NodeInfoLinks {
    /// The links.
    pub links: Vec<NodeInfoLink>,
}

impl NodeInfoLinks {
    /// The well-known document pointing at one NodeInfo 2.1 URL.
    pub fn v21(href: &str) -> Self {
        Self {
            links: vec![NodeInfoLink {
                rel: NODEINFO_21_REL.to_owned(),
                href: href.to_owned(),
            }],
        }
    }

    /// The NodeInfo 2.1 URL, if listed.
    pub fn href_21(&self) -> Option<&str> {
        self.links
            .iter()
            .find(|l| l.rel == NODEINFO_21_REL)
            .map(|l| l.href.as_str())
    }
}
