"""`make demo` prints a link that signs the demo admin in to the console."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import requests

from tests.support import console


def test_the_serving_demo_signs_its_admin_in_to_the_console():
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAPPORT_")}
    env["PYTHONPATH"] = str(Path(__file__).resolve().parents[2])
    demo = subprocess.Popen([sys.executable, "-m", "plugin", "demo", "--port", "0"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        lines = []
        for line in demo.stdout:
            lines.append(line)
            if "Press Ctrl-C to stop." in line:
                break
        output = "".join(lines)
        link = re.search(r"signs you in as admin@harbour\.example\):\s+(\S+)", output).group(1)
        browser = requests.Session()
        page = browser.get(link, timeout=10)
        assert page.status_code == 200 and "Sign in to Rapport" in page.text
        signed = browser.post(link, data={"csrf_token": console.token_of(page.text)},
                              timeout=10)
        assert signed.status_code == 200
        assert "Harbour Massage" in signed.text and "Connection" in signed.text
        assert "/admin/clinics/" in signed.url
        demo.send_signal(signal.SIGINT)
        rest = demo.communicate(timeout=30)[0]
    finally:
        demo.kill()
    assert demo.returncode == 0 and "Traceback" not in rest
