//! Every example of `spec/protocol.md` is checked here.
//!
//! An example is a fenced code block preceded (on the previous non-blank line) by an HTML
//! comment `<!-- example: MARKER -->`. The marker says how the block is checked:
//!
//! - `spec/examples/NAME.json`: the block equals that file, and (outside `discovery/`) is a
//!   message that `protocol::vocab` parses, validates and re-serialises unchanged (the
//!   vocabulary tests also schema-check the files);
//! - `multikey seed=HEX`: a `Multikey` document whose `publicKeyMultibase` is recomputed
//!   from the seed with `passerelle_protocol::keys`;
//! - `problem`: an RFC 9457 problem whose `code` and `status` must agree with the error
//!   table of §12;
//! - `message`: a Passerelle message that `protocol::vocab` parses, validates (production
//!   rules) and re-serialises to the same JSON; its `Multikey`s are the example keys, and
//!   every `proof` in it (and in its embedded `object`, `target`, `orderedItems`) is
//!   re-computed with `protocol::proof` from the example key and `created` it names, must
//!   give the same document, and must verify;
//! - `httpsig-base`: the RFC 9421 signature base of the preceding `httpsig` example, as
//!   `httpsig::parse_signature` builds it;
//! - `httpsig`: an HTTP request (request line, header fields, blank line, body) re-signed
//!   with `httpsig::sign_passerelle_request` from the example key and `created` of its
//!   `Signature-Input`: `Content-Digest`, `Signature-Input` and `Signature` must be equal,
//!   and the request must verify under `VerifyPolicy::passerelle`;
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
use passerelle_protocol::mad::TRANSITIONS;
use passerelle_protocol::vocab::{
    Jrd, Message, NodeInfo, NodeInfoUsage, ValidationContext, parse_acct,
};
use passerelle_protocol::{httpsig, proof};
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
    // Discovery documents are not messages; the others must also be valid messages.
    if path.starts_with("spec/examples/discovery/") {
        parse_json(block).map(|_| ())
    } else {
        check_parses_and_round_trips(block).map(|_| ())
    }
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
    let value = check_parses_and_round_trips(block)?;
    check_multikeys_in(&value, keys)?;
    check_proofs_deep(keys, &value)
}

/// Parsed by `protocol::vocab`, valid under the production rules, and re-serialised
/// without losing or changing a member; returns the JSON.
fn check_parses_and_round_trips(block: &Block) -> Result<Value, String> {
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
    Ok(value)
}

/// A document with `proof`s made by example keys: re-signing the document without its
/// proofs, proof by proof with the same key and `created`, gives exactly the same
/// document, and every proof verifies.
fn check_proofs(keys: &Keys, value: &Value) -> Result<(), String> {
    let infos = proof::proofs(value).map_err(|e| format!("proof: {e}"))?;
    let mut unsigned = value.clone();
    if let Some(map) = unsigned.as_object_mut() {
        map.remove("proof");
    }
    let mut resigned = unsigned;
    let mut public = Vec::new();
    for info in &infos {
        let key = keys.get(&info.verification_method).ok_or_else(|| {
            format!(
                "proof by `{}`, which is not an example key of §1.5",
                info.verification_method
            )
        })?;
        let created = info.created.ok_or("proof without `created`")?;
        let options = proof::ProofOptions::new(info.verification_method.clone(), created);
        resigned = proof::sign(resigned, key, &options).map_err(|e| format!("cannot sign: {e}"))?;
        public.push((info.verification_method.clone(), key.public_key()));
    }
    if &resigned != value {
        return Err(format!(
            "re-signing with the example keys gives:\n{}",
            serde_json::to_string_pretty(&resigned).unwrap_or_default()
        ));
    }
    proof::verify(value.clone(), &public).map_err(|e| format!("proof does not verify: {e}"))?;
    Ok(())
}

/// Checks the proofs of `value` and of the messages embedded in it (`object`, `target`,
/// `orderedItems`), wherever a `proof` is present.
fn check_proofs_deep(keys: &Keys, value: &Value) -> Result<(), String> {
    if value.get("proof").is_some() {
        check_proofs(keys, value)
            .map_err(|e| format!("{}: {e}", value["id"].as_str().unwrap_or("(no id)")))?;
    }
    for member in ["object", "target"] {
        if let Some(inner) = value.get(member).filter(|v| v.is_object()) {
            check_proofs_deep(keys, inner)?;
        }
    }
    if let Some(items) = value.get("orderedItems").and_then(Value::as_array) {
        items
            .iter()
            .try_for_each(|item| check_proofs_deep(keys, item))?;
    }
    Ok(())
}

