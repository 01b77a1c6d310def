//! French text search and the feed's view of a posting (pure).
//!
//! Text analysis is the same for indexing and for queries: lower-case, French accents
//! removed ([`super::fold`]), split on anything that is not a letter or an ASCII digit (so
//! elisions such as « l'ingénieure » give `l` and `ingenieure`), French stop words
//! dropped, then the Snowball French stemmer (`rust-stemmers`) applied. SQLite's FTS5 has
//! no French stemmer, so the SQLite index stores these stems. On PostgreSQL the node
//! writes the `tsvector` and the `tsquery` itself ([`pg_tsvector`], [`TextQuery::tsquery`]),
//! equal to what the server's `french` configuration makes of the folded text (the same
//! Snowball algorithm; words holding a digit are not stemmed): no `unaccent` extension is
//! needed, and the server does not parse each posting again. Folding before stemming
//! makes « médiathèque » and « mediatheques » give the same stem, whatever accents either
//! side typed.
//!
//! [`IndexEntry::from_document`] reads what the feed filters, sorts and shows from a
//! posting document (local or received), tolerating documents from newer nodes: a missing
//! or unexpected field is left out, never an error.

use serde_json::Value;
use time::OffsetDateTime;

use super::fold;

/// French stop words (the Snowball French list, folded), never indexed nor searched.
const STOP_WORDS: &[&str] = &[
    "a", "ai", "aie", "aient", "aies", "ait", "as", "au", "aura", "aurai", "auraient", "aurais",
    "aurait", "auras", "aurez", "auriez", "aurions", "aurons", "auront", "aux", "avaient", "avais",
    "avait", "avec", "avez", "aviez", "avions", "avons", "ayant", "ayante", "ayantes", "ayants",
    "ayez", "ayons", "c", "ce", "ceci", "cela", "ces", "cet", "cette", "d", "dans", "de", "des",
    "du", "elle", "en", "es", "est", "et", "etaient", "etais", "etait", "etant", "etante",
    "etantes", "etants", "ete", "etee", "etees", "etes", "etiez", "etions", "eu", "eue", "eues",
    "eumes", "eurent", "eus", "eusse", "eussent", "eusses", "eussiez", "eussions", "eut", "eutes",
    "eux", "fumes", "furent", "fus", "fusse", "fussent", "fusses", "fussiez", "fussions", "fut",
    "futes", "ici", "il", "ils", "j", "je", "l", "la", "le", "les", "leur", "leurs", "lui", "m",
    "ma", "mais", "me", "meme", "memes", "mes", "moi", "mon", "n", "ne", "nos", "notre", "nous",
    "on", "ont", "ou", "par", "pas", "pour", "qu", "que", "quel", "quelle", "quelles", "quels",
    "qui", "s", "sa", "sans", "se", "sera", "serai", "seraient", "serais", "serait", "seras",
    "serez", "seriez", "serions", "serons", "seront", "ses", "soi", "soient", "sois", "soit",
    "sommes", "son", "sont", "soyez", "soyons", "suis", "sur", "t", "ta", "te", "tes", "toi",
    "ton", "tu", "un", "une", "vos", "votre", "vous", "y",
];

fn is_stop_word(word: &str) -> bool {
    STOP_WORDS.binary_search(&word).is_ok()
}

/// Whether `c` belongs to a word: a letter or an ASCII digit, as for PostgreSQL's text
/// search parser (« m² » is the word `m`, then a separator).
fn is_word_char(c: char) -> bool {
    c.is_alphabetic() || c.is_ascii_digit()
}

/// The folded words of `text` (lower-case, no accents, no stop words), in order.
pub fn words(text: &str) -> Vec<String> {
    fold(text)
        .split(|c: char| !is_word_char(c))
        .filter(|w| !w.is_empty() && !is_stop_word(w))
        .map(str::to_owned)
        .collect()
}

/// The Snowball French stem of a folded word.
pub fn stem(word: &str) -> String {
    let stemmer = rust_stemmers::Stemmer::create(rust_stemmers::Algorithm::French);
    stemmer.stem(word).into_owned()
}

/// Most words whose stems one thread remembers ([`push_stem`]); the memory is emptied
/// when full. With words of at most [`STEM_MEMO_WORD`] bytes, about 1.5 MB a thread at
/// most.
const STEM_MEMO: usize = 8192;

/// Longest word (in bytes) whose stem is remembered: a word is any run of letters and
/// digits, so a received document could otherwise fill the memory with long ones.
const STEM_MEMO_WORD: usize = 32;

thread_local! {
    /// Stems already computed by this thread, by folded word.
    static STEMS: std::cell::RefCell<std::collections::HashMap<String, String>> =
        std::cell::RefCell::default();
}

/// Appends the stem of the folded `word` to `out`. Job offers share most of their
/// vocabulary (« agent », « gestion », « service »…), and stemming is the dearest part of
/// indexing a received posting (a catch-up stems every posting it pulls), so each thread
/// remembers the stems it computed, up to [`STEM_MEMO`] words of at most
/// [`STEM_MEMO_WORD`] bytes.
fn push_stem(out: &mut String, word: &str) {
    if word.len() > STEM_MEMO_WORD {
        out.push_str(&stem(word));
        return;
    }
    STEMS.with_borrow_mut(|memo| {
        if let Some(stem) = memo.get(word) {
            out.push_str(stem);
            return;
        }
        let stem = stem(word);
        out.push_str(&stem);
        if memo.len() >= STEM_MEMO {
            memo.clear();
        }
        memo.insert(word.to_owned(), stem);
    });
}

