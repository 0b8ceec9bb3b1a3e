"""The optimizations app's models, one module per domain."""

from optimizations.models.generators import Generator, GeneratorSecond
from optimizations.models.jobs import Job, JobArtifact, JobLog, Run, Schedule
from optimizations.models.leases import TargetLease
from optimizations.models.plan import GateSignoff, Initiative, Phase, PhaseTask, RoiAssumptions
from optimizations.models.results import Finding, Incident, Measurement
from optimizations.models.targets import TargetService
from optimizations.models.traces import Trace

__all__ = [
    "Finding",
    "GateSignoff",
    "Generator",
    "GeneratorSecond",
    "Incident",
    "Initiative",
    "Job",
    "JobArtifact",
    "JobLog",
    "Measurement",
    "Phase",
    "PhaseTask",
    "RoiAssumptions",
    "Run",
    "Schedule",
    "TargetLease",
    "TargetService",
    "Trace",
]
