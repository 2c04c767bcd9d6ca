"""api-gateway pieces: public API models, sessions, admin auth."""
