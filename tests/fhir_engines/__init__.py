"""FHIR engines the integration tests run the gateway against besides the sekmet sandbox.

Two independent servers catch what one server's quirks hide: a parameter one ignores, version ids that are
not integers, a search that matches by substring. See docs/architecture.md ("Two FHIR engines").
"""

#: The engines every scheduling and gateway-wire test runs on (``tests/conftest.py``'s ``fhir_engine``).
ENGINES = ("sekmet", "medplum")
