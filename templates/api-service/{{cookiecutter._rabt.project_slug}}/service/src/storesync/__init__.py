"""The project's integration service: webhook intake, durable queue, worker and CRM sync."""

__version__ = "0.1.0"
