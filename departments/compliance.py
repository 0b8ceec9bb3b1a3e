"""HR's compliance register: controls, the evidence Kaizen gathers itself, attestations.

A control is judged for the recurrence period it is in (a calendar month,
quarter or year) with the shared verdict vocabulary: pass, fail, incomplete
(with what is missing and how to enable it) or error. An *automatic* control
reads Kaizen's own records through its ``source`` (``SOURCES`` below) and lists
them, each with a link; a *manual* control passes while an attestation of a
person of the owning department is current. Every judgement is stored as an
``Evaluation`` (never changed), so a past period's report reads what was known
then. The schedule (``departments.tasks.evaluate_compliance``) judges every
active control and sends the reminders; the register page, the report and
``manage.py compliance status`` all read :func:`register` / :func:`report`.

Everything takes ``now`` so tests drive the clock.
"""

from __future__ import annotations

import calendar
import datetime
import ipaddress
from dataclasses import dataclass, field

from django.conf import settings
from django.db import transaction
from django.db.models import OuterRef, Subquery
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext, gettext_noop
from django.utils.translation import gettext_lazy as _

from departments.actions import unique_slug
from departments.models import (
    Attestation,
    ComplianceReminder,
    Control,
    Department,
    Evaluation,
    Membership,
    Runbook,
    TrainingRecord,
    shown_evidence,
)
from optimizations.jobs.verdicts import EXIT_HELP, exit_code, roll_up
from optimizations.models import Finding, GateSignoff, Incident, Job, Phase, TargetService
from optimizations.targets.crypto import CredentialUnreadable, decrypt
from portal.audit import record
from portal.i18n import Parts, Phrase, shown_phrase
from portal.notify import route

PASS, FAIL, INCOMPLETE, ERROR = (
    Evaluation.PASS,
    Evaluation.FAIL,
    Evaluation.INCOMPLETE,
    Evaluation.ERROR,
)
# A list of records longer than this is cut (the reason still counts them all).
EVIDENCE_LIMIT = 50
_ONE_DAY = datetime.timedelta(days=1)
# Reminders go out this many days before a manual control's due date.
REMIND_BEFORE_DAYS = {Control.MONTHLY: 7, Control.QUARTERLY: 14, Control.YEARLY: 30}
MONTHS = {Control.MONTHLY: 1, Control.QUARTERLY: 3, Control.YEARLY: 12}
# What ``manage.py compliance status`` says of its exit codes: the other commands' words.
STATUS_EXIT_HELP = EXIT_HELP
# A finding's severity and a training record's state inside an evidence label, in
# lower case as the sentence reads (a Phrase's value: each reader's language).
SEVERITY_WORDS = {
    "critical": gettext_noop("critical"),
    "high": gettext_noop("high"),
    "medium": gettext_noop("medium"),
    "low": gettext_noop("low"),
    "info": gettext_noop("info"),
}
TRAINING_STATE_WORDS = {
    TrainingRecord.ASSIGNED: gettext_noop("assigned"),
    TrainingRecord.IN_PROGRESS: gettext_noop("in progress"),
    TrainingRecord.COMPLETED: gettext_noop("completed"),
    TrainingRecord.OVERDUE: gettext_noop("overdue"),
    "expired": gettext_noop("expired"),
}


# --- periods ------------------------------------------------------------------------


@dataclass(frozen=True)
class Period:
    """A calendar month, quarter or year: ``start`` and ``end`` are its first and last day."""

    label: str
    start: datetime.date
    end: datetime.date
    recurrence: str = Control.QUARTERLY

    def previous(self) -> Period:
        """The period of the same length just before this one."""
        return period_of(self.recurrence, _midnight(self.start - datetime.timedelta(days=1)))

    def starts_at(self) -> datetime.datetime:
        return _midnight(self.start)

    def ends_at(self) -> datetime.datetime:
        """The first moment after the period."""
        return _midnight(self.end + datetime.timedelta(days=1))


def _midnight(day: datetime.date) -> datetime.datetime:
    return timezone.make_aware(datetime.datetime.combine(day, datetime.time()))


def add_months(moment: datetime.datetime, months: int) -> datetime.datetime:
    """``moment`` that many calendar months later (the 31st becomes the month's last day)."""
    month_index = moment.month - 1 + months
    year, month = moment.year + month_index // 12, month_index % 12 + 1
    day = min(moment.day, calendar.monthrange(year, month)[1])
    return moment.replace(year=year, month=month, day=day)


def period_of(recurrence: str, moment: datetime.datetime) -> Period:
    """The period of ``recurrence`` that ``moment`` (local time) falls in."""
    day = timezone.localdate(moment) if timezone.is_aware(moment) else moment.date()
    if recurrence == Control.MONTHLY:
        start = day.replace(day=1)
        label = f"{day.year}-{day.month:02d}"
        months = 1
    elif recurrence == Control.QUARTERLY:
        quarter = (day.month - 1) // 3
        start = datetime.date(day.year, quarter * 3 + 1, 1)
        label = f"{day.year}-Q{quarter + 1}"
        months = 3
    else:
        start = datetime.date(day.year, 1, 1)
        label = str(day.year)
        months = 12
    next_start = add_months(datetime.datetime.combine(start, datetime.time()), months).date()
    return Period(label, start, next_start - datetime.timedelta(days=1), recurrence)


def parse_period(label: str) -> Period:
    """A period from its label ("2026-12", "2026-Q4", "2026"); ValueError if it is none."""
    label = (label or "").strip()
    try:
        if len(label) == 4:
            return period_of(Control.YEARLY, datetime.datetime(int(label), 1, 1))
        year, rest = label.split("-", 1)
        if rest.upper().startswith("Q"):
            quarter = int(rest[1:])
            if not 1 <= quarter <= 4:
                raise ValueError(label)
            return period_of(Control.QUARTERLY, datetime.datetime(int(year), quarter * 3, 1))
        return period_of(Control.MONTHLY, datetime.datetime(int(year), int(rest), 1))
    except (ValueError, TypeError):
        raise ValueError(
            f"{label!r} is not a period: write 2026-12 (a month), 2026-Q4 or 2026"
        ) from None


