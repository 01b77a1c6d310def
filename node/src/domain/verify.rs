//! Offline verification of a signed document (a convention's proof set, or any document
//! with `eddsa-jcs-2022` proofs): who signed what and when, whether each signature holds,
//! and for a convention whether both employers signed. Used by `passerelle verify`; the
//! command reads the files, this module only reads bytes and values.
//!
//! Keys come from actor documents (embedded in the document's `actors` member, adjacent
//! files, or `--actor FILE`) and from `--key [KEYID=]MULTIKEY` arguments. A bare Multikey
//! (without key id) is tried against every proof.
//!
//! Each proof of a set signs the document without any proof, so each is verified alone
//! (the document with that one proof), which gives a verdict per signer.

use passerelle_protocol::canonical::{ParseLimits, parse_strict};
use passerelle_protocol::ids::{ActorId, KeyId};
use passerelle_protocol::keys::PublicKey;
use passerelle_protocol::proof::{self, ProofError, ProofInfo};
use passerelle_protocol::vocab::{Convention, Organization};
use serde_json::Value;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::convention::{datetime_fr, parties_of};

/// Exit codes of `passerelle verify`.
pub mod exit {
    /// Every proof is valid (and, for a convention, both employers signed).
    pub const VALID: u8 = 0;
    /// At least one signature does not verify (altered document, wrong or expired key).
    pub const INVALID: u8 = 10;
    /// Every signature present is valid, but one employer of the convention did not sign.
    pub const INCOMPLETE: u8 = 11;
    /// The file cannot be read, is not strict JSON, or carries no readable proof.
    pub const UNREADABLE: u8 = 12;
    /// No key was found for a proof: give it with `--key` or `--actor`.
    pub const KEY_MISSING: u8 = 13;
}

/// A public key the verifier may use.
#[derive(Debug, Clone)]
pub struct KnownKey {
    /// The key id (`verificationMethod`), or `None` for a bare Multikey tried on every proof.
    pub key_id: Option<String>,
    /// The key.
    pub key: PublicKey,
    /// Name of the actor that publishes it, when known.
    pub owner_name: Option<String>,
    /// When the key stopped being valid for new signatures.
    pub expires: Option<OffsetDateTime>,
}

/// Why a document or a key could not be read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum VerifyError {
    /// The file is not strict JSON (syntax, duplicate keys, too deep or too large).
    #[error("the document is not strict JSON: {0}; export it again from the node")]
    NotJson(#[from] passerelle_protocol::canonical::CanonicalError),
    /// The document has no proof, or its proofs are malformed.
    #[error("the document's proofs cannot be read: {0}")]
    Proofs(ProofError),
    /// The document says it is a convention but is not a valid one.
    #[error("the document has type Convention but does not parse as one: {0}")]
    NotAConvention(String),
    /// A `--key` argument is not a Multikey.
    #[error(
        "--key {arg:?} is not an Ed25519 Multikey (\"z6Mk…\", optionally prefixed by \"KEYID=\"): {reason}"
    )]
    BadKey {
        /// The argument.
        arg: String,
        /// Why.
        reason: String,
    },
    /// An actor document cannot be used.
    #[error(
        "{source_name}: not a usable actor document: {reason}; pass the Organization JSON of the node"
    )]
    BadActor {
        /// Where it came from (file name).
        source_name: String,
        /// Why.
        reason: String,
    },
}

impl VerifyError {
    /// The exit code for this error.
    pub fn exit_code(&self) -> u8 {
        exit::UNREADABLE
    }
}

/// Parses a `--key` argument: `MULTIKEY` or `KEYID=MULTIKEY`.
///
/// # Errors
/// [`VerifyError::BadKey`].
pub fn parse_key_arg(arg: &str) -> Result<KnownKey, VerifyError> {
    let (key_id, multikey) = match arg.rsplit_once('=') {
        Some((id, mk)) => (Some(id.to_owned()), mk),
        None => (None, arg),
    };
    let key = PublicKey::from_multikey(multikey).map_err(|e| VerifyError::BadKey {
        arg: arg.to_owned(),
        reason: e.to_string(),
    })?;
    Ok(KnownKey {
        key_id,
        key,
        owner_name: None,
        expires: None,
    })
}

