"""Routing matrix (seed 003): features, plans, profiles, groups -> providers; consensus."""
