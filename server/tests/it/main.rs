//! Lantern's integration tests, in one binary: each module starts real servers (in process, or
//! the `lantern` binary as a child process) on ephemeral ports and talks to them over real
//! sockets, HTTP and a real SQLite file. One binary links once; a file per test binary linked
//! the whole server again for each (fifteen links per change of the server).

mod common;

mod agent_socket;
mod agui_agent;
mod agui_in;
mod api;
mod assistant;
mod auth;
mod cli;
mod cluster;
mod durability;
mod echo;
mod examples;
mod fanout;
mod frame_fuzz;
mod integrations;
mod interrupts;
mod limits;
mod list_stream;
mod logs;
mod pages;
mod search;
mod slow_consumer;
mod sse;
mod stats;
mod streaming;
mod subscriber_socket;
