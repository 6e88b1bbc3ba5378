"""Settings for the test project: no database, no apps, no middleware.

Only what Django's ASGI handler needs to route a request to a view.
"""

from __future__ import annotations

SECRET_KEY = "only-for-tests"  # never deployed
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
ROOT_URLCONF = "django_project.urls"
INSTALLED_APPS: list[str] = []
MIDDLEWARE: list[str] = []
DATABASES: dict[str, dict[str, str]] = {}
USE_TZ = True
# Leave the process's logging alone (pytest captures it).
LOGGING_CONFIG = None