/// The keys of an actor document (its `assertionMethod`), with the actor's name.
///
/// # Errors
/// [`VerifyError::BadActor`] when it is not an `Organization` or lists no Ed25519 key.
pub fn keys_from_actor(source_name: &str, doc: &Value) -> Result<Vec<KnownKey>, VerifyError> {
    let bad = |reason: String| VerifyError::BadActor {
        source_name: source_name.to_owned(),
        reason,
    };
    let org: Organization = serde_json::from_value(doc.clone()).map_err(|e| bad(e.to_string()))?;
    let keys: Vec<KnownKey> = org
        .assertion_method
        .iter()
        .filter_map(|mk| {
            mk.public_key().ok().map(|key| KnownKey {
                key_id: Some(mk.id.as_str().to_owned()),
                key,
                owner_name: Some(org.name.clone()),
                expires: mk.expires,
            })
        })
        .collect();
    if keys.is_empty() {
        return Err(bad(
            "its assertionMethod lists no Ed25519 Multikey".to_owned()
        ));
    }
    Ok(keys)
}

/// Whether a JSON value looks like an actor document (to pick adjacent files).
pub fn is_actor_document(doc: &Value) -> bool {
    doc.get("type").and_then(Value::as_str) == Some("Organization")
        && doc.get("assertionMethod").is_some()
}

/// The actor documents embedded in a document's `actors` member.
pub fn embedded_actors(doc: &Value) -> Vec<Value> {
    match doc.get("actors") {
        Some(Value::Array(items)) => items
            .iter()
            .filter(|v| is_actor_document(v))
            .cloned()
            .collect(),
        Some(v) if is_actor_document(v) => vec![v.clone()],
        _ => Vec::new(),
    }
}

/// The role of a signer in a two-party document.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// The agent's employer.
    Origin,
    /// The receiving employer.
    Host,
}

impl Role {
    fn fr(self) -> &'static str {
        match self {
            Self::Origin => "employeur d'origine",
            Self::Host => "organisme d'accueil",
        }
    }
    fn en(self) -> &'static str {
        match self {
            Self::Origin => "origin employer",
            Self::Host => "host employer",
        }
    }
}

/// The verdict on one proof.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProofStatus {
    /// The signature verifies.
    Valid,
    /// The signature does not verify (the reason, in English).
    Invalid(String),
    /// The key had expired when the proof says it was made.
    KeyExpired {
        /// When the key expired.
        expired: OffsetDateTime,
    },
    /// No key found for this proof.
    NoKey,
}

/// One proof, as reported.
#[derive(Debug, Clone)]
pub struct ProofReport {
    /// Position in the proof set.
    pub index: usize,
    /// The key id.
    pub verification_method: String,
    /// The key's controller.
    pub signer: Option<ActorId>,
    /// Its name, when known (actor document or the convention's `parties`).
    pub signer_name: Option<String>,
    /// Its role, for a two-party document.
    pub role: Option<Role>,
    /// When signed, as the proof says.
    pub created: Option<OffsetDateTime>,
    /// The verdict.
    pub status: ProofStatus,
}

/// The overall verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Every proof valid, and both employers signed a convention.
    Valid,
    /// A proof does not verify.
    Invalid,
    /// Valid proofs, but a convention party did not sign.
    Incomplete,
    /// A proof could not be checked for lack of its key.
    KeyMissing,
}

/// The report of [`verify_document`].
#[derive(Debug, Clone)]
pub struct Report {
    /// The document's `type`.
    pub doc_type: String,
    /// The document's `id`.
    pub doc_id: Option<String>,
    /// One entry per proof, in order.
    pub proofs: Vec<ProofReport>,
    /// For a convention: the employers without a valid proof.
    pub missing: Vec<(Role, ActorId)>,
    /// The verdict.
    pub outcome: Outcome,
}

impl Report {
    /// The exit code for this verdict ([`exit`]).
    pub fn exit_code(&self) -> u8 {
        match self.outcome {
            Outcome::Valid => exit::VALID,
            Outcome::Invalid => exit::INVALID,
            Outcome::Incomplete => exit::INCOMPLETE,
            Outcome::KeyMissing => exit::KEY_MISSING,
        }
    }

