//! The `lantern` binary's command line, as a person types it.

use std::process::Output;

async fn lantern(args: &[&str]) -> Output {
    tokio::process::Command::new(env!("CARGO_BIN_EXE_lantern"))
        .args(args)
        .env("RUST_LOG", "warn")
        .output()
        .await
        .expect("run lantern")
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[tokio::test]
async fn version_and_help_answer_as_people_expect() {
    let version = lantern(&["--version"]).await;
    assert!(version.status.success(), "{version:?}");
    assert_eq!(
        stdout(&version).trim(),
        format!("lantern {}", env!("CARGO_PKG_VERSION"))
    );
    let help = lantern(&["--help"]).await;
    assert!(help.status.success());
    for word in ["serve", "token"] {
        assert!(stdout(&help).contains(word), "{}", stdout(&help));
    }
    let serve = lantern(&["serve", "--help"]).await;
    assert!(serve.status.success());
    let text = stdout(&serve);
    for setting in [
        "--addr",
        "LANTERN_ADDR",
        "--max-connections-per-ip",
        "[default: 200]",
    ] {
        assert!(text.contains(setting), "{setting} in:\n{text}");
    }
    let create = lantern(&["token", "create", "--help"]).await;
    assert!(create.status.success() && stdout(&create).contains("--agent"));
}

#[tokio::test]
async fn a_mistake_on_the_command_line_says_what_and_exits_2() {
    for args in [
        &["--adr", "x"][..],
        &["serve", "--heartbeat-ms", "soon"],
        &["token", "create"],
    ] {
        let output = lantern(args).await;
        assert_eq!(output.status.code(), Some(2), "{args:?}");
        let said = String::from_utf8_lossy(&output.stderr);
        assert!(said.contains("error"), "{args:?}: {said}");
    }
}
