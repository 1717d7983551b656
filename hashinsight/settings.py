"""HashInsight settings, read from the environment (one reader: django-environ).

Embedded mode (no environment): SQLite under var/, in-process cache, secrets generated into var/.
Production (HASHINSIGHT_ENV=production): every secret and service must come from the environment,
and unsafe fallbacks raise ImproperlyConfigured instead of silently degrading.
"""

from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import environ
from django.core.exceptions import ImproperlyConfigured
from django.utils.translation import gettext_lazy as _

from hashinsight.security.bootstrap import load_or_create_secret

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(environ.Env().str("HASHINSIGHT_VAR_DIR", default=str(BASE_DIR / "var")))

env = environ.Env()
ENVIRONMENT = env.str("HASHINSIGHT_ENV", default="embedded")
if ENVIRONMENT not in {"embedded", "production", "test"}:
    raise ImproperlyConfigured(f"HASHINSIGHT_ENV must be embedded, production or test, not {ENVIRONMENT!r}")
PRODUCTION = ENVIRONMENT == "production"


def _required_in_production(name: str, *, generated_file: str) -> str:
    value = env.str(name, default="")
    if value:
        return value
    if PRODUCTION:
        raise ImproperlyConfigured(f"{name} must be set in production")
    return load_or_create_secret(VAR_DIR / generated_file, kind=name)


SECRET_KEY = _required_in_production("SECRET_KEY", generated_file="secret_key")
# Master key of the envelope encryption (a Fernet key); see hashinsight/security/crypto.py.
FIELD_ENCRYPTION_KEY = _required_in_production("FIELD_ENCRYPTION_KEY", generated_file="field_encryption_key")
# Retired master keys stay readable during a rotation: comma-separated Fernet keys.
FIELD_ENCRYPTION_OLD_KEYS = env.str("FIELD_ENCRYPTION_OLD_KEYS", default="")

DEBUG = env.bool("DJANGO_DEBUG", default=False)
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=[] if PRODUCTION else ["127.0.0.1", "localhost", "testserver"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])
CORS_ALLOWED_ORIGINS = env.list("CORS_ALLOWED_ORIGINS", default=[])  # django-cors-headers
CORS_URLS_REGEX = r"^/api/.*$"
if PRODUCTION and not ALLOWED_HOSTS:
    raise ImproperlyConfigured("ALLOWED_HOSTS must be set in production")
if PRODUCTION:
    # The container's own probes (compose healthcheck, a scraper on the host) call 127.0.0.1 or
    # localhost; those names cannot be used to poison links sent to users, so they are always allowed.
    ALLOWED_HOSTS = [*ALLOWED_HOSTS, "localhost", "127.0.0.1"]

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "corsheaders",
    "rest_framework",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",  # Swagger UI and ReDoc as local static files (no CDN)
    "csp",
    "guardian",
    "axes",
    "hashinsight.core",
    "hashinsight.accounts",
    "hashinsight.security",
    "hashinsight.events",
    "hashinsight.observability",
    "hashinsight.portal",
    "hashinsight.demo",
    "django_celery_beat",
    "channels",
    "sites",
    "miners",
    "telemetry",
    "commands",
    "intelligence",
    "hashinsight.billing",
    "hashinsight.reports",
]

MIDDLEWARE = [
    "hashinsight.observability.middleware.RequestIdMiddleware",
    # Database down: 503 with Retry-After, pages and API alike (hashinsight/observability/unavailable.py).
    "hashinsight.observability.unavailable.DatabaseUnavailableMiddleware",
    "hashinsight.observability.metrics.MetricsMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "csp.middleware.CSPMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "corsheaders.middleware.CorsMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Last, as django-axes requires, so it sees the outcome of authentication.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "hashinsight.urls"
ASGI_APPLICATION = "hashinsight.asgi.application"
WSGI_APPLICATION = "hashinsight.wsgi.application"

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
                "django.template.context_processors.i18n",
                "hashinsight.accounts.context_processors.access",
            ],
        },
    },
]

