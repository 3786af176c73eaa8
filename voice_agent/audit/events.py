"""The audit event: a closed, typed vocabulary in which patient data cannot be written down.

Every field is an enum, a literal, a number, a UUID, a timestamp, or a string held to a narrow grammar
(FHIR ids, FHIR resource type names, exception class names, account ids). There is deliberately no
free-text field: a name, a phone number or a sentence fails validation instead of reaching the trail.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Literal, Self
from uuid import UUID

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field, model_validator

#: FHIR R4 (4.0.1) resource type names. Checked on top of the name grammar so that a capitalised word
#: such as a surname cannot pass for a resource type; a request for any real type (say a refused
#: ``Observation``) stays recordable.
FHIR_RESOURCE_TYPES: frozenset[str] = frozenset(
    """
    Account ActivityDefinition AdverseEvent AllergyIntolerance Appointment AppointmentResponse
    AuditEvent Basic Binary BiologicallyDerivedProduct BodyStructure Bundle CapabilityStatement CarePlan
    CareTeam CatalogEntry ChargeItem ChargeItemDefinition Claim ClaimResponse ClinicalImpression
    CodeSystem Communication CommunicationRequest CompartmentDefinition Composition ConceptMap Condition
    Consent Contract Coverage CoverageEligibilityRequest CoverageEligibilityResponse DetectedIssue
    Device DeviceDefinition DeviceMetric DeviceRequest DeviceUseStatement DiagnosticReport
    DocumentManifest DocumentReference EffectEvidenceSynthesis Encounter Endpoint EnrollmentRequest
    EnrollmentResponse EpisodeOfCare EventDefinition Evidence EvidenceVariable ExampleScenario
    ExplanationOfBenefit FamilyMemberHistory Flag Goal GraphDefinition Group GuidanceResponse
    HealthcareService ImagingStudy Immunization ImmunizationEvaluation ImmunizationRecommendation
    ImplementationGuide InsurancePlan Invoice Library Linkage List Location Measure MeasureReport Media
    Medication MedicationAdministration MedicationDispense MedicationKnowledge MedicationRequest
    MedicationStatement MedicinalProduct MedicinalProductAuthorization MedicinalProductContraindication
    MedicinalProductIndication MedicinalProductIngredient MedicinalProductInteraction
    MedicinalProductManufactured MedicinalProductPackaged MedicinalProductPharmaceutical
    MedicinalProductUndesirableEffect MessageDefinition MessageHeader MolecularSequence NamingSystem
    NutritionOrder Observation ObservationDefinition OperationDefinition OperationOutcome Organization
    OrganizationAffiliation Parameters Patient PaymentNotice PaymentReconciliation Person PlanDefinition
    Practitioner PractitionerRole Procedure Provenance Questionnaire QuestionnaireResponse RelatedPerson
    RequestGroup ResearchDefinition ResearchElementDefinition ResearchStudy ResearchSubject
    RiskAssessment RiskEvidenceSynthesis Schedule SearchParameter ServiceRequest Slot Specimen
    SpecimenDefinition StructureDefinition StructureMap Subscription Substance SubstanceNucleicAcid
    SubstancePolymer SubstanceProtein SubstanceReferenceInformation SubstanceSourceMaterial
    SubstanceSpecification SupplyDelivery SupplyRequest Task TerminologyCapabilities TestReport
    TestScript ValueSet VerificationResult VisionPrescription
    """.split()  # noqa: SIM905 - a word list reads better than 146 quoted lines
)

#: Upper bound on ids in one event: above the largest FHIR page the gateway may ask for (200).
MAX_RESOURCE_IDS = 500
MAX_COUNT = 999_999_999
MAX_DURATION_SECONDS = 7 * 24 * 3600.0

ACTOR_ID_PATTERN = r"^[a-z0-9][a-z0-9._@-]{0,63}$"
#: A staff account name: fits both the actor grammar and the resource-id grammar, so an account can be
#: the actor of one event and the subject (``resource_ids``) of another (an administrator's change).
STAFF_USER_PATTERN = r"^[a-z][a-z0-9.-]{1,31}$"
FHIR_ID_PATTERN = r"^[A-Za-z0-9\-.]{1,64}$"
RESOURCE_TYPE_PATTERN = r"^[A-Z][A-Za-z]{0,63}$"
ERROR_NAME_PATTERN = r"^[A-Za-z][A-Za-z0-9_]{0,63}$"
HASH_PATTERN = r"^[0-9a-f]{64}$"


class AuditPurpose(StrEnum):
    """Why something happened. The gateway's purposes (``fhir_adapters.gateway.Purpose``) plus the
    agent's own; a test keeps the two in step."""

    LEARN_CLINIC = "learn-clinic"
    VERIFY_IDENTITY = "verify-identity"
    LIST_APPOINTMENTS = "list-appointments"
    FIND_SLOTS = "find-slots"
    BOOK = "book"
    CANCEL = "cancel"
    RESCHEDULE = "reschedule"
    HEALTH_CHECK = "health-check"
    CALL_SESSION = "call-session"
    ESCALATION = "escalation"
    STAFF_CONSOLE = "staff-console"
    AUDIT_REVIEW = "audit-review"
    AUDIT_MAINTENANCE = "audit-maintenance"


