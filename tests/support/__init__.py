"""What the tests share: helpers importable as ``tests.support.<module>`` (servers, a real
browser with axe-core, clinics set up the way an admin would)."""