/// The stems of `words`, space-separated, and where each word's stem is in them.
fn stems_of(words: &[String]) -> (String, Vec<std::ops::Range<usize>>) {
    let mut out = String::with_capacity(words.iter().map(|w| w.len() + 1).sum());
    let mut spans = Vec::with_capacity(words.len());
    for w in words {
        if !out.is_empty() {
            out.push(' ');
        }
        let start = out.len();
        push_stem(&mut out, w);
        spans.push(start..out.len());
    }
    (out, spans)
}

/// The stems of `text`, space-separated (what the SQLite index stores).
pub fn stems(text: &str) -> String {
    stems_of(&words(text)).0
}

/// The folded words of `text`, space-separated.
pub fn folded(text: &str) -> String {
    words(text).join(" ")
}

/// A text field analysed once for both indexes: its folded words and their stems.
#[derive(Debug, Clone, PartialEq)]
struct Analysed {
    words: Vec<String>,
    stems: String,
    spans: Vec<std::ops::Range<usize>>,
}

impl Analysed {
    fn new(text: &str) -> Self {
        let words = words(text);
        let (stems, spans) = stems_of(&words);
        Self {
            words,
            stems,
            spans,
        }
    }

    /// Each word's PostgreSQL lexeme ([`pg_lexeme`]), `None` for a word it skips.
    fn pg_lexemes(&self) -> impl Iterator<Item = Option<&str>> {
        self.words
            .iter()
            .zip(&self.spans)
            .map(|(w, span)| pg_lexeme(w, self.stems.get(span.clone()).unwrap_or_default()))
    }
}

/// Longest word PostgreSQL's Snowball dictionaries stem, in bytes: a longer one is kept
/// as it is.
const PG_STEMMED_BYTES: usize = 1_000;

/// The lexeme PostgreSQL's `french` text search configuration makes of a folded word
/// (already free of stop words) whose Snowball French stem is `stem`: the stem for a
/// word of letters (its `french_stem` dictionary: the same algorithm as
/// `rust-stemmers`), the word itself when it holds a digit or any other character (a
/// number or a `numword` to its parser, which go through the `simple` dictionary) or is
/// longer than [`PG_STEMMED_BYTES`]; `None` for a word longer than
/// [`PG_LEXEME_BYTES`], which the server skips (without counting its position).
pub fn pg_lexeme<'a>(word: &'a str, stem: &'a str) -> Option<&'a str> {
    if word.len() > PG_LEXEME_BYTES {
        None
    } else if word.len() <= PG_STEMMED_BYTES && word.chars().all(char::is_alphabetic) {
        Some(stem)
    } else {
        Some(word)
    }
}

/// [`IndexEntry::pg_tsvector`] of a posting whose title is `name`, whose other text is
/// `body` and whose facet tokens are `tokens` (space-separated).
pub fn pg_tsvector_of(name: &str, body: &str, tokens: &str) -> String {
    pg_tsvector(&Analysed::new(name), &Analysed::new(body), tokens)
}

/// Positions PostgreSQL's `to_tsvector` keeps for one lexeme (the first ones).
const PG_POSITIONS: usize = 255;
/// Largest position in a PostgreSQL `tsvector`: later words all get it.
const PG_LAST_POSITION: usize = 16_383;
/// Longest word of a PostgreSQL `tsvector` or `tsquery`, in bytes: `to_tsvector` and
/// `to_tsquery` skip a longer word (without counting its position), and their text forms
/// refuse it.
const PG_LEXEME_BYTES: usize = 2_047;

/// The PostgreSQL `tsvector` of a posting, in its text form: the title's lexemes at
/// positions 1, 2… weighted A, the other text's after them weighted B, and the facet
/// `tokens` (space-separated) without position. It is what
/// `setweight(to_tsvector('french', title), 'A') || setweight(to_tsvector('french', text),
/// 'B') || array_to_tsvector(tokens)` gives for the folded title and text (the store's
/// PostgreSQL tests check it against the server), built by the node so that the server
/// only reads it: parsing and stemming each posting was a sixth of the time the server
/// spent storing a pulled page.
fn pg_tsvector(name: &Analysed, body: &Analysed, tokens: &str) -> String {
    use std::collections::btree_map::{BTreeMap, Entry};
    let mut lexemes: BTreeMap<&str, Vec<(usize, char)>> = BTreeMap::new();
    // `||` shifts the right operand's positions by the left one's largest position.
    let mut offset = 0;
    for (field, weight) in [(name, 'A'), (body, 'B')] {
        let mut word_pos = 0;
        let mut last_kept = offset;
        for lexeme in field.pg_lexemes() {
            let Some(lexeme) = lexeme.filter(|l| !l.is_empty()) else {
                continue;
            };
            word_pos += 1;
            let pos = (offset + word_pos.min(PG_LAST_POSITION)).min(PG_LAST_POSITION);
            let positions = lexemes.entry(lexeme).or_default();
            let in_field = positions.iter().filter(|(_, w)| *w == weight).count();
            if in_field < PG_POSITIONS && positions.last().map(|(p, _)| *p) != Some(pos) {
                positions.push((pos, weight));
                last_kept = last_kept.max(pos);
            }
        }
        offset = last_kept;
    }
    for token in tokens.split(' ').filter(|t| !t.is_empty()) {
        if let Entry::Vacant(e) = lexemes.entry(token) {
            e.insert(Vec::new());
        }
    }
    let mut out =
        String::with_capacity(lexemes.iter().map(|(l, p)| l.len() + 3 + 6 * p.len()).sum());
    for (lexeme, positions) in &lexemes {
        if !out.is_empty() {
            out.push(' ');
        }
        out.push('\'');
        for c in lexeme.chars() {
            if c == '\'' || c == '\\' {
                out.push(c);
            }
            out.push(c);
        }
        out.push('\'');
        for (i, (pos, weight)) in positions.iter().enumerate() {
            out.push(if i == 0 { ':' } else { ',' });
            out.push_str(&pos.to_string());
            out.push(*weight);
        }
    }
    out
}

