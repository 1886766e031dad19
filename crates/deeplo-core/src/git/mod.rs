//! The git mirror source (built by the git helper).
