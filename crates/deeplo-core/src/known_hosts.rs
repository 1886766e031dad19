//! known_hosts files.
