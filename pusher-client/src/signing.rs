//! Request signing for the Pusher HTTP API (`auth_version=1.0`).
//!
//! Every request carries `auth_key`, `auth_timestamp`, `auth_version`, for requests
//! with a body a `body_md5` (hex MD5 of the body), and `auth_signature`: the hex
//! HMAC-SHA256, keyed with the app secret, of
//!
//! ```text
//! METHOD\nPATH\nsorted_query
//! ```
//!
//! where `sorted_query` is every other query parameter, keys lowercased and sorted,
//! joined as `key=value` with `&` and **not** URL-escaped.
//!
//! [`Client`](crate::Client) signs every request itself; these functions are public
//! for servers that need to check signatures and for tests against published vectors.

use hmac::{Hmac, Mac};
use md5::{Digest, Md5};
use sha2::Sha256;

/// The `auth_version` this crate signs with.
pub const AUTH_VERSION: &str = "1.0";

type HmacSha256 = Hmac<Sha256>;

/// Hex-encoded HMAC-SHA256 of `message` keyed with `secret`.
///
/// ```
/// use pusher_client::signing::hmac_sha256_hex;
///
/// assert_eq!(
///     hmac_sha256_hex("supersecret", "Hello!"),
///     "64e3f44166575febbc5de88c9476325ea7d4b3684752158d9fdb31fce34b980d",
/// );
/// ```
#[must_use]
pub fn hmac_sha256_hex(secret: &str, message: &str) -> String {
    hex::encode(hmac_sha256(secret.as_bytes(), message.as_bytes()))
}

pub(crate) fn hmac_sha256(secret: &[u8], message: &[u8]) -> [u8; 32] {
    // HMAC accepts keys of any length, so `new_from_slice` cannot fail.
    let mut mac = HmacSha256::new_from_slice(secret).expect("HMAC accepts any key length");
    mac.update(message);
    mac.finalize().into_bytes().into()
}

/// Hex-encoded MD5 digest of a request body, as sent in `body_md5`.
///
/// ```
/// use pusher_client::signing::body_md5;
///
/// assert_eq!(body_md5(b"Hello!"), "952d2c56d0485958336747bcdd98590d");
/// ```
#[must_use]
pub fn body_md5(body: &[u8]) -> String {
    hex::encode(Md5::digest(body))
}

/// The string that is signed for a request: `METHOD\nPATH\nsorted_query`.
///
/// `params` must not contain `auth_signature`; keys are lowercased and sorted here.
///
/// ```
/// use pusher_client::signing::string_to_sign;
///
/// let s = string_to_sign("get", "/apps/3/channels", &[("info", "user_count"), ("auth_key", "k")]);
/// assert_eq!(s, "GET\n/apps/3/channels\nauth_key=k&info=user_count");
/// ```
#[must_use]
pub fn string_to_sign(method: &str, path: &str, params: &[(&str, &str)]) -> String {
    let mut sorted: Vec<(String, &str)> = params
        .iter()
        .map(|(k, v)| (k.to_ascii_lowercase(), *v))
        .collect();
    sorted.sort_unstable_by(|a, b| a.0.cmp(&b.0));
    let mut out = String::with_capacity(
        method.len()
            + path.len()
            + 2
            + sorted
                .iter()
                .map(|(k, v)| k.len() + v.len() + 2)
                .sum::<usize>(),
    );
    out.push_str(&method.to_ascii_uppercase());
    out.push('\n');
    out.push_str(path);
    out.push('\n');
    for (i, (k, v)) in sorted.iter().enumerate() {
        if i > 0 {
            out.push('&');
        }
        out.push_str(k);
        out.push('=');
        out.push_str(v);
    }
    out
}

