//! Exports of a feed query (pure text builders): CSV (for spreadsheets), Atom (RFC 4287,
//! for feed readers) and iCalendar (RFC 5545, the days of immersions and training
//! sessions). Postings come from other nodes: every value is escaped for its format, and
//! CSV cells that a spreadsheet would run as a formula are neutralised.

use serde_json::Value;
use time::OffsetDateTime;

use crate::domain::search::{self, IndexEntry, field};
use crate::feed::{self, Names};
use crate::store::FeedItem;

/// Kinds whose days go to the calendar export.
pub const CALENDAR_KINDS: [&str; 3] = ["immersion_offer", "immersion_swap", "training_session"];

/// A feed item with its document (when still stored).
pub type ItemWithDoc = (FeedItem, Option<Value>);

/// One CSV cell: quoted, inner quotes doubled; a leading `=`, `+`, `-`, `@`, tab or
/// carriage return gets a `'` so spreadsheets show it as text (CSV injection).
pub fn csv_cell(value: &str) -> String {
    let guarded = if value.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{value}")
    } else {
        value.to_owned()
    };
    format!("\"{}\"", guarded.replace('"', "\"\""))
}

fn join_terms(entry: &Option<IndexEntry>, f: &str) -> String {
    entry
        .as_ref()
        .map(|e| {
            e.terms
                .iter()
                .filter(|(k, _)| *k == f)
                .map(|(_, v)| v.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        })
        .unwrap_or_default()
}

/// The CSV export: a UTF-8 byte order mark (for spreadsheet software), `;` separators
/// (the French spreadsheet default), CRLF line ends, a header line.
pub fn csv(items: &[ItemWithDoc], names: &Names, console_url: &dyn Fn(&str) -> String) -> String {
    let header = [
        "Intitulé",
        "Type d'offre",
        "Statut",
        "Employeur",
        "Publiée par",
        "Relayée par",
        "Catégories",
        "Filières",
        "Cadres d'emplois",
        "Métiers (ROME)",
        "Départements",
        "Communes",
        "Date limite",
        "Prise de poste",
        "Quotité (%)",
        "Télétravail",
        "Publiée le",
        "Mise à jour le",
        "Signature vérifiée (clé)",
        "Identifiant",
        "Lien",
    ];
    let mut out = String::from("\u{feff}");
    out.push_str(
        &header
            .iter()
            .map(|h| csv_cell(h))
            .collect::<Vec<_>>()
            .join(";"),
    );
    out.push_str("\r\n");
    for (item, doc) in items {
        let entry = doc.as_ref().map(IndexEntry::from_document);
        let cells = [
            item.name.clone(),
            feed::label(feed::KINDS, &item.kind)
                .unwrap_or(&item.kind)
                .to_owned(),
            feed::label(feed::STATUSES, &item.status)
                .unwrap_or(&item.status)
                .to_owned(),
            item.employer.clone().unwrap_or_default(),
            names.of(&item.author),
            item.relayed_by
                .as_deref()
                .map(|r| names.of(r))
                .unwrap_or_default(),
            join_terms(&entry, field::CATEGORIE),
            join_terms(&entry, field::FILIERE),
            join_terms(&entry, field::CADRE),
            join_terms(&entry, field::ROME),
            join_terms(&entry, field::DEPARTEMENT),
            join_terms(&entry, field::COMMUNE),
            item.apply_until.clone().unwrap_or_default(),
            item.start.clone().unwrap_or_default(),
            item.quotite_pct.map(|q| q.to_string()).unwrap_or_default(),
            match item.telework {
                Some(true) => "oui".to_owned(),
                Some(false) => "non".to_owned(),
                None => String::new(),
            },
            feed::rfc3339(item.published_at),
            feed::rfc3339(item.updated_at),
            item.verified_key.clone().unwrap_or_default(),
            item.posting_id.clone(),
            console_url(&item.posting_id),
        ];
        out.push_str(
            &cells
                .iter()
                .map(|c| csv_cell(c))
                .collect::<Vec<_>>()
                .join(";"),
        );
        out.push_str("\r\n");
    }
    out
}

/// XML text escaping.
pub fn xml(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            // Characters XML 1.0 forbids.
            c if (c as u32) < 0x20 && !matches!(c, '\t' | '\n' | '\r') => {}
            c => out.push(c),
        }
    }
    out
}

/// The Atom feed of a query: one entry per posting, linking to its console page.
pub fn atom(
    items: &[FeedItem],
    names: &Names,
    title: &str,
    self_url: &str,
    feed_id: &str,
    console_url: &dyn Fn(&str) -> String,
) -> String {
    let updated = items
        .iter()
        .map(|i| i.updated_at)
        .max()
        .unwrap_or(OffsetDateTime::UNIX_EPOCH);
    let mut out = format!(
        "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<feed xmlns=\"http://www.w3.org/2005/Atom\" xml:lang=\"fr\">\n\
         <id>{}</id>\n<title>{}</title>\n<updated>{}</updated>\n<link rel=\"self\" href=\"{}\"/>\n\
         <generator>Passerelle</generator>\n",
        xml(feed_id),
        xml(title),
        feed::rfc3339(updated),
        xml(self_url),
    );
    for i in items {
        let kind = feed::label(feed::KINDS, &i.kind).unwrap_or(&i.kind);
        let mut summary = String::new();
        if let Some(s) = &i.summary {
            summary.push_str(s);
        }
        if let Some(d) = &i.apply_until {
            if !summary.is_empty() {
                summary.push_str(" — ");
            }
            summary.push_str(&format!("Date limite : {d}"));
        }
        out.push_str(&format!(
            "<entry>\n<id>{}</id>\n<title>{}</title>\n<updated>{}</updated>\n<published>{}</published>\n\
             <author><name>{}</name><uri>{}</uri></author>\n<category term=\"{}\" label=\"{}\"/>\n\
             <link rel=\"alternate\" type=\"text/html\" href=\"{}\"/>\n<summary>{}</summary>\n</entry>\n",
            xml(&i.posting_id),
            xml(&i.name),
            feed::rfc3339(i.updated_at),
            feed::rfc3339(i.published_at),
            xml(&names.of(&i.author)),
            xml(&i.author),
            xml(&i.kind),
            xml(kind),
            xml(&console_url(&i.posting_id)),
            xml(&summary),
        ));
    }
    out.push_str("</feed>\n");
    out
}

