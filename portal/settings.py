"""Kaizen's one settings file. Every value comes from the environment.

Defaults serve the embedded run (``./kaizen up``): SQLite and a file-system
Celery broker under ``var/``, secrets generated once and kept there.
``KAIZEN_ENV=production`` turns the defaults strict: secrets and hosts must
be given, and ``manage.py check --deploy`` must come out clean.
``.env.example`` lists every variable.
"""

from __future__ import annotations

from pathlib import Path

from portal.env import (
    database_from_url,
    env_bool,
    env_choice,
    env_int,
    env_list,
    env_secret,
    env_str,
)

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(env_str("KAIZEN_VAR_DIR") or BASE_DIR / "var").resolve()

KAIZEN_ENV = env_choice("KAIZEN_ENV", ("embedded", "production"), "embedded")
PRODUCTION = KAIZEN_ENV == "production"

SECRET_KEY = env_secret("SECRET_KEY", VAR_DIR / "secret_key", required=PRODUCTION)


def _fernet_key() -> str:
    from cryptography.fernet import Fernet

    return Fernet.generate_key().decode()


# Encrypts target credentials (database URLs, API auth headers) at rest.
KAIZEN_ENCRYPTION_KEY = env_secret(
    "KAIZEN_ENCRYPTION_KEY", VAR_DIR / "encryption_key", required=PRODUCTION, generate=_fernet_key
)

DEBUG = env_bool("DEBUG", False)
ALLOWED_HOSTS = env_list(
    "ALLOWED_HOSTS", [] if PRODUCTION else ["localhost", "127.0.0.1", "[::1]", "testserver"]
)
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])

# Hosts (names or networks) Kaizen may connect to for HTTP, database and git;
# "unix:/dir" allows a PostgreSQL socket directory (sockets need such an entry).
KAIZEN_ALLOWED_TARGET_HOSTS = env_list(
    "KAIZEN_ALLOWED_TARGET_HOSTS", ["127.0.0.0/8", "::1", "localhost"]
)
# Notification endpoints (the SMTP relay, webhooks) have their own list, with
# the same rules: checked on the resolved address when connecting, every redirect.
KAIZEN_ALLOWED_NOTIFY_HOSTS = env_list(
    "KAIZEN_ALLOWED_NOTIFY_HOSTS", ["127.0.0.0/8", "::1", "localhost"]
)

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "django_htmx",
    "portal",
    "departments",
    "optimizations",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    # The browser's Accept-Language; portal.middleware.UserLanguageMiddleware
    # then puts the signed-in user's own choice over it.
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.auth.middleware.LoginRequiredMiddleware",
    "portal.middleware.UserTimezoneMiddleware",
    "portal.middleware.UserLanguageMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
]

ROOT_URLCONF = "portal.urls"
WSGI_APPLICATION = "portal.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "portal.context_processors.navigation",
            ],
        },
    },
]

DATABASES = {"default": database_from_url(env_str("DATABASE_URL"), VAR_DIR / "kaizen.sqlite3")}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
AUTHENTICATION_BACKENDS = ["portal.backends.KaizenBackend"]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "dashboard"
LOGOUT_REDIRECT_URL = "login"

# English and Japanese: a user's preference (portal.models.UserPreference),
# else the browser's Accept-Language, else English. The catalogue is
# locale/ja/LC_MESSAGES/django.po; its compiled .mo is committed (portal/i18n.py
# compiles it without GNU gettext: ./kaizen manage compile_translations).
LANGUAGE_CODE = "en"
LANGUAGES = [("en", "English"), ("ja", "日本語")]
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = env_str("TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
STATIC_ROOT = VAR_DIR / "staticfiles"
STATIC_ROOT.mkdir(parents=True, exist_ok=True)  # whitenoise warns about a missing one
STATICFILES_DIRS = [BASE_DIR / "static"]
STATICFILES_FINDERS = [
    "django.contrib.staticfiles.finders.FileSystemFinder",
    "django.contrib.staticfiles.finders.AppDirectoriesFinder",
    "portal.staticfinders.PlotlyFinder",  # plotly.js, from the plotly package itself
]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}

