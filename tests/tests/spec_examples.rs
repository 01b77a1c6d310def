//! Every example of `spec/protocol.md` is checked here.
//!
//! An example is a fenced code block preceded (on the previous non-blank line) by an HTML
//! comment `<!-- example: MARKER -->`. The marker says how the block is checked:
//!
//! - `spec/examples/NAME.json`: the block equals that file (the vocabulary tests of the
//!   protocol crate parse, validate and schema-check the files themselves);
//! - `multikey seed=HEX`: a `Multikey` document whose `publicKeyMultibase` is recomputed
//!   from the seed with `passerelle_protocol::keys`;
//! - `problem`: an RFC 9457 problem whose `code` and `status` must agree with the error
//!   table of §12;
//! - `message`: a Passerelle message that `protocol::vocab` parses, validates (production
//!   rules) and re-serialises to the same JSON; its `Multikey`s are the example keys;
//! - `webfinger`: a JRD equal to what `Jrd::for_actor` builds for its subject and actor;
//! - `nodeinfo`: a NodeInfo document equal to what `NodeInfo::passerelle` builds, valid
//!   against the NodeInfo 2.1 schema of the shared vectors.
//!
//! The example keys table of §1.5 (`<!-- example-keys -->`) is checked (each seed gives the
//! key shown) and gives the keys used by the checks above.
//! A fenced block without a marker is refused unless its info string is `text` (figures,
//! not examples), and an unknown marker is refused: nothing in the spec looks like an
//! example without being checked. The error table (`<!-- error-codes -->`) is checked for
//! well-formedness too.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use passerelle_protocol::ids::{ActorId, Siren};
use passerelle_protocol::keys::SigningKey;
use passerelle_protocol::vocab::{
    Jrd, Message, NodeInfo, NodeInfoUsage, ValidationContext, parse_acct,
};
use serde_json::Value;

fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent")
        .to_path_buf()
}

/// The external vectors folder (`../shared/vectors`), or `None` outside CI when absent
/// (after one SKIPPED line); under `CI` a missing folder is a failure.
fn shared_vectors(what: &str) -> Option<PathBuf> {
    let dir = std::env::var_os("PASSERELLE_SHARED_VECTORS")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("../shared/vectors"));
    if dir.is_dir() {
        return Some(dir);
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "{what}: the shared vectors folder {} is missing, and CI must not skip it",
        dir.display()
    );
    eprintln!("SKIPPED {what}: {} not found", dir.display());
    None
}

/// The example keys of §1.5, by key id.
type Keys = BTreeMap<String, SigningKey>;

/// Parses the `<!-- example-keys -->` table and checks that each seed gives the key shown.
fn example_keys(markdown: &str) -> Result<Keys, String> {
    let start = markdown
        .find("<!-- example-keys -->")
        .ok_or("the spec has no `<!-- example-keys -->` table")?;
    let mut keys = BTreeMap::new();
    let mut problems = Vec::new();
    for row in table_rows(&markdown[start..]) {
        let cells: Vec<&str> = row.iter().map(|c| c.trim_matches('`')).collect();
        if cells.len() != 3 {
            problems.push(format!("example key row with {} cells", cells.len()));
            continue;
        }
        // The seed cell reads "`01` × 32", optionally followed by a remark.
        let Some(byte) = cells[1]
            .split('`')
            .next()
            .and_then(|b| u8::from_str_radix(b, 16).ok())
        else {
            problems.push(format!("seed cell `{}` is not `HH` × 32", cells[1]));
            continue;
        };
        let key = SigningKey::from_seed(&[byte; 32]);
        let multikey = key.public_key().to_multikey();
        if multikey != cells[2] {
            problems.push(format!(
                "key {}: the table shows {} but seed {byte:02x} × 32 gives {multikey}",
                cells[0], cells[2]
            ));
        }
        keys.insert(cells[0].to_string(), key);
    }
    if keys.is_empty() {
        problems.push("the example keys table is empty".to_string());
    }
    if problems.is_empty() {
        Ok(keys)
    } else {
        Err(problems.join("\n"))
    }
}

