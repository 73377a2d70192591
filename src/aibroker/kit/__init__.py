"""Domain-free helpers: money, ids, time, crypto. Imports nothing from the domains."""