# --- Stores -------------------------------------------------------------------------------------
DATABASE_URL = env.str("DATABASE_URL", default="")
if DATABASE_URL:
    DATABASES = {"default": env.db_url_config(DATABASE_URL)}
    if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
        # Connections are bounded per process (docs/DECISIONS.md, docs/BENCHMARKS.md): persistent
        # ones (CONN_MAX_AGE > 0) pile up under ASGI, where each request runs in a thread of its own
        # that leaves its connection behind. Production uses psycopg's pool (DB_POOL_MAX_SIZE per
        # process, 0 for none); elsewhere a connection lives for one request or task.
        DATABASES["default"]["CONN_HEALTH_CHECKS"] = True  # with the pool: checked at checkout
        pool_size = env.int("DB_POOL_MAX_SIZE", default=10 if PRODUCTION else 0)
        if pool_size > 0:
            DATABASES["default"]["CONN_MAX_AGE"] = 0  # the pool, not Django, keeps connections open
            DATABASES["default"].setdefault("OPTIONS", {})["pool"] = {
                "min_size": 1,
                "max_size": pool_size,
                "timeout": env.float("DB_POOL_TIMEOUT_S", default=5.0),  # then OperationalError: a 503
            }
        else:
            DATABASES["default"]["CONN_MAX_AGE"] = env.int("DB_CONN_MAX_AGE", default=0)
elif PRODUCTION:
    raise ImproperlyConfigured("DATABASE_URL must be set in production")
else:
    VAR_DIR.mkdir(parents=True, exist_ok=True)
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": env.str("SQLITE_PATH", default=str(VAR_DIR / "hashinsight.sqlite3")),
            # WAL lets readers run beside the single writer; IMMEDIATE takes the write lock at BEGIN
            # so two writers queue instead of failing with "database is locked" mid-transaction.
            "OPTIONS": {
                "transaction_mode": "IMMEDIATE",
                "timeout": 20,
                "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
            },
        }
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REDIS_URL = env.str("REDIS_URL", default="")
if PRODUCTION and not REDIS_URL:
    raise ImproperlyConfigured("REDIS_URL must be set in production")


def _redis_db(url: str, offset: int) -> str:
    """The same server, database number + offset: broker, cache and channel layer never share a
    keyspace, so clearing the cache (FLUSHDB) can never drop queued or unacknowledged tasks."""
    parsed = urlsplit(url)
    base = int(parsed.path.strip("/") or 0)
    return urlunsplit(parsed._replace(path=f"/{base + offset}"))


if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": env.str("CACHE_URL", default=_redis_db(REDIS_URL, 1)),
            "KEY_PREFIX": "hi",
            "OPTIONS": {"socket_connect_timeout": 0.5, "socket_timeout": 0.5},
        }
    }
    CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default=REDIS_URL)
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {
                "hosts": [
                    {
                        "address": env.str("CHANNEL_LAYER_URL", default=_redis_db(REDIS_URL, 2)),
                        # redis-py's async pool fails (not waits) past its size; a burst of
                        # reconnecting browsers must not turn into HTTP 500s.
                        "max_connections": env.int("CHANNEL_LAYER_MAX_CONNECTIONS", default=4000),
                        # redis-py 8 reads with a 5 s timeout by default, exactly channels_redis'
                        # 5 s blocking pop: the race kills the layer's receive loop. Read longer.
                        "socket_timeout": 15,
                    }
                ],
                # Messages waiting per web process (channels_redis keeps one queue per process, not
                # per socket), beyond which group sends are dropped. The default 100 dropped whole
                # alert batches during a 2,000 alerts/s burst (bench/alert_fanout.py); messages still
                # expire after 60 s.
                "capacity": env.int("CHANNEL_LAYER_CAPACITY", default=1000),
            },
        }
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "hashinsight"}}
    # Embedded mode runs worker and beat inside the web process (manage.py run_embedded), so an
    # in-process broker is enough; the outbox relay re-sends anything lost when the process stops.
    # A host name, though the memory transport ignores it: without one kombu warns at every start.
    CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default="memory://localhost/")
    CHANNEL_LAYERS = {"default": {"BACKEND": "hashinsight.core.channel_layer.ThreadSafeInMemoryChannelLayer"}}

