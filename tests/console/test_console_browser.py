"""The staff console in a real headless Chromium against a real ``voice-agent serve`` (TLS, the private
FHIR sandbox, DEBUG logging, a 40-second inactivity logoff), with escalations made by real
``voice-agent chat`` calls and accounts made by ``voice-agent staff add-user`` (each owner sets their
password and TOTP through the one-time link it prints). Nothing is mocked.

The tests share one server and run in order, as a front desk's morning would: sign in with a password
and TOTP (enrolling first), watch an urgent escalation arrive without a reload, open it (name and birth
date from FHIR), claim and resolve it; be refused pages of other roles; be signed out when idle. The
last one is the canary scan: a planted patient's escalation goes through the console, then neither the
server's debug log nor any file it wrote holds the canary's name, birth date or number, and the
database holds the escalation only sealed.
"""

from __future__ import annotations

import os
import re
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from uuid import uuid4

import pyotp
import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright
from sqlalchemy import create_engine, update

from harness.browser import CHROMIUM, CHROMIUM_FLAGS, spki_pin
from harness.canary import canary_forms, plant_canary
from harness.real_parts import needs
from harness.sandbox import Sandbox
from harness.voice_server import VoiceServer, start_voice_server, stop_voice_server
from voice_agent.audit import AuditTrail, Keyring
from voice_agent.audit.alerts import ALERT_RULES
from voice_agent.console.routes import format_phone
from voice_agent.escalations import EscalationCategory, EscalationStore
from voice_agent.escalations.store import escalations_table
from voice_agent.phone_numbers import to_e164
from voice_agent.sandbox.private import VOICE_AGENT

pytestmark = needs("chromium")

IDLE_SECONDS = 40
#: The README's screenshots are refreshed only on request (UPDATE_SCREENSHOTS=1); otherwise they go to
#: the test's tmp dir, so a test run leaves the working tree as it was.
DOCS = Path(__file__).resolve().parents[2] / "docs"


def screenshot_path(name: str, tmp: Path) -> Path:
    return (DOCS if os.environ.get("UPDATE_SCREENSHOTS") == "1" else tmp) / name


PASSWORD = "correct horse battery staple"


@dataclass
class Account:
    name: str
    role: str
    #: The one-time enrolment link (``staff add-user`` printed it, or the admin's page showed it).
    link: str | None = None
    secret: str | None = None
    last_step: int = -1
    recovery: list[str] = field(default_factory=list)

    def code(self) -> str:
        """A TOTP code for a step the account has not used yet (the server accepts each once, one step
        either side of now). Never the step before now: by the time the browser submits it, the clock
        may have moved on and left it outside the window, as a person's phone never would."""
        assert self.secret is not None
        totp = pyotp.TOTP(self.secret)
        while True:
            current = totp.timecode(datetime.now(UTC))
            step = max(current, self.last_step + 1)
            if step <= current + 1:
                self.last_step = step
                return totp.generate_otp(step)
            time.sleep(1)


@pytest.fixture(scope="module")
def server(sandbox: Sandbox, tmp_path_factory: pytest.TempPathFactory) -> Iterator[VoiceServer]:
    running = start_voice_server(
        sandbox,
        tmp_path_factory.mktemp("console") / "product",
        VOICE_AGENT_STAFF_IDLE_TIMEOUT_SECONDS=str(IDLE_SECONDS),
    )
    try:
        yield running
    finally:
        stop_voice_server(running)


@pytest.fixture(scope="module")
def accounts(server: VoiceServer) -> dict[str, Account]:
    made = {}
    # one front-desk account per test: each login takes a fresh TOTP step, and a second login by the
    # same account within 30 s would wait for the next one
    front_desk = ["frontdesk", "maria", "desk-b", "desk-c", "desk-d"]
    for name, role in [
        *((n, "front-desk") for n in front_desk),
        ("compliance", "compliance"),
        ("admin", "admin"),
    ]:
        done = run_voice_agent(
            server,
            ["staff", "add-user", name, "--role", role, "--base-url", server.base_url],
            [],
            timeout=60,
        )
        made[name] = Account(name, role, link=printed_link(server, done.stdout))
    return made


def printed_link(server: VoiceServer, stdout: str) -> str:
    """The enrolment link ``staff add-user`` / ``reset-user`` printed (once: nothing stores it)."""
    links = [line for line in stdout.splitlines() if line.startswith(f"{server.base_url}/staff/enrol/")]
    assert len(links) == 1, stdout
    return links[0]


