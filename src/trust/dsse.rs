//! DSSE v1 envelopes: PAE, signing and strict verification.
//!
//! Owns the envelope's JSON form and the bytes that are signed,
//! PAE(payloadType, payload) = "DSSEv1" SP LEN(type) SP type SP LEN(body) SP body,
//! exactly as the DSSE protocol defines it. It knows nothing of what a
//! payload means; callers check the payload type they expect.

use base64::engine::general_purpose::{STANDARD, URL_SAFE};
use base64::Engine;
use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use serde::{Deserialize, Serialize};

use super::keys::key_id;

/// The pre-authentication encoding of DSSE v1.
pub fn pae(payload_type: &str, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(payload.len() + payload_type.len() + 32);
    out.extend_from_slice(b"DSSEv1 ");
    out.extend_from_slice(payload_type.len().to_string().as_bytes());
    out.push(b' ');
    out.extend_from_slice(payload_type.as_bytes());
    out.push(b' ');
    out.extend_from_slice(payload.len().to_string().as_bytes());
    out.push(b' ');
    out.extend_from_slice(payload);
    out
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct EnvelopeSignature {
    pub keyid: String,
    pub sig: String,
}

/// A DSSE envelope as it is stored (payload and signatures in base64).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Envelope {
    pub payload_type: String,
    pub payload: String,
    pub signatures: Vec<EnvelopeSignature>,
}

fn b64_decode(s: &str) -> Option<Vec<u8>> {
    // DSSE accepts standard or URL-safe base64.
    STANDARD.decode(s).or_else(|_| URL_SAFE.decode(s)).ok()
}

impl Envelope {
    /// Sign `payload` as `payload_type` with `key`.
    pub fn sign(payload_type: &str, payload: &[u8], key: &SigningKey) -> Envelope {
        let sig: Signature = key.sign(&pae(payload_type, payload));
        Envelope {
            payload_type: payload_type.to_string(),
            payload: STANDARD.encode(payload),
            signatures: vec![EnvelopeSignature {
                keyid: key_id(&key.verifying_key()),
                sig: STANDARD.encode(sig.to_bytes()),
            }],
        }
    }

    /// Parse an envelope's JSON. The error says what is wrong with it.
    pub fn parse(bytes: &[u8]) -> Result<Envelope, String> {
        let env: Envelope = serde_json::from_slice(bytes)
            .map_err(|e| format!("it is not a DSSE envelope ({e})"))?;
        if env.signatures.is_empty() {
            return Err("the envelope has no signature".into());
        }
        Ok(env)
    }

    /// The JSON stored on disk (pretty, one field a line).
    pub fn to_json(&self) -> Vec<u8> {
        let mut v = serde_json::to_vec_pretty(self).expect("an envelope always serialises");
        v.push(b'\n');
        v
    }

    /// The payload's bytes.
    pub fn payload_bytes(&self) -> Result<Vec<u8>, String> {
        b64_decode(&self.payload).ok_or_else(|| "the payload is not valid base64".to_string())
    }

    /// The key ids the signatures name.
    pub fn keyids(&self) -> Vec<&str> {
        self.signatures.iter().map(|s| s.keyid.as_str()).collect()
    }

    /// Check that a signature by `key` covers PAE(payloadType, payload),
    /// with `verify_strict` (no malleable or small-order signatures). Returns
    /// the payload. A signature whose keyid names another key is not tried.
    pub fn verify(&self, key: &VerifyingKey) -> Result<Vec<u8>, String> {
        let id = key_id(key);
        let payload = self.payload_bytes()?;
        let message = pae(&self.payload_type, &payload);
        let mine: Vec<_> = self.signatures.iter().filter(|s| s.keyid == id).collect();
        if mine.is_empty() {
            return Err(format!(
                "it is signed by key {}, not by key {id}",
                self.keyids().join(", ")
            ));
        }
        for s in mine {
            let Some(bytes) = b64_decode(&s.sig) else {
                continue;
            };
            let Ok(bytes) = <[u8; 64]>::try_from(bytes.as_slice()) else {
                continue;
            };
            let sig = Signature::from_bytes(&bytes);
            if key.verify_strict(&message, &sig).is_ok() {
                return Ok(payload);
            }
        }
        Err(format!("its signature by key {id} does not verify"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pae_matches_the_dsse_definition() {
        // The DSSE protocol's own example.
        assert_eq!(
            pae("http://example.com/HelloWorld", b"hello world"),
            b"DSSEv1 29 http://example.com/HelloWorld 11 hello world".to_vec()
        );
        assert_eq!(pae("", b""), b"DSSEv1 0  0 ".to_vec());
    }

    #[test]
    fn sign_then_verify_and_every_tamper_fails() {
        let key = super::super::keys::generate().unwrap();
        let env = Envelope::sign("application/x-test", b"{\"a\":1}", &key);
        let back = Envelope::parse(&env.to_json()).unwrap();
        assert_eq!(back.verify(&key.verifying_key()).unwrap(), b"{\"a\":1}");
        // Another payload type (the signature covers it through PAE).
        let mut t = back.clone();
        t.payload_type = "application/x-other".into();
        assert!(t.verify(&key.verifying_key()).is_err());
        // Another payload.
        let mut t = back.clone();
        t.payload = STANDARD.encode(b"{\"a\":2}");
        assert!(t.verify(&key.verifying_key()).is_err());
        // One bit of the signature.
        let mut t = back.clone();
        let mut sig = STANDARD.decode(&t.signatures[0].sig).unwrap();
        sig[10] ^= 1;
        t.signatures[0].sig = STANDARD.encode(sig);
        assert!(t.verify(&key.verifying_key()).is_err());
        // Another key.
        let other = super::super::keys::generate().unwrap();
        let e = back.verify(&other.verifying_key()).unwrap_err();
        assert!(e.contains("signed by key"), "{e}");
    }
}
