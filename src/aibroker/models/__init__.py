"""Every table, imported here so Alembic and create_all see them all."""

from aibroker.models.api_key import ApiKey
from aibroker.models.base import Base
from aibroker.models.channel import AIContext, ChannelConnection, WebhookEvent
from aibroker.models.conversation import Conversation, Message
from aibroker.models.event import Event
from aibroker.models.job import Job
from aibroker.models.lead import Lead, LeadScoreEvent
from aibroker.models.model_override import ModelOverride
from aibroker.models.organization import Organization
from aibroker.models.payment import OrganizationCode, PaymentEvent, Subscription
from aibroker.models.payment_record import Payment
from aibroker.models.plan import PlanRow
from aibroker.models.provider_credential import ProviderCredential
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
from aibroker.models.user import Invitation, Membership, RefreshToken, User
from aibroker.models.voice_session import VoiceSession
from aibroker.models.wallet import LedgerEntry, Wallet, WalletHold

__all__ = [
    "VoiceSession",
    "AIContext",
    "ChannelConnection",
    "Conversation",
    "Job",
    "Lead",
    "LeadScoreEvent",
    "Message",
    "WebhookEvent",
    "ApiKey",
    "Base",
    "Event",
    "Invitation",
    "LedgerEntry",
    "Membership",
    "ModelOverride",
    "Organization",
    "OrganizationCode",
    "Payment",
    "PaymentEvent",
    "PlanRow",
    "ProviderCredential",
    "RefreshToken",
    "RoutingFeature",
    "RoutingFeatureProvider",
    "RoutingGroupOverride",
    "RoutingPlanMatrix",
    "RoutingProvider",
    "RoutingState",
    "StoredResponse",
    "Subscription",
    "UsageRecord",
    "User",
    "Wallet",
    "WalletHold",
]
