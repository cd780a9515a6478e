from django.apps import AppConfig
from django.core.management import call_command
from django.db.models.signals import post_migrate


def _sync_organizers_group(sender, **kwargs) -> None:
    from competitions.admin import organizers_group_sync

    organizers_group_sync()


def _create_cache_table(sender, using: str = "default", **kwargs) -> None:
    # The database cache's table (settings.CACHES without HELDOUT_CACHE_URL) is no model, so
    # no migration makes it; this does, at every migrate (nothing when it exists or is Redis).
    call_command("createcachetable", database=using, verbosity=0)


class CompetitionsConfig(AppConfig):
    name = "competitions"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Every installation has the Organizers group with its admin permissions after migrate.
        post_migrate.connect(_sync_organizers_group, sender=self)
        post_migrate.connect(_create_cache_table, sender=self)
