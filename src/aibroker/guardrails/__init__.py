"""Guardrails (seed 001's security section, issue 15): per-organization PII redaction and
moderation of prompts and answers."""