# --- what a judgement is --------------------------------------------------------------


@dataclass
class Result:
    """A control's status, why, and the records that prove it. ``reason`` and each
    evidence label are Phrases: English where stored and read by the API and the CLI,
    each reader's language on the pages (``Evaluation.shown_reason``)."""

    status: str
    reason: str
    evidence: list[dict] = field(default_factory=list)


def item(label: str, url: str = "", ok: bool | None = None) -> dict:
    """One record of the evidence: its label in English, and as a Phrase's msgid and
    values ("phrase") when it is one, so pages show it in their reader's language."""
    entry: dict = {"label": str(label)[:300], "url": url, "ok": ok}
    if isinstance(label, Phrase):
        entry["phrase"] = label.as_data()
    return entry


def _cut(evidence: list[dict]) -> list[dict]:
    """The failing records first, then the rest, at most EVIDENCE_LIMIT."""
    ordered = sorted(evidence, key=lambda entry: {False: 0, None: 1, True: 2}[entry["ok"]])
    if len(ordered) <= EVIDENCE_LIMIT:
        return ordered
    rest = len(ordered) - EVIDENCE_LIMIT
    return [
        *ordered[:EVIDENCE_LIMIT],
        item(Phrase(gettext_noop("… and %(count)s more"), count=rest)),
    ]


def _worst(statuses) -> str:
    """The status of a whole from its parts' (error > fail > incomplete > pass)."""
    return roll_up(statuses) or PASS


# --- automatic evidence sources ------------------------------------------------------


def _scan_coverage(kind: str, needs: str, missing: str):
    """Every target had a job of ``kind`` that did its work within the period.

    A target without what the kind needs (``needs``: a TargetService field) is
    incomplete with ``missing`` — the scan cannot exist yet, which is not a pass.
    """

    lacks = Phrase(missing)

    def judge(control: Control, now: datetime.datetime, period: Period) -> Result:
        targets = list(TargetService.objects.order_by("name"))
        if not targets:
            return Result(
                INCOMPLETE,
                Phrase(gettext_noop("No targets are registered: register one under Targets.")),
            )
        latest: dict[int, Job] = {}
        jobs = Job.objects.filter(
            kind=kind,
            status=Job.SUCCEEDED,
            target__in=targets,
            finished_at__gte=period.starts_at(),
            finished_at__lt=min(period.ends_at(), now),
        ).order_by("target_id", "-finished_at")
        for job in jobs.only("pk", "target_id", "finished_at", "verdict"):
            latest.setdefault(job.target_id, job)
        evidence, statuses = [], []
        for target in targets:
            found = latest.get(target.pk)
            if found is not None:
                job = found
                statuses.append(PASS)
                evidence.append(
                    item(
                        Phrase(
                            gettext_noop(
                                "%(target)s: job #%(job)s on %(date)s (verdict %(verdict)s)"
                            ),
                            target=target.name,
                            job=job.pk,
                            date=f"{job.finished_at:%Y-%m-%d}",
                            verdict=job.verdict or Phrase(gettext_noop("none")),
                        ),
                        job.get_absolute_url(),
                        True,
                    )
                )
            elif not getattr(target, needs):
                statuses.append(INCOMPLETE)
                evidence.append(
                    item(
                        Phrase(
                            gettext_noop("%(target)s: %(missing)s"),
                            target=target.name,
                            missing=lacks,
                        ),
                        target.get_absolute_url(),
                    )
                )
            else:
                statuses.append(FAIL)
                evidence.append(
                    item(
                        Phrase(
                            gettext_noop("%(target)s: none in %(period)s"),
                            target=target.name,
                            period=period.label,
                        ),
                        target.get_absolute_url(),
                        False,
                    )
                )
        status = _worst(statuses)
        counts = {value: statuses.count(value) for value in (PASS, FAIL, INCOMPLETE)}
        clauses = Parts(
            [
                Phrase(
                    gettext_noop("%(count)s of %(total)s targets had one in %(period)s"),
                    count=counts[PASS],
                    total=len(targets),
                    period=period.label,
                )
            ]
        )
        if counts[FAIL]:
            clauses.append(Phrase(gettext_noop("%(count)s had none"), count=counts[FAIL]))
        if counts[INCOMPLETE]:
            clauses.append(
                Phrase(
                    gettext_noop("%(count)s cannot have one yet (%(missing)s)"),
                    count=counts[INCOMPLETE],
                    missing=lacks,
                )
            )
        return Result(status, Phrase(gettext_noop("%(clauses)s."), clauses=clauses), evidence)

    return judge


def _old_findings(control: Control, now: datetime.datetime, period: Period) -> Result:
    """No critical or high finding open longer than ``days`` (30) without a person's
    decision: accepted risk, won't fix and false positive each carry their reason."""
    days = int(control.parameters.get("days", 30))
    cutoff = now - datetime.timedelta(days=days)
    severe = Finding.objects.filter(severity__in=("critical", "high")).select_related("target")
    old_open = list(severe.filter(status=Finding.OPEN, first_seen_at__lt=cutoff).by_severity())
    decided = list(
        severe.filter(status__in=Finding.TRIAGED, first_seen_at__lt=cutoff).order_by("pk")
    )
    evidence = [
        item(
            Phrase(
                gettext_noop("%(severity)s %(rule)s on %(target)s, open since %(date)s"),
                severity=Phrase(SEVERITY_WORDS.get(f.severity, f.severity)),
                rule=f.rule_id,
                target=f.target.name,
                date=f"{f.first_seen_at:%Y-%m-%d}",
            ),
            f.get_absolute_url(),
            False,
        )
        for f in old_open
    ] + [
        item(
            Phrase(
                gettext_noop("%(severity)s %(rule)s on %(target)s: %(status)s — %(reason)s"),
                severity=Phrase(SEVERITY_WORDS.get(f.severity, f.severity)),
                rule=f.rule_id,
                target=f.target.name,
                status=dict(Finding.STATUSES).get(f.status, f.status),
                reason=f.status_reason,
            ),
            f.get_absolute_url(),
            True,
        )
        for f in decided
    ]
    if old_open:
        return Result(
            FAIL,
            Phrase(
                gettext_noop(
                    "%(count)s critical or high finding(s) open longer than %(days)s days "
                    "without an accepted-risk reason."
                ),
                count=len(old_open),
                days=days,
            ),
            evidence,
        )
    if decided:
        reason = Phrase(
            gettext_noop(
                "No critical or high finding is open longer than %(days)s days; "
                "%(count)s older ones carry a person's reason."
            ),
            days=days,
            count=len(decided),
        )
    else:
        reason = Phrase(
            gettext_noop("No critical or high finding is open longer than %(days)s days."),
            days=days,
        )
    return Result(PASS, reason, evidence)


