"""Resumable uploads (tus 1.0, docs/uploads.md): a file sent in pieces, owned by the user
who created it, kept in the private storage until it becomes a submission or expires.

`offset` is the number of bytes the server holds, always a prefix of the file; `locked_at`
is set while a PATCH writes (one writer at a time) and refreshed as data arrives, so a
writer that died leaves a lock that goes stale.
"""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models

from competitions.models.core import _private_storage


class Upload(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="uploads"
    )
    # The competition the file is for, when the client named one: its limit applies
    # (a phase that takes containers allows HELDOUT_MAX_IMAGE_BYTES).
    competition = models.ForeignKey(
        "competitions.Competition", on_delete=models.CASCADE, null=True, blank=True
    )
    filename = models.CharField(max_length=255)
    metadata = models.JSONField(default=dict, blank=True)
    length = models.BigIntegerField()
    offset = models.BigIntegerField(default=0)
    file = models.FileField(storage=_private_storage, upload_to="uploads/", max_length=300)
    sha256 = models.CharField(max_length=64, blank=True)
    locked_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField()
    expires_at = models.DateTimeField(db_index=True)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=models.Q(offset__gte=0, offset__lte=models.F("length")),
                name="upload_offset_within_length",
            ),
            models.CheckConstraint(
                condition=models.Q(length__gte=0), name="upload_length_positive"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.filename} ({self.offset}/{self.length})"

    @property
    def is_complete(self) -> bool:
        return self.offset == self.length
