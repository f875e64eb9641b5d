"""Schedules: a Config per group (defaults for every target, the search spaces, GPU eligibility)."""
