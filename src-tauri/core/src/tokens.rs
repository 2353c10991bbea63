//! Secrets of the install: endpoint tokens (the path of a webhook URL) and the API token.

/// `bytes` random bytes from the OS, as lowercase hex.
pub fn random_hex(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    getrandom::fill(&mut buf).expect("the operating system's random source is available");
    hex::encode(buf)
}

/// A new endpoint token: 128 bits, unguessable, URL-safe.
pub fn endpoint_token() -> String {
    random_hex(16)
}

/// A new API token: 256 bits.
pub fn api_token() -> String {
    random_hex(32)
}

/// A short public id for an endpoint (not a secret).
pub fn endpoint_id() -> String {
    format!("ep_{}", random_hex(6))
}

/// Compares a presented token with the real one in time independent of where they differ.
pub fn tokens_match(presented: &str, real: &str) -> bool {
    constant_time_eq::constant_time_eq(presented.as_bytes(), real.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_long_and_distinct() {
        let a = endpoint_token();
        let b = endpoint_token();
        assert_eq!(a.len(), 32, "16 random bytes in hex");
        assert_ne!(a, b, "two tokens never collide in practice");
        assert!(
            a.bytes().all(|c| c.is_ascii_hexdigit()),
            "tokens are URL-safe"
        );
    }

    #[test]
    fn token_comparison_is_exact() {
        assert!(tokens_match("abc", "abc"));
        assert!(!tokens_match("abd", "abc"));
        assert!(!tokens_match("ab", "abc"), "a prefix is not the token");
        assert!(!tokens_match("", "abc"));
    }
}
