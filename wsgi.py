"""The WSGI entry point: ``gunicorn wsgi:app``."""

import gc
import sys

from plugin import create_app
from plugin.config import ConfigurationError

try:
    app = create_app()
except ConfigurationError as error:
    sys.exit(f"Rapport cannot start: {error}")  # plainly, rather than as a traceback

# Everything built so far (modules, the app, its schemas and templates) lives as long as
# the process: keep it out of the garbage collector's full passes, which would otherwise
# walk it all and hold every request for 50-70 ms each time (measured with bench/ingest.py).
gc.freeze()