    /// The report in French then English, one line per statement.
    pub fn lines(&self) -> Vec<String> {
        let mut out = vec![format!(
            "Document {} {} — {} proof(s) / preuve(s)",
            self.doc_type,
            self.doc_id.as_deref().unwrap_or("(sans id / no id)"),
            self.proofs.len()
        )];
        for p in &self.proofs {
            let who = p
                .signer_name
                .clone()
                .or_else(|| p.signer.as_ref().map(|s| s.as_str().to_owned()))
                .unwrap_or_else(|| p.verification_method.clone());
            let (role_fr, role_en) = p.role.map_or((String::new(), String::new()), |r| {
                (format!(" ({})", r.fr()), format!(" ({})", r.en()))
            });
            let when_fr = p.created.map_or_else(
                || "à une date non indiquée".to_owned(),
                |c| format!("le {}", datetime_fr(c)),
            );
            let when_en = p.created.map_or_else(
                || "at an unstated date".to_owned(),
                |c| {
                    format!(
                        "on {}",
                        c.format(&Rfc3339).unwrap_or_else(|_| c.to_string())
                    )
                },
            );
            let (verdict_fr, verdict_en) = match &p.status {
                ProofStatus::Valid => ("signature valide".to_owned(), "valid signature".to_owned()),
                ProofStatus::Invalid(reason) => (
                    "signature INVALIDE (document ou preuve modifié, ou clé d'un autre signataire)"
                        .to_owned(),
                    format!("INVALID signature: {reason}"),
                ),
                ProofStatus::KeyExpired { expired } => (
                    format!(
                        "signature INVALIDE : la clé avait expiré le {}",
                        datetime_fr(*expired)
                    ),
                    format!("INVALID signature: the key expired at {expired}"),
                ),
                ProofStatus::NoKey => (
                    "signature NON VÉRIFIÉE : clé introuvable, fournissez --key ou --actor"
                        .to_owned(),
                    "signature NOT CHECKED: key not found, pass --key or --actor".to_owned(),
                ),
            };
            out.push(format!(
                "« Signée par {who}{role_fr} {when_fr} — {verdict_fr} »"
            ));
            out.push(format!(
                "  Signed by {who}{role_en} {when_en} — {verdict_en}"
            ));
            out.push(format!("  Clé / key: {}", p.verification_method));
        }
        for (role, actor) in &self.missing {
            out.push(format!(
                "Signature manquante : {} ({}) / Missing signature: {} ({})",
                role.fr(),
                actor,
                role.en(),
                actor
            ));
        }
        out.push(match self.outcome {
            Outcome::Valid => "Résultat : toutes les signatures sont valides / Result: every signature is valid".to_owned(),
            Outcome::Invalid => "Résultat : signature invalide / Result: invalid signature".to_owned(),
            Outcome::Incomplete => "Résultat : convention incomplète, un employeur n'a pas signé / Result: incomplete, one employer has not signed".to_owned(),
            Outcome::KeyMissing => "Résultat : signature non vérifiable sans sa clé / Result: a signature cannot be checked without its key".to_owned(),
        });
        out
    }
}

