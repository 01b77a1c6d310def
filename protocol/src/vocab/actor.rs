//! The node actor: one node = one legal unit (SIREN) = one `Organization`.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use time::OffsetDateTime;

use super::{Extra, Report, Rule, Validate, type_tag};
use crate::ids::{ActorId, CodeDepartement, CodeRegion, CogCommune, KeyId, ObjectId, Siren, Siret};
use crate::keys::{KeyError, PublicKey};

type_tag!(
    /// The `type` of an [`Organization`].
    OrganizationType = "Organization"
);
type_tag!(
    /// The `type` of a [`Multikey`].
    MultikeyType = "Multikey"
);

/// The *versant* of the fonction publique.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Versant {
    /// Fonction publique de l'État.
    Fpe,
    /// Fonction publique territoriale.
    Fpt,
    /// Fonction publique hospitalière.
    Fph,
}

/// The kind of organisation (domain.md §7.1), wire values snake_case.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum OrganisationKind {
    /// Commune.
    Commune,
    /// Commune nouvelle.
    CommuneNouvelle,
    /// Département.
    Departement,
    /// Région.
    Region,
    /// Collectivité à statut particulier (Ville de Paris, Métropole de Lyon, Corse…).
    CollectiviteStatutParticulier,
    /// Métropole.
    Metropole,
    /// Communauté urbaine.
    CommunauteUrbaine,
    /// Communauté d'agglomération.
    CommunauteAgglomeration,
    /// Communauté de communes.
    CommunauteCommunes,
    /// Établissement public territorial (Grand Paris).
    EtablissementPublicTerritorial,
    /// Syndicat intercommunal.
    SyndicatIntercommunal,
    /// Syndicat mixte fermé.
    SyndicatMixteFerme,
    /// Syndicat mixte ouvert.
    SyndicatMixteOuvert,
    /// Pôle d'équilibre territorial et rural.
    Petr,
    /// Centre communal d'action sociale.
    Ccas,
    /// Centre intercommunal d'action sociale.
    Cias,
    /// Centre de gestion.
    Cdg,
    /// Centre national de la fonction publique territoriale.
    Cnfpt,
    /// Service départemental d'incendie et de secours.
    Sdis,
    /// Office public de l'habitat.
    Oph,
    /// Other local public administrative body.
    EpaLocalAutre,
    /// State administration.
    EtatAdministration,
    /// State public body.
    EtatEtablissement,
    /// Hospital-sector body.
    FphEtablissement,
    /// Groupement d'intérêt public.
    Gip,
    /// Association or foundation.
    AssociationFondation,
    /// Anything else.
    Autre,
}

impl OrganisationKind {
    /// Whether this is a *collectivité territoriale* proper (commune, département, région,
    /// collectivité à statut particulier).
    pub fn is_collectivite_territoriale(self) -> bool {
        matches!(
            self,
            Self::Commune
                | Self::CommuneNouvelle
                | Self::Departement
                | Self::Region
                | Self::CollectiviteStatutParticulier
        )
    }
}

/// A public key published in the actor's `assertionMethod` (FEP-521a Multikey).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Multikey {
    /// The key id: the actor id with a fragment.
    pub id: KeyId,
    /// Always `"Multikey"`.
    #[serde(rename = "type")]
    pub kind: MultikeyType,
    /// The actor that controls the key.
    pub controller: ActorId,
    /// `z` + base58btc(multicodec ‖ key); Ed25519 keys start with `z6Mk`.
    pub public_key_multibase: String,
    /// When the key stops being valid for new signatures (rotated keys stay listed).
    #[serde(
        default,
        with = "time::serde::rfc3339::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub expires: Option<OffsetDateTime>,
    /// Unknown properties, kept.
    #[serde(flatten)]
    pub extra: Extra,
}

impl Multikey {
    /// Builds the Multikey document of `key` with id `id`, controlled by `id`'s actor.
    pub fn new(id: KeyId, key: &PublicKey) -> Self {
        Self {
            controller: id.controller(),
            id,
            kind: MultikeyType::Tag,
            public_key_multibase: key.to_multikey(),
            expires: None,
            extra: Extra::new(),
        }
    }

