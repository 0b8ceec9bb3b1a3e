"""Notification endpoints have their own allow-list: the SMTP relay is checked on its
resolved address when a connection opens, and the connection goes to that address.

KAIZEN_ALLOWED_NOTIFY_HOSTS is 127.0.0.2/32 here: a relay on 127.0.0.2 gets the
mail, one on 127.0.0.1 never sees a connection.
"""

import socketserver
import threading

import pytest
from django.core.management import call_command
from django.core.management.base import SystemCheckError

from optimizations.analyzers import netguard
from portal.models import Notification
from portal.notify import notify
from tests.analyzers.netguard_servers import ALLOWED, REFUSED, Listener


class Relay:
    """A minimal SMTP server that keeps the messages it is given."""

    def __init__(self, host: str):
        self.messages: list[str] = []
        outer = self

        class Handler(socketserver.StreamRequestHandler):
            def handle(self):
                self.say("220 relay ready")
                data = None
                for raw in self.rfile:
                    line = raw.decode("utf-8", "replace").rstrip("\r\n")
                    if data is not None:
                        if line == ".":
                            outer.messages.append("\n".join(data))
                            data = None
                            self.say("250 queued")
                        else:
                            data.append(line)
                        continue
                    verb = line.split(" ", 1)[0].upper()
                    if verb == "DATA":
                        data = []
                        self.say("354 go on")
                    elif verb == "QUIT":
                        self.say("221 bye")
                        return
                    else:
                        self.say("250 ok")

            def say(self, text: str) -> None:
                self.wfile.write(f"{text}\r\n".encode())

        self.server = socketserver.ThreadingTCPServer((host, 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def relay():
    server = Relay(ALLOWED)
    yield server
    server.close()


@pytest.fixture
def smtp(settings):
    settings.KAIZEN_ALLOWED_NOTIFY_HOSTS = ["127.0.0.2/32"]

    def use(host: str, port: int):
        settings.MAILERS = {
            "default": {
                "BACKEND": "portal.mail.GuardedSMTPBackend",
                "OPTIONS": {"host": host, "port": port, "use_tls": False, "timeout": 5},
            }
        }

    return use


def test_mail_goes_to_an_allowed_relay_at_the_checked_address(smtp, relay, viewer, monkeypatch):
    real = netguard.resolve
    monkeypatch.setattr(
        netguard,
        "resolve",
        lambda host, port=None: [ALLOWED] if host == "relay.pinned.test" else real(host, port),
    )
    smtp("relay.pinned.test", relay.port)
    notify([viewer], "Kaizen: test", "body text")
    (message,) = relay.messages
    assert "Subject: Kaizen: test" in message


def test_mail_to_a_relay_off_the_list_is_not_sent_and_the_inbox_still_gets_it(smtp, viewer, caplog):
    listener = Listener(REFUSED)
    try:
        smtp(REFUSED, listener.port)
        notify([viewer], "Kaizen: test", "body text")
    finally:
        listener.close()
    assert listener.connections == 0
    assert Notification.objects.filter(user=viewer, subject="Kaizen: test").exists()
    assert "KAIZEN_ALLOWED_NOTIFY_HOSTS" in caplog.text


def test_production_warns_when_the_notify_list_is_wide_open(settings):
    settings.PRODUCTION = True
    settings.KAIZEN_ALLOWED_NOTIFY_HOSTS = ["0.0.0.0/0"]
    with pytest.raises(SystemCheckError, match=r"kaizen\.W005"):
        call_command("check", "--deploy", "--fail-level", "WARNING", "--tag", "security")