def _runbook_reviews(control: Control, now: datetime.datetime, period: Period) -> Result:
    """Every published runbook was reviewed within its review interval."""
    today = timezone.localdate(now)
    runbooks = list(Runbook.objects.filter(status=Runbook.PUBLISHED).order_by("title"))
    if not runbooks:
        return Result(
            INCOMPLETE,
            Phrase(gettext_noop("No runbook is published yet: publish one under Runbooks.")),
        )
    evidence, late = [], 0
    for runbook in runbooks:
        due = runbook.next_review_date
        if due is None:
            since = runbook.last_reviewed_at or runbook.created_at
            due = timezone.localdate(since) + datetime.timedelta(days=runbook.review_interval_days)
        ok = due >= today
        late += not ok
        evidence.append(
            item(
                Phrase(
                    gettext_noop("%(runbook)s: review due %(due)s, last reviewed %(date)s"),
                    runbook=runbook.title,
                    due=f"{due:%Y-%m-%d}",
                    date=f"{runbook.last_reviewed_at:%Y-%m-%d}",
                )
                if runbook.last_reviewed_at
                else Phrase(
                    gettext_noop("%(runbook)s: review due %(due)s, never reviewed"),
                    runbook=runbook.title,
                    due=f"{due:%Y-%m-%d}",
                ),
                runbook.get_absolute_url(),
                ok,
            )
        )
    if late:
        return Result(
            FAIL,
            Phrase(
                gettext_noop("%(count)s of %(total)s published runbooks are past their review."),
                count=late,
                total=len(runbooks),
            ),
            evidence,
        )
    return Result(
        PASS,
        Phrase(
            gettext_noop("All %(total)s published runbooks are within their review interval."),
            total=len(runbooks),
        ),
        evidence,
    )


def _training_current(control: Control, now: datetime.datetime, period: Period) -> Result:
    """Every engineer's assigned training is current: none overdue, no completion expired."""
    engineers = Membership.objects.filter(role=Membership.ENGINEER).values("user_id")
    records = list(
        TrainingRecord.objects.filter(current=True, user_id__in=engineers, user__is_active=True)
        .select_related("module", "user")
        .order_by("user__username", "module__title")
    )
    evidence, behind = [], 0
    for training in records:
        expired = training.state == TrainingRecord.COMPLETED and not training.is_valid_completion(
            now
        )
        ok = training.state != TrainingRecord.OVERDUE and not expired
        behind += not ok
        state = TRAINING_STATE_WORDS["expired" if expired else training.state]
        evidence.append(
            item(
                Phrase(
                    gettext_noop("%(person)s: %(module)s — %(state)s, due %(date)s"),
                    person=training.user.username,
                    module=training.module.title,
                    state=Phrase(state),
                    date=f"{training.due_date:%Y-%m-%d}",
                ),
                training.module.get_absolute_url(),
                ok,
            )
        )
    if behind:
        return Result(
            FAIL,
            Phrase(
                gettext_noop(
                    "%(count)s of %(total)s training records of engineers are overdue or expired."
                ),
                count=behind,
                total=len(records),
            ),
            evidence,
        )
    if not records:
        # Nothing to judge is not a pass (the shared vocabulary): say what would make
        # this control judgeable.
        return Result(
            INCOMPLETE,
            Phrase(
                gettext_noop(
                    "No training is assigned to engineers yet: assign the required modules "
                    "under Training, then this control can be judged."
                )
            ),
        )
    return Result(
        PASS,
        Phrase(
            gettext_noop("%(count)s of %(total)s training records of engineers are current."),
            count=len(records),
            total=len(records),
        ),
        evidence,
    )


def working_days_after(day: datetime.date, days: int) -> datetime.date:
    """The date ``days`` working days (Monday to Friday) after ``day``."""
    while days > 0:
        day += datetime.timedelta(days=1)
        if day.weekday() < 5:
            days -= 1
    return day


