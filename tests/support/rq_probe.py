"""A job for RQ to run that imports nothing of Rapport's: what its work horse started with."""

import sys


def rapport_jobs_imported() -> bool:
    return "plugin.pipeline.sending" in sys.modules
