"""Staff accounts, in the audit trail's database: each change commits in one transaction with its event.

A row holds the account name, its role, an argon2id password hash, the TOTP secret sealed with
AES-256-GCM under the audit keyring (bound to the account name), the last TOTP step accepted (so a code
works once), the failed-login counter and lock, and whether the account is disabled. Recovery codes are
SHA-256 digests in their own table. Nothing here is patient data; none of it is logged. The lock applies
only to sources that have not proven themselves for the account, and a per-source backoff comes first
(``throttle``); a TOTP step is spent by a conditional update; a change to credentials or role ends the
account's other sessions in the same transaction (``sessions.end_sessions``).

Every login attempt is an audit event (``staff.login``: success, or denied with the reason's class
name), and so is every change to an account (``staff.user.create`` / ``staff.user.update`` with the role
or what changed, never a value). A name that is not an account is audited with the service as actor and
no name at all: what someone typed into the user field could be anything, a patient's name included.

First enrolment: an administrator (console or ``voice-agent staff``) never chooses a password. Creating
or resetting an account stores an unusable password hash and issues a one-time enrolment link, shown to
the administrator once; its owner sets the password and the TOTP app through it. Only an HMAC of the
link's token is stored (``Keyring.mac``, purpose ``staff-enrolment``); a link expires (24 h by default),
is superseded by a newer one for the same account, and is spent by a conditional update, so two uses give
one success. Each step is audited (``enrolment-link`` issued, ``staff.enrolment`` used or refused), never
the token.

Integrity: every row carries an HMAC under the audit keys over its name, role, password hash, TOTP
state and disabled flag (``STAFF_SEAL``; ``voice_agent.audit.row_integrity``). Every write to the row
goes through ``_account_write`` (check first, tag last); every read checks it, and a row that fails is
no account at all for logins and sessions, a ``record-tampered`` alert, and, on the administrator's
page, a disabled account to reset. Each recovery code's row is tagged too (``RECOVERY_SEAL``): the
digests are unkeyed, so without the tag anyone who can write the database and knows the password could
add a code of their own and skip the second factor; a row that fails logs nobody in and is alarmed.

Blocking SQL and a deliberately slow hash: call it from the event loop with ``asyncio.to_thread``.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, get_args

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Connection,
    DateTime,
    Integer,
    LargeBinary,
    MetaData,
    Row,
    String,
    Table,
    delete,
    or_,
    select,
    update,
)

from voice_agent.audit import (
    STAFF_USER_PATTERN,
    Actor,
    AuditAction,
    AuditEvent,
    AuditOutcome,
    AuditPurpose,
    AuditTrail,
    Keyring,
    StaffChange,
    StaffRole,
)
from voice_agent.audit.crypto import DecryptionError, Sealed
from voice_agent.audit.row_integrity import (
    RowSeal,
    TamperAlarm,
    Verdict,
    add_mac_columns,
    mac_columns,
    seal_events,
    seal_existing,
)
from voice_agent.audit.store import create_tables, from_db_time, to_db_time

from . import totp

ROLES: tuple[StaffRole, ...] = get_args(StaffRole)
ROLE_NAMES: dict[str, str] = {
    "front-desk": "Front desk",
    "compliance": "Compliance officer",
    "admin": "Administrator",
}
MIN_PASSWORD = 12
MAX_PASSWORD = 256
_USERNAME = re.compile(STAFF_USER_PATTERN)
#: The password hash of an account whose owner has not enrolled yet: no argon2 hash, so nothing verifies.
UNUSABLE_PASSWORD = "!enrolment-pending"
#: The ``Keyring.mac`` purpose of enrolment-link tokens (a tag for one use is never valid for another).
ENROLMENT_PURPOSE = "staff-enrolment"
DEFAULT_ENROLMENT_LIFETIME = timedelta(hours=24)
#: ``secrets.token_urlsafe(32)``: 256 random bits, 43 URL-safe characters.
_LINK_TOKEN = re.compile(r"^[A-Za-z0-9_-]{43}$")

metadata = MetaData()

staff_users_table = Table(
    "staff_users",
    metadata,
    Column("username", String(32), primary_key=True),
    Column("role", String(16), nullable=False),
    Column("password_hash", String(255), nullable=False),
    #: The TOTP secret, sealed; pending until the first code proves the app has it.
    Column("totp_key_id", String(32)),
    Column("totp_nonce", LargeBinary(12)),
    Column("totp_ciphertext", LargeBinary()),
    Column("totp_enrolled", Boolean(), nullable=False),
    Column("totp_last_step", BigInteger()),
    Column("failed_logins", Integer(), nullable=False),
    Column("locked_until", DateTime(timezone=False)),
    Column("disabled", Boolean(), nullable=False),
    Column("created_at", DateTime(timezone=False), nullable=False),
    #: HMAC over ``STAFF_SEAL.columns`` under the audit keys: checked at every read (``row_integrity``).
    *mac_columns(),
)

#: What an account's tag covers: everything that grants access or says who someone is. Not the
#: failed-login counter and lock: they change on every wrong attempt (by conditional SQL, not a
#: read-modify-write), and forging them only lifts or imposes a throttle, never grants access.
STAFF_SEAL = RowSeal(
    "staff-account",
    (
        "username",
        "role",
        "password_hash",
        "totp_key_id",
        "totp_nonce",
        "totp_ciphertext",
        "totp_enrolled",
        "totp_last_step",
        "disabled",
        "created_at",
    ),
)

staff_recovery_table = Table(
    "staff_recovery_codes",
    metadata,
    Column("username", String(32), primary_key=True),
    Column("digest", String(64), primary_key=True),
    #: HMAC over ``RECOVERY_SEAL.columns``: a code's row inserted or changed in SQL is no code.
    *mac_columns(),
)
#: A recovery code's tag binds its digest to its account. Digests of older deployments cannot become
#: HMACs of the codes (nobody has the codes), but their rows can be tagged at the upgrade, so they work on.
RECOVERY_SEAL = RowSeal("staff-recovery-code", ("username", "digest"))

#: Enrolment links: at most one per account (issuing deletes the older). The token itself is nowhere.
staff_enrolment_table = Table(
    "staff_enrolment_links",
    metadata,
    Column("token_mac", String(64), primary_key=True),
    Column("key_id", String(32), nullable=False),
    Column("username", String(32), nullable=False, index=True),
    Column("expires_at", DateTime(timezone=False), nullable=False),
    Column("used_at", DateTime(timezone=False)),
)


class StaffError(Exception):
    """Base class; messages name the rule broken, never a password, secret or code."""


class InvalidStaffInput(StaffError, ValueError):
    """A user name, role or password that breaks the rules."""


class UserExists(StaffError):
    pass


class UnknownUser(StaffError, LookupError):
    pass


class AccountTampered(StaffError):
    """The account's row fails its integrity tag: changed outside the console. Only a reset repairs it."""


