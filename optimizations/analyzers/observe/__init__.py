"""Continuous observation of a target: what its own telemetry says between scans.

Plain modules, free of Django like every analyzer, typed for ``mypy --strict``:

- ``otlp`` — OTLP/HTTP trace export requests (protobuf and JSON) into span records;
- ``traces`` — per endpoint figures, runtime N+1 findings and waterfalls from spans;
- ``burnrate`` — error budgets and multiwindow, multi-burn-rate alerts;
- ``prometheus`` — a client of the Prometheus HTTP API (through ``safehttp``).
"""
