//! A software WebAuthn authenticator, together with the browser's part of each ceremony: what
//! the passkey tests (`super`) use in place of a browser and a security key.
//!
//! It reads the options JSON the server sends (`PasskeyChallenge.options`: webauthn-rs's
//! `CreationChallengeResponse` and `RequestChallengeResponse`) and returns the credential JSON a
//! browser would post back as `credential` (`RegisterPublicKeyCredential` and
//! `PublicKeyCredential`): ES256 keys, `none` attestation, resident (discoverable) credentials,
//! and a signature counter that goes up by one with each assertion.
//!
//! It does none of the browser's checks (that the rp id suits the origin, say) and honours no
//! `excludeCredentials`, so a test can send the server what a browser would refuse to. Each
//! ceremony has a `*_with` variant whose tweak may change the response before it is built and
//! signed: the client data, the rp id, the UP and UV flags, the counter, the user handle;
//! [`Authenticator::authenticate_as`] picks the credential, and
//! [`Authenticator::register_again`] attests a credential it made before.
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use p256::ecdsa::signature::Signer as _;
use p256::ecdsa::{Signature, SigningKey, VerifyingKey};
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};

/// Authenticator data flag: the user was present.
const FLAG_UP: u8 = 0x01;
/// Authenticator data flag: the user was verified (PIN, biometrics).
const FLAG_UV: u8 = 0x04;
/// Authenticator data flag: attested credential data follows the counter.
const FLAG_AT: u8 = 0x40;

/// COSE algorithm identifier of ES256 (ECDSA over P-256 with SHA-256).
const ES256: i64 = -7;

/// A platform authenticator holding resident credentials for any number of rp ids and users.
///
/// Cloning it copies its keys and counters, as cloning a device would: once the original signs
/// again, the copy's counters lag behind.
#[derive(Debug, Clone, Default)]
pub struct Authenticator {
    /// The stored credentials, oldest first.
    pub credentials: Vec<Credential>,
}

/// One resident credential.
#[derive(Debug, Clone)]
pub struct Credential {
    /// The credential id: 32 random bytes.
    pub id: Vec<u8>,
    /// The `user.id` of the registration options, returned as `userHandle` in assertions.
    pub user_handle: Vec<u8>,
    /// The rp id the credential was made for.
    pub rp_id: String,
    /// The credential's private key.
    key: SigningKey,
    /// The signature counter: 0 at registration, then the counter of the last assertion.
    pub counter: u32,
}

/// The collected client data that `clientDataJSON` serialises.
#[derive(Debug, Clone)]
pub struct ClientData {
    /// `type`: `webauthn.create` or `webauthn.get`.
    pub type_: String,
    /// `challenge`: the options' challenge, base64url, as given.
    pub challenge: String,
    /// `origin`: the origin the ceremony claims to run on.
    pub origin: String,
    /// `crossOrigin`: whether it ran in a cross-origin iframe.
    pub cross_origin: bool,
}

/// What a registration response is built from, for a tweak to change before it is built.
#[derive(Debug, Clone)]
pub struct Attestation {
    /// The client data, filled in from the options and the origin.
    pub client_data: ClientData,
    /// The rp id whose SHA-256 starts the authenticator data, and that the credential is stored
    /// for: the options' `rp.id`.
    pub rp_id: String,
    /// The UP flag: true.
    pub user_present: bool,
    /// The UV flag: true.
    pub user_verified: bool,
}

/// What an assertion is built from, for a tweak to change before it is signed.
#[derive(Debug, Clone)]
pub struct Assertion {
    /// The client data, filled in from the options and the origin.
    pub client_data: ClientData,
    /// The rp id whose SHA-256 starts the authenticator data: the options' `rpId`.
    pub rp_id: String,
    /// The UP flag: true.
    pub user_present: bool,
    /// The UV flag: true.
    pub user_verified: bool,
    /// The signature counter: the credential's counter plus one. The credential keeps whatever
    /// is signed, so a lower value sets it back.
    pub counter: u32,
    /// The `userHandle`: the credential's user handle. `None` sends `null`.
    pub user_handle: Option<Vec<u8>>,
}