class AuditAction(StrEnum):
    """What was done."""

    FHIR_SEARCH = "fhir.search"
    FHIR_READ = "fhir.read"
    FHIR_CREATE = "fhir.create"
    FHIR_UPDATE = "fhir.update"
    SESSION_START = "session.start"
    SESSION_END = "session.end"
    ESCALATION_CREATE = "escalation.create"
    ESCALATION_VIEW = "escalation.view"
    ESCALATION_CLAIM = "escalation.claim"
    ESCALATION_RESOLVE = "escalation.resolve"
    ESCALATION_DELETE = "escalation.delete"
    #: A further urgent call from the origin of an open urgent escalation, counted on it (``session_id``:
    #: the new call's) instead of queued again.
    ESCALATION_MERGE = "escalation.merge"
    STAFF_LOGIN = "staff.login"
    STAFF_LOGOUT = "staff.logout"
    AUDIT_EXPORT = "audit.export"
    AUDIT_PURGE = "audit.purge"
    DIALOGUE_GUARDRAIL = "dialogue.guardrail"
    #: A call put through to the front desk (SIP REFER): outcome success or failure, no address.
    CALL_TRANSFER = "call.transfer"
    #: A call refused at the door (``refusal`` says why, never what was sent): a bad carrier signature
    #: or token, a wrong stream secret, an unlisted source, a handshake not sent in time, a full worker.
    CALL_REFUSED = "call.refused"
    #: Breach detection: something a compliance officer should look at (``alert`` says what).
    SECURITY_ALERT = "security.alert"
    #: Staff console: accounts created and changed (``staff_role`` / ``staff_change`` say how), and the
    #: audit trail read on screen or verified by a compliance officer.
    STAFF_USER_CREATE = "staff.user.create"
    STAFF_USER_UPDATE = "staff.user.update"
    #: An enrolment link used (success: password and TOTP set) or refused (``error``: expired, used,
    #: unknown, ...). Never the token; an unknown link has the service as actor and no account.
    STAFF_ENROLMENT = "staff.enrolment"
    AUDIT_VIEW = "audit.view"
    #: Rows of a table that had no integrity tags (created before them) tagged once, when the columns
    #: were added (``resource_ids``: the rows; ``event_count``: how many; purpose, and ``staff_change``
    #: for recovery codes, which table).
    RECORD_SEAL = "record.seal"


