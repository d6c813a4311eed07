//! Checks of the [`AccountStore`] guarantees that every account store must pass, run on each by
//! [`account_contract!`] (as the event stores run `store_contract!`).

/// The contract's checks as tests of one store: `$make` is an async expression giving
/// `(keep, store)`, `keep` living as long as the test.
macro_rules! account_contract {
    ($make:expr) => {
        #[tokio::test]
        async fn a_token_holds_until_revoked_and_its_sessions_go_with_it() {
            let (_keep, store) = $make.await;
            $crate::auth::contract::a_token_holds_until_revoked_and_its_sessions_go_with_it(&store)
                .await;
        }

        #[tokio::test]
        async fn a_login_code_is_redeemed_once_however_many_try_at_once() {
            let (_keep, store) = $make.await;
            $crate::auth::contract::a_login_code_is_redeemed_once_however_many_try_at_once(&store)
                .await;
        }

        #[tokio::test]
        async fn expired_login_codes_and_sessions_are_not_found() {
            let (_keep, store) = $make.await;
            $crate::auth::contract::expired_login_codes_and_sessions_are_not_found(&store).await;
        }

        #[tokio::test]
        async fn an_ended_session_is_recorded_as_revoked() {
            let (_keep, store) = $make.await;
            $crate::auth::contract::an_ended_session_is_recorded_as_revoked(&store).await;
        }

        #[tokio::test]
        async fn tokens_are_listed_oldest_first_and_users_counted_once() {
            let (_keep, store) = $make.await;
            $crate::auth::contract::tokens_are_listed_oldest_first_and_users_counted_once(&store)
                .await;
        }

        #[tokio::test]
        async fn pruning_drops_revocations_older_than_asked() {
            let (_keep, store) = $make.await;
            $crate::auth::contract::pruning_drops_revocations_older_than_asked(&store).await;
        }
    };
}
pub(crate) use account_contract;

use super::accounts::TokenKind;
use super::store::{AccountStore, NewSecret};

const PAST: &str = "2000-01-01T00:00:00.000Z";
const NOW: &str = "2026-01-01T00:00:00.000Z";
const LATER: &str = "2999-01-01T00:00:00.000Z";

fn secret<'a>(id: &'a str, hash: &'a [u8]) -> NewSecret<'a> {
    NewSecret {
        id,
        secret_hash: hash,
    }
}

pub async fn a_token_holds_until_revoked_and_its_sessions_go_with_it(store: &dyn AccountStore) {
    store
        .insert_token("ann", secret("t1", b"h1"), TokenKind::Agent, NOW)
        .await
        .expect("token");
    let found = store.token("t1").await.expect("read").expect("found");
    assert_eq!(
        (
            found.user.as_str(),
            found.kind,
            found.secret_hash.as_slice()
        ),
        ("ann", TokenKind::Agent, &b"h1"[..])
    );
    store
        .insert_session(secret("s1", b"hs"), "t1", NOW, LATER)
        .await
        .expect("session");
    let session = store
        .session("s1", NOW)
        .await
        .expect("read")
        .expect("found");
    assert_eq!(
        (session.token_id.as_str(), session.secret_hash.as_slice()),
        ("t1", &b"hs"[..])
    );
    assert!(store.still_valid("t1", Some("s1")).await.expect("read"));

    let before = store.last_revocation().await.expect("read");
    assert!(store.revoke_token("t1", NOW).await.expect("revoke"));
    assert!(
        !store.revoke_token("t1", NOW).await.expect("revoke"),
        "once"
    );
    assert!(!store.revoke_token("nope", NOW).await.expect("revoke"));
    assert_eq!(store.token("t1").await.expect("read"), None);
    assert_eq!(store.session("s1", NOW).await.expect("read"), None);
    assert!(!store.still_valid("t1", None).await.expect("read"));
    let revoked = store.revocations_after(before).await.expect("read");
    assert_eq!(
        revoked.iter().map(|(_, c)| c.as_str()).collect::<Vec<_>>(),
        ["t1"]
    );
    assert!(revoked[0].0 > before);
}