    /// The Ed25519 public key.
    ///
    /// # Errors
    /// [`KeyError::InvalidMultikey`] when it is not an Ed25519 Multikey (e.g. an RSA one).
    pub fn public_key(&self) -> Result<PublicKey, KeyError> {
        PublicKey::from_multikey(&self.public_key_multibase)
    }
}

/// The service endpoints of an actor.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Endpoints {
    /// The node's shared inbox.
    pub shared_inbox: ObjectId,
    /// Unknown properties, kept.
    #[serde(flatten)]
    pub extra: Extra,
}

/// What the node's organisation is: the `collectivite` block of the actor.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Collectivite {
    /// SIREN of the legal unit.
    pub siren: Siren,
    /// Kind of organisation.
    pub kind: OrganisationKind,
    /// Versant of its staff.
    pub versant: Versant,
    /// Establishments (SIRET) of the legal unit.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sirets: Vec<Siret>,
    /// INSEE *catégorie juridique* (4 digits, e.g. `7210` commune).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub categorie_juridique: Option<String>,
    /// COG code of the commune (seat, or the commune itself).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub commune: Option<CogCommune>,
    /// Département code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub departement: Option<CodeDepartement>,
    /// Région code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<CodeRegion>,
    /// SIREN of the EPCI the organisation is a member of (for the reimbursement waiver).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub epci_siren: Option<Siren>,
    /// SIREN of the collectivité it is attached to (e.g. a CCAS to its commune).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attached_to_siren: Option<Siren>,
    /// Unknown properties, kept.
    #[serde(flatten)]
    pub extra: Extra,
}

/// A node's actor document.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Organization {
    /// JSON-LD context (see [`super::CONTEXT`]).
    #[serde(rename = "@context", default, skip_serializing_if = "Option::is_none")]
    pub context: Option<Value>,
    /// The actor id.
    pub id: ActorId,
    /// Always `"Organization"`.
    #[serde(rename = "type")]
    pub kind: OrganizationType,
    /// The WebFinger user name (`acct:{preferredUsername}@{domain}`).
    pub preferred_username: String,
    /// Display name, e.g. "Ville de Grenoble".
    pub name: String,
    /// Short description.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub summary: Option<String>,
    /// The actor's inbox.
    pub inbox: ObjectId,
    /// The actor's outbox (an `OrderedCollection`).
    pub outbox: ObjectId,
    /// Followers collection (partners).
    pub followers: ObjectId,
    /// Following collection.
    pub following: ObjectId,
    /// Endpoints (shared inbox).
    pub endpoints: Endpoints,
    /// Public keys, current and rotated (with `expires`).
    pub assertion_method: Vec<Multikey>,
    /// What the organisation is.
    pub collectivite: Collectivite,
    /// Passerelle protocol version spoken (see [`crate::PROTOCOL_VERSION`]).
    pub protocol_version: String,
    /// When the actor was first published.
    #[serde(
        default,
        with = "time::serde::rfc3339::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub published: Option<OffsetDateTime>,
    /// When the actor was last updated (key rotation…).
    #[serde(
        default,
        with = "time::serde::rfc3339::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub updated: Option<OffsetDateTime>,
    /// Data Integrity proof (or proof set), kept as received.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proof: Option<Value>,
    /// Unknown properties, kept.
    #[serde(flatten)]
    pub extra: Extra,
}

