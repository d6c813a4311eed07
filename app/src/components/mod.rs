//! What the user sees, one component per file, named after it.

pub mod connection_badge;
pub mod event_list;
pub mod input_box;
pub mod run_controls;
pub mod status_badge;
pub mod user_menu;
pub mod workflow_list;