impl Authenticator {
    /// An authenticator holding no credential yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Runs `navigator.credentials.create()` with `options`, the JSON of webauthn-rs's
    /// `CreationChallengeResponse`, on a page of `origin` (such as `http://localhost:3000`).
    ///
    /// Stores a new resident credential for the options' rp id and user, replacing the one this
    /// authenticator already holds for both, as the specification has it. Returns the JSON of
    /// the `RegisterPublicKeyCredential` the browser would post.
    pub fn register(&mut self, options: &str, origin: &str) -> String {
        self.register_with(options, origin, |_| {})
    }

    /// [`register`](Self::register), with `tweak` changing the response first.
    pub fn register_with(
        &mut self,
        options: &str,
        origin: &str,
        tweak: impl FnOnce(&mut Attestation),
    ) -> String {
        let (response, credential) = make_credential(options, origin, tweak, None);
        self.credentials.retain(|stored| {
            stored.rp_id != credential.rp_id || stored.user_handle != credential.user_handle
        });
        self.credentials.push(credential);
        response
    }

    /// [`register`](Self::register), attesting the stored credential `credential_id` (its id,
    /// its key and its counter) instead of making a new one: what a faulty or malicious
    /// authenticator would do to register one credential twice, with the same account or
    /// another. The authenticator keeps the credential as it was.
    ///
    /// # Panics
    /// If no stored credential has that id.
    pub fn register_again(&self, credential_id: &[u8], options: &str, origin: &str) -> String {
        let existing = self
            .credentials
            .iter()
            .find(|cred| cred.id == credential_id)
            .expect("the authenticator holds the credential asked for");
        make_credential(options, origin, |_| {}, Some(existing)).0
    }

    /// Runs `navigator.credentials.get()` with `options`, the JSON of webauthn-rs's
    /// `RequestChallengeResponse`, on a page of `origin`.
    ///
    /// Signs with the newest credential for the options' `rpId` that `allowCredentials` lists,
    /// or with the newest for that rp id when the list is empty (a discoverable login). Returns
    /// the JSON of the `PublicKeyCredential` the browser would post.
    ///
    /// # Panics
    /// If no stored credential qualifies.
    pub fn authenticate(&mut self, options: &str, origin: &str) -> String {
        self.authenticate_with(options, origin, |_| {})
    }

    /// [`authenticate`](Self::authenticate), with `tweak` changing the assertion first.
    pub fn authenticate_with(
        &mut self,
        options: &str,
        origin: &str,
        tweak: impl FnOnce(&mut Assertion),
    ) -> String {
        let parsed: Value = serde_json::from_str(options).expect("request options are JSON");
        let rp_id = text(&parsed["publicKey"], "rpId");
        let allowed: Vec<Vec<u8>> = parsed["publicKey"]["allowCredentials"]
            .as_array()
            .map(|list| {
                list.iter()
                    .map(|cred| base64url_decode(text(cred, "id")))
                    .collect()
            })
            .unwrap_or_default();
        let id = self
            .credentials
            .iter()
            .rev()
            .find(|cred| cred.rp_id == rp_id && (allowed.is_empty() || allowed.contains(&cred.id)))
            .unwrap_or_else(|| panic!("no stored credential for rp id {rp_id:?} is allowed"))
            .id
            .clone();
        self.authenticate_as(&id, options, origin, tweak)
    }

