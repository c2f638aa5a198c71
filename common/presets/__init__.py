"""Shipped retention rule presets (TOML package data): examples, not legal advice."""