# --- Jobs: Celery and beat -----------------------------------------------------------------------
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True  # every task is idempotent (outbox receipts, coalesced work)
CELERY_TASK_REJECT_ON_WORKER_LOST = True  # a killed worker's task goes back to the queue
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SOFT_TIME_LIMIT = env.int("CELERY_TASK_SOFT_TIME_LIMIT", default=120)
CELERY_TASK_TIME_LIMIT = env.int("CELERY_TASK_TIME_LIMIT", default=180)
CELERY_TASK_DEFAULT_QUEUE = "default"
CELERY_TASK_ROUTES = {
    "telemetry.*": {"queue": "telemetry"},
    "intelligence.*": {"queue": "intelligence"},
    # Follow-up recalculations must never queue ahead of event hand-offs.
    "events.run_coalesced": {"queue": "intelligence"},
    "core.rebuild_cache": {"queue": "intelligence"},
    # Periodic upkeep has a queue (and a worker slot) of its own, so a backlog of events cannot
    # delay the relay or the heartbeat (hashinsight/events/schedules.py names the same queue).
    **{
        task: {"queue": "housekeeping"}
        for task in ("events.relay", "events.prune", "observability.worker_heartbeat", "core.warm_caches")
    },
    "telemetry.retention": {"queue": "housekeeping"},  # an exact name wins over "telemetry.*"
    "commands.expire": {"queue": "housekeeping"},
    "commands.verify": {"queue": "telemetry"},  # beside ingest's own work, like the rollups
    # Billing upkeep is light; the month's invoicing and report rendering are batch work, beside the intelligence jobs.
    "billing.*": {"queue": "housekeeping"},
    "billing.build_monthly_invoices": {"queue": "intelligence"},
    "reports.run_schedules": {"queue": "housekeeping"},
    "reports.*": {"queue": "intelligence"},
}
# Worker liveness: every worker process writes its heartbeat this often from a thread of its own
# (busy or not); the relay re-sends events held by a worker silent for 3 periods.
WORKER_HEARTBEAT_S = env.float("WORKER_HEARTBEAT_S", default=5.0)
# Longer than any countdown we schedule (retries back off to at most OUTBOX_RETRY_CAP_S), so Redis
# never redelivers a waiting message early.
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 2 * 60 * 60}
CELERY_WORKER_SEND_TASK_EVENTS = False
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BROKER_CONNECTION_TIMEOUT = 2
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
CELERY_TIMEZONE = "UTC"

# --- Outbox -------------------------------------------------------------------------------------
OUTBOX_MAX_ATTEMPTS = env.int("OUTBOX_MAX_ATTEMPTS", default=6)
OUTBOX_RETRY_BASE_S = env.float("OUTBOX_RETRY_BASE_S", default=2.0)
OUTBOX_RETRY_CAP_S = env.float("OUTBOX_RETRY_CAP_S", default=600.0)
# A pending row younger than this is left to its on-commit hand-off; older ones the relay sends.
OUTBOX_RELAY_GRACE_S = env.float("OUTBOX_RELAY_GRACE_S", default=5.0)
# A dispatched row not finished after this long is sent again (its worker died or the message was lost).
# Embedded mode's in-memory broker loses whatever another process (a management command) dispatched,
# so there the relay re-sends sooner.
OUTBOX_DISPATCH_TIMEOUT_S = env.float("OUTBOX_DISPATCH_TIMEOUT_S", default=300.0 if REDIS_URL else 15.0)
COALESCE_WINDOW_S = env.float("COALESCE_WINDOW_S", default=2.0)
# How far the relay's sweep pushes back a coalesced request it re-sends (its message may be only
# waiting in a slow queue): at most one extra message per key per this many seconds.
COALESCE_RESCHEDULE_S = env.float("COALESCE_RESCHEDULE_S", default=60.0)
OUTBOX_QUEUE = env.str("OUTBOX_QUEUE", default="default")
# Extra modules imported at start-up to register event handlers (plugins, test support).
EVENT_HANDLER_MODULES = env.list("EVENT_HANDLER_MODULES", default=[])

