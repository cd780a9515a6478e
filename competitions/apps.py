from django.apps import AppConfig
from django.db.models.signals import post_migrate


def _sync_organizers_group(sender, **kwargs) -> None:
    from competitions.admin import organizers_group_sync

    organizers_group_sync()


class CompetitionsConfig(AppConfig):
    name = "competitions"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Every installation has the Organizers group with its admin permissions after migrate.
        post_migrate.connect(_sync_organizers_group, sender=self)
