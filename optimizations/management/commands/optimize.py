"""``manage.py optimize <mode> --target <slug> --user <name>``: start a run from a terminal or CI.

The organisation's former command-line optimizer, on Kaizen's job engine; also
installed as ``fastapi-sqlalchemy-optimize`` (optimizations/cli.py). It acts as
``--user``, checked by portal.access exactly like the portal's "Run analysis".

Exit status, the run's verdict (optimizations.jobs.verdicts): 0 pass (or, without
``--wait``, the run was queued); 1 fail; 2 error / cancelled / could not start
(a job failed or expired, the run was cancelled, unknown user or target, a role
that may not trigger jobs, bad input, broker down); 3 incomplete (a check the
verdict needs could not run — a kind skipped for want of what it needs, a scan
without pg_stat_statements…; the output names what is missing and how to
enable it).
"""

from __future__ import annotations

import json
import shutil
import signal
import sys
import threading
import time
from collections import Counter
from types import SimpleNamespace

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand
from django.db.models import Count
from django.http import Http404
from django.utils import timezone

from optimizations import api
from optimizations.analyzers.base import MOST_SEVERE_FIRST
from optimizations.analyzers.loadgen import script
from optimizations.jobs import engine, kinds, modes, verdicts
from optimizations.models import Finding, Job, Measurement, Run, TargetService
from portal import access

EXIT_OK, EXIT_VERDICT, EXIT_FAILED, EXIT_INCOMPLETE = (
    verdicts.EXIT_PASS,
    verdicts.EXIT_FAIL,
    verdicts.EXIT_ERROR,
    verdicts.EXIT_INCOMPLETE,
)
POLL_SECONDS = 1.0
# After its last job ended, the worker settles the run; give it this many polls.
SETTLE_POLLS = 5
BAR_CELLS = 20
# The numbers the summary shows first, when a job measured them.
KEY_MEASUREMENTS = (
    "http.throughput",
    "http.latency.p50",
    "http.latency.p95",
    "http.latency.p99",
    "http.error_rate",
    "http.capacity",
    "memory.growth",
    "db.query.avg",
    "db.cache_hit",
    "db.pool.use",
    "db.connections.use",
    "probe.reach_ms",
    "probe.health_ms",
    "probe.operations",
    "probe.pool_use",
    "codescan.files",
    "codescan.findings",
    "security.negative.server_errors",
)
KEY_PER_JOB = 5
# What a poll reads: not the summary or parameters, which can be large.
POLLED_FIELDS = ("pk", "run_id", "kind", "status", "progress", "step", "verdict", "error")


class Refused(Exception):
    """The run cannot start; the message says why, for a person."""


def pause() -> None:
    """Between two looks at the database (the tests replace it)."""
    time.sleep(POLL_SECONDS)


def run_verdict(jobs, skipped=()) -> str:
    """The run's verdict from its jobs (as Run.settle rolls it up): a kind the mode
    asked for that could not run leaves it incomplete, never pass."""
    parts = [verdicts.of_job(job.status, job.verdict) for job in jobs]
    if skipped:
        parts.append(verdicts.INCOMPLETE)
    return verdicts.roll_up(parts)


def exit_code(jobs, skipped=()) -> int:
    """0 pass, 1 fail, 2 error / cancelled / could not start, 3 incomplete."""
    if not jobs or any(job.status in Job.ACTIVE for job in jobs):
        return EXIT_FAILED
    return verdicts.exit_code(run_verdict(jobs, skipped))


# The options a preflight reason's field names, as a person typed them.
OPTION_OF = {"focus": "--focus", "initiative": "--initiative", "mode": "mode"}


def refusal_text(error) -> str:
    """The preflight's reasons, each after the option it is about (``--param
    benchmark.rate: …``), in the words the portal and the API use."""
    parts = []
    for reason in error.reasons or []:
        field = reason.field
        if field[:1] == ("params",):
            parts.append(f"--param {'.'.join(field[1:])}: {reason.message}")
        elif field[:1] and field[0] in OPTION_OF:
            parts.append(f"{OPTION_OF[field[0]]}: {reason.message}")
        else:
            parts.append(reason.message)
    return "; ".join(parts) or str(error)


def _plain(text):
    return text


