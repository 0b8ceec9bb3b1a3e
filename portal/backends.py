"""Authentication that also brings the user's unread notification count.

Every page's navigation shows the inbox count; reading it with the user row
(a subquery in the same SELECT) keeps it from costing a query per page.

The SELECT is written once as SQL: every request (a job page's poll every
second too) loads its user, and building the same annotated ORM query each
time cost more CPU than running it.
"""

from functools import cache

from django.contrib.auth import get_user_model
from django.contrib.auth.backends import ModelBackend
from django.core.exceptions import ValidationError
from django.db import connection

from portal.models import Notification


@cache
def _user_sql(vendor: str) -> str:
    quote = connection.ops.quote_name
    users, notes = get_user_model()._meta, Notification._meta
    pk = quote(users.pk.column)
    return (
        f"SELECT u.*, COALESCE((SELECT COUNT(*) FROM {quote(notes.db_table)} n "
        f"WHERE n.{quote(notes.get_field('user').column)} = u.{pk} "
        f"AND n.{quote(notes.get_field('read_at').column)} IS NULL), 0) "
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
