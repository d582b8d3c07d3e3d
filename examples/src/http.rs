//! The HTTP API and the page.

use std::path::PathBuf;
use std::sync::Arc;

use axum::Router;
use axum::extract::rejection::{FormRejection, JsonRejection};
use axum::extract::{DefaultBodyLimit, Form, Json, Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::{Value, json};
use workflow_core::{Engine, Error as EngineError, RunId};

use crate::notifier::{PUBLIC_CHANNEL, Services, channel_user, new_user_id, user_channel};
use crate::runs::RunView;
use crate::workflow::handle_user_signup;

/// The largest request body the API accepts.
pub const MAX_BODY_BYTES: usize = 16 * 1024;

/// Where the page loads pusher-js from when it is not installed locally.
pub const PUSHER_JS_CDN: &str = "https://js.pusher.com/8.4.0/pusher.min.js";

/// What the handlers share.
#[derive(Debug, Clone)]
pub struct AppState {
    /// The workflow engine.
    pub engine: Engine,
    /// The steps' services (for channel authorization).
    pub services: Arc<Services>,
    /// How the page connects to the Pusher server.
    pub page_config: Value,
    /// A local copy of `pusher.min.js`, if installed.
    pub pusher_js: Option<PathBuf>,
}

/// The router of the whole app.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/", get(page))
        .route("/vendor/pusher.min.js", get(pusher_js))
        .route("/api/config", get(config))
        .route("/api/signup", post(signup))
        .route("/api/runs", get(list_runs))
        .route("/api/runs/{id}", get(run))
        .route("/pusher/auth", post(auth))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(state)
}

/// An error answer: a status and `{"error": {"code": ..., "message": ...}}`.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
}

impl ApiError {
    fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
        }
    }

    fn internal(error: impl std::fmt::Display) -> Self {
        tracing::error!(%error, "request failed");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            error.to_string(),
        )
    }
}

impl From<JsonRejection> for ApiError {
    fn from(rejection: JsonRejection) -> Self {
        let status = rejection.status();
        let code = match status {
            StatusCode::PAYLOAD_TOO_LARGE => "body_too_large",
            StatusCode::UNSUPPORTED_MEDIA_TYPE => "unsupported_media_type",
            StatusCode::UNPROCESSABLE_ENTITY => "invalid_body",
            _ => "malformed_json",
        };
        let message = match status {
            StatusCode::PAYLOAD_TOO_LARGE => {
                format!("the request body is larger than {MAX_BODY_BYTES} bytes")
            }
            StatusCode::UNSUPPORTED_MEDIA_TYPE => {
                "send JSON with `Content-Type: application/json`".into()
            }
            _ => rejection.body_text(),
        };
        Self::new(status, code, message)
    }
}

impl From<FormRejection> for ApiError {
    fn from(rejection: FormRejection) -> Self {
        Self::new(rejection.status(), "invalid_form", rejection.body_text())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = json!({ "error": { "code": self.code, "message": self.message } });
        (self.status, Json(body)).into_response()
    }
}

async fn page() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        include_str!("../web/index.html"),
    )
}

async fn pusher_js(State(state): State<AppState>) -> Response {
    if let Some(path) = &state.pusher_js
        && let Ok(bytes) = tokio::fs::read(path).await
    {
        return ([(header::CONTENT_TYPE, "application/javascript")], bytes).into_response();
    }
    Redirect::temporary(PUSHER_JS_CDN).into_response()
}

async fn config(State(state): State<AppState>) -> Json<Value> {
    Json(state.page_config.clone())
}

/// The body of `POST /api/signup`.
#[derive(Debug, Deserialize)]
pub struct SignupRequest {
    /// The address to sign up.
    pub email: String,
}

/// Checks an email address the way a signup form should: one `@`, a local
/// part, a domain with a dot, no spaces, at most 254 characters.
///
/// # Errors
///
/// A message saying what is wrong.
pub fn validate_email(email: &str) -> Result<String, String> {
    let email = email.trim();
    if email.is_empty() {
        return Err("`email` is empty".into());
    }
    if email.len() > 254 {
        return Err("`email` is longer than 254 characters".into());
    }
    if email.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err("`email` contains spaces or control characters".into());
    }
    let Some((local, domain)) = email.split_once('@') else {
        return Err(format!("`{email}` is not an email address: it has no `@`"));
    };
    if local.is_empty() || domain.contains('@') {
        return Err(format!("`{email}` is not an email address"));
    }
    if !domain.contains('.')
        || domain.starts_with('.')
        || domain.ends_with('.')
        || domain.contains("..")
    {
        return Err(format!(
            "`{email}` is not an email address: `{domain}` is not a domain"
        ));
    }
    Ok(email.to_owned())
}

