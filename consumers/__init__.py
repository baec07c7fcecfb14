"""Kafka transport: poll loop, decode, dispatch, commit, stop; inference and projector entrypoints."""