/// Verifies the document in `bytes` with the keys of `actors` (actor documents, named by
/// their source) and `keys` (from the command line). Actors embedded in the document are
/// used too.
///
/// # Errors
/// [`VerifyError`] when the document or an actor cannot be read (exit
/// [`exit::UNREADABLE`]); a readable document always gives a [`Report`].
pub fn verify_document(
    bytes: &[u8],
    actors: &[(String, Value)],
    keys: &[KnownKey],
) -> Result<Report, VerifyError> {
    let doc = parse_strict(bytes, &ParseLimits::default())?;
    let infos = proof::proofs(&doc).map_err(VerifyError::Proofs)?;
    let mut known: Vec<KnownKey> = keys.to_vec();
    let mut names: Vec<(ActorId, String)> = Vec::new();
    let embedded: Vec<(String, Value)> = embedded_actors(&doc)
        .into_iter()
        .map(|v| ("embedded actor".to_owned(), v))
        .collect();
    for (source, actor) in actors.iter().chain(embedded.iter()) {
        known.extend(keys_from_actor(source, actor)?);
        if let Ok(org) = serde_json::from_value::<Organization>(actor.clone()) {
            names.push((org.id, org.name));
        }
    }
    let doc_type = doc
        .get("type")
        .and_then(Value::as_str)
        .unwrap_or("(sans type / untyped)")
        .to_owned();
    let convention = if doc_type == "Convention" {
        Some(
            serde_json::from_value::<Convention>(doc.clone())
                .map_err(|e| VerifyError::NotAConvention(e.to_string()))?,
        )
    } else {
        None
    };
    if let Some(parties) = convention.as_ref().and_then(parties_of) {
        names.push((parties.origin.id, parties.origin.name));
        names.push((parties.host.id, parties.host.name));
    }
    let proof_values: Vec<Value> = match doc.get("proof") {
        Some(Value::Array(items)) => items.clone(),
        Some(p) => vec![p.clone()],
        None => Vec::new(),
    };
    let mut reports = Vec::new();
    for (info, proof_value) in infos.iter().zip(proof_values) {
        let mut single = doc.clone();
        if let Some(map) = single.as_object_mut() {
            map.insert("proof".into(), proof_value);
        }
        let signer = info
            .verification_method
            .parse::<KeyId>()
            .ok()
            .map(|k| k.controller());
        let role = match (&convention, &signer) {
            (Some(c), Some(s)) if *s == c.origin => Some(Role::Origin),
            (Some(c), Some(s)) if *s == c.host => Some(Role::Host),
            _ => None,
        };
        let signer_name = signer
            .as_ref()
            .and_then(|s| names.iter().find(|(id, _)| id == s).map(|(_, n)| n.clone()));
        reports.push(ProofReport {
            index: info.index,
            verification_method: info.verification_method.clone(),
            signer,
            signer_name,
            role,
            created: info.created,
            status: match check_one(single, info, &known) {
                // A convention is signed by its two employers only.
                ProofStatus::Valid if convention.is_some() && role.is_none() => {
                    ProofStatus::Invalid(
                        "the key belongs to neither the origin nor the host of the convention"
                            .to_owned(),
                    )
                }
                other => other,
            },
        });
    }
    let missing: Vec<(Role, ActorId)> = match &convention {
        Some(c) => [(Role::Origin, &c.origin), (Role::Host, &c.host)]
            .into_iter()
            .filter(|(role, _)| {
                !reports
                    .iter()
                    .any(|p| p.role == Some(*role) && p.status == ProofStatus::Valid)
            })
            .map(|(role, id)| (role, id.clone()))
            .collect(),
        None => Vec::new(),
    };
    let outcome = if reports.iter().any(|p| {
        matches!(
            p.status,
            ProofStatus::Invalid(_) | ProofStatus::KeyExpired { .. }
        )
    }) {
        Outcome::Invalid
    } else if reports.iter().any(|p| p.status == ProofStatus::NoKey) {
        Outcome::KeyMissing
    } else if !missing.is_empty() {
        Outcome::Incomplete
    } else {
        Outcome::Valid
    };
    Ok(Report {
        doc_id: doc.get("id").and_then(Value::as_str).map(str::to_owned),
        doc_type,
        proofs: reports,
        missing,
        outcome,
    })
}

/// Verifies the document carrying one proof with every candidate key.
fn check_one(single: Value, info: &ProofInfo, known: &[KnownKey]) -> ProofStatus {
    let vm = &info.verification_method;
    let candidates: Vec<&KnownKey> = known
        .iter()
        .filter(|k| k.key_id.as_deref().is_none_or(|id| id == vm))
        .collect();
    if candidates.is_empty() {
        return ProofStatus::NoKey;
    }
    let mut last_error = None;
    for k in candidates {
        match proof::verify(single.clone(), &[(vm.clone(), k.key)]) {
            Ok(_) => {
                if let (Some(expired), Some(created)) = (k.expires, info.created)
                    && created >= expired
                {
                    return ProofStatus::KeyExpired { expired };
                }
                return ProofStatus::Valid;
            }
            Err(e) => last_error = Some(e.to_string()),
        }
    }
    ProofStatus::Invalid(last_error.unwrap_or_default())
}
