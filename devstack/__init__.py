"""The development stack: embedded PostgreSQL, Tansu, Apache Kafka (one node or a cluster),
the supervisor and `carprice up`. For development and tests only."""