def _postmortems(control: Control, now: datetime.datetime, period: Period) -> Result:
    """Every incident resolved in the period has a postmortem written within
    ``working_days`` (5) working days of its end (optimizations.observe.incidents).

    Fail: one has none and its time is up, or it came late. Incomplete: one still
    within its working days has none yet — it cannot be judged before its deadline."""
    days = int(control.parameters.get("working_days", 5))
    resolved = (
        Incident.objects.filter(
            ended_at__gte=period.starts_at(), ended_at__lt=min(period.ends_at(), now)
        )
        .select_related("target", "postmortem")
        .order_by("ended_at", "pk")
    )
    evidence, late, waiting = [], 0, 0
    for incident in resolved:
        ended = incident.ended_at
        assert ended is not None  # the filter says so; the type does not
        deadline = _midnight(working_days_after(timezone.localdate(ended), days) + _ONE_DAY)
        postmortem = getattr(incident, "postmortem", None)
        label = Phrase(
            gettext_noop("#%(number)s %(target)s, resolved %(date)s"),
            number=incident.pk,
            target=incident.target.name,
            date=str(timezone.localdate(ended)),
        )
        url = incident.get_absolute_url()
        if postmortem is not None and postmortem.written_at < deadline:
            written = str(timezone.localdate(postmortem.written_at))
            evidence.append(
                item(
                    Phrase(
                        gettext_noop("%(incident)s: postmortem %(date)s"),
                        incident=label,
                        date=written,
                    ),
                    url,
                    True,
                )
            )
        elif postmortem is not None:
            late += 1
            written = str(timezone.localdate(postmortem.written_at))
            evidence.append(
                item(
                    Phrase(
                        gettext_noop("%(incident)s: postmortem late (%(date)s)"),
                        incident=label,
                        date=written,
                    ),
                    url,
                    False,
                )
            )
        elif now >= deadline:
            late += 1
            evidence.append(
                item(
                    Phrase(gettext_noop("%(incident)s: no postmortem"), incident=label), url, False
                )
            )
        else:
            waiting += 1
            evidence.append(
                item(
                    Phrase(
                        gettext_noop("%(incident)s: postmortem due by %(date)s"),
                        incident=label,
                        date=str(timezone.localdate(deadline - _ONE_DAY)),
                    ),
                    url,
                )
            )
    if not evidence:
        return Result(
            INCOMPLETE,
            Phrase(
                gettext_noop(
                    "No incident was resolved in %(period)s: there is no postmortem to judge yet."
                ),
                period=period.label,
            ),
        )
    if late:
        return Result(
            FAIL,
            Phrase(
                gettext_noop(
                    "%(count)s of %(total)s incident(s) resolved in %(period)s had no "
                    "postmortem within %(days)s working days."
                ),
                count=late,
                total=len(evidence),
                period=period.label,
                days=days,
            ),
            _cut(evidence),
        )
    if waiting:
        return Result(
            INCOMPLETE,
            Phrase(
                gettext_noop(
                    "%(count)s incident(s) resolved in %(period)s are still within their "
                    "%(days)s working days and have no postmortem yet; judged once written or due."
                ),
                count=waiting,
                period=period.label,
                days=days,
            ),
            _cut(evidence),
        )
    return Result(
        PASS,
        Phrase(
            gettext_noop(
                "All %(total)s incident(s) resolved in %(period)s had a postmortem within "
                "%(days)s working days."
            ),
            total=len(evidence),
            period=period.label,
            days=days,
        ),
        _cut(evidence),
    )


def _load_test_before_qa_gate(control: Control, now: datetime.datetime, period: Period) -> Result:
    """Every phase-4 (QA) gate passed in the period had a load test of its target that did
    its work, after the initiative started and before the gate."""
    signoffs: dict[int, datetime.datetime] = {}
    for signoff in GateSignoff.objects.filter(
        phase__number=4, signed_at__gte=period.starts_at(), signed_at__lt=period.ends_at()
    ).order_by("phase_id", "signed_at"):
        signoffs.setdefault(signoff.phase_id, signoff.signed_at)
    done = Phase.objects.filter(
        number=4, status=Phase.DONE, actual_end__gte=period.start, actual_end__lte=period.end
    ).values_list("pk", "actual_end")
    gates = dict(signoffs)
    for pk, actual_end in done:
        if actual_end is not None:  # the filter says so; the type does not
            gates.setdefault(pk, _midnight(actual_end + datetime.timedelta(days=1)))
    if not gates:
        return Result(
            INCOMPLETE,
            Phrase(
                gettext_noop(
                    "No phase-4 gate was passed in %(period)s: there is no gate to judge yet."
                ),
                period=period.label,
            ),
        )
    phases = Phase.objects.filter(pk__in=gates).select_related("initiative__target")
    evidence, missing = [], 0
    for phase in phases.order_by("pk"):
        initiative = phase.initiative
        job = (
            Job.objects.filter(
                kind="benchmark",
                status=Job.SUCCEEDED,
                target_id=initiative.target_id,
                finished_at__gte=_midnight(initiative.start_date),
                finished_at__lt=gates[phase.pk],
            )
            .order_by("-finished_at")
            .first()
        )
        if job is None:
            missing += 1
            evidence.append(
                item(
                    Phrase(
                        gettext_noop("%(initiative)s: QA gate with no load test before it"),
                        initiative=initiative.title,
                    ),
                    initiative.get_absolute_url(),
                    False,
                )
            )
        else:
            evidence.append(
                item(
                    Phrase(
                        gettext_noop("%(initiative)s: load test job #%(job)s on %(date)s"),
                        initiative=initiative.title,
                        job=job.pk,
                        date=f"{job.finished_at:%Y-%m-%d}",
                    ),
                    job.get_absolute_url(),
                    True,
                )
            )
    if missing:
        return Result(
            FAIL,
            Phrase(
                gettext_noop("%(count)s of %(total)s phase-4 gates had no load test before them."),
                count=missing,
                total=len(gates),
            ),
            evidence,
        )
    return Result(
        PASS,
        Phrase(
            gettext_noop("All %(total)s phase-4 gates had a load test before them."),
            total=len(gates),
        ),
        evidence,
    )


