"""Settings, read from the environment (django-environ; a `.env` file is optional).

The variable names are a contract (DESIGN.md section 10); README.md lists each
one with its default. With no variable set, the project runs on embedded
defaults: SQLite, a local-memory cache and Celery on kombu's filesystem broker.
"""

from datetime import timedelta
from email.utils import formataddr
from pathlib import Path

import environ

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = BASE_DIR / "var"

env = environ.Env()
if (BASE_DIR / ".env").is_file():
    environ.Env.read_env(BASE_DIR / ".env")

# --- Core ---------------------------------------------------------------------

DEBUG = env.bool("DJANGO_DEBUG", default=False)
# Demo mode (`python3 scripts/dev.py run` sets it, with DJANGO_DEBUG=false): the site as a buyer sees it
# in production (the styled error pages, static files from whitenoise), on the embedded development
# defaults (SQLite, the development secret key, local hosts, the mock gateway, console e-mail), which the
# production checks (core/checks.py, payments/checks.py) then allow, over plain HTTP. Never in production.
DEMO = env.bool("DJANGO_DEMO", default=False)
SECRET_KEY = env(
    "DJANGO_SECRET_KEY",
    default="django-insecure-development-key-set-DJANGO_SECRET_KEY-in-production",
)
ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]"])
CSRF_TRUSTED_ORIGINS = env.list("DJANGO_CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "rest_framework",
    "knox",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "axes",
    "csp",
    "core.apps.CoreConfig",
    "events",
    "bookings",
    "payments",
    "backoffice",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    # Content-Security-Policy (django-csp) on every response but static files: core/csp.py.
    "core.csp.CSPMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Last: turns a login that django-axes refused into the lockout page.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "ticketing.urls"
WSGI_APPLICATION = "ticketing.wsgi.application"

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
            ],
        },
    },
]

# --- Database -----------------------------------------------------------------

DATABASES = {
    "default": env.db("DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}"),
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # IMMEDIATE takes SQLite's write lock at BEGIN, so two transactions can never
    # both read the same counters and then both write them: holds stay correct
    # without SELECT ... FOR UPDATE, which SQLite ignores.
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {
            "transaction_mode": "IMMEDIATE",
            "timeout": 20,
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        }
    )
else:
    if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
        # Django's backend, with a transaction's BEGIN sent with its first statement (one round
        # trip less per transaction) and a health check that polls the socket instead of
        # querying: core/postgresql/base.py.
        DATABASES["default"]["ENGINE"] = "core.postgresql"
    DATABASES["default"]["CONN_MAX_AGE"] = env.int("DATABASE_CONN_MAX_AGE", default=60)
    # A kept connection is checked before each request's first query, so a connection the database
    # dropped is replaced instead of failing a request: core.postgresql polls its socket and
    # sends Django's trivial query only when the server has sent something (no round trip
    # otherwise); off, each worker fails one request after a database restart.
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = env.bool("DATABASE_CONN_HEALTH_CHECKS", default=True)

# The hot path's statements (a reservation's) are prepared once per connection on PostgreSQL and
# then only EXECUTEd, so the server parses and plans them once instead of on every request
# (core/db/server_prepared.py). Off for a connection pooler that does not keep sessions (PgBouncer in
# transaction mode), where a statement prepared on one server connection is unknown on the next.
DATABASE_PREPARED_STATEMENTS = env.bool("DATABASE_PREPARED_STATEMENTS", default=True)

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# How long a transaction that locks scarce rows waits for a lock before the
# request is answered with `Busy` ("very busy, try again") instead of hanging.
LOCK_TIMEOUT_MS = env.int("LOCK_TIMEOUT_MS", default=3000)

# --- Cache --------------------------------------------------------------------

REDIS_URL = env("REDIS_URL", default="")
if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "django_redis.cache.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": "ticketing",
            "OPTIONS": {"CLIENT_CLASS": "django_redis.client.DefaultClient"},
        }
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

# How long the event page's live availability fragment is served from the cache.
AVAILABILITY_CACHE_SECONDS = 2

