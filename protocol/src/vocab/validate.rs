//! Validation of typed messages: every problem at once, each naming the field (a JSON path),
//! the value and the rule, in English for logs and in French for HR officers.
//!
//! Parsing (serde) already refuses what the types cannot hold (a bad SIREN, an unknown
//! catégorie, a malformed id). [`Validate`] checks the rules that span fields or need
//! context: statutory fields present, durations and quotités within the law, dates in
//! order, ids on their actor's origin, addressing of private messages.

use std::fmt;

use serde_json::Value;

use crate::ids::{ActorId, ObjectId, UrlPolicy};

/// What validation needs to know about the receiving node.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ValidationContext {
    /// Whether plain `http` ids on loopback hosts are accepted (development mode only).
    pub url_policy: UrlPolicy,
}

impl ValidationContext {
    /// The production context: `https` ids only.
    pub fn production() -> Self {
        Self {
            url_policy: UrlPolicy::HttpsOnly,
        }
    }

    /// The development context: loopback `http` ids accepted.
    pub fn development() -> Self {
        Self {
            url_policy: UrlPolicy::AllowLoopbackHttp,
        }
    }
}

/// A rule a message breaks. The `Display` text is English (logs); [`Rule::message_fr`] is
/// the French text shown to HR officers.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Rule {
    /// A required field is absent or empty.
    #[error("{what} is required")]
    Required {
        /// The field, in words.
        what: &'static str,
    },
    /// A field that is not allowed for this kind or context is present.
    #[error("{what} is not allowed here")]
    NotAllowed {
        /// The field, in words.
        what: &'static str,
    },
    /// A MAD lasts more than 36 months in one period.
    #[error(
        "a mise à disposition lasts at most 36 months per period (CGFP L512-7, décret 2008-580); got {months} months"
    )]
    MadTooLong {
        /// The duration found, in months.
        months: u32,
    },
    /// A project mission's quotité is outside 10–40 %.
    #[error("a project mission takes 10 to 40 % of working time; got {pct} %")]
    MissionQuotite {
        /// The quotité found.
        pct: u32,
    },
    /// A project mission lasts more than 24 months.
    #[error("a project mission lasts at most 24 months; got {months} months")]
    MissionTooLong {
        /// The duration found, in months.
        months: u32,
    },
    /// A percentage is outside its allowed range.
    #[error("percentage must be between {min} and {max}; got {pct}")]
    Percentage {
        /// Lower bound.
        min: u32,
        /// Upper bound.
        max: u32,
        /// Value found.
        pct: u32,
    },
    /// Two dates are in the wrong order.
    #[error("{earlier} must not be after {later}")]
    DateOrder {
        /// The field that must come first.
        earlier: &'static str,
        /// The field that must come after.
        later: &'static str,
    },
    /// An id is not on the origin (scheme, host, port) of the actor that owns it.
    #[error(
        "id must be on the origin of {owner} ({expected}); a node only speaks for its own objects"
    )]
    OriginMismatch {
        /// Who owns the object ("actor", "attributedTo").
        owner: &'static str,
        /// The expected origin, serialized.
        expected: String,
    },
    /// Two fields that must name the same actor differ.
    #[error("{what} must equal {other}")]
    ActorMismatch {
        /// The field checked.
        what: &'static str,
        /// The field it must equal.
        other: &'static str,
    },
    /// An id uses plain `http` while the node accepts `https` only.
    #[error("plain http ids are accepted only in development mode on loopback; use https")]
    PlainHttp,
    /// A minted id does not end in a UUIDv7.
    #[error(
        "ids minted by a node end in a UUIDv7 (e.g. https://ville.example/postings/0190c5d2-…)"
    )]
    NotUuidV7,
    /// The `@context` does not list the required contexts.
    #[error("@context must list {missing}")]
    Context {
        /// The missing context URL.
        missing: &'static str,
    },
    /// A private message is addressed too widely.
    #[error("{what} must be addressed only to {allowed}, never to the public or to collections")]
    Addressing {
        /// The message kind.
        what: &'static str,
        /// Who may receive it.
        allowed: &'static str,
    },
    /// A property that would carry personal data forbidden in a pseudonymous profile.
    #[error(
        "property {property:?} looks like personal data (name, photo, age, salary or evaluation) and is forbidden in an agent profile"
    )]
    PersonalData {
        /// The property name found.
        property: String,
    },
    /// A number is out of range.
    #[error("must be {rule}")]
    Range {
        /// The range, in words ("at least 1").
        rule: &'static str,
    },
    /// A key document is unusable.
    #[error("invalid key: {reason}")]
    Key {
        /// Why.
        reason: String,
    },
    /// The agent's statut never allows a *mise à disposition*.
    #[error("this statut cannot be mis à disposition: {rule}")]
    Ineligible {
        /// The rule and its source.
        rule: &'static str,
    },
    /// The object's kind-specific body does not match its declared kind.
    #[error("{what}")]
    Inconsistent {
        /// The inconsistency, in words.
        what: &'static str,
    },
    /// A string, or a member name, holds the character U+0000 (JSON `\u0000`), which no
    /// message may carry ([`check_no_nul`]).
    #[error("the character U+0000 is not allowed in any string or member name")]
    NulCharacter,
}

