//! Configuration: credentials, where the API lives, timeouts, limits.
//!
//! A [`ClientBuilder`] is filled from explicit values, a cluster name, a
//! `PUSHER_URL`-style URL (`https://KEY:SECRET@HOST:PORT/apps/APP_ID`) or the
//! environment, and turned into a [`Client`] by [`ClientBuilder::build`], which
//! validates everything at once.
//!
//! | variable | meaning |
//! | --- | --- |
//! | `PUSHER_URL` | `http(s)://KEY:SECRET@HOST[:PORT]/apps/APP_ID`; read first |
//! | `PUSHER_APP_ID`, `PUSHER_KEY`, `PUSHER_SECRET` | credentials |
//! | `PUSHER_CLUSTER` | cluster name: the API is `api-{cluster}.pusher.com` |
//! | `PUSHER_HOST`, `PUSHER_PORT` | a self-hosted server (Sockudo, Soketi, ...) |
//! | `PUSHER_USE_TLS` | `true`/`false` (default `true`) |
//! | `PUSHER_ENCRYPTION_MASTER_KEY_BASE64` | 32-byte master key for encrypted channels |
//! | `PUSHER_TIMEOUT_MS` | request timeout in milliseconds (default 10 000) |
//! | `PUSHER_HTTP2_PRIOR_KNOWLEDGE` | `true` to speak HTTP/2 without negotiation (self-hosted servers) |
//!
//! Variables read after `PUSHER_URL` override the parts of it they name.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use crate::client::{Client, Inner};
use crate::encryption::MasterKey;
use crate::error::{Error, Result};
use crate::validation::Limits;

/// The default request timeout.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// A string that never shows itself in `Debug` output.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct Secret(String);

impl Secret {
    pub(crate) fn new(secret: String) -> Self {
        Self(secret)
    }
}

impl Secret {
    pub(crate) fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

/// The resolved configuration a [`Client`] runs with.
#[derive(Debug, Clone)]
pub(crate) struct Config {
    pub(crate) app_id: String,
    pub(crate) key: String,
    pub(crate) secret: Secret,
    pub(crate) base_url: String,
    pub(crate) timeout: Duration,
    pub(crate) master_key: Option<MasterKey>,
    pub(crate) limits: Limits,
    pub(crate) webhook_tokens: Vec<(String, Secret)>,
}

/// Builds a [`Client`]. Obtained from [`Client::builder`].
///
/// Errors (a missing secret, a malformed URL, a bad master key) are collected and
/// reported by [`build`](Self::build).
///
/// ```
/// use std::time::Duration;
/// use pusher_client::Client;
///
/// // Pusher's hosted service, cluster `eu`:
/// let hosted = Client::builder()
///     .app_id("123")
///     .key("278d425bdf160c739803")
///     .secret("7ad3773142a6692b25b8")
///     .cluster("eu")
///     .timeout(Duration::from_secs(5))
///     .build()?;
/// assert_eq!(hosted.base_url(), "https://api-eu.pusher.com");
///
/// // A self-hosted Pusher-compatible server:
/// let local = Client::builder()
///     .app_id("app")
///     .key("key")
///     .secret("secret")
///     .host("127.0.0.1")
///     .port(6001)
///     .use_tls(false)
///     .build()?;
/// assert_eq!(local.base_url(), "http://127.0.0.1:6001");
///
/// // The secret never shows in Debug output:
/// assert!(!format!("{hosted:?}").contains("7ad3773142a6692b25b8"));
/// # Ok::<(), pusher_client::Error>(())
/// ```
#[must_use]
pub struct ClientBuilder {
    app_id: Option<String>,
    key: Option<String>,
    secret: Option<Secret>,
    cluster: Option<String>,
    host: Option<String>,
    port: Option<u16>,
    use_tls: Option<bool>,
    timeout: Duration,
    master_key: Option<Secret>,
    limits: Limits,
    webhook_tokens: Vec<(String, Secret)>,
    http: Option<reqwest::Client>,
    http2_prior_knowledge: bool,
    errors: Vec<String>,
}

impl fmt::Debug for ClientBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientBuilder")
            .field("app_id", &self.app_id)
            .field("key", &self.key)
            .field("secret", &self.secret)
            .field("cluster", &self.cluster)
            .field("host", &self.host)
            .field("port", &self.port)
            .field("use_tls", &self.use_tls)
            .field("timeout", &self.timeout)
            .field("master_key", &self.master_key)
            .field("limits", &self.limits)
            .finish_non_exhaustive()
    }
}

