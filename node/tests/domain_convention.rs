#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests may unwrap: a panic is a failure.
//! The MAD convention end to end: generated from the agreed terms (Ville de Grenoble ↔
//! Grenoble-Alpes Métropole), checked for every mandatory clause, rendered as HTML (golden
//! file, escaping), signed by both employers with `proof::sign`, then checked offline by
//! the real `passerelle verify` binary.
//!
//! Regenerate the golden page with `UPDATE_GOLDEN=1 cargo test -p passerelle-node --test
//! domain_convention` and review the diff.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use passerelle_node::domain::convention::{
    self, ConventionError, ConventionInput, Drafter, Parties, Party,
};
use passerelle_node::domain::verify::exit;
use passerelle_protocol::keys::SigningKey;
use passerelle_protocol::mad::{ConventionClause, MANDATORY_CLAUSES, MadState, Relation};
use passerelle_protocol::proof::{self, ProofOptions};
use passerelle_protocol::vocab::{
    AgentAgreement, Convention, DisclosedIdentity, MadTerms, Validate, ValidationContext,
};
use serde_json::{Value, json};
use time::macros::datetime;

const VILLE: &str = "https://emploi.grenoble.fr/actor";
const METRO: &str = "https://passerelle.grenoblealpesmetropole.fr/actor";
const VILLE_KEY: &str = "https://emploi.grenoble.fr/actor#key-2026-1";
const METRO_KEY: &str = "https://passerelle.grenoblealpesmetropole.fr/actor#key-2026-1";

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn parties() -> Parties {
    Parties {
        origin: Party {
            id: VILLE.parse().unwrap(),
            name: "Ville de Grenoble".into(),
            siren: "213801855".parse().unwrap(),
        },
        host: Party {
            id: METRO.parse().unwrap(),
            name: "Grenoble-Alpes Métropole".into(),
            siren: "200040715".parse().unwrap(),
        },
    }
}

/// The terms of the spec's example convention (40 %, one year, waiver for a member).
fn terms() -> MadTerms {
    let text = std::fs::read_to_string(workspace().join("spec/examples/convention.json")).unwrap();
    let example: Value = serde_json::from_str(&text).unwrap();
    serde_json::from_value(example["terms"].clone()).unwrap()
}

fn member() -> BTreeSet<Relation> {
    BTreeSet::from([Relation::MemberOrAttached])
}

fn agent() -> DisclosedIdentity {
    DisclosedIdentity {
        name: "Camille Martin".into(),
        grade: Some("Technicienne principale de 2e classe".into()),
        echelon: Some(5),
    }
}

fn input<'a>(
    parties: &'a Parties,
    terms: &'a MadTerms,
    relations: &'a BTreeSet<Relation>,
    state: MadState,
    agent: Option<&'a DisclosedIdentity>,
) -> ConventionInput<'a> {
    ConventionInput {
        id: "https://emploi.grenoble.fr/mad/conventions/019aa1b2-d6e7-78f9-8a0b-2c3d4e5f6071"
            .parse()
            .unwrap(),
        mad_request:
            "https://passerelle.grenoblealpesmetropole.fr/mad/requests/019aa1b2-c5d6-77e8-9f0a-1b2c3d4e5f60"
                .parse()
                .unwrap(),
        drafter: Drafter::Origin,
        parties,
        terms,
        relations,
        state,
        agent,
        agent_agreement: Some(AgentAgreement {
            agreed_at: datetime!(2026-12-14 09:12 UTC),
            document_sha256: "3f7a1c9e5b2d4f6081a3c5e7092b4d6f8a1c3e5079b2d4f6a8c1e3057b9d2f4a"
                .into(),
        }),
        amendment: Some(0),
        published: datetime!(2026-12-08 14:00 UTC),
    }
}

fn ville_key() -> SigningKey {
    SigningKey::from_seed(&[7; 32])
}

fn metro_key() -> SigningKey {
    SigningKey::from_seed(&[9; 32])
}

