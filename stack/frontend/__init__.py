"""The web UI: static files plus a same-origin `/api` pass-through to the gateway."""
