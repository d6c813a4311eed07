//! `sqlx::migrate!` embeds `migrations/` at compile time; on stable Rust it cannot tell cargo
//! to watch the directory itself, so a new migration would not rebuild the server without this.
fn main() {
    println!("cargo:rerun-if-changed=migrations");
}
