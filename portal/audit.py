"""Record audit events. Every write function calls ``record`` in plain sight."""

from portal.i18n import Phrase
from portal.models import AuditEvent


def describe_changes(before: dict, after: dict) -> dict:
    """The fields whose values differ, as {field: [old, new]} with readable values."""
    return {
        key: [_plain(before.get(key)), _plain(after.get(key))]
        for key in after
        if before.get(key) != after.get(key)
    }


def _plain(value):
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return str(value)


def record(actor, action, obj, summary, *, changes=None, initiative=None, target=None):
    """``summary``: a Phrase (translated for each reader) or, as before, English text."""
    phrase = summary.as_data() if isinstance(summary, Phrase) else {}
    return AuditEvent.objects.create(
        actor=actor if getattr(actor, "is_authenticated", False) else None,
        action=action,
        object_type=obj._meta.model_name if obj is not None else "",
        object_id=str(obj.pk) if obj is not None else "",
        object_repr=str(obj)[:200] if obj is not None else "",
        initiative=initiative,
        target=target,
        changes=changes or {},
        summary=str(summary)[:300],
        summary_phrase=phrase,
    )
