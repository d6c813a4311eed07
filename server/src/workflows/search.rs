//! `search`: the search graph users know — analyze → search → synthesize → report — over the
//! [`Corpus`](super::corpus::Corpus), with interactive follow-ups.
//!
//! Each round shows every node as a step (`node_update`), each node's agent (`agent_started`,
//! `agent_thinking`, `agent_completed`), the full-text search as a real tool call with its real
//! duration (`tool_executing`, `tool_update`, `tool_completed`), the scored passages
//! (`search_results`) and a Markdown report citing them (`final_report`). Then the workflow
//! waits for input: a question runs another round on the same workflow, "done" completes it.
//! A search that fails, panics or times out fails the workflow cleanly (the tool call, its
//! agent and its node are closed with the error first).

use std::sync::Arc;
use tracing::Instrument;

use app::protocol::{vocab::kinds, EventBody, NodeStatus, WorkflowStatus};
use serde_json::{json, Value};

use super::corpus::Hit;
use super::inbox::{Inbox, Said};
use super::stream::stream;
use super::tools::{Outcome, ToolCall};
use super::Builtins;
use crate::error::Result;
use crate::lifecycle::MessageKind;

/// Passages per search.
const HITS: usize = 5;
/// With test hooks on, a query holding one of these makes the search tool misbehave.
pub const TEST_PANIC: &str = "lantern-test-panic";
pub const TEST_STALL: &str = "lantern-test-stall";

const STOP_WORDS: &[&str] = &[
    "the", "and", "for", "are", "but", "not", "you", "all", "any", "can", "her", "was", "one",
    "our", "out", "has", "how", "its", "what", "when", "where", "which", "who", "why", "does",
    "with", "that", "this", "from", "they", "will", "would", "there", "their", "about", "into",
    "them", "then", "than", "some", "could", "should", "have", "been", "were", "did", "do",
];

/// The pause between the words of the streamed synthesis.
const WORD_PAUSE: std::time::Duration = std::time::Duration::from_millis(15);

/// Start the workflow's task. Returns once it follows the log, so no input is missed.
pub async fn spawn(builtins: Arc<Builtins>, id: String, query: String) -> Result<()> {
    let (feed, _) = builtins.hub.feed(&id, 0).await?;
    let span = tracing::info_span!("workflow", id = %id, kind = kinds::SEARCH);
    let task = async move {
        if let Err(e) = run(&builtins, &id, Inbox::new(feed), query).await {
            // A conflict means the workflow ended under us (cancelled): nothing to report.
            tracing::debug!(error = %e, "search workflow stopped");
        }
    };
    tokio::spawn(task.instrument(span));
    Ok(())
}

/// How a round ended.
enum Round {
    Answered,
    /// The workflow failed or was ended: nothing more to do.
    Over,
}

async fn run(b: &Builtins, id: &str, mut inbox: Inbox, mut query: String) -> Result<()> {
    let mut round = 1;
    loop {
        if let Round::Over = research(b, id, &mut inbox, &query, round).await? {
            return Ok(());
        }
        b.publish(
            id,
            status(
                WorkflowStatus::WaitingInput,
                "Ask a follow-up question, or say done.",
            ),
        )
        .await?;
        match inbox.next_message_within(b.idle).await? {
            Said::Ended => return Ok(()),
            Said::Nothing(waited) => return b.publish(id, Said::idle_end(waited)).await,
            Said::Message(said) if Said::is_finish(&said) => {
                let done = status(WorkflowStatus::Completed, "finished by the user");
                b.publish(id, done).await?;
                return Ok(());
            }
            Said::Message(said) => query = said,
        }
        round += 1;
    }
}

fn status(status: WorkflowStatus, detail: &str) -> EventBody {
    EventBody::WorkflowStatus {
        status,
        detail: Some(detail.into()),
    }
}

fn node(node: &str, status: NodeStatus, detail: Option<String>) -> EventBody {
    EventBody::NodeUpdate {
        node: node.into(),
        status,
        detail,
    }
}

/// The words of a question worth searching for.
pub fn key_terms(query: &str) -> Vec<String> {
    let mut terms: Vec<String> = Vec::new();
    for word in query.split(|c: char| !c.is_alphanumeric() && c != '-' && c != '_') {
        let word = word.to_lowercase();
        if word.chars().count() > 2
            && !STOP_WORDS.contains(&word.as_str())
            && !terms.contains(&word)
        {
            terms.push(word);
        }
    }
    terms
}

