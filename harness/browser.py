"""A patient's browser for calling a real ``voice-agent serve``: Debian's headless Chromium driven by
Playwright, with Chromium's fake microphone playing the caller's side from a WAV.

Why these choices: Playwright's own browser download does not work on these machines, Debian's Chromium
does; Chromium's fake microphone is the only way to give a real browser a voice without a sound card;
and ``%noloop`` makes it play the WAV once, from the moment the page opens the microphone.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from playwright.sync_api import Browser, ConsoleMessage, Page, sync_playwright
from playwright.sync_api import TimeoutError as PlaywrightTimeout

from harness import caller_audio

CHROMIUM = Path("/usr/bin/chromium")

#: The fake microphone's WAV is written at WebRTC's own rate (Opus, 48 kHz).
MIC_RATE = 48_000

#: ingress.md's flags, less the ones Playwright sets itself (--headless, --no-sandbox, --user-data-dir
#: with a fresh profile per launch).
CHROMIUM_FLAGS = (
    "--disable-gpu",
    "--use-fake-ui-for-media-stream",
    "--use-fake-device-for-media-stream",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
)


def spki_pin(certificate: Path) -> str:
    """base64(SHA-256(SubjectPublicKeyInfo)) of a PEM certificate: what Chromium's
    ``--ignore-certificate-errors-spki-list`` takes. Pinning the dev server's key keeps the page on real
    TLS (a secure context, as getUserMedia needs) without trusting anything else."""
    cert = x509.load_pem_x509_certificate(certificate.read_bytes())
    spki = cert.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return base64.b64encode(hashlib.sha256(spki).digest()).decode()


def chromium_args(microphone: Path, *, trust_certificate: Path) -> list[str]:
    """Flags for a headless Chromium whose microphone plays ``microphone`` once (``%noloop``) and which
    accepts exactly the dev server's certificate."""
    return [
        *CHROMIUM_FLAGS,
        f"--use-file-for-fake-audio-capture={microphone}%noloop",
        f"--ignore-certificate-errors-spki-list={spki_pin(trust_certificate)}",
    ]


@dataclass(frozen=True)
class Line:
    """One thing the caller says, and how long they then wait for the agent to answer."""

    text: str
    wait_seconds: float


def speaking_seconds(text: str) -> float:
    """How long piper's joe voice (the agent's) takes to say ``text``: 15-19 characters a second, so 14
    errs long."""
    return len(text) / 14


def timeline(lines: list[Line], *, lead_seconds: float) -> bytes:
    """The caller's whole side of a call that cannot listen, as 16 kHz PCM: ``lead_seconds`` of silence
    (connecting, and the greeting), then each line (piper) followed by its wait."""
    spoken = caller_audio.piper_many([line.text for line in lines])
    pcm = caller_audio.silence(lead_seconds)
    for line, speech in zip(lines, spoken, strict=True):
        pcm += speech + caller_audio.silence(line.wait_seconds)
    return pcm


def said_at(lines: list[Line], index: int, *, lead_seconds: float) -> float:
    """When, from the start of ``timeline(lines)``, the caller starts saying ``lines[index]``."""
    spoken = caller_audio.piper_many([line.text for line in lines[:index]])  # cached: the same audio
    return lead_seconds + sum(
        len(pcm) / 2 / caller_audio.SAMPLE_RATE + line.wait_seconds
        for line, pcm in zip(lines, spoken, strict=False)
    )


def caller_wav(path: Path, lines: list[Line], *, lead_seconds: float) -> float:
    """The caller's side (``timeline``) as one WAV for the fake microphone. Returns its length."""
    pcm = timeline(lines, lead_seconds=lead_seconds)
    caller_audio.write_wav(path, caller_audio.resample(pcm, caller_audio.SAMPLE_RATE, MIC_RATE), MIC_RATE)
    return len(pcm) / 2 / caller_audio.SAMPLE_RATE


def chromium_available() -> bool:
    return CHROMIUM.is_file() and os.access(CHROMIUM, os.X_OK)


#: Watches the page's status line from inside the page (a MutationObserver), so no status is missed
#: between two polls. Observing only: it changes nothing on the page.
_WATCH_STATUS = """() => {
  const line = document.getElementById("status");
  window.__statuses = [line.textContent];
  window.__times = [performance.now()];
  new MutationObserver(() => {
    const text = line.textContent;
    if (window.__statuses[window.__statuses.length - 1] !== text) {
      window.__statuses.push(text);
      window.__times.push(performance.now());
    }
  }).observe(line, {childList: true, characterData: true, subtree: true});
}"""

#: The call is over when the Call button is back (after the call started).
_CALL_OVER = """() => !document.getElementById("call").disabled && window.__statuses.length > 1"""


@dataclass
class CallPage:
    """The patient page open in its own browser context, and the errors it has logged so far."""

    page: Page
    errors: list[str]

    def statuses(self) -> list[str]:
        """Every text the status line has shown since the page loaded, in order."""
        return [str(s) for s in self.page.evaluate("() => window.__statuses")]

    def timeline(self, since: str = "Asking for your microphone…") -> str:
        """Each status with its time in seconds after the first ``since`` (when the microphone, and so
        the caller's script, started): for a failure's message, next to when each line was said."""
        shown = self.page.evaluate("() => window.__statuses.map((s, i) => [window.__times[i], s])")
        start = next((t for t, s in shown if s == since), shown[0][0])
        return "\n".join(f"{(t - start) / 1000:7.1f} s  {s}" for t, s in shown)

    def text(self) -> str:
        return self.page.inner_text("body")

    def stored(self) -> int:
        """Cookies plus localStorage and sessionStorage entries: the page should leave none."""
        storage = self.page.evaluate("() => window.localStorage.length + window.sessionStorage.length")
        return len(self.page.context.cookies()) + int(storage)

    def press(self, button: str) -> None:
        self.page.get_by_role("button", name=button, exact=True).click()

    def wait_for_status(self, prefix: str, timeout_seconds: float) -> None:
        self.page.wait_for_function(
            "prefix => document.getElementById('status').textContent.startsWith(prefix)",
            arg=prefix,
            polling=250,
            timeout=timeout_seconds * 1000,
        )

    def wait_until_over(self, timeout_seconds: float) -> bool:
        """Wait for the page to say the call is over; False if it is still on after the timeout."""
        try:
            self.page.wait_for_function(_CALL_OVER, polling=250, timeout=timeout_seconds * 1000)
        except PlaywrightTimeout:
            return False
        return True


@contextlib.contextmanager
def chromium(microphone: Path, *, trust_certificate: Path) -> Iterator[Browser]:
    """A fresh headless Chromium (one per test: its fake microphone is fixed at launch)."""
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM),
            headless=True,
            args=chromium_args(microphone, trust_certificate=trust_certificate),
        )
        try:
            yield browser
        finally:
            browser.close()


def open_page(browser: Browser, url: str) -> CallPage:
    """``url``/?raw=1 (the fake microphone's audio unprocessed) in its own browser context, so two
    callers share no storage."""
    page = browser.new_context().new_page()
    opened = CallPage(page, [])
    page.on("pageerror", lambda error: opened.errors.append(str(error)))
    page.on("console", lambda m: opened.errors.append(m.text) if _is_error(m) else None)
    page.goto(f"{url}/?raw=1")
    page.evaluate(_WATCH_STATUS)
    return opened


def _is_error(message: ConsoleMessage) -> bool:
    """Console errors, less the browser's own favicon request (the app serves none; the page asks for
    none)."""
    return message.type == "error" and not message.location.get("url", "").endswith("/favicon.ico")
