"""Rapport's jobs, by the names the tests call them."""

from plugin.clinics.platforms import refresh_tokens  # noqa: F401
from plugin.pipeline.appointments import check_completion  # noqa: F401
from plugin.pipeline.ingest import ingest_event, ingest_events  # noqa: F401
from plugin.pipeline.sending import send_check_in as send_invitation  # noqa: F401
from plugin.pipeline.sweeper import sweep  # noqa: F401
from plugin.pipeline.write_back import deliver_write_back as write_back  # noqa: F401
