"""Request bodies of the messaging API."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field


class ChannelCreate(BaseModel):
    channel: Literal["whatsapp", "instagram", "facebook", "tiktok"] = Field(description="The platform.")
    credentials: dict[str, Any] = Field(description=(
        "whatsapp: phone_number_id, access_token, business_account_id?; facebook: page_id, access_token; "
        "instagram: instagram_account_id, access_token, page_id?; tiktok: client_key, client_secret (optional with TIKTOK_CLIENT_SECRET), "
        "business_id (the account's open id), access_token. Tokens are sealed and never returned."))
    verify_token: str | None = Field(default=None, max_length=200, description="Token of the webhook GET verification.")
    app_secret: str | None = Field(default=None, max_length=500, description=(
        "Signs the webhooks (Meta App Secret; TikTok: the client secret). Optional when the platform's "
        "META_APP_SECRET / TIKTOK_CLIENT_SECRET is set: the channel then verifies with it."))
    ai_enabled: bool = Field(default=True, description="Let the AI answer this channel's conversations.")
    branch: str | None = Field(default=None, max_length=80, description="Optional branch (sucursal) of the organization.")
    options: dict[str, Any] = Field(default_factory=dict, description=(
        'Channel options, e.g. {"reengagement_template": {"name": "hello_again", "language": "es"}} '
        "(WhatsApp template sent outside the 24-hour window)."))


class ChannelUpdate(BaseModel):
    ai_enabled: bool | None = Field(default=None, description="Turn the AI on or off for this channel.")
    options: dict[str, Any] | None = Field(default=None, description="Replace the channel options.")


class BusinessHours(BaseModel):
    timezone: str = Field(default="UTC", description="IANA time zone, e.g. America/Mexico_City.")
    schedule: dict[str, list[list[str]]] = Field(default_factory=dict, description='{"mon": [["09:00", "18:00"]], ...}; missing days are closed.')


class AIContextUpdate(BaseModel):
    # A field left out keeps its value. Only business_hours, away_message and model may be set
    # to null (their columns are nullable); the others are typed without None, so an explicit
    # null is a 422 (the default None only marks "left out" and is never validated).
    system_prompt: str = Field(default=None, max_length=20000, description="Base instructions for the AI.")
    business_hours: BusinessHours | None = Field(default=None, description="Opening hours; null: always open.")
    away_message: str | None = Field(default=None, max_length=2000, description="Sent outside business hours (null: stay silent).")
    response_style: str = Field(default=None, max_length=50, description="professional | friendly | casual | concise | free text.")
    temperature: float = Field(default=None, ge=0, le=1, description="0.0 - 1.0.")
    max_tokens: int = Field(default=None, ge=16, le=4096, description="Longest reply, in tokens.")
    escalation_keywords: list[Annotated[str, Field(max_length=200)]] = Field(
        default=None, max_length=200, description="Words that hand the conversation to a human.")
    auto_escalate_after_messages: int = Field(default=None, ge=0, le=1000, description="AI replies without resolution before a human takes over (0: never).")
    model: str | None = Field(default=None, max_length=200, description="Model for replies (default: the platform's).")
    scoring_enabled: bool = Field(default=None, description="Classify inbound messages into lead signals.")


class AgentMessage(BaseModel):
    content: str = Field(min_length=1, max_length=6000, description="The agent's reply, sent on the conversation's channel.")


class Handoff(BaseModel):
    to: Literal["ai", "human"] = Field(description="Who handles the conversation from now on.")


class ConversationUpdate(BaseModel):
    status: Literal["active", "pending", "resolved", "closed"] = Field(description="The conversation's new state.")
