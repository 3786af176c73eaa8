"""The scoped dialogue manager as a pipecat processor: a finished caller turn in, the reply's text out.

The processor adds nothing to what the dialogue may do: it feeds ``Conversation.respond`` the words of a
whole turn (or ``Conversation.keyed`` a keypad entry) and hands the reply's text to TTS. Replies are
spoken as given, sentence by sentence (pipecat's TTS splits them, so the first sentence plays while the
next is synthesised). Everything heard lives in this object until the call ends.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import time
from collections.abc import Awaitable, Callable
from typing import Any

from pipecat.frames.frames import (
    BotStartedSpeakingFrame,
    BotStoppedSpeakingFrame,
    CancelFrame,
    EndFrame,
    EndTaskFrame,
    Frame,
    InputDTMFFrame,
    LLMFullResponseEndFrame,
    LLMFullResponseStartFrame,
    LLMTextFrame,
    UserStartedSpeakingFrame,
    UserStoppedSpeakingFrame,
)
from pipecat.processors.frame_processor import FrameDirection, FrameProcessor

from voice_agent.dialogue import templates
from voice_agent.dialogue.conductor import Conversation
from voice_agent.dialogue.reply import SPELLING_STATES, Reply, State
from voice_agent.pipeline.frames import TransferCallFrame, TransferOutcomeFrame
from voice_agent.pipeline.metrics import CallLatency
from voice_agent.pipeline.stt import (
    AcceptDraftFrame,
    CallerTurnFrame,
    ContinueTurnFrame,
    ListenForLettersFrame,
    TurnDraftFrame,
    TurnOpenedFrame,
)
from voice_agent.session import CallSession, EndReason, SessionManager

log = logging.getLogger(__name__)

#: A keypad entry this long is complete without a closing # (a date of birth, MMDDYYYY).
_DATE_DIGITS = 8
#: Keys gathered before they are answered whatever follows: a phone number with its country code, or a
#: surname keyed one press per letter (the task takes up to 40), fits.
_MAX_KEYS = 40
#: A surname keyed letter by letter is ended by #: a caller hunting for the next letter on the keypad
#: pauses longer than between digits, and half a surname sent early would count as a failed attempt.
#: Without a #, the keys are taken after this much quiet.
_LETTER_KEYS_PAUSE_SECONDS = 12.0


#: Words that, said alone right after a turn, only finish it ("..., please"): no answer of their own.
_TAIL_WORDS = frozenset({"please", "thanks", "thank", "you", "um", "uh", "erm", "hmm"})
_TAIL_SECONDS = 3.0


def _is_tail(words: str) -> bool:
    tokens = re.findall(r"[a-z]+", words.lower())
    return bool(tokens) and all(t in _TAIL_WORDS for t in tokens)


_TITLES = re.compile(r"\b(Dr|Mr|Mrs|Ms|St)\.\s")
_SPOKEN_TITLES = {"Dr": "Doctor", "Mr": "Mister", "Mrs": "Missus", "Ms": "Miz", "St": "Saint"}


def speakable(text: str) -> str:
    """ "Dr. Okafor" would end a sentence for the TTS splitter and be read "doctor. Okafor"."""
    return _TITLES.sub(lambda m: _SPOKEN_TITLES[m.group(1)] + " ", text)


class DialogueProcessor(FrameProcessor):
    """Sits between the user-turn processor and TTS. One per call."""

    def __init__(
        self,
        *,
        conversation: Conversation,
        session: CallSession,
        sessions: SessionManager,
        latency: CallLatency,
        silence_prompts_before_hangup: int,
        dtmf_pause_seconds: float,
        gather_seconds: float,
        on_transfer: Callable[[bool], Awaitable[None]] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self._conversation = conversation
        self._session = session
        self._sessions = sessions
        self._latency = latency
        self._max_prompts = silence_prompts_before_hangup
        self._dtmf_pause = dtmf_pause_seconds
        self._gather_seconds = gather_seconds
        self._on_transfer = on_transfer
        self._gather: asyncio.Task[None] | None = None
        self._held: str | None = None  # the first part of an answer, while the rest is awaited
        self._turns_open = 0  # caller turns begun whose words have not arrived yet
        self._last_words = 0.0
        self._keys: list[str] = []
        self._keys_timer: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()
        self._tasks: set[asyncio.Task[None]] = set()
        self._bot_speaking = False
        self._interrupted = False
        self._prompts = 0
        self._ending = False
        self._spelling = False
        self.ended: EndReason | None = None

    # ------------------------------------------------------------------ frames

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        await super().process_frame(frame, direction)
        if isinstance(frame, CallerTurnFrame):
            self._turns_open = max(0, self._turns_open - 1)
            self._spawn(self._answer_speech(frame.text.strip()))  # consumed: the words go no further
            return
        if isinstance(frame, TurnDraftFrame):
            if self._whole_answer(frame.text.strip()):  # consumed too
                await self.push_frame(AcceptDraftFrame(draft=frame.draft), FrameDirection.UPSTREAM)
            return
        if isinstance(frame, InputDTMFFrame):
            self._on_key(frame.button.value)  # consumed here: a keyed date of birth goes no further
            return
        if isinstance(frame, TransferOutcomeFrame):
            self._spawn(self._transfer_outcome(frame.succeeded))
            return
        if isinstance(frame, TurnOpenedFrame):
            self._turns_open += 1
            return  # consumed: nothing after the dialogue needs it
        if isinstance(frame, UserStartedSpeakingFrame):
            self._sessions.touch(self._session)
            self._prompts = 0
            if self._bot_speaking:
                self._interrupted = True
                self._latency.barge_in()
        elif isinstance(frame, UserStoppedSpeakingFrame):
            self._sessions.touch(self._session)
        elif isinstance(frame, BotStartedSpeakingFrame):
            self._bot_speaking = True
            self._latency.agent_audio_started()
            # kept current, so a call the idle logoff ends is audited with its numbers too
            self._session.metrics = self._latency.summary()
        elif isinstance(frame, BotStoppedSpeakingFrame):
            self._bot_speaking = False
        elif isinstance(frame, (EndFrame, CancelFrame)):
            self._forget()
        await self.push_frame(frame, direction)

    async def cleanup(self) -> None:
        await super().cleanup()  # type: ignore[no-untyped-call]
        for task in list(self._tasks):
            task.cancel()
        self._forget()

    # ------------------------------------------------------------------ entry points for the call

    async def greet(self) -> None:
        await self._speak(await self._conversation.greet())

    async def on_silence(self) -> None:
        """pipecat's user-idle controller fired: the caller said nothing since the agent finished."""
        if self._ending:
            return
        self._prompts += 1
        if self._prompts > self._max_prompts:
            await self.end_call(templates.TIMED_OUT, "timeout")
            return
        log.debug(
            "dialogue: no answer in %s; asking whether the caller is there", self._conversation.state.value
        )
        await self._say(templates.STILL_THERE)  # not activity: the session's idle clock keeps running

    async def end_call(self, text: str | None, reason: EndReason) -> None:
        """Say ``text`` (if any), then end the pipeline once it has been played."""
        if self._ending:
            return
        self._ending = True
        self.ended = reason
        if text:
            await self._say(text)
        await self.push_frame(EndTaskFrame(), FrameDirection.UPSTREAM)

    # ------------------------------------------------------------------ turns

    def _whole_answer(self, words: str) -> bool:
        """A turn smart-turn thinks unfinished may end on its words: a whole answer to the question
        asked (the dialogue says what that is; a carried first part is in the words too)."""
        if self._ending or not words or _is_tail(words):
            return False
        return self._conversation.complete_answer(words)

    async def _answer_speech(self, words: str) -> None:
        now = time.monotonic()
        if _is_tail(words) and now - self._last_words < _TAIL_SECONDS:
            return  # "... an appointment, [pause] please": the end of the turn just answered
        self._last_words = now
        held, self._held = self._held, None
        if self._gather is not None:  # the rest of a held answer arrived (heard together with it)
            self._gather.cancel()
            self._gather = None
        if held and not words:  # the rest was noise: the part held is the answer
            words = held
        if words and self._conversation.awaits_more(words):
            # Half an answer ("July fourteenth ...", "O, K, O ..."): wait for the rest, then hear both
            # parts together.
            await self.push_frame(ContinueTurnFrame(carry=True), FrameDirection.UPSTREAM)
            self._held = words
            self._gather = self._spawn(self._answer_after_pause())
            return
        await self._answer_now(words)

    async def _answer_after_pause(self) -> None:
        """Nothing more came within ``answer_gather_seconds`` of quiet: the part held is the answer. The
        wait is for the caller's quiet, not the clock's: while a turn of theirs is open (letters spelled on
        with pauses, each turn waiting out the maximum pause) the part held is not answered alone."""
        await asyncio.sleep(self._gather_seconds)
        while self._turns_open:  # the caller is saying more: its turn, heard with this part, cancels us
            await asyncio.sleep(0.1)
        self._gather = None
        words, self._held = self._held or "", None
        await self.push_frame(ContinueTurnFrame(carry=False), FrameDirection.UPSTREAM)
        await self._answer_now(words)

    async def _answer_now(self, words: str) -> None:
        async with self._lock:
            if self._ending:
                return
            if not words:
                # Noise or a cough that cut the agent off: say again what it was saying.
                if self._interrupted and self._conversation.last_reply:
                    self._interrupted = False
                    log.debug(
                        "dialogue: cut off by no words in %s; saying it again", self._conversation.state
                    )
                    await self._say(self._conversation.last_reply)
                return
            self._interrupted = False
            asked = self._conversation.state
            reply = await self._conversation.respond(words)
            self._latency.replied()
            # States are names from a closed set: what a failed call did, with nothing the caller said.
            log.debug("dialogue: %s -> %s", asked.value, self._conversation.state.value)
            await self._speak(reply)

    def _on_key(self, key: str) -> None:
        self._sessions.touch(self._session)
        self._prompts = 0
        if self._keys_timer is not None:
            self._keys_timer.cancel()
            self._keys_timer = None
        if key == "*":  # start again
            self._keys.clear()
            return
        if key != "#":
            self._keys.append(key)
        if (
            key == "#"
            or len(self._keys) >= _MAX_KEYS
            or (len(self._keys) >= _DATE_DIGITS and self._expects_date())
        ):
            self._submit_keys()
        else:
            self._keys_timer = self._spawn(self._keys_after_pause())

    def _expects_date(self) -> bool:
        return self._conversation.state is State.BIRTH_DATE

    async def _keys_after_pause(self) -> None:
        spelling = self._conversation.state in SPELLING_STATES
        await asyncio.sleep(_LETTER_KEYS_PAUSE_SECONDS if spelling else self._dtmf_pause)
        self._keys_timer = None
        self._submit_keys()

    def _submit_keys(self) -> None:
        digits, self._keys = "".join(self._keys), []
        if digits:
            self._spawn(self._answer_keys(digits))

    async def _answer_keys(self, digits: str) -> None:
        async with self._lock:
            if not self._ending:
                asked = self._conversation.state
                reply = await self._conversation.keyed(digits)
                log.debug("dialogue (keypad): %s -> %s", asked.value, self._conversation.state.value)
                await self._speak(reply)

    # ------------------------------------------------------------------ speaking

    async def _speak(self, reply: Reply) -> None:
        self._sessions.touch(self._session)
        spelling = self._conversation.state in SPELLING_STATES
        if spelling != self._spelling:  # the next answer is letters, or no longer
            self._spelling = spelling
            await self.push_frame(ListenForLettersFrame(letters=spelling), FrameDirection.UPSTREAM)
        if reply.transfer:
            await self._hand_over(reply.text)
        elif reply.end is not None:
            await self.end_call(reply.text, reply.end)
        else:
            await self._say(reply.text)

    async def _hand_over(self, text: str) -> None:
        """Announce the transfer, then ask the transport to make it (after the announcement is heard).
        Until the outcome arrives the caller's words are not answered."""
        self._ending = True
        self.ended = "transferred"
        await self._say(text)
        await self.push_frame(TransferCallFrame())

    async def _transfer_outcome(self, succeeded: bool) -> None:
        if self._on_transfer is not None:
            await self._on_transfer(succeeded)
        if succeeded:
            return  # the front desk has the caller; the transport ends the call
        async with self._lock:
            self._ending, self.ended = False, None
            await self._speak(await self._conversation.transfer_failed())

    async def _say(self, text: str) -> None:
        await self.push_frame(LLMFullResponseStartFrame())
        await self.push_frame(LLMTextFrame(speakable(text)))
        await self.push_frame(LLMFullResponseEndFrame())

    def _spawn(self, work: Awaitable[None]) -> asyncio.Task[None]:
        async def run() -> None:
            try:
                await work
            except asyncio.CancelledError:
                raise
            except Exception as error:  # a turn that fails must not take the call down silently
                log.error("a call turn failed (%s); ending the call", type(error).__name__)
                with contextlib.suppress(Exception):
                    await self.end_call(templates.SYSTEM_TROUBLE_GOODBYE, "error")

        task = self.create_task(run())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    def _forget(self) -> None:
        self._keys.clear()
        self._held = None
