"""A minimal Django project for the end-to-end tests (``test_frameworks_django.py``)."""
