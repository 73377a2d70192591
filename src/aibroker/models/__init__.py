"""Every table, imported here so Alembic and create_all see them all."""

from aibroker.models.ai_conversation import AiConversation, AiConversationMessage
from aibroker.models.ai_split import AiFeedback, AiSplit
from aibroker.models.ai_template import AiPromptTemplate, AiPromptTemplateVersion
from aibroker.models.alert import AlertEmail, AlertSetting
from aibroker.models.api_key import ApiKey
from aibroker.models.base import Base
from aibroker.models.batch import Batch, BatchLine, StoredFile
from aibroker.models.channel import AIContext, ChannelConnection, WebhookEvent
from aibroker.models.console_session import ConsoleSession
from aibroker.models.conversation import Conversation, Message
from aibroker.models.event import Event
from aibroker.models.guardrails import GuardrailSettings, PlatformProviderKey, ProviderActivity, SignedRequestNonce
from aibroker.models.job import Job
from aibroker.models.lead import Lead, LeadScoreEvent
from aibroker.models.ledger_checkpoint import LedgerCheckpoint, LedgerCheckpointWallet
from aibroker.models.model_override import ModelOverride
from aibroker.models.organization import Organization
from aibroker.models.payment import OrganizationCode, PaymentEvent, Subscription
from aibroker.models.payment_record import Payment
from aibroker.models.plan import PlanRow
from aibroker.models.provider_credential import ProviderCredential
from aibroker.models.recording import Recording, RecordingAnalysis, RecordingChunk, RecordingSegment, StorageUsage
from aibroker.models.routing import (
    RoutingFeature,
    RoutingFeatureProvider,
    RoutingGroupOverride,
    RoutingPlanMatrix,
    RoutingProvider,
    RoutingState,
)
from aibroker.models.stored_response import StoredResponse
from aibroker.models.usage_record import UsageRecord
from aibroker.models.usage_rollup import UsageRollup
from aibroker.models.user import Invitation, Membership, RefreshToken, User
from aibroker.models.voice_session import VoiceSession
from aibroker.models.wallet import LedgerEntry, Wallet, WalletHold

__all__ = [
    "AiConversation",
    "AiConversationMessage",
    "AiFeedback",
    "AiPromptTemplate",
    "AiPromptTemplateVersion",
    "AiSplit",
    "AlertEmail",
    "AlertSetting",
    "UsageRollup",
    "VoiceSession",
    "AIContext",
    "ChannelConnection",
    "ConsoleSession",
    "Conversation",
    "Job",
    "Lead",
    "LeadScoreEvent",
    "Message",
    "WebhookEvent",
    "ApiKey",
    "Base",
    "Batch",
    "BatchLine",
    "Event",
    "GuardrailSettings",
    "PlatformProviderKey",
    "ProviderActivity",
    "SignedRequestNonce",
    "Invitation",
    "LedgerCheckpoint",
    "LedgerCheckpointWallet",
    "LedgerEntry",
    "Membership",
    "ModelOverride",
    "Organization",
    "OrganizationCode",
    "Payment",
    "PaymentEvent",
    "PlanRow",
    "ProviderCredential",
    "Recording",
    "RecordingAnalysis",
    "RecordingChunk",
    "RecordingSegment",
    "StorageUsage",
    "RefreshToken",
    "RoutingFeature",
    "RoutingFeatureProvider",
    "RoutingGroupOverride",
    "RoutingPlanMatrix",
    "RoutingProvider",
    "RoutingState",
    "StoredFile",
    "StoredResponse",
    "Subscription",
    "UsageRecord",
    "User",
    "Wallet",
    "WalletHold",
]
