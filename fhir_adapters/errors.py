"""Typed gateway errors. Each message is a fixed sentence: no URL, query, body or server text.

Servers echo search values (names, birth dates) in diagnostics and URLs, so nothing from the wire is
ever put into a message, and the httpx exception is never chained (a chained traceback would print it).
"""

from __future__ import annotations


class FhirError(Exception):
    """Base class. ``status`` is the HTTP status when there was one; ``resource_type`` names no patient."""

    default_message = "The FHIR request failed."

    def __init__(
        self, message: str | None = None, *, resource_type: str | None = None, status: int | None = None
    ) -> None:
        self.resource_type = resource_type
        self.status = status
        super().__init__(message or self.default_message)


class FhirUnavailable(FhirError):
    """The server could not be reached, timed out, or answered 5xx/429."""

    default_message = "The FHIR server is unavailable."


class FhirAuthenticationError(FhirError):
    """TLS or mutual-TLS failure (untrusted server, refused client certificate) or HTTP 401/403."""

    default_message = "The FHIR server and the agent could not authenticate each other."


class FhirNotAllowed(FhirError):
    """The request is outside the gateway's scope; raised before any network traffic."""

    default_message = "That FHIR request is outside the agent's scope."


class FhirConflict(FhirError):
    """The resource changed since it was read (HTTP 409/412): someone else got there first."""

    default_message = "The FHIR resource changed since it was read."


class FhirNotFound(FhirError):
    default_message = "The FHIR resource was not found."


class FhirRejected(FhirError):
    """The server refused a well-formed request (HTTP 400/405/422), e.g. a strict-handling violation."""

    default_message = "The FHIR server rejected the request."


class FhirInvalidResponse(FhirError):
    """The answer was not the FHIR the gateway asked for (bad JSON, wrong type, failed model validation)."""

    default_message = "The FHIR server sent a response the gateway could not accept."
