"""The authentication backend loads the user and the inbox count in one SELECT."""

from django.utils import timezone

from portal.backends import KaizenBackend
from portal.models import Notification


def test_the_user_comes_with_the_unread_count_in_one_query(
    qa_engineer, viewer, django_assert_num_queries
):
    for read_at in (None, None, timezone.now()):
        Notification.objects.create(user=qa_engineer, subject="s", read_at=read_at)
    Notification.objects.create(user=viewer, subject="someone else's")
    with django_assert_num_queries(1):
        user = KaizenBackend().get_user(str(qa_engineer.pk))
    assert user == qa_engineer and user.unread_notifications == 2
    assert KaizenBackend().get_user(viewer.pk).unread_notifications == 1


def test_no_user_for_an_unknown_inactive_or_malformed_id(qa_engineer):
    backend = KaizenBackend()
    assert backend.get_user(qa_engineer.pk + 1000) is None
    assert backend.get_user("not-a-number") is None
    qa_engineer.is_active = False
    qa_engineer.save()
    assert backend.get_user(qa_engineer.pk) is None