    /// [`authenticate_with`](Self::authenticate_with), signing with the stored credential
    /// `credential_id` whatever the options' rp id and `allowCredentials`: the user's pick in the
    /// browser's account chooser, or a test's.
    ///
    /// # Panics
    /// If no stored credential has that id.
    pub fn authenticate_as(
        &mut self,
        credential_id: &[u8],
        options: &str,
        origin: &str,
        tweak: impl FnOnce(&mut Assertion),
    ) -> String {
        let options: Value = serde_json::from_str(options).expect("request options are JSON");
        let options = &options["publicKey"];
        let credential = self
            .credentials
            .iter_mut()
            .find(|cred| cred.id == credential_id)
            .expect("the authenticator holds the credential asked for");

        let mut assertion = Assertion {
            client_data: ClientData::new("webauthn.get", text(options, "challenge"), origin),
            rp_id: text(options, "rpId").to_owned(),
            user_present: true,
            user_verified: true,
            counter: credential.counter.wrapping_add(1),
            user_handle: Some(credential.user_handle.clone()),
        };
        tweak(&mut assertion);
        credential.counter = assertion.counter;

        let flags = flags(assertion.user_present, assertion.user_verified);
        let auth_data = authenticator_data(&assertion.rp_id, flags, assertion.counter);
        let client_data_json = assertion.client_data.to_json();
        let signed = [&auth_data[..], &Sha256::digest(client_data_json.as_bytes())].concat();
        let signature: Signature = credential.key.sign(&signed);

        json!({
            "id": base64url(&credential.id),
            "rawId": base64url(&credential.id),
            "type": "public-key",
            "response": {
                "authenticatorData": base64url(&auth_data),
                "clientDataJSON": base64url(client_data_json.as_bytes()),
                "signature": base64url(signature.to_der().as_bytes()),
                "userHandle": assertion.user_handle.as_deref().map(base64url),
            },
            "clientExtensionResults": {},
        })
        .to_string()
    }
}

impl ClientData {
    /// The client data of a same-origin ceremony of `type_` answering `challenge`.
    fn new(type_: &str, challenge: &str, origin: &str) -> Self {
        Self {
            type_: type_.to_owned(),
            challenge: challenge.to_owned(),
            origin: origin.to_owned(),
            cross_origin: false,
        }
    }

    /// `clientDataJSON`, with its members in the order browsers write them.
    fn to_json(&self) -> String {
        let string = |s: &str| Value::from(s).to_string();
        format!(
            r#"{{"type":{},"challenge":{},"origin":{},"crossOrigin":{}}}"#,
            string(&self.type_),
            string(&self.challenge),
            string(&self.origin),
            self.cross_origin,
        )
    }
}

/// The credential `navigator.credentials.create()` makes for `options` on a page of `origin`,
/// `tweak` changing the response first: the JSON of the `RegisterPublicKeyCredential`, and the
/// credential to store. A new one, or `existing` attested again.
fn make_credential(
    options: &str,
    origin: &str,
    tweak: impl FnOnce(&mut Attestation),
    existing: Option<&Credential>,
) -> (String, Credential) {
    let options: Value = serde_json::from_str(options).expect("creation options are JSON");
    let options = &options["publicKey"];
    let offers_es256 = options["pubKeyCredParams"]
        .as_array()
        .expect("creation options have pubKeyCredParams")
        .iter()
        .any(|param| param["alg"].as_i64() == Some(ES256));
    assert!(offers_es256, "the authenticator only makes ES256 keys");

    let mut attestation = Attestation {
        client_data: ClientData::new("webauthn.create", text(options, "challenge"), origin),
        rp_id: text(&options["rp"], "id").to_owned(),
        user_present: true,
        user_verified: true,
    };
    tweak(&mut attestation);

    let user_handle = base64url_decode(text(&options["user"], "id"));
    let rp_id = attestation.rp_id.clone();
    let credential = match existing {
        Some(existing) => Credential {
            user_handle,
            rp_id,
            ..existing.clone()
        },
        None => Credential {
            id: random_bytes().to_vec(),
            user_handle,
            rp_id,
            key: random_signing_key(),
            counter: 0,
        },
    };
    let attested_credential_data = [
        &[0; 16][..], // AAGUID: none, as befits `none` attestation
        &u16::try_from(credential.id.len())
            .expect("a credential id fits in 16 bits")
            .to_be_bytes(),
        &credential.id,
        &cose_key(credential.key.verifying_key()),
    ]
    .concat();
    let flags = flags(attestation.user_present, attestation.user_verified) | FLAG_AT;
    let auth_data = [
        &authenticator_data(&attestation.rp_id, flags, credential.counter)[..],
        &attested_credential_data,
    ]
    .concat();
    let attestation_object = Cbor::Map(vec![
        (Cbor::Text("fmt"), Cbor::Text("none")),
        (Cbor::Text("attStmt"), Cbor::Map(Vec::new())),
        (Cbor::Text("authData"), Cbor::Bytes(&auth_data)),
    ])
    .encode();

    // A browser answers the credProps extension itself: the credential is a resident key.
    let extensions = if options["extensions"]["credProps"] == true {
        json!({ "credProps": { "rk": true } })
    } else {
        json!({})
    };
    let response = json!({
        "id": base64url(&credential.id),
        "rawId": base64url(&credential.id),
        "type": "public-key",
        "response": {
            "attestationObject": base64url(&attestation_object),
            "clientDataJSON": base64url(attestation.client_data.to_json().as_bytes()),
        },
        "clientExtensionResults": extensions,
    });
    (response.to_string(), credential)
}