def _secrets_decrypt(control: Control, now: datetime.datetime, period: Period) -> Result:
    """Every stored secret decrypts with the current KAIZEN_ENCRYPTION_KEY (key rotation)."""
    evidence, unreadable, stored = [], 0, 0
    for target in TargetService.objects.order_by("name"):
        for column, name in (
            ("database_url_encrypted", gettext_noop("database URL")),
            ("auth_header_value_encrypted", gettext_noop("auth header")),
        ):
            token = getattr(target, column)
            if not token:
                continue
            stored += 1
            try:
                decrypt(token)
                ok = True
            except CredentialUnreadable:
                ok = False
            unreadable += not ok
            evidence.append(
                item(
                    Phrase(
                        gettext_noop("%(target)s: %(secret)s decrypts")
                        if ok
                        else gettext_noop("%(target)s: %(secret)s does not decrypt"),
                        target=target.name,
                        secret=Phrase(name),
                    ),
                    target.get_absolute_url(),
                    ok,
                )
            )
    if unreadable:
        return Result(
            FAIL,
            Phrase(
                gettext_noop(
                    "%(count)s of %(total)s stored secrets do not decrypt with the current key: "
                    "enter them again on their target's settings page."
                ),
                count=unreadable,
                total=stored,
            ),
            evidence,
        )
    if not stored:
        return Result(
            INCOMPLETE,
            Phrase(
                gettext_noop(
                    "No secrets are stored yet (database URLs, auth headers): nothing to decrypt."
                )
            ),
        )
    return Result(
        PASS,
        Phrase(
            gettext_noop("All %(total)s stored secrets decrypt with the current key."), total=stored
        ),
        evidence,
    )


def _allow_lists(control: Control, now: datetime.datetime, period: Period) -> Result:
    """No allow-list entry broader than a prefix (/16 for IPv4, /48 for IPv6), and never
    everything (0.0.0.0/0 or ::/0); the loopback range (127.0.0.0/8, the default) passes."""
    limits = {
        4: int(control.parameters.get("ipv4_prefix", 16)),
        6: int(control.parameters.get("ipv6_prefix", 48)),
    }
    evidence, broad = [], 0
    for setting in ("KAIZEN_ALLOWED_TARGET_HOSTS", "KAIZEN_ALLOWED_NOTIFY_HOSTS"):
        for entry in getattr(settings, setting, []):
            try:
                network = ipaddress.ip_network(entry, strict=False)
            except ValueError:
                evidence.append(
                    item(
                        Phrase(
                            gettext_noop("%(setting)s: %(entry)s (one host name)"),
                            setting=setting,
                            entry=entry,
                        ),
                        "",
                        True,
                    )
                )
                continue
            # The loopback range reaches this machine only, however wide it is written.
            loopback = network.is_loopback
            narrow = network.prefixlen > 0 and network.prefixlen >= limits[network.version]
            ok = loopback or narrow
            broad += not ok
            if loopback:
                label = Phrase(
                    gettext_noop("%(setting)s: %(entry)s (loopback: this machine only)"),
                    setting=setting,
                    entry=entry,
                )
            elif ok:
                label = Phrase(gettext_noop("%(setting)s: %(entry)s"), setting=setting, entry=entry)
            else:
                label = Phrase(
                    gettext_noop("%(setting)s: %(entry)s is broader than /%(prefix)s"),
                    setting=setting,
                    entry=entry,
                    prefix=limits[network.version],
                )
            evidence.append(item(label, "", ok))
    if broad:
        return Result(
            FAIL,
            Phrase(
                gettext_noop(
                    "%(count)s allow-list entries are broader than /%(ipv4)s (IPv4) or "
                    "/%(ipv6)s (IPv6), or allow everything: narrow them in the environment."
                ),
                count=broad,
                ipv4=limits[4],
                ipv6=limits[6],
            ),
            evidence,
        )
    return Result(
        PASS, Phrase(gettext_noop("Every allow-list entry is within its prefix limit.")), evidence
    )


# key: (label, judge). The label is what the control form offers.
SOURCES = {
    "db_scan_coverage": (
        _("Every target had a DB scan this period"),
        _scan_coverage(
            "db_scan",
            "database_url_encrypted",
            gettext_noop("no database URL: add one on the target's settings page"),
        ),
    ),
    "code_scan_coverage": (
        _("Every target had a code scan this period"),
        _scan_coverage(
            "code_scan",
            "source_location",
            gettext_noop("no source location: add one on the target's settings page"),
        ),
    ),
    "security_scan_coverage": (
        _("Every target had a security scan this period"),
        _scan_coverage("security_scan", "base_url", gettext_noop("no base URL")),
    ),
    "old_findings": (_("No old critical or high finding without a reason"), _old_findings),
    "runbook_reviews": (_("Runbooks reviewed within their interval"), _runbook_reviews),
    "training_current": (_("Engineers' training current"), _training_current),
    "postmortems": (_("Incidents have a timely postmortem"), _postmortems),
    "load_test_before_qa_gate": (
        _("Load-test evidence before each phase-4 gate"),
        _load_test_before_qa_gate,
    ),
    "secrets_decrypt": (_("Stored secrets decrypt with the current key"), _secrets_decrypt),
    "allow_lists": (_("No allow-list entry too broad"), _allow_lists),
}
SOURCE_CHOICES = [("", _("Manual: people attest"))] + [
    (key, label) for key, (label, _judge) in SOURCES.items()
]


# --- manual controls ------------------------------------------------------------------


def current_attestation(control: Control, now: datetime.datetime) -> Attestation | None:
    return (
        control.attestations.filter(attested_at__lte=now, expires_at__gt=now)
        .select_related("person")
        .order_by("-attested_at")
        .first()
    )


def due_at(control: Control, now: datetime.datetime) -> datetime.datetime:
    """When a manual control needs its next attestation: when the newest one expires, or
    for one never attested, the end of the period it was created in."""
    latest = control.attestations.filter(attested_at__lte=now).order_by("-attested_at").first()
    if latest is not None:
        return latest.expires_at
    return period_of(control.recurrence, control.created_at).ends_at()