/// The convention at the assembly-informed state, identity disclosed, signed by `signers`.
fn signed(signers: &[(&SigningKey, &str, time::OffsetDateTime)]) -> Value {
    let (p, t, r, a) = (parties(), terms(), member(), agent());
    let c = convention::build(&input(&p, &t, &r, MadState::AssemblyInformed, Some(&a))).unwrap();
    let mut doc = convention::to_json(&c).unwrap();
    for (key, vm, at) in signers {
        doc = proof::sign(doc, key, &ProofOptions::new(*vm, *at)).unwrap();
    }
    doc
}

fn both_signed() -> Value {
    signed(&[
        (&ville_key(), VILLE_KEY, datetime!(2026-12-15 09:30 UTC)),
        (&metro_key(), METRO_KEY, datetime!(2026-12-16 14:05 UTC)),
    ])
}

#[test]
fn every_mandatory_clause_is_written_in_french() {
    let (p, t, r) = (parties(), terms(), member());
    let c = convention::build(&input(&p, &t, &r, MadState::TermsAgreed, None)).unwrap();
    let kinds = c.clause_kinds();
    for (clause, _, _) in MANDATORY_CLAUSES {
        if *clause != ConventionClause::ComplementRemuneration {
            assert!(kinds.contains(clause), "{clause:?} missing");
        }
    }
    assert!(passerelle_protocol::mad::missing_clauses(&kinds, &t).is_empty());
    c.validate(&ValidationContext::production()).unwrap();
    let text = |k: ConventionClause| {
        c.clauses
            .iter()
            .find(|x| x.kind == k)
            .map(|x| x.text.clone())
            .unwrap()
    };
    assert!(text(ConventionClause::NatureActivites).contains("plan de gestion différenciée"));
    assert!(text(ConventionClause::ConditionsEmploi).contains("40 %"));
    assert!(text(ConventionClause::ConditionsEmploi).contains("accordés par Ville de Grenoble"));
    // The waiver with its legal basis, extent and duration.
    let refund = text(ConventionClause::Remboursement);
    assert!(
        refund.contains("L512-15") && refund.contains("100 %") && refund.contains("12 mois"),
        "{refund}"
    );
    assert!(text(ConventionClause::Preavis).contains("30 jours"));
    let duree = text(ConventionClause::Duree);
    assert!(
        duree.contains("1er mars 2027")
            && duree.contains("29 février 2028")
            && duree.contains("12 mois"),
        "{duree}"
    );
    assert!(text(ConventionClause::LieuTempsTravail).contains("14 heures"));
    assert!(text(ConventionClause::RenouvellementFinAnticipee).contains("faute disciplinaire"));
    let ethics = text(ConventionClause::Deontologie);
    assert!(
        ethics.contains("L121-1 à L121-11")
            && ethics.contains("disciplinaire demeure exercé par Ville de Grenoble")
    );
    // Addressed to the host only; no identity before the agent agreed.
    assert_eq!(c.to, [METRO]);
    assert!(c.extra.get("agentIdentity").is_none());
    assert_eq!(convention::parties_of(&c), Some(p.clone()));

    // A complement of remuneration adds its clause; full reimbursement has no waiver.
    let mut t2 = t.clone();
    t2.complement_remuneration = Some("IFSE complémentaire de 150 € bruts mensuels".into());
    t2.reimbursement.mode = passerelle_protocol::vocab::ReimbursementMode::Full;
    t2.reimbursement.waiver_reason = None;
    t2.reimbursement.waiver_extent_pct = None;
    t2.reimbursement.waiver_duration_months = None;
    let none = BTreeSet::new();
    let c2 = convention::build(&input(&p, &t2, &none, MadState::TermsAgreed, None)).unwrap();
    assert!(
        c2.clause_kinds()
            .contains(&ConventionClause::ComplementRemuneration)
    );
    let refund2 = c2
        .clauses
        .iter()
        .find(|x| x.kind == ConventionClause::Remboursement)
        .unwrap();
    assert!(
        refund2.text.contains("rembourse à Ville de Grenoble") && !refund2.text.contains("L512-15")
    );
}