/// An HTTP request written in a spec example: request line, header lines, a blank line and
/// the body (the rest of the block, without a final newline).
struct HttpExample {
    method: String,
    target_uri: String,
    headers: Vec<(String, String)>,
    body: String,
}

fn parse_http(block: &Block) -> Result<HttpExample, String> {
    let (head, body) = match block.body.split_once("\n\n") {
        Some((head, body)) => (head, body.to_string()),
        None => (block.body.as_str(), String::new()),
    };
    let mut lines = head.lines();
    let request_line = lines.next().ok_or("empty request")?;
    let mut parts = request_line.split(' ');
    let (Some(method), Some(path), Some("HTTP/1.1"), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(format!("`{request_line}` is not `METHOD /path HTTP/1.1`"));
    };
    let mut headers = Vec::new();
    for line in lines {
        let (name, value) = line
            .split_once(':')
            .ok_or_else(|| format!("`{line}` is not a header field"))?;
        headers.push((name.to_string(), value.trim().to_string()));
    }
    let host = headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case("host"))
        .map(|(_, v)| v.clone())
        .ok_or("no Host header")?;
    Ok(HttpExample {
        method: method.to_string(),
        target_uri: format!("https://{host}{path}"),
        headers,
        body,
    })
}

fn header<'a>(example: &'a HttpExample, name: &str) -> Option<&'a str> {
    example
        .headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

