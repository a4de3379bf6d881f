//! Tokens: made at random, stored only as their SHA-256, and found by the hash of the token
//! presented. The first eight bytes of a hash pick a bucket, and the whole hash is compared
//! with each entry of that bucket in constant time. The timing can at most tell whether some
//! stored hash shares 64 bits with the hash of a guess, which says nothing about any token;
//! and a lookup costs the same with five devices or five thousand (a linear scan of every
//! hash was a quarter of the collector's CPU with 500 devices).

use std::collections::HashMap;

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// The SHA-256 of a token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TokenHash(pub(crate) [u8; 32]);

impl TokenHash {
    /// Hashes a presented token.
    pub fn of(token: &str) -> TokenHash {
        TokenHash(Sha256::digest(token.as_bytes()).into())
    }

    /// Parses 64 hex digits.
    ///
    /// # Errors
    /// A message saying what the value should look like.
    pub fn parse_hex(hex_digits: &str) -> Result<TokenHash, String> {
        let mut bytes = [0u8; 32];
        hex::decode_to_slice(hex_digits, &mut bytes).map_err(|_| {
            format!("token_sha256 {hex_digits:?} is not 64 hex digits (run `collector token` to make one)")
        })?;
        Ok(TokenHash(bytes))
    }

    /// The hash as 64 lowercase hex digits.
    pub fn to_hex(self) -> String {
        hex::encode(self.0)
    }

    fn matches(&self, other: &TokenHash) -> bool {
        self.0.ct_eq(&other.0).into()
    }

    fn bucket(&self) -> u64 {
        u64::from_le_bytes([
            self.0[0], self.0[1], self.0[2], self.0[3], self.0[4], self.0[5], self.0[6], self.0[7],
        ])
    }
}

/// Entries found by the hash of their token.
#[derive(Debug, Clone)]
pub(crate) struct TokenIndex<T> {
    buckets: HashMap<u64, Vec<(TokenHash, T)>>,
}

impl<T> Default for TokenIndex<T> {
    fn default() -> Self {
        TokenIndex { buckets: HashMap::new() }
    }
}

impl<T> TokenIndex<T> {
    pub(crate) fn insert(&mut self, hash: TokenHash, value: T) {
        self.buckets.entry(hash.bucket()).or_default().push((hash, value));
    }

    pub(crate) fn hashes(&self) -> impl Iterator<Item = &TokenHash> {
        self.buckets.values().flatten().map(|(h, _)| h)
    }

    pub(crate) fn values(&self) -> impl Iterator<Item = &T> {
        self.buckets.values().flatten().map(|(_, v)| v)
    }

    pub(crate) fn find(&self, token: &str) -> Option<&T> {
        let presented = TokenHash::of(token);
        let mut found = None;
        for (hash, value) in self.buckets.get(&presented.bucket()).into_iter().flatten() {
            // No early exit within the bucket.
            if hash.matches(&presented) {
                found = Some(value);
            }
        }
        found
    }
}

/// Makes a fresh random token (256 bits) with a recognisable prefix.
pub fn generate_token() -> String {
    let bytes: [u8; 32] = rand::random();
    format!("velo_{}", hex::encode(bytes))
}
