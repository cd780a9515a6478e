from django.apps import AppConfig


class SuitesConfig(AppConfig):
    name = "suites"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        """The domain's signals refresh the matrix's cells (suites/cells.py); every change to
        a method, task or run counts the suite's matrix version up."""
        from django.db.models.signals import post_delete, post_save

        from competitions.signals import ranking_changed, submission_finished
        from suites import cells
        from suites.models import Method, MethodRun, SuiteTask

        submission_finished.connect(cells.on_submission_finished, dispatch_uid="suites-finished")
        ranking_changed.connect(cells.on_ranking_changed, dispatch_uid="suites-ranking")
        for model in (Method, SuiteTask, MethodRun):
            for signal in (post_save, post_delete):
                signal.connect(
                    cells.on_matrix_row_saved,
                    sender=model,
                    dispatch_uid=f"suites-version-{signal is post_save}-{model.__name__}",
                )
