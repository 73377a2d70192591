"""The AI workspace of seed 001: prompt templates, AI conversations, seed 001's /api/ai
routes, A/B splits and feedback (analytics lives beside them in ai/analytics*)."""
