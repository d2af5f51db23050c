"""Running Rapport's jobs: the queues and how a job is named (:mod:`.queue`), the
application context a job runs in (:mod:`.runtime`), the worker (:mod:`.worker`) and its
reusable work horse (:mod:`.horse`), the periodic jobs (:mod:`.cron`), the worker's
preload (:mod:`.rq_settings`) and the private Redis of development and the demo
(:mod:`.embedded_redis`).

The jobs themselves live beside the work they do, each with the one helper that queues
it: ``pipeline.ingest.ingest_events``, ``pipeline.appointments.check_completion``,
``pipeline.sending.send_check_in`` / ``send_reminder`` / ``expire_check_in``,
``pipeline.write_back.deliver_write_back``, ``pipeline.booking_notes.write_booking_note``,
``pipeline.polling.poll_clinic`` / ``poll_due``, ``pipeline.sweeper.sweep`` and
``clinics.platforms.refresh_tokens``.
"""