def _manual(control: Control, now: datetime.datetime, period: Period) -> Result:
    attestation = current_attestation(control, now)
    if attestation is not None:
        who = attestation.person.get_full_name() or attestation.person.username
        evidence = [
            item(
                Phrase(
                    gettext_noop("Attested by %(person)s on %(date)s: %(comment)s"),
                    person=who,
                    date=f"{attestation.attested_at:%Y-%m-%d}",
                    comment=attestation.comment,
                ),
                control.get_absolute_url() + f"#attestation-{attestation.pk}",
                True,
            )
        ]
        if attestation.link:
            evidence.append(item(attestation.link, attestation.link, True))
        if attestation.attachment_name:
            evidence.append(
                item(
                    attestation.attachment_name,
                    reverse("compliance_attachment", args=[attestation.pk]),
                    True,
                )
            )
        return Result(
            PASS,
            Phrase(
                gettext_noop("Attested; counts until %(date)s."),
                date=f"{attestation.expires_at:%Y-%m-%d}",
            ),
            evidence,
        )
    due = due_at(control, now)
    if due <= now:
        return Result(
            FAIL,
            Phrase(
                gettext_noop(
                    "No current attestation: it was due %(date)s. A person of %(department)s "
                    "(editor or manager) attests on the control's page."
                ),
                date=f"{due:%Y-%m-%d}",
                department=control.department.name,
            ),
        )
    return Result(
        INCOMPLETE,
        Phrase(
            gettext_noop(
                "Not attested yet: due %(date)s. A person of %(department)s "
                "(editor or manager) attests on the control's page."
            ),
            date=f"{due:%Y-%m-%d}",
            department=control.department.name,
        ),
    )


# --- judging and storing ----------------------------------------------------------------


def judge(control: Control, now: datetime.datetime) -> Result:
    """The control's status now; an exception inside a source is an error, said plainly."""
    period = period_of(control.recurrence, now)
    if control.is_manual:
        return _manual(control, now, period)
    if control.source not in SOURCES:
        return Result(
            ERROR,
            Phrase(
                gettext_noop("Unknown evidence source %(source)s: edit the control."),
                source=repr(control.source),
            ),
        )
    try:
        result = SOURCES[control.source][1](control, now, period)
    except Exception as error:  # one broken source must not stop the others
        return Result(
            ERROR,
            Phrase(
                gettext_noop("The evidence could not be read: %(error)s"),
                error=f"{type(error).__name__}: {error}",
            ),
        )
    result.evidence = _cut(result.evidence)
    return result


def evaluate(control: Control, now=None, actor=None) -> Evaluation:
    """Judge ``control`` now and keep the judgement.

    The schedule (no ``actor``) that reaches the newest judgement of the same period
    again only confirms it (``confirmed_at``): a new row is kept for every change, and
    for every judgement a person asked for, not for every hour nothing changed.
    """
    now = now or timezone.now()
    result = judge(control, now)
    period = period_of(control.recurrence, now)
    reason = str(result.reason)
    reason_phrase = result.reason.as_data() if isinstance(result.reason, Phrase) else {}
    if actor is None:
        newest = control.evaluations.order_by("-evaluated_at", "-pk").first()
        if (
            newest is not None
            and newest.evaluated_at <= now
            and (newest.period, newest.status, newest.reason, newest.reason_phrase, newest.evidence)
            == (period.label, result.status, reason, reason_phrase, result.evidence)
        ):
            Evaluation.objects.filter(pk=newest.pk).update(confirmed_at=now)
            newest.confirmed_at = now
            return newest
    return Evaluation.objects.create(
        control=control,
        period=period.label,
        period_start=period.start,
        period_end=period.end,
        status=result.status,
        reason=reason,
        reason_phrase=reason_phrase,
        evidence=result.evidence,
        evaluated_at=now,
        evaluated_by=actor if getattr(actor, "is_authenticated", False) else None,
    )


def evaluate_all(now=None, actor=None) -> dict[str, int]:
    """Judge every active control; returns how many took each status."""
    now = now or timezone.now()
    counts: dict[str, int] = {}
    for control in Control.objects.filter(active=True).select_related("department"):
        evaluation = evaluate(control, now, actor)
        counts[evaluation.status] = counts.get(evaluation.status, 0) + 1
    if actor is not None:
        record(
            actor,
            "compliance.evaluate",
            None,
            Phrase(gettext_noop("evaluated %(count)s controls"), count=sum(counts.values())),
        )
    return counts


# --- reading the register ---------------------------------------------------------------


@dataclass
class Row:
    """One control in the register or a period's report."""

    control: Control
    evaluation: Evaluation | None
    status: str
    reason: str
    evidence: list[dict]
    reason_phrase: dict = field(default_factory=dict)

    @property
    def shown_reason(self) -> str:
        """Why, in the reader's language (``reason`` stays English for the API and CLI)."""
        return shown_phrase(self.reason_phrase, self.reason)

    @property
    def shown_evidence(self) -> list[dict]:
        return shown_evidence(self.evidence)

    def as_json(self) -> dict:
        control = self.control
        return {
            "control": control.slug,
            "statement": control.statement,
            "department": control.department.code,
            "recurrence": control.recurrence,
            "framework_tags": list(control.framework_tags),
            "kind": "manual" if control.is_manual else "automatic",
            "source": control.source,
            "status": self.status,
            "reason": self.reason,
            "period": self.evaluation.period if self.evaluation else None,
            "evaluated_at": self.evaluation.evaluated_at.isoformat() if self.evaluation else None,
            "checked_at": self.evaluation.checked_at.isoformat() if self.evaluation else None,
            "evidence": [
                {"label": entry["label"], "url": entry["url"], "ok": entry["ok"]}
                for entry in self.evidence
            ],
            "url": control.get_absolute_url(),
        }


def _rows(controls, evaluations: dict[int, Evaluation], missing: str) -> list[Row]:
    rows = []
    for control in controls:
        evaluation = evaluations.get(control.pk)
        if evaluation is None:
            rows.append(Row(control, None, INCOMPLETE, missing, []))
        else:
            rows.append(
                Row(
                    control,
                    evaluation,
                    evaluation.status,
                    evaluation.reason,
                    evaluation.evidence,
                    evaluation.reason_phrase,
                )
            )
    return rows