/// The body rows (cells trimmed) of the Markdown table that follows the marker line at the
/// start of `text`.
fn table_rows(text: &str) -> Vec<Vec<&str>> {
    text.lines()
        .skip(1)
        .skip_while(|l| l.trim().is_empty())
        .take_while(|l| l.trim_start().starts_with('|'))
        .skip(2) // header and separator
        .map(|row| {
            row.trim()
                .trim_matches('|')
                .split('|')
                .map(str::trim)
                .collect()
        })
        .collect()
}

/// Every `Multikey` found anywhere in `value` must be one of the example keys, with the
/// right public key.
fn check_multikeys_in(value: &Value, keys: &Keys) -> Result<(), String> {
    match value {
        Value::Object(map) => {
            if map.get("type").and_then(Value::as_str) == Some("Multikey") {
                let id = map.get("id").and_then(Value::as_str).unwrap_or_default();
                let shown = map
                    .get("publicKeyMultibase")
                    .and_then(Value::as_str)
                    .unwrap_or_default();
                let key = keys
                    .get(id)
                    .ok_or_else(|| format!("Multikey `{id}` is not an example key of §1.5"))?;
                let expected = key.public_key().to_multikey();
                if shown != expected {
                    return Err(format!(
                        "Multikey `{id}` shows {shown}, its example seed gives {expected}"
                    ));
                }
            }
            map.values().try_for_each(|v| check_multikeys_in(v, keys))
        }
        Value::Array(items) => items.iter().try_for_each(|v| check_multikeys_in(v, keys)),
        _ => Ok(()),
    }
}

/// One fenced block of the spec, with its marker (if any) and where it starts.
#[derive(Debug)]
struct Block {
    /// 1-based line number of the opening fence.
    line: usize,
    /// The info string after the opening fence (`json`, `http`, `text`, …).
    info: String,
    /// The text of the `<!-- example: … -->` comment, if the block has one.
    marker: Option<String>,
    /// The block's content, lines joined by `\n`, without a final newline.
    body: String,
}

/// Splits a Markdown text into its fenced blocks.
fn extract_blocks(markdown: &str) -> Result<Vec<Block>, String> {
    let mut blocks = Vec::new();
    let mut last_nonblank: Option<&str> = None;
    let mut lines = markdown.lines().enumerate();
    while let Some((index, line)) = lines.next() {
        let trimmed = line.trim_start();
        if let Some(info) = trimmed.strip_prefix("```") {
            let indent = line.len() - trimmed.len();
            let marker = last_nonblank.and_then(|prev| {
                prev.trim()
                    .strip_prefix("<!-- example:")
                    .and_then(|rest| rest.strip_suffix("-->"))
                    .map(|m| m.trim().to_string())
            });
            let mut body = Vec::new();
            let mut closed = false;
            for (_, inner) in lines.by_ref() {
                if inner.trim() == "```" {
                    closed = true;
                    break;
                }
                body.push(inner.get(indent..).unwrap_or(inner.trim_start()));
            }
            if !closed {
                return Err(format!("line {}: fenced block never closed", index + 1));
            }
            blocks.push(Block {
                line: index + 1,
                info: info.trim().to_string(),
                marker,
                body: body.join("\n"),
            });
            last_nonblank = None;
            continue;
        }
        if !line.trim().is_empty() {
            last_nonblank = Some(line);
        }
    }
    Ok(blocks)
}

/// One row of the §12 error table.
#[derive(Debug)]
struct ErrorCode {
    status: u16,
}

