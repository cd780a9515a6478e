"""Celery adapters of the suites app: take the ids, call the services."""

from celery import shared_task


@shared_task(acks_late=True)
def suite_cells_refresh_task(
    suite_id: int, method_id: int | None = None, suite_task_id: int | None = None
) -> int:
    from suites.cells import suite_cells_refresh
    from suites.matrix_html import matrix_body_kept
    from suites.selectors import suite_matrix_keep

    # Idempotent: a duplicate finds no stale cell (and the matrix kept).
    written = suite_cells_refresh(
        suite_id=suite_id, method_id=method_id, suite_task_id=suite_task_id
    )
    if written:
        # The next read finds the matrix computed and its page rendered.
        matrix = suite_matrix_keep(suite_id=suite_id)
        if matrix is not None:
            matrix_body_kept(matrix=matrix)
    return written
