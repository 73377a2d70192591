"""Provider adapters: one module per wire format, all behind the Provider protocol in base.py."""
