"""The counting runtime: one loop that owns the source topic, its local store, recovery from the
changelog, group membership and the watchdog. Faust hosts it (``streams.runtime.host``)."""
