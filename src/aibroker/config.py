"""Settings, split by concern. Every value comes from the environment (or `.env`)."""

from __future__ import annotations

from functools import lru_cache
from typing import Literal

from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

_COMMON = dict(env_file=".env", env_file_encoding="utf-8", extra="ignore")


class DatabaseSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="AIBROKER_", **_COMMON)

    database_url: str = "sqlite+aiosqlite:///./aibroker.db"
    redis_url: str | None = None
    # Every database connection one process may hold at once, across all its engines (the
    # async request pool and the money writer's; db.connection_budget splits it). N processes
    # x this must stay under PostgreSQL's max_connections minus headroom (docs/operations.md).
    # AIBROKER_POOL_SIZE is its older name.
    db_max_connections: int = Field(
        default=20, ge=2, le=1000, validation_alias=AliasChoices("AIBROKER_DB_MAX_CONNECTIONS", "AIBROKER_POOL_SIZE")
    )
    # How long a request waits for a free connection before it is answered 503 database_busy.
    db_pool_timeout_seconds: float = Field(default=10.0, gt=0, le=300)
    # Retry-After (seconds) on a 503 database_busy answer.
    db_busy_retry_after_seconds: int = Field(default=1, ge=1, le=300)


class ServerSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="AIBROKER_", **_COMMON)

    secret_key: str = "dev-insecure-secret-change-me"
    admin_token: str | None = None
    log_level: str = "info"
    max_body_bytes: int = 4 * 1024 * 1024
    # Largest audio upload for /v1/audio/transcriptions (OpenAI's own limit is 25 MB).
    max_audio_bytes: int = 25 * 1024 * 1024
    # How long an API-key lookup is trusted before the database is asked again.
    # Revocation in the same process is immediate; other processes see it within this.
    auth_cache_seconds: float = 10.0


class GatewaySettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="AIBROKER_", **_COMMON)

    default_model: str | None = None
    # JSON map: model -> list of fallback models, e.g. {"openai/gpt-4o": ["anthropic/claude-sonnet-4-5"]}
    fallbacks: dict[str, list[str]] = Field(default_factory=dict)
    # JSON map of extra model aliases: alias -> "provider/model"
    aliases: dict[str, str] = Field(default_factory=dict)
    # The cap injected upstream when the caller gives no max_tokens (bounds the hold).
    default_max_tokens: int = 4096
    upstream_timeout_seconds: float = 120.0
    connect_timeout_seconds: float = 5.0
    max_retries: int = 2
    retry_base_seconds: float = 0.25
    retry_max_seconds: float = 8.0
    breaker_failures: int = 5
    breaker_cooldown_seconds: float = 30.0
    # How often each process checks the routing configuration's version (hot reload).
    routing_reload_seconds: float = 2.0
    # How often each process re-reads the catalog's price overrides (written by any process
    # or `aibroker catalog set`). A small table; 0 turns the reload off.
    catalog_reload_seconds: float = 10.0
    # Days a stored /v1/responses response (store: true) stays retrievable and chainable
    # (previous_response_id, item_reference) before it is purged; 0 keeps them until deleted.
    responses_retention_days: int = Field(default=30, ge=0, le=3650)


class BillingSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="AIBROKER_", **_COMMON)

    # Wallet holds and ledger on the request path. Off: usage records only (for benchmarks).
    ledger_enabled: bool = True
    default_margin_bps: int = 3000  # 30% (seed 000)
    currency: str = "USD"
    hold_ttl_seconds: int = 900
    # A process's wallet lease expires this long after its last renewal (the live process
    # renews well within it), so a crashed process's lease is back in the wallet quickly.
    lease_ttl_seconds: float = 20.0
    # Each process reserves requests from a lease on the wallet (billing/leases.py): its
    # size, and how long an unused lease stays before it goes back to the wallet.
    lease_chunk_micros: int = 1_000_000
    lease_idle_seconds: float = 2.0
    sweep_interval_seconds: float = 30.0
    low_balance_threshold_micros: int = 1_000_000
    alert_webhook_url: str | None = None
    # HMAC key of the webhook signature (x-aibroker-signature); AIBROKER_SECRET_KEY when unset.
    alert_webhook_secret: str | None = None
    alert_poll_seconds: float = 2.0
    alert_timeout_seconds: float = 10.0
    alert_max_attempts: int = 12
    alert_retry_base_seconds: float = 5.0
    alert_retry_max_seconds: float = 3600.0
    # BYOK requests pay only this platform fee per request.
    byok_fee_micros: int = 0
    # How long an organization's stored provider keys are trusted before re-reading them.
    byok_cache_seconds: float = 5.0


