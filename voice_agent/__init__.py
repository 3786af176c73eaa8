"""Self-hosted clinic voice agent: books, cancels and reschedules appointments in the clinic's FHIR server."""

__version__ = "0.1.0"