# --- Telemetry rollups and retention (telemetry/rollups.py, telemetry/partitions.py) ---------------
# A miner silent for this long counts as offline on the live pages and for the alert rules.
TELEMETRY_LIVE_OFFLINE_AFTER_S = env.int("TELEMETRY_LIVE_OFFLINE_AFTER_S", default=300)
TELEMETRY_RAW_RETENTION_HOURS = env.int("TELEMETRY_RAW_RETENTION_HOURS", default=24)
TELEMETRY_HISTORY_RETENTION_DAYS = env.int("TELEMETRY_HISTORY_RETENTION_DAYS", default=90)
# 0 keeps the daily layers for good (reports and billing read them); any other value is at least 365.
TELEMETRY_DAILY_RETENTION_DAYS = env.int("TELEMETRY_DAILY_RETENTION_DAYS", default=0)

# --- Market data (intelligence.feeds, intelligence.power_feeds) ---
# Live BTC market feed: "" = none (nothing needs the network), "blockchain_com" (api.blockchain.info/stats,
# no key), or the dotted path of a class with name + fetch_latest(*, timeout_s) -> list[FeedDay].
MARKET_FEED = env.str("MARKET_FEED", default="")
# Power price feed per site slug: {"tx-permian": "ercot_shipped"} or dotted paths; none by default.
POWER_PRICE_FEEDS = env.dict("POWER_PRICE_FEEDS", default={})

# --- Forecasts (intelligence/forecasting.py) ---
# A model whose training data end more than this before the latest market day is stale: naive serves instead.
FORECAST_MODEL_MAX_AGE_DAYS = env.int("FORECAST_MODEL_MAX_AGE_DAYS", default=8)
# The registry's backtest at training: origins, step between them, refit period (the full 2019→ run is a bench).
FORECAST_BACKTEST_ORIGINS = env.int("FORECAST_BACKTEST_ORIGINS", default=12)
FORECAST_BACKTEST_STEP_DAYS = env.int("FORECAST_BACKTEST_STEP_DAYS", default=7)
FORECAST_BACKTEST_REFIT_EVERY = env.int("FORECAST_BACKTEST_REFIT_EVERY", default=4)
# A stored network forecast is reused this long by every user's refresh (one model fit per hour, not per user).
FORECAST_NETWORK_REUSE_S = env.int("FORECAST_NETWORK_REUSE_S", default=3600)
# The hourly refresh deletes stored forecasts older than this.
FORECAST_KEEP_DAYS = env.int("FORECAST_KEEP_DAYS", default=30)
# Smart alerts (intelligence.smart_alerts): a network forecast whose realised MAPE over at least
# SMART_ALERT_FORECAST_MIN_DAYS days exceeds SMART_ALERT_FORECAST_MAPE_PCT; profit down more than
# SMART_ALERT_ROI_DROP_PCT week on week.
SMART_ALERT_FORECAST_MAPE_PCT = env.float("SMART_ALERT_FORECAST_MAPE_PCT", default=15.0)
SMART_ALERT_FORECAST_MIN_DAYS = env.int("SMART_ALERT_FORECAST_MIN_DAYS", default=7)
SMART_ALERT_ROI_DROP_PCT = env.float("SMART_ALERT_ROI_DROP_PCT", default=10.0)

# --- Anomaly scan (intelligence/anomaly_scan.py): days of 5-minute history behind each miner's usual level ---
INTELLIGENCE_ANOMALY_HISTORY_DAYS = env.int("INTELLIGENCE_ANOMALY_HISTORY_DAYS", default=2)

# --- Commands: effects verified from telemetry (commands.verification, commands.effects) ---
# The collector's poll interval assumed when the device has not reported its own (windows are multiples of it).
COMMAND_VERIFY_POLL_INTERVAL_S = env.float("COMMAND_VERIFY_POLL_INTERVAL_S", default=60.0)
# Fixed windows per type, overriding max(floor, polls × poll interval): "MINER_RESTART=600,CURTAIL=120".
COMMAND_VERIFY_WINDOW_S = env.dict("COMMAND_VERIFY_WINDOW_S", default={})
TELEMETRY_PARTITIONS_AHEAD_DAYS = 3  # daily partitions of raw and history_5m created ahead (PostgreSQL)
TELEMETRY_ROLLUP_GRACE_S = 120  # a 5-minute window is rolled up this long after it ends (late samples)
TELEMETRY_ROLLUP_REROLL_WINDOWS = 1  # windows already rolled up that each run rolls again (later samples)
TELEMETRY_ROLLUP_MAX_WINDOWS = 12  # at most this many windows per run when catching up after downtime
TELEMETRY_DAILY_FINAL_DELAY_S = 3 * 3600  # a day is rolled up once more this long after it ends
# run_embedded starts a miner simulator and a collector per demo site (hashinsight/demo/edge_demo.py).
DEMO_EDGE = env.bool("DEMO_EDGE", default=True)

