"""HR's standard pages: the skeletons a new runbook can start from.

``{service}`` in a template is replaced with the chosen target's name (or
"the service"). The topics tie the new runbook into the coverage page.
"""

from __future__ import annotations

from dataclasses import dataclass

# The topics every installation has; ``standard`` ones make up a target's coverage.
# (slug, name, standard)
TOPICS = [
    ("operations-manual", "Operations manual", True),
    ("incident-response", "Incident response", True),
    ("connection-pool-exhaustion", "Connection-pool exhaustion", True),
    ("slow-query-triage", "Slow-query triage", True),
    ("load-test-procedure", "Load-test procedure", True),
    ("monitoring", "Monitoring", False),
    ("compliance", "Compliance", False),
    ("index-rollout", "Index rollout", False),
]


def ensure_topics(topic_model) -> None:
    """Create or refresh the standard topics (used by a migration and by tests)."""
    for position, (slug, name, standard) in enumerate(TOPICS, 1):
        topic_model.objects.update_or_create(
            slug=slug, defaults={"name": name, "standard": standard, "position": position}
        )


@dataclass(frozen=True)
class RunbookTemplate:
    key: str
    name: str
    description: str
    title: str
    topics: tuple[str, ...]
    body: str

    def fill(self, service: str) -> tuple[str, str]:
        """(title, body) for ``service``."""
        return self.title.replace("{service}", service), self.body.replace("{service}", service)


OPERATIONS_MANUAL = RunbookTemplate(
    key="operations-manual",
    name="Operations manual",
    description="What the service is, how it runs, how to deploy, scale and restore it.",
    title="Operations manual — {service}",
    topics=("operations-manual",),
    body="""\
# Operations manual — {service}

## What it is
One paragraph: what {service} does, who uses it, and what breaks when it is down.

| | |
|---|---|
| Owner (team) | |
| On-call rota | |
| Repository | |
| Dashboards | |
| SLOs | API average ≤ 100 ms · error rate ≤ 1 % · availability ≥ 99.9 % |

## How it runs
- **Processes:** FastAPI under uvicorn/gunicorn — workers per host, hosts per environment.
- **Database:** PostgreSQL — primary, replicas, connection string secret name.
- **Connection pool:** SQLAlchemy `pool_size` / `max_overflow` per worker, and what that
  adds up to against PostgreSQL's `max_connections`.
- **Dependencies:** caches, queues and other services it calls, with their timeouts.

## Deploying
1. Check the change passed CI and its migration is reviewed (no locking DDL at peak).
2. Deploy to staging; run the smoke check.
3. Deploy to production one host at a time; watch error rate and latency for 10 minutes.
4. Roll back by redeploying the previous release; migrations are written to be backward
   compatible for one release.

## Scaling
- When to add workers, when to add hosts, and what the pool must be changed to then.

## Backups and restore
- Where backups go, how often, and the last time a restore was tested.

## Health and metrics
- Health endpoint, metrics endpoint, the alerts that page and what each means.

## Contacts and escalation
- Who to call when this manual does not cover it.
""",
)

INCIDENT_RESPONSE = RunbookTemplate(
    key="incident-response",
    name="Incident response",
    description="Roles, severities, first 15 minutes, communication and the post-incident review.",
    title="Incident response — {service}",
    topics=("incident-response",),
    body="""\
# Incident response — {service}

## Severities
| Severity | Meaning | Response |
|---|---|---|
| SEV1 | {service} down, or losing data | page on-call now, incident lead within 15 min |
| SEV2 | degraded: SLO breached, errors above 1 % | on-call within 30 min |
| SEV3 | a minor fault with a workaround | next working day |

## Roles
- **Incident lead** — decides, keeps the timeline, calls for help.
- **Operator** — changes things, one at a time, and says so in the channel before doing it.
- **Communicator** — updates the status page and stakeholders every 30 minutes.

## The first 15 minutes
1. Acknowledge the page and open the incident channel.
2. Write down what is known: symptoms, start time, recent deploys and changes.
3. Check the health endpoint and the dashboards: latency, error rate, pool use, DB load.
4. If a deploy went out in the last hour, roll it back first and diagnose after.
5. Pick the matching runbook (connection-pool exhaustion, slow queries…) and follow it.

## Communication
- Status page text template, who receives updates, how often.

## Closing
- The incident ends when the SLOs hold again for 30 minutes.
- Within five working days: a blameless review with timeline, causes, and actions with owners.
""",
)

