"""Example tools and synthetic data generators (no real patient data)."""
