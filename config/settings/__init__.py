"""Settings split by environment: base, local (default), production, test.

Pick one with DJANGO_SETTINGS_MODULE; every value that differs between machines comes from the
environment (see `.env.example`).
"""
