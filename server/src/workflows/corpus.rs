//! The `search` workflow's document collection: a tantivy full-text index, in memory, of a
//! folder the operator names (`--corpus DIR`: its `.md` and `.txt` files) or, by default, of
//! Lantern's own documentation, which is compiled into the binary.
//!
//! Documents are indexed by section (each Markdown heading starts one), so a hit points at the
//! part of a file that matters, and its snippet comes from there.

use std::path::{Path, PathBuf};

use tantivy::collector::TopDocs;
use tantivy::query::QueryParser;
use tantivy::schema::{Field, Schema, Value, STORED, TEXT};
use tantivy::snippet::SnippetGenerator;
use tantivy::{doc, Index, IndexReader, TantivyDocument};

/// Lantern's own docs: the default corpus.
const EMBEDDED: &[(&str, &str)] = &[
    ("README.md", include_str!("../../../README.md")),
    (
        "docs/PROTOCOL.md",
        include_str!("../../../docs/PROTOCOL.md"),
    ),
];

/// Files larger than this are skipped: a corpus is prose, not data dumps.
const MAX_FILE_BYTES: u64 = 4 * 1024 * 1024;
/// At most this many files are indexed from a folder.
const MAX_FILES: usize = 20_000;

/// One hit of a search.
#[derive(Clone, Debug, PartialEq)]
pub struct Hit {
    pub title: String,
    pub source: String,
    pub snippet: String,
    pub score: f32,
}

pub struct Corpus {
    index: Index,
    reader: IndexReader,
    title: Field,
    source: Field,
    body: Field,
    /// How many sections were indexed (shown in the search tool's progress).
    pub sections: usize,
}

#[derive(Debug, thiserror::Error)]
#[error("corpus: {0}")]
pub struct CorpusError(String);

impl From<tantivy::TantivyError> for CorpusError {
    fn from(e: tantivy::TantivyError) -> Self {
        Self(e.to_string())
    }
}

/// A file's sections: (heading, anchor, text). Text before the first heading is titled by the
/// file's name and has no anchor.
fn sections(name: &str, text: &str) -> Vec<(String, String, String)> {
    let mut out: Vec<(String, String, String)> = Vec::new();
    let (mut heading, mut anchor) = (name.to_owned(), String::new());
    let mut body = String::new();
    let mut in_code = false;
    for line in text.lines() {
        if line.trim_start().starts_with("```") {
            in_code = !in_code;
        }
        if !in_code && line.starts_with('#') {
            if !body.trim().is_empty() {
                out.push((heading, anchor, std::mem::take(&mut body)));
            }
            body.clear();
            heading = line.trim_start_matches('#').trim().to_owned();
            anchor = slug(&heading);
        } else {
            body.push_str(line);
            body.push('\n');
        }
    }
    if !body.trim().is_empty() {
        out.push((heading, anchor, body));
    }
    out
}

/// A heading as a URL fragment, GitHub style.
fn slug(heading: &str) -> String {
    heading
        .to_lowercase()
        .chars()
        .filter_map(|c| match c {
            'a'..='z' | '0'..='9' | '-' | '_' => Some(c),
            ' ' => Some('-'),
            _ => None,
        })
        .collect()
}

impl Corpus {
    /// Lantern's own documentation.
    pub fn embedded() -> Result<Self, CorpusError> {
        Self::build(
            EMBEDDED
                .iter()
                .map(|(n, t)| ((*n).to_owned(), (*t).to_owned())),
        )
    }

    /// Every `.md` and `.txt` file under `dir`.
    pub fn from_dir(dir: &Path) -> Result<Self, CorpusError> {
        let mut files = Vec::new();
        collect(dir, dir, &mut files)?;
        if files.is_empty() {
            return Err(CorpusError(format!(
                "{} holds no .md or .txt files",
                dir.display()
            )));
        }
        Self::build(files.into_iter())
    }

    fn build(files: impl Iterator<Item = (String, String)>) -> Result<Self, CorpusError> {
        let mut schema = Schema::builder();
        let title = schema.add_text_field("title", TEXT | STORED);
        let source = schema.add_text_field("source", STORED);
        let body = schema.add_text_field("body", TEXT | STORED);
        let index = Index::create_in_ram(schema.build());
        let mut writer = index.writer(15_000_000)?;
        let mut count = 0;
        for (name, text) in files {
            for (heading, anchor, section) in sections(&name, &text) {
                let at = if anchor.is_empty() {
                    name.clone()
                } else {
                    format!("{name}#{anchor}")
                };
                writer.add_document(doc!(title => heading, source => at, body => section))?;
                count += 1;
            }
        }
        writer.commit()?;
        let reader = index.reader()?;
        Ok(Self {
            index,
            reader,
            title,
            source,
            body,
            sections: count,
        })
    }

