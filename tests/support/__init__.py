"""Helpers shared by tests that need more than pytest: a real browser, axe-core."""
