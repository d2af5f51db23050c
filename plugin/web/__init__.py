"""What Rapport answers over HTTP: the webhook receiver in front of everything
(:mod:`.receiver`, storing into :mod:`.inbox`), the client's pages (:mod:`.survey`),
connecting a platform through its sign-in (:mod:`.connect`), ``/healthz``
(:mod:`.health`), and the CSRF checks and headers every page gets (:mod:`.security`)."""