# --- Auth ---------------------------------------------------------------------

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
# The buyer site's account pages (templates/registration/); the admin keeps its own login.
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "bookings:mine"
LOGOUT_REDIRECT_URL = "events:list"
# A refused CSRF check renders the site's page instead of Django's plain one.
CSRF_FAILURE_VIEW = "core.site.csrf_failure"

# Brute-force protection (django-axes): once one username has failed to log in
# AXES_FAILURE_LIMIT times from one IP address (failures count while each
# follows the last within AXES_COOLOFF_TIME), that pair is refused until
# AXES_COOLOFF_TIME passes without a further attempt. Unknown and known
# usernames are counted alike and get the same page, so a lockout tells
# nothing about which accounts exist. Every login that authenticates with the
# request is covered: the admin, the site and the API token endpoint. Unlock
# early with `manage.py axes_reset_username <name>`. The IP is the one every
# door uses (core/client_ip.py, TRUSTED_PROXY_COUNT below).
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AXES_FAILURE_LIMIT = 5
AXES_COOLOFF_TIME = timedelta(minutes=15)
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_TEMPLATE = "admin/lockout.html"
AXES_VERBOSE = False  # no banner on every start; lockouts are still logged
AXES_CLIENT_IP_CALLABLE = "core.client_ip.client_ip"

# How many reverse proxies stand in front of the application, each appending the address it
# received the request from to X-Forwarded-For. 0: the header is ignored and the client is the
# socket peer (REMOTE_ADDR); N: the N-th address from the right. Throttles, idempotency scopes, the
# login lockout and the payment limits all read the client address through
# core.client_ip.client_ip; DRF's NUM_PROXIES is the same number. Set it to exactly the number
# of proxies: more lets a client choose its address, fewer makes clients share one.
TRUSTED_PROXY_COUNT = env.int("TRUSTED_PROXY_COUNT", default=0)

# --- I18n ---------------------------------------------------------------------

LANGUAGE_CODE = "en"
# The languages the site is written in. Django's default list (about 100) would switch its own
# strings (admin, form errors) to a visitor's language around untranslated pages, and makes every
# request scan it twice: LocaleMiddleware asks whether the first segment of the path ("api", ...)
# is a language, and a refusal is not cached.
LANGUAGES = [("en", "English")]
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True
LOCALE_PATHS = [BASE_DIR / "locale"]

# --- Static files (whitenoise, no CDN) ----------------------------------------

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": (
            "django.contrib.staticfiles.storage.StaticFilesStorage"
            if DEBUG
            else "whitenoise.storage.CompressedManifestStaticFilesStorage"
        )
    },
}

# --- E-mail -------------------------------------------------------------------

EMAIL_CONFIG = env.email_url("EMAIL_URL", default="consolemail://")
vars().update(EMAIL_CONFIG)
# With DJANGO_DEBUG off the app refuses to start on console e-mail (which sends buyers nothing)
# unless this says it is meant (a demo): core/checks.py.
EMAIL_ALLOW_CONSOLE = env.bool("EMAIL_ALLOW_CONSOLE", default=False)
# Every e-mail (confirmations, refunds, password resets) comes from "Ticketing <tickets@localhost>":
# the sender name DEFAULT_FROM_NAME (empty: the bare address) and the address DEFAULT_FROM_EMAIL
# (an address that already carries a name keeps it).
DEFAULT_FROM_NAME = env("DEFAULT_FROM_NAME", default="Ticketing")
DEFAULT_FROM_EMAIL = env("DEFAULT_FROM_EMAIL", default="tickets@localhost")
if DEFAULT_FROM_NAME and "<" not in DEFAULT_FROM_EMAIL:
    DEFAULT_FROM_EMAIL = formataddr((DEFAULT_FROM_NAME, DEFAULT_FROM_EMAIL))

# --- Security (on whenever DEBUG and DEMO are off; DJANGO_SECURE=false for plain HTTP) ---