class AccountSettings(BaseSettings):
    """Users, sessions and organization codes (accounts issue)."""

    model_config = SettingsConfigDict(env_prefix="AIBROKER_", **_COMMON)

    access_token_minutes: int = 15
    refresh_token_days: int = 30
    invitation_days: int = 7
    max_failed_logins: int = 5
    lockout_minutes: int = 15
    # `x-organization-code` requests allowed per code (the `limits` library's syntax).
    code_rate_limit: str = "60/minute"
    # Days an organization code stays valid once issued or rotated (a code is a credential; 0: never expires).
    organization_code_days: int = Field(default=365, ge=0, le=36500)
    # The routing profile a signed-in user's requests run with, by role (JSON, e.g.
    # {"AGENT": "usuaria"}); a role not named runs with "default". Explicit, so a tenant's
    # ADMIN role never lands on a platform profile that happens to be called "admin".
    role_profiles: dict[str, str] = Field(default_factory=dict)
    # The key sealed secrets were sealed with before a rotation (`aibroker secrets rotate`).
    secret_key_previous: str | None = None


class PaymentSettings(BaseSettings):
    """Stripe and Mercado Pago. The *_API_BASE values point the official SDKs elsewhere (fakes)."""

    model_config = SettingsConfigDict(**_COMMON)

    stripe_api_key: str | None = None
    stripe_webhook_secret: str | None = None
    stripe_api_base: str | None = None
    mercadopago_access_token: str | None = None
    mercadopago_webhook_secret: str | None = None
    mercadopago_api_base: str | None = None
    # How old a Mercado Pago x-signature `ts` may be (replays beyond it are refused).
    mercadopago_signature_tolerance_seconds: int = Field(
        default=300, validation_alias=AliasChoices("AIBROKER_MERCADOPAGO_SIGNATURE_TOLERANCE_SECONDS", "MERCADOPAGO_SIGNATURE_TOLERANCE_SECONDS")
    )
    # Days an unpaid (past_due / unpaid) or cancelled subscription keeps the organization active
    # after its period ends; then it is suspended until a payment (issue 17).
    subscription_grace_days: float = Field(
        default=3, ge=0, le=365, validation_alias=AliasChoices("AIBROKER_SUBSCRIPTION_GRACE_DAYS", "SUBSCRIPTION_GRACE_DAYS")
    )


class LimitsSettings(BaseSettings):
    """Plans, rate limits, quotas and input rules (the limits package)."""

    model_config = SettingsConfigDict(env_prefix="AIBROKER_", **_COMMON)

    limits_enabled: bool = True
    # The plan of an organization created without one.
    default_plan: str = "free"
    # JSON maps provider -> limit, shared by every tenant (protects the upstream account).
    provider_rpm: dict[str, int] = Field(default_factory=dict)
    provider_tpm: dict[str, int] = Field(default_factory=dict)
    # Words (whole-word, case-insensitive) or /regex/ entries; JSON list or comma-separated.
    blocklist: str = ""
    pii_redaction: bool = False
    pii_phone_region: str = "US"
    # How often each process re-reads plans (admin changes elsewhere show up within this).
    plans_refresh_seconds: float = 10.0


class CacheSettings(BaseSettings):
    """The response cache (the cache package)."""

    model_config = SettingsConfigDict(env_prefix="AIBROKER_CACHE_", **_COMMON)

    enabled: bool = True
    # "deterministic": chat is cached only when temperature == 0 or the body says "cache": true;
    # "always": every chat request (unless opted out). Embeddings are always deterministic.
    chat_mode: str = "deterministic"
    ttl_chat_seconds: int = 3600
    ttl_completion_seconds: int = 7 * 86400
    ttl_embedding_seconds: int = 30 * 86400
    ttl_image_seconds: int = 90 * 86400
    # In-process backend: entries kept per kind (LRU beyond it).
    max_entries: int = 1000
    # What a hit is billed: free | provider_cost (no margin) | full (cost + margin).
    hit_billing: str = "free"


