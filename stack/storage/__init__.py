"""SQLite persistence for storage-service: migrations, traced queries, repository functions."""