AuditOutcome = Literal["success", "denied", "not-found", "conflict", "failure", "timed-out", "interrupted"]
#: ``interrupted``: the worker running the call died (killed, crashed, lost its host) before it could end
#: it; a surviving worker writes that ``session.end`` once the dead worker's heartbeat has lapsed.
#: ``revoked``: a staff session ended because its account's credentials or role changed.
EndReason = Literal[
    "hangup", "goodbye", "timeout", "escalated", "transferred", "shutdown", "error", "interrupted", "revoked"
]
#: Why a call was refused before it began (a closed set, so a metric label can carry it too).
CallRefusal = Literal[
    "signature",
    "token",
    "token-expired",
    "token-replayed",
    "secret",
    "source",
    "unsigned",
    "handshake",
    "call-id",
    "ceiling",
    "rate",
]
#: What a security alert is about (a closed set: also a metric label).
AlertKind = Literal[
    "identity-locked",
    "number-locked",
    "source-locked",
    "verification-burst",
    "urgent-flood",
    "carrier-auth-failures",
    "fhir-certificate-failure",
    "ceiling-refusals",
    "staff-login-burst",
    #: A staff account or escalation row fails its integrity tag (changed outside the product).
    "record-tampered",
]
#: Which model-independent guardrail fired (never what the caller said).
GuardrailKind = Literal["emergency", "crisis", "medical_advice", "other_person", "change_rules"]
#: Console roles: front desk (escalations), compliance officer (audit trail), administrator (accounts).
StaffRole = Literal["front-desk", "compliance", "admin"]
#: What changed on a staff account (never the value: no password, secret or code).
StaffChange = Literal[
    "password",
    "role",
    "totp-enrolled",
    "totp-reset",
    "recovery-code-used",
    "locked",
    "unlock",
    "disable",
    "enable",
    #: An administrator's reset: password and second factor cleared, sessions ended, old link void.
    "enrolment-reset",
    #: A one-time enrolment link issued (only its HMAC is stored).
    "enrolment-link",
    #: On ``record.seal``: the accounts' recovery-code rows were tagged (not the accounts' own rows).
    "recovery-codes",
]


#: Shapes that fit the id grammars but are a phone number or a date (of birth) written down. Servers
#: do not mint ids like these in practice; refusing them keeps a mis-wired caller value out of the trail.
_PHONE_SHAPE = re.compile(r"^(?:\+?1[-.])?\d{3}[-.]\d{3}[-.]\d{4}$")
_DATE_SHAPE = re.compile(r"^(?:\d{4}[-.]\d{1,2}[-.]\d{1,2}|\d{1,2}[-.]\d{1,2}[-.]\d{2,4})$")
_BARE_PHONE = re.compile(r"^\+?1?\d{10}$")
_FHIR_ID = re.compile(FHIR_ID_PATTERN)


def _not_phone_or_date(value: str) -> str:
    if _PHONE_SHAPE.fullmatch(value) or _DATE_SHAPE.fullmatch(value):
        raise ValueError("looks like a phone number or a date, not an identifier")
    return value


def is_recordable_id(value: str) -> bool:
    """Whether ``value`` may stand in ``resource_ids`` (the recorder withholds anything else)."""
    try:
        _not_phone_or_date(value)
    except ValueError:
        return False
    return _FHIR_ID.fullmatch(value) is not None


def _account_id(value: str) -> str:
    """Account ids are names like ``voice-agent`` or ``jdoe@clinic``; a digit string is a phone number."""
    if _BARE_PHONE.fullmatch(value):
        raise ValueError("looks like a phone number, not an account id")
    return _not_phone_or_date(value)


def _known_resource_type(value: str) -> str:
    if value not in FHIR_RESOURCE_TYPES:
        raise ValueError("not a FHIR R4 resource type")
    return value


def _utc(value: datetime) -> datetime:
    return value.astimezone(UTC)


ActorId = Annotated[str, Field(pattern=ACTOR_ID_PATTERN), AfterValidator(_account_id)]
WorkerId = Annotated[str, Field(pattern=ACTOR_ID_PATTERN), AfterValidator(_account_id)]
StaffUserId = Annotated[str, Field(pattern=STAFF_USER_PATTERN), AfterValidator(_account_id)]
FhirId = Annotated[str, Field(pattern=FHIR_ID_PATTERN), AfterValidator(_not_phone_or_date)]
ResourceType = Annotated[str, Field(pattern=RESOURCE_TYPE_PATTERN), AfterValidator(_known_resource_type)]
ErrorName = Annotated[str, Field(pattern=ERROR_NAME_PATTERN)]
HexHash = Annotated[str, Field(pattern=HASH_PATTERN)]
UtcTime = Annotated[AwareDatetime, Field(strict=True), AfterValidator(_utc)]
#: Numbers are strict (no "555..." strings coerced) and stay below any ten-digit phone number.
Count = Annotated[int, Field(ge=0, le=MAX_COUNT, strict=True)]