/// One search term: the folded word and its stem.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Term {
    /// Folded word (letters and ASCII digits only).
    pub word: String,
    /// Its stem.
    pub stem: String,
}

/// A parsed full-text query: every `include` term must match, no `exclude` term may.
/// Syntax: words separated by spaces; a word starting with `-` excludes.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TextQuery {
    /// Terms that must all appear.
    pub include: Vec<Term>,
    /// Terms that must not appear.
    pub exclude: Vec<Term>,
}

impl TextQuery {
    /// Parses user input. Returns `None` when nothing searchable remains (empty input or
    /// only stop words).
    pub fn parse(input: &str) -> Option<Self> {
        let mut q = Self::default();
        for raw in input.split_whitespace() {
            let (negated, raw) = match raw.strip_prefix('-') {
                Some(rest) => (true, rest),
                None => (false, raw),
            };
            for word in words(raw) {
                let term = Term {
                    stem: stem(&word),
                    word,
                };
                let list = if negated {
                    &mut q.exclude
                } else {
                    &mut q.include
                };
                if !list.contains(&term) {
                    list.push(term);
                }
            }
        }
        (!q.include.is_empty() || !q.exclude.is_empty()).then_some(q)
    }

    /// FTS5 `MATCH` expression of `terms` joined by `op` (`AND`, `OR`): each stem quoted,
    /// so no user input reaches the FTS5 query syntax.
    pub fn fts5(terms: &[Term], op: &str) -> String {
        terms
            .iter()
            .map(|t| format!("\"{}\"", t.stem.replace('"', "")))
            .collect::<Vec<_>>()
            .join(&format!(" {op} "))
    }

    /// PostgreSQL `tsquery` text of `terms` joined by `op` (`&`, `|`): each term's
    /// [`pg_lexeme`], quoted, which is what `to_tsquery('french', …)` makes of the folded
    /// word; like it, a word too long to be indexed is left out (the text form refuses
    /// it), and none left gives an empty query, which matches nothing. Words hold letters
    /// and ASCII digits only, so they need no escaping.
    pub fn tsquery(terms: &[Term], op: &str) -> String {
        terms
            .iter()
            .filter_map(|t| pg_lexeme(&t.word, &t.stem))
            .map(|l| format!("'{l}'"))
            .collect::<Vec<_>>()
            .join(&format!(" {op} "))
    }
}

/// Names of the départements (COG) with their région code.
pub const DEPARTEMENTS: &[(&str, &str, &str)] = &[
    ("01", "Ain", "84"),
    ("02", "Aisne", "32"),
    ("03", "Allier", "84"),
    ("04", "Alpes-de-Haute-Provence", "93"),
    ("05", "Hautes-Alpes", "93"),
    ("06", "Alpes-Maritimes", "93"),
    ("07", "Ardèche", "84"),
    ("08", "Ardennes", "44"),
    ("09", "Ariège", "76"),
    ("10", "Aube", "44"),
    ("11", "Aude", "76"),
    ("12", "Aveyron", "76"),
    ("13", "Bouches-du-Rhône", "93"),
    ("14", "Calvados", "28"),
    ("15", "Cantal", "84"),
    ("16", "Charente", "75"),
    ("17", "Charente-Maritime", "75"),
    ("18", "Cher", "24"),
    ("19", "Corrèze", "75"),
    ("21", "Côte-d'Or", "27"),
    ("22", "Côtes-d'Armor", "53"),
    ("23", "Creuse", "75"),
    ("24", "Dordogne", "75"),
    ("25", "Doubs", "27"),
    ("26", "Drôme", "84"),
    ("27", "Eure", "28"),
    ("28", "Eure-et-Loir", "24"),
    ("29", "Finistère", "53"),
    ("2A", "Corse-du-Sud", "94"),
    ("2B", "Haute-Corse", "94"),
    ("30", "Gard", "76"),
    ("31", "Haute-Garonne", "76"),
    ("32", "Gers", "76"),
    ("33", "Gironde", "75"),
    ("34", "Hérault", "76"),
    ("35", "Ille-et-Vilaine", "53"),
    ("36", "Indre", "24"),
    ("37", "Indre-et-Loire", "24"),
    ("38", "Isère", "84"),
    ("39", "Jura", "27"),
    ("40", "Landes", "75"),
    ("41", "Loir-et-Cher", "24"),
    ("42", "Loire", "84"),
    ("43", "Haute-Loire", "84"),
    ("44", "Loire-Atlantique", "52"),
    ("45", "Loiret", "24"),
    ("46", "Lot", "76"),
    ("47", "Lot-et-Garonne", "75"),
    ("48", "Lozère", "76"),
    ("49", "Maine-et-Loire", "52"),
    ("50", "Manche", "28"),
    ("51", "Marne", "44"),
    ("52", "Haute-Marne", "44"),
    ("53", "Mayenne", "52"),
    ("54", "Meurthe-et-Moselle", "44"),
    ("55", "Meuse", "44"),
    ("56", "Morbihan", "53"),
    ("57", "Moselle", "44"),
    ("58", "Nièvre", "27"),
    ("59", "Nord", "32"),
    ("60", "Oise", "32"),
    ("61", "Orne", "28"),
    ("62", "Pas-de-Calais", "32"),
    ("63", "Puy-de-Dôme", "84"),
    ("64", "Pyrénées-Atlantiques", "75"),
    ("65", "Hautes-Pyrénées", "76"),
    ("66", "Pyrénées-Orientales", "76"),
    ("67", "Bas-Rhin", "44"),
    ("68", "Haut-Rhin", "44"),
    ("69", "Rhône", "84"),
    ("70", "Haute-Saône", "27"),
    ("71", "Saône-et-Loire", "27"),
    ("72", "Sarthe", "52"),
    ("73", "Savoie", "84"),
    ("74", "Haute-Savoie", "84"),
    ("75", "Paris", "11"),
    ("76", "Seine-Maritime", "28"),
    ("77", "Seine-et-Marne", "11"),
    ("78", "Yvelines", "11"),
    ("79", "Deux-Sèvres", "75"),
    ("80", "Somme", "32"),
    ("81", "Tarn", "76"),
    ("82", "Tarn-et-Garonne", "76"),
    ("83", "Var", "93"),
    ("84", "Vaucluse", "93"),
    ("85", "Vendée", "52"),
    ("86", "Vienne", "75"),
    ("87", "Haute-Vienne", "75"),
    ("88", "Vosges", "44"),
    ("89", "Yonne", "27"),
    ("90", "Territoire de Belfort", "27"),
    ("91", "Essonne", "11"),
    ("92", "Hauts-de-Seine", "11"),
    ("93", "Seine-Saint-Denis", "11"),
    ("94", "Val-de-Marne", "11"),
    ("95", "Val-d'Oise", "11"),
    ("971", "Guadeloupe", "01"),
    ("972", "Martinique", "02"),
    ("973", "Guyane", "03"),
    ("974", "La Réunion", "04"),
    ("975", "Saint-Pierre-et-Miquelon", ""),
    ("976", "Mayotte", "06"),
];