class Command(BaseCommand):
    help = (
        "Start an analysis run (comprehensive, performance, quality or strategy) on a target "
        "as a named user; with --wait, follow it and exit with its verdict. " + verdicts.EXIT_HELP
    )
    # A CI job runs this against a configured portal; its checks are the portal's business.
    requires_system_checks = []
    # Set by optimizations.cli so usage reads "fastapi-sqlalchemy-optimize …".
    standalone_prog: str | None = None

    def create_parser(self, prog_name, subcommand, **kwargs):
        parser = super().create_parser(prog_name, subcommand, **kwargs)
        if self.standalone_prog:
            parser.prog = self.standalone_prog
        return parser

    def add_arguments(self, parser):
        parser.add_argument("mode", choices=api.RUN_MODES, help="the run mode")
        parser.add_argument("--target", required=True, help="the target service's slug")
        parser.add_argument(
            "--focus",
            default="",
            help="comma-separated: fastapi,sqlalchemy,async (performance), "
            "testing,security,validation (quality), architecture,monitoring,scaling (strategy)",
        )
        parser.add_argument(
            "--user", required=True, help="act as this Kaizen user (checked like the portal)"
        )
        parser.add_argument(
            "--wait",
            action="store_true",
            help="follow the jobs to their end; exit 0 pass, 1 fail, 2 error/cancelled, "
            "3 incomplete",
        )
        parser.add_argument(
            "--json", action="store_true", help="print one JSON document instead of text"
        )
        parser.add_argument(
            "--param",
            action="append",
            default=[],
            metavar="KIND.NAME=VALUE",
            help="replace a planned parameter, e.g. benchmark.duration=30 (repeatable)",
        )
        parser.add_argument(
            "--scenario",
            metavar="FILE",
            help="the run's load tests send this scripted scenario (YAML journeys of steps, "
            "e.g. examples/scenarios/shop_journey.yaml) instead of the OpenAPI's GETs",
        )
        parser.add_argument("--initiative", type=int, help="link the run to this initiative")
        parser.add_argument(
            "--cancel-on-interrupt",
            action="store_true",
            help="on Ctrl-C (or SIGTERM) while waiting, cancel the run's jobs without asking",
        )

    # --- the command ------------------------------------------------------------------

    def handle(self, *args, **opts):
        self.as_json = opts["json"]
        # Progress goes where it does not spoil the JSON document.
        self.progress_out = self.stderr if self.as_json else self.stdout
        try:
            user = self._user(opts["user"])
            target = self._target(user, opts["target"])
            focus = [tag.strip() for tag in opts["focus"].split(",") if tag.strip()]
            overrides = self._overrides(opts["param"])
            if opts["scenario"]:
                self._scenario(opts["mode"], focus, opts["scenario"], overrides)
            run = engine.start_run(
                user,
                target,
                opts["mode"],
                focus,
                overrides=overrides,
                initiative=opts["initiative"],
                trigger="cli",
            )
        except Refused as error:
            self._refuse(str(error))
        except engine.CannotStart as error:
            self._refuse(refusal_text(error))
        jobs = list(run.jobs.order_by("pk"))
        if not opts["wait"]:
            self._started(run, jobs, user)
            sys.exit(EXIT_OK)
        if not self.as_json:
            self._started(run, jobs, user)
        jobs, followed = self._follow(run, user, opts["cancel_on_interrupt"])
        code = exit_code(jobs, run.skipped) if followed else EXIT_FAILED
        self._finished(run, jobs, code, followed)
        sys.exit(code)

    def _refuse(self, message: str):
        if self.as_json:
            self.stdout.write(
                json.dumps({"ok": False, "exit_code": EXIT_FAILED, "error": message}, indent=2)
            )
        self.stderr.write(f"optimize: {message}")
        sys.exit(EXIT_FAILED)

    # --- checks, as the portal makes them ---------------------------------------------

    def _user(self, username: str):
        user = get_user_model().objects.filter(username=username).first()
        if user is None:
            raise Refused(f"There is no Kaizen user named “{username}” (see --user).")
        if not user.is_active:
            raise Refused(f"The account “{username}” is disabled.")
        refusal = access.start_refusal(user)
        if refusal:
            raise Refused(refusal)
        return user

    def _target(self, user, slug: str):
        try:
            return access.get_target_for_user(SimpleNamespace(user=user), slug)
        except Http404:
            known = list(TargetService.objects.order_by("slug").values_list("slug", flat=True)[:20])
            hint = f" Known targets: {', '.join(known)}." if known else " No target is registered."
            raise Refused(f"There is no target service “{slug}”.{hint}") from None

    def _overrides(self, raw: list[str]) -> dict:
        """``--param KIND.NAME=VALUE`` read into overrides (JSON where the parameter is);
        whether they apply is the preflight's to say, as for the portal and the API."""
        overrides: dict[str, dict] = {}
        for item in raw:
            key, sep, value = item.partition("=")
            kind_name, dot, name = key.strip().partition(".")
            if not sep or not dot or not kind_name or not name:
                raise Refused(
                    f"--param {item}: write it as KIND.NAME=VALUE, e.g. benchmark.rate=50"
                )
            kind = kinds.KINDS.get(kind_name)
            declared = {p.name: p for p in kind.params()} if kind else {}
            if name in declared and declared[name].type == "json":
                try:
                    value = json.loads(value)
                except ValueError as error:
                    raise Refused(f"--param {item}: not JSON ({error})") from None
            overrides.setdefault(kind_name, {})[name] = value
        return overrides

    def _scenario(self, mode: str, focus: list[str], path: str, overrides: dict) -> None:
        """Read and check a scenario file now: its mistakes are said before anything runs.

        The file's text travels in the job's parameters (not its path), so a worker on
        another machine runs it, and a re-run sends exactly what this run sent.
        """
        try:
            with open(path, encoding="utf-8") as handle:
                text = handle.read(script.MAX_SIZE + 1)
        except (OSError, UnicodeDecodeError) as error:
            raise Refused(f"--scenario {path}: cannot read it ({error})") from None
        try:
            script.parse(text)
        except script.ScriptError as error:
            raise Refused(f"--scenario {path}: {error}") from None
        try:
            planned = {job.kind for job in modes.plan(mode, focus)}
        except ValueError:
            return  # a focus the mode does not have: the preflight says so
        if "benchmark" not in planned:
            raise Refused(
                f"--scenario: a {mode} run has no load test; use the performance mode "
                "(or strategy for a stress test)"
            )
        overrides.setdefault("benchmark", {})["scenario"] = text

    # --- output -----------------------------------------------------------------------

    def _started(self, run: Run, jobs: list[Job], user):
        if self.as_json:
            self.stdout.write(json.dumps(self._document(run, jobs, None, False), indent=2))
            return
        out = self.stdout.write
        out(f"Run #{run.pk} queued: {run.command_line()}, as {user.username}")
        out(f"  {run.get_absolute_url()}")
        for job in jobs:
            waits = f"  ({job.waiting_text().lower()})" if job.status == Job.WAITING else ""
            url = job.get_absolute_url()
            out(f"  job #{job.pk:<5} {job.kind:<14} {job.status:<9} {url}{waits}")
        for skipped in run.skipped:
            out(f"  skipped {skipped['kind']}: {skipped['why']}")

    def _follow(self, run: Run, user, cancel_on_interrupt: bool) -> tuple[list[Job], bool]:
        """Poll the jobs once a second until they end. False: the person stopped following."""
        live = self.progress_out.isatty()
        shown: dict[int, tuple] = {}
        drawn = 0
        cancelling = False
        settle_polls = 0
        previous = self._catch_sigterm()
        try:
            while True:
                try:
                    jobs = list(
                        Job.objects.filter(run_id=run.pk).order_by("pk").only(*POLLED_FIELDS)
                    )
                    if live:
                        drawn = self._draw(jobs, drawn)
                    else:
                        self._log_changes(jobs, shown)
                    if all(job.status in Job.ENDED for job in jobs):
                        settled = Run.objects.filter(pk=run.pk, finished_at__isnull=False).exists()
                        if settled or settle_polls >= SETTLE_POLLS:
                            return self._jobs(run), True
                        settle_polls += 1
                    pause()
                except KeyboardInterrupt:
                    if cancelling:
                        self.stderr.write(
                            "Stopped following; the cancel goes on.", style_func=_plain
                        )
                        return self._jobs(run), False
                    cancelling = self._interrupted(run, user, cancel_on_interrupt)
                    if not cancelling:
                        return self._jobs(run), False
                    drawn = 0
        finally:
            if previous is not None:
                signal.signal(signal.SIGTERM, previous)

    def _catch_sigterm(self):
        """A CI job that is cancelled gets SIGTERM: treat it like Ctrl-C."""
        if threading.current_thread() is not threading.main_thread():
            return None

        def interrupt(signum, frame):
            raise KeyboardInterrupt

        return signal.signal(signal.SIGTERM, interrupt)

    def _jobs(self, run: Run) -> list[Job]:
        return list(Job.objects.filter(run_id=run.pk).order_by("pk"))

    def _interrupted(self, run: Run, user, cancel_on_interrupt: bool) -> bool:
        """Ctrl-C while waiting: cancel the unfinished jobs (True) or stop following (False)."""
        active = list(
            Job.objects.filter(run_id=run.pk, status__in=Job.ACTIVE).select_related(
                "run", "target", "initiative"
            )
        )
        if not active:
            return True  # it is ending anyway: show how
        cancel = cancel_on_interrupt
        if not cancel and _stdin_is_terminal():
            count = f"{len(active)} unfinished job{'s' if len(active) != 1 else ''}"
            self.stderr.write(f"\nCancel the run's {count}? [y/N] ", ending="", style_func=_plain)
            try:
                cancel = input().strip().lower() in ("y", "yes")
            except (EOFError, KeyboardInterrupt):
                cancel = False
        if not cancel:
            self.stderr.write(
                f"\nStopped following run #{run.pk}; it goes on: {run.get_absolute_url()} "
                "(cancel it there, or use --cancel-on-interrupt).",
                style_func=_plain,
            )
            return False
        engine.cancel_run(user, run)
        self.stderr.write(
            f"\nCancelling run #{run.pk}: its jobs stop within a second or two…", style_func=_plain
        )
        return True

    def _draw(self, jobs: list[Job], drawn: int) -> int:
        """Redraw one progress bar per job in place (a terminal)."""
        out = self.progress_out
        width = shutil.get_terminal_size((100, 20)).columns - 1
        full, empty = _bar_chars(out)
        if drawn:
            out.write(f"\x1b[{drawn}F", ending="", style_func=_plain)
        for job in jobs:
            percent = 100 if job.status == Job.SUCCEEDED else int(job.progress)
            cells = round(percent * BAR_CELLS / 100)
            bar = full * cells + empty * (BAR_CELLS - cells)
            what = job.error if job.status == Job.FAILED and job.error else job.step
            line = f"#{job.pk:<5} {job.kind:<14} {bar} {percent:>3}%  {job.status:<9} {what}"
            out.write("\x1b[2K" + line.replace("\n", " ")[:width].rstrip(), style_func=_plain)
        return len(jobs)

    def _log_changes(self, jobs: list[Job], shown: dict[int, tuple]) -> None:
        """One line per change (CI logs): status, step, or ten more percent."""
        for job in jobs:
            state = (job.status, job.step, int(job.progress // 10))
            if shown.get(job.pk) == state:
                continue
            shown[job.pk] = state
            stamp = timezone.localtime().strftime("%H:%M:%S")
            if job.status in Job.ENDED:
                detail = f" verdict {job.verdict}" if job.verdict else ""
                detail += f": {job.error}" if job.error else ""
            else:
                detail = f" {int(job.progress)}%" + (f" — {job.step}" if job.step else "")
            self.progress_out.write(
                f"{stamp} job #{job.pk} {job.kind}: {job.status}{detail}", style_func=_plain
            )

    def _finished(self, run: Run, jobs: list[Job], code: int, followed: bool) -> None:
        run.refresh_from_db()
        if self.as_json:
            self.stdout.write(json.dumps(self._document(run, jobs, code, followed), indent=2))
            return
        out = self.stdout.write
        status = api.run_status(run, jobs)
        verdict = f", verdict {run.verdict}" if run.verdict else ""
        out("")
        out(f"Run #{run.pk} — {run.command_line()} — {status}{verdict}")
        measured = self._key_measurements(run)
        for job in jobs:
            found = (job.summary or {}).get("tracked", {}).get("reported")
            parts = [f"  job #{job.pk:<5} {job.kind:<14} {self._styled(job.status)}"]
            if job.verdict:
                parts.append(f"verdict {job.verdict}")
            if found is not None:
                parts.append(f"{found} finding{'s' if found != 1 else ''}")
            numbers = measured.get(job.pk)
            if numbers:
                parts.append(
                    " · ".join(f"{m.name} {_number(m.value)} {m.unit}".rstrip() for m in numbers)
                )
            out("  ".join(parts).rstrip())
            if job.error:
                out(f"      error: {job.error}")
            elif verdicts.of_job(job.status, job.verdict) == verdicts.INCOMPLETE:
                reason = verdicts.reason_of_job(job) or "a check could not run"
                out(f"      incomplete: {reason}")
        for skipped in run.skipped:
            out(f"  skipped {skipped['kind']}: {skipped['why']} (the run is incomplete)")
        findings = self._findings(run, jobs)
        if findings["open"]:
            by = ", ".join(f"{n} {severity}" for severity, n in findings["by_severity"].items())
            out(f"Open findings from this run: {findings['open']} ({by})")
        if findings["fixed"]:
            out(f"Fixed since the last run: {findings['fixed']}")
        out(f"Details: {run.get_absolute_url()}")
        why = {
            EXIT_OK: "pass — every job ran and passed",
            EXIT_VERDICT: "fail — a verdict failed",
            EXIT_FAILED: "error — a job could not do its work or was cancelled"
            if followed
            else "the run was not followed to its end",
            EXIT_INCOMPLETE: "incomplete — a check the verdict needs could not run (above)",
        }[code]
        self.stdout.write(f"Exit {code}: {why}.")

    def _styled(self, status: str) -> str:
        style = {
            Job.SUCCEEDED: self.style.SUCCESS,
            Job.FAILED: self.style.ERROR,
            Job.EXPIRED: self.style.ERROR,
            Job.CANCELLED: self.style.WARNING,
        }.get(status)
        padded = f"{status:<9}"
        return style(padded) if style else padded

    # --- what the summary and the JSON document tell ------------------------------------

    def _key_measurements(self, run: Run) -> dict[int | None, list[Measurement]]:
        """Up to five headline numbers per job: the known ones first, unlabelled only."""
        rows = Measurement.objects.filter(run_id=run.pk, second__isnull=True).order_by("name", "pk")
        per_job: dict[int | None, dict[str, Measurement]] = {}
        for row in rows[:5000]:
            if not row.labels:
                per_job.setdefault(row.job_id, {}).setdefault(row.name, row)
        chosen = {}
        for job_id, by_name in per_job.items():
            known = [by_name[name] for name in KEY_MEASUREMENTS if name in by_name]
            others = [m for name, m in by_name.items() if name not in KEY_MEASUREMENTS]
            chosen[job_id] = (known + others)[:KEY_PER_JOB]
        return chosen

    def _findings(self, run: Run, jobs: list[Job]) -> dict:
        """Open findings last seen by this run's jobs, by severity; and how many it fixed."""
        counts = Counter(
            dict(
                Finding.objects.filter(last_job__run_id=run.pk, status=Finding.OPEN)
                .values_list("severity")
                .annotate(n=Count("pk"))
            )
        )
        order = MOST_SEVERE_FIRST
        reported = fixed = 0
        for job in jobs:
            numbers = (job.summary or {}).get("tracked") or {}
            reported += numbers.get("reported", 0)
            fixed += numbers.get("fixed", 0)
        return {
            "open": sum(counts.values()),
            "by_severity": {severity: counts[severity] for severity in order if counts[severity]},
            "reported": reported,
            "fixed": fixed,
        }

    def _document(self, run: Run, jobs: list[Job], code: int | None, followed: bool) -> dict:
        run.job_list = jobs
        run_data = api.document(run)
        run_data.pop("jobs")
        measured = self._key_measurements(run) if code is not None else {}
        job_data = []
        for job in Job.objects.filter(run_id=run.pk).select_related("target", "triggered_by"):
            data = json.loads(api.JobOut.from_orm(job).model_dump_json())
            data["findings"] = (job.summary or {}).get("tracked") or {}
            data["measurements"] = [
                {"name": m.name, "value": m.value, "unit": m.unit} for m in measured.get(job.pk, [])
            ]
            job_data.append(data)
        job_data.sort(key=lambda data: data["id"])
        return {
            "ok": code in (None, EXIT_OK),
            "exit_code": EXIT_OK if code is None else code,
            "waited": code is not None,
            "followed_to_end": followed,
            "run": run_data,
            "jobs": job_data,
            "verdicts": {
                "run": run.verdict,
                "jobs": {str(job["id"]): job["verdict"] for job in job_data},
                # Why the run is not pass: a line per job (and skipped kind) that did not
                # pass — for incomplete, what is missing and how to enable it.
                "reasons": verdicts.reasons_of_run(
                    Job.objects.filter(run_id=run.pk).order_by("pk"), run.skipped
                )
                if code is not None
                else [],
            },
            "findings": self._findings(run, jobs) if code is not None else {},
        }


def _number(value: float) -> str:
    """26.8135 → 26.81, 2199.0 → 2199, 0.00123 → 0.00123: enough digits to read."""
    if abs(value) >= 100 or value == int(value):
        return f"{value:.0f}" if value == int(value) else f"{value:.1f}"
    if abs(value) >= 1:
        return f"{value:.2f}".rstrip("0").rstrip(".")
    return f"{value:.3g}"


def _stdin_is_terminal() -> bool:
    try:
        return bool(sys.stdin and sys.stdin.isatty())
    except (ValueError, OSError):  # closed, or replaced by something without a terminal
        return False


def _bar_chars(out) -> tuple[str, str]:
    encoding = (getattr(out._out, "encoding", "") or "").lower()
    return ("█", "░") if "utf" in encoding else ("#", "-")