class Actor(BaseModel):
    """Who acted: the agent's service identity or a staff account id (never a caller)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: Literal["service", "staff"]
    id: ActorId


_PURGE_FIELDS = ("purged_through_seq", "purged_count", "anchor_hash")


Millis = Annotated[float, Field(ge=0, le=3_600_000.0, strict=True)]


class CallMetrics(BaseModel):
    """A voice call's latency summary on its ``session.end`` event: counts and milliseconds, no content."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    ingress: Literal["webrtc", "telephony", "sip"]
    turns: Count
    #: End of the caller's speech to the first byte of the agent's audio.
    voice_to_voice_p50_ms: Millis | None = None
    voice_to_voice_max_ms: Millis | None = None
    #: Each stage's time to first byte (median over the call's turns).
    turn_detection_p50_ms: Millis | None = None
    stt_p50_ms: Millis | None = None
    dialogue_p50_ms: Millis | None = None
    tts_p50_ms: Millis | None = None
    barge_ins: Count = 0
    #: Caller turns ended as soon as their words were a whole answer, and turns that waited out the
    #: maximum pause (the slow path: a caller heard as unfinished).
    turns_ended_by_answer: Count = 0
    turns_at_max_pause: Count = 0


class AuditEvent(BaseModel):
    """One audited action: when, who, why, what, on which resources, and how it ended. No content."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    time: UtcTime
    actor: Actor
    purpose: AuditPurpose
    action: AuditAction
    outcome: AuditOutcome
    resource_type: ResourceType | None = None
    resource_ids: Annotated[tuple[FhirId, ...], Field(max_length=MAX_RESOURCE_IDS)] = ()
    session_id: UUID | None = None
    #: The worker process that ran the session (``Settings.worker_id``), on session events.
    worker: WorkerId | None = None
    # --- typed details, each optional ---
    http_status: Annotated[int, Field(ge=100, le=599, strict=True)] | None = None
    #: The exception's class name (``type(exc).__name__``), never its message.
    error: ErrorName | None = None
    #: How many requested ids were withheld because they were not FHIR ids (they may be caller input).
    withheld_ids: Count | None = None
    duration_seconds: Annotated[float, Field(ge=0, le=MAX_DURATION_SECONDS, strict=True)] | None = None
    end_reason: EndReason | None = None
    guardrail: GuardrailKind | None = None
    refusal: CallRefusal | None = None
    alert: AlertKind | None = None
    ingress: Literal["webrtc", "telephony", "sip"] | None = None
    #: Stated on ``session.end``: the session's state was wiped, nothing of the call was kept.
    phi_retained: Literal["none"] | None = None
    call_metrics: CallMetrics | None = None
    staff_role: StaffRole | None = None
    staff_change: StaffChange | None = None
    # --- audit maintenance ---
    purged_through_seq: Count | None = None
    purged_count: Count | None = None
    anchor_hash: HexHash | None = None
    range_start: UtcTime | None = None
    range_end: UtcTime | None = None
    event_count: Count | None = None

    @model_validator(mode="after")
    def _details_fit_action(self) -> Self:
        if self.action is AuditAction.AUDIT_PURGE:
            if any(getattr(self, name) is None for name in _PURGE_FIELDS):
                raise ValueError("an audit.purge event states purged_through_seq, purged_count, anchor_hash")
        elif any(getattr(self, name) is not None for name in _PURGE_FIELDS):
            raise ValueError("purge details belong to audit.purge events only")
        if self.call_metrics is not None and self.action is not AuditAction.SESSION_END:
            raise ValueError("call metrics belong to session.end events only")
        return self

    @classmethod
    def now(cls, **fields: object) -> AuditEvent:
        """Build an event stamped with the current UTC time."""
        return cls.model_validate({"time": datetime.now(UTC), **fields})
