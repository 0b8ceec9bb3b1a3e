"""Slow mode: the shop API with the classic FastAPI + SQLAlchemy problems planted on purpose."""
