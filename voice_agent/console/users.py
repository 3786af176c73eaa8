"""Staff accounts, in the audit trail's database: each change commits in one transaction with its event.

A row holds the account name, its role, an argon2id password hash, the TOTP secret sealed with
AES-256-GCM under the audit keyring (bound to the account name), the last TOTP step accepted (so a code
works once), the failed-login counter and lock, and whether the account is disabled. Recovery codes are
SHA-256 digests in their own table. Nothing here is patient data; none of it is logged.

Every login attempt is an audit event (``staff.login``: success, or denied with the reason's class
name), and so is every change to an account (``staff.user.create`` / ``staff.user.update`` with the role
or what changed, never a value). A name that is not an account is audited with the service as actor and
no name at all: what someone typed into the user field could be anything, a patient's name included.

Blocking SQL and a deliberately slow hash: call it from the event loop with ``asyncio.to_thread``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
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
)

staff_recovery_table = Table(
    "staff_recovery_codes",
    metadata,
    Column("username", String(32), primary_key=True),
    Column("digest", String(64), primary_key=True),
)


class StaffError(Exception):
    """Base class; messages name the rule broken, never a password, secret or code."""


class InvalidStaffInput(StaffError, ValueError):
    """A user name, role or password that breaks the rules."""


class UserExists(StaffError):
    pass


class UnknownUser(StaffError, LookupError):
    pass


@dataclass(frozen=True)
class StaffUser:
    username: str
    role: StaffRole
    enrolled: bool
    disabled: bool
    failed_logins: int
    locked_until: datetime | None
    created_at: datetime

    def locked(self, now: datetime) -> bool:
        return self.locked_until is not None and self.locked_until > now

    @property
    def role_name(self) -> str:
        return ROLE_NAMES[self.role]


@dataclass(frozen=True)
class LoginCheck:
    """The answer to one login step: the account when it passed, else the reason (an error class name
    the audit trail records; the page says the same vague thing for every reason but a lock)."""

    user: StaffUser | None
    reason: str | None = None

    @property
    def ok(self) -> bool:
        return self.user is not None and self.reason is None


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
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self._trail = trail
        self._keyring = keyring
        self._service = Actor(kind="service", id=service_identity)
        self._threshold = lockout_threshold
        self._lockout = lockout
        self._clock = clock or (lambda: datetime.now(UTC))
        self._hasher = PasswordHasher()
        #: Verified against when the name is unknown, so a miss costs what a wrong password costs.
        self._dummy_hash = self._hasher.hash("not an account's password")
        with trail.transaction() as (conn, _append):
            create_tables(conn, metadata)

    def now(self) -> datetime:
        return from_db_time(to_db_time(self._clock()))

    # ------------------------------------------------------------------ accounts

    def add_user(self, username: str, role: str, password: str, *, by: Actor | None = None) -> StaffUser:
        """Create an account (TOTP is enrolled at its first login). ``by``: the administrator, or the
        service when the command line creates one."""
        username = check_username(username)
        checked_role = check_role(role)
        password_hash = self._hasher.hash(check_password(password, username))
        actor = by or self._service
        now = self.now()

        with self._trail.transaction() as (conn, append):
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
        return StaffUser(username, checked_role, False, False, 0, None, now)

    def users(self) -> list[StaffUser]:
        with self._trail.engine.connect() as conn, conn.begin():
            rows = conn.execute(select(staff_users_table).order_by(staff_users_table.c.username)).all()
        return [user_from_row(row) for row in rows]

    def user(self, username: str) -> StaffUser | None:
        with self._trail.engine.connect() as conn, conn.begin():
            row = self._row(conn, username)
        return None if row is None else user_from_row(row)

    def change(
        self,
        username: str,
        change: StaffChange,
        *,
        by: Actor,
        role: str | None = None,
        password: str | None = None,
    ) -> StaffUser:
        """An administrator's change: role, password, reset TOTP (re-enrol at next login), unlock,
        disable or enable. Audited with what changed, never the value."""
        values: dict[str, Any]
        if change == "role":
            values = {"role": check_role(role or "")}
        elif change == "password":
            values = {"password_hash": self._hasher.hash(check_password(password or "", username))}
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
        with self._trail.transaction() as (conn, append):
            if self._row(conn, username) is None:
                raise UnknownUser("no such account")
            conn.execute(
                update(staff_users_table).where(staff_users_table.c.username == username).values(**values)
            )
            if change == "totp-reset":
                conn.execute(delete(staff_recovery_table).where(staff_recovery_table.c.username == username))
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
            row = self._row(conn, username)
        assert row is not None
        return user_from_row(row)

    # ------------------------------------------------------------------ login

    def check_password(self, username: str, password: str) -> LoginCheck:
        """The first step. A wrong password counts towards the lock; a locked or disabled account is
        refused before its hash is checked. Only refusals are audited here (``login_succeeded`` records
        the whole login once the second factor passed)."""
        row = self.user_row(username)
        if row is None:
            self._verify(self._dummy_hash, password)
            with self._trail.transaction() as (_conn, append):
                append(self._login_event(self._service, "denied", "UnknownUser"))
            return LoginCheck(None, "UnknownUser")
        user = user_from_row(row)
        refused = self._refusal(user)
        if refused:
            return self._deny(user, refused)
        if not self._verify(str(row.password_hash), password):
            return self._fail(user, "BadPassword")
        if self._hasher.check_needs_rehash(str(row.password_hash)):
            self._set(username, password_hash=self._hasher.hash(password))
        return LoginCheck(user)

    def check_code(self, username: str, code: str) -> LoginCheck:
        """The second step: a TOTP code (each accepted once) or an unused recovery code (then deleted).
        Success resets the failure counter and records ``staff.login``."""
        row = self.user_row(username)
        if row is None:
            return LoginCheck(None, "UnknownUser")
        user = user_from_row(row)
        refused = self._refusal(user)
        if refused:
            return self._deny(user, refused)
        if not user.enrolled:
            return self._fail(user, "NotEnrolled")
        secret = self._secret(row)
        step = totp.accepted_step(secret, code, self._clock(), row.totp_last_step) if secret else None
        if step is not None:
            return self._succeed(user, totp_last_step=step)
        if totp.looks_like_recovery_code(code):
            digest = totp.recovery_digest(code)
            with self._trail.transaction() as (conn, append):
                t = staff_recovery_table
                used = conn.execute(delete(t).where(t.c.username == username).where(t.c.digest == digest))
                if used.rowcount == 1:
                    append(
                        self._event(
                            Actor(kind="staff", id=username),
                            AuditAction.STAFF_USER_UPDATE,
                            "success",
                            username,
                            change="recovery-code-used",
                        )
                    )
            if used.rowcount == 1:
                return self._succeed(user)
        return self._fail(user, "BadCode")

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

    def finish_enrolment(self, username: str, code: str) -> tuple[LoginCheck, list[str]]:
        """Enrolment succeeds when a code from the app matches the pending secret: the account is then
        enrolled, gets ten new recovery codes (returned once, stored as digests) and is logged in."""
        row = self.user_row(username)
        if row is None:
            return LoginCheck(None, "UnknownUser"), []
        user = user_from_row(row)
        refused = self._refusal(user)
        if refused:
            return self._deny(user, refused), []
        secret = self._secret(row)
        step = (
            None
            if row.totp_enrolled or secret is None
            else totp.accepted_step(secret, code, self._clock(), None)
        )
        if step is None:
            return self._fail(user, "BadCode"), []
        codes = totp.new_recovery_codes()
        with self._trail.transaction() as (conn, append):
            conn.execute(delete(staff_recovery_table).where(staff_recovery_table.c.username == username))
            conn.execute(
                staff_recovery_table.insert(),
                [{"username": username, "digest": totp.recovery_digest(c)} for c in codes],
            )
            conn.execute(
                update(staff_users_table)
                .where(staff_users_table.c.username == username)
                .values(totp_enrolled=True, totp_last_step=step)
            )
            append(
                self._event(
                    Actor(kind="staff", id=username),
                    AuditAction.STAFF_USER_UPDATE,
                    "success",
                    username,
                    change="totp-enrolled",
                )
            )
        return self._succeed(user_from_row(self.user_row(username) or row)), codes

    # ------------------------------------------------------------------ internals

    def user_row(self, username: str) -> Row[Any] | None:
        if not _USERNAME.fullmatch(username):
            return None
        with self._trail.engine.connect() as conn, conn.begin():
            return self._row(conn, username)

    def _row(self, conn: Connection, username: str) -> Row[Any] | None:
        return conn.execute(select(staff_users_table).where(staff_users_table.c.username == username)).first()

    def _set(self, username: str, **values: object) -> None:
        with self._trail.transaction() as (conn, _append):
            conn.execute(
                update(staff_users_table).where(staff_users_table.c.username == username).values(**values)
            )

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

    def _refusal(self, user: StaffUser) -> str | None:
        if user.disabled:
            return "AccountDisabled"
        if user.locked(self.now()):
            return "AccountLocked"
        return None

    def _deny(self, user: StaffUser, reason: str) -> LoginCheck:
        with self._trail.transaction() as (_conn, append):
            append(self._login_event(Actor(kind="staff", id=user.username), "denied", reason))
        return LoginCheck(user, reason)

    def _fail(self, user: StaffUser, reason: str) -> LoginCheck:
        """A wrong password or code: count it, lock at the threshold, audit both."""
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
        with self._trail.transaction() as (conn, append):
            conn.execute(
                update(staff_users_table)
                .where(staff_users_table.c.username == user.username)
                .values(failed_logins=0, locked_until=None, **values)
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
    )
