//! Signed JWT assertions for the OAuth2 JWT-bearer grant (RFC 7523), as
//! Google service accounts with domain-wide delegation use: RS256 over a
//! PKCS#8 key, signed with ring (already in the build for rustls).

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine as _;
use serde_json::{json, Map, Value as Json};

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum JwtError {
    #[error("the private key is PKCS#1 (BEGIN RSA PRIVATE KEY); convert it with `openssl pkcs8 -topk8 -nocrypt -in key.pem`")]
    Pkcs1,
    #[error("the private key is not a PEM block (expected -----BEGIN PRIVATE KEY-----)")]
    NotPem,
    #[error("the private key is not valid base64 inside its PEM block")]
    Base64,
    #[error("the private key is not an RSA PKCS#8 key ring accepts: {0}")]
    Key(String),
    #[error("signing failed")]
    Sign,
}

/// DER bytes of a PEM private key. Environment variables often carry the
/// key with literal `\n` sequences (as in a service-account JSON file).
pub fn pem_der(pem: &str) -> Result<Vec<u8>, JwtError> {
    let pem = pem.replace("\\n", "\n");
    if pem.contains("BEGIN RSA PRIVATE KEY") {
        return Err(JwtError::Pkcs1);
    }
    let start = pem
        .find("-----BEGIN PRIVATE KEY-----")
        .ok_or(JwtError::NotPem)?;
    let body: String = pem[start..]
        .lines()
        .skip(1)
        .take_while(|l| !l.starts_with("-----END"))
        .map(str::trim)
        .collect();
    STANDARD.decode(body).map_err(|_| JwtError::Base64)
}

/// `header.claims.signature`, RS256, with `iat`/`exp` set from `now`.
pub fn sign(
    pem: &str,
    claims: &Map<String, Json>,
    now: i64,
    lifetime_secs: i64,
) -> Result<String, JwtError> {
    let der = pem_der(pem)?;
    let key =
        ring::signature::RsaKeyPair::from_pkcs8(&der).map_err(|e| JwtError::Key(e.to_string()))?;
    let mut body = claims.clone();
    body.insert("iat".into(), json!(now));
    body.insert("exp".into(), json!(now + lifetime_secs));
    let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"RS256","typ":"JWT"}"#);
    let payload = URL_SAFE_NO_PAD
        .encode(serde_json::to_vec(&Json::Object(body)).map_err(|_| JwtError::Sign)?);
    let signing_input = format!("{header}.{payload}");
    let mut sig = vec![0u8; key.public().modulus_len()];
    key.sign(
        &ring::signature::RSA_PKCS1_SHA256,
        &ring::rand::SystemRandom::new(),
        signing_input.as_bytes(),
        &mut sig,
    )
    .map_err(|_| JwtError::Sign)?;
    Ok(format!("{signing_input}.{}", URL_SAFE_NO_PAD.encode(sig)))
}

/// Verifies an RS256 JWT against `pem`'s public key and returns its claims
/// (used by tests and the simulator to check what a client sent).
pub fn verify(pem: &str, jwt: &str) -> Option<Map<String, Json>> {
    let der = pem_der(pem).ok()?;
    let key = ring::signature::RsaKeyPair::from_pkcs8(&der).ok()?;
    let (input, sig) = jwt.rsplit_once('.')?;
    let sig = URL_SAFE_NO_PAD.decode(sig).ok()?;
    ring::signature::UnparsedPublicKey::new(
        &ring::signature::RSA_PKCS1_2048_8192_SHA256,
        key.public().as_ref(),
    )
    .verify(input.as_bytes(), &sig)
    .ok()?;
    let payload = input.split('.').nth(1)?;
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).ok()?).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = include_str!("simulator-rsa-key.pem");

    #[test]
    fn signs_and_verifies_rs256() {
        let mut claims = Map::new();
        claims.insert(
            "iss".into(),
            json!("quench@project.iam.gserviceaccount.com"),
        );
        claims.insert(
            "scope".into(),
            json!("https://www.googleapis.com/auth/admin.directory.user.security"),
        );
        let jwt = sign(KEY, &claims, 1_764_400_000, 3600).unwrap();
        let got = verify(KEY, &jwt).unwrap();
        assert_eq!(got["iss"], "quench@project.iam.gserviceaccount.com");
        assert_eq!(got["exp"], 1_764_403_600);
        // Keys pasted from a service-account JSON file carry literal \n.
        let escaped = KEY.replace('\n', "\\n");
        assert!(verify(&escaped, &sign(&escaped, &claims, 0, 60).unwrap()).is_some());
        let mut tampered = jwt.clone();
        tampered.insert(10, 'x');
        assert!(verify(KEY, &tampered).is_none());
        assert_eq!(
            sign("-----BEGIN RSA PRIVATE KEY-----\nabc", &claims, 0, 1),
            Err(JwtError::Pkcs1)
        );
        assert_eq!(sign("not a key", &claims, 0, 1), Err(JwtError::NotPem));
    }
}
