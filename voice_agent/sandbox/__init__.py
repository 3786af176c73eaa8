"""Development-only tooling: throwaway PKI, the local FHIR sandbox, the synthetic clinic."""
