//! The shape of a credential, with no I/O: how tokens and session cookies are made, parsed,
//! hashed and compared.
//!
//! A credential is `lantern_<id>_<secret>`: `id` is 16 hex digits (8 random bytes) that names
//! the stored row, `secret` is 64 hex digits (32 random bytes, 256 bits). Only the SHA-256 of
//! the secret is stored, and it is compared in constant time, so neither a database leak nor
//! timing reveals a usable token.

use rand::RngCore;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

const PREFIX: &str = "lantern_";
const ID_BYTES: usize = 8;
const SECRET_BYTES: usize = 32;

/// A freshly made credential: the text handed to its holder once, and what is stored.
pub struct Minted {
    /// The whole credential, shown once and never stored.
    pub text: String,
    pub id: String,
    pub secret_hash: Vec<u8>,
}

fn random_hex(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    rand::rngs::OsRng.fill_bytes(&mut buf);
    buf.iter().map(|b| format!("{b:02x}")).collect()
}

/// Make a new random credential.
pub fn mint() -> Minted {
    let id = random_hex(ID_BYTES);
    let secret = random_hex(SECRET_BYTES);
    Minted {
        text: format!("{PREFIX}{id}_{secret}"),
        secret_hash: hash(&secret),
        id,
    }
}

/// The parts of a credential: `(id, secret)`, or `None` when it is not shaped like one.
pub fn parse(text: &str) -> Option<(&str, &str)> {
    let rest = text.trim().strip_prefix(PREFIX)?;
    let (id, secret) = rest.split_once('_')?;
    let hex = |s: &str, len: usize| s.len() == len && s.bytes().all(|b| b.is_ascii_hexdigit());
    (hex(id, ID_BYTES * 2) && hex(secret, SECRET_BYTES * 2)).then_some((id, secret))
}

/// Is `text` shaped like a credential's id (what `lantern token list` shows)?
pub fn is_id(text: &str) -> bool {
    text.len() == ID_BYTES * 2 && text.bytes().all(|b| b.is_ascii_hexdigit())
}

pub fn hash(secret: &str) -> Vec<u8> {
    Sha256::digest(secret.as_bytes()).to_vec()
}

/// Does `secret` hash to `stored`? Constant time in the contents.
pub fn matches(stored: &[u8], secret: &str) -> bool {
    bool::from(hash(secret).ct_eq(stored))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_minted_credential_parses_and_matches_its_hash() {
        let minted = mint();
        let (id, secret) = parse(&minted.text).expect("well formed");
        assert_eq!(id, minted.id);
        assert!(matches(&minted.secret_hash, secret));
        assert!(!matches(&minted.secret_hash, &"0".repeat(64)));
        assert!(!minted.text.contains(&hex_of(&minted.secret_hash)));
    }

    fn hex_of(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    #[test]
    fn two_credentials_differ() {
        assert_ne!(mint().text, mint().text);
    }

    #[test]
    fn malformed_credentials_do_not_parse() {
        for bad in [
            "",
            "lantern_",
            "lantern_abc_def",
            "token",
            &format!("lantern_{}_{}", "g".repeat(16), "0".repeat(64)),
            &format!("lantern_{}_{}", "0".repeat(16), "0".repeat(63)),
            &format!("other_{}_{}", "0".repeat(16), "0".repeat(64)),
        ] {
            assert!(parse(bad).is_none(), "{bad:?}");
        }
        assert!(parse(&format!("lantern_{}_{}", "0".repeat(16), "a".repeat(64))).is_some());
    }
}