#[test]
fn waiver_only_where_the_law_allows_it() {
    // Département de l'Isère ↔ Métropole: no membership, so no waiver.
    let (p, t) = (parties(), terms());
    let none = BTreeSet::new();
    let err = convention::build(&input(&p, &t, &none, MadState::TermsAgreed, None)).unwrap_err();
    assert!(
        matches!(err, ConventionError::WaiverNotAllowed { .. }),
        "{err}"
    );
    assert!(err.to_string().contains("MemberOrAttached"), "{err}");
    assert!(err.message_fr().contains("L512-15"));
    // Another relation does not stand in for membership.
    let csfpt = BTreeSet::from([Relation::HostCsfpt]);
    assert!(convention::build(&input(&p, &t, &csfpt, MadState::TermsAgreed, None)).is_err());
}

#[test]
fn identity_only_from_the_agent_agreed_state() {
    let (p, t, r, a) = (parties(), terms(), member(), agent());
    for state in [
        MadState::Proposed,
        MadState::TermsAgreed,
        MadState::AgentReview,
    ] {
        let err = convention::build(&input(&p, &t, &r, state, Some(&a))).unwrap_err();
        assert!(
            matches!(err, ConventionError::IdentityTooEarly { .. }),
            "{state}: {err}"
        );
        assert!(err.message_fr().contains("accord écrit"));
    }
    let c = convention::build(&input(&p, &t, &r, MadState::AgentAgreed, Some(&a))).unwrap();
    assert_eq!(convention::agent_of(&c), Some(a));
}

#[test]
fn too_long_terms_are_refused_by_the_protocol_rules() {
    let (p, mut t, r) = (parties(), terms(), member());
    t.end_date = time::macros::date!(2030 - 03 - 02);
    let err = convention::build(&input(&p, &t, &r, MadState::TermsAgreed, None)).unwrap_err();
    assert!(matches!(err, ConventionError::Invalid(_)), "{err}");
    assert!(err.message_fr().contains("36"), "{}", err.message_fr());
}

#[test]
fn html_escapes_hostile_text() {
    let (mut p, mut t, r) = (parties(), terms(), member());
    t.activities = "<script>alert('x')</script> & <img src=x onerror=alert(1)>".into();
    t.place = Some("\"><iframe src=//evil>".into());
    p.host.name = "Métropole <b>bold</b>".into();
    let c = convention::build(&input(&p, &t, &r, MadState::TermsAgreed, None)).unwrap();
    let html = convention::render_html(&c).unwrap();
    for raw in ["<script", "<img", "<iframe", "<b>bold"] {
        assert!(!html.contains(raw), "{raw} not escaped");
    }
    assert!(html.contains("&lt;script&gt;"), "escaped form expected");
    assert!(
        html.contains("&lt;b&gt;bold&lt;&#x2f;b&gt;") || html.contains("&lt;b&gt;bold&lt;/b&gt;")
    );
}

#[test]
fn golden_page_for_grenoble() {
    let doc = both_signed();
    let c: Convention = convention::from_json(doc).unwrap();
    let html = convention::render_html(&c).unwrap();
    // Every clause, both parties, the agent and both signatures are on the page.
    for (i, clause) in c.clauses.iter().enumerate() {
        let title = clause.kind.label_fr();
        let mut chars = title.chars();
        let first: String = chars.next().unwrap().to_uppercase().collect();
        let heading = format!("Article {} — {first}{}", i + 1, chars.as_str());
        assert!(html.contains(&escape(&heading)), "{heading}");
        assert!(html.contains(&escape(&clause.text)), "{}", clause.text);
    }
    for needle in [
        "Ville de Grenoble</strong>, SIREN 213801855",
        "Grenoble-Alpes Métropole</strong>, SIREN 200040715",
        "Camille Martin",
        "<td>Ville de Grenoble</td><td>employeur d&#x27;origine</td><td>15 décembre 2026 à 09:30 UTC</td>",
        "<td>Grenoble-Alpes Métropole</td><td>organisme d&#x27;accueil</td><td>16 décembre 2026 à 14:05 UTC</td>",
        "@media print",
        "<html lang=\"fr\">",
    ] {
        assert!(html.contains(needle), "{needle} missing from the page");
    }
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden/convention-grenoble.html");
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, &html).unwrap();
    }
    let golden = std::fs::read_to_string(&path)
        .expect("golden file missing: run with UPDATE_GOLDEN=1 and review it");
    assert!(
        golden == html,
        "the page differs from {}; run with UPDATE_GOLDEN=1 and review the diff",
        path.display()
    );
}