class MessagingSettings(BaseSettings):
    """The multi-channel auto-responder and the job queue (messaging and jobs packages)."""

    model_config = SettingsConfigDict(env_prefix="AIBROKER_", **_COMMON)

    # Outbound base URLs (tests point them at local fakes). Graph API version pinned here.
    meta_graph_url: str = "https://graph.facebook.com/v21.0"
    tiktok_api_url: str = "https://business-api.tiktok.com/open_api/v1.3"
    # Bearer token of POST /api/jobs/process (cron-style hosting). Exact name: CRON_SECRET.
    cron_secret: str | None = Field(default=None, validation_alias=AliasChoices("CRON_SECRET", "AIBROKER_CRON_SECRET"))
    tiktok_signature_tolerance_seconds: int = 300
    # Platform-level app secrets (seed 004): one Meta app / TikTok app for every tenant. A
    # channel without its own secret verifies its webhooks with these. Exact names.
    meta_app_secret: str | None = Field(default=None, validation_alias=AliasChoices("META_APP_SECRET", "AIBROKER_META_APP_SECRET"))
    tiktok_client_secret: str | None = Field(
        default=None, validation_alias=AliasChoices("TIKTOK_CLIENT_SECRET", "AIBROKER_TIKTOK_CLIENT_SECRET")
    )
    send_timeout_seconds: float = 15.0
    job_lease_seconds: float = 60.0
    job_poll_seconds: float = 1.0
    job_max_attempts: int = 5
    job_backoff_base_seconds: float = 5.0
    job_backoff_max_seconds: float = 3600.0


class AlertSettings(BaseSettings):
    """Spend, error-rate, circuit-breaker and key-expiry alerts; their e-mail over SMTP."""

    model_config = SettingsConfigDict(env_prefix="AIBROKER_", **_COMMON)

    # smtp://user:pass@host:587 (STARTTLS when offered) or smtps://...:465 (TLS). Unset: no e-mail.
    smtp_url: str | None = None
    alert_email_from: str = "aibroker@localhost"
    smtp_timeout_seconds: float = Field(default=10.0, gt=0, le=300)
    # The default monthly spend threshold per organization, in wallet currency units (seed 001's
    # AI_COST_ALERT_THRESHOLD=100); an organization's own settings override it. Unset: none.
    ai_cost_alert_threshold: str | None = Field(
        default=None, validation_alias=AliasChoices("AIBROKER_AI_COST_ALERT_THRESHOLD", "AI_COST_ALERT_THRESHOLD")
    )
    # Who receives the platform's alerts (providers' error rates, open breakers); comma-separated.
    alert_platform_emails: str | None = Field(
        default=None, validation_alias=AliasChoices("AIBROKER_ALERT_PLATFORM_EMAILS", "AI_COST_ALERT_EMAIL")
    )
    alert_scan_seconds: float = Field(default=60.0, ge=0, le=86400)  # 0: no background scan
    alert_key_expiry_days: int = Field(default=7, ge=0, le=365)
    alert_error_rate: float = Field(default=0.25, gt=0, le=1)
    alert_error_min_requests: int = Field(default=20, ge=1)
    alert_email_max_attempts: int = Field(default=25, ge=1, le=1000)


class StorageSettings(BaseSettings):
    """Blob storage (storage package): recordings' audio, uploaded files, batch outputs."""

    model_config = SettingsConfigDict(env_prefix="AIBROKER_", **_COMMON)

    storage_backend: Literal["local", "s3"] = "local"
    # The local backend's root directory (created on first write).
    storage_dir: str = "./aibroker-data"
    s3_bucket: str | None = None
    s3_endpoint_url: str | None = None
    s3_region: str = "us-east-1"
    # Credentials for S3; when unset the standard AWS chain (env, profile, instance role) applies.
    s3_access_key_id: str | None = None
    s3_secret_access_key: str | None = None
    # The largest single upload chunk (POST /api/chunks/{id}); larger answers 413.
    max_chunk_bytes: int = Field(default=8 * 1024 * 1024, ge=1024, le=1024 * 1024 * 1024)


class BatchSettings(BaseSettings):
    """/v1/files and /v1/batches (the batches package)."""

    model_config = SettingsConfigDict(env_prefix="AIBROKER_", **_COMMON)

    # The largest file POST /v1/files accepts (OpenAI's batch input limit: 200 MB); larger: 413.
    max_file_bytes: int = Field(default=200 * 1024 * 1024, ge=1024, le=10 * 1024 * 1024 * 1024)
    # Requests per batch input file (OpenAI's limit); more: 400 at upload.
    batch_max_lines: int = Field(default=50_000, ge=1, le=1_000_000)
    # Lines of one batch in flight at once inside its job.
    batch_concurrency: int = Field(default=8, ge=1, le=256)
    # A batch job runs lines for about this long, then hands over to a fresh job (so a cron
    # call to POST /api/jobs/process returns, and other jobs get their turn).
    batch_slice_seconds: float = Field(default=25.0, ge=0, le=3600)


