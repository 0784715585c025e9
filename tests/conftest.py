"""Hypothesis profiles: `ci` (the default in CI), `dev` (quick, local) and `nightly` (long soak runs)."""

import os

from hypothesis import HealthCheck, settings

settings.register_profile("ci", max_examples=500, deadline=None, print_blob=True)
settings.register_profile("dev", max_examples=100, deadline=None)
settings.register_profile(
    "nightly",
    max_examples=5_000,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))
