"""The Workload protocol: what every workload module provides."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol, TypeVar

from .context import RunContext
from .params import Size, WorkloadParams
from .results import WorkloadResult

P = TypeVar("P", bound=WorkloadParams)


class Workload(Protocol[P]):
    """One way of driving the queue, returning one :class:`WorkloadResult`.

    A workload runs identically bare or under a profiler: it only uses its ``params`` and the
    :class:`RunContext`, and records what it measures in ``ctx.partial`` as it goes, so an
    interrupted run still has results.
    """

    @property
    def name(self) -> str:
        """The name users type: ``queueprof run NAME``."""
        ...

    @property
    def description(self) -> str:
        """One line for ``queueprof list``."""
        ...

    @property
    def params_type(self) -> type[P]:
        """The frozen params dataclass; its fields are this workload's options."""
        ...

    @property
    def sizes(self) -> Mapping[Size, P]:
        """Presets for every :class:`Size`."""
        ...

    @property
    def queue_defaults(self) -> str:
        """Queue options (``key=value,...``) this workload needs unless the user overrides them."""
        ...

    async def run(self, params: P, ctx: RunContext) -> WorkloadResult:
        """Drive the queue and return what was measured."""
        ...
