"""Admin HTTP API (FastAPI); the web panel and full API come with their own issue."""
