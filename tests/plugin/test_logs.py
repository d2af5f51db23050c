"""Rapport's own log lines name the clinic they are about."""

import logging

from plugin.logs import FORMAT, WithContext


def record(**extra) -> logging.LogRecord:
    made = logging.getLogger("plugin.webhooks").makeRecord(
        "plugin.webhooks", logging.WARNING, __file__, 1,
        "webhooks.invalid-signature: %s", ("Message timestamp too old",), None, extra=extra)
    return made


def test_a_line_names_the_platform_and_clinic_it_is_about():
    line = WithContext(FORMAT).format(record(platform="generic", clinic="a1b2c3"))
    assert line.endswith(
        "plugin.webhooks: webhooks.invalid-signature: Message timestamp too old "
        "[platform=generic clinic=a1b2c3]")


def test_a_line_without_context_is_left_as_it_is():
    line = WithContext(FORMAT).format(record())
    assert line.endswith("webhooks.invalid-signature: Message timestamp too old")
