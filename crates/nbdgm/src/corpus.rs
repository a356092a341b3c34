//! (placeholder: test-corpus generator)
