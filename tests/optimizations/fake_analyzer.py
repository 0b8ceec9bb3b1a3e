"""An analyzer the tests steer through its parameters (registered as kind "fake")."""

import time

from optimizations.analyzers.base import (
    AnalysisError,
    AnalysisResult,
    CheckOutcome,
    FindingData,
    MeasurementData,
    Param,
)

PARAMS = [
    Param("findings", "json", None),
    Param("checks", "json", None),
    Param("samples", "int", 0),
    Param("log_lines", "int", 0),
    Param("wait", "float", 0.0),
    Param("fail", "str", ""),
]


def run(target, params, ctx):
    for n in range(params["log_lines"]):
        ctx.log(f"line {n + 1}")
    for second in range(params["samples"]):
        ctx.sample({"second": second, "achieved": 100.0 + second, "errors": {"timeout": 1}})
    deadline = time.monotonic() + params["wait"]
    while time.monotonic() < deadline:
        ctx.check_cancel()
        ctx.progress(50, "waiting")
        time.sleep(0.02)
    if params["fail"] == "analysis":
        raise AnalysisError("The target said no.")
    if params["fail"] == "bug":
        raise KeyError("oops")
    result = AnalysisResult(summary={"seen": len(params["findings"] or [])}, verdict="pass")
    for rule, location in params["findings"] or []:
        result.findings.append(
            FindingData(rule, f"{rule} at {location}", "high", "performance", location=location)
        )
    for check, status in params["checks"] or []:
        result.checks.append(CheckOutcome(check, status))
    result.measurements.append(MeasurementData("fake.value", 42.0, "ms", {"operation": "GET /"}))
    return result
