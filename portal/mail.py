"""SMTP only to a relay on KAIZEN_ALLOWED_NOTIFY_HOSTS, connected at the checked address.

Notification endpoints have their own allow-list (targets keep theirs): the
relay's name is resolved and every address checked when a connection opens,
and the socket goes to the checked address while TLS still verifies the
relay's name — the same rules as safehttp's for HTTP.
"""

from __future__ import annotations

import smtplib

from django.conf import settings
from django.core.mail.backends.smtp import EmailBackend

from optimizations.analyzers.netguard import NOTIFY_SETTING, HostNotAllowed, check_host


class RelayNotAllowed(OSError):
    """The relay is not on KAIZEN_ALLOWED_NOTIFY_HOSTS (an OSError, like a relay that is down)."""


def _pinned(base: type[smtplib.SMTP], address: str) -> type[smtplib.SMTP]:
    class PinnedSMTP(base):  # type: ignore[valid-type,misc]  # a class made per relay: SMTP or SMTP_SSL
        def _get_socket(self, host, port, timeout):
            # ``self._host`` keeps the relay's name for STARTTLS / SMTPS certificate checks.
            return super()._get_socket(address, port, timeout)

    return PinnedSMTP


class GuardedSMTPBackend(EmailBackend):
    """Django's SMTP backend with the notification allow-list checked at connect time."""

    @property
    def connection_class(self):
        try:
            addresses = check_host(
                self.host,
                settings.KAIZEN_ALLOWED_NOTIFY_HOSTS,
                int(self.port),
                setting=NOTIFY_SETTING,
            )
        except HostNotAllowed as exc:
            raise RelayNotAllowed(f"mail relay refused: {exc}") from None
        address = sorted(addresses, key=lambda a: ":" in a)[0]
        return _pinned(smtplib.SMTP_SSL if self.use_ssl else smtplib.SMTP, address)