@pytest.fixture(scope="module")
def browser(sandbox: Sandbox, server: VoiceServer) -> Iterator[Browser]:
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=str(CHROMIUM),
            headless=True,
            args=[
                *CHROMIUM_FLAGS,
                f"--ignore-certificate-errors-spki-list={spki_pin(sandbox.certs.path('server.pem'))}",
            ],
        )
        try:
            yield launched
        finally:
            launched.close()


def new_page(browser: Browser, *, width: int = 1280, height: int = 860) -> Page:
    page = browser.new_context(viewport={"width": width, "height": height}).new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    # script errors only: a refused login or a 403 page is the browser's "failed to load resource"
    page.on(
        "console",
        lambda m: errors.append(m.text) if m.type == "error" and "Failed to load" not in m.text else None,
    )
    page.errors = errors  # type: ignore[attr-defined]
    return page


def sign_in(page: Page, server: VoiceServer, account: Account) -> None:
    """The first time, enrolment through the account's one-time link (a password, the TOTP key read off
    the page as a person would type it into an app, then the recovery codes); afterwards the password,
    then TOTP."""
    if account.secret is None:
        assert account.link is not None
        enrol_with_link(page, account)
    else:
        page.goto(f"{server.base_url}/staff/login")
        page.get_by_label("User name").fill(account.name)
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Continue").click()
        page.get_by_label("Code from your authenticator app").fill(account.code())
        page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("button", name="Sign out")).to_be_visible()


def enrol_with_link(page: Page, account: Account) -> None:
    assert account.link is not None
    page.goto(account.link)
    expect(page.get_by_role("heading", name="Set up your account")).to_be_visible()
    expect(page.locator("#enrol-username")).to_have_text(account.name)
    page.get_by_label("New password").fill(PASSWORD)
    page.get_by_label("Repeat the password").fill(PASSWORD)
    expect(page.locator("figure.qr svg")).to_be_visible()
    account.secret = page.locator("#totp-key").inner_text().replace(" ", "")
    page.get_by_label("Code from the app").fill(account.code())
    page.get_by_role("button", name="Finish setting up").click()
    expect(page.get_by_role("heading", name="Your recovery codes")).to_be_visible()
    account.recovery = page.locator("#recovery-codes code").all_inner_texts()
    assert len(account.recovery) == 10
    page.get_by_role("link", name="I have kept them: continue").click()