impl Rule {
    /// A stable machine code for the rule (`"required"`, `"mad_too_long"`…), for APIs and
    /// test manifests.
    pub fn code(&self) -> &'static str {
        match self {
            Rule::Required { .. } => "required",
            Rule::NotAllowed { .. } => "not_allowed",
            Rule::MadTooLong { .. } => "mad_too_long",
            Rule::MissionQuotite { .. } => "mission_quotite",
            Rule::MissionTooLong { .. } => "mission_too_long",
            Rule::Percentage { .. } => "percentage",
            Rule::DateOrder { .. } => "date_order",
            Rule::OriginMismatch { .. } => "origin_mismatch",
            Rule::ActorMismatch { .. } => "actor_mismatch",
            Rule::PlainHttp => "plain_http",
            Rule::NotUuidV7 => "not_uuid_v7",
            Rule::Context { .. } => "context",
            Rule::Addressing { .. } => "addressing",
            Rule::PersonalData { .. } => "personal_data",
            Rule::Range { .. } => "range",
            Rule::Key { .. } => "key",
            Rule::Inconsistent { .. } => "inconsistent",
            Rule::Ineligible { .. } => "ineligible",
            Rule::NulCharacter => "nul_character",
        }
    }

    /// The French message for HR officers.
    pub fn message_fr(&self) -> String {
        match self {
            Rule::Required { what } => format!("Champ obligatoire manquant : {what}."),
            Rule::NotAllowed { what } => format!("Champ non autorisé ici : {what}."),
            Rule::MadTooLong { months } => format!(
                "La durée d'une mise à disposition ne peut excéder 36 mois (CGFP L512-7, décret 2008-580) ; durée indiquée : {months} mois."
            ),
            Rule::MissionQuotite { pct } => format!(
                "Une mission d'appui temporaire au projet occupe de 10 à 40 % du temps de travail ; quotité indiquée : {pct} %."
            ),
            Rule::MissionTooLong { months } => format!(
                "Une mission d'appui temporaire au projet dure au plus 24 mois ; durée indiquée : {months} mois."
            ),
            Rule::Percentage { min, max, pct } => {
                format!("Le pourcentage doit être compris entre {min} et {max} ; valeur indiquée : {pct}.")
            }
            Rule::DateOrder { earlier, later } => {
                format!("Les dates sont dans le mauvais ordre : « {earlier} » doit précéder « {later} ».")
            }
            Rule::OriginMismatch { owner, expected } => format!(
                "L'identifiant doit appartenir au domaine de son émetteur ({owner} : {expected}) ; un nœud ne publie que ses propres objets."
            ),
            Rule::ActorMismatch { what, other } => {
                format!("« {what} » doit désigner le même acteur que « {other} ».")
            }
            Rule::PlainHttp => "Les identifiants doivent utiliser https (http n'est admis qu'en développement, en boucle locale).".to_owned(),
            Rule::NotUuidV7 => "L'identifiant d'un objet doit se terminer par un UUIDv7.".to_owned(),
            Rule::Context { missing } => format!("Le contexte JSON-LD doit contenir {missing}."),
            Rule::Addressing { what, allowed } => format!(
                "{what} ne peut être adressé qu'à {allowed}, jamais au public ni à une collection."
            ),
            Rule::PersonalData { property } => format!(
                "Le profil d'agent est pseudonyme : le champ « {property} » (nom, photo, âge, rémunération ou évaluation) est interdit."
            ),
            Rule::Range { rule } => format!("Valeur hors limites : doit être {rule}."),
            Rule::Key { reason } => format!("Clé publique invalide : {reason}."),
            Rule::Inconsistent { what } => format!("Incohérence : {what}."),
            Rule::NulCharacter => "Le caractère nul (U+0000) n'est admis dans aucun texte.".to_owned(),
            Rule::Ineligible { .. } => "Seuls les fonctionnaires titulaires, et les contractuels en CDI dans certains cas, peuvent être mis à disposition (jamais un stagiaire ni un contractuel en CDD).".to_owned(),
        }
    }
}

