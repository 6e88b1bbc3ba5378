"""A Django Channels project: Django's views for HTTP, a consumer for WebSockets."""
