"""Serving the model in the worker: the swappable served model, hot reload from the registry,
the load-time canary, and shadow scoring of a candidate (``reviewpulse shadow``)."""
