"""System checks with stable ids for unsafe production settings."""

from django.conf import settings
from django.core.checks import Error, Tags, Warning, register


@register(Tags.security)
def encryption_key_is_usable(app_configs, **kwargs):
    from cryptography.fernet import Fernet

    try:
        Fernet(settings.KAIZEN_ENCRYPTION_KEY.encode())
    except (ValueError, TypeError):
        return [
            Error(
                "KAIZEN_ENCRYPTION_KEY is not a valid Fernet key.",
                hint='Generate one with: python -c "from cryptography.fernet import Fernet; '
                'print(Fernet.generate_key().decode())"',
                id="kaizen.E001",
            )
        ]
    return []


@register(Tags.security, deploy=True)
def production_uses_production_parts(app_configs, **kwargs):
    if not settings.PRODUCTION:
        return []
    found = []
    if settings.DATABASES["default"]["ENGINE"].endswith("sqlite3"):
        found.append(
            Warning(
                "Production runs on SQLite.",
                hint="Set DATABASE_URL=postgres://… for several web and worker machines.",
                id="kaizen.W001",
            )
        )
    if settings.CELERY_BROKER_URL.startswith("filesystem"):
        found.append(
            Warning(
                "Production uses the file-system Celery broker, which only one machine can reach.",
                hint="Set CELERY_BROKER_URL=redis://….",
                id="kaizen.W002",
            )
        )
    if settings.DEBUG:
        found.append(Warning("DEBUG is on in production.", id="kaizen.W003"))
    everything = {"0.0.0.0/0", "::/0"}
    if everything & set(settings.KAIZEN_ALLOWED_TARGET_HOSTS):
        found.append(
            Warning(
                "KAIZEN_ALLOWED_TARGET_HOSTS allows every address: Kaizen's jobs could be pointed "
                "at any host, including internal services.",
                hint="List the networks of your target services only.",
                id="kaizen.W004",
            )
        )
    if everything & set(settings.KAIZEN_ALLOWED_NOTIFY_HOSTS):
        found.append(
            Warning(
                "KAIZEN_ALLOWED_NOTIFY_HOSTS allows every address: a mail relay or webhook "
                "setting could make Kaizen send notifications, and their credentials, anywhere.",
                hint="List your mail relay and webhook receivers only.",
                id="kaizen.W005",
            )
        )
    return found