/// The flags byte for the UP and UV flags.
fn flags(user_present: bool, user_verified: bool) -> u8 {
    let mut flags = 0;
    if user_present {
        flags |= FLAG_UP;
    }
    if user_verified {
        flags |= FLAG_UV;
    }
    flags
}

/// The authenticator data up to the signature counter:
/// SHA-256(rp id) ‖ flags ‖ counter (big-endian).
fn authenticator_data(rp_id: &str, flags: u8, counter: u32) -> Vec<u8> {
    [
        &Sha256::digest(rp_id.as_bytes())[..],
        &[flags],
        &counter.to_be_bytes(),
    ]
    .concat()
}

/// The COSE_Key (RFC 9053) of an ES256 public key.
fn cose_key(key: &VerifyingKey) -> Vec<u8> {
    let point = key.to_encoded_point(false);
    let x = point.x().expect("an uncompressed point has x");
    let y = point.y().expect("an uncompressed point has y");
    Cbor::Map(vec![
        (Cbor::Int(1), Cbor::Int(2)),     // kty: EC2
        (Cbor::Int(3), Cbor::Int(ES256)), // alg
        (Cbor::Int(-1), Cbor::Int(1)),    // crv: P-256
        (Cbor::Int(-2), Cbor::Bytes(x)),  // x
        (Cbor::Int(-3), Cbor::Bytes(y)),  // y
    ])
    .encode()
}

/// 32 random bytes.
fn random_bytes() -> [u8; 32] {
    rand::random()
}

/// A random P-256 private key.
fn random_signing_key() -> SigningKey {
    // Drawing again when the bytes are zero or not below the group order, which is all but
    // impossible.
    loop {
        if let Ok(key) = SigningKey::from_slice(&random_bytes()) {
            return key;
        }
    }
}

/// The string at `key` of the JSON object `value`.
fn text<'a>(value: &'a Value, key: &str) -> &'a str {
    value[key]
        .as_str()
        .unwrap_or_else(|| panic!("expected a string {key:?} in {value}"))
}

