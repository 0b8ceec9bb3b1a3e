"""Neutral pieces shared by both modes: configuration, instrumentation and the seeder."""
