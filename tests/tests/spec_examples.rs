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
//!   table of §12.
//!
//! A fenced block without a marker is refused unless its info string is `text` (figures,
//! not examples), and an unknown marker is refused: nothing in the spec looks like an
//! example without being checked. The error table (`<!-- error-codes -->`) is checked for
//! well-formedness too.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use passerelle_protocol::keys::SigningKey;
use serde_json::Value;

fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent")
        .to_path_buf()
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
    let rows = markdown[start..]
        .lines()
        .skip(1)
        .skip_while(|l| l.trim().is_empty())
        .take_while(|l| l.trim_start().starts_with('|'))
        .skip(2); // header and separator
    for row in rows {
        let cells: Vec<&str> = row
            .trim()
            .trim_matches('|')
            .split('|')
            .map(str::trim)
            .collect();
        if cells.len() != 4 {
            problems.push(format!("row with {} cells: {row}", cells.len()));
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
| `digest_mismatch` | 400 | final | x |\n| `rate_limited` | 429 | after | y |\n";

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