async fn research(
    b: &Builtins,
    id: &str,
    inbox: &mut Inbox,
    query: &str,
    round: u32,
) -> Result<Round> {
    let detail = format!("round {round}: {query}");
    b.publish(id, status(WorkflowStatus::Running, &detail))
        .await?;
    let terms = analyze(b, id, query).await?;
    let hits = match search(b, id, inbox, query, &terms, round).await? {
        Some(hits) => hits,
        None => return Ok(Round::Over),
    };
    synthesize(b, id, query, &hits).await?;
    b.publish(id, node("report", NodeStatus::Executing, None))
        .await?;
    b.publish(
        id,
        EventBody::FinalReport {
            content: report(query, &hits),
        },
    )
    .await?;
    b.publish(id, node("report", NodeStatus::Completed, None))
        .await?;
    Ok(Round::Answered)
}

async fn analyze(b: &Builtins, id: &str, query: &str) -> Result<Vec<String>> {
    let agent = "analyst";
    b.publish(id, node("analyze", NodeStatus::Executing, None))
        .await?;
    b.publish(
        id,
        EventBody::AgentStarted {
            agent: agent.into(),
            task: Some(query.into()),
        },
    )
    .await?;
    b.publish(
        id,
        EventBody::AgentThinking {
            agent: agent.into(),
            content: Some(format!("Which words of “{query}” matter for a search?")),
            message_id: None,
        },
    )
    .await?;
    let terms = key_terms(query);
    let summary = if terms.is_empty() {
        "no key terms; searching the question as it is".to_owned()
    } else {
        format!("key terms: {}", terms.join(", "))
    };
    b.publish(
        id,
        EventBody::AgentCompleted {
            agent: agent.into(),
            ok: true,
            summary: Some(summary),
        },
    )
    .await?;
    b.publish(id, node("analyze", NodeStatus::Completed, None))
        .await?;
    Ok(terms)
}

/// The search node; `None` when the workflow is over (the tool failed, or it was ended).
async fn search(
    b: &Builtins,
    id: &str,
    inbox: &mut Inbox,
    query: &str,
    terms: &[String],
    round: u32,
) -> Result<Option<Vec<Hit>>> {
    let agent = "searcher";
    b.publish(id, node("search", NodeStatus::Executing, None))
        .await?;
    b.publish(
        id,
        EventBody::AgentStarted {
            agent: agent.into(),
            task: Some("full-text search".into()),
        },
    )
    .await?;
    let text = if terms.is_empty() {
        query.to_owned()
    } else {
        terms.join(" ")
    };
    let call = ToolCall {
        hub: &b.hub,
        workflow_id: id,
        agent,
        tool: "full_text_search",
        call_id: format!("search-{round}"),
        timeout: b.tool_timeout,
    };
    call.start(json!({ "query": text, "limit": HITS })).await?;
    let sections = b.corpus.sections;
    call.progress(&format!("searching {sections} sections"), Some(0.0))
        .await?;
    let corpus = b.corpus.clone();
    let hooks = b.test_hooks;
    let outcome = call
        .run(inbox, move || {
            if hooks && text.contains(TEST_PANIC) {
                panic!("the search index is on fire (test hook)");
            }
            if hooks && text.contains(TEST_STALL) {
                std::thread::sleep(std::time::Duration::from_secs(3600));
            }
            let hits = corpus.search(&text, HITS).map_err(|e| e.to_string())?;
            Ok(hits_json(&hits))
        })
        .await?;
    let hits = match outcome {
        Outcome::Done(output) => hits_from_json(&output),
        Outcome::WorkflowEnded => return Ok(None),
        Outcome::Failed(error) => {
            let failed = vec![
                EventBody::AgentCompleted {
                    agent: agent.into(),
                    ok: false,
                    summary: Some(error.clone()),
                },
                node("search", NodeStatus::Failed, Some(error.clone())),
                status(
                    WorkflowStatus::Failed,
                    &format!("the search failed: {error}"),
                ),
            ];
            b.hub.publish_bodies(id, failed).await?;
            return Ok(None);
        }
    };
    b.publish(
        id,
        EventBody::SearchResults {
            query: query.into(),
            results: hits.iter().map(to_result).collect(),
        },
    )
    .await?;
    let summary = format!("{} passages", hits.len());
    b.publish(
        id,
        EventBody::AgentCompleted {
            agent: agent.into(),
            ok: true,
            summary: Some(summary),
        },
    )
    .await?;
    b.publish(id, node("search", NodeStatus::Completed, None))
        .await?;
    Ok(Some(hits))
}

