//! The command line: `lantern [serve] [--FLAG VALUE ...]` and `lantern token ...`.
//!
//! ```text
//! lantern [serve] [--addr 127.0.0.1:3000] [--data-dir ./data] [--FLAG VALUE ...]
//! lantern token create --user NAME [--agent] [--data-dir DIR]
//! lantern token revoke TOKEN [--data-dir DIR]
//! lantern token list [--data-dir DIR]
//! ```
//! Every `--FLAG` of `serve` is a setting of [`crate::config`]; the token commands take the
//! same `--data-dir` (or `LANTERN_DATA_DIR`).

use crate::auth::{Accounts, TokenKind};
use crate::config::Config;
use crate::store::sqlite::Db;

pub const USAGE: &str = "\
usage:
  lantern [serve] [--addr HOST:PORT] [--data-dir DIR] [--SETTING VALUE ...]
  lantern token create --user NAME [--agent] [--data-dir DIR]
  lantern token revoke TOKEN [--data-dir DIR]
  lantern token list [--data-dir DIR]

Every setting is listed below; docs/PROTOCOL.md says what each guarantees.";

/// What the command line asks for.
#[derive(Debug, PartialEq, Eq)]
pub enum Command {
    Help,
    Serve(Vec<(String, String)>),
    TokenCreate {
        user: String,
        kind: TokenKind,
        flags: Vec<(String, String)>,
    },
    TokenRevoke {
        token: String,
        flags: Vec<(String, String)>,
    },
    TokenList(Vec<(String, String)>),
}

/// A command line taken apart.
#[derive(Default)]
struct Split {
    /// `--flag value` and `--flag=value` pairs, in order.
    flags: Vec<(String, String)>,
    /// Positional words.
    words: Vec<String>,
    /// The value-less switches that were given.
    on: Vec<String>,
}

/// Take `args` apart; `switches` names the flags that take no value.
fn split(args: &[String], switches: &[&str]) -> Result<Split, String> {
    let Split {
        mut flags,
        mut words,
        mut on,
    } = Split::default();
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        let Some(name) = arg.strip_prefix("--") else {
            words.push(arg.clone());
            continue;
        };
        if switches.contains(&name) {
            on.push(name.to_owned());
            continue;
        }
        let (name, value) = match name.split_once('=') {
            Some((n, v)) => (n.to_owned(), v.to_owned()),
            None => {
                let value = it.next().ok_or_else(|| format!("--{name} needs a value"))?;
                (name.to_owned(), value.clone())
            }
        };
        flags.push((name, value));
    }
    Ok(Split { flags, words, on })
}

fn take(flags: &mut Vec<(String, String)>, name: &str) -> Option<String> {
    let at = flags.iter().position(|(f, _)| f == name)?;
    Some(flags.remove(at).1)
}

pub fn parse(args: &[String]) -> Result<Command, String> {
    if args
        .iter()
        .any(|a| a == "--help" || a == "-h" || a == "help")
    {
        return Ok(Command::Help);
    }
    match args.first().map(String::as_str) {
        Some("token") => parse_token(&args[1..]),
        Some("serve") => serve(&args[1..]),
        _ => serve(args),
    }
}

fn serve(args: &[String]) -> Result<Command, String> {
    let split = split(args, &[])?;
    match split.words.first() {
        Some(word) => Err(format!("unexpected argument {word:?}")),
        None => Ok(Command::Serve(split.flags)),
    }
}

fn parse_token(args: &[String]) -> Result<Command, String> {
    let Split {
        mut flags,
        words,
        on,
    } = split(args, &["agent"])?;
    let words: Vec<&str> = words.iter().map(String::as_str).collect();
    match words.as_slice() {
        ["create"] => {
            let user = take(&mut flags, "user").ok_or("token create needs --user NAME")?;
            let kind = if on.iter().any(|s| s == "agent") {
                TokenKind::Agent
            } else {
                TokenKind::User
            };
            Ok(Command::TokenCreate { user, kind, flags })
        }
        ["revoke", token] => Ok(Command::TokenRevoke {
            token: (*token).to_owned(),
            flags,
        }),
        ["list"] => Ok(Command::TokenList(flags)),
        _ => Err(
            "expected: token create --user NAME [--agent] | token revoke TOKEN | token list".into(),
        ),
    }
}

/// Run a `token` command against the data dir; returns what to print.
pub async fn run_token_command(
    command: Command,
    env: impl Fn(&str) -> Option<String>,
) -> Result<String, String> {
    let flags = match &command {
        Command::TokenCreate { flags, .. }
        | Command::TokenRevoke { flags, .. }
        | Command::TokenList(flags) => flags.clone(),
        _ => return Err("not a token command".into()),
    };
    let config = Config::load(env, &flags).map_err(|e| e.to_string())?;
    let db = Db::open(&config.data_dir, &config.sqlite_sync)
        .await
        .map_err(|e| e.to_string())?;
    let accounts = Accounts::new(db, std::time::Duration::ZERO);
    match command {
        Command::TokenCreate { user, kind, .. } => accounts
            .create_token(&user, kind)
            .await
            .map_err(|e| e.to_string()),
        Command::TokenRevoke { token, .. } => match accounts.revoke(&token).await {
            Ok(true) => Ok("revoked".into()),
            Ok(false) => Err("no such token (or already revoked)".into()),
            Err(e) => Err(e.to_string()),
        },
        Command::TokenList(_) => {
            let rows = accounts.list_tokens().await.map_err(|e| e.to_string())?;
            Ok(rows
                .iter()
                .map(|t| {
                    format!(
                        "{}\t{}\t{:?}\tcreated {}\t{}",
                        t.id,
                        t.user,
                        t.kind,
                        t.created_at,
                        t.revoked_at
                            .as_deref()
                            .map_or("active".into(), |r| format!("revoked {r}"))
                    )
                })
                .collect::<Vec<_>>()
                .join("\n"))
        }
        _ => Err("not a token command".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(text: &str) -> Vec<String> {
        text.split_whitespace().map(str::to_owned).collect()
    }

    #[test]
    fn serve_is_the_default() {
        let want = Command::Serve(vec![("addr".into(), "127.0.0.1:1".into())]);
        assert_eq!(parse(&args("--addr 127.0.0.1:1")), Ok(want));
        let want = Command::Serve(vec![("addr".into(), "127.0.0.1:1".into())]);
        assert_eq!(parse(&args("serve --addr=127.0.0.1:1")), Ok(want));
        assert!(parse(&args("serve extra")).is_err());
    }

    #[test]
    fn token_commands_parse() {
        assert_eq!(
            parse(&args("token create --user bob --agent --data-dir /d")),
            Ok(Command::TokenCreate {
                user: "bob".into(),
                kind: TokenKind::Agent,
                flags: vec![("data-dir".into(), "/d".into())],
            })
        );
        assert_eq!(
            parse(&args("token revoke lantern_x")),
            Ok(Command::TokenRevoke {
                token: "lantern_x".into(),
                flags: vec![],
            })
        );
        assert!(parse(&args("token create")).is_err());
        assert!(parse(&args("token frobnicate")).is_err());
    }
}
