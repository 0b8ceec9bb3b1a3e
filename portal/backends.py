"""Authentication that also brings the user's unread notification count.

Every page's navigation shows the inbox count; reading it with the user row
(a subquery in the same SELECT) keeps it from costing a query per page.
"""

from django.contrib.auth import get_user_model
from django.contrib.auth.backends import ModelBackend
from django.db.models import Count, IntegerField, OuterRef, Subquery, Value
from django.db.models.functions import Coalesce


class KaizenBackend(ModelBackend):
    def get_user(self, user_id):
        from portal.models import Notification

        unread = (
            Notification.objects.filter(user=OuterRef("pk"), read_at__isnull=True)
            .order_by()
            .values("user")
            .annotate(n=Count("pk"))
            .values("n")
        )
        user = (
            get_user_model()
            ._default_manager.annotate(
                unread_notifications=Coalesce(
                    Subquery(unread, output_field=IntegerField()), Value(0)
                )
            )
            .filter(pk=user_id)
            .first()
        )
        return user if user is not None and self.user_can_authenticate(user) else None