# --- Billing: payments (hashinsight.billing.payments, chain, reminders) ---
# The chain adapter (dotted path): ManualAdapter needs no network (confirmations are entered by operators);
# HttpExplorerAdapter asks a mempool.space-style explorer at BILLING_CHAIN_EXPLORER_URL, and only when it is set.
BILLING_CHAIN_ADAPTER = env.str("BILLING_CHAIN_ADAPTER", default="hashinsight.billing.chain.ManualAdapter")
BILLING_CHAIN_EXPLORER_URL = env.str("BILLING_CHAIN_EXPLORER_URL", default="")  # e.g. https://mempool.space/api
BILLING_CHAIN_TIMEOUT_SECONDS = env.float("BILLING_CHAIN_TIMEOUT_SECONDS", default=5)
# Confirmations after which a crypto payment counts as paid.
BILLING_CONFIRMATIONS = {
    "btc": env.int("BILLING_CONFIRMATIONS_BTC", default=3),
    "usdt": env.int("BILLING_CONFIRMATIONS_USDT", default=20),
}
BILLING_BTC_NETWORK = env.str("BILLING_BTC_NETWORK", default="mainnet")  # mainnet | testnet | regtest
BILLING_CRYPTO_NETWORKS = ("btc", "usdt")  # the pools an issued invoice takes an address from
# Shown in payment instructions and reminder e-mails, label → value in this order; the invoice number is the reference.
BILLING_BANK_DETAILS = env.json("BILLING_BANK_DETAILS", default={})
BILLING_PAYEE_NAME = env.str("BILLING_PAYEE_NAME", default="HashInsight")
# Reminder e-mails this many days overdue (each once).
BILLING_REMINDER_DAYS = [int(d) for d in env.list("BILLING_REMINDER_DAYS", default=["1", "7", "14"])]
# The portal's public origin, for links in e-mails (no trailing slash).
PORTAL_BASE_URL = env.str("PORTAL_BASE_URL", default="http://localhost:8000")
# Verifiable statements (hashinsight.billing.proofs): broadcasting each closed day's OP_RETURN script is optional and
# off. With it on, BILLING_BROADCAST_ADAPTER names a class (dotted path, no arguments) with
# broadcast(*, day, script_hex) -> txid; none ships with the project, so nothing reaches the network by default.
BILLING_BROADCAST_OP_RETURN = env.bool("BILLING_BROADCAST_OP_RETURN", default=False)
BILLING_BROADCAST_ADAPTER = env.str("BILLING_BROADCAST_ADAPTER", default="")
# The month's invoices are built by this many PostgreSQL connections at once (the work is in the database).
BILLING_BUILD_WORKERS = env.int("BILLING_BUILD_WORKERS", default=2)
# The SLA certificates' Ed25519 keyring (sealed with the envelope encryption); empty: PRIVATE_MEDIA_ROOT/keys/.
# Every web and worker process must read the same file, and it must be backed up with the database.
SLA_SIGNING_KEYRING = env.str("SLA_SIGNING_KEYRING", default="")

# --- Auth, sessions, throttling ------------------------------------------------------------------
AUTH_USER_MODEL = "accounts.User"
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
    "guardian.backends.ObjectPermissionBackend",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 10}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "portal:dashboard"
LOGOUT_REDIRECT_URL = "login"