/// Problems listed by [`check_no_nul`] at most: a document full of them is refused as well
/// with the first ones.
const MAX_NUL_PROBLEMS: usize = 20;

/// Checks that no string of `value`, and no member name, holds U+0000 (spec/protocol.md
/// §4.2). JSON allows the character (escaped, `\u0000`), but database text columns cannot
/// hold it: a message carrying it could be accepted and then never stored. Run on the
/// document as received, before it is parsed into a [`crate::vocab::Message`], whose
/// [`Validate`] rules see typed fields only.
///
/// # Errors
/// One problem per string holding it (the first [`MAX_NUL_PROBLEMS`]): the pointer of the
/// string, or of the object whose member name holds it.
pub fn check_no_nul(value: &Value) -> Result<(), Problems> {
    fn found(out: &mut Vec<Problem>, path: &str, text: &str) {
        if out.len() < MAX_NUL_PROBLEMS {
            out.push(Problem {
                path: if path.is_empty() {
                    "/".to_owned()
                } else {
                    path.to_owned()
                },
                value: serde_json::to_string(text).unwrap_or_else(|_| "?".to_owned()),
                rule: Rule::NulCharacter,
            });
        }
    }
    fn walk(value: &Value, path: &mut String, out: &mut Vec<Problem>) {
        if out.len() >= MAX_NUL_PROBLEMS {
            return;
        }
        match value {
            Value::String(s) if s.contains('\0') => found(out, path, s),
            Value::Array(items) => {
                for (i, item) in items.iter().enumerate() {
                    let len = path.len();
                    path.push('/');
                    path.push_str(&i.to_string());
                    walk(item, path, out);
                    path.truncate(len);
                }
            }
            Value::Object(map) => {
                for (k, v) in map {
                    if k.contains('\0') {
                        found(out, path, k);
                    }
                    let len = path.len();
                    path.push('/');
                    // A name holding U+0000 is shown escaped: the pointer ends up in
                    // error texts, which are stored.
                    path.push_str(
                        &k.replace('~', "~0")
                            .replace('/', "~1")
                            .replace('\0', "\\u0000"),
                    );
                    walk(v, path, out);
                    path.truncate(len);
                }
            }
            _ => {}
        }
    }
    // The common case, without building a path: no string holds it.
    fn any_nul(value: &Value) -> bool {
        match value {
            Value::String(s) => s.contains('\0'),
            Value::Array(items) => items.iter().any(any_nul),
            Value::Object(map) => map.iter().any(|(k, v)| k.contains('\0') || any_nul(v)),
            _ => false,
        }
    }
    if !any_nul(value) {
        return Ok(());
    }
    let mut out = Vec::new();
    walk(value, &mut String::new(), &mut out);
    if out.is_empty() {
        Ok(())
    } else {
        Err(Problems(out))
    }
}

/// One problem: where (JSON path), what value, which rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// JSON path of the field, e.g. `/body/durationMonths`.
    pub path: String,
    /// The offending value as compact JSON (`null` when absent).
    pub value: String,
    /// The rule broken.
    pub rule: Rule,
}

impl Problem {
    /// The French message for HR officers: the rule, then the field.
    pub fn message_fr(&self) -> String {
        format!("{} (champ {})", self.rule.message_fr(), self.path)
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} = {}: {}", self.path, self.value, self.rule)
    }
}

impl std::error::Error for Problem {}

/// Every problem found in a message (never empty when returned as an error).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Problems(pub Vec<Problem>);

