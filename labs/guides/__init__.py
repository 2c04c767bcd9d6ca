"""Generators: markdown guides and notebook scripts from ``labs/specs``."""
