//! systeme.io's signed deliveries (Settings → Webhooks): `X-Webhook-Signature` is the hex
//! HMAC-SHA256 of the exact body bytes under the endpoint's secret. Checked on the stored
//! bytes, so a secret set later re-checks past deliveries. Automation webhooks are unsigned
//! by design.

use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::capture::decode;

pub const SIGNATURE_HEADER: &str = "x-webhook-signature";

#[derive(Debug, Clone, Copy, PartialEq, Eq, ts_rs::TS)]
#[ts(rename = "SignatureVerdict", rename_all = "snake_case")]
pub enum Verdict {
    Valid,
    /// Signed, but not by the endpoint's secret (or the body changed on the way).
    Invalid,
    /// No signature header: automation webhooks, anything not from Settings webhooks.
    Unsigned,
    /// Signed, but the endpoint has no secret to check it with.
    NoSecret,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Valid => "valid",
            Verdict::Invalid => "invalid",
            Verdict::Unsigned => "unsigned",
            Verdict::NoSecret => "no_secret",
        }
    }

    pub fn parse(text: &str) -> Option<Verdict> {
        [
            Verdict::Valid,
            Verdict::Invalid,
            Verdict::Unsigned,
            Verdict::NoSecret,
        ]
        .into_iter()
        .find(|v| v.as_str() == text)
    }
}

/// The verdict on a delivery's raw body and headers under `secret`.
pub fn verify(headers: &[(String, String)], body: &[u8], secret: Option<&str>) -> Verdict {
    let Some(given) = decode::header(headers, SIGNATURE_HEADER) else {
        return Verdict::Unsigned;
    };
    let Some(secret) = secret else {
        return Verdict::NoSecret;
    };
    // Hex in either case; anything that is not hex cannot match.
    let Ok(given) = hex::decode(given.trim()) else {
        return Verdict::Invalid;
    };
    let mut mac =
        Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes any key length");
    mac.update(body);
    // verify_slice compares in constant time.
    if mac.verify_slice(&given).is_ok() {
        Verdict::Valid
    } else {
        Verdict::Invalid
    }
}

/// `X-Webhook-Signature` for `body` under `secret`, as systeme.io computes it (lower-case
/// hex of HMAC-SHA256).
pub fn sign(body: &[u8], secret: &str) -> String {
    let mut mac =
        Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes any key length");
    mac.update(body);
    hex::encode(mac.finalize().into_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "whsec-test-0123456789abcdef";

    fn signed(body: &[u8], secret: &str) -> String {
        let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
        mac.update(body);
        hex::encode(mac.finalize().into_bytes())
    }

    fn with_signature(value: &str) -> Vec<(String, String)> {
        vec![
            ("content-type".into(), "application/json".into()),
            ("X-Webhook-Signature".into(), value.into()),
        ]
    }

    #[test]
    fn verdicts() {
        let body = br#"{"type":"SALE_NEW","data":{"customer":{"email":"a@b.c"}}}"#;
        let good = signed(body, SECRET);
        let cases = [
            (with_signature(&good), Some(SECRET), Verdict::Valid),
            (
                with_signature(&good.to_uppercase()),
                Some(SECRET),
                Verdict::Valid,
            ),
            (
                with_signature(&format!(" {good} ")),
                Some(SECRET),
                Verdict::Valid,
            ),
            (
                with_signature(&good),
                Some("another secret"),
                Verdict::Invalid,
            ),
            (with_signature(&good[..62]), Some(SECRET), Verdict::Invalid),
            (
                with_signature("not hex at all"),
                Some(SECRET),
                Verdict::Invalid,
            ),
            (with_signature(""), Some(SECRET), Verdict::Invalid),
            (with_signature(&good), None, Verdict::NoSecret),
            (
                vec![("content-type".into(), "application/json".into())],
                Some(SECRET),
                Verdict::Unsigned,
            ),
        ];
        for (headers, secret, expected) in cases {
            assert_eq!(
                verify(&headers, body, secret),
                expected,
                "{headers:?} with {secret:?}"
            );
        }
        let mut tampered = body.to_vec();
        tampered[10] ^= 1;
        assert_eq!(
            verify(&with_signature(&good), &tampered, Some(SECRET)),
            Verdict::Invalid
        );
    }

    #[test]
    fn verdicts_name_themselves() {
        for verdict in [
            Verdict::Valid,
            Verdict::Invalid,
            Verdict::Unsigned,
            Verdict::NoSecret,
        ] {
            assert_eq!(Verdict::parse(verdict.as_str()), Some(verdict));
        }
        assert_eq!(Verdict::parse("maybe"), None);
    }
}