/// A signed request: re-signed with the example key named by its `keyid` at its `created`,
/// it must give the same `Content-Digest`, `Signature-Input` and `Signature`, and it must
/// verify under Passerelle's policy at `created`.
fn check_httpsig(keys: &Keys, block: &Block) -> Result<String, String> {
    let example = parse_http(block)?;
    let input = header(&example, "signature-input").ok_or("no Signature-Input")?;
    let key_id = input
        .split("keyid=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .ok_or("Signature-Input has no keyid")?;
    let created: i64 = input
        .split(";created=")
        .nth(1)
        .and_then(|rest| rest.split(';').next())
        .and_then(|n| n.parse().ok())
        .ok_or("Signature-Input has no created")?;
    let key = keys
        .get(key_id)
        .ok_or_else(|| format!("keyid `{key_id}` is not an example key of §1.5"))?;
    let unsigned: Vec<(&str, &str)> = example
        .headers
        .iter()
        .filter(|(n, _)| {
            !["content-digest", "signature-input", "signature"]
                .contains(&n.to_ascii_lowercase().as_str())
        })
        .map(|(n, v)| (n.as_str(), v.as_str()))
        .collect();
    let signed = httpsig::sign_passerelle_request(
        &example.method,
        &example.target_uri,
        &unsigned,
        example.body.as_bytes(),
        key,
        key_id,
        created,
    )
    .map_err(|e| format!("cannot sign: {e}"))?;
    let mut expected = Vec::new();
    if let Some(digest) = &signed.content_digest {
        expected.push(("Content-Digest", digest.as_str()));
    }
    expected.push(("Signature-Input", signed.signature.signature_input.as_str()));
    expected.push(("Signature", signed.signature.signature.as_str()));
    for (name, value) in &expected {
        if header(&example, name) != Some(value) {
            return Err(format!("{name} should be `{value}`"));
        }
    }
    if signed.content_digest.is_none() && header(&example, "content-digest").is_some() {
        return Err("a request without a body carries no Content-Digest".to_string());
    }
    let all: Vec<(&str, &str)> = example
        .headers
        .iter()
        .map(|(n, v)| (n.as_str(), v.as_str()))
        .collect();
    let parts = httpsig::RequestParts {
        method: &example.method,
        target_uri: &example.target_uri,
        headers: &all,
        body: example.body.as_bytes(),
    };
    let candidate = httpsig::parse_signature(&parts, Some(httpsig::PASSERELLE_LABEL))
        .map_err(|e| format!("cannot parse the signature: {e}"))?;
    candidate
        .verify(
            &key.public_key(),
            &httpsig::VerifyPolicy::passerelle(created),
        )
        .map_err(|e| format!("does not verify: {e}"))?;
    Ok(candidate.base().to_string())
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
    let expected_type = format!("https://w3id.org/passerelle/problems#{code}");
    if doc["type"] != expected_type.as_str() {
        return Err(format!("`type` must be `{expected_type}`"));
    }
    Ok(())
}

/// `CamelCase` to `snake_case` (the names of `mad::Check`, which has no wire form).
fn snake_case(name: &str) -> String {
    let mut out = String::new();
    for (i, c) in name.chars().enumerate() {
        if c.is_ascii_uppercase() {
            if i > 0 {
                out.push('_');
            }
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

/// The §4.3 table (`<!-- mad-transitions -->`) must be `protocol::mad::TRANSITIONS`, row by
/// row: same transitions in the same order, same states, parties, checks and legal basis.
fn check_mad_table(markdown: &str) -> Result<(), String> {
    let start = markdown
        .find("<!-- mad-transitions -->")
        .ok_or("the spec has no `<!-- mad-transitions -->` table")?;
    let rows = table_rows(&markdown[start..]);
    let list = |cell: &str| -> Vec<String> {
        if cell == "—" {
            Vec::new()
        } else {
            cell.split(", ")
                .map(|x| x.trim_matches('`').to_string())
                .collect()
        }
    };
    let mut problems = Vec::new();
    if rows.len() != TRANSITIONS.len() {
        problems.push(format!(
            "the table has {} rows, protocol::mad::TRANSITIONS has {}",
            rows.len(),
            TRANSITIONS.len()
        ));
    }
    for (row, rule) in rows.iter().zip(TRANSITIONS) {
        let expected = [
            vec![rule.transition.as_str().to_string()],
            rule.from.iter().map(|s| s.as_str().to_string()).collect(),
            vec![rule.to.as_str().to_string()],
            rule.parties
                .iter()
                .map(|p| p.as_str().to_string())
                .collect(),
            rule.checks
                .iter()
                .map(|c| snake_case(&format!("{c:?}")))
                .collect(),
            vec![rule.legal_basis.to_string()],
        ];
        if row.len() != 6 {
            problems.push(format!("row {row:?} does not have 6 cells"));
            continue;
        }
        for (column, (cell, want)) in row.iter().zip(&expected).enumerate() {
            let got = if column == 5 {
                vec![cell.to_string()]
            } else {
                list(cell)
            };
            if &got != want {
                problems.push(format!(
                    "transition `{}`, column {}: the spec says {got:?}, the code {want:?}",
                    rule.transition.as_str(),
                    column + 1
                ));
            }
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems.join("\n"))
    }
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
    if markdown.contains("<!-- mad-transitions -->")
        && let Err(e) = check_mad_table(markdown)
    {
        failures.push(format!("MAD transition table (§4.3): {e}"));
    }
    let blocks = match extract_blocks(markdown) {
        Ok(blocks) => blocks,
        Err(e) => return (0, vec![e]),
    };
    let mut checked = 0;
    // The signature base of the last `httpsig` example, for `httpsig-base`.
    let mut last_base: Option<String> = None;
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
                "httpsig" => check_httpsig(&keys, block).map(|base| {
                    last_base = Some(base);
                }),
                "httpsig-base" => match &last_base {
                    Some(base) if *base == block.body => Ok(()),
                    Some(base) => Err(format!(
                        "the signature base of the preceding request is:\n{base}"
                    )),
                    None => Err("no `httpsig` example precedes this base".to_string()),
                },
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
        r#"{"type": "https://w3id.org/passerelle/problems#digest_mismatch", "title": "t", "status": 401, "detail": "d", "code": "digest_mismatch"}"#
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

/// A `Follow` from `a.example` signed with the checker's example key (seed `01` × 32).
fn signed_follow() -> Value {
    let follow = serde_json::json!({
        "@context": ["https://www.w3.org/ns/activitystreams",
            "https://w3id.org/security/data-integrity/v2", "https://w3id.org/passerelle/v1"],
        "id": "https://a.example/activities/019ab4e2-7c10-7a3b-9d21-5f0e8c6a4b01",
        "type": "Follow", "actor": "https://a.example/actor", "object": "https://b.example/actor",
        "to": ["https://b.example/actor"], "published": "2026-11-23T08:00:00Z"});
    let options = proof::ProofOptions::new(
        "https://a.example/actor#k",
        time::macros::datetime!(2026-11-23 08:00 UTC),
    );
    proof::sign(follow, &SigningKey::from_seed(&[1; 32]), &options).unwrap()
}

#[test]
fn message_with_a_tampered_or_foreign_proof_is_refused() {
    let good = signed_follow();
    let pretty = |v: &Value| serde_json::to_string_pretty(v).unwrap();
    assert_eq!(failures_of("message", &pretty(&good)), Vec::<String>::new());
    let mut tampered = good.clone();
    tampered["published"] = "2026-11-23T08:00:09Z".into();
    let f = failures_of("message", &pretty(&tampered));
    assert_eq!(f.len(), 1, "{f:?}");
    assert!(
        f[0].contains("re-signing with the example keys gives"),
        "{f:?}"
    );
    let mut foreign = good;
    foreign["proof"]["verificationMethod"] = "https://a.example/actor#other".into();
    let f = failures_of("message", &pretty(&foreign));
    assert_eq!(f.len(), 1, "{f:?}");
    assert!(f[0].contains("not an example key"), "{f:?}");
}

#[test]
fn http_example_with_a_tampered_body_or_signature_is_refused() {
    let body = serde_json::to_string_pretty(&signed_follow()).unwrap();
    let key = SigningKey::from_seed(&[1; 32]);
    let signed = httpsig::sign_passerelle_request(
        "POST",
        "https://b.example/inbox",
        &[
            ("Host", "b.example"),
            ("Content-Type", "application/activity+json"),
        ],
        body.as_bytes(),
        &key,
        "https://a.example/actor#k",
        1_795_420_801,
    )
    .unwrap();
    let request = format!(
        "POST /inbox HTTP/1.1\nHost: b.example\nContent-Type: application/activity+json\n\
         Content-Digest: {}\nSignature-Input: {}\nSignature: {}\n\n{body}",
        signed.content_digest.unwrap(),
        signed.signature.signature_input,
        signed.signature.signature
    );
    let failures = |text: &str| {
        let md = format!("{TABLE}\n<!-- example: httpsig -->\n```http\n{text}\n```\n");
        check_spec(&workspace_root(), &md).1
    };
    assert_eq!(failures(&request), Vec::<String>::new());
    let f = failures(&request.replace("08:00:00Z\"", "08:00:09Z\""));
    assert_eq!(f.len(), 1, "{f:?}");
    assert!(f[0].contains("Content-Digest should be"), "{f:?}");
    let f = failures(&request.replace("Host: b.example", "Host: c.example"));
    assert_eq!(f.len(), 1, "{f:?}");
    assert!(f[0].contains("Signature should be"), "{f:?}");
}

#[test]
fn mad_table_that_differs_from_the_code_is_refused() {
    let markdown = std::fs::read_to_string(workspace_root().join("spec/protocol.md")).unwrap();
    assert_eq!(check_mad_table(&markdown), Ok(()));
    let changed = markdown.replacen(
        "| `agent_agrees` | `agent_review` | `agent_agreed` | `agent` |",
        "| `agent_agrees` | `agent_review` | `agent_agreed` | `origin_hr` |",
        1,
    );
    assert_ne!(changed, markdown, "the row to alter is not in the spec");
    let err = check_mad_table(&changed).unwrap_err();
    assert!(err.contains("transition `agent_agrees`, column 4"), "{err}");
}

/// Every example file of `spec/examples/` (outside `invalid/` and `discovery/`) is
/// reproduced in the spec, so that §4.4 shows an example of every message.
#[test]
fn every_example_file_is_in_the_spec() {
    let root = workspace_root();
    let markdown = std::fs::read_to_string(root.join("spec/protocol.md")).unwrap();
    let dir = root.join("spec/examples");
    let mut missing = Vec::new();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "json") {
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            let marker = format!("<!-- example: spec/examples/{name} -->");
            if !markdown.contains(&marker) {
                missing.push(name);
            }
        }
    }
    missing.sort();
    assert!(
        missing.is_empty(),
        "spec/examples files not reproduced in spec/protocol.md §4.4: {missing:?}"
    );
}