impl Organization {
    /// A node's actor with the conventional layout: `inbox`, `outbox`, `followers` and
    /// `following` under the actor id (`{id}/inbox`…), the shared inbox at `{origin}/inbox`,
    /// [`super::CONTEXT`] and [`crate::PROTOCOL_VERSION`].
    ///
    /// # Errors
    /// [`crate::ids::IdError`] if a derived URL is not a valid id (it always is for a valid
    /// actor id without query).
    pub fn new(
        id: ActorId,
        preferred_username: &str,
        name: &str,
        collectivite: Collectivite,
        assertion_method: Vec<Multikey>,
    ) -> Result<Self, crate::ids::IdError> {
        let base = id.as_str().trim_end_matches('/');
        let under = |leaf: &str| format!("{base}/{leaf}").parse::<ObjectId>();
        let shared = format!("{}/inbox", id.origin().ascii_serialization()).parse()?;
        Ok(Self {
            context: Some(super::context()),
            inbox: under("inbox")?,
            outbox: under("outbox")?,
            followers: under("followers")?,
            following: under("following")?,
            endpoints: Endpoints {
                shared_inbox: shared,
                extra: Extra::new(),
            },
            id,
            kind: OrganizationType::Tag,
            preferred_username: preferred_username.to_owned(),
            name: name.to_owned(),
            summary: None,
            assertion_method,
            collectivite,
            protocol_version: crate::PROTOCOL_VERSION.to_owned(),
            published: None,
            updated: None,
            proof: None,
            extra: Extra::new(),
        })
    }

    /// The key `id`, if listed.
    pub fn key(&self, id: &KeyId) -> Option<&Multikey> {
        self.assertion_method.iter().find(|k| &k.id == id)
    }

    /// The keys valid for a signature made at `at` (not expired at that time).
    pub fn keys_valid_at(&self, at: OffsetDateTime) -> impl Iterator<Item = &Multikey> {
        self.assertion_method
            .iter()
            .filter(move |k| k.expires.is_none_or(|e| at < e))
    }
}

fn is_username(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.bytes().all(|b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_' || b == b'.'
        })
}

impl Validate for Organization {
    fn check(&self, r: &mut Report<'_>) {
        r.check_id_policy("id", self.id.as_url());
        if !is_username(&self.preferred_username) {
            r.push(
                "preferredUsername",
                &self.preferred_username,
                Rule::Range {
                    rule: "1 to 64 lower-case ASCII letters, digits, '-', '_' or '.'",
                },
            );
        }
        if self.name.trim().is_empty() {
            r.required("name", "the organisation's name");
        }
        for (field, url) in [
            ("inbox", &self.inbox),
            ("outbox", &self.outbox),
            ("followers", &self.followers),
            ("following", &self.following),
        ] {
            r.check_id_policy(field, url.as_url());
            r.check_same_origin(field, url, &self.id, "the actor");
        }
        r.nested("endpoints", |r| {
            r.check_same_origin(
                "sharedInbox",
                &self.endpoints.shared_inbox,
                &self.id,
                "the actor",
            );
        });
        if self.assertion_method.is_empty() {
            r.required("assertionMethod", "at least one Ed25519 Multikey");
        }
        r.nested("assertionMethod", |r| {
            for (i, key) in self.assertion_method.iter().enumerate() {
                r.nested(i.to_string(), |r| {
                    if key.controller != self.id {
                        r.push(
                            "controller",
                            key.controller.as_str(),
                            Rule::ActorMismatch {
                                what: "controller",
                                other: "the actor id",
                            },
                        );
                    }
                    if key.id.controller() != self.id {
                        r.push(
                            "id",
                            key.id.as_str(),
                            Rule::ActorMismatch {
                                what: "key id (without fragment)",
                                other: "the actor id",
                            },
                        );
                    }
                    if let Err(e) = key.public_key() {
                        r.push(
                            "publicKeyMultibase",
                            &key.public_key_multibase,
                            Rule::Key {
                                reason: e.to_string(),
                            },
                        );
                    }
                });
            }
        });
        if self
            .protocol_version
            .split('.')
            .next()
            .is_none_or(|m| m.parse::<u32>().is_err())
        {
            r.push(
                "protocolVersion",
                &self.protocol_version,
                Rule::Range {
                    rule: "a version such as \"1.0\"",
                },
            );
        }
        if let (Some(p), Some(u)) = (self.published, self.updated)
            && u < p
        {
            r.push(
                "updated",
                u.to_string(),
                Rule::DateOrder {
                    earlier: "published",
                    later: "updated",
                },
            );
        }
    }
}