def _newest(controls: list[Control], evaluations) -> dict[int, Evaluation]:
    """{control pk: its newest of ``evaluations``}, in two queries."""
    newest = evaluations.filter(control=OuterRef("pk")).order_by("-evaluated_at", "-pk")
    ids = dict(
        Control.objects.filter(pk__in=[c.pk for c in controls])
        .annotate(newest_id=Subquery(newest.values("pk")[:1]))
        .values_list("pk", "newest_id")
    )
    found = Evaluation.objects.in_bulk([pk for pk in ids.values() if pk])
    return {pk: found[eid] for pk, eid in ids.items() if eid}


def register(include_inactive: bool = False) -> list[Row]:
    """Every control with its newest evaluation."""
    controls = Control.objects.select_related("department", "owner")
    if not include_inactive:
        controls = controls.filter(active=True)
    listed = list(controls)
    return _rows(
        listed,
        _newest(listed, Evaluation.objects.all()),
        gettext(
            "Not evaluated yet: the schedule judges every control every ten minutes "
            "(or press Evaluate now)."
        ),
    )


def report(period: Period) -> list[Row]:
    """Each control's status at the end of ``period``: its last evaluation within it."""
    controls = list(Control.objects.filter(active=True).select_related("department", "owner"))
    within = Evaluation.objects.filter(
        evaluated_at__gte=period.starts_at(), evaluated_at__lt=period.ends_at()
    )
    return _rows(
        controls,
        _newest(controls, within),
        gettext("Not evaluated in %(period)s: nothing shows its status then.")
        % {"period": period.label},
    )


@dataclass
class Change:
    """A control whose status at the end of a period differs from the one before."""

    control: Control
    before: str
    after: str
    reason: str
    reason_phrase: dict = field(default_factory=dict)

    @property
    def shown_reason(self) -> str:
        return shown_phrase(self.reason_phrase, self.reason)


def changes(period: Period) -> list[Change]:
    """What changed in the register since the previous period: each control whose status
    at the period's end is not what it was at the previous one's (for the report and
    HR's quarterly review)."""
    before = {row.control.pk: row for row in report(period.previous())}
    found = []
    for row in report(period):
        earlier = before.get(row.control.pk)
        was = earlier.status if earlier and earlier.evaluation else ""
        now = row.status if row.evaluation else ""
        if was != now:
            found.append(Change(row.control, was or "—", now or "—", row.reason, row.reason_phrase))
    return found


def attestations_in(period: Period):
    return (
        Attestation.objects.filter(
            attested_at__gte=period.starts_at(), attested_at__lt=period.ends_at()
        )
        .select_related("control", "person")
        .order_by("control__position", "attested_at")
    )


def overall(rows: list[Row]) -> str:
    """The register's verdict: error, then fail, then incomplete; pass only if all pass."""
    return roll_up(row.status for row in rows) or INCOMPLETE


def status_exit_code(rows: list[Row]) -> int:
    """The exit code of ``compliance status``: the other commands' (verdicts.exit_code)."""
    return exit_code(overall(rows))


def summary_json(rows: list[Row], **extra) -> dict:
    return {
        **extra,
        "status": overall(rows),
        "counts": {s: sum(r.status == s for r in rows) for s in (PASS, FAIL, INCOMPLETE, ERROR)},
        "controls": [row.as_json() for row in rows],
    }


# --- writes ------------------------------------------------------------------------------

CONTROL_FIELDS = (
    "statement",
    "description",
    "department",
    "owner",
    "recurrence",
    "framework_tags",
    "source",
    "parameters",
    "active",
)
# An attachment larger than this is refused (it lives in the database).
MAX_ATTACHMENT_BYTES = 2 * 1024 * 1024


@transaction.atomic
def do_create_control(actor, **fields) -> Control:
    control = Control.objects.create(slug=unique_slug(Control, fields["statement"]), **fields)
    record(
        actor,
        "compliance.control.create",
        control,
        Phrase(gettext_noop("added control “%(control)s”"), control=_statement(control)),
    )
    return control


@transaction.atomic
def do_update_control(actor, control: Control, **fields) -> dict:
    changes = {}
    for name, value in fields.items():
        old = getattr(control, name)
        if old != value:
            changes[name] = [str(old), str(value)]
            setattr(control, name, value)
    if changes:
        control.save()
        record(
            actor,
            "compliance.control.update",
            control,
            Phrase(gettext_noop("changed control “%(control)s”"), control=_statement(control)),
            changes=changes,
        )
    return changes


@transaction.atomic
def do_attest(
    actor, control: Control, *, comment: str, link: str = "", upload=None, now=None
) -> Attestation:
    """A person of the owning department vouches for ``control``; it counts one recurrence."""
    now = now or timezone.now()
    attestation = Attestation(
        control=control,
        person=actor,
        comment=comment,
        link=link,
        attested_at=now,
        expires_at=add_months(now, MONTHS[control.recurrence]),
    )
    if upload is not None:
        if upload.size > MAX_ATTACHMENT_BYTES:
            raise ValueError("The attachment is larger than 2 MB: link to it instead.")
        attestation.attachment = upload.read()
        attestation.attachment_name = upload.name[:200]
        attestation.attachment_type = (upload.content_type or "application/octet-stream")[:100]
    attestation.save()
    record(
        actor,
        "compliance.attest",
        control,
        Phrase(
            gettext_noop("attested “%(control)s” until %(date)s"),
            control=_statement(control),
            date=f"{attestation.expires_at:%Y-%m-%d}",
        ),
    )
    evaluate(control, now, actor)
    return attestation


# --- reminders --------------------------------------------------------------------------


