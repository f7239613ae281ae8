"""Self-hosted mail aggregation gateway."""