/// Parses the table that follows `<!-- error-codes -->`.
fn error_table(markdown: &str) -> Result<BTreeMap<String, ErrorCode>, String> {
    let start = markdown
        .find("<!-- error-codes -->")
        .ok_or("the spec has no `<!-- error-codes -->` table")?;
    let mut codes = BTreeMap::new();
    let mut problems = Vec::new();
    for cells in table_rows(&markdown[start..]) {
        if cells.len() != 4 {
            problems.push(format!("row with {} cells: {cells:?}", cells.len()));
            continue;
        }
        let code = cells[0].trim_matches('`');
        if code.is_empty()
            || !code
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        {
            problems.push(format!("code `{code}` is not snake_case"));
        }
        let status: u16 = match cells[1].parse() {
            Ok(s) if (400..600).contains(&s) => s,
            _ => {
                problems.push(format!("`{code}`: status `{}` is not 4xx/5xx", cells[1]));
                continue;
            }
        };
        let retry = cells[2];
        if !["final", "once", "retry", "after"].contains(&retry) {
            problems.push(format!("`{code}`: retry class `{retry}` is unknown"));
        }
        // The retry class must agree with the response classes of §8.2.
        let expected = match status {
            401 => Some("once|final"),
            408 => Some("retry"),
            429 => Some("after"),
            500..=599 => Some("retry"),
            _ => Some("final"),
        };
        if let Some(expected) = expected
            && !expected.split('|').any(|e| e == retry)
        {
            problems.push(format!(
                "`{code}`: status {status} has retry class `{retry}`, §8.2 says `{expected}`"
            ));
        }
        if codes
            .insert(code.to_string(), ErrorCode { status })
            .is_some()
        {
            problems.push(format!("`{code}` is listed twice"));
        }
    }
    if codes.is_empty() {
        problems.push("the error table is empty".to_string());
    }
    if problems.is_empty() {
        Ok(codes)
    } else {
        Err(problems.join("\n"))
    }
}

fn parse_json(block: &Block) -> Result<Value, String> {
    serde_json::from_str(&block.body).map_err(|e| format!("not JSON: {e}"))
}

fn check_example_file(root: &Path, path: &str, block: &Block) -> Result<(), String> {
    if !path.starts_with("spec/examples/") || path.contains("..") {
        return Err(format!("`{path}` is not a file of spec/examples/"));
    }
    let file = root.join(path);
    let text = std::fs::read_to_string(&file)
        .map_err(|e| format!("cannot read {}: {e}", file.display()))?;
    if text.trim_end_matches('\n') != block.body {
        return Err(format!(
            "the block differs from {path}; paste the file as it stands:\n{text}"
        ));
    }
    parse_json(block).map(|_| ())
}

fn check_multikey(args: &str, block: &Block) -> Result<(), String> {
    let seed_hex = args
        .strip_prefix("seed=")
        .ok_or("marker `multikey` needs `seed=HEX`")?;
    let seed: [u8; 32] = hex::decode(seed_hex)
        .map_err(|e| format!("seed is not hex: {e}"))?
        .try_into()
        .map_err(|_| "seed is not 32 bytes".to_string())?;
    let doc = parse_json(block)?;
    let key = SigningKey::from_seed(&seed).public_key();
    let expected = key.to_multikey();
    let got = doc["publicKeyMultibase"].as_str().unwrap_or_default();
    if got != expected {
        return Err(format!(
            "publicKeyMultibase is `{got}`, the seed gives `{expected}`"
        ));
    }
    if doc["type"] != "Multikey" {
        return Err("`type` must be `Multikey`".to_string());
    }
    let controller = doc["controller"].as_str().ok_or("no `controller`")?;
    let id = doc["id"].as_str().ok_or("no `id`")?;
    match id.split_once('#') {
        Some((base, fragment)) if base == controller && !fragment.is_empty() => Ok(()),
        _ => Err(format!(
            "key id `{id}` must be the controller `{controller}` with a fragment (§3.1)"
        )),
    }
}

/// A Passerelle message: parsed by `protocol::vocab` (type dispatch, typed decoding),
/// valid under the production rules, and re-serialised without losing or changing a member.
fn check_message(keys: &Keys, block: &Block) -> Result<(), String> {
    let value = parse_json(block)?;
    let message = Message::from_value(value.clone()).map_err(|e| format!("refused: {e}"))?;
    message
        .validate(&ValidationContext::production())
        .map_err(|e| format!("invalid: {e}"))?;
    let back = message
        .to_value()
        .map_err(|e| format!("cannot re-serialise: {e}"))?;
    if back != value {
        return Err(format!(
            "a parse and re-serialisation changes the message; it becomes:\n{}",
            serde_json::to_string_pretty(&back).unwrap_or_default()
        ));
    }
    check_multikeys_in(&value, keys)
}

