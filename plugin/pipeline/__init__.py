"""The journey of one visit, stage by stage, after its event is stored.

ingest → appointments (the state machine; the completion check) → check_ins (whether a
visit gets one, and each step's claim; timing and instruments decide when and which)
→ sending (email, reminder, expiry; mail) → the client answers (``plugin.web.survey``)
→ assessment (scored once) → write_back (to the platform) → booking_notes (the next
booking). The sweeper re-queues whatever was stored but not processed; erasure forgets
a client on request.
"""