class GuardSettings(BaseSettings):
    """Guardrails, IP allowlists, request signing, key lifecycle and lead enrichment (issue 15)."""

    model_config = SettingsConfigDict(env_prefix="AIBROKER_", **_COMMON)

    # Proxies whose X-Forwarded-For is believed (comma-separated IPs / CIDRs). Empty: the
    # client is the TCP peer, and X-Forwarded-For is ignored.
    trusted_proxies: str = ""
    # A signed request's timestamp may be this far from the broker's clock (a key may set its own).
    signature_window_seconds: int = Field(default=300, ge=10, le=3600)
    # How often each process writes the "last used" times it collected (one batch, not a write per request).
    last_used_flush_seconds: float = Field(default=15.0, gt=0, le=3600)
    # How long the platform's stored provider keys and organizations' guardrails are trusted
    # before they are read again (a change shows in other processes within this).
    platform_keys_cache_seconds: float = Field(default=5.0, ge=0, le=3600)
    guardrails_cache_seconds: float = Field(default=5.0, ge=0, le=3600)
    # Redact PII (e-mail addresses, card numbers, phone numbers) in every organization's answers,
    # as AIBROKER_PII_REDACTION does in prompts (an organization can also turn it on for itself).
    pii_redaction_output: bool = False
    # Fetch a new lead's name and picture from the channel's profile API (a queued job).
    enrich_leads: bool = True


class RecordingsSettings(BaseSettings):
    """Recordings (seed 002): uploads, and the audio worker's transcription and analysis."""

    model_config = SettingsConfigDict(env_prefix="AIBROKER_RECORDINGS_", **_COMMON)

    # Length of the pieces the audio is transcribed in (16 kHz mono WAV: 10 min = 19.2 MB,
    # under the 25 MB a transcription upload may be).
    segment_seconds: int = Field(default=600, ge=1, le=3600)
    # Used when the routing matrix does not route the feature: None picks OpenAI's whisper-1
    # when OpenAI is configured, else the mock (transcription), the platform default (analysis).
    transcription_model: str | None = None
    analysis_model: str | None = None
    analysis_max_tokens: int = Field(default=1024, ge=64, le=16384)
    language: str | None = None  # a transcription hint (ISO-639-1), when all audio shares one
    # The largest file POST /api/upload takes in one request (chunked uploads have no such cap).
    max_upload_bytes: int = Field(default=2 * 1024**3, ge=1024)


class VoiceSettings(BaseSettings):
    """Realtime voice sessions (voice/)."""

    model_config = SettingsConfigDict(env_prefix="AIBROKER_VOICE_", **_COMMON)

    # The model when init names none and the routing matrix has no `voice_agent` route.
    default_model: str | None = None
    # How much session time each rolling wallet hold covers (at the model's audio prices).
    increment_seconds: float = Field(default=60.0, gt=0, le=3600)
    token_seconds: int = Field(default=120, ge=5, le=3600)  # a session token's lifetime
    max_concurrent_sessions: int = Field(default=10, ge=0)  # per organization
    max_session_seconds: int = Field(default=3600, ge=1)
    # Per plan: {"free": {"concurrent": 0}} (no access) or {"pro": {"concurrent": 50, "max_seconds": 7200}}.
    plan_limits: dict[str, dict[str, int]] = Field(default_factory=dict)
    max_frame_bytes: int = Field(default=512 * 1024, ge=1024, le=16 * 1024 * 1024)  # one client event
    heartbeat_seconds: float = Field(default=5.0, gt=0, le=300)
    upstream_connect_seconds: float = Field(default=10.0, gt=0, le=120)


class Settings:
    """All settings groups, read once per process."""

    def __init__(self) -> None:
        self.database = DatabaseSettings()
        self.server = ServerSettings()
        self.gateway = GatewaySettings()
        self.billing = BillingSettings()
        self.limits = LimitsSettings()
        self.cache = CacheSettings()
        self.accounts = AccountSettings()
        self.payments = PaymentSettings()
        self.messaging = MessagingSettings()
        self.storage = StorageSettings()
        self.batches = BatchSettings()
        self.guard = GuardSettings()
        self.recordings = RecordingsSettings()
        self.alerts = AlertSettings()
        self.voice = VoiceSettings()


@lru_cache
def get_settings() -> Settings:
    return Settings()