# Mail: files under var/mail in the embedded run; SMTP when EMAIL_HOST is set,
# and always in production (default: a relay on localhost).
_smtp_host = env_str("EMAIL_HOST", "localhost" if PRODUCTION else "")
if _smtp_host:
    MAILERS = {
        "default": {
            # Django's SMTP backend, the relay checked against KAIZEN_ALLOWED_NOTIFY_HOSTS.
            "BACKEND": "portal.mail.GuardedSMTPBackend",
            "OPTIONS": {
                "host": _smtp_host,
                "port": env_int("EMAIL_PORT", 25 if _smtp_host == "localhost" else 587, minimum=1),
                "username": env_str("EMAIL_HOST_USER"),
                "password": env_str("EMAIL_HOST_PASSWORD"),
                "use_tls": env_bool("EMAIL_USE_TLS", _smtp_host != "localhost"),
                "timeout": 10,
            },
        }
    }
else:
    MAILERS = {
        "default": {
            "BACKEND": "django.core.mail.backends.filebased.EmailBackend",
            "OPTIONS": {"file_path": str(VAR_DIR / "mail")},
        }
    }
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "kaizen@localhost")

SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SECURE = env_bool("SESSION_COOKIE_SECURE", PRODUCTION)
CSRF_COOKIE_SECURE = env_bool("CSRF_COOKIE_SECURE", PRODUCTION)
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", PRODUCTION)
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 31536000 if PRODUCTION else 0, minimum=0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = PRODUCTION
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", PRODUCTION)
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
if env_bool("SECURE_PROXY_SSL_HEADER", False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

# --- Celery -----------------------------------------------------------------
# The embedded default is kombu's file-system transport under var/broker: no
# server to install. Production sets CELERY_BROKER_URL=redis://…
CELERY_BROKER_URL = env_str("CELERY_BROKER_URL", "filesystem://localhost/")
BROKER_DIR = VAR_DIR / "broker"
if CELERY_BROKER_URL.startswith("filesystem"):
    # portal/broker.py: messages are renamed into place whole, and a torn or
    # corrupt one is moved to corrupt/ (shown on the status page), never fatal.
    for _folder in ("queue", "processed", "control", "corrupt"):
        (BROKER_DIR / _folder).mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(BROKER_DIR / "queue"),
        "data_folder_out": str(BROKER_DIR / "queue"),
        "processed_folder": str(BROKER_DIR / "processed"),
        "control_folder": str(BROKER_DIR / "control"),
        "corrupt_folder": str(BROKER_DIR / "corrupt"),
        "store_processed": False,
        # The transport polls its folder; the default of 1 s would add up to a
        # second between "queued" and "running".
        "polling_interval": 0.1,
    }
