"""The request pipeline and the AI routes: OpenAI-compatible and seed 000's broker API."""
