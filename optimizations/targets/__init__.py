"""Targets: the services under study, their credentials at rest and their SLO table."""
