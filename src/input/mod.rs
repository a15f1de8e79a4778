//! CSV reading and validation: the edge where strings become domain types.
