//! Markdown from agents (`final_report`) to HTML that is safe to put in the page.
//!
//! Agent content is untrusted: raw HTML in it is shown as text, never parsed, and links or
//! images may only point at `http(s):`, `mailto:` or same-site addresses (no `javascript:`).
//! Everything else (headings, lists, emphasis, code, tables) renders as Markdown; headings are
//! moved one level down (`#` → `<h2>`), so the page keeps its one `<h1>`.

use pulldown_cmark::{html, CowStr, Event, HeadingLevel, Options, Parser, Tag, TagEnd};

/// Render `markdown` to HTML with no raw HTML and only safe link targets.
pub fn to_safe_html(markdown: &str) -> String {
    let options =
        Options::ENABLE_TABLES | Options::ENABLE_STRIKETHROUGH | Options::ENABLE_TASKLISTS;
    let events = Parser::new_ext(markdown, options).map(|event| match event {
        // Shown literally (push_html escapes text).
        Event::Html(raw) | Event::InlineHtml(raw) => Event::Text(raw),
        Event::Start(Tag::Heading {
            level,
            id,
            classes,
            attrs,
        }) => Event::Start(Tag::Heading {
            level: demoted(level),
            id,
            classes,
            attrs,
        }),
        Event::End(TagEnd::Heading(level)) => Event::End(TagEnd::Heading(demoted(level))),
        Event::Start(Tag::Link {
            link_type,
            dest_url,
            title,
            id,
        }) => Event::Start(Tag::Link {
            link_type,
            dest_url: safe_url(dest_url),
            title,
            id,
        }),
        Event::Start(Tag::Image {
            link_type,
            dest_url,
            title,
            id,
        }) => Event::Start(Tag::Image {
            link_type,
            dest_url: safe_url(dest_url),
            title,
            id,
        }),
        other => other,
    });
    let mut out = String::with_capacity(markdown.len() * 3 / 2);
    html::push_html(&mut out, events);
    out
}

/// One heading level lower, down to `<h6>`.
fn demoted(level: HeadingLevel) -> HeadingLevel {
    match level {
        HeadingLevel::H1 => HeadingLevel::H2,
        HeadingLevel::H2 => HeadingLevel::H3,
        HeadingLevel::H3 => HeadingLevel::H4,
        HeadingLevel::H4 => HeadingLevel::H5,
        HeadingLevel::H5 | HeadingLevel::H6 => HeadingLevel::H6,
    }
}

/// `url` if it is http(s), mailto, or has no scheme at all (relative, `#anchor`); else `#`.
fn safe_url(url: CowStr<'_>) -> CowStr<'_> {
    let lower = url.trim_start().to_ascii_lowercase();
    let scheme_end = lower.find(':');
    let path_start = lower.find(['/', '?', '#']).unwrap_or(lower.len());
    let has_scheme = scheme_end.is_some_and(|at| at < path_start);
    let allowed = ["http:", "https:", "mailto:"];
    if !has_scheme || allowed.iter().any(|s| lower.starts_with(s)) {
        url
    } else {
        CowStr::Borrowed("#")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_markdown() {
        let html = to_safe_html("# Title\n\n- **one**\n- `two`\n\n[docs](https://x.dev/a)");
        assert!(html.contains("<h2>Title</h2>"), "{html}");
        assert!(html.contains("<li><strong>one</strong></li>"), "{html}");
        assert!(html.contains("<code>two</code>"), "{html}");
        assert!(
            html.contains(r#"<a href="https://x.dev/a">docs</a>"#),
            "{html}"
        );
    }

    #[test]
    fn headings_move_one_level_down() {
        let html = to_safe_html("# a\n## b\n###### f");
        assert!(
            html.contains("<h2>a</h2>") && html.contains("<h3>b</h3>"),
            "{html}"
        );
        assert!(html.contains("<h6>f</h6>"), "{html}");
        assert!(!html.contains("<h1"), "{html}");
    }

    #[test]
    fn raw_html_is_shown_as_text() {
        let html = to_safe_html("hi <script>alert(1)</script>\n\n<img src=x onerror=alert(1)>");
        assert!(!html.contains("<script"), "{html}");
        assert!(!html.contains("<img"), "{html}");
        assert!(
            html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
            "{html}"
        );
    }

    #[test]
    fn script_links_are_neutralised() {
        for target in [
            "javascript:alert(1)",
            "JaVaScRiPt:alert(1)",
            " data:text/html,x",
            "vbscript:x",
        ] {
            let html = to_safe_html(&format!("[click]({target}) ![img]({target})"));
            assert!(
                !html.to_ascii_lowercase().contains("script:"),
                "{target}: {html}"
            );
            assert!(!html.contains("data:"), "{target}: {html}");
            assert!(html.contains(r##"href="#""##), "{target}: {html}");
        }
        for fine in [
            "/w/wf_1",
            "#part",
            "docs/a.md",
            "mailto:a@b.c",
            "http://x/y:z",
        ] {
            let html = to_safe_html(&format!("[ok]({fine})"));
            assert!(
                html.contains(&format!(r#"href="{fine}""#)),
                "{fine}: {html}"
            );
        }
    }
}
