//! The GitHub integration against real HTTP on 127.0.0.1: the webhook router served with
//! axum and driven with reqwest, and the client and notifier against a fake GitHub that
//! implements the REST endpoints they call.

mod app_tokens;
mod client;
mod fake;
mod keys;
mod notifier;
mod settings;
mod webhook;
