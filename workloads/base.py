"""The Workload protocol: what every workload module provides."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol, TypeVar

from runs import WorkloadResult

from .context import RunContext
from .params import Size, WorkloadParams

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

    def finalize(self, params: P, result: WorkloadResult) -> WorkloadResult:
        """``result`` with what is computed from the measurements (fits, summaries) added.

        The runner calls it after the profiler's session has closed and the event loop has
        ended, so the computing is neither profiled nor counted in the workload's time; also
        for interrupted and failed runs, whose ``result`` is partial (it may lack anything).
        """
        ...


class DerivesNothingAfterRun:
    """For workloads that have every figure when :meth:`Workload.run` returns."""

    def finalize(self, params: Any, result: WorkloadResult) -> WorkloadResult:
        """``result`` as it is."""
        return result