@dataclass(frozen=True)
class StaffUser:
    username: str
    role: StaffRole
    enrolled: bool
    disabled: bool
    failed_logins: int
    locked_until: datetime | None
    created_at: datetime
    #: Created or reset by an administrator, and its owner has not used the enrolment link yet.
    enrolment_pending: bool = False
    #: The row fails its integrity tag: listed (for the administrator) as disabled, never trusted.
    tampered: bool = False

    def locked(self, now: datetime) -> bool:
        return self.locked_until is not None and self.locked_until > now

    @property
    def role_name(self) -> str:
        return ROLE_NAMES[self.role]


@dataclass(frozen=True)
class LoginCheck:
    """The answer to one login step: the account when it passed, else the reason (an error class name
    the audit trail records; the page says the same thing for every reason:
    ``routes.auth.LOGIN_REFUSED``)."""

    user: StaffUser | None
    reason: str | None = None

    @property
    def ok(self) -> bool:
        return self.user is not None and self.reason is None


@dataclass(frozen=True)
class EnrolmentLink:
    """A one-time link, returned once to whoever issued it (the administrator's page, the CLI's output)
    and kept nowhere else: the database holds only the token's HMAC. ``repr`` leaves the token out."""

    username: str
    token: str = field(repr=False)
    expires_at: datetime

    @property
    def path(self) -> str:
        """The link's path on the console: the token is the only thing in it."""
        return f"/staff/enrol/{self.token}"


def check_username(username: str) -> str:
    if not _USERNAME.fullmatch(username):
        raise InvalidStaffInput(
            "a user name is 2-32 characters: lower-case letters, digits, dots and hyphens, "
            "starting with a letter"
        )
    return username


def check_password(password: str, username: str) -> str:
    if not MIN_PASSWORD <= len(password) <= MAX_PASSWORD:
        raise InvalidStaffInput(f"a password is {MIN_PASSWORD} to {MAX_PASSWORD} characters long")
    if username in password.lower():
        raise InvalidStaffInput("a password must not contain the user name")
    return password


def check_role(role: str) -> StaffRole:
    for known in ROLES:
        if role == known:
            return known
    raise InvalidStaffInput(f"a role is one of {', '.join(ROLES)}")


def _aad(username: str) -> bytes:
    return f"voice-agent-staff/totp/v1|{username}".encode()