impl Default for ClientBuilder {
    fn default() -> Self {
        Self::new()
    }
}

impl ClientBuilder {
    /// An empty builder; app id, key and secret must be set before `build`.
    pub fn new() -> Self {
        Self {
            app_id: None,
            key: None,
            secret: None,
            cluster: None,
            host: None,
            port: None,
            use_tls: None,
            timeout: DEFAULT_TIMEOUT,
            master_key: None,
            limits: Limits::default(),
            webhook_tokens: Vec::new(),
            http: None,
            http2_prior_knowledge: false,
            errors: Vec::new(),
        }
    }

    /// Sets the app id.
    pub fn app_id(mut self, app_id: impl Into<String>) -> Self {
        self.app_id = Some(app_id.into());
        self
    }

    /// Sets the app key.
    pub fn key(mut self, key: impl Into<String>) -> Self {
        self.key = Some(key.into());
        self
    }

    /// Sets the app secret. It is kept out of `Debug` output, errors and logs.
    pub fn secret(mut self, secret: impl Into<String>) -> Self {
        self.secret = Some(Secret(secret.into()));
        self
    }

    /// Uses Pusher's hosted cluster `cluster` (`api-{cluster}.pusher.com`, TLS).
    /// An explicit [`host`](Self::host) takes precedence.
    pub fn cluster(mut self, cluster: impl Into<String>) -> Self {
        self.cluster = Some(cluster.into());
        self
    }

    /// Uses a specific host, such as a self-hosted Sockudo or Soketi server.
    pub fn host(mut self, host: impl Into<String>) -> Self {
        self.host = Some(host.into());
        self
    }

    /// Points the client at a base URL such as `http://127.0.0.1:6001` (scheme,
    /// host and port at once), for self-hosted servers and proxies.
    ///
    /// ```
    /// let client = pusher_client::Client::builder()
    ///     .app_id("app").key("key").secret("secret")
    ///     .base_url("http://127.0.0.1:6001")
    ///     .build()?;
    /// assert_eq!(client.base_url(), "http://127.0.0.1:6001");
    /// # Ok::<(), pusher_client::Error>(())
    /// ```
    pub fn base_url(mut self, base_url: &str) -> Self {
        match url::Url::parse(base_url) {
            Ok(url)
                if matches!(url.scheme(), "http" | "https")
                    && url.host_str().is_some()
                    && url.username().is_empty()
                    && url.password().is_none()
                    && matches!(url.path(), "" | "/")
                    && url.query().is_none() =>
            {
                self.use_tls = Some(url.scheme() == "https");
                self.host = url.host_str().map(str::to_owned);
                self.port = url.port();
            }
            // The input is not repeated: it may hold credentials.
            _ => self.errors.push(
                "the base URL must look like http(s)://HOST[:PORT], without credentials, path or query"
                    .to_owned(),
            ),
        }
        self
    }

    /// Uses a specific port (default: 443 with TLS, 80 without).
    pub fn port(mut self, port: u16) -> Self {
        self.port = Some(port);
        self
    }

    /// Chooses `https` (the default) or plain `http`.
    pub fn use_tls(mut self, use_tls: bool) -> Self {
        self.use_tls = Some(use_tls);
        self
    }

    /// Sets the timeout of a whole request, connection included (default 10 s).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Sets the end-to-end encryption master key (32 bytes, base64-encoded), needed
    /// for `private-encrypted-` channels.
    pub fn encryption_master_key_base64(mut self, key: impl Into<String>) -> Self {
        self.master_key = Some(Secret(key.into()));
        self
    }

    /// Replaces the validation limits (see [`Limits`]).
    pub fn limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    /// Accepts webhooks signed with another key/secret pair as well as the app's
    /// own, for example while rotating secrets.
    pub fn webhook_token(mut self, key: impl Into<String>, secret: impl Into<String>) -> Self {
        self.webhook_tokens
            .push((key.into(), Secret(secret.into())));
        self
    }

    /// Shares an existing `reqwest::Client` (and its connection pool). Its own
    /// timeout settings then apply instead of [`timeout`](Self::timeout).
    pub fn http_client(mut self, http: reqwest::Client) -> Self {
        self.http = Some(http);
        self
    }

