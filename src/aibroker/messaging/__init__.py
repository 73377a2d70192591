"""The multi-channel AI auto-responder (seed 004): WhatsApp, Instagram, Facebook and TikTok
webhooks, leads with scoring, conversations with human handoff, per-tenant AI context, and
senders that respect each channel's rules. Slow work runs in jobs (aibroker.jobs)."""
