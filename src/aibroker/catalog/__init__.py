"""The model registry: prices, context sizes, capabilities."""
