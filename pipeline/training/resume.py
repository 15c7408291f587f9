"""Resume after interruption: a training state written atomically at the end of every epoch.

The state (weights, optimizer, scheduler, RNG states, finished epochs and their history) lives
beside the run's outputs but is not one of them, so neither engine deletes it before rerunning
an interrupted stage. It carries a fingerprint of everything the run's result depends on; a
state with another fingerprint (params or init checkpoint changed) is ignored, never resumed.
Loaders are seeded per epoch, so a resumed run ends exactly where an uninterrupted one ends.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from pipeline.core.io import atomic_path, file_digest  # noqa: F401  (file_digest: for callers)

log = logging.getLogger(__name__)


def fingerprint(*parts: Any) -> str:
    """Stable hash of JSON-able parts (params, run config, input checkpoint digests)."""
    blob = json.dumps(parts, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()


def rng_state() -> dict[str, Any]:
    """Every RNG the training loop may draw from."""
    state = {"torch": torch.get_rng_state(), "numpy": np.random.get_state(),
             "python": random.getstate()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore what :func:`rng_state` captured."""
    torch.set_rng_state(state["torch"])
    np.random.set_state(state["numpy"])
    random.setstate(state["python"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


class ResumeState:
    """Save and restore a training loop's state at ``path`` for one fingerprint."""

    def __init__(self, path: str | Path, key: str):
        self.path, self.key = Path(path), key
        self.epoch = 0  # finished epochs in the state on disk (as saved or loaded here)

    def save(self, model: nn.Module, optimizer, scheduler, epoch: int,
             history: list[dict[str, float]]) -> None:
        """Write the state after ``epoch`` finished epochs (atomically)."""
        state = {"key": self.key, "epoch": epoch, "history": history, "rng": rng_state(),
                 "model": model.state_dict(), "optimizer": optimizer.state_dict(),
                 "scheduler": scheduler.state_dict()}
        buffer = io.BytesIO()
        torch.save(state, buffer)
        with atomic_path(self.path) as tmp:
            tmp.write_bytes(buffer.getvalue())
        self.epoch = epoch

    def load(self, model: nn.Module, optimizer, scheduler) -> tuple[int, list[dict[str, float]]]:
        """Restore a matching state; returns (finished epochs, history), (0, []) if none."""
        if not self.path.is_file():
            return 0, []
        try:
            state = torch.load(self.path, map_location="cpu", weights_only=False)
        except Exception as exc:  # cut short or damaged: RuntimeError, EOFError, pickle errors
            aside = self.path.with_name(f"{self.path.name}.unreadable")
            self.path.replace(aside)
            log.warning("resume state %s does not load (%s: %s); set aside as %s, training "
                        "starts from the first epoch", self.path, type(exc).__name__,
                        str(exc)[:120], aside)
            return 0, []
        if not isinstance(state, dict) or state.get("key") != self.key:
            log.warning("ignoring %s: it belongs to another configuration", self.path)
            return 0, []
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        set_rng_state(state["rng"])
        log.info("resuming from %s after epoch %d", self.path, state["epoch"])
        self.epoch = state["epoch"]
        return state["epoch"], state["history"]

    def rerun_note(self) -> str:
        """What rerunning an interrupted run does, for the one-line message."""
        if self.epoch == 0:
            return "interrupted before the first epoch ended; a rerun starts from the beginning"
        return (f"interrupted; epoch {self.epoch} was saved in {self.path}, and a rerun "
                f"resumes after it")

    def clear(self) -> None:
        """Remove the state once the run has finished."""
        self.path.unlink(missing_ok=True)
