//! Attack: privileges (issue 12). Tests are added here by the work on this path.
