"""The ceiling: a workflow that runs one activity that does nothing.

Started on the same Temporal server with a worker built from the same settings as the
order worker (`bench.workers noop`), it measures what this machine's Temporal can do at
best; the order workflows' throughput is reported as a fraction of it.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import activity, workflow


@activity.defn
async def noop_activity(n: int) -> int:
    return n


@workflow.defn
class NoopWorkflow:
    @workflow.run
    async def run(self, n: int) -> int:
        result: int = await workflow.execute_activity(
            noop_activity, n, start_to_close_timeout=timedelta(seconds=30)
        )
        return result
