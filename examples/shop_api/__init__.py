"""Shop API: Kaizen's demo FastAPI + SQLAlchemy target, in a slow and a fast mode."""

MODES = ("slow", "fast")