def run_voice_agent(
    server: VoiceServer, args: list[str], lines: list[str], *, timeout: float
) -> subprocess.CompletedProcess[str]:
    """The ``voice-agent`` command against the same database and FHIR sandbox as the server, with
    ``lines`` typed on its standard input; it must succeed."""
    done = subprocess.run(
        [VOICE_AGENT, *args],
        input="\n".join(lines) + "\n",
        env=server.env,
        cwd=server.product / "cwd",
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done


def chat(server: VoiceServer, caller_id: str, lines: list[str]) -> subprocess.CompletedProcess[str]:
    """A ``voice-agent chat`` call."""
    return run_voice_agent(
        server, ["chat", "--caller-id", caller_id, "--understanding", "rules"], lines, timeout=120
    )


def emergency_call(server: VoiceServer, caller_id: str, given: str, family: str, born: date) -> None:
    done = chat(
        server,
        caller_id,
        ["when is my next appointment", f"{given} {family}", f"{born:%B} {born.day} {born.year}",
         "I have crushing chest pain right now"],
    )  # fmt: skip
    assert "9 1 1" in done.stdout.splitlines()[-1], done.stdout


def audit_events(server: VoiceServer) -> list[dict[str, object]]:
    keyring = Keyring.from_file(server.product / "audit.key")
    with AuditTrail.open(server.env["VOICE_AGENT_AUDIT_DATABASE_URL"], keyring) as trail:
        assert trail.verify().ok
        now = datetime.now(UTC)
        return [row["event"] for row in trail.export(now - timedelta(hours=2), now + timedelta(hours=1))]


def test_sign_in_with_password_and_totp(
    server: VoiceServer, browser: Browser, accounts: dict[str, Account]
) -> None:
    frontdesk = accounts["frontdesk"]
    page = new_page(browser)
    page.goto(f"{server.base_url}/staff")
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()  # not signed in: the login page

    # a password is refused, with the same words whatever was wrong (here: the account has none yet)
    page.get_by_label("User name").fill("frontdesk")
    page.get_by_label("Password").fill("not the password at all")
    page.get_by_role("button", name="Continue").click()
    expect(page.get_by_role("alert")).to_contain_text("not right")

    sign_in(page, server, frontdesk)  # first time: enrolment with the QR code, then recovery codes
    expect(page.get_by_role("heading", name="Escalations")).to_be_visible()
    cookies = {c["name"]: c for c in page.context.cookies()}
    session = cookies["__Host-staff"]
    assert session["httpOnly"] and session["secure"] and session["sameSite"] == "Strict"
    assert "expires" not in session or session["expires"] == -1  # a browser-session cookie

    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_text("You have signed out.")).to_be_visible()
    sign_in(page, server, frontdesk)  # second time: password and a TOTP code
    expect(page.get_by_role("heading", name="Escalations")).to_be_visible()
    # a used code does not work twice: replaying it at a fresh login is refused
    other = new_page(browser)
    other.goto(f"{server.base_url}/staff/login")
    other.get_by_label("User name").fill("frontdesk")
    other.get_by_label("Password").fill("not the password at all")
    other.get_by_role("button", name="Continue").click()
    expect(other.get_by_role("alert")).to_contain_text("not right")
    other.get_by_label("User name").fill("frontdesk")
    other.get_by_label("Password").fill(PASSWORD)
    other.get_by_role("button", name="Continue").click()
    assert frontdesk.secret is not None
    other.get_by_label("Code from your authenticator app").fill(
        pyotp.TOTP(frontdesk.secret).generate_otp(frontdesk.last_step)
    )
    other.get_by_role("button", name="Sign in").click()
    expect(other.get_by_role("alert")).to_contain_text("not right")
    # ...but a recovery code does, once
    other.get_by_label("Code from your authenticator app").fill(frontdesk.recovery[0])
    other.get_by_role("button", name="Sign in").click()
    expect(other.get_by_role("heading", name="Escalations")).to_be_visible()
    other.context.close()
    assert page.errors == []  # type: ignore[attr-defined]

    logins = [e for e in audit_events(server) if e["action"] == "staff.login"]
    assert any(e["outcome"] == "denied" and e.get("error") == "EnrolmentPending" for e in logins)
    assert any(e["outcome"] == "denied" and e.get("error") == "BadPassword" for e in logins)
    assert sum(1 for e in logins if e["outcome"] == "success") >= 3
    page.context.close()


def test_an_urgent_escalation_appears_claimed_and_resolved(
    sandbox: Sandbox, server: VoiceServer, browser: Browser, accounts: dict[str, Account], tmp_path: Path
) -> None:
    page = new_page(browser)
    sign_in(page, server, accounts["maria"])
    page.evaluate("() => { window.__sameDocument = true; }")  # gone if the page reloads

    caller = sandbox.clinic.patient("hyphenated")
    emergency_call(server, caller.phone, caller.given, caller.family, caller.birth_date)

    row = page.locator("#queue tr.urgent", has_text="Emergency").first
    expect(row).to_be_visible(timeout=15_000)  # server-sent event, then the rows fetched: no reload
    assert page.evaluate("() => window.__sameDocument === true")
    expect(page.locator("#live")).to_contain_text("urgent")
    page.screenshot(path=str(screenshot_path("console-queue.png", tmp_path)))

    row.get_by_role("link").click()
    detail = page.locator("section.detail")
    expect(detail.locator("#patient-name")).to_have_text(f"{caller.given} {caller.family}")
    born = caller.birth_date
    expect(detail.locator("#patient-dob")).to_have_text(f"{born:%B} {born.day}, {born.year}")
    expect(detail.locator("#callback")).to_have_text(format_phone(to_e164(caller.phone)))
    page.get_by_role("button", name="Claim: I will call back").click()
    expect(detail.locator("#status")).to_have_text("Claimed by maria")
    page.screenshot(path=str(screenshot_path("console-escalation.png", tmp_path)))
    escalation_id = page.url.rsplit("/", 1)[1]

    page.get_by_label("Called back").check()
    page.get_by_role("button", name="Resolve").click()
    expect(page.get_by_text("Escalation resolved.")).to_be_visible()
    expect(page.locator(f'#queue tr[data-id="{escalation_id}"]')).to_have_count(0)

    # a tablet in portrait: the queue fits the screen's width
    page.set_viewport_size({"width": 800, "height": 1200})
    page.reload()
    assert page.evaluate("() => document.documentElement.scrollWidth <= window.innerWidth")
    assert page.errors == []  # type: ignore[attr-defined]
    page.context.close()

    events = audit_events(server)
    mine = [e for e in events if escalation_id in e.get("resource_ids", [])]  # type: ignore[operator]
    by_staff = {e["action"] for e in mine if e["actor"] == {"kind": "staff", "id": "maria"}}
    assert {"escalation.view", "escalation.claim", "escalation.resolve"} <= by_staff
    reads = [e for e in events if e["purpose"] == "staff-console" and e["action"] == "fhir.read"]
    assert any(e["actor"]["id"] == "maria" for e in reads)  # type: ignore[index]
    assert any(e["action"] == "escalation.delete" for e in events)  # the retention purge ran at start


