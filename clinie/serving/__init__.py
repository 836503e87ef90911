"""Serving adapters: what runs inside Triton's Python backend (thin ``model.py`` -> this package)."""
