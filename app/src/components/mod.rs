//! What the user sees, one component per file, named after it.

pub mod answer;
pub mod clock;
pub mod connection_badge;
pub mod conversation;
pub mod event_list;
pub mod input_box;
pub mod interrupt_card;
pub mod report;
pub mod run_controls;
pub mod run_header;
pub mod search_results;
pub mod status_badge;
pub mod step_rail;
pub mod streamed_text;
pub mod task_card;
pub mod user_menu;
pub mod workflow_list;