/// Signs a request and returns its complete, URL-encoded query string (without the
/// leading `?`), ending in `auth_signature`.
///
/// `params` are the request's own query parameters (for example `info` or
/// `filter_by_prefix`); `auth_key`, `auth_timestamp`, `auth_version` and, when a body
/// is given, `body_md5` are added here.
///
/// This reproduces the worked example of Pusher's HTTP API reference:
///
/// ```
/// use pusher_client::signing::signed_query;
///
/// let body = br#"{"name":"foo","channels":["project-3"],"data":"{\"some\":\"data\"}"}"#;
/// let query = signed_query(
///     "278d425bdf160c739803",
///     "7ad3773142a6692b25b8",
///     "POST",
///     "/apps/3/events",
///     &[],
///     Some(body),
///     1353088179,
/// );
/// assert_eq!(
///     query,
///     "auth_key=278d425bdf160c739803&auth_timestamp=1353088179&auth_version=1.0\
///      &body_md5=ec365a775a4cd0599faeb73354201b6f\
///      &auth_signature=da454824c97ba181a32ccc17a72625ba02771f50b50e1e7430e47a1f3f457e6c",
/// );
/// ```
#[must_use]
pub fn signed_query(
    key: &str,
    secret: &str,
    method: &str,
    path: &str,
    params: &[(&str, &str)],
    body: Option<&[u8]>,
    timestamp: u64,
) -> String {
    let mut ts_buf = itoa_buf(timestamp);
    let timestamp = ts_str(&mut ts_buf);
    let mut md5_hex = [0u8; 32];
    let md5 = body.map(|b| {
        hex::encode_to_slice(Md5::digest(b), &mut md5_hex).expect("32 hex digits fit");
        std::str::from_utf8(&md5_hex).expect("hex is ASCII")
    });
    let mut all: Vec<(&str, &str)> = Vec::with_capacity(params.len() + 4);
    all.push(("auth_key", key));
    all.push(("auth_timestamp", timestamp));
    all.push(("auth_version", AUTH_VERSION));
    if let Some(md5) = md5 {
        all.push(("body_md5", md5));
    }
    all.extend_from_slice(params);

    let signature = if all
        .iter()
        .any(|(k, _)| k.bytes().any(|b| b.is_ascii_uppercase()))
    {
        let to_sign = string_to_sign(method, path, &all);
        hmac_sha256(secret.as_bytes(), to_sign.as_bytes())
    } else {
        // Fast path: keys are already lowercase, so sign without building a
        // lowercased copy of every pair.
        all.sort_unstable_by(|a, b| a.0.cmp(b.0));
        let mut mac =
            HmacSha256::new_from_slice(secret.as_bytes()).expect("HMAC accepts any key length");
        if method.bytes().any(|b| b.is_ascii_lowercase()) {
            mac.update(method.to_ascii_uppercase().as_bytes());
        } else {
            mac.update(method.as_bytes());
        }
        mac.update(b"\n");
        mac.update(path.as_bytes());
        mac.update(b"\n");
        for (i, (k, v)) in all.iter().enumerate() {
            if i > 0 {
                mac.update(b"&");
            }
            mac.update(k.as_bytes());
            mac.update(b"=");
            mac.update(v.as_bytes());
        }
        mac.finalize().into_bytes().into()
    };
    all.sort_unstable_by(|a, b| a.0.cmp(b.0));
    let mut sig_hex = [0u8; 64];
    hex::encode_to_slice(signature, &mut sig_hex).expect("64 hex digits fit");
    let signature = std::str::from_utf8(&sig_hex).expect("hex is ASCII");

    let mut query = String::with_capacity(
        all.iter()
            .map(|(k, v)| k.len() + v.len() + 2)
            .sum::<usize>()
            + 80,
    );
    for (k, v) in &all {
        push_pair(&mut query, k, v);
    }
    push_pair(&mut query, "auth_signature", signature);
    query
}

/// Decimal digits of `n`, right-aligned in a 20-byte buffer, and where they start.
fn itoa_buf(mut n: u64) -> ([u8; 20], usize) {
    let mut buf = [0u8; 20];
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    (buf, i)
}

fn ts_str(buf: &mut ([u8; 20], usize)) -> &str {
    std::str::from_utf8(&buf.0[buf.1..]).expect("digits are ASCII")
}

fn push_pair(query: &mut String, key: &str, value: &str) {
    if !query.is_empty() {
        query.push('&');
    }
    push_escaped(query, key);
    query.push('=');
    push_escaped(query, value);
}

fn push_escaped(query: &mut String, s: &str) {
    // Keys, timestamps, hex digests and most values need no escaping.
    if s.bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'*'))
    {
        query.push_str(s);
    } else {
        query.extend(url::form_urlencoded::byte_serialize(s.as_bytes()));
    }
}