else:
    CELERY_BROKER_TRANSPORT_OPTIONS = {"socket_connect_timeout": 3, "socket_timeout": 5}
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_DEFAULT_QUEUE = "analysis"
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_TIME_LIMIT = env_int("KAIZEN_JOB_TIME_LIMIT", 3 * 3600, minimum=60)
CELERY_TASK_SOFT_TIME_LIMIT = CELERY_TASK_TIME_LIMIT - 30
CELERY_WORKER_SEND_TASK_EVENTS = False
# A broker that is down must not hold a web request for long: fail fast, say so.
CELERY_TASK_PUBLISH_RETRY_POLICY = {
    "max_retries": 2,
    "interval_start": 0,
    "interval_step": 0.2,
    "interval_max": 0.5,
}
KAIZEN_TICK_SECONDS = env_int("KAIZEN_TICK_SECONDS", 10, minimum=1)
KAIZEN_AVAILABILITY_SECONDS = env_int("KAIZEN_AVAILABILITY_SECONDS", 60, minimum=5)
# HR's compliance register is judged this often (a judgement that did not change only
# confirms the stored one, so a short interval costs no rows).
KAIZEN_COMPLIANCE_SECONDS = env_int("KAIZEN_COMPLIANCE_SECONDS", 600, minimum=60)
# Beat's tick (the reaper of lost jobs, due schedules, expiry) and the minute
# availability checks have a queue of their own, served by the maintenance
# worker alone (portal/processes.py): long analysis jobs never hold them up.
# Their time limits are far below a job's, and a message not picked up within
# its period expires (the next one is already on its way).
CELERY_TASK_ROUTES = {
    "optimizations.tasks.tick": {"queue": "maintenance"},
    "optimizations.tasks.check_availability": {"queue": "maintenance"},
    "optimizations.tasks.incident_sweep": {"queue": "maintenance"},
    "optimizations.tasks.observe_minute": {"queue": "maintenance"},
    "departments.tasks.evaluate_compliance": {"queue": "maintenance"},
}
CELERY_TASK_ANNOTATIONS = {
    "optimizations.tasks.tick": {"soft_time_limit": 60, "time_limit": 90},
    "optimizations.tasks.check_availability": {"soft_time_limit": 50, "time_limit": 80},
    "optimizations.tasks.incident_sweep": {"soft_time_limit": 150, "time_limit": 180},
    "optimizations.tasks.observe_minute": {"soft_time_limit": 50, "time_limit": 80},
}
CELERY_BEAT_SCHEDULE = {
    "kaizen-tick": {
        "task": "optimizations.tasks.tick",
        "schedule": KAIZEN_TICK_SECONDS,
        "options": {"expires": max(3 * KAIZEN_TICK_SECONDS, 30)},
    },
    "kaizen-availability": {
        "task": "optimizations.tasks.check_availability",
        "schedule": KAIZEN_AVAILABILITY_SECONDS,
        "options": {"expires": KAIZEN_AVAILABILITY_SECONDS},
    },
    # Unacknowledged incidents escalate; webhook deliveries are tried and retried.
    "kaizen-incidents": {
        "task": "optimizations.tasks.incident_sweep",
        "schedule": KAIZEN_TICK_SECONDS,
        "options": {"expires": max(3 * KAIZEN_TICK_SECONDS, 30)},
    },
    # Prometheus read into Measurements, then the burn-rate rules judged (optimizations.observe).
    "kaizen-observe": {
        "task": "optimizations.tasks.observe_minute",
        "schedule": KAIZEN_AVAILABILITY_SECONDS,
        "options": {"expires": KAIZEN_AVAILABILITY_SECONDS},
    },
    "kaizen-purge": {"task": "optimizations.tasks.purge_old_data", "schedule": 24 * 3600},
    # Overdue training, recertification, late joiners of assigned departments.
    "kaizen-training": {"task": "departments.tasks.refresh_training_states", "schedule": 3600},
    # A missing standard runbook is a finding for HR (new targets included).
    "kaizen-runbook-coverage": {
        "task": "departments.tasks.refresh_runbook_findings",
        "schedule": 3600,
    },
    # HR's compliance register: every control judged, reminders of due attestations.
    "kaizen-compliance": {
        "task": "departments.tasks.evaluate_compliance",
        "schedule": KAIZEN_COMPLIANCE_SECONDS,
        "options": {"queue": "maintenance", "expires": KAIZEN_COMPLIANCE_SECONDS},
    },
}
# Incidents (optimizations.observe): an open incident nobody acknowledged for this many
# minutes goes to its department's managers; between these local hours ("22-7", empty
# for none) only critical alerts are emailed and sent to webhooks (the inbox always).
KAIZEN_INCIDENT_ESCALATE_MINUTES = env_int("KAIZEN_INCIDENT_ESCALATE_MINUTES", 15, minimum=1)
KAIZEN_ALERT_QUIET_HOURS = env_str("KAIZEN_ALERT_QUIET_HOURS", "")
# A running job whose heartbeat is older than this lost its worker.
KAIZEN_LOST_AFTER = env_int("KAIZEN_LOST_AFTER", 60, minimum=2)
# A queued job no worker claimed for this long while nothing of its queue runs
# lost its broker message (a broker restart): the sweeper sends it again,
# waiting twice as long after each send. Claims are conditional, so a
# duplicate runs once.
KAIZEN_RESEND_AFTER = env_int("KAIZEN_RESEND_AFTER", 120, minimum=10)
# Before a job that loads a target (optimizations/jobs/lease.py): its health check
# must answer, and within this factor of its latency before the previous such
# job, waiting at most this many seconds.
KAIZEN_COOLDOWN_FACTOR = 2.0
KAIZEN_COOLDOWN_MAX_SECONDS = env_int("KAIZEN_COOLDOWN_MAX_SECONDS", 120, minimum=0)
# A probe waits at most this long for another job's load on its target to end.
KAIZEN_PROBE_WAIT_MAX_SECONDS = env_int("KAIZEN_PROBE_WAIT_MAX_SECONDS", 900, minimum=0)
# Distributed load tests (optimizations/jobs/generators.py): production keeps one load
# generator per worker host (two on one host measure each other); a test machine or the
# benchmark may let several share one. A generator not connected within READY seconds is
# named and the test is incomplete; one silent for LOST seconds is named as lost.
KAIZEN_GENERATORS_SHARE_HOST = env_bool("KAIZEN_GENERATORS_SHARE_HOST", False)
KAIZEN_GENERATOR_READY_SECONDS = env_int("KAIZEN_GENERATOR_READY_SECONDS", 30, minimum=2)
KAIZEN_GENERATOR_LOST_SECONDS = env_int("KAIZEN_GENERATOR_LOST_SECONDS", 5, minimum=2)
# The machine a benchmark worker runs on, for the one-generator-per-host rule: a
# container's own hostname by default; containers sharing one machine set its name.
KAIZEN_GENERATOR_HOST = env_str("KAIZEN_GENERATOR_HOST", "")
# Job logs and per-second samples older than this many days are purged.
KAIZEN_RETENTION_DAYS = env_int("KAIZEN_RETENTION_DAYS", 90, minimum=1)
# Traces a target sends over OTLP (optimizations/targets/traces.py) are kept this many
# days; the runtime N+1 findings made from them stay.
KAIZEN_TRACE_RETENTION_DAYS = env_int("KAIZEN_TRACE_RETENTION_DAYS", 7, minimum=1)
# Kaizen's own /metrics (portal.metrics) answers only a request bearing this token; empty: off.
KAIZEN_METRICS_TOKEN = env_str("KAIZEN_METRICS_TOKEN", "")
# Starting jobs (optimizations/jobs/limits.py): runs a user, and runs on one target,
# may start per minute; jobs queued and not yet started, per user and per
# target. Beyond them a start is refused (the API answers 429 with Retry-After).
# Waiting jobs and schedules do not count.
KAIZEN_JOB_START_RATE = env_int("KAIZEN_JOB_START_RATE", 20, minimum=1)
KAIZEN_TARGET_START_RATE = env_int("KAIZEN_TARGET_START_RATE", 30, minimum=1)
KAIZEN_JOB_QUEUE_MAX = env_int("KAIZEN_JOB_QUEUE_MAX", 30, minimum=1)
KAIZEN_TARGET_QUEUE_MAX = env_int("KAIZEN_TARGET_QUEUE_MAX", 30, minimum=1)
CELERY_TIMEZONE = TIME_ZONE
CELERY_ENABLE_UTC = True

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO").upper()},
    "loggers": {"django.db.backends": {"level": "INFO"}},
}