def test_pages_outside_the_role_are_refused(
    server: VoiceServer, browser: Browser, accounts: dict[str, Account]
) -> None:
    desk = new_page(browser)
    sign_in(desk, server, accounts["desk-b"])
    for path in ("/staff/audit", "/staff/admin/users"):
        response = desk.goto(f"{server.base_url}{path}")
        assert response is not None and response.status == 403
        expect(desk.get_by_role("heading", name="Not for your role")).to_be_visible()
    # a form without its CSRF token is refused, even from the signed-in browser itself
    status = desk.evaluate(
        """async () => (await fetch("/staff/logout", {
            method: "POST", body: new URLSearchParams({csrf_token: "forged"}) })).status"""
    )
    assert status == 403
    desk.context.close()

    # a client without a signature tries the carrier door until it is a burst: each refused, and the
    # burst shown to the compliance officer as one alert
    # (a WebSocket upgrade over plain HTTPS: websockets' own sync client can hang joining its reader
    # thread after a refused TLS handshake, which once held CI for minutes)
    upgrade = {
        "Connection": "Upgrade",
        "Upgrade": "websocket",
        "Sec-WebSocket-Version": "13",
        "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
    }
    with server.client() as web:
        for _ in range(ALERT_RULES["carrier-auth-failure"].count):
            assert web.get("/telephony/twilio", headers=upgrade).status_code == 403

    officer = new_page(browser)
    sign_in(officer, server, accounts["compliance"])
    expect(officer.get_by_role("heading", name="Audit trail")).to_be_visible()  # their home page
    expect(officer.locator("section.alerts li[data-kind=carrier-auth-failures]")).to_have_count(1)
    expect(officer.locator("section.alerts")).to_contain_text("Repeated carrier-authentication failures")
    expect(officer.locator("table.audit")).to_contain_text("refusal=signature")
    expect(officer.locator("table.audit")).to_contain_text("escalation.resolve")
    with officer.expect_download() as download:
        officer.get_by_role("button", name="Export these days (JSON lines)").click()
    exported = Path(download.value.path()).read_text()
    assert '"action":"staff.login"' in exported
    response = officer.goto(f"{server.base_url}/staff/escalations/00000000-0000-4000-8000-000000000000")
    assert response is not None and response.status == 403
    officer.context.close()

    admin = new_page(browser)
    sign_in(admin, server, accounts["admin"])
    expect(admin.get_by_role("heading", name="Accounts")).to_be_visible()
    assert admin.goto(f"{server.base_url}/staff/audit").status == 403  # type: ignore[union-attr]
    admin.goto(f"{server.base_url}/staff/admin/users")
    admin.get_by_label("User name", exact=True).fill("nightdesk")
    admin.get_by_role("button", name="Add account").click()
    expect(admin.get_by_text("Account nightdesk created.")).to_be_visible()
    expect(admin.locator("#link-url")).to_have_value(re.compile(r"/staff/enrol/[A-Za-z0-9_-]{43}$"))
    admin.context.close()

    events = audit_events(server)
    assert any(e["action"] == "staff.user.create" and "nightdesk" in e["resource_ids"] for e in events)  # type: ignore[operator]
    assert any(e["action"] == "audit.export" and e["actor"]["id"] == "compliance" for e in events)  # type: ignore[index]


