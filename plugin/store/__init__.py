"""Where Rapport keeps things: the database (:mod:`.database`), its tables
(:mod:`.models`), the database's own name (:mod:`.identity`) and secrets sealed at rest
(:mod:`.sealing`)."""
