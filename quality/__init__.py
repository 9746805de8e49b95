"""Expectation suites, asset checks and quarantine rules per dataset (the quality-gates issue)."""