async fn signup(
    State(state): State<AppState>,
    body: Result<Json<SignupRequest>, JsonRejection>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let Json(request) = body?;
    let email = validate_email(&request.email)
        .map_err(|m| ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_email", m))?;
    let user_id = new_user_id();
    let run = state
        .engine
        .start(handle_user_signup, (email, user_id.clone()))
        .await
        .map_err(ApiError::internal)?;
    tracing::info!(run_id = %run.id(), %user_id, "signup started");
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({
            "runId": run.id().to_string(),
            "message": "Workflow started",
            "userId": user_id,
            "channel": user_channel(&user_id),
            "publicChannel": PUBLIC_CHANNEL,
            "token": state.services.user_token(&user_id),
        })),
    ))
}

fn parse_run_id(id: &str) -> Result<RunId, ApiError> {
    id.parse().map_err(|e: workflow_core::ParseRunIdError| {
        ApiError::new(StatusCode::BAD_REQUEST, "invalid_run_id", e.to_string())
    })
}

async fn run(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<RunView>, ApiError> {
    let id = parse_run_id(&id)?;
    let record = match state.engine.run(id).await {
        Ok(record) => record,
        Err(EngineError::RunNotFound(_)) => {
            return Err(ApiError::new(
                StatusCode::NOT_FOUND,
                "run_not_found",
                format!("no run with id {id}"),
            ));
        }
        Err(e) => return Err(ApiError::internal(e)),
    };
    let journal = state.engine.journal(id).await.map_err(ApiError::internal)?;
    Ok(Json(RunView::new(&record, &journal)))
}

async fn list_runs(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    let runs = state.engine.runs(20).await.map_err(ApiError::internal)?;
    let runs: Vec<Value> = runs
        .iter()
        .map(|r| json!({ "runId": r.id.to_string(), "status": r.status.to_string(), "createdAt": r.created_at.as_millis() }))
        .collect();
    Ok(Json(json!({ "runs": runs })))
}

/// The form pusher-js posts to authorize a private channel, plus the user's
/// token the page adds.
#[derive(Debug, Deserialize)]
pub struct AuthRequest {
    /// The connection's socket id.
    pub socket_id: String,
    /// The channel to authorize.
    pub channel_name: String,
    /// The user's token from the signup answer.
    #[serde(default)]
    pub token: String,
}

async fn auth(
    State(state): State<AppState>,
    form: Result<Form<AuthRequest>, FormRejection>,
) -> Result<Response, ApiError> {
    let Form(request) = form?;
    let Some(user_id) = channel_user(&request.channel_name) else {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "channel_not_allowed",
            format!(
                "`{}` is not a user channel this server authorizes",
                request.channel_name
            ),
        ));
    };
    if !state.services.check_token(user_id, &request.token) {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "bad_token",
            "this token does not belong to that user's channel",
        ));
    }
    let auth = state
        .services
        .pusher
        .authorize_channel(&request.socket_id, &request.channel_name)
        .map_err(|e| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "invalid_auth_request",
                e.to_string(),
            )
        })?;
    Ok(([(header::CONTENT_TYPE, "application/json")], auth.to_json()).into_response())
}

#[cfg(test)]
mod tests {
    use super::validate_email;

    #[test]
    fn emails_are_checked() {
        assert_eq!(
            validate_email(" ada@example.com ").unwrap(),
            "ada@example.com"
        );
        for bad in [
            "",
            "ada",
            "@example.com",
            "ada@",
            "ada@example",
            "a b@example.com",
            "a@@b.com",
            "a@b..com",
        ] {
            assert!(validate_email(bad).is_err(), "{bad}");
        }
        assert!(validate_email(&format!("{}@example.com", "a".repeat(250))).is_err());
    }
}
