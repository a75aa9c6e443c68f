"""Scale-out on Ray, in one place for every step with ``--engine ray`` (``transcribe``, ``predict``).

:func:`ray_pool` connects to the cluster at ``ray_address`` or ``RAY_ADDRESS`` (``ray://head:10001`` for a remote
cluster), or starts a local Ray; an already initialised Ray is used as is. It sizes the actor pool: one actor
per ``num_cpus`` CPUs of the cluster unless ``concurrency`` is given. Ray is imported here only, when a step
asks for it, so ``casebench --help`` never imports it.
"""

from __future__ import annotations

import logging
import os
import warnings
from typing import Any

from casebench.errors import ConfigError, MissingDependencyError


def ray_pool(ray_address: str | None = None, num_cpus: float | None = None,
             concurrency: int | None = None) -> tuple[Any, float, int]:
    """The ``ray`` module (initialised), the CPUs per actor and the number of actors.

    Raises:
        MissingDependencyError: Ray Data is not installed.
    """
    try:
        import ray
        import ray.data  # noqa: F401 - the steps stream their batches with Ray Data
    except ImportError as e:
        raise MissingDependencyError(f"--engine ray needs Ray Data ({e}): pip install 'ray[data]' "
                                     "(or pip install 'casebench[scale]')") from e
    if not ray.is_initialized():
        address = ray_address or os.environ.get("RAY_ADDRESS") or None
        try:
            ray.init(address=address, include_dashboard=False, log_to_driver=False)
        except (ValueError, ConnectionError) as e:  # a malformed or unreachable address
            where = "--ray-address" if ray_address else "RAY_ADDRESS"
            raise ConfigError(f"{where} {address!r}: cannot connect to a Ray cluster ({e}); expected e.g. "
                              "ray://head:10001 or head:6379, or no address for a local Ray") from None
    # the step draws its own progress: Ray Data's INFO lines ("Dataset ... execution finished") and its hint that
    # a small run cannot use every actor would only interleave with it on stderr (warnings and errors still show)
    logging.getLogger("ray.data").setLevel(logging.WARNING)
    logging.getLogger("ray.data._internal.progress").setLevel(logging.ERROR)  # "Progress bars disabled": by us
    warnings.filterwarnings("ignore", message="The minimum number of concurrent actors", category=UserWarning)
    num_cpus = num_cpus or 1
    if concurrency is None:
        concurrency = max(1, int(ray.cluster_resources().get("CPU", 1) // num_cpus))
    return ray, num_cpus, concurrency