    /// Speaks HTTP/2 from the first byte instead of HTTP/1.1 (`h2c` on plain
    /// `http`), so all requests share one connection. Only for servers known to
    /// accept it; over TLS, HTTP/2 is negotiated automatically when the server
    /// offers it.
    ///
    /// Recommended with Sockudo: it answers every HTTP/1.1 API request with
    /// `Connection: close`, so over HTTP/1.1 each request opens a new TCP
    /// connection, while over h2c one connection carries them all (about 2-4x the
    /// throughput on a local server).
    ///
    /// ```
    /// let client = pusher_client::Client::builder()
    ///     .url("http://key:secret@127.0.0.1:6001/apps/app-id")
    ///     .http2_prior_knowledge(true)
    ///     .build()?;
    /// # let _ = client;
    /// # Ok::<(), pusher_client::Error>(())
    /// ```
    pub fn http2_prior_knowledge(mut self, enabled: bool) -> Self {
        self.http2_prior_knowledge = enabled;
        self
    }

    /// Reads app id, key, secret, host, port and TLS from a URL of the form
    /// `http(s)://KEY:SECRET@HOST[:PORT]/apps/APP_ID`.
    ///
    /// ```
    /// use pusher_client::Client;
    ///
    /// let client = Client::builder().url("http://key:secret@localhost:6001/apps/42").build()?;
    /// assert_eq!(client.app_id(), "42");
    /// assert_eq!(client.key(), "key");
    /// assert_eq!(client.base_url(), "http://localhost:6001");
    /// # Ok::<(), pusher_client::Error>(())
    /// ```
    pub fn url(mut self, url: &str) -> Self {
        match parse_pusher_url(url) {
            Ok(parts) => {
                self.use_tls = Some(parts.use_tls);
                self.host = Some(parts.host);
                self.port = parts.port;
                self.key = Some(parts.key);
                self.secret = Some(parts.secret);
                self.app_id = Some(parts.app_id);
            }
            Err(reason) => self.errors.push(reason),
        }
        self
    }

    /// Reads the configuration from the process environment (see the
    /// [module documentation](crate::config) for the variables).
    pub fn from_env() -> Self {
        Self::from_vars(|name| std::env::var(name).ok())
    }

    /// Reads the configuration through `lookup`, which maps a variable name such as
    /// `PUSHER_APP_ID` to its value. [`from_env`](Self::from_env) uses the process
    /// environment; tests and other configuration sources can pass their own.
    ///
    /// ```
    /// use std::collections::HashMap;
    /// use pusher_client::ClientBuilder;
    ///
    /// let vars = HashMap::from([
    ///     ("PUSHER_APP_ID", "1"),
    ///     ("PUSHER_KEY", "key"),
    ///     ("PUSHER_SECRET", "secret"),
    ///     ("PUSHER_CLUSTER", "ap1"),
    /// ]);
    /// let client = ClientBuilder::from_vars(|k| vars.get(k).map(|v| v.to_string())).build()?;
    /// assert_eq!(client.base_url(), "https://api-ap1.pusher.com");
    /// # Ok::<(), pusher_client::Error>(())
    /// ```
    pub fn from_vars(lookup: impl Fn(&str) -> Option<String>) -> Self {
        let get = |name: &str| lookup(name).filter(|v| !v.trim().is_empty());
        let mut b = Self::new();
        if let Some(url) = get("PUSHER_URL") {
            b = b.url(url.trim());
        }
        if let Some(v) = get("PUSHER_APP_ID") {
            b = b.app_id(v);
        }
        if let Some(v) = get("PUSHER_KEY") {
            b = b.key(v);
        }
        if let Some(v) = get("PUSHER_SECRET") {
            b = b.secret(v);
        }
        if let Some(v) = get("PUSHER_CLUSTER") {
            b = b.cluster(v);
        }
        if let Some(v) = get("PUSHER_HOST") {
            b = b.host(v);
        }
        if let Some(v) = get("PUSHER_PORT") {
            match v.trim().parse() {
                Ok(port) => b = b.port(port),
                Err(_) => b
                    .errors
                    .push(format!("PUSHER_PORT `{v}` is not a port number")),
            }
        }
        if let Some(v) = get("PUSHER_USE_TLS") {
            match parse_bool(&v) {
                Some(tls) => b = b.use_tls(tls),
                None => b
                    .errors
                    .push(format!("PUSHER_USE_TLS `{v}` is not true/false")),
            }
        }
        if let Some(v) = get("PUSHER_ENCRYPTION_MASTER_KEY_BASE64") {
            b = b.encryption_master_key_base64(v);
        }
        if let Some(v) = get("PUSHER_HTTP2_PRIOR_KNOWLEDGE") {
            match parse_bool(&v) {
                Some(h2) => b = b.http2_prior_knowledge(h2),
                None => b.errors.push(format!(
                    "PUSHER_HTTP2_PRIOR_KNOWLEDGE `{v}` is not true/false"
                )),
            }
        }
        if let Some(v) = get("PUSHER_TIMEOUT_MS") {
            match v.trim().parse() {
                Ok(ms) => b = b.timeout(Duration::from_millis(ms)),
                Err(_) => b.errors.push(format!(
                    "PUSHER_TIMEOUT_MS `{v}` is not a number of milliseconds"
                )),
            }
        }
        b
    }

