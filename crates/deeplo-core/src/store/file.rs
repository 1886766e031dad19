//! The file store.
#[derive(Debug)]
pub struct FileStore;