class StaffStore:
    """Accounts, login checks with lockout, TOTP enrolment and recovery codes; all audited."""

    def __init__(
        self,
        trail: AuditTrail,
        keyring: Keyring,
        *,
        service_identity: str = "voice-agent",
        lockout_threshold: int = 5,
        lockout: timedelta = timedelta(minutes=15),
        enrolment_lifetime: timedelta = DEFAULT_ENROLMENT_LIFETIME,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self._trail = trail
        self._keyring = keyring
        self.enrolment_lifetime = enrolment_lifetime
        self._service = Actor(kind="service", id=service_identity)
        self._threshold = lockout_threshold
        self._lockout = lockout
        self._clock = clock or (lambda: datetime.now(UTC))
        self._hasher = PasswordHasher()
        #: Verified against when the name is unknown, so a miss costs what a wrong password costs.
        self._dummy_hash = self._hasher.hash("not an account's password")
        from .sessions import metadata as sessions_metadata  # sessions imports this module

        with trail.transaction() as (conn, append):
            create_tables(conn, metadata)
            create_tables(conn, sessions_metadata)  # a reset ends the account's sessions
            if add_mac_columns(conn, staff_users_table):
                self._seal_existing(conn, append, staff_users_table, STAFF_SEAL)
            if add_mac_columns(conn, staff_recovery_table):
                self._seal_existing(conn, append, staff_recovery_table, RECOVERY_SEAL, "recovery-codes")
        self._alarm = TamperAlarm(
            trail, keyring, self._service, AuditPurpose.STAFF_CONSOLE, clock=self._clock
        )

    def now(self) -> datetime:
        return from_db_time(to_db_time(self._clock()))

    # ------------------------------------------------------------------ accounts

    def add_user(self, username: str, role: str, password: str, *, by: Actor | None = None) -> StaffUser:
        """Create an account with a known password (TOTP is enrolled at its first login): for tests and
        migrations only. The console and the command line call ``invite``, so no administrator ever
        knows a working credential."""
        return self._create(username, role, password, by)[0]

    def invite(self, username: str, role: str, *, by: Actor | None = None) -> tuple[StaffUser, EnrolmentLink]:
        """Create an account that cannot log in yet, and its one-time enrolment link (audited: the
        creation and the link's issue, in one transaction). ``by``: the administrator, or the service when
        the command line creates one."""
        user, link = self._create(username, role, None, by)
        assert link is not None
        return user, link

    def _create(
        self, username: str, role: str, password: str | None, by: Actor | None
    ) -> tuple[StaffUser, EnrolmentLink | None]:
        username = check_username(username)
        checked_role = check_role(role)
        if password is None:
            password_hash = UNUSABLE_PASSWORD
        else:
            password_hash = self._hasher.hash(check_password(password, username))
        actor = by or self._service
        now = self.now()

        with self._account_write(username) as (conn, append):
            if self._row(conn, username) is not None:
                raise UserExists("an account with that name exists")
            conn.execute(
                staff_users_table.insert().values(
                    username=username,
                    role=checked_role,
                    password_hash=password_hash,
                    totp_enrolled=False,
                    failed_logins=0,
                    disabled=False,
                    created_at=to_db_time(now),
                )
            )
            append(self._event(actor, AuditAction.STAFF_USER_CREATE, "success", username, role=checked_role))
            link = None if password is not None else self._issue_link(conn, append, username, actor, now)
        return StaffUser(username, checked_role, False, False, 0, None, now, password is None), link

    def users(self) -> list[StaffUser]:
        """Every account, for the administrator; one whose row fails its tag is listed as ``tampered``
        and disabled (and alarmed), so it can be reset."""
        with self._trail.engine.connect() as conn, conn.begin():
            rows = conn.execute(select(staff_users_table).order_by(staff_users_table.c.username)).all()
        return [self._checked_user(row) for row in rows]

    def user(self, username: str) -> StaffUser | None:
        with self._trail.engine.connect() as conn, conn.begin():
            row = self._row(conn, username)
        return None if row is None else self._checked_user(row)

    def trusted(self, row: Row[Any]) -> bool:
        """Whether an account row (or a row joined with one) passes its tag; alarms when it does not."""
        verdict = STAFF_SEAL.check(self._keyring, row._mapping)
        if verdict is not Verdict.OK:
            self._alarm("staff-account", str(row.username), verdict)
        return verdict is Verdict.OK

    def _checked_user(self, row: Row[Any]) -> StaffUser:
        if self.trusted(row):
            return user_from_row(row)
        return StaffUser(
            username=str(row.username),
            role="front-desk",  # not what the row says: the page shows it as unknown
            enrolled=False,
            disabled=True,
            failed_logins=0,
            locked_until=None,
            created_at=from_db_time(row.created_at),
            tampered=True,
        )

    def change(
        self,
        username: str,
        change: StaffChange,
        *,
        by: Actor,
        role: str | None = None,
        current_session: str | None = None,
    ) -> StaffUser:
        """An administrator's change: role, reset TOTP (re-enrol at next login), unlock, disable or
        enable. Audited with what changed, never the value. No password: an administrator never sets
        one (``reset`` issues an enrolment link instead). A role change, TOTP reset or disable ends the
        account's sessions in the same transaction (but ``current_session``, the digest of the session
        making the change)."""
        from .sessions import end_sessions  # sessions imports this module

        values: dict[str, Any]
        if change == "role":
            values = {"role": check_role(role or "")}
        elif change == "totp-reset":
            values = {
                "totp_enrolled": False,
                "totp_key_id": None,
                "totp_nonce": None,
                "totp_ciphertext": None,
            }
            values["totp_last_step"] = None
        elif change == "unlock":
            values = {"failed_logins": 0, "locked_until": None}
        elif change in ("disable", "enable"):
            values = {"disabled": change == "disable"}
        else:
            raise InvalidStaffInput("not a change an administrator makes")
        with self._account_write(username) as (conn, append):
            if self._row(conn, username) is None:
                raise UnknownUser("no such account")
            conn.execute(
                update(staff_users_table).where(staff_users_table.c.username == username).values(**values)
            )
            if change == "totp-reset":
                self._set_recovery_codes(conn, username, [])
            append(
                self._event(
                    by,
                    AuditAction.STAFF_USER_UPDATE,
                    "success",
                    username,
                    change=change,
                    role=values.get("role"),
                )
            )
            if change in ("role", "totp-reset", "disable"):
                end_sessions(conn, append, username, change, self.now(), keep=current_session)
            row = self._row(conn, username)
        assert row is not None
        return user_from_row(row)

    # ------------------------------------------------------------------ enrolment links

    def reset(self, username: str, *, by: Actor | None = None) -> EnrolmentLink:
        """An administrator's reset (a forgotten password, a lost phone, a suspected compromise): the
        password and second factor are cleared, recovery codes and sessions deleted, any older link
        voided, and a new link issued, all in one audited transaction. Also how an administrator gives a
        pending account a fresh link when the first one expired."""
        from .sessions import end_sessions  # sessions imports this module

        actor = by or self._service
        now = self.now()
        with self._account_write(username, repair=actor) as (conn, append):
            if self._row(conn, username) is None:
                raise UnknownUser("no such account")
            conn.execute(
                update(staff_users_table)
                .where(staff_users_table.c.username == username)
                .values(
                    password_hash=UNUSABLE_PASSWORD,
                    totp_enrolled=False,
                    totp_key_id=None,
                    totp_nonce=None,
                    totp_ciphertext=None,
                    totp_last_step=None,
                    failed_logins=0,
                    locked_until=None,
                )
            )
            self._set_recovery_codes(conn, username, [])
            append(
                self._event(
                    actor, AuditAction.STAFF_USER_UPDATE, "success", username, change="enrolment-reset"
                )
            )
            end_sessions(conn, append, username, "enrolment-reset", now)
            return self._issue_link(conn, append, username, actor, now)

    def enrolment_account(self, token: str) -> LoginCheck:
        """The account a link enrols, if the link can still be used (unknown, superseded, used, expired
        and disabled-account links are refused, each refusal audited by reason); it is not spent here."""
        _link, check = self._usable_link(token)
        return check

    def complete_enrolment(self, token: str, password: str, code: str) -> tuple[LoginCheck, list[str]]:
        """The owner sets a password and proves the TOTP app with a code from the pending secret (the one
        ``enrolment_secret`` showed). The link is spent by a conditional update in the same transaction
        that sets the password, enrols TOTP, stores ten new recovery codes (returned once) and records the
        login: of two concurrent uses, one succeeds. Raises ``InvalidStaffInput`` for a password that
        breaks the rules (the link stays usable)."""
        link, check = self._usable_link(token)
        if link is None or check.user is None or not check.ok:
            return check, []
        user = check.user
        password_hash = self._hasher.hash(check_password(password, user.username))
        row = self.user_row(user.username)
        if row is None or row.totp_enrolled:  # another use of this link finished first
            self._enrolment_refused(user.username, "EnrolmentLinkUsed")
            return LoginCheck(user, "EnrolmentLinkUsed"), []
        secret = self._secret(row)
        step = None if secret is None else totp.accepted_step(secret, code, self._clock(), None)
        if step is None:
            self._enrolment_refused(user.username, "BadCode")
            return LoginCheck(user, "BadCode"), []
        codes = totp.new_recovery_codes()
        now = self.now()
        t = staff_enrolment_table
        with self._account_write(user.username) as (conn, append):
            spent = conn.execute(
                update(t)
                .where(t.c.token_mac == link.token_mac)
                .where(t.c.used_at.is_(None))
                .where(t.c.expires_at > to_db_time(now))
                .values(used_at=to_db_time(now))
            )
            if spent.rowcount != 1:  # used, superseded or expired since it was checked
                append(self._enrolment_event(user.username, "denied", "EnrolmentLinkUsed"))
                return LoginCheck(user, "EnrolmentLinkUsed"), []
            conn.execute(
                update(staff_users_table)
                .where(staff_users_table.c.username == user.username)
                .values(
                    password_hash=password_hash,
                    totp_enrolled=True,
                    totp_last_step=step,
                    failed_logins=0,
                    locked_until=None,
                )
            )
            self._set_recovery_codes(conn, user.username, codes)
            append(self._enrolment_event(user.username, "success", None))
            append(self._login_event(Actor(kind="staff", id=user.username), "success", None))
            done = self._row(conn, user.username)
        assert done is not None
        return LoginCheck(user_from_row(done)), codes

    def _issue_link(
        self,
        conn: Connection,
        append: Callable[[AuditEvent], None],
        username: str,
        actor: Actor,
        now: datetime,
    ) -> EnrolmentLink:
        """A new link for ``username`` (any older one deleted: superseded), inside the caller's
        transaction; audited as ``enrolment-link``."""
        token = secrets.token_urlsafe(32)
        expires = now + self.enrolment_lifetime
        t = staff_enrolment_table
        conn.execute(delete(t).where(t.c.username == username))
        conn.execute(
            t.insert().values(
                token_mac=self._keyring.mac(token.encode(), purpose=ENROLMENT_PURPOSE),
                key_id=self._keyring.active_id,
                username=username,
                expires_at=to_db_time(expires),
                used_at=None,
            )
        )
        append(
            self._event(actor, AuditAction.STAFF_USER_UPDATE, "success", username, change="enrolment-link")
        )
        return EnrolmentLink(username, token, expires)

    def _usable_link(self, token: str) -> tuple[Row[Any] | None, LoginCheck]:
        """The link row and its account, or the reason it cannot be used (audited)."""
        if not _LINK_TOKEN.fullmatch(token):
            link = None
        else:
            # any key in the keyring: a link issued just before a key rotation still works
            macs = self._keyring.macs(token.encode(), purpose=ENROLMENT_PURPOSE)
            t = staff_enrolment_table
            with self._trail.engine.connect() as conn, conn.begin():
                link = conn.execute(select(t).where(t.c.token_mac.in_(macs))).first()
        row = None if link is None else self.user_row(str(link.username))
        if link is None or row is None:
            # no account to name: what was sent could be anything
            with self._trail.transaction() as (_conn, append):
                append(
                    AuditEvent(
                        time=self._clock(),
                        actor=self._service,
                        purpose=AuditPurpose.STAFF_CONSOLE,
                        action=AuditAction.STAFF_ENROLMENT,
                        outcome="denied",
                        error="UnknownEnrolmentLink",
                    )
                )
            return None, LoginCheck(None, "UnknownEnrolmentLink")
        user = user_from_row(row)
        if link.used_at is not None:
            reason: str | None = "EnrolmentLinkUsed"
        elif from_db_time(link.expires_at) <= self.now():
            reason = "EnrolmentLinkExpired"
        elif user.disabled:
            reason = "AccountDisabled"
        else:
            reason = None
        if reason is not None:
            self._enrolment_refused(user.username, reason)
            return None, LoginCheck(user, reason)
        return link, LoginCheck(user)

    def _enrolment_refused(self, username: str, reason: str) -> None:
        with self._trail.transaction() as (_conn, append):
            append(self._enrolment_event(username, "denied", reason))

    def _enrolment_event(self, username: str, outcome: AuditOutcome, reason: str | None) -> AuditEvent:
        return AuditEvent(
            time=self._clock(),
            actor=Actor(kind="staff", id=username),
            purpose=AuditPurpose.STAFF_CONSOLE,
            action=AuditAction.STAFF_ENROLMENT,
            outcome=outcome,
            resource_ids=(username,),
            error=reason,
        )

    # ------------------------------------------------------------------ login

    def check_password(self, username: str, password: str, *, lock_applies: bool = True) -> LoginCheck:
        """The first step. Every path runs one argon2 verify (against a dummy hash for a name that is no
        account or has no password yet), so how long a refusal takes says nothing about the name. A
        wrong password counts towards the lock, and a locked account is refused, only when
        ``lock_applies`` (the source has not proven itself for this account: ``throttle``). Only
        refusals are audited here (the login is recorded once the second factor passed)."""
        row = self.user_row(username)
        if row is None:
            self._verify(self._dummy_hash, password)
            with self._trail.transaction() as (_conn, append):
                append(self._login_event(self._service, "denied", "UnknownUser"))
            return LoginCheck(None, "UnknownUser")
        user = user_from_row(row)
        pending = user.enrolment_pending
        matches = self._verify(self._dummy_hash if pending else str(row.password_hash), password)
        refused = self._refusal(user, lock_applies)
        if refused:
            return self._deny(user, refused)
        if pending:
            # no password yet: nothing to guess, so not counted
            return self._deny(user, "EnrolmentPending")
        if not matches:
            return self._fail(user, "BadPassword", count=lock_applies)
        if self._hasher.check_needs_rehash(str(row.password_hash)):
            self._set(username, password_hash=self._hasher.hash(password))
        return LoginCheck(user)

    def check_code(self, username: str, code: str, *, lock_applies: bool = True) -> LoginCheck:
        """The second step: a TOTP code (each accepted once) or an unused recovery code (then deleted).
        Success resets the failure counter and records ``staff.login``. ``lock_applies``: as for
        ``check_password``."""
        row = self.user_row(username)
        if row is None:
            return LoginCheck(None, "UnknownUser")
        user = user_from_row(row)
        refused = self._refusal(user, lock_applies)
        if refused:
            return self._deny(user, refused)
        if not user.enrolled:
            return self._fail(user, "NotEnrolled", count=lock_applies)
        secret = self._secret(row)
        step = totp.accepted_step(secret, code, self._clock(), row.totp_last_step) if secret else None
        if step is not None:
            if self._consume_step(user, step):
                return LoginCheck(user)
            return self._fail(user, "BadCode", count=lock_applies)  # the step was spent meanwhile
        if totp.looks_like_recovery_code(code) and self._spend_recovery_code(username, code):
            return self._succeed(user)
        return self._fail(user, "BadCode", count=lock_applies)

    def enrolment_secret(self, username: str) -> str:
        """The pending TOTP secret of an account that has not enrolled yet (made on first ask, then the
        same one until enrolment succeeds, so reloading the page shows the same QR code)."""
        row = self.user_row(username)
        if row is None:
            raise UnknownUser("no such account")
        if row.totp_enrolled:
            raise InvalidStaffInput("this account already has a second factor")
        secret = self._secret(row)
        if secret is None:
            secret = totp.new_secret()
            sealed = self._keyring.seal(secret.encode(), _aad(username))
            self._set(
                username,
                totp_key_id=sealed.key_id,
                totp_nonce=sealed.nonce,
                totp_ciphertext=sealed.ciphertext,
            )
        return secret

    def finish_enrolment(
        self, username: str, code: str, *, lock_applies: bool = True, session: str | None = None
    ) -> tuple[LoginCheck, list[str]]:
        """Enrolment succeeds when a code from the app matches the pending secret: the account is then
        enrolled, gets ten new recovery codes (returned once, stored as digests) and is logged in. The
        enrolment is a conditional update (of two concurrent ones, one succeeds), and it ends the
        account's other sessions (all but ``session``, the digest of the one enrolling)."""
        from .sessions import end_sessions  # sessions imports this module

        row = self.user_row(username)
        if row is None:
            return LoginCheck(None, "UnknownUser"), []
        user = user_from_row(row)
        refused = self._refusal(user, lock_applies)
        if refused:
            return self._deny(user, refused), []
        secret = self._secret(row)
        step = (
            None
            if row.totp_enrolled or secret is None
            else totp.accepted_step(secret, code, self._clock(), None)
        )
        if step is None:
            return self._fail(user, "BadCode", count=lock_applies), []
        codes = totp.new_recovery_codes()
        t = staff_users_table
        with self._account_write(username) as (conn, append):
            enrolled = conn.execute(
                update(t)
                .where(t.c.username == username, t.c.totp_enrolled.is_(False))
                .values(totp_enrolled=True, totp_last_step=step)
            )
            if enrolled.rowcount == 1:
                self._set_recovery_codes(conn, username, codes)
                end_sessions(conn, append, username, "totp-enrolled", self.now(), keep=session)
                append(self._own_change(username, "totp-enrolled"))
        if enrolled.rowcount != 1:  # another submission enrolled it first
            return self._fail(user, "BadCode", count=lock_applies), []
        return self._succeed(user_from_row(self.user_row(username) or row)), codes

    # ------------------------------------------------------------------ internals

    def user_row(self, username: str) -> Row[Any] | None:
        """The account's row if it passes its tag. One that fails reads as no account at all (and is
        alarmed): nothing on it, a role, a hash, a TOTP secret, is believed."""
        if not _USERNAME.fullmatch(username):
            return None
        with self._trail.engine.connect() as conn, conn.begin():
            row = self._row(conn, username)
        return row if row is not None and self.trusted(row) else None

    def _row(self, conn: Connection, username: str) -> Row[Any] | None:
        return conn.execute(select(staff_users_table).where(staff_users_table.c.username == username)).first()

    def _set(self, username: str, **values: object) -> None:
        with self._account_write(username) as (conn, _append):
            conn.execute(
                update(staff_users_table).where(staff_users_table.c.username == username).values(**values)
            )

    @contextmanager
    def _account_write(
        self, username: str, *, repair: Actor | None = None
    ) -> Iterator[tuple[Connection, Callable[[AuditEvent], None]]]:
        """The audited transaction for any write to an account's row: the row is locked and checked
        first, and tagged again last, so the tag covers exactly what the transaction leaves and no
        change made meanwhile by someone else is folded in. A row that fails is refused
        (``AccountTampered``), except for ``repair`` (an administrator's reset, by that actor), which
        first drops it to the least privilege, front desk (audited as a role change). Alarmed after the
        transaction either way."""
        failed: Verdict | None = None
        try:
            with self._trail.transaction() as (conn, append):
                t = staff_users_table
                row = conn.execute(select(t).where(t.c.username == username).with_for_update()).first()
                if row is not None:
                    verdict = STAFF_SEAL.check(self._keyring, row._mapping)
                    if verdict is not Verdict.OK:
                        failed = verdict
                        if repair is None:
                            raise AccountTampered(
                                "this account was changed outside the console: reset it to repair it"
                            )
                        conn.execute(update(t).where(t.c.username == username).values(role="front-desk"))
                        append(
                            self._event(
                                repair,
                                AuditAction.STAFF_USER_UPDATE,
                                "success",
                                username,
                                change="role",
                                role="front-desk",
                            )
                        )
                yield conn, append
                after = self._row(conn, username)
                if after is not None:
                    conn.execute(
                        update(t)
                        .where(t.c.username == username)
                        .values(**STAFF_SEAL.tag(self._keyring, after._mapping))
                    )
        finally:
            if failed is not None:
                self._alarm("staff-account", username, failed)

    def _seal_existing(
        self,
        conn: Connection,
        append: Callable[[AuditEvent], None],
        table: Table,
        seal: RowSeal,
        change: StaffChange | None = None,
    ) -> None:
        """The tag columns were just added to ``table``: tag its rows, once, and audit it (``record.seal``)
        in the same transaction. The ids are account names (for recovery codes each account once, with
        ``change`` naming the table: a digest is no id to put on the trail)."""
        names = sorted({str(row.username) for row in seal_existing(conn, table, seal, self._keyring)})
        for event in seal_events(
            self._service, AuditPurpose.STAFF_CONSOLE, names, now=self._clock(), staff_change=change
        ):
            append(event)

    def _set_recovery_codes(self, conn: Connection, username: str, codes: list[str]) -> None:
        """Replace the account's recovery codes with ``codes`` (none: deleted), each row a digest and its
        tag, inside the caller's transaction."""
        t = staff_recovery_table
        conn.execute(delete(t).where(t.c.username == username))
        rows = [{"username": username, "digest": totp.recovery_digest(code)} for code in codes]
        if rows:
            conn.execute(t.insert(), [{**row, **RECOVERY_SEAL.tag(self._keyring, row)} for row in rows])

    def _spend_recovery_code(self, username: str, code: str) -> bool:
        """Delete ``code`` from the account's unused recovery codes (audited as ``recovery-code-used``)
        if its row passes its tag. A row that fails (written in SQL by someone who knows the code but
        not the audit key) spends nothing, logs nobody in, and is alarmed after the transaction."""
        t = staff_recovery_table
        mine = (t.c.username == username, t.c.digest == totp.recovery_digest(code))
        with self._trail.transaction() as (conn, append):
            row = conn.execute(select(t).where(*mine).with_for_update()).first()
            verdict = None if row is None else RECOVERY_SEAL.check(self._keyring, row._mapping)
            spent = verdict is Verdict.OK and conn.execute(delete(t).where(*mine)).rowcount == 1
            if spent:
                append(self._own_change(username, "recovery-code-used"))
        if verdict is not None and verdict is not Verdict.OK:
            self._alarm("staff-recovery-code", username, verdict)
        return spent

    def _verify(self, password_hash: str, password: str) -> bool:
        try:
            return self._hasher.verify(password_hash, password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False

    def _secret(self, row: Row[Any]) -> str | None:
        if row.totp_ciphertext is None:
            return None
        try:
            sealed = Sealed(str(row.totp_key_id), bytes(row.totp_nonce), bytes(row.totp_ciphertext))
            return self._keyring.open(sealed, _aad(str(row.username))).decode()
        except DecryptionError:
            return None  # a secret sealed under a key no longer in the keyring: the admin resets TOTP

    def refuse(self, username: str, reason: str) -> LoginCheck:
        """A login step refused before the account is checked (its source must wait): audited like any
        refusal, and a name that is no account is not written down."""
        row = self.user_row(username)
        if row is None:
            with self._trail.transaction() as (_conn, append):
                append(self._login_event(self._service, "denied", reason))
            return LoginCheck(None, reason)
        return self._deny(user_from_row(row), reason)

    def _refusal(self, user: StaffUser, lock_applies: bool = True) -> str | None:
        if user.disabled:
            return "AccountDisabled"
        if lock_applies and user.locked(self.now()):
            return "AccountLocked"
        return None

    def _deny(self, user: StaffUser, reason: str) -> LoginCheck:
        with self._trail.transaction() as (_conn, append):
            append(self._login_event(Actor(kind="staff", id=user.username), "denied", reason))
        return LoginCheck(user, reason)

    def _consume_step(self, user: StaffUser, step: int) -> bool:
        """Accept TOTP ``step`` once: a conditional update that only a step newer than the last accepted
        one passes, so of two submissions of one code exactly one hits the row (and logs in)."""
        t = staff_users_table
        with self._account_write(user.username) as (conn, append):
            hit = conn.execute(
                update(t)
                .where(t.c.username == user.username)
                .where(or_(t.c.totp_last_step.is_(None), t.c.totp_last_step < step))
                .values(totp_last_step=step, failed_logins=0)  # a lock stays: ``_succeed``
            )
            if hit.rowcount == 1:
                append(self._login_event(Actor(kind="staff", id=user.username), "success", None))
        return hit.rowcount == 1

    def _fail(self, user: StaffUser, reason: str, *, count: bool = True) -> LoginCheck:
        """A wrong password or code: count it (unless the source has proven itself for the account:
        ``count`` False), lock at the threshold, audit both."""
        if not count:
            return self._deny(user, reason)
        now = self.now()
        with self._trail.transaction() as (conn, append):
            t = staff_users_table
            row = self._row(conn, user.username)
            failed = (int(row.failed_logins) if row is not None else 0) + 1
            lock = failed >= self._threshold
            conn.execute(
                update(t)
                .where(t.c.username == user.username)
                .values(
                    failed_logins=0 if lock else failed,
                    locked_until=to_db_time(now + self._lockout) if lock else None,
                )
            )
            append(self._login_event(Actor(kind="staff", id=user.username), "denied", reason))
            if lock:
                append(
                    self._event(
                        self._service,
                        AuditAction.STAFF_USER_UPDATE,
                        "success",
                        user.username,
                        change="locked",
                    )
                )
        return LoginCheck(user, "AccountLocked" if lock else reason)

    def _succeed(self, user: StaffUser, **values: object) -> LoginCheck:
        """A login: the failure count starts again. A lock stays until it expires or an administrator
        lifts it: the owner signing in from a proven source says nothing about the outsider it stops."""
        with self._account_write(user.username) as (conn, append):
            conn.execute(
                update(staff_users_table)
                .where(staff_users_table.c.username == user.username)
                .values(failed_logins=0, **values)
            )
            append(self._login_event(Actor(kind="staff", id=user.username), "success", None))
        return LoginCheck(user)

    def _login_event(self, actor: Actor, outcome: AuditOutcome, reason: str | None) -> AuditEvent:
        return AuditEvent(
            time=self._clock(),
            actor=actor,
            purpose=AuditPurpose.STAFF_CONSOLE,
            action=AuditAction.STAFF_LOGIN,
            outcome=outcome,
            error=reason,
        )

    def _own_change(self, username: str, change: StaffChange) -> AuditEvent:
        """A change the account's owner made to their own second factor."""
        return self._event(
            Actor(kind="staff", id=username),
            AuditAction.STAFF_USER_UPDATE,
            "success",
            username,
            change=change,
        )

    def _event(
        self,
        actor: Actor,
        action: AuditAction,
        outcome: AuditOutcome,
        username: str,
        *,
        change: StaffChange | None = None,
        role: StaffRole | None = None,
    ) -> AuditEvent:
        return AuditEvent(
            time=self._clock(),
            actor=actor,
            purpose=AuditPurpose.STAFF_CONSOLE,
            action=action,
            outcome=outcome,
            resource_ids=(username,),
            staff_change=change,
            staff_role=role,
        )


def user_from_row(row: Row[Any]) -> StaffUser:
    return StaffUser(
        username=str(row.username),
        role=check_role(str(row.role)),
        enrolled=bool(row.totp_enrolled),
        disabled=bool(row.disabled),
        failed_logins=int(row.failed_logins),
        locked_until=from_db_time(row.locked_until) if row.locked_until is not None else None,
        created_at=from_db_time(row.created_at),
        enrolment_pending=row.password_hash == UNUSABLE_PASSWORD,
    )