def test_first_enrolment_through_a_one_time_link(
    server: VoiceServer, browser: Browser, accounts: dict[str, Account]
) -> None:
    """The administrator creates an account and gets a link, never a password; its owner sets both
    factors through it, once; a reset voids the password and the old link."""
    admin = new_page(browser)
    sign_in(admin, server, accounts["admin"])
    admin.get_by_label("User name", exact=True).fill("newdesk")
    admin.get_by_label("Role", exact=True).select_option("front-desk")
    admin.get_by_role("button", name="Add account").click()
    expect(admin.get_by_text("Account newdesk created.")).to_be_visible()
    newdesk = Account("newdesk", "front-desk", link=admin.locator("#link-url").input_value())
    assert newdesk.link is not None and newdesk.link.startswith(f"{server.base_url}/staff/enrol/")
    token = newdesk.link.rsplit("/", 1)[1]
    expect(admin.locator("input[type=password]")).to_have_count(0)  # no password to choose, or to see

    # the owner, in their own browser: the page sends no Referer and loads nothing from elsewhere
    owner = new_page(browser)
    requested: list[str] = []
    owner.on("request", lambda r: requested.append(r.url))
    opened = owner.goto(newdesk.link)
    assert opened is not None and opened.status == 200
    assert opened.headers["referrer-policy"] == "no-referrer"
    enrol_with_link(owner, newdesk)
    expect(owner.get_by_role("heading", name="Escalations")).to_be_visible()  # signed in: their home
    assert requested and all(url.startswith(f"{server.base_url}/staff") for url in requested)
    owner.get_by_role("button", name="Sign out").click()
    sign_in(owner, server, newdesk)  # from now on: the password they chose and a TOTP code
    assert owner.errors == []  # type: ignore[attr-defined]
    owner.context.close()

    # the link worked once
    later = new_page(browser)
    refused = later.goto(newdesk.link)
    assert refused is not None and refused.status == 410
    expect(later.get_by_role("heading", name="This link cannot be used")).to_be_visible()

    # a reset: the old password no longer works, the old link neither; the new link is shown once
    admin.goto(f"{server.base_url}/staff/admin/users")
    expect(admin.locator("tr", has_text="newdesk")).to_contain_text("Set up")
    admin.get_by_role("button", name="Reset newdesk: new enrolment link").click()
    expect(admin.get_by_text("Account newdesk reset.")).to_be_visible()
    fresh = admin.locator("#link-url").input_value()
    assert fresh != newdesk.link and PASSWORD not in admin.content()
    expect(admin.locator("tr", has_text="newdesk")).to_contain_text("Enrolment link pending")
    admin.goto(f"{server.base_url}/staff/admin/users")  # shown only in the response to the reset
    expect(admin.locator("#link-url")).to_have_count(0)
    admin.context.close()
    later.goto(f"{server.base_url}/staff/login")
    later.get_by_label("User name").fill("newdesk")
    later.get_by_label("Password").fill(PASSWORD)
    later.get_by_role("button", name="Continue").click()
    expect(later.get_by_role("alert")).to_contain_text("not right")
    assert later.goto(newdesk.link).status == 410  # type: ignore[union-attr]
    later.context.close()

    events = audit_events(server)
    mine = [e for e in events if "newdesk" in e.get("resource_ids", [])]  # type: ignore[operator]
    steps = [(e["action"], e.get("staff_change") or e.get("error"), e["outcome"]) for e in mine]
    assert steps.count(("staff.user.update", "enrolment-link", "success")) == 2
    assert ("staff.user.update", "enrolment-reset", "success") in steps
    assert ("staff.enrolment", None, "success") in steps
    assert ("staff.enrolment", "EnrolmentLinkUsed", "denied") in steps
    assert any(e["action"] == "staff.enrolment" and e.get("error") == "UnknownEnrolmentLink" for e in events)
    # the token is in no log line, audit record or file the server wrote (the database has its HMAC)
    written = [p.read_bytes() for p in server.product.rglob("*") if p.is_file()]
    assert not any(token.encode() in blob for blob in [server.log.read_bytes(), *written])
    assert token not in repr(events)


