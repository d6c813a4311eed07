//! The words of the wire, each written once: event types, control frame types, statuses,
//! error codes, close codes, workflow kinds and the word that finishes a built-in workflow.
//! The server, the browser's decoder and the tests all take them from here.
//!
//! A word list is an enum made by [`wire_words!`], which also makes its `ALL` (so a list can
//! never leave a word out) and `as_str`; the serde derives on the same enums write the same
//! words (tested in [`super`]).

/// A fieldless enum whose variants are wire words: `ALL`, `as_str` and `from_word` come with
/// it, from the one list; a variant may also name an associated `&str` constant for its word
/// (`Variant (CONSTANT) = "word"`), which a `match` on text can use as a pattern.
macro_rules! wire_words {
    (
        $(#[$meta:meta])*
        pub enum $name:ident {
            $( $(#[$variant_meta:meta])* $variant:ident $(($konst:ident))? = $word:literal, )*
        }
    ) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum $name {
            $( $(#[$variant_meta])* $variant, )*
        }

        impl $name {
            $( $(
                #[doc = concat!("`", $word, "`")]
                pub const $konst: &'static str = $word;
            )? )*

            /// Every word, in the order of the definition.
            pub const ALL: &'static [Self] = &[ $( Self::$variant, )* ];

            /// The word used on the wire.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $( Self::$variant => $word, )*
                }
            }

            /// The variant a wire word names.
            pub fn from_word(word: &str) -> Option<Self> {
                match word {
                    $( $word => Some(Self::$variant), )*
                    _ => None,
                }
            }
        }
    };
}
pub(crate) use wire_words;

wire_words! {
    /// The `type` of every workflow event of PROTOCOL.md §1.
    pub enum EventKind {
        WorkflowStatus (WORKFLOW_STATUS) = "workflow_status",
        NodeUpdate (NODE_UPDATE) = "node_update",
        AgentStarted (AGENT_STARTED) = "agent_started",
        AgentThinking (AGENT_THINKING) = "agent_thinking",
        AgentResponse (AGENT_RESPONSE) = "agent_response",
        ToolExecuting (TOOL_EXECUTING) = "tool_executing",
        ToolUpdate (TOOL_UPDATE) = "tool_update",
        ToolCompleted (TOOL_COMPLETED) = "tool_completed",
        SearchResults (SEARCH_RESULTS) = "search_results",
        AgentCompleted (AGENT_COMPLETED) = "agent_completed",
        FinalReport (FINAL_REPORT) = "final_report",
        UserInput (USER_INPUT) = "user_input",
        TextDelta (TEXT_DELTA) = "text_delta",
        ThinkingDelta (THINKING_DELTA) = "thinking_delta",
        Interrupt (INTERRUPT) = "interrupt",
        InterruptResolved (INTERRUPT_RESOLVED) = "interrupt_resolved",
    }
}

wire_words! {
    /// The `type` of every control frame the server sends (not logged, no `seq`).
    pub enum FrameKind {
        Hello (HELLO) = "hello",
        ReplayDone (REPLAY_DONE) = "replay_done",
        Ack (ACK) = "ack",
        Error (ERROR) = "error",
        HeartbeatResponse (HEARTBEAT_RESPONSE) = "heartbeat_response",
    }
}

/// The `reason` words of `interrupt` events that Lantern's own pages and workflows know. The
/// protocol allows any word; these two get their own card.
pub mod reasons {
    /// Approve (or deny) a tool call before it runs; the card shows the call.
    pub const TOOL_APPROVAL: &str = "tool_approval";
    /// Give a value the agent asked for; the card is a form from `response_schema`.
    pub const INPUT: &str = "input";
}

/// Close codes of PROTOCOL.md §4.
pub mod close {
    pub const NORMAL: u16 = 1000;
    pub const GOING_AWAY: u16 = 1001;
    pub const TOO_LARGE: u16 = 1009;
    pub const INTERNAL: u16 = 1011;
    pub const UNAUTHORIZED: u16 = 4001;
    pub const FORBIDDEN: u16 = 4003;
    pub const NOT_FOUND: u16 = 4004;
    pub const TOO_SLOW: u16 = 4008;
    pub const CURSOR_AHEAD: u16 = 4009;
    pub const RATE_LIMITED: u16 = 4029;
}

/// Workflow kinds the server knows without configuration (§5).
pub mod kinds {
    /// Interactive: answers each message.
    pub const ECHO: &str = "echo";
    /// Searches the corpus for a query, with follow-ups.
    pub const SEARCH: &str = "search";
    /// Run by an agent outside the server, which publishes its events.
    pub const EXTERNAL: &str = "external";
    /// The research assistant on an OpenAI-compatible model; only when one is configured
    /// (`--llm-base-url`, `--llm-model`), so not in [`ALL`].
    pub const ASSISTANT: &str = "assistant";
    /// Every kind `POST /api/workflows` accepts.
    pub const ALL: [&str; 3] = [ECHO, SEARCH, EXTERNAL];
    /// Whether a kind runs inside the server (and so finishes when a person says
    /// [`super::FINISH`]).
    pub fn is_built_in(kind: &str) -> bool {
        kind != EXTERNAL
    }
}

/// The message that finishes a built-in interactive workflow.
pub const FINISH: &str = "done";
