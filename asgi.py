"""The ASGI entry point for production:
``gunicorn asgi:app -k uvicorn_worker.UvicornWorker`` (README, "Running in production").

The same application as ``wsgi.py``, served so that slow clients hold no thread
(``plugin.web.front``)."""

import gc
import sys

from plugin import create_app
from plugin.config import ConfigurationError
from plugin.web import front

try:
    app = front.asgi(create_app())
except ConfigurationError as error:
    sys.exit(f"Rapport cannot start: {error}")  # plainly, rather than as a traceback

gc.freeze()  # as in wsgi.py: the long-lived objects stay out of full collections
