"""Celery adapters of the suites app: take the ids, call one service."""

from celery import shared_task


@shared_task(acks_late=True)
def suite_cells_refresh_task(
    suite_id: int, method_id: int | None = None, suite_task_id: int | None = None
) -> int:
    from suites.cells import suite_cells_refresh

    # Idempotent: a duplicate finds no stale cell.
    return suite_cells_refresh(suite_id=suite_id, method_id=method_id, suite_task_id=suite_task_id)
