"""Where a batch's texts are classified: on the worker's model thread, or in a child process
of its own (``model-executor``).

On a thread of the worker, the forward's own threads (ONNX Runtime's runs, the tokenizer's
pool) take and give back the worker's GIL around every run, while the event loop holds it
for the Python around each message (validation, events, rows): each waits for the other,
and the model ran at a third of its own speed beside a busy loop. In a child process the
model has an interpreter of its own; the batch sends it the cleaned texts and gets back the
predictions, about 2 µs a review each way.

The child loads the served model's directory again with the worker's settings (the same
files, so the same model; the version it reports is checked against the served one). It
keeps the last :data:`KEPT_MODELS` directories loaded, so a hot reload warms the next model
there (:meth:`ModelProcess.load`, on the loader thread) before it is swapped in, and a
batch never waits for a load. The served model object stays in the worker: its canary ran
there, and ``POST /predict`` and the pages use it.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Sequence
from concurrent.futures import Executor, Future
from pathlib import Path
from typing import Any, Protocol

from model.cputime import ThreadCpu
from stream.pipeline.child import Child, exit_with_parent
from stream.serving.holder import Predictor

KEPT_MODELS = 2
"""Model directories the child keeps loaded: the served one and the one a reload brings."""

Predicted = tuple[list[Any], float]
"""One prediction per text, in order, and the wall seconds the model took."""


class ModelRunner(Protocol):
    """Classifies a batch's cleaned texts with ``model``; thread CPU seconds by stage
    (``tokenize``, ``forward``) are added to ``cpu``."""

    def __call__(
        self, model: Predictor, texts: Sequence[str], cpu: ThreadCpu
    ) -> Awaitable[Predicted]: ...


class ModelOnThread:
    """``model`` used only on ``executor``'s one thread of this process."""

    def __init__(self, executor: Executor) -> None:
        self.executor = executor

    async def __call__(self, model: Predictor, texts: Sequence[str], cpu: ThreadCpu) -> Predicted:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self.executor, timed, model.predict_cleaned, texts, cpu)

    def close(self) -> None:
        """Nothing of its own to stop: the executor is its owner's to shut down (the worker
        context's ``model_executor``)."""


class ModelProcessDied(RuntimeError):
    """The model child died with a batch in hand; a new one is starting (retry it)."""


class ModelProcess:
    """The served model, loaded again in one spawned child process (``stream.pipeline.child``).
    ``load_options`` are ``SentimentModel.load``'s keywords (the worker's model settings).
    :meth:`start` launches the child, loading a directory there if one is given;
    ``restarted`` is called with each replacement of a child that died (the new one loads
    the last directory named to :meth:`start` or :meth:`load`)."""

    def __init__(
        self, load_options: dict[str, Any], *, restarted: Callable[[], None] = lambda: None
    ) -> None:
        self._child = Child(
            "model", _start_in_child, (load_options,), died=ModelProcessDied, restarted=restarted
        )

    @property
    def pid(self) -> int | None:
        """The current child's, once it is ready."""
        return self._child.pid

    def start(self, directory: Path | None = None) -> Future:
        """Launch the child (if none runs) and return a future done once it is ready and has
        ``directory``'s model loaded (its result: the child's pid)."""
        if directory is None:
            return self._child.start()
        return self._child.start(_load_in_child, str(directory))

    def load(self, directory: Path) -> None:
        """Load ``directory``'s model in the child and wait for it (the loader thread, before
        a swap): the first batch on the new model does not wait for it."""
        self.start(directory).result()

    async def __call__(self, model: Predictor, texts: Sequence[str], cpu: ThreadCpu) -> Predicted:
        predictions, seconds, stages, version = await self._child.run(
            f"a batch of {len(texts)}", _predict_in_child, str(model.directory), list(texts)
        )
        if version != model.version:
            raise RuntimeError(
                f"the model process loaded version {version} from {model.directory}, "
                f"but {model.version} is served from there: was the directory changed?"
            )
        for stage, spent in stages.items():
            cpu.add(stage, spent)
        return predictions, seconds

    def close(self) -> None:
        """Stop the child (after the batch it has in hand, if any) and wait for it."""
        self._child.close()


ModelExecution = ModelOnThread | ModelProcess
"""Where the worker classifies a batch (``model-executor``)."""


def timed(
    predict: Callable[[Sequence[str], ThreadCpu], list[Any]],
    texts: Sequence[str],
    cpu: ThreadCpu,
) -> Predicted:
    """``predict(texts, cpu)`` and the seconds it took, measured on the thread that runs it."""
    started = time.perf_counter()
    predictions = predict(texts, cpu)
    return predictions, time.perf_counter() - started


# --- in the child process ----------------------------------------------------------------

_child_state: list[dict[str, Any]] = []
"""The child's load options and its loaded models by directory, set by its initializer; empty
in the worker itself (a process pool's initializer can leave state only at module level)."""


def _start_in_child(load_options: dict[str, Any]) -> None:
    exit_with_parent()
    _child_state.append({"options": load_options, "models": OrderedDict()})


def _load_in_child(directory: str) -> Any:
    from model.predictor import SentimentModel

    state = _child_state[0]
    models: OrderedDict[str, Any] = state["models"]
    if directory in models:
        models.move_to_end(directory)
        return models[directory]
    model = SentimentModel.load(Path(directory), **state["options"])
    models[directory] = model
    while len(models) > KEPT_MODELS:
        models.popitem(last=False)
    return model


def _predict_in_child(
    directory: str, texts: list[str]
) -> tuple[list[Any], float, dict[str, float], str]:
    model = _load_in_child(directory)
    cpu = ThreadCpu()
    predictions, seconds = timed(model.predict_cleaned, texts, cpu)
    return predictions, seconds, cpu.seconds, model.version
