//! Talking to the cloud: the API client, authentication conventions, bad,
//! huge and redirecting answers, and the real Cinder peer: backups and
//! restores.

#[path = "../helper/mod.rs"]
mod helper;

mod api_client;
mod auth_conventions;
mod bad_answers;
mod cbr;
mod cinder_peer;
mod cinder_restore;
mod cinder_selection;
mod huge_answers;
mod inventory;
mod redirects;