SECURE = env.bool("DJANGO_SECURE", default=not (DEBUG or DEMO))
SESSION_COOKIE_SECURE = SECURE
CSRF_COOKIE_SECURE = SECURE
SECURE_SSL_REDIRECT = SECURE
SECURE_HSTS_SECONDS = 60 * 60 * 24 * 365 if SECURE else 0
SECURE_HSTS_INCLUDE_SUBDOMAINS = SECURE
SECURE_HSTS_PRELOAD = SECURE
# Behind a reverse proxy that terminates HTTPS and sets X-Forwarded-Proto: only then is that
# header believed (anyone could send it to a server reached directly).
SECURE_PROXY_SSL_HEADER = (
    ("HTTP_X_FORWARDED_PROTO", "https") if env.bool("DJANGO_SECURE_PROXY_SSL_HEADER", default=False) else None
)
SECURE_REDIRECT_EXEMPT = [r"^healthz$"]
X_FRAME_OPTIONS = "DENY"
# Content-Security-Policy: pages load scripts, styles, images and fonts only from this site (static
# files; no inline scripts or styles), are never framed, and post forms only here. The API docs pages
# widen it for what Swagger UI and Redoc need (ticketing/urls.py).
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "base-uri": ["'self'"],
        "object-src": ["'none'"],
        "frame-ancestors": ["'none'"],
        "form-action": ["'self'"],
    },
}

# --- Domain -------------------------------------------------------------------

BOOKING_HOLD_MINUTES = env.int("BOOKING_HOLD_MINUTES", default=15)
# Bounded work per request: no booking holds more tickets, or more ticket types, than this,
# whatever the ticket types allow; every door refuses more before anything is built.
BOOKING_MAX_TICKETS = env.int("BOOKING_MAX_TICKETS", default=100)
BOOKING_MAX_ITEMS = env.int("BOOKING_MAX_ITEMS", default=20)
# Hoarding limits, per event, enforced by `booking_reserve` under its locks; an event may override
# each (Event.max_holds_per_buyer, ...; empty: these). 0 turns a limit off. A buyer is the account,
# or the e-mail address (case-insensitive) of a guest; an active hold is a `reserved` booking not
# yet past its deadline; tickets count while held or issued (reserved, processing, confirmed).
BOOKING_MAX_HOLDS_PER_BUYER = env.int("BOOKING_MAX_HOLDS_PER_BUYER", default=3)
BOOKING_MAX_HOLDS_PER_IP = env.int("BOOKING_MAX_HOLDS_PER_IP", default=20)
BOOKING_MAX_TICKETS_PER_BUYER = env.int("BOOKING_MAX_TICKETS_PER_BUYER", default=20)
# How many expired holds one `holds_expire` transaction releases.
HOLDS_EXPIRE_BATCH = env.int("HOLDS_EXPIRE_BATCH", default=100)
# A guest's booking link (`?token=`, site and API) works until this many days after the event
# ended: long enough to fetch a receipt or follow a late refund, short enough that a forwarded
# e-mail or an old browser history stops showing the buyer's name, e-mail and payment for ever.
# The buyer's account keeps its access.
GUEST_LINK_VALID_DAYS_AFTER_EVENT = env.int("GUEST_LINK_VALID_DAYS_AFTER_EVENT", default=30)

# --- Payments -------------------------------------------------------------------

# Dotted path of the gateway class (payments/gateway.py defines the interface).
PAYMENT_GATEWAY = env("PAYMENT_GATEWAY", default="payments.mock_gateway.MockGateway")
# With DJANGO_DEBUG off the app refuses to start on the mock gateway (which takes no money)
# unless this says it is meant (a demo): payments/checks.py.
PAYMENT_GATEWAY_ALLOW_MOCK = env.bool("PAYMENT_GATEWAY_ALLOW_MOCK", default=False)
# The mock gateway's processing delay for the slow-capture test card.
PAYMENT_CAPTURE_DELAY_SECONDS = env.int("PAYMENT_CAPTURE_DELAY_SECONDS", default=5)
# Captures and refunds still not done after this long are queued again by
# `payments_reconcile`.
PAYMENT_STUCK_AFTER_SECONDS = env.int("PAYMENT_STUCK_AFTER_SECONDS", default=120)
# Card testing: a booking's hold is released after this many declined payments (0: no limit), and a
# client address (core/client_ip.py) with this many declines in the current clock hour is refused
# before the gateway is called (0: no limit).
PAYMENT_DECLINES_PER_BOOKING = env.int("PAYMENT_DECLINES_PER_BOOKING", default=5)
PAYMENT_DECLINES_PER_IP_PER_HOUR = env.int("PAYMENT_DECLINES_PER_IP_PER_HOUR", default=20)
# Buyers may ask for a refund until this long before the event starts.
REFUND_CUTOFF_HOURS = env.int("REFUND_CUTOFF_HOURS", default=0)
SITE_URL = env("SITE_URL", default="http://127.0.0.1:8000")