def test_an_emergency_resolved_in_sql_is_shown_as_needing_attention(
    server: VoiceServer, browser: Browser
) -> None:
    """Someone with the database but not the audit key marks an emergency resolved: the queue still
    shows it, urgent, with a warning; opened, it says why; a person claims and resolves it."""
    url = server.env["VOICE_AGENT_AUDIT_DATABASE_URL"]
    with EscalationStore.open(url, Keyring.from_file(server.product / "audit.key")) as store:
        hidden = store.create(category=EscalationCategory.EMERGENCY, session_id=uuid4())
    engine = create_engine(url)
    with engine.begin() as conn:
        at = datetime.now(UTC).replace(tzinfo=None)
        conn.execute(
            update(escalations_table)
            .where(escalations_table.c.id == hidden.id)
            .values(status="resolved", claimed_by="mallory", claimed_at=at, resolved_by="mallory",
                    resolved_at=at, outcome="called_back")
        )  # fmt: skip
    engine.dispose()

    done = run_voice_agent(
        server, ["staff", "add-user", "desk-t", "--role", "front-desk", "--base-url", server.base_url], [],
        timeout=60,
    )  # fmt: skip
    page = new_page(browser)
    sign_in(page, server, Account("desk-t", "front-desk", link=printed_link(server, done.stdout)))
    row = page.locator(f'#queue tr[data-id="{hidden.id}"]')
    expect(row).to_have_class(re.compile(r"\burgent\b.*\btampered\b"))
    expect(row).to_contain_text("Changed outside the console: needs attention")
    row.get_by_role("link").click()
    expect(page.locator("#tampered")).to_contain_text("changed outside the console")
    page.get_by_role("button", name="Claim: I will call back").click()  # a person takes it on
    page.get_by_label("Called back").check()
    page.get_by_role("button", name="Resolve").click()
    expect(page.get_by_text("Escalation resolved.")).to_be_visible()
    expect(page.locator(f'#queue tr[data-id="{hidden.id}"]')).to_have_count(0)
    assert page.errors == []  # type: ignore[attr-defined]
    page.context.close()
    alerts = [e for e in audit_events(server) if e.get("alert") == "record-tampered"]
    assert [e["resource_ids"] for e in alerts] == [[str(hidden.id)]]


def test_idle_sessions_are_signed_out(
    server: VoiceServer, browser: Browser, accounts: dict[str, Account]
) -> None:
    page = new_page(browser)
    seen: list[str] = []
    page.on(
        "response", lambda r: seen.append(f"{time.monotonic():.1f} {r.request.method} {r.url} {r.status}")
    )
    page.on("console", lambda m: seen.append(f"console {m.type} {m.text}"))
    sign_in(page, server, accounts["desk-c"])
    started = time.monotonic()
    warning = page.locator("#idle-warning")
    expect(warning).to_be_visible(timeout=(IDLE_SECONDS + 5) * 1000)  # the warning comes first
    warned = time.monotonic() - started
    try:
        expect(page.get_by_text("You were signed out after")).to_be_visible(
            timeout=(IDLE_SECONDS + 10) * 1000
        )
    except AssertionError:
        raise AssertionError("\n".join(seen)) from None
    assert 10 < warned < IDLE_SECONDS
    assert time.monotonic() - started >= IDLE_SECONDS - 1
    page.goto(f"{server.base_url}/staff")  # the old cookie is worth nothing now
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    page.context.close()
    ends = [e for e in audit_events(server) if e["action"] == "staff.logout"]
    assert any(e.get("end_reason") == "timeout" and e["actor"]["id"] == "desk-c" for e in ends)  # type: ignore[index]


