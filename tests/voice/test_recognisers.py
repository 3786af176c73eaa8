"""The speech-to-text engines behind ``stt_engine``: each real model hears a caller through the telephone.

Whisper tiny.en is a dependency and always runs. Whisper base and Moonshine base come from the optional
``stt`` extra (``pip install -e '.[stt]'``, then ``voice-agent models install --stt all``); when their
directories are not installed but the packages are, they are installed here into a temporary models
directory (from the installed packages, no network); only without the packages are those tests skipped
(harness/real_parts.py: failed under CI).
"""

from __future__ import annotations

import importlib.metadata
import re
import shutil
import threading
from collections.abc import Callable
from pathlib import Path

import pytest
from pydantic import ValidationError
from typer.testing import CliRunner

from harness import caller_audio
from harness.real_parts import report_absent
from voice_agent.model_packages import (
    SPEECH_MODELS,
    ModelVerificationError,
    find_speech_model,
    install_speech_model,
)
from voice_agent.pipeline.recognisers import MoonshineRecogniser, Recogniser, WhisperRecogniser
from voice_agent.pipeline.speech_loader import ModelMissingError, SpeechModels
from voice_agent.pipeline.stt import Vocabulary
from voice_agent.settings import Settings

ENGINES = ("whisper-tiny.en", "whisper-base", "moonshine-base")
SENTENCE = "I'd like to book an appointment."


def packages_installed(name: str) -> bool:
    packages = {piece.package for pinned in SPEECH_MODELS[name].files for piece in pinned.pieces}
    try:
        for package in packages:
            importlib.metadata.distribution(package)
    except importlib.metadata.PackageNotFoundError:
        return False
    return True


