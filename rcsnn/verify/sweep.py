"""Running a sweep's tasks on dask.distributed (or serially), persisted part by part so a sweep resumes.

Each task's result is written, as it completes, to ``DIR/parts/<task key>.json`` (a temporary file
renamed into place: a part is whole or absent). A restarted sweep loads the parts it has and runs
only the others, so an interrupted sweep gives the same results as an uninterrupted one. Tasks are
pure (:func:`rcsnn.verify.montecarlo.execute`), so a serial run, a LocalCluster and an existing
scheduler give the same results.

On dask, a worker that dies mid-task (killed, out of memory) is replaced by its nanny and its task
runs again elsewhere (the scheduler's ``allowed-failures``, 3 by default): nothing is lost, and every
task whose worker died under it is reported with the number of deaths (the scheduler's
``suspicious`` count, read as the task completes).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import tempfile
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import RcsnnError
from .montecarlo import Bundle, Task, execute

__all__ = ["PARTS", "Outcome", "load_parts", "save_part", "run_tasks"]

PARTS = "parts"


@dataclass
class Outcome:
    """Results by task key; which were computed now, which came from persisted parts, which were retried."""

    results: dict = field(default_factory=dict)
    computed: list = field(default_factory=list)
    resumed: list = field(default_factory=list)
    retried: dict = field(default_factory=dict)  # task key -> number of workers that died running it


def load_parts(directory: Path, tasks: list[Task]) -> dict[str, dict]:
    """The persisted results of ``tasks`` under ``directory/parts`` (a part that does not parse is an error)."""
    out = {}
    for t in tasks:
        path = Path(directory) / PARTS / f"{t.key}.json"
        if path.exists():
            try:
                out[t.key] = json.loads(path.read_text())
            except (OSError, ValueError) as exc:
                raise RcsnnError(f"{path}: cannot read a persisted result ({exc}); remove it to run the task again") \
                    from None
    return out


def save_part(directory: Path, key: str, result: dict) -> None:
    """Persist one result atomically."""
    parts = Path(directory) / PARTS
    parts.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{key}.", suffix=".part", dir=parts)
    try:
        with os.fdopen(fd, "w") as f:
            f.write(json.dumps(result, sort_keys=True) + "\n")
        os.replace(tmp, parts / f"{key}.json")
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _same(bundle: Bundle) -> Bundle:
    return bundle


def _suspicious(dask_scheduler, keys: list) -> dict:
    """On the scheduler: how many workers died while running each of ``keys``."""
    return {k: dask_scheduler.tasks[k].suspicious for k in keys if k in dask_scheduler.tasks}


def run_tasks(bundle: Bundle, tasks: list[Task], directory: str | Path, scheduler: str = "local", workers: int = 2,
              progress: Callable[[int, int, Task, dict], None] | None = None) -> Outcome:
    """Run the ``tasks`` not yet persisted in ``directory``: ``scheduler`` ``serial`` (in this process),
    ``local`` (a dask LocalCluster of ``workers`` single-threaded worker processes) or the address of an
    existing dask scheduler. ``progress(done, total, task, result)`` is called as each task completes."""
    directory = Path(directory)
    outcome = Outcome(results=load_parts(directory, tasks))
    outcome.resumed = [t.key for t in tasks if t.key in outcome.results]
    todo = [t for t in tasks if t.key not in outcome.results]
    done = len(outcome.resumed)

    def finish(task: Task, result: dict) -> None:
        nonlocal done
        save_part(directory, task.key, result)
        outcome.results[task.key] = result
        outcome.computed.append(task.key)
        done += 1
        if progress is not None:
            progress(done, len(tasks), task, result)

    if scheduler == "serial" or not todo:
        for task in todo:
            finish(task, execute(bundle, task))
        return outcome
    try:
        from distributed import Client, LocalCluster, as_completed
    except ImportError:
        raise RcsnnError("dask.distributed is not installed: pip install 'distributed' (tools/setup.sh does)") from None
    if scheduler == "local":
        cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None,
                               silence_logs=logging.CRITICAL)  # failures reach us through the futures
    else:
        cluster = None
    try:
        client = Client(cluster if cluster is not None else scheduler, timeout="30s")
    except OSError as exc:
        if cluster is not None:
            cluster.close()
        raise RcsnnError(f"--scheduler {scheduler}: cannot connect ({exc})") from None
    futures, shared = [], None
    try:
        # the bundle as a task (not scattered data): if every worker holding it dies, the scheduler makes it again;
        # it is sent once (dask warns about any graph over 10 MB, the example's bundle is ~11 MB)
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Sending large graph")
            shared = client.submit(_same, bundle, key=f"bundle-{client.id}", pure=False)
        by_key = {}
        for task in todo:
            future = client.submit(execute, shared, task, key=f"{task.key}-{client.id}", pure=False)
            by_key[future.key] = task
            futures.append(future)
        for future in as_completed(futures):
            task = by_key[future.key]
            result = future.result()
            deaths = client.run_on_scheduler(_suspicious, keys=[future.key]).get(future.key, 0)
            if deaths:
                outcome.retried[task.key] = int(deaths)
            future.release()
            finish(task, result)
    finally:
        client.cancel([f for f in (*futures, shared) if f is not None])
        with contextlib.suppress(TimeoutError):  # bounded: a worker stuck in its shutdown must not hold the results
            client.close(timeout=60)
            if cluster is not None:
                cluster.close(timeout=60)
    return outcome
