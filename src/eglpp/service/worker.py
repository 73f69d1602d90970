"""The backend's background worker: retraining and Label Studio's predictions, off the
request threads.

One daemon thread waits to be poked (a webhook recorded an annotation). At start it records the
annotations submitted while the backend was down and gives the open tasks their predictions;
then, whenever :meth:`~eglpp.practitioner.live_loop.LiveLoop.due`, it retrains (``/predict``
keeps serving the previous model meanwhile: the new one serves once scored) and replaces the
open tasks' predictions. An error is logged and kept in :attr:`Worker.error`, never raised: the
next poke tries again.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from eglpp.practitioner.label_studio import LabelStudio
from eglpp.practitioner.live_loop import LiveLoop
from eglpp.practitioner.live_studio import replace_predictions, sync_annotations

__all__ = ["Worker"]


class Worker:
    """Retrains ``loop`` when due and, with ``client``, keeps ``project``'s predictions fresh."""

    def __init__(self, loop: LiveLoop, client: LabelStudio | None = None,
                 project: int | None = None, log: Callable[[str], None] = print):  # fmt: skip
        self.loop, self.client, self.project, self.log = loop, client, project, log
        self.busy = False  # retraining or rescoring now
        self.error: str | None = None
        self.retrains = 0
        self._poke = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="eglpp-retrain", daemon=True)

    def start(self) -> Worker:
        self._thread.start()
        return self

    def poke(self) -> None:
        self._poke.set()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        self._poke.set()
        self._thread.join(timeout)

    def _run(self) -> None:
        self.step(first=True)
        while not self._stop.is_set():
            self._poke.wait()
            self._poke.clear()
            if not self._stop.is_set():
                self.step(first=False)

    def step(self, first: bool = False) -> None:
        """One round of the work (``first``: the start's sync too); the thread's body."""
        self.busy = True
        try:
            changed = first
            if first and self.client is not None:
                counts = sync_annotations(self.loop, self.client, self.project, self.log)
                self.log(f"label studio: {counts['recorded']} annotations recorded since the "
                         f"last run, {counts['known']} known, {counts['refused']} refused")
            while self.loop.due() and not self._stop.is_set():
                start = time.perf_counter()
                pending = len(self.loop.state.pending())
                self.log(f"retraining on {pending} new annotations")
                current = self.loop.retrain()
                self.retrains += 1
                changed = True
                seconds = time.perf_counter() - start
                self.log(f"model version {current['model_version']} (round {current['round']}) "
                         f"serves; retrained and rescored in {seconds:.1f} s")
            if changed and self.client is not None:
                replace_predictions(self.loop, self.client, self.project, self.log)
            self.error = None
        except Exception as exc:  # noqa: BLE001 - kept, logged, retried on the next poke
            self.error = f"{type(exc).__name__}: {exc}"
            self.log(f"error in the background worker (tried again on the next annotation): "
                     f"{self.error}")  # fmt: skip
        finally:
            self.busy = False