/// HTML escaping as minijinja does it.
fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#x27;")
        .replace('/', "&#x2f;")
}

// ---- passerelle verify, on the real binary ----

fn actor(id: &str, name: &str, key_id: &str, key: &SigningKey, expires: Option<&str>) -> Value {
    let text =
        std::fs::read_to_string(workspace().join("spec/examples/organization.json")).unwrap();
    let mut doc: Value = serde_json::from_str(&text).unwrap();
    doc["id"] = json!(id);
    doc["name"] = json!(name);
    let mut mk = json!({
        "id": key_id,
        "type": "Multikey",
        "controller": id,
        "publicKeyMultibase": key.public_key().to_multikey(),
    });
    if let Some(e) = expires {
        mk["expires"] = json!(e);
    }
    doc["assertionMethod"] = json!([mk]);
    doc
}

fn write(dir: &Path, name: &str, doc: &Value) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, serde_json::to_vec_pretty(doc).unwrap()).unwrap();
    path
}

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

fn verify(args: &[&std::ffi::OsStr]) -> Run {
    let out = Command::new(env!("CARGO_BIN_EXE_passerelle"))
        .arg("verify")
        .args(args)
        .output()
        .unwrap();
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn with_actors(dir: &Path) {
    write(
        dir,
        "ville.actor.json",
        &actor(VILLE, "Ville de Grenoble", VILLE_KEY, &ville_key(), None),
    );
    write(
        dir,
        "metro.actor.json",
        &actor(
            METRO,
            "Grenoble-Alpes Métropole",
            METRO_KEY,
            &metro_key(),
            None,
        ),
    );
}

#[test]
fn verify_valid_convention_with_adjacent_actors() {
    let dir = tempfile::tempdir().unwrap();
    with_actors(dir.path());
    let file = write(dir.path(), "convention.json", &both_signed());
    let run = verify(&[file.as_os_str()]);
    assert_eq!(
        run.code,
        i32::from(exit::VALID),
        "{}{}",
        run.stdout,
        run.stderr
    );
    assert!(
        run.stdout.contains("« Signée par Ville de Grenoble (employeur d'origine) le 15 décembre 2026 à 09:30 UTC — signature valide »"),
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains("Signed by Grenoble-Alpes Métropole (host employer) on 2026-12-16T14:05:00Z — valid signature"), "{}", run.stdout);
    assert!(run.stdout.contains(METRO_KEY));
    assert!(run.stderr.is_empty(), "{}", run.stderr);
}

#[test]
fn verify_incomplete_when_one_employer_did_not_sign() {
    let dir = tempfile::tempdir().unwrap();
    with_actors(dir.path());
    let doc = signed(&[(&ville_key(), VILLE_KEY, datetime!(2026-12-15 09:30 UTC))]);
    let file = write(dir.path(), "convention.json", &doc);
    let run = verify(&[file.as_os_str()]);
    assert_eq!(
        run.code,
        i32::from(exit::INCOMPLETE),
        "{}{}",
        run.stdout,
        run.stderr
    );
    assert!(
        run.stdout
            .contains("Signature manquante : organisme d'accueil"),
        "{}",
        run.stdout
    );
    assert_eq!(run.stderr.lines().count(), 1, "{}", run.stderr);
    assert!(run.stderr.contains("incomplete"));
}

#[test]
fn verify_invalid_when_altered_or_key_expired() {
    let dir = tempfile::tempdir().unwrap();
    with_actors(dir.path());
    let mut doc = both_signed();
    doc["terms"]["quotitePct"] = json!(20);
    let file = write(dir.path(), "convention.json", &doc);
    let run = verify(&[file.as_os_str()]);
    assert_eq!(
        run.code,
        i32::from(exit::INVALID),
        "{}{}",
        run.stdout,
        run.stderr
    );
    assert!(run.stdout.contains("signature INVALIDE"), "{}", run.stdout);
    assert_eq!(run.stderr.lines().count(), 1, "{}", run.stderr);

    // The host's key had expired before it signed.
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "ville.actor.json",
        &actor(VILLE, "Ville de Grenoble", VILLE_KEY, &ville_key(), None),
    );
    write(
        dir.path(),
        "metro.actor.json",
        &actor(
            METRO,
            "Grenoble-Alpes Métropole",
            METRO_KEY,
            &metro_key(),
            Some("2026-12-01T00:00:00Z"),
        ),
    );
    let file = write(dir.path(), "convention.json", &both_signed());
    let run = verify(&[file.as_os_str()]);
    assert_eq!(
        run.code,
        i32::from(exit::INVALID),
        "{}{}",
        run.stdout,
        run.stderr
    );
    assert!(run.stdout.contains("la clé avait expiré"), "{}", run.stdout);

    // A third node's valid signature on a convention is refused.
    let dir = tempfile::tempdir().unwrap();
    with_actors(dir.path());
    let isere = SigningKey::from_seed(&[3; 32]);
    let isere_id = "https://passerelle.isere.fr/actor";
    let isere_key = "https://passerelle.isere.fr/actor#key-1";
    write(
        dir.path(),
        "isere.actor.json",
        &actor(isere_id, "Département de l'Isère", isere_key, &isere, None),
    );
    let doc = proof::sign(
        both_signed(),
        &isere,
        &ProofOptions::new(isere_key, datetime!(2026-12-17 08:00 UTC)),
    )
    .unwrap();
    let file = write(dir.path(), "convention.json", &doc);
    let run = verify(&[file.as_os_str()]);
    assert_eq!(
        run.code,
        i32::from(exit::INVALID),
        "{}{}",
        run.stdout,
        run.stderr
    );
    assert!(
        run.stdout.contains("Signed by Département de l'Isère"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains("neither the origin nor the host"),
        "{}",
        run.stdout
    );
}

#[test]
fn verify_keys_from_arguments() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "convention.json", &both_signed());
    // No actor documents around: the keys are missing.
    let run = verify(&[file.as_os_str()]);
    assert_eq!(
        run.code,
        i32::from(exit::KEY_MISSING),
        "{}{}",
        run.stdout,
        run.stderr
    );
    assert!(run.stderr.contains("--key"), "{}", run.stderr);
    // Bare Multikeys, tried on every proof.
    let ville = ville_key().public_key().to_multikey();
    let metro = metro_key().public_key().to_multikey();
    let run = verify(&[
        file.as_os_str(),
        "--key".as_ref(),
        ville.as_ref(),
        "--key".as_ref(),
        metro.as_ref(),
    ]);
    assert_eq!(
        run.code,
        i32::from(exit::VALID),
        "{}{}",
        run.stdout,
        run.stderr
    );
    // A key given for the wrong key id does not verify the other signer's proof.
    let wrong = format!("{METRO_KEY}={ville}");
    let run = verify(&[file.as_os_str(), "--key".as_ref(), wrong.as_ref()]);
    assert_eq!(
        run.code,
        i32::from(exit::INVALID),
        "{}{}",
        run.stdout,
        run.stderr
    );
    // Actor documents elsewhere, given with --actor.
    let keys = tempfile::tempdir().unwrap();
    with_actors(keys.path());
    let v = keys.path().join("ville.actor.json");
    let m = keys.path().join("metro.actor.json");
    let run = verify(&[
        file.as_os_str(),
        "--actor".as_ref(),
        v.as_os_str(),
        "--actor".as_ref(),
        m.as_os_str(),
    ]);
    assert_eq!(
        run.code,
        i32::from(exit::VALID),
        "{}{}",
        run.stdout,
        run.stderr
    );
    assert!(
        run.stdout
            .contains("Grenoble-Alpes Métropole (organisme d'accueil)"),
        "{}",
        run.stdout
    );
    // A malformed --key is an unreadable argument.
    let run = verify(&[file.as_os_str(), "--key".as_ref(), "z6Mkpasunecle".as_ref()]);
    assert_eq!(
        run.code,
        i32::from(exit::UNREADABLE),
        "{}{}",
        run.stdout,
        run.stderr
    );
}