# --- Celery -------------------------------------------------------------------

CELERY_BROKER_URL = env("CELERY_BROKER_URL", default=REDIS_URL or "filesystem://")
CELERY_TASK_ALWAYS_EAGER = env.bool("CELERY_TASK_ALWAYS_EAGER", default=False)
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_TIME_LIMIT = 120
CELERY_TASK_SOFT_TIME_LIMIT = 90
CELERY_TASK_DEFAULT_QUEUE = "default"
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BEAT_SCHEDULE_FILENAME = str(VAR_DIR / "celerybeat-schedule")
# Three queues, all declared, so a plain `celery -A ticketing worker` consumes
# every one; a slow mail server never delays captures on `payments`.
CELERY_TASK_QUEUES = {
    "default": {"exchange": "default", "routing_key": "default"},
    "payments": {"exchange": "payments", "routing_key": "payments"},
    "mail": {"exchange": "mail", "routing_key": "mail"},
}
CELERY_TASK_ROUTES = {
    "payments.tasks.payment_*": {"queue": "payments"},
    "payments.tasks.refund_*": {"queue": "payments"},
    "*.send_*": {"queue": "mail"},
}
CELERY_BEAT_SCHEDULE = {
    "holds-expire": {
        "task": "bookings.tasks.holds_expire_task",
        "schedule": timedelta(seconds=30),
        "options": {"expires": 25},
    },
    "api-tokens-purge": {
        "task": "core.tasks.api_tokens_purge_task",
        "schedule": timedelta(hours=1),
        "options": {"expires": 3000},
    },
    "idempotency-keys-purge": {
        "task": "core.tasks.idempotency_keys_purge_task",
        "schedule": timedelta(hours=1),
        "options": {"expires": 3000},
    },
    "payments-reconcile": {
        "task": "payments.tasks.payments_reconcile_task",
        "schedule": timedelta(minutes=2),
        "options": {"expires": 110},
    },
}
if CELERY_BROKER_URL.startswith("filesystem://"):
    # A broker that needs no server: messages are files under var/celery/.
    _broker_dir = VAR_DIR / "celery" / "broker"
    _processed_dir = VAR_DIR / "celery" / "processed"
    _control_dir = VAR_DIR / "celery" / "control"
    for _d in (_broker_dir, _processed_dir, _control_dir):
        _d.mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_broker_dir),
        "data_folder_out": str(_broker_dir),
        "processed_folder": str(_processed_dir),
        "control_folder": str(_control_dir),
        "store_processed": False,
        # The transport polls its folders; the default (1 s per message and
        # queue) would make a capture wait behind every queued e-mail.
        "polling_interval": 0.1,
    }
else:
    # A task not acknowledged within this time is delivered again to another
    # worker: it must exceed the longest task and the longest retry countdown.
    # Celery reads it from the broker's and the result backend's transport
    # options; both get the same value.
    VISIBILITY_TIMEOUT = env.int("CELERY_VISIBILITY_TIMEOUT", default=3600)
    CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": VISIBILITY_TIMEOUT}
    CELERY_RESULT_BACKEND_TRANSPORT_OPTIONS = {"visibility_timeout": VISIBILITY_TIMEOUT}

# --- REST framework -----------------------------------------------------------

