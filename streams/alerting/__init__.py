"""Alerts in the worker: the alerts topic as the source of truth, the leader's evaluation and
transactional writes, and delivery to webhooks."""
