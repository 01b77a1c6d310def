//! The mobility domain's pure services: what the HR API, the federation code and the
//! console call to turn protocol data into decisions and documents.
//!
//! **This module is pure: no I/O, no store, no HTTP, no clock.** Every function takes the
//! data it needs (terms, postings, profiles, dates, bytes already read) and returns values;
//! callers read files, query the store, take `today` from the clock and send activities.
//!
//! - [`convention`]: the MAD convention (JSON document with every mandatory clause, in
//!   French) and its printable HTML page.
//! - [`verify`]: offline verification of a signed document (a convention's proof set),
//!   used by `passerelle verify`.
//! - [`metiers`]: a built-in reference list of common territorial métiers with their ROME
//!   codes, for pickers.
//! - [`matching`]: suggestions (postings for a profile, profiles for a posting), immersion
//!   swap pairing and training seat allocation.
//! - [`examples`]: the specification's example postings with their dates moved forward
//!   (for the demo and the tests).
//! - [`deadlines`]: renewal reminders, notice, the 3-year term, the mutation prompt and
//!   posting expiry.
//! - [`mad`]: the MAD workflow between two nodes on top of `protocol::mad`: legal
//!   relations between two employers, parties by side, open actions, timers.
//! - [`search`]: French text analysis for the feed (folding, stop words, Snowball
//!   stems), the feed's view of a posting, départements and régions.

pub mod convention;
pub mod deadlines;
pub mod examples;
pub mod mad;
pub mod matching;
pub mod metiers;
pub mod search;
pub mod verify;

use time::{Date, Month};

/// A date in French, as written in administrative documents: "1er mars 2027".
pub fn date_fr(d: Date) -> String {
    let month = match d.month() {
        Month::January => "janvier",
        Month::February => "février",
        Month::March => "mars",
        Month::April => "avril",
        Month::May => "mai",
        Month::June => "juin",
        Month::July => "juillet",
        Month::August => "août",
        Month::September => "septembre",
        Month::October => "octobre",
        Month::November => "novembre",
        Month::December => "décembre",
    };
    let day = d.day();
    if day == 1 {
        format!("1er {month} {}", d.year())
    } else {
        format!("{day} {month} {}", d.year())
    }
}

/// Lower-cases and strips French accents, for accent-insensitive comparisons.
pub fn fold(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars().flat_map(char::to_lowercase) {
        let base = match c {
            'à' | 'â' | 'ä' | 'á' | 'ã' => 'a',
            'ç' => 'c',
            'é' | 'è' | 'ê' | 'ë' => 'e',
            'î' | 'ï' | 'í' => 'i',
            'ô' | 'ö' | 'ó' => 'o',
            'ù' | 'û' | 'ü' | 'ú' => 'u',
            'ÿ' => 'y',
            'œ' => {
                out.push('o');
                'e'
            }
            'æ' => {
                out.push('a');
                'e'
            }
            '’' => '\'',
            other => other,
        };
        out.push(base);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::date;

    #[test]
    fn french_dates() {
        assert_eq!(date_fr(date!(2027 - 03 - 01)), "1er mars 2027");
        assert_eq!(date_fr(date!(2026 - 12 - 14)), "14 décembre 2026");
        assert_eq!(date_fr(date!(2028 - 02 - 29)), "29 février 2028");
    }

    #[test]
    fn folding() {
        assert_eq!(fold("Éducateur des APS"), "educateur des aps");
        assert_eq!(fold("Œuvre à l’école"), "oeuvre a l'ecole");
    }
}
