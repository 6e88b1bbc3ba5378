"""Shared test configuration: hypothesis profiles.

``ci`` (the default) keeps property tests fast; ``fuzz`` (``HYPOTHESIS_PROFILE=fuzz``,
used by ``nox -s fuzz``) runs them long, 100,000 examples a test unless
``TRIO_ASGI_FUZZ_EXAMPLES`` says otherwise (a smoke run of the session: 200); ``dev`` is
hypothesis's default size.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

settings.register_profile("ci", max_examples=50, deadline=None, print_blob=True)
settings.register_profile("dev", max_examples=100, deadline=None)
settings.register_profile(
    "fuzz",
    max_examples=int(os.environ.get("TRIO_ASGI_FUZZ_EXAMPLES", "100000")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))