/// A WebFinger JRD: must equal what `Jrd::for_actor` builds for its subject and actor.
fn check_webfinger(block: &Block) -> Result<(), String> {
    let value = parse_json(block)?;
    let jrd: Jrd = serde_json::from_value(value.clone()).map_err(|e| format!("not a JRD: {e}"))?;
    let (user, domain) = parse_acct(&jrd.subject)
        .ok_or_else(|| format!("subject `{}` is not an acct: URI", jrd.subject))?;
    let actor = jrd.actor_id().ok_or("no `self` link to an actor")?;
    let built =
        serde_json::to_value(Jrd::for_actor(user, domain, &actor)).map_err(|e| e.to_string())?;
    if built != value {
        return Err(format!(
            "the node would answer:\n{}",
            serde_json::to_string_pretty(&built).unwrap_or_default()
        ));
    }
    Ok(())
}

/// A NodeInfo 2.1 document: must equal what `NodeInfo::passerelle` builds from its version,
/// actor, SIREN and usage, and validate against the NodeInfo 2.1 schema.
fn check_nodeinfo(block: &Block) -> Result<(), String> {
    let value = parse_json(block)?;
    let info: NodeInfo =
        serde_json::from_value(value.clone()).map_err(|e| format!("not NodeInfo: {e}"))?;
    let meta = &value["metadata"]["passerelle"];
    let actor: ActorId = meta["actor"]
        .as_str()
        .ok_or("no metadata.passerelle.actor")?
        .parse()
        .map_err(|e| format!("metadata.passerelle.actor: {e}"))?;
    let siren: Siren = meta["siren"]
        .as_str()
        .ok_or("no metadata.passerelle.siren")?
        .parse()
        .map_err(|e| format!("metadata.passerelle.siren: {e}"))?;
    let usage: NodeInfoUsage = info.usage.clone();
    let built = serde_json::to_value(NodeInfo::passerelle(
        &info.software.version,
        &actor,
        &siren,
        usage,
    ))
    .map_err(|e| e.to_string())?;
    if built != value {
        return Err(format!(
            "the node would serve:\n{}",
            serde_json::to_string_pretty(&built).unwrap_or_default()
        ));
    }
    if let Some(dir) = shared_vectors("NodeInfo 2.1 schema (spec example)") {
        let path = dir.join("nodeinfo/nodeinfo-2.1-schema.json");
        let schema: Value = serde_json::from_str(
            &std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?,
        )
        .map_err(|e| e.to_string())?;
        let validator = jsonschema::validator_for(&schema).map_err(|e| e.to_string())?;
        let errors: Vec<String> = validator
            .iter_errors(&value)
            .map(|e| e.to_string())
            .collect();
        if !errors.is_empty() {
            return Err(format!("not valid NodeInfo 2.1: {}", errors.join("; ")));
        }
    }
    Ok(())
}

fn check_problem(codes: &BTreeMap<String, ErrorCode>, block: &Block) -> Result<(), String> {
    let doc = parse_json(block)?;
    for member in ["type", "title", "status", "detail", "code"] {
        if doc.get(member).is_none() {
            return Err(format!("problem without `{member}` (§12)"));
        }
    }
    let code = doc["code"].as_str().ok_or("`code` is not a string")?;
    let row = codes
        .get(code)
        .ok_or_else(|| format!("code `{code}` is not in the §12 table"))?;
    if doc["status"].as_u64() != Some(u64::from(row.status)) {
        return Err(format!(
            "status {} but the table gives {} for `{code}`",
            doc["status"], row.status
        ));
    }
    let expected_type = format!("https://w3id.org/passerelle/problems/{code}");
    if doc["type"] != expected_type.as_str() {
        return Err(format!("`type` must be `{expected_type}`"));
    }
    Ok(())
}

