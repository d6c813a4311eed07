//! The command line, derived with clap from one definition ([`Cli`]; the settings of `serve`
//! are [`crate::config`]'s).
//!
//! ```text
//! lantern [serve] [--addr 127.0.0.1:3000] [--data-dir ./data] [--SETTING VALUE ...]
//! lantern token create --user NAME [--agent] [--data-dir DIR]
//! lantern token revoke TOKEN_OR_ID [--data-dir DIR]
//! lantern token list [--data-dir DIR]
//! lantern token login-link --user NAME [--url BASE] [--data-dir DIR]
//! lantern --version | --help, lantern serve --help, lantern token create --help, ...
//! ```
//! `serve` is the default: `lantern --addr …` is `lantern serve --addr …`.

use std::ffi::OsString;

use clap::{Parser, Subcommand};

use crate::auth::{Accounts, TokenKind};
use crate::config::{Config, Storage};

#[derive(Debug, Parser)]
#[command(
    name = "lantern",
    version,
    about = "Runs AI-agent workflows and shows them live in the browser.",
    after_help = "Without a command, lantern serves (`lantern serve --help` lists every setting; \
                  docs/SETTINGS.md has them all)."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the pages, the API and the sockets (the default command).
    Serve(Box<Config>),
    /// Make, revoke and list tokens, and make login links.
    #[command(subcommand)]
    Token(TokenCommand),
}

#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Print a new token for NAME (created if new), alone on the last line.
    Create {
        /// The user the token belongs to.
        #[arg(long)]
        user: String,
        /// An agent token: it may publish only to the user's workflows.
        #[arg(long)]
        agent: bool,
        #[command(flatten)]
        storage: Storage,
    },
    /// Revoke a token (the whole token, or the id `token list` shows); a running server closes
    /// the sockets that used it within 2 s.
    Revoke {
        /// The token, or its id.
        token: String,
        #[command(flatten)]
        storage: Storage,
    },
    /// List every token: id, user, kind, when it was made, whether it is revoked.
    List {
        #[command(flatten)]
        storage: Storage,
    },
    /// Print a one-time login link for NAME (valid 24 hours), alone on the last line.
    LoginLink {
        /// The user to sign in as.
        #[arg(long)]
        user: String,
        /// The URL people reach Lantern at (default: the public URL, else http:// and the
        /// listen address).
        #[arg(long, env = "LANTERN_PUBLIC_URL")]
        url: Option<String>,
        /// Lantern's listen address, for the default URL.
        #[arg(long, env = "LANTERN_ADDR", default_value = "127.0.0.1:3000")]
        addr: String,
        #[command(flatten)]
        storage: Storage,
    },
}

/// Parse `args` (the program name first). `serve` is the default command: arguments that do
/// not start with a command are `serve`'s.
pub fn parse<I, T>(args: I) -> Result<Cli, clap::Error>
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let mut args: Vec<OsString> = args.into_iter().map(Into::into).collect();
    let first = args.get(1).and_then(|a| a.to_str()).unwrap_or("");
    let top_level = ["-h", "--help", "-V", "--version", "help", "serve", "token"];
    if !top_level.contains(&first) {
        args.insert(1.min(args.len()), "serve".into());
    }
    Cli::try_parse_from(args)
}

/// Run a `token` command against the data dir (or Redis); returns what to print.
pub async fn run_token_command(command: TokenCommand) -> Result<String, String> {
    let storage = match &command {
        TokenCommand::Create { storage, .. }
        | TokenCommand::Revoke { storage, .. }
        | TokenCommand::List { storage }
        | TokenCommand::LoginLink { storage, .. } => storage.clone(),
    };
    // The data dir's accounts, or the cluster's when a Redis URL is given.
    let store = crate::auth::store::open(&storage)
        .await
        .map_err(|e| e.to_string())?;
    let accounts = Accounts::new(store, std::time::Duration::ZERO);
    let text = |e: crate::error::LanternError| e.to_string();
    match command {
        TokenCommand::Create { user, agent, .. } => {
            let kind = if agent {
                TokenKind::Agent
            } else {
                TokenKind::User
            };
            accounts.create_token(&user, kind).await.map_err(text)
        }
        TokenCommand::Revoke { token, .. } => match accounts.revoke(&token).await {
            Ok(true) => Ok("revoked".into()),
            Ok(false) => Err("no such token (or already revoked)".into()),
            Err(e) => Err(e.to_string()),
        },
        TokenCommand::List { .. } => {
            let rows = accounts.list_tokens().await.map_err(text)?;
            Ok(rows
                .iter()
                .map(|t| {
                    let state = t
                        .revoked_at
                        .as_deref()
                        .map_or("active".into(), |r| format!("revoked {r}"));
                    format!(
                        "{}\t{}\t{}\tcreated {}\t{state}",
                        t.id,
                        t.user,
                        t.kind.as_str(),
                        t.created_at
                    )
                })
                .collect::<Vec<_>>()
                .join("\n"))
        }
        TokenCommand::LoginLink {
            user, url, addr, ..
        } => {
            let code = accounts.create_login_code(&user).await.map_err(text)?;
            let base = url.unwrap_or_else(|| format!("http://{addr}"));
            Ok(crate::auth::web::login_link(
                base.trim_end_matches('/'),
                &code,
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(text: &str) -> Vec<String> {
        std::iter::once("lantern")
            .chain(text.split_whitespace())
            .map(str::to_owned)
            .collect()
    }

    #[test]
    fn serve_is_the_default() {
        for line in ["--addr 127.0.0.1:1", "serve --addr=127.0.0.1:1"] {
            let Ok(Cli {
                command: Command::Serve(config),
            }) = parse(args(line))
            else {
                panic!("{line}: not serve");
            };
            assert_eq!(config.addr.port(), 1, "{line}");
        }
        assert!(matches!(
            parse(args("")),
            Ok(Cli {
                command: Command::Serve(_)
            })
        ));
        assert!(parse(args("serve extra")).is_err());
    }

    #[test]
    fn version_and_help_are_answered_not_refused() {
        for line in [
            "--version",
            "-V",
            "--help",
            "serve --help",
            "token create --help",
        ] {
            let err = parse(args(line)).expect_err("clap answers with its own message");
            assert!(
                matches!(
                    err.kind(),
                    clap::error::ErrorKind::DisplayVersion | clap::error::ErrorKind::DisplayHelp
                ),
                "{line}: {err}"
            );
        }
        let help = parse(args("serve --help")).expect_err("help").to_string();
        assert!(help.contains("--max-conns-per-user") && help.contains("LANTERN_ADDR"));
    }

    #[test]
    fn token_commands_parse() {
        let parsed = parse(args("token create --user bob --agent --data-dir /d"));
        let Ok(Cli {
            command:
                Command::Token(TokenCommand::Create {
                    user,
                    agent,
                    storage,
                }),
        }) = parsed
        else {
            panic!("not token create");
        };
        assert_eq!((user.as_str(), agent), ("bob", true));
        assert_eq!(storage.data_dir, std::path::PathBuf::from("/d"));
        assert!(matches!(
            parse(args("token revoke lantern_x")),
            Ok(Cli {
                command: Command::Token(TokenCommand::Revoke { .. })
            })
        ));
        assert!(parse(args("token create")).is_err());
        assert!(parse(args("token frobnicate")).is_err());
    }
}