/// Names of the régions (COG, since 2016).
pub const REGIONS: &[(&str, &str)] = &[
    ("01", "Guadeloupe"),
    ("02", "Martinique"),
    ("03", "Guyane"),
    ("04", "La Réunion"),
    ("06", "Mayotte"),
    ("11", "Île-de-France"),
    ("24", "Centre-Val de Loire"),
    ("27", "Bourgogne-Franche-Comté"),
    ("28", "Normandie"),
    ("32", "Hauts-de-France"),
    ("44", "Grand Est"),
    ("52", "Pays de la Loire"),
    ("53", "Bretagne"),
    ("75", "Nouvelle-Aquitaine"),
    ("76", "Occitanie"),
    ("84", "Auvergne-Rhône-Alpes"),
    ("93", "Provence-Alpes-Côte d'Azur"),
    ("94", "Corse"),
];

/// The département code of a commune's COG code.
pub fn departement_of_commune(commune: &str) -> Option<&'static str> {
    let n = if commune.starts_with("97") { 3 } else { 2 };
    let dep = commune.get(..n)?;
    DEPARTEMENTS
        .iter()
        .find(|(code, _, _)| *code == dep)
        .map(|(code, _, _)| *code)
}

/// The région code of a département.
pub fn region_of_departement(dep: &str) -> Option<&'static str> {
    DEPARTEMENTS
        .iter()
        .find(|(code, _, _)| *code == dep)
        .map(|(_, _, region)| *region)
        .filter(|r| !r.is_empty())
}

/// The name of a département.
pub fn departement_name(dep: &str) -> Option<&'static str> {
    DEPARTEMENTS
        .iter()
        .find(|(code, _, _)| *code == dep)
        .map(|(_, name, _)| *name)
}

/// The name of a région.
pub fn region_name(region: &str) -> Option<&'static str> {
    REGIONS
        .iter()
        .find(|(code, _)| *code == region)
        .map(|(_, name)| *name)
}

/// Multi-valued facets of a posting, stored one row per value.
pub mod field {
    /// Catégorie (A, B, C).
    pub const CATEGORIE: &str = "categorie";
    /// Filière.
    pub const FILIERE: &str = "filiere";
    /// Cadre d'emplois (as written by the publisher).
    pub const CADRE: &str = "cadre";
    /// ROME code.
    pub const ROME: &str = "rome";
    /// Métier label (folded; ROME, CNFPT or local label).
    pub const METIER: &str = "metier";
    /// Département code.
    pub const DEPARTEMENT: &str = "departement";
    /// Région code.
    pub const REGION: &str = "region";
    /// Commune COG code.
    pub const COMMUNE: &str = "commune";
}

/// Date of a posting field kept for sorting when it is absent: absent dates sort last.
pub const NO_DATE: &str = "9999-12-31";

/// The full-text token of a facet value (SQLite's `feed_fts.facets`): the field, `z`,
/// then the value's UTF-8 bytes in hexadecimal, e.g. `departementz3338` for
/// département 38. Letters and digits only, so the FTS5 tokenizer keeps it whole; no
/// field name holds a `z` and hexadecimal has none, so two (field, value) pairs never
/// share a token. With these tokens the full-text index intersects words with facet
/// filters itself (a merge of two posting lists) instead of checking each text match.
pub fn facet_token(field: &str, value: &str) -> String {
    use std::fmt::Write as _;
    let mut t = String::with_capacity(field.len() + 1 + 2 * value.len());
    t.push_str(field);
    t.push('z');
    for b in value.bytes() {
        let _ = write!(t, "{b:02x}");
    }
    t
}