SESSION_ENGINE = "hashinsight.accounts.sessions"
SESSION_COOKIE_AGE = 8 * 60 * 60  # the seed's 8-hour limit, counted from login
SESSION_SAVE_EVERY_REQUEST = False
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_SAMESITE = "Lax"
SESSION_COOKIE_SECURE = PRODUCTION
CSRF_COOKIE_SECURE = PRODUCTION
if PRODUCTION:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=True)
    # Probes and scrapers inside the network speak plain http to the container: never redirect them.
    SECURE_REDIRECT_EXEMPT = [r"^api/health$", r"^ready$", r"^metrics$"]
    SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=60 * 60 * 24 * 30)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=False)
    SECURE_CONTENT_TYPE_NOSNIFF = True
    SECURE_REFERRER_POLICY = "same-origin"

AXES_FAILURE_LIMIT = env.int("AXES_FAILURE_LIMIT", default=5)
AXES_COOLOFF_TIME = env.float("AXES_COOLOFF_HOURS", default=0.25)  # hours
# Two independent locks: one per account (whatever the IP) and one per IP (whatever the account).
AXES_LOCKOUT_PARAMETERS = ["username", "ip_address"]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_TEMPLATE = "registration/locked_out.html"
# How many proxies (load balancers) stand in front of the web process and append to X-Forwarded-For.
# Wrong in either direction is unsafe: too low and every user shares the balancer's IP (five bad
# logins lock everyone out), too high and a client can forge its IP. Production makes you choose.
if PRODUCTION and env.str("TRUSTED_PROXY_COUNT", default="") == "":
    raise ImproperlyConfigured("TRUSTED_PROXY_COUNT must be set in production (0 if clients connect directly)")
AXES_IPWARE_PROXY_COUNT = env.int("TRUSTED_PROXY_COUNT", default=0)
AXES_VERBOSE = False

GUARDIAN_RAISE_403 = False
GUARDIAN_RENDER_403 = False
ANONYMOUS_USER_NAME = None  # guests are plain anonymous requests; no guardian anonymous row

EMAIL_BACKEND = env.str(
    "EMAIL_BACKEND",
    default="django.core.mail.backends.smtp.EmailBackend"
    if PRODUCTION
    else "django.core.mail.backends.filebased.EmailBackend",
)
EMAIL_FILE_PATH = VAR_DIR / "mail"
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="HashInsight <noreply@hashinsight.local>")

# --- i18n ---------------------------------------------------------------------------------------
LANGUAGE_CODE = "en"
LANGUAGES = [("en", _("English")), ("zh-hans", _("Simplified Chinese"))]
LOCALE_PATHS = [BASE_DIR / "locale"]
# Thousands separators in Chinese too (see hashinsight/formats/zh_Hans). USE_THOUSAND_SEPARATOR stays
# off: it would also group ids printed into URLs; amounts are grouped by the portal's money filters.
FORMAT_MODULE_PATH = ["hashinsight.formats"]
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

# Private files (signed contracts, reports, statement exports): never served as static; see hashinsight/core/storage.py.
PRIVATE_MEDIA_ROOT = Path(env.str("PRIVATE_MEDIA_ROOT", default=str(VAR_DIR / "private")))

# --- Static files -------------------------------------------------------------------------------
STATIC_URL = "/static/"
STATIC_ROOT = Path(env.str("STATIC_ROOT", default=str(BASE_DIR / "staticfiles" if PRODUCTION else VAR_DIR / "static")))
if not PRODUCTION:
    STATIC_ROOT.mkdir(parents=True, exist_ok=True)  # whitenoise warns about a missing root
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"
        if PRODUCTION
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}
# Embedded mode serves straight from the finders so a newcomer never needs collectstatic.
WHITENOISE_USE_FINDERS = not PRODUCTION
WHITENOISE_AUTOREFRESH = DEBUG

# --- Content-Security-Policy (django-csp) -------------------------------------------------------
# Everything is served from here (vendor files are built from npm, API docs from the sidecar), so the
# policy is strict: no inline scripts or styles, no other origins. Views that need an exception say so
# with csp.decorators.csp_update (only ReDoc does: hashinsight/portal/views/api_docs.py).
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": ["'self'", "data:"],
        "connect-src": ["'self'", "ws:", "wss:"],
        "frame-ancestors": ["'none'"],
        "base-uri": ["'self'"],
        "form-action": ["'self'"],
        "object-src": ["'none'"],
    },
}

