//! `lantern`: parse the command line ([`server::cli`]) and hand over.

use server::cli::{self, Command};
use server::config::{Config, LogFormat};

fn fail(code: i32, message: impl std::fmt::Display) -> ! {
    eprintln!("lantern: {message}");
    std::process::exit(code);
}

#[tokio::main]
async fn main() {
    let command = match cli::parse(std::env::args_os()) {
        Ok(cli) => cli.command,
        // Help and --version are "errors" that print to stdout and exit 0; the rest exit 2.
        Err(e) => e.exit(),
    };
    match command {
        Command::Serve(mut config) => {
            config.llm_api_key = std::env::var("LANTERN_LLM_API_KEY")
                .ok()
                .map(server::config::ApiKey);
            serve(*config).await
        }
        Command::Token(token) => {
            start_logging(LogFormat::Human);
            match cli::run_token_command(token).await {
                Ok(output) => println!("{output}"),
                Err(e) => fail(1, e),
            }
        }
    }
}

/// Logs go to stderr: stdout is for what the user asked for (the URL, a new token). The level
/// comes from `RUST_LOG` (default: info, tower_http's per-request lines at warn).
fn start_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| "info,tower_http=warn".into());
    let lines = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(filter);
    match format {
        LogFormat::Human => lines.init(),
        // Each line carries its span and all the spans around it (request id, socket, workflow).
        LogFormat::Json => lines
            .json()
            .with_current_span(true)
            .with_span_list(true)
            .init(),
    }
}

async fn serve(config: Config) {
    start_logging(config.log_format);
    let listener = match tokio::net::TcpListener::bind(config.addr).await {
        Ok(listener) => listener,
        Err(e) => fail(1, format!("cannot listen on {}: {e}", config.addr)),
    };
    let lantern = server::Lantern::start(listener, config)
        .await
        .unwrap_or_else(|e| fail(1, e));
    match lantern.open_url() {
        Ok(url) => println!("Lantern is running: open {url}"),
        Err(e) => fail(1, e),
    }
    if let Err(e) = lantern.run().await {
        fail(1, e);
    }
}
