//! The HTTP API: events, batch events and channel queries, every request
//! authenticated like Pusher does it (`auth_version=1.0`, see
//! [`crate::signing`]).

use std::sync::Arc;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Path, Request, State as AxumState};
use axum::http::{Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::State;
use super::channels::Occupancy;
use super::protocol::frame;
use crate::signing::{AUTH_VERSION, body_md5, hmac_sha256_hex, string_to_sign, unix_now};
use crate::validation::{Limits, check_socket_id};

/// How far `auth_timestamp` may be from the server's clock, in seconds.
const MAX_CLOCK_SKEW_SECS: u64 = 600;

/// The HTTP API routes.
pub(crate) fn router(state: Arc<State>) -> Router {
    Router::new()
        .route("/apps/{app_id}/events", post(events))
        .route("/apps/{app_id}/batch_events", post(batch_events))
        .route("/apps/{app_id}/channels", get(channels))
        .route("/apps/{app_id}/channels/{channel}", get(channel))
        .route("/apps/{app_id}/channels/{channel}/users", get(users))
        .route(
            "/apps/{app_id}/users/{user_id}/terminate_connections",
            post(terminate_connections),
        )
        .with_state(state)
}

/// An API failure: a status and a plain-text message, as Pusher answers.
#[derive(Debug)]
struct ApiError(StatusCode, String);

impl ApiError {
    fn bad_request(message: impl Into<String>) -> Self {
        Self(StatusCode::BAD_REQUEST, message.into())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        tracing::debug!(status = self.0.as_u16(), message = %self.1, "API request refused");
        (
            self.0,
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            self.1,
        )
            .into_response()
    }
}

type ApiResult = Result<Response, ApiError>;

/// Reads the body (within the size limit) and checks the request's signature.
async fn authenticate(state: &State, app_id: &str, request: Request) -> Result<Bytes, ApiError> {
    let (parts, body) = request.into_parts();
    let limit = body_limit(state);
    let body = axum::body::to_bytes(body, limit).await.map_err(|_| {
        ApiError(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("Request body too large: the limit is {limit} bytes"),
        )
    })?;
    check_signature(state, app_id, &parts.method, &parts.uri, &body)?;
    Ok(body)
}

/// The largest request body: a full batch of maximal events and their envelopes.
fn body_limit(state: &State) -> usize {
    state
        .max_payload_bytes
        .saturating_mul(Limits::default().batch_size())
        .saturating_add(64 * 1024)
}

fn check_signature(
    state: &State,
    app_id: &str,
    method: &Method,
    uri: &Uri,
    body: &[u8],
) -> Result<(), ApiError> {
    if app_id != state.app_id {
        return Err(ApiError(
            StatusCode::NOT_FOUND,
            format!("Unknown app id `{app_id}`"),
        ));
    }
    let unauthorized = |message: String| ApiError(StatusCode::UNAUTHORIZED, message);
    let pairs: Vec<(String, String)> = uri
        .query()
        .map(|q| {
            url::form_urlencoded::parse(q.as_bytes())
                .into_owned()
                .collect()
        })
        .unwrap_or_default();
    let param = |name: &str| {
        pairs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    let Some(signature) = param("auth_signature") else {
        return Err(unauthorized("Missing auth_signature".to_owned()));
    };
    if param("auth_key") != Some(state.key.as_str()) {
        return Err(unauthorized(format!(
            "Invalid auth_key: expected the key of app `{}`",
            state.app_id
        )));
    }
    if param("auth_version") != Some(AUTH_VERSION) {
        return Err(unauthorized(format!(
            "Invalid auth_version: expected {AUTH_VERSION}"
        )));
    }
    let timestamp: u64 = param("auth_timestamp")
        .and_then(|t| t.parse().ok())
        .ok_or_else(|| unauthorized("Missing or invalid auth_timestamp".to_owned()))?;
    let now = unix_now();
    if now.abs_diff(timestamp) > MAX_CLOCK_SKEW_SECS {
        return Err(unauthorized(format!(
            "Timestamp expired: given {timestamp}, current time {now}; \
             the difference must be under {MAX_CLOCK_SKEW_SECS} seconds"
        )));
    }
    if !body.is_empty() && param("body_md5") != Some(body_md5(body).as_str()) {
        return Err(unauthorized(
            "Invalid body_md5: it must be the hex MD5 of the request body".to_owned(),
        ));
    }
    let signed: Vec<(&str, &str)> = pairs
        .iter()
        .filter(|(k, _)| k != "auth_signature")
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let to_sign = string_to_sign(method.as_str(), uri.path(), &signed);
    let expected = hmac_sha256_hex(state.secret.expose(), &to_sign);
    if !bool::from(subtle::ConstantTimeEq::ct_eq(
        expected.as_bytes(),
        signature.as_bytes(),
    )) {
        return Err(unauthorized(format!(
            "Invalid signature: Expected HMAC SHA256 hex digest of {to_sign:?}"
        )));
    }
    Ok(())
}

fn parse<'a, T: Deserialize<'a>>(body: &'a [u8]) -> Result<T, ApiError> {
    serde_json::from_slice(body).map_err(|e| ApiError::bad_request(format!("Invalid JSON: {e}")))
}

fn json_response(value: &Value) -> Response {
    (
        [(header::CONTENT_TYPE, "application/json")],
        Body::from(value.to_string()),
    )
        .into_response()
}

/// Which attributes an `info` parameter asks for.
#[derive(Debug, Clone, Copy, Default)]
struct Info {
    subscription_count: bool,
    user_count: bool,
}

impl Info {
    fn parse(info: Option<&str>) -> Result<Self, ApiError> {
        let mut parsed = Self::default();
        for attribute in info.unwrap_or_default().split(',').map(str::trim) {
            match attribute {
                "" => {}
                "subscription_count" => parsed.subscription_count = true,
                "user_count" => parsed.user_count = true,
                other => {
                    return Err(ApiError::bad_request(format!(
                        "Unknown info attribute `{other}`"
                    )));
                }
            }
        }
        Ok(parsed)
    }

    fn any(self) -> bool {
        self.subscription_count || self.user_count
    }

    fn check_user_count(self, channel: &str) -> Result<(), ApiError> {
        if self.user_count && !channel.starts_with("presence-") {
            return Err(ApiError::bad_request(format!(
                "user_count is only available for presence channels, not `{channel}`"
            )));
        }
        Ok(())
    }

    fn report(self, occupancy: Occupancy) -> Map<String, Value> {
        let mut map = Map::new();
        if self.subscription_count {
            map.insert(
                "subscription_count".to_owned(),
                occupancy.subscription_count.into(),
            );
        }
        if self.user_count {
            map.insert("user_count".to_owned(), occupancy.user_count.into());
        }
        map
    }
}

#[derive(Deserialize)]
struct EventBody {
    name: String,
    data: String,
    #[serde(default)]
    channels: Option<Vec<String>>,
    #[serde(default)]
    channel: Option<String>,
    #[serde(default)]
    socket_id: Option<String>,
    #[serde(default)]
    info: Option<String>,
}

#[derive(Deserialize)]
struct BatchBody {
    batch: Vec<EventBody>,
}

/// An event checked and ready to publish.
struct Checked {
    channels: Vec<String>,
    name: String,
    data: String,
    socket_id: Option<String>,
    info: Info,
}

fn check_event(state: &State, event: EventBody, max_channels: usize) -> Result<Checked, ApiError> {
    let limits = Limits::default();
    limits
        .check_event_name(&event.name)
        .map_err(|e| ApiError::bad_request(e.to_string()))?;
    let mut channels = event.channels.unwrap_or_default();
    channels.extend(event.channel);
    if channels.is_empty() {
        return Err(ApiError::bad_request("Missing channel or channels"));
    }
    if channels.len() > max_channels {
        return Err(ApiError::bad_request(format!(
            "Too many channels: {}, the limit is {max_channels}",
            channels.len()
        )));
    }
    let info = Info::parse(event.info.as_deref())?;
    for channel in &channels {
        limits
            .check_channel(channel)
            .map_err(|e| ApiError::bad_request(e.to_string()))?;
        info.check_user_count(channel)?;
    }
    if let Some(socket_id) = &event.socket_id {
        check_socket_id(socket_id).map_err(|e| ApiError::bad_request(e.to_string()))?;
    }
    if event.data.len() > state.max_payload_bytes {
        return Err(ApiError(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!(
                "Payload too large: data is {} bytes, the limit is {}",
                event.data.len(),
                state.max_payload_bytes
            ),
        ));
    }
    Ok(Checked {
        channels,
        name: event.name,
        data: event.data,
        socket_id: event.socket_id,
        info,
    })
}

/// Fans an event out to each of its channels.
fn publish(state: &State, event: &Checked) {
    for channel in &event.channels {
        let frame = frame(&event.name, Some(channel), &event.data);
        let delivered = state
            .registry
            .publish(channel, &frame, event.socket_id.as_deref());
        tracing::debug!(channel, event = %event.name, delivered, "event published");
    }
}

/// `POST /apps/{app_id}/events`.
async fn events(
    AxumState(state): AxumState<Arc<State>>,
    Path(app_id): Path<String>,
    request: Request,
) -> ApiResult {
    let body = authenticate(&state, &app_id, request).await?;
    let event = check_event(
        &state,
        parse(&body)?,
        Limits::default().channels_per_trigger(),
    )?;
    publish(&state, &event);
    if !event.info.any() {
        return Ok(json_response(&json!({})));
    }
    let channels: Map<String, Value> = event
        .channels
        .iter()
        .map(|channel| {
            let occupancy = state.registry.occupancy(channel);
            (channel.clone(), Value::Object(event.info.report(occupancy)))
        })
        .collect();
    Ok(json_response(&json!({ "channels": channels })))
}

/// `POST /apps/{app_id}/batch_events`.
async fn batch_events(
    AxumState(state): AxumState<Arc<State>>,
    Path(app_id): Path<String>,
    request: Request,
) -> ApiResult {
    let body = authenticate(&state, &app_id, request).await?;
    let batch: BatchBody = parse(&body)?;
    let max = Limits::default().batch_size();
    if batch.batch.len() > max {
        return Err(ApiError::bad_request(format!(
            "Batch too large: {} events, the limit is {max}",
            batch.batch.len()
        )));
    }
    // Check every event before publishing any.
    let events = batch
        .batch
        .into_iter()
        .map(|event| check_event(&state, event, 1))
        .collect::<Result<Vec<_>, _>>()?;
    for event in &events {
        publish(&state, event);
    }
    if !events.iter().any(|e| e.info.any()) {
        return Ok(json_response(&json!({})));
    }
    let batch: Vec<Value> = events
        .iter()
        .map(|event| {
            let occupancy = state.registry.occupancy(&event.channels[0]);
            Value::Object(event.info.report(occupancy))
        })
        .collect();
    Ok(json_response(&json!({ "batch": batch })))
}

fn query_param(uri: &Uri, name: &str) -> Option<String> {
    url::form_urlencoded::parse(uri.query()?.as_bytes())
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

/// `GET /apps/{app_id}/channels`.
async fn channels(
    AxumState(state): AxumState<Arc<State>>,
    Path(app_id): Path<String>,
    request: Request,
) -> ApiResult {
    let uri = request.uri().clone();
    authenticate(&state, &app_id, request).await?;
    let prefix = query_param(&uri, "filter_by_prefix").unwrap_or_default();
    let info = Info::parse(query_param(&uri, "info").as_deref())?;
    if info.user_count && !prefix.starts_with("presence-") {
        return Err(ApiError::bad_request(
            "user_count needs filter_by_prefix=presence-",
        ));
    }
    let channels: Map<String, Value> = state
        .registry
        .list(&prefix)
        .into_iter()
        .map(|(name, occupancy)| (name, Value::Object(info.report(occupancy))))
        .collect();
    Ok(json_response(&json!({ "channels": channels })))
}

/// `GET /apps/{app_id}/channels/{channel}`.
async fn channel(
    AxumState(state): AxumState<Arc<State>>,
    Path((app_id, channel)): Path<(String, String)>,
    request: Request,
) -> ApiResult {
    let uri = request.uri().clone();
    authenticate(&state, &app_id, request).await?;
    Limits::default()
        .check_channel(&channel)
        .map_err(|e| ApiError::bad_request(e.to_string()))?;
    let info = Info::parse(query_param(&uri, "info").as_deref())?;
    info.check_user_count(&channel)?;
    let occupancy = state.registry.occupancy(&channel);
    let mut body = info.report(occupancy);
    body.insert(
        "occupied".to_owned(),
        (occupancy.subscription_count > 0).into(),
    );
    Ok(json_response(&Value::Object(body)))
}

/// `GET /apps/{app_id}/channels/{channel}/users`.
async fn users(
    AxumState(state): AxumState<Arc<State>>,
    Path((app_id, channel)): Path<(String, String)>,
    request: Request,
) -> ApiResult {
    authenticate(&state, &app_id, request).await?;
    if !channel.starts_with("presence-") {
        return Err(ApiError::bad_request(format!(
            "Users are only available for presence channels, not `{channel}`"
        )));
    }
    let users: Vec<Value> = state
        .registry
        .users(&channel)
        .into_iter()
        .map(|id| json!({ "id": id }))
        .collect();
    Ok(json_response(&json!({ "users": users })))
}

/// `POST /apps/{app_id}/users/{user_id}/terminate_connections`.
async fn terminate_connections(
    AxumState(state): AxumState<Arc<State>>,
    Path((app_id, user_id)): Path<(String, String)>,
    request: Request,
) -> ApiResult {
    authenticate(&state, &app_id, request).await?;
    let closed = state.registry.terminate_user(&user_id);
    tracing::debug!(user_id, closed, "terminated user connections");
    Ok(json_response(&json!({})))
}
