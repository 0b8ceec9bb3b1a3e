"""Writes to people and memberships — each one audited."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.db import transaction

from departments.models import Membership, Profile
from portal.audit import record


@transaction.atomic
def do_add_person(actor, *, username, first_name, last_name, email, password, department, role):
    """Create a user with a first membership."""
    user = get_user_model().objects.create_user(
        username=username,
        first_name=first_name,
        last_name=last_name,
        email=email,
        password=password,
    )
    Profile.objects.create(user=user)
    membership = Membership.objects.create(user=user, department=department, role=role)
    record(
        actor,
        "membership.create",
        membership,
        f"added {user.username} to {department.name} as {membership.get_role_display()}",
        changes={"role": [None, role]},
    )
    return user


@transaction.atomic
def do_set_membership(actor, user, department, role) -> Membership:
    """Give ``user`` ``role`` in ``department``, creating or changing the membership."""
    membership = Membership.objects.filter(user=user, department=department).first()
    old = membership.role if membership else None
    if membership is None:
        membership = Membership.objects.create(user=user, department=department, role=role)
    elif membership.role != role:
        membership.role = role
        membership.save(update_fields=["role"])
    if old != role:
        record(
            actor,
            "membership.role" if old else "membership.create",
            membership,
            f"{user.username} is now {membership.get_role_display()} of {department.name}"
            + (f" (was {old})" if old else ""),
            changes={"role": [old, role]},
        )
    return membership


@transaction.atomic
def do_remove_membership(actor, membership: Membership) -> None:
    record(
        actor,
        "membership.delete",
        membership,
        f"removed {membership.user.username} from {membership.department.name}",
        changes={"role": [membership.role, None]},
    )
    membership.delete()


def do_set_time_zone(user, time_zone: str) -> None:
    Profile.objects.update_or_create(user=user, defaults={"time_zone": time_zone})
