"""Load scenarios: shape math, SLO evaluation, and Locust runs against the native stack."""