async fn synthesize(b: &Builtins, id: &str, query: &str, hits: &[Hit]) -> Result<()> {
    let agent = "writer";
    b.publish(id, node("synthesize", NodeStatus::Executing, None))
        .await?;
    b.publish(
        id,
        EventBody::AgentStarted {
            agent: agent.into(),
            task: Some("answer from the passages".into()),
        },
    )
    .await?;
    b.publish(
        id,
        EventBody::AgentThinking {
            agent: agent.into(),
            content: Some(format!("Reading {} passages about “{query}”…", hits.len())),
            message_id: None,
        },
    )
    .await?;
    let answer = match hits.first() {
        Some(best) => format!(
            "The best match is “{}” ({}): {}",
            best.title, best.source, best.snippet
        ),
        None => format!("Nothing in the documents matches “{query}”."),
    };
    // Streamed, as an LLM's answer would be: the report follows once it is closed.
    stream(&b.hub, id, agent, MessageKind::Text, &answer, WORD_PAUSE).await?;
    b.publish(
        id,
        EventBody::AgentCompleted {
            agent: agent.into(),
            ok: true,
            summary: None,
        },
    )
    .await?;
    b.publish(id, node("synthesize", NodeStatus::Completed, None))
        .await?;
    Ok(())
}

/// The Markdown report: the passages, each citing its source by number.
pub fn report(query: &str, hits: &[Hit]) -> String {
    let mut out = format!("# {query}\n\n");
    if hits.is_empty() {
        out.push_str("No passage of the documents matches this question.\n");
        return out;
    }
    for (n, hit) in hits.iter().enumerate() {
        out.push_str(&format!("- {} [{}]\n", hit.snippet, n + 1));
    }
    out.push_str("\n## Sources\n\n");
    for (n, hit) in hits.iter().enumerate() {
        // The source is named, not linked: it is a path inside the corpus, which the server
        // does not serve (a relative link would resolve under the run page and go nowhere).
        out.push_str(&format!(
            "{}. **{}** — `{}` (score {:.2})\n",
            n + 1,
            hit.title,
            hit.source,
            hit.score
        ));
    }
    out
}

fn to_result(hit: &Hit) -> app::protocol::SearchHit {
    app::protocol::SearchHit {
        title: hit.title.clone(),
        source: hit.source.clone(),
        snippet: hit.snippet.clone(),
        score: hit.score as f64,
    }
}

fn hits_json(hits: &[Hit]) -> Value {
    let list: Vec<Value> = hits
        .iter()
        .map(|h| json!({ "title": h.title, "source": h.source, "snippet": h.snippet, "score": h.score }))
        .collect();
    json!({ "hits": list })
}

fn hits_from_json(output: &Value) -> Vec<Hit> {
    let field = |v: &Value, k: &str| v[k].as_str().unwrap_or_default().to_owned();
    output["hits"]
        .as_array()
        .map(|list| {
            list.iter()
                .map(|h| Hit {
                    title: field(h, "title"),
                    source: field(h, "source"),
                    snippet: field(h, "snippet"),
                    score: h["score"].as_f64().unwrap_or(0.0) as f32,
                })
                .collect()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_terms_drop_small_and_common_words() {
        assert_eq!(
            key_terms("How does the grace period work? work!"),
            ["grace", "period", "work"]
        );
        assert!(key_terms("is it?").is_empty());
    }

    #[test]
    fn the_report_cites_every_source_by_number() {
        let hit = |n: u32| Hit {
            title: format!("T{n}"),
            source: format!("s{n}.md"),
            snippet: format!("passage {n}"),
            score: 1.0,
        };
        let report = report("q", &[hit(1), hit(2)]);
        assert!(report.contains("- passage 2 [2]"), "{report}");
        assert!(report.contains("2. **T2** — `s2.md`"), "{report}");
        assert!(
            !report.contains("]("),
            "no source is a link (it would go nowhere): {report}"
        );
    }
}