    /// Validates the configuration and builds the client.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidConfig`] when app id, key or secret is missing or a URL or
    /// environment value is malformed, [`Error::InvalidMasterKey`] when the master key
    /// is not 32 bytes of base64, and [`Error::Http`] when the TLS backend cannot
    /// be initialised.
    pub fn build(self) -> Result<Client> {
        if !self.errors.is_empty() {
            return Err(Error::InvalidConfig {
                reason: self.errors.join("; "),
            });
        }
        let missing = |what: &str, var: &str| Error::InvalidConfig {
            reason: format!("missing {what}: set it on the builder, in {var} or in PUSHER_URL"),
        };
        let app_id = self
            .app_id
            .filter(|s| !s.is_empty())
            .ok_or_else(|| missing("app id", "PUSHER_APP_ID"))?;
        let key = self
            .key
            .filter(|s| !s.is_empty())
            .ok_or_else(|| missing("app key", "PUSHER_KEY"))?;
        let secret = self
            .secret
            .filter(|s| !s.0.is_empty())
            .ok_or_else(|| missing("app secret", "PUSHER_SECRET"))?;
        if app_id.contains(['/', '?', '#']) {
            return Err(Error::InvalidConfig {
                reason: format!("app id `{app_id}` cannot contain `/`, `?` or `#`"),
            });
        }
        let use_tls = self.use_tls.unwrap_or(true);
        let host = match (self.host, self.cluster) {
            (Some(host), _) => host,
            (None, Some(cluster)) => format!("api-{cluster}.pusher.com"),
            (None, None) => "api-mt1.pusher.com".to_owned(),
        };
        let host = host.trim_end_matches('/');
        let host = host
            .strip_prefix("https://")
            .or_else(|| host.strip_prefix("http://"))
            .unwrap_or(host);
        if host.is_empty() || host.contains(['/', '?', '#', '@']) {
            // The input is not repeated: a mistaken URL may hold credentials.
            return Err(Error::InvalidConfig {
                reason: "the host must be a bare host name or address (set the port and TLS \
                         separately, or use a PUSHER_URL)"
                    .to_owned(),
            });
        }
        let scheme = if use_tls { "https" } else { "http" };
        let base_url = match self.port {
            Some(port) => format!("{scheme}://{host}:{port}"),
            None => format!("{scheme}://{host}"),
        };
        url::Url::parse(&base_url).map_err(|e| Error::InvalidConfig {
            reason: format!("the host and port do not make a valid URL: {e}"),
        })?;
        let master_key = self
            .master_key
            .map(|k| MasterKey::from_base64(k.expose()))
            .transpose()?;
        let http = match self.http {
            Some(http) => http,
            None => {
                let mut http = reqwest::Client::builder()
                    .timeout(self.timeout)
                    .connect_timeout(self.timeout.min(Duration::from_secs(10)))
                    .tcp_nodelay(true)
                    .pool_idle_timeout(Duration::from_secs(60))
                    .user_agent(concat!("pusher-client-rust/", env!("CARGO_PKG_VERSION")));
                if self.http2_prior_knowledge {
                    http = http.http2_prior_knowledge();
                }
                http.build().map_err(Error::from_reqwest)?
            }
        };
        let config = Config {
            app_id,
            key,
            secret,
            base_url,
            timeout: self.timeout,
            master_key,
            limits: self.limits,
            webhook_tokens: self.webhook_tokens,
        };
        Ok(Client::from_inner(Arc::new(Inner::new(config, http))))
    }
}

