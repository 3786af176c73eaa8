"""The scoped dialogue manager: a deterministic policy decides what may happen; understanding only
turns the caller's words into a validated structure; replies are templates filled from FHIR."""