pub async fn a_login_code_is_redeemed_once_however_many_try_at_once(store: &dyn AccountStore) {
    store
        .insert_login_code("bob", secret("c1", b"hc"), NOW, LATER)
        .await
        .expect("code");
    assert_eq!(
        store.login_code("c1", NOW).await.expect("read"),
        Some((b"hc".to_vec(), "bob".to_owned()))
    );
    let (one, two) = tokio::join!(
        store.redeem_login_code("c1", "bob", secret("u1", b"x1"), NOW),
        store.redeem_login_code("c1", "bob", secret("u2", b"x2"), NOW),
    );
    let (one, two) = (one.expect("redeem"), two.expect("redeem"));
    assert!(one ^ two, "exactly one redemption: {one} {two}");
    let winner = if one { "u1" } else { "u2" };
    let token = store.token(winner).await.expect("read").expect("made");
    assert_eq!((token.user.as_str(), token.kind), ("bob", TokenKind::User));
    assert_eq!(store.login_code("c1", NOW).await.expect("read"), None);
    assert!(!store
        .redeem_login_code("c1", "bob", secret("u3", b"x3"), NOW)
        .await
        .expect("redeem"));
}

pub async fn expired_login_codes_and_sessions_are_not_found(store: &dyn AccountStore) {
    store
        .insert_token("cy", secret("t2", b"h2"), TokenKind::User, PAST)
        .await
        .expect("token");
    store
        .insert_login_code("cy", secret("c2", b"hc"), PAST, PAST)
        .await
        .expect("code");
    store
        .insert_session(secret("s2", b"hs"), "t2", PAST, PAST)
        .await
        .expect("session");
    assert_eq!(store.login_code("c2", NOW).await.expect("read"), None);
    assert!(!store
        .redeem_login_code("c2", "cy", secret("u4", b"x"), NOW)
        .await
        .expect("redeem"));
    assert_eq!(store.session("s2", NOW).await.expect("read"), None);
}

pub async fn an_ended_session_is_recorded_as_revoked(store: &dyn AccountStore) {
    store
        .insert_token("dee", secret("t3", b"h3"), TokenKind::User, NOW)
        .await
        .expect("token");
    store
        .insert_session(secret("s3", b"hs"), "t3", NOW, LATER)
        .await
        .expect("session");
    let before = store.last_revocation().await.expect("read");
    store.end_session("s3", NOW).await.expect("ended");
    assert_eq!(store.session("s3", NOW).await.expect("read"), None);
    assert!(!store.still_valid("t3", Some("s3")).await.expect("read"));
    assert!(
        store.still_valid("t3", None).await.expect("read"),
        "the token holds"
    );
    let revoked = store.revocations_after(before).await.expect("read");
    assert_eq!(
        revoked.iter().map(|(_, c)| c.as_str()).collect::<Vec<_>>(),
        ["s3"]
    );
    assert_eq!(store.last_revocation().await.expect("read"), revoked[0].0);
}

pub async fn tokens_are_listed_oldest_first_and_users_counted_once(store: &dyn AccountStore) {
    assert_eq!(store.count_users().await.expect("count"), 0);
    for (n, (user, id)) in [("eve", "ta"), ("fay", "tb"), ("eve", "tc")]
        .into_iter()
        .enumerate()
    {
        let at = format!("2026-01-01T00:00:0{n}.000Z");
        store
            .insert_token(user, secret(id, b"h"), TokenKind::User, &at)
            .await
            .expect("token");
    }
    assert_eq!(store.count_users().await.expect("count"), 2);
    store.revoke_token("tb", NOW).await.expect("revoke");
    let listed = store.list_tokens().await.expect("list");
    let ids: Vec<(&str, &str, bool)> = listed
        .iter()
        .map(|t| (t.id.as_str(), t.user.as_str(), t.revoked_at.is_some()))
        .collect();
    assert_eq!(
        ids,
        [
            ("ta", "eve", false),
            ("tb", "fay", true),
            ("tc", "eve", false)
        ]
    );
}

pub async fn pruning_drops_revocations_older_than_asked(store: &dyn AccountStore) {
    store
        .insert_token("gus", secret("t4", b"h"), TokenKind::User, PAST)
        .await
        .expect("token");
    store.revoke_token("t4", PAST).await.expect("revoke");
    assert_eq!(store.revocations_after(0).await.expect("read").len(), 1);
    assert!(
        store
            .prune(NOW, "2001-01-01T00:00:00.000Z")
            .await
            .expect("pruned")
            >= 1
    );
    assert!(store.revocations_after(0).await.expect("read").is_empty());
}