    /// The best `limit` sections for `query` (words, any of them; no query syntax needed).
    pub fn search(&self, query: &str, limit: usize) -> Result<Vec<Hit>, CorpusError> {
        let searcher = self.reader.searcher();
        let parser = QueryParser::for_index(&self.index, vec![self.title, self.body]);
        let (query, _) = parser.parse_query_lenient(query);
        let top = searcher.search(&query, &TopDocs::with_limit(limit).order_by_score())?;
        let mut snippets = SnippetGenerator::create(&searcher, &*query, self.body)?;
        snippets.set_max_num_chars(220);
        let text = |doc: &TantivyDocument, field| {
            doc.get_first(field)
                .and_then(|v| v.as_str())
                .unwrap_or_default()
                .to_owned()
        };
        let mut hits = Vec::with_capacity(top.len());
        for (score, address) in top {
            let doc: TantivyDocument = searcher.doc(address)?;
            let mut snippet = snippets.snippet_from_doc(&doc).fragment().trim().to_owned();
            if snippet.is_empty() {
                snippet = text(&doc, self.body).chars().take(220).collect();
            }
            hits.push(Hit {
                title: text(&doc, self.title),
                source: text(&doc, self.source),
                snippet: snippet.split_whitespace().collect::<Vec<_>>().join(" "),
                score,
            });
        }
        Ok(hits)
    }
}

fn collect(root: &Path, dir: &Path, files: &mut Vec<(String, String)>) -> Result<(), CorpusError> {
    let entries = std::fs::read_dir(dir)
        .map_err(|e| CorpusError(format!("cannot read {}: {e}", dir.display())))?;
    let mut paths: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
    paths.sort();
    for path in paths {
        if files.len() >= MAX_FILES {
            return Ok(());
        }
        if path.is_dir() {
            collect(root, &path, files)?;
            continue;
        }
        let wanted = matches!(
            path.extension().and_then(|e| e.to_str()),
            Some("md" | "txt" | "markdown")
        );
        let small = path.metadata().is_ok_and(|m| m.len() <= MAX_FILE_BYTES);
        if !(wanted && small) {
            continue;
        }
        // Files that are not UTF-8 are skipped, not fatal.
        if let Ok(text) = std::fs::read_to_string(&path) {
            let name = path.strip_prefix(root).unwrap_or(&path);
            files.push((name.to_string_lossy().into_owned(), text));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markdown_is_split_into_sections_by_heading() {
        let text = "intro line\n# First\none\n```\n# not a heading\n```\n## Second part\ntwo\n";
        let found = sections("a.md", text);
        let titles: Vec<&str> = found.iter().map(|s| s.0.as_str()).collect();
        assert_eq!(titles, ["a.md", "First", "Second part"]);
        assert_eq!(
            (found[0].1.as_str(), found[2].1.as_str()),
            ("", "second-part")
        );
        assert!(found[1].2.contains("# not a heading"));
    }

    #[test]
    fn the_best_section_comes_first() {
        let corpus = Corpus::build(
            [
                (
                    "otters.md".to_owned(),
                    "# Otters\nOtters hold hands while they sleep.\n# Rivers\nWater flows."
                        .to_owned(),
                ),
                (
                    "bees.md".to_owned(),
                    "# Bees\nBees dance to tell where flowers are.".to_owned(),
                ),
            ]
            .into_iter(),
        )
        .expect("index");
        assert_eq!(corpus.sections, 3);
        let hits = corpus
            .search("why do otters hold hands?", 5)
            .expect("search");
        assert_eq!(hits[0].source, "otters.md#otters");
        assert!(hits[0].snippet.contains("hold hands"), "{:?}", hits[0]);
        assert!(hits.iter().all(|h| h.source != "bees.md#bees"));
    }

    #[test]
    fn the_embedded_docs_are_searchable() {
        let corpus = Corpus::embedded().expect("index");
        let hits = corpus
            .search("grace period agent reconnect", 3)
            .expect("search");
        assert!(hits[0].source.starts_with("docs/PROTOCOL.md"), "{hits:?}");
    }
}
