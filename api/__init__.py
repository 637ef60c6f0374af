"""The REST API (django-ninja) under /api/v1/: typed schemas over the same services and selectors as the pages.

Personal API tokens (stored hashed, shown once) or the session authenticate. Admins reach every endpoint;
a crowdworker reaches only the labeling endpoints, and only their own assignments. See docs/api.md.
"""