/// Seconds since the Unix epoch, for `auth_timestamp`.
pub(crate) fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;

    // Worked example from the "Generating authentication signatures" section of
    // Pusher's Channels HTTP API reference.
    const KEY: &str = "278d425bdf160c739803";
    const SECRET: &str = "7ad3773142a6692b25b8";
    const BODY: &[u8] = br#"{"name":"foo","channels":["project-3"],"data":"{\"some\":\"data\"}"}"#;

    #[test]
    fn documented_body_md5() {
        assert_eq!(body_md5(BODY), "ec365a775a4cd0599faeb73354201b6f");
    }

    #[test]
    fn documented_string_to_sign() {
        let s = string_to_sign(
            "POST",
            "/apps/3/events",
            &[
                ("auth_key", KEY),
                ("auth_timestamp", "1353088179"),
                ("auth_version", "1.0"),
                ("body_md5", "ec365a775a4cd0599faeb73354201b6f"),
            ],
        );
        assert_eq!(
            s,
            "POST\n/apps/3/events\nauth_key=278d425bdf160c739803&auth_timestamp=1353088179\
             &auth_version=1.0&body_md5=ec365a775a4cd0599faeb73354201b6f"
        );
    }

    #[test]
    fn documented_signature() {
        let s = string_to_sign(
            "POST",
            "/apps/3/events",
            &[
                ("body_md5", "ec365a775a4cd0599faeb73354201b6f"),
                ("auth_version", "1.0"),
                ("auth_timestamp", "1353088179"),
                ("auth_key", KEY),
            ],
        );
        assert_eq!(
            hmac_sha256_hex(SECRET, &s),
            "da454824c97ba181a32ccc17a72625ba02771f50b50e1e7430e47a1f3f457e6c"
        );
    }

    #[test]
    fn documented_signed_query() {
        let q = signed_query(
            KEY,
            SECRET,
            "POST",
            "/apps/3/events",
            &[],
            Some(BODY),
            1353088179,
        );
        assert_eq!(
            q,
            "auth_key=278d425bdf160c739803&auth_timestamp=1353088179&auth_version=1.0\
             &body_md5=ec365a775a4cd0599faeb73354201b6f\
             &auth_signature=da454824c97ba181a32ccc17a72625ba02771f50b50e1e7430e47a1f3f457e6c"
        );
    }

    #[test]
    fn uppercase_keys_are_lowercased_and_values_not_escaped_in_signature() {
        let s = string_to_sign(
            "get",
            "/x",
            &[("Name", "Something else"), ("auth_key", "foo")],
        );
        assert_eq!(s, "GET\n/x\nauth_key=foo&name=Something else");
    }

    #[test]
    fn query_values_are_escaped_on_the_wire() {
        let q = signed_query(
            "k",
            "s",
            "GET",
            "/apps/1/channels",
            &[("info", "user_count,subscription_count")],
            None,
            1,
        );
        assert!(q.contains("info=user_count%2Csubscription_count"), "{q}");
        assert!(!q.contains("body_md5"));
        let expected = hmac_sha256_hex(
            "s",
            "GET\n/apps/1/channels\nauth_key=k&auth_timestamp=1&auth_version=1.0&info=user_count,subscription_count",
        );
        assert!(q.ends_with(&format!("auth_signature={expected}")));
    }

    #[test]
    fn fast_and_general_paths_agree() {
        let a = signed_query("k", "s", "post", "/p", &[("Info", "x,y")], Some(b"{}"), 42);
        let b = signed_query("k", "s", "POST", "/p", &[("info", "x,y")], Some(b"{}"), 42);
        let sig = |q: &str| q.rsplit_once("auth_signature=").unwrap().1.to_owned();
        assert_eq!(sig(&a), sig(&b));
        let expected = hmac_sha256_hex(
            "s",
            "POST\n/p\nauth_key=k&auth_timestamp=42&auth_version=1.0&body_md5=99914b932bd37a50b983c5e7c90ae93b&info=x,y",
        );
        assert_eq!(sig(&b), expected);
    }

    // Vectors from the Go server library's tests.
    #[test]
    fn hmac_and_md5_vectors() {
        assert_eq!(
            hmac_sha256_hex("supersecret", "Hello!"),
            "64e3f44166575febbc5de88c9476325ea7d4b3684752158d9fdb31fce34b980d"
        );
        assert_eq!(body_md5(b"Hello!"), "952d2c56d0485958336747bcdd98590d");
    }
}
