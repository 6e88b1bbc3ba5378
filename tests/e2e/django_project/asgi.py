"""The project's ASGI entry point, as ``django-admin startproject`` writes it.

``python -m trio_asgi django_project.asgi:application --app-dir tests/e2e``
"""

from __future__ import annotations

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "django_project.settings")

application = get_asgi_application()
