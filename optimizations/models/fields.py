"""Model fields that store what a target sent without breaking the write.

Every text a job stores (log lines, errors, results, findings, measurement
labels) may come from a hostile or broken target. These fields clean it in
``get_prep_value``, the one step that ``save()``, ``bulk_create()``,
``bulk_update()`` and ``QuerySet.update()`` all go through, so no write path
can forget it (see ``optimizations.analyzers.cleantext``).

The columns are the plain ones: ``deconstruct`` names the parent class, so
migrations see an ordinary TextField / CharField / JSONField and nothing in
the schema changes.
"""

from __future__ import annotations

from django.db import models

from optimizations.analyzers.cleantext import clean_json, clean_text


def _clean(value):
    return clean_text(value) if isinstance(value, str) else value


class CleanTextField(models.TextField):
    """A TextField whose values lose NUL and lone surrogates on the way in."""

    def get_prep_value(self, value):
        return _clean(super().get_prep_value(value))

    def deconstruct(self):
        name, _path, args, kwargs = super().deconstruct()
        return name, "django.db.models.TextField", args, kwargs


class CleanCharField(models.CharField):
    """A CharField whose values lose NUL and lone surrogates on the way in."""

    def get_prep_value(self, value):
        return _clean(super().get_prep_value(value))

    def deconstruct(self):
        name, _path, args, kwargs = super().deconstruct()
        return name, "django.db.models.CharField", args, kwargs


class CleanJSONField(models.JSONField):
    """A JSONField whose strings (keys too) lose NUL and lone surrogates."""

    def get_prep_value(self, value):
        return super().get_prep_value(clean_json(value))

    def deconstruct(self):
        name, _path, args, kwargs = super().deconstruct()
        return name, "django.db.models.JSONField", args, kwargs
