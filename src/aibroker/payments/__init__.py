"""Stripe and Mercado Pago: checkout, verified webhooks, plans, codes and wallet credits."""
