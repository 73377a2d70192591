"""Realtime voice sessions over WebSocket, bridged to OpenAI Realtime and Gemini Live, metered
from the wallet (seed 002's Voice Service)."""
