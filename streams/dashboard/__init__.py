"""The oversight dashboard: what its views show, as plain data (``funnel``, ``trend``) and as
HTML (``render``). Pure: no Kafka, no HTTP; ``streams.http.dashboard`` serves them."""