# --- API ----------------------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "hashinsight.accounts.authentication.ApiTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    # Our JSON parser refuses NUL characters and too-deep nesting with a 400 (DRF's answers 500).
    "DEFAULT_PARSER_CLASSES": [
        "hashinsight.core.api.parsers.JSONParser",
        "rest_framework.parsers.FormParser",
        "rest_framework.parsers.MultiPartParser",
    ],
    "DEFAULT_PAGINATION_CLASS": "hashinsight.core.api.pagination.LimitOffsetPagination",
    "DEFAULT_FILTER_BACKENDS": [
        "django_filters.rest_framework.DjangoFilterBackend",
        "rest_framework.filters.SearchFilter",
        "rest_framework.filters.OrderingFilter",
    ],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "hashinsight.core.api.errors.exception_handler",
    "DEFAULT_THROTTLE_RATES": {"token_create": "20/hour", "edge_register": "30/hour", "dr_webhook": "60/min"},
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "HashInsight API",
    "DESCRIPTION": "Operations API for Bitcoin mining farms and hosting businesses.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
    "SWAGGER_UI_DIST": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "hashinsight.core.api.schema.add_error_responses",
    ],
    # Miners, alerts and job runs each have a "status"; name the miners' enum rather than "StatusBcdEnum".
    "ENUM_NAME_OVERRIDES": {
        "MinerStatusEnum": "miners.models.MinerStatus",
        "AlertRuleKindEnum": "telemetry.models.AlertRuleKind",
        "CommandStatusEnum": "commands.models.CommandStatus",
        "TelemetryScopeEnum": "telemetry.api.telemetry_serializers.TELEMETRY_SCOPES",
        "TokenScopeEnum": "hashinsight.accounts.models.TOKEN_SCOPES",
        # Curtailment: an event's or profile's mode (kW reduction / full stop) and how commands curtail (hard / soft).
        "CurtailmentModeEnum": "intelligence.models.CurtailmentMode",
        "CurtailCommandModeEnum": "intelligence.curtailment_plans.SEND_MODES",
        "InvoiceStatusEnum": "hashinsight.billing.models.InvoiceStatus",
    },
}
BULK_IMPORT_MAX_ROWS = 10_000
DATA_UPLOAD_MAX_MEMORY_SIZE = 20 * 1024 * 1024  # 10,000 CSV rows with credentials fit well inside

# The assistant (intelligence milestone) uses OpenAI function calling when a key is set.
OPENAI_API_KEY = env.str("OPENAI_API_KEY", default="")

# Bearer token for /metrics (Prometheus' authorization: credentials). Without one /metrics is open,
# which production accepts only when asked for explicitly (METRICS_PUBLIC=true, e.g. a private network).
METRICS_TOKEN = env.str("METRICS_TOKEN", default="")
METRICS_PUBLIC = env.bool("METRICS_PUBLIC", default=not PRODUCTION)
if PRODUCTION and not METRICS_TOKEN and not METRICS_PUBLIC:
    raise ImproperlyConfigured("Set METRICS_TOKEN, or METRICS_PUBLIC=true to serve /metrics without one, in production")
# The database-derived gauges of /metrics are computed at most this often (seconds; shared cache).
METRICS_DB_CACHE_S = env.float("METRICS_DB_CACHE_S", default=10.0)

# --- Logging ------------------------------------------------------------------------------------
LOG_LEVEL = env.str("LOG_LEVEL", default="INFO")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"request_context": {"()": "hashinsight.observability.logging.RequestContextFilter"}},
    "formatters": {"json": {"()": "hashinsight.observability.logging.JsonFormatter"}},
    "handlers": {
        "console": {"class": "logging.StreamHandler", "formatter": "json", "filters": ["request_context"]},
    },
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        "django.db.backends": {"level": "WARNING"},
        "axes": {"level": "WARNING"},
        # One line per task received/succeeded drowns everything else; failures still log.
        "celery.app.trace": {"level": "WARNING"},
        "celery.worker.strategy": {"level": "WARNING"},
        # Beat announces every due task (the relay every 10 s); its job records say more, and better.
        "celery.beat": {"level": "WARNING"},
    },
}