/// iCalendar text escaping (RFC 5545 §3.3.11).
pub fn ics_text(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            ';' => out.push_str("\\;"),
            ',' => out.push_str("\\,"),
            '\n' => out.push_str("\\n"),
            '\r' => {}
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out
}

/// Folds a content line at 75 octets (RFC 5545 §3.1), never inside a UTF-8 character.
fn fold_line(line: &str, out: &mut String) {
    let mut len = 0;
    for c in line.chars() {
        let n = c.len_utf8();
        if len + n > 75 {
            out.push_str("\r\n ");
            len = 1;
        }
        out.push(c);
        len += n;
    }
    out.push_str("\r\n");
}

fn compact_day(d: &str) -> String {
    d.replace('-', "")
}

fn next_day(d: &str) -> Option<String> {
    let fmt = time::macros::format_description!("[year]-[month]-[day]");
    let date = time::Date::parse(d, fmt).ok()?.next_day()?;
    date.format(time::macros::format_description!("[year][month][day]"))
        .ok()
}

/// The iCalendar export: one all-day event per day of each immersion, swap or training
/// posting.
pub fn ics(
    items: &[ItemWithDoc],
    names: &Names,
    now: OffsetDateTime,
    console_url: &dyn Fn(&str) -> String,
) -> String {
    let stamp = now
        .format(time::macros::format_description!(
            "[year][month][day]T[hour][minute][second]Z"
        ))
        .unwrap_or_default();
    let mut out = String::new();
    for l in [
        "BEGIN:VCALENDAR",
        "VERSION:2.0",
        "PRODID:-//Passerelle//Fil des offres//FR",
        "CALSCALE:GREGORIAN",
        "METHOD:PUBLISH",
        "X-WR-CALNAME:Passerelle — immersions et formations",
    ] {
        fold_line(l, &mut out);
    }
    for (item, doc) in items {
        let Some(doc) = doc else { continue };
        if !CALENDAR_KINDS.contains(&item.kind.as_str()) {
            continue;
        }
        let kind = feed::label(feed::KINDS, &item.kind).unwrap_or(&item.kind);
        let location = doc
            .pointer("/locations/0/address")
            .and_then(Value::as_str)
            .unwrap_or_default();
        for (day, part) in search::event_days(doc) {
            let Some(end) = next_day(&day) else { continue };
            let uid = format!(
                "{}-{}@passerelle",
                hex_sha256(&item.posting_id),
                compact_day(&day)
            );
            let mut description = format!("{kind} publiée par {}", names.of(&item.author));
            if !part.is_empty() {
                description.push_str(&format!(" ({part})"));
            }
            if let Some(s) = &item.summary {
                description.push_str(&format!("\n{s}"));
            }
            description.push_str(&format!("\n{}", console_url(&item.posting_id)));
            for l in [
                "BEGIN:VEVENT".to_owned(),
                format!("UID:{uid}"),
                format!("DTSTAMP:{stamp}"),
                format!("DTSTART;VALUE=DATE:{}", compact_day(&day)),
                format!("DTEND;VALUE=DATE:{end}"),
                format!("SUMMARY:{}", ics_text(&format!("{kind} : {}", item.name))),
                format!("DESCRIPTION:{}", ics_text(&description)),
                format!("LOCATION:{}", ics_text(location)),
                format!("URL:{}", ics_text(&console_url(&item.posting_id))),
                "TRANSP:TRANSPARENT".to_owned(),
                "END:VEVENT".to_owned(),
            ] {
                fold_line(&l, &mut out);
            }
        }
    }
    fold_line("END:VCALENDAR", &mut out);
    out
}

fn hex_sha256(s: &str) -> String {
    use sha2::Digest as _;
    hex::encode(&sha2::Sha256::digest(s.as_bytes())[..12])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_cells_are_quoted_and_defused() {
        assert_eq!(csv_cell("a;b\"c"), "\"a;b\"\"c\"");
        assert_eq!(csv_cell("=HYPERLINK(\"x\")"), "\"'=HYPERLINK(\"\"x\"\")\"");
        assert_eq!(csv_cell("-2"), "\"'-2\"");
        assert_eq!(csv_cell("Ingénieure"), "\"Ingénieure\"");
    }

    #[test]
    fn xml_and_ics_escaping() {
        assert_eq!(xml("<b>&\"'\u{1}"), "&lt;b&gt;&amp;&quot;&#39;");
        assert_eq!(ics_text("a,b;c\\d\ne"), "a\\,b\\;c\\\\d\\ne");
        let mut out = String::new();
        fold_line(&format!("SUMMARY:{}", "é".repeat(60)), &mut out);
        for line in out.split("\r\n").filter(|l| !l.is_empty()) {
            assert!(line.len() <= 75, "{line}");
        }
        assert_eq!(
            out.replace("\r\n ", ""),
            format!("SUMMARY:{}\r\n", "é".repeat(60))
        );
        assert_eq!(next_day("2027-02-28").as_deref(), Some("20270301"));
    }
}
