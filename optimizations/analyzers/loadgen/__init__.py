"""The load engine: open, closed, stress and endurance benchmarks of a target's HTTP API."""
