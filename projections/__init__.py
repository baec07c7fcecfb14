"""The read side: read-table schema, projections from events, and the API's queries."""