def send_reminders(now=None) -> dict[str, int]:
    """Manual controls near their due date remind their owner; overdue ones tell the
    department's managers and HR. Each reminder goes once per due date (ComplianceReminder)."""
    now = now or timezone.now()
    sent = {ComplianceReminder.BEFORE: 0, ComplianceReminder.OVERDUE: 0}
    for control in Control.objects.filter(active=True, source="").select_related(
        "department", "owner"
    ):
        due = due_at(control, now)
        if due <= now:
            kind, event = ComplianceReminder.OVERDUE, "compliance.overdue"
            subject = f"Kaizen: compliance control overdue — “{control}”"
            body = (
                f"“{control}” ({control.department.name}) needed an attestation by "
                f"{due:%Y-%m-%d} and has none that is current."
            )
        elif due - now <= datetime.timedelta(days=REMIND_BEFORE_DAYS[control.recurrence]):
            kind, event = ComplianceReminder.BEFORE, "compliance.due"
            subject = f"Kaizen: attest “{control}” by {due:%Y-%m-%d}"
            body = (
                f"“{control}” needs an attestation by {due:%Y-%m-%d}: attest on the "
                "control's page with a comment and a link or a file."
            )
        else:
            continue
        with transaction.atomic():
            _reminder, created = ComplianceReminder.objects.get_or_create(
                control=control, kind=kind, due_at=due, defaults={"sent_at": now}
            )
            if created:
                route(event, subject, body, control.get_absolute_url(), control=control)
                sent[kind] += 1
    return sent


# --- the default register ----------------------------------------------------------------

# (slug, statement, department, recurrence, tags, source, parameters): drawn from the
# departments' duties in the seed — DB and code work (dev), testing and security (QA),
# architecture and monitoring (strategy), runbooks, training, compliance, incidents (HR).
# A statement is stored in English and shown in each reader's language (|translated);
# one HR rewrites is shown as written.
DEFAULT_REGISTER = [
    (
        "db-scan-each-quarter",
        gettext_noop("Every target's database had a DB scan (slow queries, indexes) this quarter."),
        Department.DEV,
        Control.QUARTERLY,
        ["ISO 27001 A.8.6", "SOC 2 CC7.1"],
        "db_scan_coverage",
        {},
    ),
    (
        "code-scan-each-month",
        gettext_noop("Every target's code had a code scan this month."),
        Department.DEV,
        Control.MONTHLY,
        ["ISO 27001 A.8.28", "SOC 2 CC8.1"],
        "code_scan_coverage",
        {},
    ),
    (
        "security-scan-each-month",
        gettext_noop("Every target had a security scan this month."),
        Department.QA,
        Control.MONTHLY,
        ["ISO 27001 A.8.8", "SOC 2 CC7.1"],
        "security_scan_coverage",
        {},
    ),
    (
        "no-stale-severe-findings",
        gettext_noop(
            "No critical or high finding stays open longer than 30 days without an "
            "accepted-risk reason."
        ),
        Department.QA,
        Control.MONTHLY,
        ["ISO 27001 A.8.8", "SOC 2 CC7.4"],
        "old_findings",
        {"days": 30},
    ),
    (
        "load-test-before-qa-gate",
        gettext_noop("Every phase-4 (QA) gate is passed with load-test evidence before it."),
        Department.QA,
        Control.QUARTERLY,
        ["ISO 27001 A.8.29", "SOC 2 CC8.1"],
        "load_test_before_qa_gate",
        {},
    ),
    (
        "runbooks-reviewed",
        gettext_noop("Every published runbook is reviewed within its review interval."),
        Department.HR,
        Control.QUARTERLY,
        ["ISO 27001 A.5.37", "SOC 2 CC2.2"],
        "runbook_reviews",
        {},
    ),
    (
        "engineer-training-current",
        gettext_noop("Every engineer's required training is current."),
        Department.HR,
        Control.QUARTERLY,
        ["ISO 27001 A.6.3", "SOC 2 CC1.4"],
        "training_current",
        {},
    ),
    (
        "postmortem-within-5-days",
        gettext_noop("Every incident has a postmortem within 5 working days."),
        Department.HR,
        Control.MONTHLY,
        ["ISO 27001 A.5.27", "SOC 2 CC7.5"],
        "postmortems",
        {"working_days": 5},
    ),
    (
        "secrets-readable-after-rotation",
        gettext_noop("Every stored secret decrypts with the current encryption key."),
        Department.STRATEGY,
        Control.QUARTERLY,
        ["ISO 27001 A.8.24", "SOC 2 CC6.1"],
        "secrets_decrypt",
        {},
    ),
    (
        "allow-lists-narrow",
        gettext_noop("No network allow-list entry is broader than /16, and none is 0.0.0.0/0."),
        Department.STRATEGY,
        Control.QUARTERLY,
        ["ISO 27001 A.8.20", "SOC 2 CC6.6"],
        "allow_lists",
        {"ipv4_prefix": 16, "ipv6_prefix": 48},
    ),
    (
        "access-review",
        gettext_noop("Each department's manager reviewed its members and their roles."),
        Department.HR,
        Control.QUARTERLY,
        ["ISO 27001 A.5.18", "SOC 2 CC6.2"],
        "",
        {},
    ),
    (
        "incident-drill",
        gettext_noop("The incident-response runbook was rehearsed in a drill."),
        Department.HR,
        Control.YEARLY,
        ["ISO 27001 A.5.24", "SOC 2 CC7.4"],
        "",
        {},
    ),
]


DEFAULT_STATEMENTS = frozenset(statement for _slug, statement, *_rest in DEFAULT_REGISTER)


def _statement(control: Control):
    """A control's statement inside a sentence: a default one translated where shown."""
    statement = str(control)
    return Phrase(statement) if statement in DEFAULT_STATEMENTS else statement


def ensure_default_register() -> int:
    """Create the default controls that are missing (by slug); HR's edits are kept."""
    departments = {d.code: d for d in Department.objects.all()}
    created = 0
    for position, (slug, statement, code, recurrence, tags, source, parameters) in enumerate(
        DEFAULT_REGISTER
    ):
        _control, made = Control.objects.get_or_create(
            slug=slug,
            defaults={
                "statement": statement,
                "department": departments[code],
                "recurrence": recurrence,
                "framework_tags": tags,
                "source": source,
                "parameters": parameters,
                "position": position,
            },
        )
        created += made
    return created
