"""Alert rules and their engine. Imports nothing from ``streams``; only agents use both."""
