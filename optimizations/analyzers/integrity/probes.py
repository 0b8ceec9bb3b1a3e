"""The five integrity probes. Each finds its operations in the OpenAPI document, runs its
request sequence, compares what the API acknowledged with what it then reads back, and
reports a finding with the sequence as curl commands and the fix; then it undoes what it
did where the API allows (a compensating change, a cancel, a DELETE)."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..base import CHECK_FAILED, CHECK_PASSED, CHECK_UNKNOWN, CheckOutcome, FindingData
from .client import Client, Exchange
from .spec import PATH_PARAM, Builder, Op, Spec, elements, fill_path, list_query

POSTGRES_LOCKS = "https://www.postgresql.org/docs/current/explicit-locking.html"
POSTGRES_UPSERT = "https://www.postgresql.org/docs/current/sql-insert.html#SQL-ON-CONFLICT"
SQLALCHEMY_TX = "https://docs.sqlalchemy.org/en/20/orm/session_transaction.html"
IDEMPOTENCY_DRAFT = "https://datatracker.ietf.org/doc/draft-ietf-httpapi-idempotency-key-header/"
WRITE_STATUSES = {409, 422}


@dataclass
class Created:
    """A resource a probe created: where to read it back and how to undo it."""

    collection: str
    id: str
    sent: dict[str, Any]
    exchange: Exchange


@dataclass
class Probes:
    spec: Spec
    client: Client
    concurrency: int
    rounds: int
    log: Callable[[str], None]
    findings: list[FindingData] = field(default_factory=list)
    checks: list[CheckOutcome] = field(default_factory=list)
    created: list[Created] = field(default_factory=list)
    left_behind: list[str] = field(default_factory=list)
    builder: Builder = field(init=False)

    def __post_init__(self) -> None:
        self.builder = Builder(self.spec, self.client)

    # --- shared helpers -------------------------------------------------------------

    def outcome(self, check_id: str, status: str, detail: str) -> None:
        self.checks.append(CheckOutcome(check_id, status, detail))
        self.log(f"{check_id}: {status} — {detail}")

    def marker(self) -> str:
        return secrets.token_hex(5)

    def creates(self) -> list[Op]:
        """POSTs that create a resource in a collection (no path parameter, an object body
        without lists of objects); token endpoints and idempotent-keyed ones excluded."""
        found = []
        for op in self.spec.ops:
            if op.method != "POST" or PATH_PARAM.search(op.path) or op.body is None:
                continue
            if op.path in self.spec.token_paths or op.header("Idempotency-Key"):
                continue
            properties = op.body.get("properties") or {}
            if op.body.get("type") != "object" or any(
                self.spec.resolve(p).get("type") == "array" for p in properties.values()
            ):
                continue
            found.append(op)
        return found

    def remember(self, collection: str, sent: dict[str, Any], exchange: Exchange) -> None:
        document = exchange.json()
        if exchange.ok and isinstance(document, dict) and document.get("id") is not None:
            self.created.append(Created(collection, str(document["id"]), sent, exchange))

    def add(self, rule: str, title: str, severity: str, op: Op, **details: Any) -> None:
        self.findings.append(
            FindingData(
                rule_id=rule,
                title=title,
                severity=severity,
                category="integrity",
                location=op.label,
                key=f"{rule}:{op.label}",
                evidence=details["evidence"],
                fix_hint=details["fix"],
                doc_url=details.get("doc", ""),
            )
        )
        self.log(f"finding {rule} at {op.label}: {title}")

    # --- lost update ---------------------------------------------------------------------

    def lost_update(self) -> None:
        check = "integrity.lost_update"
        candidates = []
        for op in self.spec.ops:
            if op.method not in {"PATCH", "PUT", "POST"} or op.body is None:
                continue
            required = op.body.get("required") or []
            properties = op.body.get("properties") or {}
            if len(required) != 1 or len(PATH_PARAM.findall(op.path)) != 1:
                continue
            if self.spec.resolve(properties.get(required[0])).get("type") != "integer":
                continue
            if self.spec.find("GET", op.path) is None:
                continue
            candidates.append((op, str(required[0])))
        if not candidates:
            self.outcome(check, CHECK_PASSED, "no change-by-amount operation to race on")
            return
        reasons = []
        for op, field_name in candidates:
            reason = self._race_changes(op, field_name)
            if reason is None:
                return
            reasons.append(f"{op.label}: {reason}")
        self.outcome(check, CHECK_UNKNOWN, "; ".join(reasons))

    def _race_changes(self, op: Op, field_name: str) -> str | None:
        """Race ``concurrency`` changes of +1; None when judged, else why it could not."""
        check = "integrity.lost_update"
        parameter = PATH_PARAM.search(op.path)
        if parameter is None:
            return f"{op.path} names no element to race on"
        collection = op.path[: parameter.start()].rstrip("/")
        element = self.builder.template(collection)
        if element is None or element.get("id") is None:
            return f"GET {collection} listed nothing to change"
        path = fill_path(op.path, str(element["id"]))
        before = self.client.send("GET", path)
        step = self.client.send(op.method, path, {field_name: 1})
        after = self.client.send("GET", path)
        if not step.ok:
            return f"a change of +1 answered {step.outcome()}"
        counter = _moved_by_one(before.json(), after.json())
        if counter is None:
            return "no number in its GET moved by the +1 it acknowledged"
        start = after.json()[counter]
        lost, acked, final, round_number = 0, 0, start, 0
        burst: list[Exchange] = []
        read = after
        for round_number in range(1, self.rounds + 1):  # noqa: B007 - reported below
            burst = self.client.at_once(
                [
                    self.client.prepare(op.method, path, {field_name: 1})
                    for _ in range(self.concurrency)
                ]
            )
            read = self.client.send("GET", path)
            acked = sum(1 for e in burst if e.ok)
            document = read.json()
            value = document.get(counter) if isinstance(document, dict) else None
            if not isinstance(value, int):
                self._undo_changes(op, path, field_name, counter, before.json()[counter])
                return f"reading {path} back gave no {counter!r}"
            final = value
            lost = start + acked - final
            if lost > 0:
                break
            start = final
        self._undo_changes(op, path, field_name, counter, before.json()[counter])
        if lost <= 0:
            self.outcome(
                check,
                CHECK_PASSED,
                f"{op.label}: {self.rounds} × {self.concurrency} concurrent +1 all counted",
            )
            return None
        self.add(
            check,
            f"Lost update: {lost} of {acked} concurrent acknowledged changes to {counter!r} "
            "vanished",
            "high",
            op,
            evidence={
                "requests": self.client.transcript(
                    [before, step, after, *burst, read],
                    f"{self.concurrency} changes of +1 sent at once after one sent alone",
                ),
                "field": counter,
                "before_burst": start,
                "acknowledged": acked,
                "expected": start + acked,
                "read_back": final,
                "lost": lost,
                "round": round_number,
            },
            fix=(
                "Let the database apply the change: UPDATE … SET "
                f"{counter} = {counter} + :delta (… RETURNING {counter}) in one statement; or "
                "read the row with SELECT … FOR UPDATE in the same transaction as the write; "
                "or a version column checked in the UPDATE's WHERE (409 on a stale version)."
            ),
            doc=POSTGRES_LOCKS,
        )
        self.outcome(check, CHECK_FAILED, f"{op.label}: {lost} acknowledged changes lost")
        return None

    def _undo_changes(
        self, op: Op, path: str, field_name: str, counter: str, original: Any
    ) -> None:
        now = self.client.send("GET", path).json()
        if (
            isinstance(now, dict)
            and isinstance(now.get(counter), int)
            and isinstance(original, int)
        ):
            delta = original - now[counter]
            if delta:
                undo = self.client.send(op.method, path, {field_name: delta})
                self.log(f"undo: {op.method} {path} {{{field_name}: {delta}}} → {undo.outcome()}")

    # --- atomicity of a bulk write ------------------------------------------------------

    def atomicity(self) -> None:
        check = "integrity.bulk_atomicity"
        bulks = []
        for op in self.spec.ops:
            if op.method != "POST" or op.body is None or PATH_PARAM.search(op.path):
                continue
            properties = op.body.get("properties") or {}
            lists = [
                (name, self.spec.resolve(self.spec.resolve(schema).get("items")))
                for name, schema in properties.items()
                if self.spec.resolve(schema).get("type") == "array"
            ]
            if len(lists) == 1 and lists[0][1].get("type") == "object":
                bulks.append((op, lists[0][0], lists[0][1]))
        if not bulks:
            self.outcome(check, CHECK_PASSED, "no bulk write operation")
            return
        reasons = []
        for op, list_name, element in bulks:
            reason = self._bulk_with_a_bad_element(op, list_name, element)
            if reason is None:
                return
            reasons.append(f"{op.label}: {reason}")
        self.outcome(check, CHECK_UNKNOWN, "; ".join(reasons))

    def _bulk_with_a_bad_element(
        self, op: Op, list_name: str, element: dict[str, Any]
    ) -> str | None:
        check = "integrity.bulk_atomicity"
        collection = op.path.rsplit("/", 1)[0] or "/"
        marker = self.marker()
        rows = []
        for n in range(3):
            row = self.builder.body(element, f"{marker}x{n}", collection)
            if row is None:
                return "cannot build a valid element: " + "; ".join(self.builder.missing[-1:])
            rows.append(row)
        references = [name for name in rows[-1] if name.endswith("_id")]
        if references:
            # A well-formed id of nothing: valid by the schema, refused by the data.
            rows[-1][references[0]] = "00000000-0000-4000-8000-" + secrets.token_hex(6)
            bad = f"{references[0]} names nothing"
        else:
            rows[-1] = dict(rows[0])  # the first element again: a duplicate within the batch
            bad = "it repeats the first element"
        reader = self._reader(collection)
        if reader is None:
            return f"no way to read {collection} back (no search or list operation)"
        write = self.client.send(
            "POST", op.path, {list_name: rows}, headers={"Connection": "close"}
        )
        left, read = reader(f"kz{marker}")
        if write.ok:
            document = write.json()
            for created_id in (document.get("ids") if isinstance(document, dict) else None) or []:
                self.created.append(Created(collection, str(created_id), {}, write))
            return f"it accepted a batch whose last element is invalid ({bad})"
        if left is None:
            return f"reading {collection} back failed"
        for document in left:
            if document.get("id") is not None:
                self.created.append(Created(collection, str(document["id"]), {}, write))
        if not left:
            self.outcome(
                check, CHECK_PASSED, f"{op.label}: refused ({write.outcome()}), nothing written"
            )
            return None
        self.add(
            check,
            f"Partial bulk write: {len(left)} of {len(rows)} elements stayed after the request "
            f"failed with {write.outcome()}",
            "high",
            op,
            evidence={
                "requests": self.client.transcript(
                    [write, read], f"the last of {len(rows)} elements is invalid: {bad}"
                ),
                "elements_sent": len(rows),
                "elements_left": len(left),
                "status": write.status,
            },
            fix=(
                "Write the whole batch in one transaction (session.add_all(...) and one commit, "
                "or `async with session.begin():`), validate references before inserting, and "
                "answer 4xx with nothing written; or document and return per-element results."
            ),
            doc=SQLALCHEMY_TX,
        )
        self.outcome(check, CHECK_FAILED, f"{op.label}: {len(left)} elements left by a failure")
        return None

    def _reader(
        self, collection: str
    ) -> Callable[[str], tuple[list[dict[str, Any]] | None, Exchange]] | None:
        """How to find the elements whose text carries a marker: a search, else the list."""
        search = None
        for op in self.spec.ops:
            if op.method == "GET" and op.path.startswith(collection + "/"):
                if PATH_PARAM.search(op.path):
                    continue
                required = op.required_query()
                if (
                    len(required) == 1
                    and self.spec.resolve(required[0].get("schema")).get("type") == "string"
                ):
                    search = (op, str(required[0]["name"]))
                    break
        listing = self.spec.find("GET", collection)

        def read(marker: str) -> tuple[list[dict[str, Any]] | None, Exchange]:
            if search is not None:
                query = {search[1]: marker, **list_query(search[0])}
                answer = self.client.send("GET", search[0].path, query=query)
            else:
                answer = self.client.send("GET", collection, query=list_query(listing))
            if not answer.ok:
                return None, answer
            return [e for e in elements(answer.json()) if marker in repr(e)], answer

        return read if search is not None or listing is not None else None

    # --- unique races and read-your-writes ------------------------------------------------

    def unique_race(self) -> None:
        check = "integrity.unique_race"
        candidates = self.creates()
        if not candidates:
            self.outcome(check, CHECK_PASSED, "no create operation")
            return
        reasons = []
        for op in candidates:
            reason = self._race_creates(op)
            if reason is None:
                return
            reasons.append(f"{op.label}: {reason}")
        unknown = [r for r in reasons if "no unique key" not in r]
        status = CHECK_UNKNOWN if unknown else CHECK_PASSED
        self.outcome(check, status, "; ".join(reasons))

    def _race_creates(self, op: Op) -> str | None:
        check = "integrity.unique_race"
        assert op.body is not None
        first_body = self.builder.body(op.body, self.marker(), op.path)
        if first_body is None:
            return "cannot build a valid body: " + "; ".join(self.builder.missing[-1:])
        first = self.client.send("POST", op.path, first_body, headers={"Connection": "close"})
        if not first.ok:
            return f"a valid create answered {first.outcome()}"
        self.remember(op.path, first_body, first)
        again = self.client.send("POST", op.path, first_body, headers={"Connection": "close"})
        self.remember(op.path, first_body, again)
        if again.ok:
            return "the same body twice made two resources: no unique key to race on"
        if again.status not in WRITE_STATUSES:
            return f"a sequential duplicate answered {again.outcome()}, not 409/422"
        for round_number in range(1, self.rounds + 1):
            body = self.builder.body(op.body, self.marker(), op.path)
            assert body is not None
            pair = self.client.at_once(
                [
                    self.client.prepare("POST", op.path, body, headers={"Connection": "close"})
                    for _ in range(2)
                ]
            )
            for exchange in pair:
                self.remember(op.path, body, exchange)
            statuses = sorted(e.status for e in pair)
            winners = sum(1 for e in pair if e.ok)
            if winners == 1 and any(e.status in WRITE_STATUSES for e in pair):
                continue
            duplicated = winners == 2
            title = (
                "Unique race: two concurrent creates of one key both succeeded"
                if duplicated
                else f"Unique race: two concurrent creates of one key answered {statuses}"
            )
            self.add(
                check,
                title,
                "high" if duplicated else "medium",
                op,
                evidence={
                    "requests": self.client.transcript(
                        [first, again, *pair],
                        "a sequential duplicate is refused; the same duplicate sent at once is not",
                    ),
                    "statuses": statuses,
                    "round": round_number,
                },
                fix=(
                    "Let a unique index decide, not a check in code (check-then-insert races): "
                    "catch the unique violation (IntegrityError) and answer 409, or INSERT … ON "
                    "CONFLICT DO NOTHING / DO UPDATE (an upsert) and report what happened."
                ),
                doc=POSTGRES_UPSERT,
            )
            self.outcome(check, CHECK_FAILED, f"{op.label}: {title}")
            return None
        self.outcome(
            check,
            CHECK_PASSED,
            f"{op.label}: {self.rounds} races of two creates gave one success and one 409/422",
        )
        return None

    def read_your_writes(self) -> None:
        check = "integrity.read_your_writes"
        judged = 0
        for created in list(self.created):
            if not created.sent or created.exchange.status != 201:
                continue
            path = self.spec.item_path(created.collection)
            if path is None:
                continue
            read = self.client.send("GET", fill_path(path, created.id))
            judged += 1
            document = read.json()
            differing = (
                {
                    name: (value, document.get(name))
                    for name, value in created.sent.items()
                    if name in document and document.get(name) != value
                }
                if isinstance(document, dict)
                else {}
            )
            if read.status == 200 and not differing:
                continue
            op = self.spec.find("GET", path)
            assert op is not None
            self.add(
                check,
                f"Read after a 201 answered {read.outcome()}"
                + (f" with other values for {sorted(differing)}" if differing else ""),
                "medium",
                op,
                evidence={
                    "requests": self.client.transcript([created.exchange, read]),
                    "differing": {k: list(v) for k, v in differing.items()},
                },
                fix=(
                    "Commit before answering 201, and read from the primary (or wait for the "
                    "replica to reach the write's position) right after a write; invalidate "
                    "caches on write."
                ),
            )
            self.outcome(check, CHECK_FAILED, f"GET {path} right after a 201 did not see it")
            return
        if judged:
            self.outcome(check, CHECK_PASSED, f"{judged} resources read back right after their 201")
        else:
            self.outcome(
                check,
                CHECK_UNKNOWN,
                "no resource created by the probes has a GET by id to read it back",
            )

    # --- idempotency --------------------------------------------------------------------

    def idempotency(self) -> None:
        check = "integrity.idempotency"
        keyed = [op for op in self.spec.ops if op.method == "POST" and op.header("Idempotency-Key")]
        if not keyed:
            self.outcome(check, CHECK_PASSED, "no operation declares an Idempotency-Key")
            return
        reasons = []
        for op in keyed:
            reason = self._retry(op)
            if reason is None:
                return
            reasons.append(f"{op.label}: {reason}")
        self.outcome(check, CHECK_UNKNOWN, "; ".join(reasons))

    def _retry(self, op: Op) -> str | None:
        check = "integrity.idempotency"
        if op.body is None:
            return "no JSON body"
        body = self.builder.body(op.body, self.marker(), op.path)
        if body is None:
            return "cannot build a valid body: " + "; ".join(self.builder.missing[-1:])
        key = {"Idempotency-Key": f"kaizen-{secrets.token_hex(8)}"}
        first = self.client.send("POST", op.path, body, headers=key)
        if not first.ok:
            return f"a valid request answered {first.outcome()}"
        retry = self.client.send("POST", op.path, body, headers=key)
        burst_key = {"Idempotency-Key": f"kaizen-{secrets.token_hex(8)}"}
        burst = self.client.at_once(
            [self.client.prepare("POST", op.path, body, headers=burst_key) for _ in range(2)]
        )
        for exchange in (first, retry, *burst):
            self.remember(op.path, body, exchange)
        ids_sequential = {_id(first), _id(retry)} - {None}
        ids_burst = {_id(e) for e in burst if e.ok} - {None}
        duplicated = len(ids_sequential) > 1 or len(ids_burst) > 1
        if not duplicated:
            self.outcome(check, CHECK_PASSED, f"{op.label}: retries returned the first resource")
            return None
        self.add(
            check,
            "A retried POST with the same Idempotency-Key created another resource",
            "high",
            op,
            evidence={
                "requests": self.client.transcript(
                    [first, retry, *burst], "the same body and Idempotency-Key, sent again"
                ),
                "ids": sorted(str(i) for i in ids_sequential | ids_burst),
            },
            fix=(
                "Store the key with the resource under a unique index (customer, key); on a "
                "repeat return the first response (also when two retries race: catch the unique "
                "violation and read the winner); 422 when the key comes with another body."
            ),
            doc=IDEMPOTENCY_DRAFT,
        )
        self.outcome(check, CHECK_FAILED, f"{op.label}: retries created more resources")
        return None

    # --- cleanup ----------------------------------------------------------------------------

    def clean_up(self) -> None:
        """Undo what the probes created: cancel or DELETE where the API has it."""
        seen: set[tuple[str, str]] = set()
        for created in self.created:
            if (created.collection, created.id) in seen:
                continue
            seen.add((created.collection, created.id))
            delete = self.spec.element_action(created.collection, "DELETE")
            cancel = self.spec.element_action(created.collection, "POST", "cancel")
            if delete is not None:
                answer = self.client.send("DELETE", fill_path(delete, created.id))
            elif cancel is not None:
                answer = self.client.send("POST", fill_path(cancel, created.id))
            else:
                self.left_behind.append(f"{created.collection}/{created.id}")
                continue
            if not answer.ok:
                self.left_behind.append(f"{created.collection}/{created.id} ({answer.outcome()})")


def _id(exchange: Exchange) -> Any:
    document = exchange.json()
    return document.get("id") if exchange.ok and isinstance(document, dict) else None


def _moved_by_one(before: Any, after: Any) -> str | None:
    if not isinstance(before, dict) or not isinstance(after, dict):
        return None
    for name, value in after.items():
        old = before.get(name)
        if isinstance(value, bool) or not isinstance(value, int) or not isinstance(old, int):
            continue
        if value == old + 1:
            return str(name)
    return None
