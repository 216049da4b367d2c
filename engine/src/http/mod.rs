//! The node's HTTP server (port 9010 by default, as in the model product).
//!
//! What it serves today is read-only:
//! - `GET /var/modules/<module>/ready.txt`: the health check that cloud load balancers poll to
//!   find the node serving a module. Unauthenticated on purpose: load balancers cannot log in,
//!   and it reveals no more than "serving here or not".
//! - `GET /api/v1/state`, `GET /api/v1/modules/<module>/state`: the status board as JSON.
//! - `GET /api/v1/modules/<module>/log?lines=N`: the tail of the module log.
//! - `GET /`: a plain-text index of the above.
//!
//! Control verbs (start, stop, swap, ...), the web console, `/metrics` and authentication
//! arrive later. Until authentication exists, nothing here may change state, and the JSON
//! API must stay limited to what `hakit state -v` would show any local user.
//!
//! Everything the server answers is live state, so every response carries
//! `Cache-Control: no-store`: a cached "ready" from a proxy would send traffic to a node that
//! stopped serving.

mod error;
mod routes;
mod tail;
#[cfg(test)]
mod tests;

use crate::config::Roots;
use crate::daemon::board::Board;
use axum::Router;
use axum::http::{HeaderValue, header};
use axum::response::Response;
use axum::routing::get;
use std::future::Future;
use std::sync::Arc;

pub use error::ApiError;

/// What the handlers share.
#[derive(Debug, Clone)]
struct AppState {
    board: Board,
    roots: Arc<Roots>,
}

/// Serves HTTP on `listener` until `shutdown` completes, then finishes the requests in flight
/// (graceful shutdown). The caller binds the socket, so that bind errors (port taken, bad
/// address) are reported by the daemon with its own context, and tests can bind port 0.
pub async fn serve(
    listener: tokio::net::TcpListener,
    board: Board,
    roots: Roots,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router(board, roots))
        .with_graceful_shutdown(shutdown)
        .await
}

/// The whole route table; anything not listed is a JSON 404, a known path with another
/// method a JSON 405.
fn router(board: Board, roots: Roots) -> Router {
    let state = AppState {
        board,
        roots: Arc::new(roots),
    };
    Router::new()
        .route("/", get(routes::index))
        .route("/var/modules/{module}/ready.txt", get(routes::ready))
        .route("/api/v1/state", get(routes::all_state))
        .route("/api/v1/modules/{module}/state", get(routes::module_state))
        .route("/api/v1/modules/{module}/log", get(routes::module_log))
        .fallback(routes::not_found)
        .method_not_allowed_fallback(routes::method_not_allowed)
        .layer(axum::middleware::map_response(no_store))
        .with_state(state)
}

async fn no_store(mut response: Response) -> Response {
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}
