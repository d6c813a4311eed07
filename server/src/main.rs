//! `lantern`: parse the command line and hand over to [`server::serve`].
//!
//! ```text
//! lantern [serve] [--addr 127.0.0.1:3000] [--data-dir ./data] [--FLAG VALUE ...]
//! ```
//! Every flag is listed in `server::config`.

use server::config::Config;

const USAGE: &str = "usage: lantern [serve] [--addr HOST:PORT] [--data-dir DIR] \
[--heartbeat-ms N] [--client-frame-bytes N] [--queue-bytes N] [--site-root DIR] \
[--store sqlite|memory] [--sqlite-sync normal|full] [--retention-days N]";

/// `--flag value` pairs after the optional `serve` subcommand.
fn parse_args(args: &[String]) -> Result<Vec<(String, String)>, String> {
    let mut rest = args;
    if rest.first().map(String::as_str) == Some("serve") {
        rest = &rest[1..];
    }
    let mut flags = Vec::new();
    let mut it = rest.iter();
    while let Some(arg) = it.next() {
        let Some(name) = arg.strip_prefix("--") else {
            return Err(format!("unexpected argument {arg:?}"));
        };
        let (name, value) = match name.split_once('=') {
            Some((n, v)) => (n.to_owned(), v.to_owned()),
            None => {
                let value = it.next().ok_or_else(|| format!("--{name} needs a value"))?;
                (name.to_owned(), value.clone())
            }
        };
        flags.push((name, value));
    }
    Ok(flags)
}

#[tokio::main]
async fn main() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,tower_http=warn".into()),
        )
        .init();
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|a| a == "--help" || a == "-h") {
        println!("{USAGE}");
        return;
    }
    let config = parse_args(&args)
        .map_err(|e| e.to_string())
        .and_then(|flags| {
            Config::load(|k| std::env::var(k).ok(), &flags).map_err(|e| e.to_string())
        });
    let config = match config {
        Ok(config) => config,
        Err(e) => {
            eprintln!("lantern: {e}\n{USAGE}");
            std::process::exit(2);
        }
    };
    let listener = match tokio::net::TcpListener::bind(config.addr).await {
        Ok(listener) => listener,
        Err(e) => {
            eprintln!("lantern: cannot listen on {}: {e}", config.addr);
            std::process::exit(1);
        }
    };
    let addr = listener
        .local_addr()
        .map(|a| a.to_string())
        .unwrap_or_default();
    println!("Lantern is running: open http://{addr}/");
    if let Err(e) = server::serve(listener, config).await {
        eprintln!("lantern: {e}");
        std::process::exit(1);
    }
}
