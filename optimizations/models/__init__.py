"""The optimizations app's models, one module per domain."""

from optimizations.models.generators import Generator, GeneratorSecond
from optimizations.models.incidents import (
    Delivery,
    IncidentEvent,
    Postmortem,
    PostmortemAction,
    WebhookEndpoint,
)
from optimizations.models.jobs import Job, JobArtifact, JobLog, Run, Schedule
from optimizations.models.leases import TargetLease
from optimizations.models.observe import ObserveSettings
from optimizations.models.plan import GateSignoff, Initiative, Phase, PhaseTask, RoiAssumptions
from optimizations.models.results import Finding, Incident, Measurement
from optimizations.models.targets import TargetService
from optimizations.models.traces import Trace

__all__ = [
    "Delivery",
    "Finding",
    "GateSignoff",
    "Generator",
    "GeneratorSecond",
    "Incident",
    "IncidentEvent",
    "Initiative",
    "Job",
    "JobArtifact",
    "JobLog",
    "Measurement",
    "ObserveSettings",
    "Phase",
    "PhaseTask",
    "Postmortem",
    "PostmortemAction",
    "RoiAssumptions",
    "Run",
    "Schedule",
    "TargetLease",
    "TargetService",
    "Trace",
    "WebhookEndpoint",
]
