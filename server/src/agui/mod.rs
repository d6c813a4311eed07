//! AG-UI 1.0 (PROTOCOL.md §8): the open protocol agent frontends and agent frameworks speak.
//! Lantern stands on both sides of it:
//!
//! - [`events`]: the events on the wire, one definition for both directions.
//! - [`out`]: a workflow's log as AG-UI events (a pure fold), for `GET
//!   /api/workflows/{id}/agui` and `POST /agui/{kind}` ([`crate::transport::agui`]).
//! - [`inbound`]: an AG-UI agent's run as Lantern events (a pure fold), for the workflow kinds
//!   `--agui-agent` registers ([`crate::workflows::agui_agent`]).

pub mod events;
pub mod inbound;
pub mod out;