def _throttle_rates(value: str) -> dict[str, str] | None:
    """`anon=60/min,user=600/min,...` -> {scope: rate}; `off` -> None (no throttling)."""
    if value.strip().lower() == "off":
        return None
    rates = dict(DEFAULT_THROTTLE_RATES)
    for part in filter(None, (p.strip() for p in value.split(","))):
        scope, _, rate = part.partition("=")
        rates[scope.strip()] = rate.strip()
    return rates


# Per caller: `anon` (by IP) and `user`; `ip` caps every caller by address;
# `bookings` (reserve, cancel) and `pay` (pay, refund) are tighter; `login` (the token
# endpoint, by address, whatever the username) the tightest.
DEFAULT_THROTTLE_RATES = {
    "anon": "120/min", "user": "1200/min", "ip": "2400/min", "bookings": "60/min", "pay": "20/min",
    "login": "10/min",
}
API_THROTTLE_RATES = _throttle_rates(env("API_THROTTLE_RATES", default=""))

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "core.api.CachedTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticatedOrReadOnly"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["core.api.JSONParser"],
    "DEFAULT_PAGINATION_CLASS": "core.api.Pagination",
    "PAGE_SIZE": 50,
    "EXCEPTION_HANDLER": "core.api.exception_handler",
    "DEFAULT_SCHEMA_CLASS": "core.api_schema.AutoSchema",
    "DEFAULT_THROTTLE_CLASSES": (
        ["core.api.IPRateThrottle", "core.api.AnonRateThrottle", "core.api.UserRateThrottle"]
        if API_THROTTLE_RATES is not None else []
    ),
    "DEFAULT_THROTTLE_RATES": API_THROTTLE_RATES or {},
    # The project's throttles read core.client_ip; DRF's own get_ident agrees with it.
    "NUM_PROXIES": TRUSTED_PROXY_COUNT,
    "COERCE_DECIMAL_TO_STRING": True,
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Ticketing API",
    "DESCRIPTION": "Catalogue, availability, bookings, payments and refunds; see README.md for a quick start.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    # OpenAPI links from each create to the reads and actions on what it created (core/api_schema.py).
    "POSTPROCESSING_HOOKS": ["drf_spectacular.hooks.postprocess_schema_enums", "core.api_schema.add_links"],
    # Docstrings of the API plumbing describe the implementation: never descriptions in the schema.
    "GET_LIB_DOC_EXCLUDES": "core.api_schema.doc_excludes",
    "ENUM_NAME_OVERRIDES": {
        "EventStatusEnum": "events.models.Event.Status",
        "BookingStatusEnum": "bookings.models.Booking.Status",
        "TicketStatusEnum": "bookings.models.Ticket.Status",
        "PaymentStatusEnum": "payments.models.Payment.Status",
        "RefundStatusEnum": "payments.models.Refund.Status",
    },
}
# API tokens (django-rest-knox, core/tokens.py): `POST /api/v1/auth/token/` issues a new
# token per login; only a digest of it is stored. Tokens expire API_TOKEN_TTL_HOURS after
# they were issued (unset: never); a user keeps the newest API_TOKEN_LIMIT_PER_USER of them
# (older ones are revoked); changing or resetting the password revokes all of them.
API_TOKEN_TTL_HOURS = env.int("API_TOKEN_TTL_HOURS", default=None)
API_TOKEN_LIMIT_PER_USER = env.int("API_TOKEN_LIMIT_PER_USER", default=25)
REST_KNOX = {
    "AUTH_HEADER_PREFIX": "Token",
    "TOKEN_TTL": timedelta(hours=API_TOKEN_TTL_HOURS) if API_TOKEN_TTL_HOURS else None,
    "AUTO_REFRESH": False,
}
# How long an Idempotency-Key and its response are kept.
IDEMPOTENCY_KEY_TTL_HOURS = 24

# --- Logging ------------------------------------------------------------------

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "filters": {"not_a_conflict": {"()": "core.logs.NotAConflict"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env("LOG_LEVEL", default="INFO")},
    # django-axes logs every login at INFO; lockouts are WARNING. A 409 is no warning (core/logs.py).
    "loggers": {"django.db.backends": {"level": "INFO"}, "axes": {"level": "WARNING"},
                "django.request": {"filters": ["not_a_conflict"]}},
}