/// What the feed index keeps of a posting.
#[derive(Debug, Clone, PartialEq)]
pub struct IndexEntry {
    /// `postingKind`.
    pub kind: String,
    /// `status` (wire value).
    pub status: String,
    /// `visibility`.
    pub visibility: String,
    /// Title.
    pub name: String,
    /// Summary.
    pub summary: Option<String>,
    /// Employer name.
    pub employer: Option<String>,
    /// Deadline (`dates.applyUntil`), `YYYY-MM-DD`, or [`NO_DATE`].
    pub apply_until: String,
    /// Start (`dates.start`, else the first immersion, swap or training day), or [`NO_DATE`].
    pub start: String,
    /// Share of working time, percent.
    pub quotite_pct: Option<i64>,
    /// `workingTime.kind`.
    pub working_time: Option<String>,
    /// `telework.allowed`.
    pub telework: Option<bool>,
    /// `published`, Unix ms.
    pub published_ms: i64,
    /// `updated` (else `published`), Unix ms.
    pub updated_ms: i64,
    /// Multi-valued facets: (field, value), each pair once (the store inserts them as
    /// they are, under a unique key).
    pub terms: Vec<(&'static str, String)>,
    /// The title, analysed.
    name_text: Analysed,
    /// The other text, analysed.
    body_text: Analysed,
    /// [`IndexEntry::pg_tsvector`], when computed ahead ([`IndexEntry::with_pg_tsvector`]).
    pg_tsvector: Option<String>,
    /// `verificationMethod` of the posting's proof.
    pub proof_key: Option<String>,
}

impl IndexEntry {
    /// The title's stems, space-separated (SQLite's `feed_fts.name`).
    pub fn stems_name(&self) -> &str {
        &self.name_text.stems
    }

    /// The other text's stems, space-separated (SQLite's `feed_fts.body`).
    pub fn stems_body(&self) -> &str {
        &self.body_text.stems
    }

    /// The PostgreSQL `tsvector` of the title, the other text and the facet tokens, in its
    /// text form ([`pg_tsvector`]): the one computed ahead, else computed now.
    pub fn pg_tsvector(&self) -> std::borrow::Cow<'_, str> {
        match &self.pg_tsvector {
            Some(t) => std::borrow::Cow::Borrowed(t),
            None => std::borrow::Cow::Owned(pg_tsvector(
                &self.name_text,
                &self.body_text,
                &self.facet_tokens(),
            )),
        }
    }

    /// Computes [`IndexEntry::pg_tsvector`] now, for a PostgreSQL store: where postings are
    /// prepared before their transaction (a pulled page, on the threads that verified
    /// it), so that the store does not.
    #[must_use]
    pub fn with_pg_tsvector(mut self) -> Self {
        if self.pg_tsvector.is_none() {
            self.pg_tsvector = Some(self.pg_tsvector().into_owned());
        }
        self
    }

    /// The [`facet_token`]s of the multi-valued facets a filter can select by value
    /// (all but métier labels, which are matched by substring), sorted, each once,
    /// space-separated: SQLite's `feed_fts.facets`, PostgreSQL's position-less lexemes.
    pub fn facet_tokens(&self) -> String {
        let mut tokens: Vec<String> = self
            .terms
            .iter()
            .filter(|(f, _)| *f != field::METIER)
            .map(|(f, v)| facet_token(f, v))
            .collect();
        tokens.sort_unstable();
        tokens.dedup();
        tokens.join(" ")
    }
}

fn s<'a>(v: &'a Value, pointer: &str) -> Option<&'a str> {
    v.pointer(pointer).and_then(Value::as_str)
}

fn strings(v: &Value, pointer: &str) -> Vec<String> {
    match v.pointer(pointer) {
        Some(Value::Array(items)) => items
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_owned)
            .collect(),
        Some(Value::String(one)) => vec![one.clone()],
        _ => Vec::new(),
    }
}

fn array<'a>(v: &'a Value, pointer: &str) -> &'a [Value] {
    v.pointer(pointer)
        .and_then(Value::as_array)
        .map_or(&[], Vec::as_slice)
}

fn int(v: &Value, pointer: &str) -> Option<i64> {
    v.pointer(pointer).and_then(Value::as_i64)
}

fn ms(v: &Value, pointer: &str) -> Option<i64> {
    let t = OffsetDateTime::parse(
        s(v, pointer)?,
        &time::format_description::well_known::Rfc3339,
    )
    .ok()?;
    i64::try_from(t.unix_timestamp_nanos() / 1_000_000).ok()
}

fn is_day(d: &str) -> bool {
    let b = d.as_bytes();
    b.len() == 10
        && b[4] == b'-'
        && b[7] == b'-'
        && b.iter()
            .enumerate()
            .all(|(i, c)| i == 4 || i == 7 || c.is_ascii_digit())
}

