//! The handlers. Path and query extraction failures are taken as values (`Result<..>`) so
//! that every answer, including a malformed request, is one of ours: JSON for the API, plain
//! text for the health check.

use super::AppState;
use super::error::ApiError;
use super::tail::{TailError, tail_file};
use crate::config::is_valid_module_name;
use crate::daemon::board::{FarmView, ModuleView};
use crate::farm::membership::FarmState;
use crate::mirror::role::Readiness;
use axum::Json;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};

/// `lines` when the query does not say.
pub const DEFAULT_LOG_LINES: usize = 200;
/// Largest `lines` accepted; beyond it, use `hakit snapshot` or read the file on the node.
pub const MAX_LOG_LINES: usize = 10_000;

const INDEX: &str = "hakit node\n\
\n\
GET /var/modules/<module>/ready.txt       200 \"ready\" while this node serves the module, 404 otherwise\n\
GET /api/v1/state                         state of every module on this node (JSON)\n\
GET /api/v1/modules/<module>/state        state of one module (JSON)\n\
GET /api/v1/modules/<module>/log?lines=N  last N lines of the module log (default 200, max 10000)\n";

fn text(status: StatusCode, body: String) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        body,
    )
        .into_response()
}

pub(super) async fn index() -> Response {
    text(StatusCode::OK, INDEX.to_string())
}

/// Whether a load balancer should send this module's traffic here: PRIM or ALONE, and
/// settled. A serving role that is Transient is either still running `start_prim` (shown as
/// ALONE from the start of the takeover), restarting the application locally, or stopping
/// it (a handover shows PRIM until `stop_prim` is done): in all three the application is not
/// there to answer. The ALONE -> PRIM upgrade is Transient for only the time of one
/// persisted record, far below any load balancer's unhealthy threshold.
/// A farm module is ready when UP (see [`farm_ready`]).
fn is_ready(view: &ModuleView) -> bool {
    view.role.is_serving() && view.status.readiness == Readiness::Ready
}

/// The health check. Answers in plain text whatever happens: load balancers only look at the
/// status code, administrators reading it with curl want one short line.
pub(super) async fn ready(
    State(state): State<AppState>,
    module: Result<Path<String>, PathRejection>,
) -> Response {
    let module = match module {
        Ok(Path(m)) if is_valid_module_name(&m) => m,
        _ => return text(StatusCode::NOT_FOUND, "no such module\n".to_string()),
    };
    if let Some(farm) = state.board.farm(&module) {
        return farm_ready(&farm);
    }
    match state.board.get(&module) {
        None => text(
            StatusCode::NOT_FOUND,
            format!("no module named {module} on this node\n"),
        ),
        Some(view) if is_ready(&view) => text(StatusCode::OK, "ready\n".to_string()),
        Some(view) => text(
            StatusCode::NOT_FOUND,
            format!("not ready: {} {}\n", view.role, view.status.readiness),
        ),
    }
}

/// A farm node takes its share of the traffic when UP.
fn farm_ready(farm: &FarmView) -> Response {
    if farm.state == FarmState::Up {
        text(StatusCode::OK, "ready\n".to_string())
    } else {
        text(
            StatusCode::NOT_FOUND,
            format!("not ready: {} ({})\n", farm.state, farm.status.reason),
        )
    }
}

#[derive(Debug, Serialize)]
struct AllState {
    modules: Vec<ModuleView>,
    farms: Vec<FarmView>,
}

pub(super) async fn all_state(State(state): State<AppState>) -> Response {
    Json(AllState {
        modules: state.board.all(),
        farms: state.board.all_farms(),
    })
    .into_response()
}

/// A module name from the path, checked before it is used anywhere.
fn module_param(module: Result<Path<String>, PathRejection>) -> Result<String, ApiError> {
    match module {
        Ok(Path(m)) if is_valid_module_name(&m) => Ok(m),
        Ok(_) => Err(ApiError::BadRequest(
            "invalid path parameter module: use 1 to 32 letters, digits, _ or -".to_string(),
        )),
        Err(e) => Err(ApiError::BadRequest(format!(
            "invalid path parameter module: {e}"
        ))),
    }
}

pub(super) async fn module_state(
    State(state): State<AppState>,
    module: Result<Path<String>, PathRejection>,
) -> Result<Response, ApiError> {
    let module = module_param(module)?;
    if let Some(view) = state.board.get(&module) {
        return Ok(Json(view).into_response());
    }
    state
        .board
        .farm(&module)
        .map(|farm| Json(farm).into_response())
        .ok_or_else(|| ApiError::NotFound(format!("no module named {module} on this node")))
}

/// Unknown parameters are ignored, as web clients add their own (cache busters).
#[derive(Debug, Deserialize)]
pub(super) struct LogQuery {
    lines: Option<String>,
}

/// `lines` as given, checked against `0..=MAX_LOG_LINES`.
fn parse_lines(raw: Option<&str>) -> Result<usize, ApiError> {
    let Some(raw) = raw else {
        return Ok(DEFAULT_LOG_LINES);
    };
    match raw.parse::<usize>() {
        Ok(n) if n <= MAX_LOG_LINES => Ok(n),
        _ => Err(ApiError::BadRequest(format!(
            "invalid query parameter lines: {raw:?} is not a number from 0 to {MAX_LOG_LINES}"
        ))),
    }
}

/// The tail of `<log root>/<module>/module.log`. It does not require the module to be on the
/// board: the log of a module that failed to load is the one an administrator wants to read.
pub(super) async fn module_log(
    State(state): State<AppState>,
    module: Result<Path<String>, PathRejection>,
    query: Result<Query<LogQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let module = module_param(module)?;
    let query = query.map_err(|e| ApiError::BadRequest(format!("invalid query string: {e}")))?;
    let lines = parse_lines(query.lines.as_deref())?;
    let path = state.roots.log.join(&module).join("module.log");
    let tail = tokio::task::spawn_blocking(move || tail_file(&path, lines))
        .await
        .map_err(|e| ApiError::Internal(format!("log reader failed: {e}")))?
        .map_err(|e| match e {
            TailError::Missing(_) | TailError::NotAFile(_) => ApiError::NotFound(e.to_string()),
            TailError::Io { .. } => ApiError::Internal(e.to_string()),
        })?;
    // Applications write what they like into logs; never fail on bytes that are not UTF-8.
    Ok(text(
        StatusCode::OK,
        String::from_utf8_lossy(&tail).into_owned(),
    ))
}

pub(super) async fn not_found(uri: Uri) -> ApiError {
    ApiError::NotFound(format!("no such path: {}", uri.path()))
}

pub(super) async fn method_not_allowed(uri: Uri) -> ApiError {
    ApiError::MethodNotAllowed(format!(
        "{} is read-only here: use GET (control verbs are not served yet)",
        uri.path()
    ))
}
