//! Configuration from the environment.

use std::net::SocketAddr;
use std::time::Duration;

/// Where the server sends Pusher events.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PusherTarget {
    /// The Pusher service or a self-hosted server, from `PUSHER_URL` or
    /// `PUSHER_APP_ID` / `PUSHER_KEY` / `PUSHER_SECRET` (+ cluster or host).
    External,
    /// An embedded Pusher-compatible server on this address.
    Embedded(SocketAddr),
}

/// The server's settings.
#[derive(Debug, Clone)]
pub struct Config {
    /// Where the HTTP server listens (`SIGNUP_ADDR`, default `127.0.0.1:3000`).
    pub addr: SocketAddr,
    /// The workflow store (`WORKFLOW_DATABASE_URL`, default `sqlite://signup.db`).
    pub store_url: String,
    /// The workflow's durable sleep (`SIGNUP_SLEEP`, default `5s`).
    pub sleep: Duration,
    /// How often the welcome email fails (`SIGNUP_FAILURE_RATE`, default `0.3`).
    pub failure_rate: f64,
    /// Where Pusher events go.
    pub pusher: PusherTarget,
}

fn var(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

impl Config {
    /// Reads the configuration from the environment.
    ///
    /// # Errors
    ///
    /// A message naming the variable that does not parse.
    pub fn from_env() -> Result<Self, String> {
        Self::from_lookup(var)
    }

    /// Reads the configuration through `lookup` (for tests).
    ///
    /// # Errors
    ///
    /// A message naming the variable that does not parse.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, String> {
        let addr = lookup("SIGNUP_ADDR").unwrap_or_else(|| "127.0.0.1:3000".into());
        let addr = addr.parse().map_err(|e| {
            format!("SIGNUP_ADDR=`{addr}` is not an address such as 127.0.0.1:3000: {e}")
        })?;
        let sleep_text = lookup("SIGNUP_SLEEP").unwrap_or_else(|| "5s".into());
        let sleep = humantime_like(&sleep_text).ok_or_else(|| {
            format!("SIGNUP_SLEEP=`{sleep_text}` is not a duration such as 5s or 500ms")
        })?;
        let rate_text = lookup("SIGNUP_FAILURE_RATE").unwrap_or_else(|| "0.3".into());
        let failure_rate: f64 = rate_text
            .parse()
            .ok()
            .filter(|r: &f64| (0.0..=1.0).contains(r))
            .ok_or_else(|| {
                format!("SIGNUP_FAILURE_RATE=`{rate_text}` is not a number between 0 and 1")
            })?;
        let pusher = if lookup("PUSHER_URL").is_some() || lookup("PUSHER_APP_ID").is_some() {
            PusherTarget::External
        } else {
            let local = lookup("LOCAL_PUSHER_ADDR").unwrap_or_else(|| "127.0.0.1:6001".into());
            PusherTarget::Embedded(local.parse().map_err(|e| {
                format!("LOCAL_PUSHER_ADDR=`{local}` is not an address such as 127.0.0.1:6001: {e}")
            })?)
        };
        Ok(Self {
            addr,
            store_url: lookup(workflow_core::store::STORE_URL_VAR)
                .unwrap_or_else(|| "sqlite://signup.db".into()),
            sleep,
            failure_rate,
            pusher,
        })
    }
}

/// Parses `250ms`, `5s`, `2m`, `1h` or a plain number of seconds.
fn humantime_like(text: &str) -> Option<Duration> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let n: f64 = number.parse().ok()?;
    let secs = match unit.trim() {
        "ms" => n / 1000.0,
        "" | "s" => n,
        "m" => n * 60.0,
        "h" => n * 3600.0,
        _ => return None,
    };
    Duration::try_from_secs_f64(secs).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(vars: &[(&str, &str)]) -> Result<Config, String> {
        let vars: Vec<(String, String)> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Config::from_lookup(|name| vars.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone()))
    }

    #[test]
    fn defaults_use_embedded_services() {
        let c = config(&[]).unwrap();
        assert_eq!(c.addr.to_string(), "127.0.0.1:3000");
        assert_eq!(c.store_url, "sqlite://signup.db");
        assert_eq!(c.sleep, Duration::from_secs(5));
        assert_eq!(
            c.pusher,
            PusherTarget::Embedded("127.0.0.1:6001".parse().unwrap())
        );
    }

    #[test]
    fn pusher_variables_select_an_external_target() {
        let c = config(&[("PUSHER_URL", "http://k:s@127.0.0.1:6001/apps/1")]).unwrap();
        assert_eq!(c.pusher, PusherTarget::External);
    }

    #[test]
    fn bad_values_name_the_variable() {
        assert!(
            config(&[("SIGNUP_SLEEP", "soon")])
                .unwrap_err()
                .contains("SIGNUP_SLEEP")
        );
        assert!(
            config(&[("SIGNUP_FAILURE_RATE", "2")])
                .unwrap_err()
                .contains("SIGNUP_FAILURE_RATE")
        );
        assert!(
            config(&[("SIGNUP_ADDR", "here")])
                .unwrap_err()
                .contains("SIGNUP_ADDR")
        );
        assert_eq!(
            config(&[("SIGNUP_SLEEP", "250ms")]).unwrap().sleep,
            Duration::from_millis(250)
        );
    }
}