@pytest.fixture(scope="module")
def models_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The configured models directory if it holds both optional models, else a temporary one with
    whichever of them can be installed from the packages in this environment."""
    configured = Settings().models_dir
    if all(find_speech_model(name, configured) for name in ("whisper-base", "moonshine-base")):
        return configured
    directory = tmp_path_factory.mktemp("models")
    for name in ("whisper-base", "moonshine-base"):
        if packages_installed(name):
            install_speech_model(name, directory)
    return directory


@pytest.fixture(scope="module")
def recogniser(models_dir: Path) -> Callable[[str], Recogniser]:
    built: dict[str, Recogniser] = {}

    def get(engine: str) -> Recogniser:
        if engine != "whisper-tiny.en" and find_speech_model(engine, models_dir) is None:
            report_absent(engine)
        if engine not in built:
            settings = Settings(stt_engine=engine, models_dir=models_dir)
            built[engine] = SpeechModels(settings).recogniser()
        return built[engine]

    return get


def on_the_phone(pcm: bytes) -> bytes:
    """Through 8 kHz μ-law, framed like a pipeline turn (pre-roll, VAD stop, the pipeline's padding)."""
    return caller_audio.from_ulaw_8k(caller_audio.to_ulaw_8k(caller_audio.silence(0.3) + pcm)) + (
        caller_audio.silence(0.5)
    )


def words(text: str) -> set[str]:
    return set(re.findall(r"[a-z]+", text.lower()))


@pytest.mark.parametrize("engine", ENGINES)
def test_each_engine_hears_a_caller_through_the_telephone(
    engine: str, recogniser: Callable[[str], Recogniser]
) -> None:
    heard = recogniser(engine).transcribe(on_the_phone(caller_audio.piper(SENTENCE)), vocabulary=Vocabulary())
    assert "appointment" in words(heard), heard


@pytest.mark.parametrize("engine", ENGINES)
def test_silence_is_heard_as_nothing(engine: str, recogniser: Callable[[str], Recogniser]) -> None:
    assert recogniser(engine).transcribe(caller_audio.silence(1.5), vocabulary=Vocabulary()) == ""


def test_each_engine_is_the_recogniser_its_setting_names(recogniser: Callable[[str], Recogniser]) -> None:
    assert isinstance(recogniser("whisper-tiny.en"), WhisperRecogniser)
    assert isinstance(recogniser("whisper-base"), WhisperRecogniser)
    assert isinstance(recogniser("moonshine-base"), MoonshineRecogniser)


def test_whisper_uses_the_window_beam_and_vocabulary_of_the_settings(models_dir: Path) -> None:
    settings = Settings(stt_window_seconds=12, stt_beam_size=2, models_dir=models_dir)
    models = SpeechModels(settings)
    whisper = models.recogniser()
    assert isinstance(whisper, WhisperRecogniser)
    assert (whisper.window_seconds, whisper.beam_size) == (12, 2)
    assert whisper.model is models.whisper()  # one model: the recogniser wraps the shared one
    assert models.recogniser() is whisper  # built once per process
    prompt = Vocabulary(initial_prompt="Calling the clinic to book a telehealth visit with Dr. Amara Okafor.")
    heard = whisper.transcribe(
        on_the_phone(caller_audio.piper("A telehealth visit with Doctor Okafor, please.")), vocabulary=prompt
    )
    assert {"telehealth", "okafor"} <= words(heard), heard


def test_moonshine_is_thread_safe_and_its_output_capped_by_duration(
    recogniser: Callable[[str], Recogniser], models_dir: Path
) -> None:
    moonshine = recogniser("moonshine-base")
    clips = [on_the_phone(caller_audio.piper(text)) for text in (SENTENCE, "My name is John Smith.")]
    heard: dict[int, str] = {}

    def hear(index: int) -> None:
        heard[index] = moonshine.transcribe(clips[index], vocabulary=Vocabulary())

    threads = [threading.Thread(target=hear, args=(i,)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert "appointment" in words(heard[0]) and {"john", "smith"} <= words(heard[1]), heard

    capped = MoonshineRecogniser(models_dir / "moonshine-base", threads=1, tokens_per_second=0.1)
    short = capped.transcribe(clips[0], vocabulary=Vocabulary())
    assert 0 < len(short.split()) < len(heard[0].split()), short  # 4 tokens at most: a few words


def test_a_missing_model_names_the_setting_and_the_install_command(tmp_path: Path) -> None:
    for engine in ("whisper-base", "moonshine-base"):
        models = SpeechModels(Settings(stt_engine=engine, models_dir=tmp_path))
        with pytest.raises(ModelMissingError) as missing:
            models.recogniser()
        message = str(missing.value)
        assert f"VOICE_AGENT_STT_ENGINE={engine}" in message
        assert f"voice-agent models install --stt {engine}" in message
    with pytest.raises(ModelMissingError, match="VOICE_AGENT_STT_MODEL_PATH"):
        SpeechModels(Settings(stt_model_path=tmp_path)).whisper()


def test_a_model_file_that_is_not_the_pinned_one_is_refused(tmp_path: Path) -> None:
    directory = tmp_path / "moonshine-base"
    directory.mkdir()
    for name in ("encoder_model.ort", "decoder_model_merged.ort", "tokenizer.bin"):
        (directory / name).write_bytes(b"not the model")
    with pytest.raises(ModelVerificationError, match="Refusing"):
        SpeechModels(Settings(stt_engine="moonshine-base", models_dir=tmp_path)).recogniser()


def test_models_install_stt_joins_and_verifies_from_the_installed_packages(tmp_path: Path) -> None:
    if not (packages_installed("whisper-base") and packages_installed("moonshine-base")):
        report_absent("whisper-base", "moonshine-base")  # the stt extra's packages
    from voice_agent.cli.main import app

    runner = CliRunner()
    env = {"VOICE_AGENT_MODELS_DIR": str(tmp_path)}
    result = runner.invoke(app, ["models", "install", "--stt", "all"], env=env)
    assert result.exit_code == 0, result.output
    assert "whisper-base" in result.output and "moonshine-base" in result.output
    assert (tmp_path / "whisper-base" / "model.bin").stat().st_size == 145_217_607
    assert not (tmp_path / "qwen2.5-coder-1.5b-instruct-q4_k_m.gguf").exists()  # --stt alone: no LLM
    status = runner.invoke(app, ["models", "status"], env=env)
    assert f"whisper-base: {tmp_path / 'whisper-base'}" in status.output
    assert "speech-to-text: whisper-tiny.en" in status.output
    shutil.rmtree(tmp_path / "whisper-base")
    assert runner.invoke(app, ["models", "install", "--stt", "large"], env=env).exit_code == 2


def test_stt_engine_is_validated(monkeypatch: pytest.MonkeyPatch) -> None:
    assert Settings().stt_engine == "whisper-tiny.en"
    monkeypatch.setenv("VOICE_AGENT_STT_ENGINE", "moonshine-base")
    assert Settings().stt_engine == "moonshine-base"
    monkeypatch.setenv("VOICE_AGENT_STT_ENGINE", "whisper-large")
    with pytest.raises(ValidationError, match="stt_engine"):
        Settings()
