"""Authentication that also brings the user's unread notification count.

Every page's navigation shows the inbox count; reading it with the user row
(a subquery in the same SELECT) keeps it from costing a query per page.

The SELECT is written once as SQL: every request (a job page's poll every
second too) loads its user, and building the same annotated ORM query each
time cost more CPU than running it.
"""

from functools import cache
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.backends import ModelBackend
from django.core.exceptions import ValidationError
from django.db import connection

from portal.models import Notification


def _column(field: Any) -> str:
    """The database column of a concrete field (only fields without one say None)."""
    column = field.column
    if not isinstance(column, str):
        raise TypeError(f"{field} has no database column")
    return column


@cache
def _user_sql(vendor: str) -> str:
    quote = connection.ops.quote_name
    users, notes = get_user_model()._meta, Notification._meta
    pk = quote(_column(users.pk))
    return (
        f"SELECT u.*, COALESCE((SELECT COUNT(*) FROM {quote(notes.db_table)} n "
        f"WHERE n.{quote(_column(notes.get_field('user')))} = u.{pk} "
        f"AND n.{quote(_column(notes.get_field('read_at')))} IS NULL), 0) "
        f"AS unread_notifications FROM {quote(users.db_table)} u WHERE u.{pk} = %s"
    )


class KaizenBackend(ModelBackend):
    def get_user(self, user_id):
        model = get_user_model()
        try:
            pk = model._meta.pk.to_python(user_id)
        except ValidationError:
            return None
        found = list(model._default_manager.raw(_user_sql(connection.vendor), [pk]))
        user = found[0] if found else None
        return user if user is not None and self.user_can_authenticate(user) else None