/// Checks every block of `markdown`; returns one message per failing block, and how many
/// examples were checked.
fn check_spec(root: &Path, markdown: &str) -> (usize, Vec<String>) {
    let mut failures = Vec::new();
    let codes = match error_table(markdown) {
        Ok(codes) => codes,
        Err(e) => {
            failures.push(format!("error table (§12): {e}"));
            BTreeMap::new()
        }
    };
    let keys = match example_keys(markdown) {
        Ok(keys) => keys,
        Err(e) => {
            failures.push(format!("example keys (§1.5): {e}"));
            BTreeMap::new()
        }
    };
    let blocks = match extract_blocks(markdown) {
        Ok(blocks) => blocks,
        Err(e) => return (0, vec![e]),
    };
    let mut checked = 0;
    for block in &blocks {
        let Some(marker) = &block.marker else {
            if block.info != "text" {
                failures.push(format!(
                    "line {}: fenced `{}` block without an `<!-- example: … -->` marker \
                     (figures that are not examples use the `text` info string)",
                    block.line, block.info
                ));
            }
            continue;
        };
        let (kind, args) = marker.split_once(' ').unwrap_or((marker.as_str(), ""));
        let result = if kind.starts_with("spec/examples/") {
            check_example_file(root, kind, block)
        } else {
            match kind {
                "multikey" => check_multikey(args.trim(), block),
                "problem" => check_problem(&codes, block),
                "message" => check_message(&keys, block),
                "webfinger" => check_webfinger(block),
                "nodeinfo" => check_nodeinfo(block),
                other => Err(format!("unknown example marker `{other}`")),
            }
        };
        match result {
            Ok(()) => checked += 1,
            Err(e) => failures.push(format!("line {} (`{marker}`): {e}", block.line)),
        }
    }
    (checked, failures)
}

#[test]
fn every_example_of_the_spec_is_checked_and_holds() {
    let root = workspace_root();
    let path = root.join("spec/protocol.md");
    let markdown = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    let (checked, failures) = check_spec(&root, &markdown);
    assert!(
        failures.is_empty(),
        "{} example(s) of spec/protocol.md fail:\n{}",
        failures.len(),
        failures.join("\n\n")
    );
    assert!(checked > 0, "no example found in spec/protocol.md");
    eprintln!("spec/protocol.md: {checked} examples checked");
}

// The checker itself must be able to fail.

const TABLE: &str = "<!-- error-codes -->\n| `code` | Status | Retry | When |\n|---|---|---|---|\n\
| `digest_mismatch` | 400 | final | x |\n| `rate_limited` | 429 | after | y |\n\n\
<!-- example-keys -->\n| Key id | Seed | Key |\n|---|---|---|\n\
| `https://a.example/actor#k` | `01` × 32 | `z6Mkon3Necd6NkkyfoGoHxid2znGc59LU3K7mubaRcFbLfLX` |\n";

#[test]
fn unknown_marker_is_refused() {
    let md = format!("{TABLE}\n<!-- example: frobnicate -->\n```json\n{{}}\n```\n");
    let (_, failures) = check_spec(&workspace_root(), &md);
    assert_eq!(failures.len(), 1, "{failures:?}");
    assert!(failures[0].contains("unknown example marker `frobnicate`"));
}

#[test]
fn block_without_marker_is_refused_unless_text() {
    let md = format!("{TABLE}\n```json\n{{}}\n```\n\n```text\nfigure\n```\n");
    let (checked, failures) = check_spec(&workspace_root(), &md);
    assert_eq!(checked, 0);
    assert_eq!(failures.len(), 1, "{failures:?}");
    assert!(failures[0].contains("without an `<!-- example: … -->` marker"));
}

#[test]
fn wrong_multikey_is_refused() {
    let md = format!(
        "{TABLE}\n<!-- example: multikey seed={} -->\n```json\n{}\n```\n",
        "01".repeat(32),
        r##"{"id": "https://a.example/actor#k", "type": "Multikey", "controller": "https://a.example/actor", "publicKeyMultibase": "z6MkhaXgBZDvotDkL5257faiztiGiC2QtKLGpbnnEGta2doK"}"##
    );
    let (_, failures) = check_spec(&workspace_root(), &md);
    assert_eq!(failures.len(), 1, "{failures:?}");
    assert!(failures[0].contains("the seed gives"));
}

#[test]
fn problem_with_a_status_other_than_the_table_is_refused() {
    let md = format!(
        "{TABLE}\n<!-- example: problem -->\n```json\n{}\n```\n",
        r#"{"type": "https://w3id.org/passerelle/problems/digest_mismatch", "title": "t", "status": 401, "detail": "d", "code": "digest_mismatch"}"#
    );
    let (_, failures) = check_spec(&workspace_root(), &md);
    assert_eq!(failures.len(), 1, "{failures:?}");
    assert!(failures[0].contains("the table gives 400"));
}