#[test]
fn verify_unreadable_files() {
    let dir = tempfile::tempdir().unwrap();
    for (name, bytes) in [
        ("garbage.txt", &b"ceci n'est pas du JSON"[..]),
        (
            "duplicate.txt",
            &br#"{"type":"Convention","type":"Note"}"#[..],
        ),
        (
            "unsigned.txt",
            &br#"{"type":"Note","content":"Bonjour"}"#[..],
        ),
    ] {
        let path = dir.path().join(name);
        std::fs::write(&path, bytes).unwrap();
        let run = verify(&[path.as_os_str()]);
        assert_eq!(
            run.code,
            i32::from(exit::UNREADABLE),
            "{name}: {}{}",
            run.stdout,
            run.stderr
        );
        assert_eq!(run.stderr.lines().count(), 1, "{name}: {}", run.stderr);
        assert!(run.stderr.starts_with("error: "), "{}", run.stderr);
    }
    let missing = dir.path().join("absent.json");
    let run = verify(&[missing.as_os_str()]);
    assert_eq!(run.code, i32::from(exit::UNREADABLE));
}

#[test]
fn verify_any_signed_document() {
    let dir = tempfile::tempdir().unwrap();
    with_actors(dir.path());
    let note =
        json!({"type": "Note", "id": "https://emploi.grenoble.fr/notes/1", "content": "Bonjour"});
    let signed = proof::sign(
        note,
        &ville_key(),
        &ProofOptions::new(VILLE_KEY, datetime!(2026-11-23 10:00 UTC)),
    )
    .unwrap();
    let file = write(dir.path(), "note.json", &signed);
    let run = verify(&[file.as_os_str()]);
    assert_eq!(
        run.code,
        i32::from(exit::VALID),
        "{}{}",
        run.stdout,
        run.stderr
    );
    assert!(
        run.stdout.contains(
            "Signée par Ville de Grenoble le 23 novembre 2026 à 10:00 UTC — signature valide"
        ),
        "{}",
        run.stdout
    );
}