/// Base64url without padding, as WebAuthn's JSON has it.
fn base64url(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// The bytes of unpadded base64url `text`.
fn base64url_decode(text: &str) -> Vec<u8> {
    URL_SAFE_NO_PAD
        .decode(text)
        .unwrap_or_else(|err| panic!("{text:?} is not unpadded base64url: {err}"))
}

/// The few CBOR (RFC 8949) data items the attestation object is made of.
enum Cbor<'a> {
    /// An unsigned (major type 0) or negative (major type 1) integer.
    Int(i64),
    /// A byte string (major type 2).
    Bytes(&'a [u8]),
    /// A text string (major type 3).
    Text(&'a str),
    /// A map (major type 5).
    Map(Vec<(Cbor<'a>, Cbor<'a>)>),
}

impl Cbor<'_> {
    /// The item in CTAP2's canonical encoding: each head as short as it can be, and each map's
    /// entries sorted by their encoded keys, shorter keys first, then bytewise.
    fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.encode_into(&mut out);
        out
    }

    fn encode_into(&self, out: &mut Vec<u8>) {
        match self {
            Cbor::Int(n) => match u64::try_from(*n) {
                Ok(n) => head(out, 0, n),
                // A negative n is encoded as -1 - n.
                Err(_) => head(out, 1, n.unsigned_abs() - 1),
            },
            Cbor::Bytes(bytes) => {
                head(out, 2, bytes.len() as u64);
                out.extend_from_slice(bytes);
            }
            Cbor::Text(text) => {
                head(out, 3, text.len() as u64);
                out.extend_from_slice(text.as_bytes());
            }
            Cbor::Map(entries) => {
                let mut entries: Vec<(Vec<u8>, Vec<u8>)> = entries
                    .iter()
                    .map(|(key, value)| (key.encode(), value.encode()))
                    .collect();
                entries.sort_by(|(a, _), (b, _)| (a.len(), a).cmp(&(b.len(), b)));
                head(out, 5, entries.len() as u64);
                for (key, value) in entries {
                    out.extend_from_slice(&key);
                    out.extend_from_slice(&value);
                }
            }
        }
    }
}

/// Writes the head of a data item of `major` type with argument `n`, in the fewest bytes.
fn head(out: &mut Vec<u8>, major: u8, n: u64) {
    let major = major << 5;
    if let Ok(n) = u8::try_from(n) {
        if n < 24 {
            out.push(major | n);
        } else {
            out.extend_from_slice(&[major | 24, n]);
        }
    } else if let Ok(n) = u16::try_from(n) {
        out.push(major | 25);
        out.extend_from_slice(&n.to_be_bytes());
    } else if let Ok(n) = u32::try_from(n) {
        out.push(major | 26);
        out.extend_from_slice(&n.to_be_bytes());
    } else {
        out.push(major | 27);
        out.extend_from_slice(&n.to_be_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::Cbor;

    /// Examples from RFC 8949, appendix A.
    #[test]
    fn cbor_encodes_as_rfc_8949_does() {
        let cases: [(Cbor, &[u8]); 12] = [
            (Cbor::Int(0), &[0x00]),
            (Cbor::Int(23), &[0x17]),
            (Cbor::Int(24), &[0x18, 0x18]),
            (Cbor::Int(1000), &[0x19, 0x03, 0xe8]),
            (Cbor::Int(1_000_000), &[0x1a, 0x00, 0x0f, 0x42, 0x40]),
            (
                Cbor::Int(1_000_000_000_000),
                &[0x1b, 0, 0, 0, 0xe8, 0xd4, 0xa5, 0x10, 0],
            ),
            (Cbor::Int(-1), &[0x20]),
            (Cbor::Int(-1000), &[0x39, 0x03, 0xe7]),
            (
                Cbor::Int(i64::MIN),
                &[0x3b, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff],
            ),
            (Cbor::Bytes(&[1, 2, 3, 4]), &[0x44, 1, 2, 3, 4]),
            (Cbor::Text("IETF"), &[0x64, 0x49, 0x45, 0x54, 0x46]),
            (Cbor::Map(Vec::new()), &[0xa0]),
        ];
        for (item, expected) in cases {
            assert_eq!(item.encode(), expected);
        }
    }

    #[test]
    fn cbor_sorts_map_keys_shorter_first_then_bytewise() {
        let map = Cbor::Map(vec![
            (Cbor::Text("authData"), Cbor::Int(3)),
            (Cbor::Int(-2), Cbor::Int(5)),
            (Cbor::Text("fmt"), Cbor::Int(1)),
            (Cbor::Int(-1), Cbor::Int(4)),
            (Cbor::Int(3), Cbor::Int(2)),
        ]);
        let mut expected = vec![0xa5, 0x03, 0x02, 0x20, 0x04, 0x21, 0x05];
        expected.extend_from_slice(b"\x63fmt\x01\x68authData\x03");
        assert_eq!(map.encode(), expected);
    }
}