MONITORING_PROCEDURE = RunbookTemplate(
    key="monitoring-procedure",
    name="Monitoring procedure",
    description="What is watched, the alert thresholds, and who checks what and when.",
    title="Monitoring procedure — {service}",
    topics=("monitoring",),
    body="""\
# Monitoring procedure — {service}

## What is watched
| Signal | Source | Alert when | Severity |
|---|---|---|---|
| API average latency | metrics endpoint | > 100 ms for 10 min | SEV2 |
| Error rate | access logs / metrics | > 1 % for 5 min | SEV2 |
| Availability | health checks | failing for 2 min | SEV1 |
| Connection-pool use | pool metrics | > 80 % for 10 min | SEV2 |
| Slow queries (≥ 1 s) | pg_stat_statements | > 5 % of executions | SEV3 |
| DB cache hit ratio | pg_stat_database | < 99 % for 30 min | SEV3 |

## Daily check (on-call, 10 minutes)
1. Open the service dashboard; compare the last 24 hours with the week before.
2. Look at the top five statement families by total time.
3. Note anything unusual in the on-call log.

## Monthly performance analysis
- Run the scheduled analysis in Kaizen and review the new findings with Development.

## Alert hygiene
- Every alert that paged without needing action is tuned or removed within a week.
""",
)

COMPLIANCE_CHECKLIST = RunbookTemplate(
    key="compliance-checklist",
    name="Compliance checklist",
    description="Access, data protection, change control and evidence, checked on a schedule.",
    title="Compliance checklist — {service}",
    topics=("compliance",),
    body="""\
# Compliance checklist — {service}

Check each item, note the evidence (a link, a ticket, a screenshot) and the date.

## Access
- [ ] Production database access is limited to the named roles; the list was reviewed.
- [ ] Leavers' accounts were removed within one working day.
- [ ] Service credentials are stored in the secret store, not in code or CI logs.

## Data protection
- [ ] Personal data fields are documented, with their retention period.
- [ ] Backups are encrypted, and a restore was tested this quarter.
- [ ] Logs do not contain passwords, tokens or full card numbers.

## Change control
- [ ] Every production change went through review and CI.
- [ ] Database migrations that lock tables were scheduled outside peak hours.

## Resilience
- [ ] The incident-response runbook was reviewed in the last six months.
- [ ] The on-call rota has no gaps for the next month.

## Training
- [ ] Everyone on call completed the current incident-response training.
""",
)

# The page every incident's postmortem starts from (optimizations.observe.incidents): HR
# edits the runbook made from it to change what postmortems ask. Its text keeps {target},
# {incident}, {started} and {ended}, filled in for each incident.
POSTMORTEM = RunbookTemplate(
    key="postmortem",
    name="Postmortem",
    description="A blameless review of one incident: timeline, impact, causes and actions.",
    title="Postmortem — {service}",
    # No topic: it is not a target's incident-response runbook (the coverage's template).
    topics=(),
    body="""\
# Postmortem — {target}

Incident {incident}, from {started} to {ended}.

## Summary
What happened, in two or three sentences a newcomer understands.

## Impact
Who noticed, for how long, what they could not do; the SLOs and error budget spent.

## Timeline
The incident page's timeline, with what people saw and decided at each step.

## Causes
What made it possible (not who): the trigger, and why it was not caught earlier.

## What went well, what did not

## Action items
One per line in the form's action items: each becomes a task of the target's open
initiative, or a follow-up on the incident when none is open.
""",
)

TEMPLATES = {
    template.key: template
    for template in (
        OPERATIONS_MANUAL,
        INCIDENT_RESPONSE,
        MONITORING_PROCEDURE,
        COMPLIANCE_CHECKLIST,
        POSTMORTEM,
    )
}
