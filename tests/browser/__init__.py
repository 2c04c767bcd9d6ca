"""Browser tests: Playwright + Debian chromium against the native stack."""