struct UrlParts {
    use_tls: bool,
    host: String,
    port: Option<u16>,
    key: String,
    secret: Secret,
    app_id: String,
}

fn parse_pusher_url(raw: &str) -> std::result::Result<UrlParts, String> {
    const SHAPE: &str = "expected http(s)://KEY:SECRET@HOST[:PORT]/apps/APP_ID";
    // Never echo the URL itself: it holds the secret.
    let url =
        url::Url::parse(raw).map_err(|e| format!("Pusher URL is malformed ({e}); {SHAPE}"))?;
    let use_tls = match url.scheme() {
        "https" => true,
        "http" => false,
        other => return Err(format!("Pusher URL scheme `{other}` is not http or https")),
    };
    let host = url
        .host_str()
        .ok_or_else(|| format!("Pusher URL has no host; {SHAPE}"))?
        .to_owned();
    let decode = |s: &str| {
        url::form_urlencoded::parse(format!("x={s}").as_bytes())
            .next()
            .map(|(_, v)| v.into_owned())
            .unwrap_or_default()
    };
    let key = decode(url.username());
    let secret = url.password().map(decode).unwrap_or_default();
    if key.is_empty() || secret.is_empty() {
        return Err(format!("Pusher URL has no key or secret; {SHAPE}"));
    }
    let mut segments = url
        .path_segments()
        .into_iter()
        .flatten()
        .filter(|s| !s.is_empty());
    let app_id = match (segments.next(), segments.next(), segments.next()) {
        (Some("apps"), Some(id), None) => id.to_owned(),
        _ => return Err(format!("Pusher URL path must be /apps/APP_ID; {SHAPE}")),
    };
    Ok(UrlParts {
        use_tls,
        host,
        port: url.port(),
        key,
        secret: Secret(secret),
        app_id,
    })
}