def test_an_outsider_cannot_lock_the_desk_out_and_a_reset_signs_it_out(
    server: VoiceServer, browser: Browser, accounts: dict[str, Account]
) -> None:
    """An outsider guesses the front desk's password from addresses of their own (``X-Forwarded-For``,
    which the server believes from 127.0.0.1 only, uvicorn's default) until the account is locked and
    their address must wait: every refusal is the same page, whatever was wrong. The desk's browser, on
    its own address, signs in all the same; the burst is an alert; an administrator's reset signs the
    desk's browsers out."""
    frontdesk = accounts["frontdesk"]
    desk = new_page(browser)
    sign_in(desk, server, frontdesk)  # from the desk's own address (it has signed in from it before)

    with server.client() as web:
        form = web.get("/staff/login").text  # the pre-login cookie, and the form's token bound to it
        match = re.search(r'name="csrf_token" value="([0-9a-f]{64})"', form)
        assert match is not None

        def attempt(name: str, password: str, source: str) -> tuple[int, dict[str, str], bytes]:
            answer = web.post(
                "/staff/login",
                data={"csrf_token": match.group(1), "username": name, "password": password},
                headers={"X-Forwarded-For": source},
            )
            return (
                answer.status_code,
                {k: v for k, v in answer.headers.items() if k != "date"},
                answer.content,
            )

        first, second = "203.0.113.7", "203.0.113.8"
        answers = [attempt("mary.smith", "not a password at all", first)]  # no such account
        answers += [attempt("frontdesk", f"guess number {n}", first) for n in range(4)]  # wrong passwords
        answers.append(attempt("frontdesk", "guess number 5", second))  # the fifth: the account locks
        answers.append(attempt("frontdesk", PASSWORD, second))  # locked: even the right password
        answers.append(attempt("nobody.here", PASSWORD, second))
        answers.append(attempt("frontdesk", PASSWORD, first))  # the first address must wait
        answers.append(attempt("mary.smith", PASSWORD, first))
        assert answers[0][0] == 401 and b"not right" in answers[0][2]
        assert all(answer == answers[0] for answer in answers)  # byte for byte, headers and all
        for _ in range(ALERT_RULES["staff-login-failure"].count):  # the outsider keeps going: a burst
            assert attempt("frontdesk", PASSWORD, first)[0] == 401

    other = new_page(browser)  # the desk, another browser, the right password: signed in
    sign_in(other, server, frontdesk)
    expect(other.get_by_role("heading", name="Escalations")).to_be_visible()

    # the administrator resets the account (a lost phone, a suspected compromise): both browsers are out
    run_voice_agent(
        server, ["staff", "reset-user", "frontdesk", "--base-url", server.base_url], [], timeout=60
    )
    for page in (desk, other):
        page.goto(f"{server.base_url}/staff")
        expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
        assert page.errors == []  # type: ignore[attr-defined]
        page.context.close()

    events = audit_events(server)
    refused = {e.get("error") for e in events if e["action"] == "staff.login" and e["outcome"] == "denied"}
    assert {"UnknownUser", "BadPassword", "AccountLocked", "SourceThrottled"} <= refused
    assert any(e["action"] == "security.alert" and e.get("alert") == "staff-login-burst" for e in events)
    ends = [e for e in events if e["action"] == "staff.logout" and e["actor"]["id"] == "frontdesk"]  # type: ignore[index]
    assert [(e.get("end_reason"), e.get("staff_change")) for e in ends[-2:]] == [
        ("revoked", "enrolment-reset")
    ] * 2
    assert "mary" not in repr(events) and "nobody" not in repr(events)


def test_canary_phi_stays_out_of_console_logs_and_database(
    sandbox: Sandbox, server: VoiceServer, browser: Browser, accounts: dict[str, Account]
) -> None:
    canary = plant_canary(sandbox)
    given, family = canary["CANARY_GIVEN"], canary["CANARY_FAMILY"]
    born = date.fromisoformat(canary["CANARY_DOB"])
    emergency_call(server, canary["CANARY_PHONE"], given, family, born)

    page = new_page(browser)
    sign_in(page, server, accounts["desk-d"])
    page.locator("#queue tr.urgent", has_text="Emergency").first.get_by_role("link").click()
    expect(page.locator("#patient-name")).to_have_text(f"{given} {family}")  # the console did show it
    page.get_by_role("button", name="Claim: I will call back").click()
    page.get_by_label("Left a message").check()
    page.get_by_role("button", name="Resolve").click()
    expect(page.get_by_text("Escalation resolved.")).to_be_visible()
    page.context.close()
    time.sleep(1)

    log = server.log.read_bytes()
    assert b"DEBUG" in log and b"FHIR GET Patient -> 200" in log  # a debug log of the console's reads
    forms = canary_forms(given, family, born, canary["CANARY_PHONE"])
    written = [p for p in server.product.rglob("*") if p.is_file()]
    # the database with the console's tables (throttle, links, sessions, alerts, row tags: written by the
    # tests before this one) and the signed checkpoints serve writes outside it
    assert {"audit.db", "audit-checkpoints.jsonl"} <= {p.name for p in written}
    blobs = [("server log", log)] + [(str(p), p.read_bytes()) for p in written]
    leaks = [
        (where, form.decode(errors="replace")) for where, blob in blobs for form in forms if form in blob
    ]
    assert leaks == []
    reads = [
        e for e in audit_events(server) if e["purpose"] == "staff-console" and e["action"] == "fhir.read"
    ]
    assert any(canary["id"] in e["resource_ids"] for e in reads)  # type: ignore[operator]
