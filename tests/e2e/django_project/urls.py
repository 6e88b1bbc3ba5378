"""URL routes of the test project."""

from __future__ import annotations

from django.urls import path

from . import views

urlpatterns = [
    path("async/<int:number>", views.async_view),
    path("sync", views.sync_view),
    path("bridge", views.bridge_view),
    path("echo", views.echo_view),
    path("stream", views.stream_view),
    path("wait", views.wait_view),
    path("boom", views.boom_view),
]
