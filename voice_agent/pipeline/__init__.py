"""The real-time voice pipeline: caller audio in, the scoped dialogue, the agent's voice out."""