#[test]
fn draft_and_amendment_pages() {
    let (p, t, r) = (parties(), terms(), member());
    // The draft sent to the agent: no identity, no signature yet.
    let mut i = input(&p, &t, &r, MadState::TermsAgreed, None);
    i.agent_agreement = None;
    let draft = convention::build(&i).unwrap();
    let html = convention::render_html(&draft).unwrap();
    assert!(html.contains("<h1>Convention de mise à disposition</h1>"));
    assert!(
        html.contains(
            "Identité communiquée à l'organisme d'accueil après l'accord écrit de l'agent."
        )
    );
    assert!(html.contains("son accord écrit n'est pas encore recueilli"));
    assert!(html.contains("Aucune signature : document non signé."));
    assert!(convention::signature_lines(&draft).is_empty());
    // The first avenant, drafted by the host.
    let a = agent();
    let mut i = input(&p, &t, &r, MadState::AmendmentPending, Some(&a));
    i.amendment = Some(1);
    i.drafter = Drafter::Host;
    // The id must be minted by the drafting node.
    let err = convention::build(&i).unwrap_err();
    assert!(matches!(err, ConventionError::Invalid(_)), "{err}");
    i.id = "https://passerelle.grenoblealpesmetropole.fr/mad/conventions/019aa1b2-e7f8-7a0b-8c1d-2e3f4a5b6c7d"
        .parse()
        .unwrap();
    let avenant = convention::build(&i).unwrap();
    assert_eq!(avenant.attributed_to.as_str(), METRO);
    assert_eq!(avenant.to, [VILLE]);
    let html = convention::render_html(&avenant).unwrap();
    assert!(
        html.contains("<h1>Avenant n° 1 à la convention de mise à disposition</h1>"),
        "{html}"
    );
}

#[test]
fn generated_convention_follows_the_json_schema() {
    let text =
        std::fs::read_to_string(workspace().join("spec/schemas/Convention.schema.json")).unwrap();
    let schema: Value = serde_json::from_str(&text).unwrap();
    let validator = jsonschema::validator_for(&schema).unwrap();
    let doc = both_signed();
    let errors: Vec<String> = validator.iter_errors(&doc).map(|e| e.to_string()).collect();
    assert!(errors.is_empty(), "{errors:?}");
    // The check can fail: a convention without its clauses is refused.
    let mut broken = doc.clone();
    broken.as_object_mut().unwrap().remove("clauses");
    assert!(!validator.is_valid(&broken));
}
