"""What the tests share: helpers importable as ``tests.support.<module>``."""
