"""The domain: aggregates, value objects, domain errors and the event catalogue. Pure."""
