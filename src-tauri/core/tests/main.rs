//! The core's integration tests, in one binary (one link instead of fifteen): real
//! sockets on 127.0.0.1:0 and real SQLite files in temporary folders.

mod support;

mod access;
mod api_types;
mod capture_e2e;
mod counts;
mod decode_fixtures;
mod derived_file;
mod diff;
mod disk_full;
mod erasure;
mod follow_faults;
mod forwarding;
mod health;
mod hostile;
mod indexer;
mod security;
mod signatures;
mod systeme_registration;
mod systeme_state;
mod tunnels;
