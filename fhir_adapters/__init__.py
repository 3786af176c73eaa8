"""The scoped FHIR gateway: the only code in the product that talks to the clinic's FHIR server.

Public surface: ``Scheduling`` (what the dialogue may ask for), the ``FhirGateway`` beneath it, the
values they return, and the typed errors. The wire (``transport``) stays an implementation detail.
"""

from .errors import (
    FhirAuthenticationError,
    FhirConflict,
    FhirError,
    FhirInvalidResponse,
    FhirNotAllowed,
    FhirNotFound,
    FhirRejected,
    FhirUnavailable,
)
from .gateway import (
    OUTSIDE_CRITERIA,
    AccessRecord,
    AccessRecorder,
    Created,
    FhirGateway,
    Purpose,
    SearchPage,
    Versioned,
)
from .scheduling import (
    NotThisPatientsAppointment,
    RescheduleFailed,
    Scheduling,
    SchedulingError,
    SlotUnavailable,
    VisitTypeNotOffered,
)
from .scope import ALLOWED, Interaction
from .transport import TransportConfig
from .values import (
    AFTERNOON,
    EVENING,
    MORNING,
    AppointmentInfo,
    ClinicDirectory,
    GivenSpelling,
    PatientIdentity,
    PatientRef,
    PractitionerSchedule,
    SlotOffer,
    TimeOfDay,
    VisitType,
)

__all__ = [
    "AFTERNOON",
    "ALLOWED",
    "EVENING",
    "MORNING",
    "OUTSIDE_CRITERIA",
    "AccessRecord",
    "AccessRecorder",
    "AppointmentInfo",
    "ClinicDirectory",
    "Created",
    "FhirAuthenticationError",
    "FhirConflict",
    "FhirError",
    "FhirGateway",
    "FhirInvalidResponse",
    "FhirNotAllowed",
    "FhirNotFound",
    "FhirRejected",
    "FhirUnavailable",
    "GivenSpelling",
    "Interaction",
    "NotThisPatientsAppointment",
    "PatientIdentity",
    "PatientRef",
    "PractitionerSchedule",
    "Purpose",
    "RescheduleFailed",
    "Scheduling",
    "SchedulingError",
    "SearchPage",
    "SlotOffer",
    "SlotUnavailable",
    "TimeOfDay",
    "TransportConfig",
    "Versioned",
    "VisitType",
    "VisitTypeNotOffered",
]
