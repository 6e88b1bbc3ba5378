"""Django Channels' entry point: a ``ProtocolTypeRouter`` over Django and a consumer.

``python -m trio_asgi channels_project.asgi:application --app-dir tests/e2e``. It
reuses ``django_project``'s settings and views; the WebSocket route is Channels' own.
"""

from __future__ import annotations

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "django_project.settings")
# Django first (it sets up the settings), then anything that imports Django's models.
django_http = get_asgi_application()

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from django.urls import path  # noqa: E402

from .consumers import EchoConsumer  # noqa: E402

application = ProtocolTypeRouter(
    {
        "http": django_http,
        "websocket": URLRouter([path("ws/echo", EchoConsumer.as_asgi())]),
    }
)
