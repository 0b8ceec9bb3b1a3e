"""Load the demo data once (people, the demo target, one initiative)."""

from django.core.management.base import BaseCommand

from portal.demo import load_demo


class Command(BaseCommand):
    help = "Create the demo people, target and initiative unless they exist."

    def add_arguments(self, parser):
        parser.add_argument("--password", required=True, help="Password of every demo user")
        parser.add_argument(
            "--target-url", default="http://127.0.0.1:8100", help="Base URL of the demo target"
        )

    def handle(self, *args, password, target_url, **options):
        if load_demo(password, target_url):
            self.stdout.write("Demo data loaded.")
        else:
            self.stdout.write("Demo data already present.")