/// Every day listed by an immersion, swap or training posting, sorted, with a label
/// (`journée`, `demi-journée` or empty): what the iCalendar export shows.
pub fn event_days(doc: &Value) -> Vec<(String, &'static str)> {
    let mut out: Vec<(String, &'static str)> = Vec::new();
    for slot in array(doc, "/body/slots") {
        if let Some(d) = s(slot, "/date").filter(|d| is_day(d)) {
            let label = match s(slot, "/duration") {
                Some("half_day") => "demi-journée",
                Some("day") => "journée",
                _ => "",
            };
            out.push((d.to_owned(), label));
        }
    }
    for d in strings(doc, "/body/sessionDates")
        .into_iter()
        .chain(strings(doc, "/body/proposedDates"))
    {
        if is_day(&d) {
            out.push((d, ""));
        }
    }
    out.sort();
    out.dedup();
    out
}

impl IndexEntry {
    /// Reads the indexed properties of a posting document.
    pub fn from_document(doc: &Value) -> Self {
        let mut terms: Vec<(&'static str, String)> = Vec::new();
        let mut push = |field: &'static str, value: String| {
            if !value.is_empty() && !terms.iter().any(|(f, v)| *f == field && *v == value) {
                terms.push((field, value));
            }
        };
        for c in strings(doc, "/statutory/categories") {
            push(field::CATEGORIE, c);
        }
        for f in strings(doc, "/statutory/filieres") {
            push(field::FILIERE, f);
        }
        let cadres = strings(doc, "/statutory/cadresEmplois");
        for c in &cadres {
            push(field::CADRE, c.trim().to_owned());
        }
        let mut metier_text = Vec::new();
        let metiers = array(doc, "/metiers")
            .iter()
            .chain(array(doc, "/body/wantedMetiers"));
        for m in metiers {
            if let Some(code) = s(m, "/rome/code") {
                push(field::ROME, code.to_ascii_uppercase());
                metier_text.push(code.to_owned());
            }
            for p in ["/rome/label", "/cnfpt/label", "/local/label"] {
                if let Some(label) = s(m, p) {
                    push(field::METIER, folded(label));
                    metier_text.push(label.to_owned());
                }
            }
        }
        let mut places = Vec::new();
        for loc in array(doc, "/locations") {
            if let Some(commune) = s(loc, "/commune") {
                push(field::COMMUNE, commune.to_owned());
                if let Some(dep) = departement_of_commune(commune) {
                    push(field::DEPARTEMENT, dep.to_owned());
                    if let Some(region) = region_of_departement(dep) {
                        push(field::REGION, region.to_owned());
                    }
                }
            }
            if let Some(address) = s(loc, "/address") {
                places.push(address.to_owned());
            }
        }

        let working_time = s(doc, "/workingTime/kind").map(str::to_owned);
        let quotite_pct = match working_time.as_deref() {
            Some("complet") => Some(100),
            Some("non_complet") => int(doc, "/workingTime/hebdoMinutes").map(|m| m * 100 / 2100),
            Some("quotite") => int(doc, "/workingTime/quotitePct"),
            _ => None,
        }
        .or_else(|| int(doc, "/body/quotitePct"))
        .or_else(|| int(doc, "/body/quotitePctMax"));

        let days = event_days(doc);
        let start = s(doc, "/dates/start")
            .filter(|d| is_day(d))
            .map(str::to_owned)
            .or_else(|| days.first().map(|(d, _)| d.clone()))
            .unwrap_or_else(|| NO_DATE.to_owned());
        let apply_until = s(doc, "/dates/applyUntil")
            .filter(|d| is_day(d))
            .map_or_else(|| NO_DATE.to_owned(), str::to_owned);

        let name = s(doc, "/name").unwrap_or_default().to_owned();
        let mut body_text: Vec<String> = Vec::new();
        for p in [
            "/summary",
            "/missions",
            "/profile",
            "/employer/name",
            "/employer/service",
            "/body/projectName",
            "/body/sponsorDirection",
            "/body/topic",
            "/body/format",
            "/body/programme",
            "/body/hostService",
            "/body/tutorRole",
            "/body/initiatorService",
            "/body/schedule",
        ] {
            if let Some(t) = s(doc, p) {
                body_text.push(t.to_owned());
            }
        }
        for p in [
            "/requirements",
            "/statutory/grades",
            "/body/skillsWanted",
            "/body/facilitatorSkills",
        ] {
            body_text.extend(strings(doc, p));
        }
        body_text.extend(cadres);
        body_text.extend(metier_text);
        body_text.extend(places);
        let body = body_text.join("\n");

        let published_ms = ms(doc, "/published").unwrap_or(0);
        Self {
            kind: s(doc, "/postingKind").unwrap_or_default().to_owned(),
            status: s(doc, "/status").unwrap_or("published").to_owned(),
            visibility: s(doc, "/visibility").unwrap_or_default().to_owned(),
            summary: s(doc, "/summary").map(str::to_owned),
            employer: s(doc, "/employer/name").map(str::to_owned),
            apply_until,
            start,
            quotite_pct,
            working_time,
            telework: doc.pointer("/telework/allowed").and_then(Value::as_bool),
            published_ms,
            updated_ms: ms(doc, "/updated").unwrap_or(published_ms),
            terms,
            name_text: Analysed::new(&name),
            body_text: Analysed::new(&body),
            pg_tsvector: None,
            proof_key: proof_key(doc),
            name,
        }
    }
}

/// The `verificationMethod` of a document's (first) proof.
pub fn proof_key(doc: &Value) -> Option<String> {
    match doc.get("proof") {
        Some(Value::Array(proofs)) => proofs.first(),
        Some(p) => Some(p),
        None => None,
    }
    .and_then(|p| p.get("verificationMethod"))
    .and_then(Value::as_str)
    .map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn facet_tokens_are_one_word_each_and_never_shared() {
        assert_eq!(facet_token(field::DEPARTEMENT, "38"), "departementz3338");
        let fields = [
            field::CATEGORIE,
            field::FILIERE,
            field::CADRE,
            field::ROME,
            field::METIER,
            field::DEPARTEMENT,
            field::REGION,
            field::COMMUNE,
        ];
        // The separator cannot occur in a field name (nor in hexadecimal).
        assert!(fields.iter().all(|f| !f.contains('z')));
        let values = [
            "38",
            "3",
            "83",
            "A",
            "Attachés territoriaux",
            "2A",
            "M1503",
            "",
        ];
        let mut seen = std::collections::HashSet::new();
        for f in fields {
            for v in values {
                let t = facet_token(f, v);
                assert!(
                    t.chars()
                        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit()),
                    "{t}"
                );
                assert!(seen.insert(t.clone()), "{f}/{v} shares {t}");
            }
        }
        let doc = json!({
            "statutory": {"categories": ["A"]},
            "locations": [{"commune": "38185"}],
            "metiers": [{"rome": {"code": "M1503", "label": "Management"}}]
        });
        let tokens = IndexEntry::from_document(&doc).facet_tokens();
        assert!(
            tokens.contains(&facet_token(field::CATEGORIE, "A")),
            "{tokens}"
        );
        assert!(
            tokens.contains(&facet_token(field::DEPARTEMENT, "38")),
            "{tokens}"
        );
        assert!(
            tokens.contains(&facet_token(field::ROME, "M1503")),
            "{tokens}"
        );
        assert!(!tokens.contains("metierz"), "{tokens}");
    }

    #[test]
    fn stop_words_are_sorted_for_binary_search() {
        let mut sorted = STOP_WORDS.to_vec();
        sorted.sort_unstable();
        assert_eq!(sorted, STOP_WORDS);
    }

    #[test]
    fn accents_case_and_inflections_give_one_stem() {
        for (a, b) in [
            ("ingénieure", "ingénieur"),
            ("Ingénieurs", "ingenieur"),
            ("médiathèque", "mediatheques"),
            ("Médiathèques", "MEDIATHEQUE"),
            ("techniciennes", "technicien"),
            ("animatrice", "animateurs"),
            ("éducatrice", "educateur"),
        ] {
            assert_eq!(stems(a), stems(b), "{a} / {b}");
        }
        assert_ne!(stems("jardinier"), stems("juriste"));
        assert_eq!(
            stems("L'ingénieure de la médiathèque"),
            stems("ingenieur mediatheque")
        );
    }

    /// The remembered stems are the stemmer's, before and after the memory fills up and is
    /// emptied, and the memory stays bounded.
    #[test]
    fn remembered_stems_are_the_stemmers_and_bounded() {
        let letters = |mut n: usize| {
            let mut s = String::new();
            loop {
                s.push(char::from(b'a' + u8::try_from(n % 26).unwrap()));
                n /= 26;
                if n == 0 {
                    break s;
                }
            }
        };
        let bases = [
            "technicienn",
            "animatric",
            "ingenieur",
            "gestionnair",
            "educat",
        ];
        let endings = ["es", "e", "s", "ement", ""];
        let words: Vec<String> = (0..STEM_MEMO + 700)
            .map(|n| {
                format!(
                    "{}{}{}",
                    bases[n % bases.len()],
                    letters(n),
                    endings[n % endings.len()]
                )
            })
            .collect();
        let mut words = words;
        // A word too long to be remembered is stemmed all the same.
        words.push(format!("{}ements", "x".repeat(STEM_MEMO_WORD)));
        let fresh: Vec<String> = words.iter().map(|w| stem(w)).collect();
        for _ in 0..2 {
            let (stems, spans) = stems_of(&words);
            assert_eq!(stems, fresh.join(" "));
            let each: Vec<&str> = spans.iter().map(|s| &stems[s.clone()]).collect();
            assert_eq!(each, fresh);
            STEMS.with_borrow(|memo| {
                assert!(memo.len() <= STEM_MEMO, "{}", memo.len());
                assert!(memo.keys().all(|w| w.len() <= STEM_MEMO_WORD));
            });
        }
        let text = "Techniciennes de la médiathèque, animatrices";
        let analysed = Analysed::new(text);
        assert_eq!(
            (analysed.words.join(" "), analysed.stems),
            (folded(text), stems(text))
        );
        assert_eq!(stems(text), "technicien mediathequ anim");
    }

    #[test]
    fn queries_drop_stop_words_and_keep_exclusions() {
        assert_eq!(TextQuery::parse("  de la  "), None);
        let q = TextQuery::parse("Ingénieure -stagiaire des routes").unwrap();
        let inc: Vec<_> = q.include.iter().map(|t| t.word.as_str()).collect();
        assert_eq!(inc, ["ingenieure", "routes"]);
        assert_eq!(q.exclude.len(), 1);
        assert_eq!(q.exclude[0].word, "stagiaire");
        // Quotes and operators never reach the engines' syntax.
        let q = TextQuery::parse("\"a\" OR NEAR(b) * c:d").unwrap();
        assert!(
            TextQuery::fts5(&q.include, "AND")
                .matches('"')
                .count()
                .is_multiple_of(2)
        );
        let tsquery = TextQuery::tsquery(&q.include, "&");
        assert!(
            tsquery.split(" & ").all(|lexeme| {
                let inner = lexeme.strip_prefix('\'').and_then(|l| l.strip_suffix('\''));
                inner.is_some_and(|l| !l.is_empty() && l.chars().all(is_word_char))
            }),
            "{tsquery}"
        );
    }

    #[test]
    fn geography() {
        assert_eq!(departement_of_commune("38185"), Some("38"));
        assert_eq!(departement_of_commune("2A004"), Some("2A"));
        assert_eq!(departement_of_commune("97411"), Some("974"));
        assert_eq!(region_of_departement("38"), Some("84"));
        assert_eq!(region_name("84"), Some("Auvergne-Rhône-Alpes"));
        assert_eq!(region_of_departement("975"), None);
        for (_, _, r) in DEPARTEMENTS {
            assert!(r.is_empty() || region_name(r).is_some(), "{r}");
        }
        assert_eq!(DEPARTEMENTS.len(), 102);
    }

    #[test]
    fn index_entry_of_a_vacancy() {
        let doc = json!({
            "postingKind": "vacancy", "status": "published", "visibility": "federation",
            "name": "Ingénieure voirie (H/F)", "published": "2026-11-20T09:00:00Z",
            "statutory": {"categories": ["A"], "filieres": ["technique"], "cadresEmplois": ["Ingénieurs territoriaux"]},
            "metiers": [{"rome": {"code": "F1106", "label": "Ingénierie et études du BTP"}}],
            "locations": [{"commune": "38185", "address": "Grenoble"}],
            "workingTime": {"kind": "quotite", "quotitePct": 80},
            "telework": {"allowed": true},
            "dates": {"applyUntil": "2026-12-20"},
            "proof": {"verificationMethod": "https://a.example/actor#key-1"}
        });
        let e = IndexEntry::from_document(&doc);
        assert_eq!(e.kind, "vacancy");
        assert_eq!(e.apply_until, "2026-12-20");
        assert_eq!(e.start, NO_DATE);
        assert_eq!(e.quotite_pct, Some(80));
        assert_eq!(e.telework, Some(true));
        assert_eq!(e.updated_ms, e.published_ms);
        assert!(e.published_ms > 0);
        for t in [
            (field::CATEGORIE, "A"),
            (field::FILIERE, "technique"),
            (field::CADRE, "Ingénieurs territoriaux"),
            (field::ROME, "F1106"),
            (field::COMMUNE, "38185"),
            (field::DEPARTEMENT, "38"),
            (field::REGION, "84"),
        ] {
            assert!(
                e.terms.iter().any(|(f, v)| *f == t.0 && v == t.1),
                "{t:?} in {:?}",
                e.terms
            );
        }
        assert_eq!(
            e.proof_key.as_deref(),
            Some("https://a.example/actor#key-1")
        );
        assert!(e.stems_name().contains(&stem("ingenieur")));
    }

    #[test]
    fn pg_tsvector_text_form() {
        let voirie = stem("voirie");
        assert_eq!(
            pg_tsvector_of(
                "Ingénieure voirie",
                "La voirie, 2026",
                "departementz3338 categoriez41"
            ),
            format!("'2026':4B 'categoriez41' 'departementz3338' 'ingenieur':1A '{voirie}':2A,3B")
        );
        assert_eq!(pg_tsvector_of("", "", ""), "");
        // Later words share the last position; a lexeme keeps its first 255 positions.
        let many = vec!["agent"; 20_000].join(" ");
        let v = pg_tsvector_of("", &many, "");
        assert!(v.ends_with(",255B"), "{}", &v[v.len() - 20..]);
        let v = pg_tsvector_of("", &format!("{many} fin"), "");
        assert!(v.ends_with("'fin':16383B"), "{}", &v[v.len() - 20..]);
    }

    #[test]
    fn repeated_facet_values_give_one_term() {
        // The store inserts a posting's terms under a unique key without `ON CONFLICT`:
        // a value repeated in the document, or reached twice (two communes of one
        // département), must give one term.
        let doc = json!({
            "postingKind": "vacancy", "name": "Agent d'accueil",
            "statutory": {"categories": ["C", "C"], "cadresEmplois": ["Adjoints administratifs", "Adjoints administratifs "]},
            "metiers": [
                {"rome": {"code": "M1601", "label": "Accueil"}},
                {"rome": {"code": "m1601"}, "local": {"label": "Accueil"}}
            ],
            "locations": [{"commune": "38185"}, {"commune": "38421"}, {"commune": "38185"}]
        });
        let e = IndexEntry::from_document(&doc);
        let mut distinct = e.terms.clone();
        distinct.sort();
        distinct.dedup();
        assert_eq!(distinct.len(), e.terms.len(), "{:?}", e.terms);
        let count = |field: &str| e.terms.iter().filter(|(f, _)| *f == field).count();
        assert_eq!(count(field::CATEGORIE), 1);
        assert_eq!(count(field::CADRE), 1);
        assert_eq!(count(field::ROME), 1);
        assert_eq!(count(field::METIER), 1);
        assert_eq!(count(field::COMMUNE), 2);
        assert_eq!(count(field::DEPARTEMENT), 1);
        assert_eq!(count(field::REGION), 1);
    }

    #[test]
    fn event_days_of_immersions_and_training() {
        let doc = json!({"body": {"slots": [
            {"date": "2027-03-05", "duration": "day"},
            {"date": "2027-03-04", "duration": "half_day"},
            {"date": "bad", "duration": "day"}
        ], "sessionDates": ["2027-01-10"]}});
        assert_eq!(
            event_days(&doc),
            [
                ("2027-01-10".to_owned(), ""),
                ("2027-03-04".to_owned(), "demi-journée"),
                ("2027-03-05".to_owned(), "journée")
            ]
        );
        assert_eq!(IndexEntry::from_document(&doc).start, "2027-01-10");
    }
}
