"""Clinics: their records (:mod:`.records`), their own settings (:mod:`.settings`), the
one seam between a clinic and its booking platform (:mod:`.platforms`: calling it;
:mod:`.connecting`, :mod:`.oauth`, :mod:`.subscriptions`: connecting it) and their
health at a glance (:mod:`.health`). Nothing here names a platform: what differs between
platforms is what each one declares (``handlers.base.Platform``)."""
