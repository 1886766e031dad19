//! The hub's HTTP route: where agents open their WebSocket.

use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::extract::ws::WebSocketUpgrade;
use axum::http::{HeaderMap, header};
use axum::response::Response;
use axum::routing::get;
use deeplo_core::Secret;

use super::registry::Hub;
use super::socket::{self, Presented};
use crate::protocol::MAX_FRAME_BYTES;

/// The path agents connect to, under the daemon's URL.
pub const CONNECT_PATH: &str = "/agent/v1/connect";

/// The header in which an agent may say which host it serves; when it does, a token bound
/// to another host is refused.
pub const HOST_HEADER: &str = "deeplo-agent-host";

/// Bytes read from the socket at a time. The WebSocket library's default (128 KiB per
/// connection) would dwarf an idle agent's other state; frames are small, and a larger one
/// is simply read in several steps.
const READ_BUFFER: usize = 4 * 1024;

/// The route [`CONNECT_PATH`] for `hub`, to merge into the daemon's HTTP router: a
/// WebSocket upgrade authenticated by `Authorization: Bearer <runner token>`.
///
/// The upgrade is accepted whatever the token; a bad one is then refused with the close
/// code [`BadToken`](crate::protocol::CloseCode::BadToken), so that the agent learns why
/// (an HTTP status before the upgrade reaches few WebSocket clients' logs). Messages and
/// frames larger than [`MAX_FRAME_BYTES`] are refused by the WebSocket layer itself.
pub fn router(hub: Arc<Hub>) -> Router {
    Router::new().route(CONNECT_PATH, get(connect)).with_state(hub)
}

async fn connect(State(hub): State<Arc<Hub>>, headers: HeaderMap, upgrade: WebSocketUpgrade) -> Response {
    let presented = Presented { token: bearer(&headers), host: claimed_host(&headers) };
    upgrade
        .read_buffer_size(READ_BUFFER)
        .write_buffer_size(0)
        .max_message_size(MAX_FRAME_BYTES)
        .max_frame_size(MAX_FRAME_BYTES)
        .on_upgrade(move |socket| socket::serve(hub, socket, presented))
}

/// The bearer token of the `Authorization` header, if there is one.
fn bearer(headers: &HeaderMap) -> Option<Secret> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| Secret::new(token.trim()))
}

fn claimed_host(headers: &HeaderMap) -> Option<String> {
    headers.get(HOST_HEADER)?.to_str().ok().map(|h| h.trim().to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_tokens_are_read_from_the_authorization_header() {
        let mut headers = HeaderMap::new();
        assert!(bearer(&headers).is_none());
        headers.insert(header::AUTHORIZATION, "Bearer dplr_abc".parse().unwrap());
        assert_eq!(bearer(&headers).unwrap().expose(), "dplr_abc");
        headers.insert(header::AUTHORIZATION, "bearer  dplr_abc ".parse().unwrap());
        assert_eq!(bearer(&headers).unwrap().expose(), "dplr_abc");
        headers.insert(header::AUTHORIZATION, "Basic dXNlcjpwYXNz".parse().unwrap());
        assert!(bearer(&headers).is_none());
    }
}