impl Problems {
    /// The problems.
    pub fn iter(&self) -> std::slice::Iter<'_, Problem> {
        self.0.iter()
    }

    /// Whether any problem breaks a rule matching `pred`.
    pub fn any(&self, pred: impl Fn(&Rule) -> bool) -> bool {
        self.0.iter().any(|p| pred(&p.rule))
    }

    /// The French messages, one per problem.
    pub fn messages_fr(&self) -> Vec<String> {
        self.0.iter().map(Problem::message_fr).collect()
    }
}

impl fmt::Display for Problems {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} validation problem(s)", self.0.len())?;
        for p in &self.0 {
            write!(f, "; {p}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Problems {}

/// Collects problems while walking a message; paths are JSON pointers.
#[derive(Debug)]
pub struct Report<'c> {
    ctx: &'c ValidationContext,
    path: Vec<String>,
    problems: Vec<Problem>,
}

impl<'c> Report<'c> {
    /// An empty report under `ctx`.
    pub fn new(ctx: &'c ValidationContext) -> Self {
        Self {
            ctx,
            path: Vec::new(),
            problems: Vec::new(),
        }
    }

    /// The validation context.
    pub fn ctx(&self) -> &ValidationContext {
        self.ctx
    }

    fn pointer(&self, leaf: &str) -> String {
        let mut s = String::new();
        for seg in self
            .path
            .iter()
            .map(String::as_str)
            .chain((!leaf.is_empty()).then_some(leaf))
        {
            s.push('/');
            s.push_str(&seg.replace('~', "~0").replace('/', "~1"));
        }
        if s.is_empty() {
            s.push('/');
        }
        s
    }

    /// Records a problem at `field` (relative to the current path) with its value.
    pub fn push(&mut self, field: &str, value: impl serde::Serialize, rule: Rule) {
        let value = serde_json::to_string(&value).unwrap_or_else(|_| "?".to_owned());
        let path = self.pointer(field);
        self.problems.push(Problem { path, value, rule });
    }

    /// Records a missing field.
    pub fn required(&mut self, field: &str, what: &'static str) {
        self.push(field, Value::Null, Rule::Required { what });
    }

    /// Runs `f` with `segment` appended to the path.
    pub fn nested(&mut self, segment: impl Into<String>, f: impl FnOnce(&mut Self)) {
        self.path.push(segment.into());
        f(self);
        self.path.pop();
    }

    /// Checks an id against the URL policy.
    pub fn check_id_policy(&mut self, field: &str, id: &url::Url) {
        if self.ctx.url_policy == UrlPolicy::HttpsOnly && id.scheme() != "https" {
            self.push(field, id.as_str(), Rule::PlainHttp);
        }
    }

    /// Checks that `id` is on the origin of `owner`.
    pub fn check_same_origin(
        &mut self,
        field: &str,
        id: &ObjectId,
        owner: &ActorId,
        who: &'static str,
    ) {
        if !id.same_origin(owner) {
            self.push(
                field,
                id.as_str(),
                Rule::OriginMismatch {
                    owner: who,
                    expected: owner.origin().ascii_serialization(),
                },
            );
        }
    }

    /// Checks that a minted id ends in a UUIDv7.
    pub fn check_minted(&mut self, field: &str, id: &ObjectId) {
        if id.uuid_v7().is_none() {
            self.push(field, id.as_str(), Rule::NotUuidV7);
        }
    }

    /// Whether no problem was recorded.
    pub fn is_empty(&self) -> bool {
        self.problems.is_empty()
    }

    /// The outcome: `Ok` when nothing was recorded.
    ///
    /// # Errors
    /// Every problem recorded.
    pub fn finish(self) -> Result<(), Problems> {
        if self.problems.is_empty() {
            Ok(())
        } else {
            Err(Problems(self.problems))
        }
    }
}

/// A message that can be checked against the protocol's rules.
pub trait Validate {
    /// Records every problem of `self` into `report` (paths relative to its current path).
    fn check(&self, report: &mut Report<'_>);

    /// Validates `self`, returning every problem at once.
    ///
    /// # Errors
    /// [`Problems`], never empty, when a rule is broken.
    fn validate(&self, ctx: &ValidationContext) -> Result<(), Problems> {
        let mut report = Report::new(ctx);
        self.check(&mut report);
        report.finish()
    }
}
