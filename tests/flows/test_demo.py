"""`rapport demo --once` runs the whole loop on its own servers and exits 0."""

from __future__ import annotations

import subprocess
import sys

from tests.support.rapport import plain_env
from tests.support.waiting import wait_until


def test_demo_once_completes_the_loop_and_shows_the_note():
    env = plain_env()
    result = subprocess.run([sys.executable, "-m", "plugin", "demo", "--once"], env=env,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    for step in ("1. Queue", "4. The booking system sends signed webhooks",
                 "appointment.completed  → 202 accepted",
                 "Subject: One minute about your visit to Harbour Massage",
                 "POST (answers, CSRF token) → 200 Thank you",
                 "received client.alliance_updated (signature verified)",
                 "[Rapport]", "[/Rapport]", "Prefers the window room", "Demo complete."):
        assert step in out, step
    assert out.index("[Rapport]") > out.index("8. Sam's profile")


def test_ctrl_c_stops_the_serving_demo_plainly_after_the_survey_is_answered():
    import re
    import signal

    import requests

    env = plain_env()
    demo = subprocess.Popen([sys.executable, "-m", "plugin", "demo", "--port", "0"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        lines = []
        for line in demo.stdout:
            lines.append(line)
            if "Press Ctrl-C to stop." in line:
                break
        shown = "".join(lines)
        assert "Alex, another client, was just sent this email" in shown
        assert "To: alex@example.com" in shown
        link = re.search(r"Alex's check-in [^\n]*\n\s+(\S+)", shown).group(1)
        page = requests.get(link, timeout=10)
        form = {"csrf_token": re.search(r'name="csrf_token" value="([^"]+)"', page.text)[1]}
        for name, value in re.findall(r'type="radio" name="([^"]+)" value="(\d+)"', page.text):
            form[name] = max(form.get(name, value), value, key=int)
        answered = requests.post(link, data=form, cookies=page.cookies, timeout=10)
        assert answered.status_code == 200 and "Thank you" in answered.text
        # The demo's worker writes Alex's answers back: the booking system shows them.
        booking = re.search(r"Booking system, client pages: +(\S+)", "".join(lines)).group(1)
        wait_until(lambda: "[Rapport]" in requests.get(f"{booking.rstrip('/')}/clients/C-8",
                                                       timeout=10).text,
                   what="Alex's note in the booking system")
        demo.send_signal(signal.SIGINT)
        rest = demo.communicate(timeout=30)[0]
    finally:
        demo.kill()
    assert demo.returncode == 0, rest
    assert "Traceback" not in rest and rest.rstrip().endswith("Stopped.")