#[test]
fn example_file_mismatch_is_refused() {
    let md = format!(
        "{TABLE}\n<!-- example: spec/examples/does-not-exist.json -->\n```json\n{{}}\n```\n"
    );
    let (_, failures) = check_spec(&workspace_root(), &md);
    assert_eq!(failures.len(), 1, "{failures:?}");
    assert!(failures[0].contains("cannot read"));
}

#[test]
fn error_table_with_inconsistent_retry_class_is_refused() {
    let md = "<!-- error-codes -->\n| `code` | Status | Retry | When |\n|---|---|---|---|\n\
| `rate_limited` | 429 | final | y |\n";
    let err = error_table(md).unwrap_err();
    assert!(err.contains("§8.2 says `after`"), "{err}");
}

#[test]
fn example_key_table_with_a_wrong_key_is_refused() {
    let md = "<!-- example-keys -->\n| Key id | Seed | Key |\n|---|---|---|\n\
| `https://a.example/actor#k` | `02` × 32 | `z6Mkon3Necd6NkkyfoGoHxid2znGc59LU3K7mubaRcFbLfLX` |\n";
    let err = example_keys(md).unwrap_err();
    assert!(
        err.contains("seed 02 × 32 gives z6Mko9hTggMwjSTEaJaPUfE6tqcy2xvU6BnNq3e3o8qVBiyH"),
        "{err}"
    );
}

const ACTOR: &str = r#"{"@context": ["https://www.w3.org/ns/activitystreams", "https://w3id.org/passerelle/v1"],
  "id": "https://a.example/actor", "type": "Organization", "preferredUsername": "a", "name": "A",
  "inbox": "https://a.example/inbox", "outbox": "https://a.example/outbox",
  "followers": "https://a.example/followers", "following": "https://a.example/following",
  "endpoints": {"sharedInbox": "https://a.example/inbox"},
  "assertionMethod": [{"id": "https://a.example/actor#k", "type": "Multikey",
    "controller": "https://a.example/actor", "publicKeyMultibase": "z6Mkon3Necd6NkkyfoGoHxid2znGc59LU3K7mubaRcFbLfLX"}],
  "collectivite": {"siren": "213801855", "kind": "commune", "versant": "fpt"},
  "protocolVersion": "1.0"}"#;

fn failures_of(marker: &str, json: &str) -> Vec<String> {
    let md = format!("{TABLE}\n<!-- example: {marker} -->\n```json\n{json}\n```\n");
    check_spec(&workspace_root(), &md).1
}

#[test]
fn a_valid_message_passes_the_checker() {
    assert_eq!(failures_of("message", ACTOR), Vec::<String>::new());
}

#[test]
fn message_that_breaks_a_rule_or_shows_another_key_is_refused() {
    // An inbox on another origin breaks the same-origin rule.
    let f = failures_of(
        "message",
        &ACTOR.replace("https://a.example/inbox\"", "https://evil.example/inbox\""),
    );
    assert_eq!(f.len(), 1, "{f:?}");
    assert!(f[0].contains("invalid"), "{f:?}");
    // A Multikey that is not what the example seed gives.
    let f = failures_of(
        "message",
        &ACTOR.replace(
            "z6Mkon3Necd6NkkyfoGoHxid2znGc59LU3K7mubaRcFbLfLX",
            "z6MkiTBz1ymuepAQ4HEHYSF1H8quG5GLVVQR3djdX3mDooWp",
        ),
    );
    assert_eq!(f.len(), 1, "{f:?}");
    assert!(f[0].contains("its example seed gives"), "{f:?}");
}

#[test]
fn webfinger_that_the_node_would_not_serve_is_refused() {
    let jrd = r#"{"subject": "acct:a@a.example", "aliases": ["https://a.example/actor"],
      "links": [{"rel": "self", "type": "application/activity+json", "href": "https://a.example/actor"}]}"#;
    assert_eq!(failures_of("webfinger", jrd), Vec::<String>::new());
    let f = failures_of(
        "webfinger",
        &jrd.replace(
            r#"["https://a.example/actor"]"#,
            r#"["https://a.example/other"]"#,
        ),
    );
    assert_eq!(f.len(), 1, "{f:?}");
    assert!(f[0].contains("the node would answer"), "{f:?}");
}
