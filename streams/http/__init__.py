"""The worker's HTTP endpoints: guards (who may ask) and handlers (deps, request) -> response."""
