"""disposal-watch: stream processing of police outcome ("disposal") events."""

__version__ = "0.1.0"
