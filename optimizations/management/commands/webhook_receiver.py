"""``manage.py webhook_receiver --secret S [--port 9099]``: a receiver on loopback that
prints each incident webhook Kaizen sends and whether its signature verifies — to try
the channel end to end (stop the demo target, watch the incident arrive) before pointing
Kaizen at a real receiver. Add ``http://127.0.0.1:<port>/`` as a webhook with the same
secret under Incidents → Deliveries and webhooks.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from django.core.management.base import BaseCommand

from optimizations.observe.channels import SIGNATURE_HEADER, verify

MAX_AGE_SECONDS = 300  # a signature older than this is a replay, not a delivery


def make_server(
    port: int, secret: str, write: Callable[[str], None], now: Callable[[], float] = time.time
) -> ThreadingHTTPServer:
    """A receiver on 127.0.0.1:``port`` that answers 204 to a well-signed, fresh POST
    and 401 otherwise, telling ``write`` what arrived."""

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def do_POST(self):
            length = min(int(self.headers.get("Content-Length") or 0), 1024 * 1024)
            body = self.rfile.read(length)
            header = self.headers.get(SIGNATURE_HEADER, "")
            stamp = dict(p.split("=", 1) for p in header.split(",") if "=" in p).get("t", "")
            fresh = stamp.isdigit() and abs(now() - int(stamp)) <= MAX_AGE_SECONDS
            ok = fresh and verify(secret, header, body)
            try:
                data = json.loads(body)
                event = data.get("event") or data.get("kaizen", {}).get("event", "?")
                incident = (data.get("incident") or data.get("kaizen", {}).get("incident")) or {}
                line = f"{event} #{incident.get('id')} {incident.get('target')}: " + str(
                    incident.get("summary", "")
                )
            except (ValueError, AttributeError):
                line = f"{len(body)} bytes that are not Kaizen's JSON"
            verdict = "signature ok" if ok else ("stale" if not fresh else "BAD signature")
            write(f"{verdict} · {line}")
            self.send_response(204 if ok else 401)
            self.send_header("Content-Length", "0")
            self.end_headers()

    return ThreadingHTTPServer(("127.0.0.1", port), Handler)


class Command(BaseCommand):
    help = "Print the incident webhooks Kaizen sends to 127.0.0.1:PORT, checking signatures."

    def add_arguments(self, parser):
        parser.add_argument("--port", type=int, default=9099)
        parser.add_argument("--secret", required=True, help="The webhook's signing secret.")

    def handle(self, *args, **options):
        server = make_server(options["port"], options["secret"], self.stdout.write)
        self.stdout.write(f"Listening on http://127.0.0.1:{server.server_address[1]}/")
        try:
            server.serve_forever()
        except KeyboardInterrupt:
            pass
        finally:
            server.server_close()
