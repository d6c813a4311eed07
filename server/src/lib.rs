//! The Lantern server: axum serving the Leptos pages, the JSON API, the workflow sockets and
//! streams, from one binary.
//!
//! One event's path: a producer — a built-in workflow ([`workflows`]), an agent over
//! [`transport::agent`] or [`transport::ingest`], a person's input — → [`hub::Hub::publish`]
//! (checked against the §1 invariants of [`lifecycle`], under the workflow's writer lock) →
//! [`store`] (assigns `seq`, serializes once, durable) → the workflow's tail, where the appender
//! queues it on every caught-up viewer ([`hub::LiveViewer`]) → each viewer transport's outbox
//! ([`transport::outbox`]) → the socket. A viewer still catching up reads through a
//! [`hub::Subscription`] (the store, then live); built-ins and agents' inputs through a
//! [`hub::Feed`].
//!
//! The crate, by concern:
//! - Starting and stopping: [`cli`] (the command line), [`config`] (every setting, written
//!   once), [`server`] (the composition root: [`server::AppState`], [`server::Lantern`]),
//!   [`connections`] (the accept loop, connection caps and timeouts), [`shutdown`] (one
//!   [`shutdown::Shutdown`] for stopping cleanly).
//! - Requests: [`routes`] (the router only), [`api`] (JSON handlers), [`transport`] (one file
//!   per way in or out: sockets, ingest, streams), [`pages`] (what the pages' server functions
//!   call), [`site`] (static files), [`request_log`] (request ids and spans).
//! - Workflows: [`hub`] (live workflows), [`lifecycle`] (the §1 invariants, pure), [`store`]
//!   (the log behind a trait), [`workflows`] (built-in kinds), [`retention`] (deleting what is
//!   old), [`cluster`] (what nodes sharing one Redis tell each other).
//! - Upstreams Lantern calls: [`agui`] (AG-UI's events, and the folds out and in), [`llm`] (an
//!   OpenAI-compatible model server), [`sse_client`] (reading their event streams).
//! - Guards: [`auth`] (tokens, sessions, login), [`origin`] (cross-site guards), [`limits`]
//!   (rates and counts), [`error`] (errors → protocol codes, in one place), [`metrics`].

pub mod agui;
pub mod api;
pub mod auth;
pub mod cli;
pub mod cluster;
pub mod config;
pub mod connections;
pub mod error;
pub mod hub;
pub mod lifecycle;
pub mod limits;
pub mod llm;
pub mod metrics;
pub mod origin;
pub mod pages;
pub mod request_log;
pub mod retention;
pub mod routes;
pub mod server;
pub mod shutdown;
pub mod site;
pub mod sse_client;
pub mod store;
pub mod transport;
pub mod workflows;

pub use server::{AppState, Lantern, ServeError};
