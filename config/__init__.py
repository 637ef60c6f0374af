"""Project configuration: settings per environment, the URL routes (each app's, included), the Celery app.

The top layer: it may import every app; no app imports it.
"""

from .celery_app import app as celery_app

__all__ = ["celery_app"]
