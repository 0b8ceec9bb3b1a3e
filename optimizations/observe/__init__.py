"""Observing targets between analyses: traces in, incidents people run, alert routing and
channels."""