fn parse_bool(v: &str) -> Option<bool> {
    match v.trim().to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Some(true),
        "0" | "false" | "no" | "off" => Some(false),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn from_map(vars: &[(&str, &str)]) -> ClientBuilder {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        ClientBuilder::from_vars(move |k| map.get(k).cloned())
    }

    #[test]
    fn url_with_tls_and_default_port() {
        let c = Client::builder()
            .url("https://abc:s3cr3t@api-eu.pusher.com/apps/99")
            .build()
            .unwrap();
        assert_eq!(c.app_id(), "99");
        assert_eq!(c.key(), "abc");
        assert_eq!(c.base_url(), "https://api-eu.pusher.com");
    }

    #[test]
    fn url_with_escaped_secret() {
        let c = Client::builder()
            .url("http://k:a%2Fb%40c@127.0.0.1:6001/apps/7")
            .build()
            .unwrap();
        assert_eq!(c.inner().config.secret.expose(), "a/b@c");
        assert_eq!(c.base_url(), "http://127.0.0.1:6001");
    }

    #[test]
    fn bad_urls_never_echo_the_secret() {
        for url in [
            "ftp://k:topsecret@h/apps/1",
            "http://k:topsecret@h/app/1",
            "http://k@h/apps/1",
            "http://k:topsecret@h/apps/1/extra",
            "not a url topsecret",
        ] {
            let err = Client::builder().url(url).build().unwrap_err();
            assert!(matches!(err, Error::InvalidConfig { .. }), "{url}");
            assert!(!err.to_string().contains("topsecret"), "{err}");
        }
    }

    #[test]
    fn env_with_cluster() {
        let c = from_map(&[
            ("PUSHER_APP_ID", "1"),
            ("PUSHER_KEY", "k"),
            ("PUSHER_SECRET", "s"),
            ("PUSHER_CLUSTER", "us2"),
        ])
        .build()
        .unwrap();
        assert_eq!(c.base_url(), "https://api-us2.pusher.com");
    }

    #[test]
    fn env_with_host_port_tls() {
        let c = from_map(&[
            ("PUSHER_APP_ID", "1"),
            ("PUSHER_KEY", "k"),
            ("PUSHER_SECRET", "s"),
            ("PUSHER_HOST", "sockudo.internal"),
            ("PUSHER_PORT", "6001"),
            ("PUSHER_USE_TLS", "false"),
            ("PUSHER_TIMEOUT_MS", "1500"),
        ])
        .build()
        .unwrap();
        assert_eq!(c.base_url(), "http://sockudo.internal:6001");
        assert_eq!(c.inner().config.timeout, Duration::from_millis(1500));
    }

    #[test]
    fn env_url_then_overrides() {
        let c = from_map(&[
            ("PUSHER_URL", "http://k:s@localhost:6001/apps/5"),
            ("PUSHER_APP_ID", "6"),
            (
                "PUSHER_ENCRYPTION_MASTER_KEY_BASE64",
                "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=",
            ),
        ])
        .build()
        .unwrap();
        assert_eq!(c.app_id(), "6");
        assert!(c.inner().config.master_key.is_some());
    }

    #[test]
    fn env_errors_are_reported() {
        let err = from_map(&[("PUSHER_PORT", "eighty")]).build().unwrap_err();
        assert!(err.to_string().contains("PUSHER_PORT"), "{err}");
        let err = from_map(&[("PUSHER_APP_ID", "1"), ("PUSHER_KEY", "k")])
            .build()
            .unwrap_err();
        assert!(err.to_string().contains("secret"), "{err}");
        let err = from_map(&[
            ("PUSHER_APP_ID", "1"),
            ("PUSHER_KEY", "k"),
            ("PUSHER_SECRET", "s"),
            ("PUSHER_ENCRYPTION_MASTER_KEY_BASE64", "dG9vIHNob3J0"),
        ])
        .build()
        .unwrap_err();
        assert!(matches!(err, Error::InvalidMasterKey { .. }), "{err}");
    }

    #[test]
    fn debug_hides_secrets() {
        let b = Client::builder()
            .app_id("1")
            .key("k")
            .secret("hunter2-secret")
            .encryption_master_key_base64("AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=");
        let dbg = format!("{b:?}");
        assert!(
            !dbg.contains("hunter2-secret") && !dbg.contains("AAECAwQF"),
            "{dbg}"
        );
        let c = b.build().unwrap();
        let dbg = format!("{c:?}");
        assert!(
            !dbg.contains("hunter2-secret") && !dbg.contains("AAECAwQF"),
            "{dbg}"
        );
        assert!(dbg.contains("redacted"), "{dbg}");
    }

    #[test]
    fn base_url_and_http2_from_env() {
        let c = Client::builder()
            .app_id("1")
            .key("k")
            .secret("s")
            .base_url("https://pusher.internal:8443/")
            .build()
            .unwrap();
        assert_eq!(c.base_url(), "https://pusher.internal:8443");
        for bad in ["ftp://h", "http://u:p@h", "http://h/apps/1", "nonsense"] {
            let err = Client::builder()
                .app_id("1")
                .key("k")
                .secret("s")
                .base_url(bad)
                .build()
                .unwrap_err();
            assert!(matches!(err, Error::InvalidConfig { .. }), "{bad}");
        }
        // A mistaken URL with credentials is never repeated in the error.
        for (base, host) in [
            ("http://user:hunter2@h", None),
            ("", Some("https://key:hunter2@h")),
        ] {
            let mut builder = Client::builder().app_id("1").key("k").secret("s");
            builder = match host {
                Some(host) => builder.host(host),
                None => builder.base_url(base),
            };
            let err = builder.build().unwrap_err();
            assert!(!err.to_string().contains("hunter2"), "{err}");
            assert!(!format!("{err:?}").contains("hunter2"), "{err:?}");
        }
        let ok = from_map(&[
            ("PUSHER_URL", "http://k:s@localhost:6001/apps/5"),
            ("PUSHER_HTTP2_PRIOR_KNOWLEDGE", "true"),
        ]);
        assert!(ok.http2_prior_knowledge);
        assert!(ok.build().is_ok());
        let err = from_map(&[
            ("PUSHER_URL", "http://k:s@localhost:6001/apps/5"),
            ("PUSHER_HTTP2_PRIOR_KNOWLEDGE", "maybe"),
        ])
        .build()
        .unwrap_err();
        assert!(
            err.to_string().contains("PUSHER_HTTP2_PRIOR_KNOWLEDGE"),
            "{err}"
        );
    }

    #[test]
    fn default_host_is_mt1() {
        let c = Client::builder()
            .app_id("1")
            .key("k")
            .secret("s")
            .build()
            .unwrap();
        assert_eq!(c.base_url(), "https://api-mt1.pusher.com");
    }
}
