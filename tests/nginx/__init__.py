"""nginx in front of the native stack."""
