"""STORAGES from the environment: the file system under HELDOUT_DATA_DIR/files (the embedded
default, one host) or an S3-protocol object store (AWS S3, MinIO, Cloudflare R2, Google
Cloud Storage's XML interop) when HELDOUT_S3_BUCKET is set, through django-storages.

"default" holds public task files, "private" everything else (ground truths, submissions,
scorer programs, uploads, results). With S3 they are separate buckets when
HELDOUT_S3_PRIVATE_BUCKET is set, else two prefixes of one bucket. Objects are never
public: every download is authorized by a view, then streamed or presigned
(competitions.downloads.stored_download). docs/production.md says more.
"""

from pathlib import Path
from typing import Any

from config.env import env_str


def storages_from_env(data_dir: Path) -> dict[str, dict[str, Any]]:
    bucket = env_str("HELDOUT_S3_BUCKET", "")
    if not bucket:
        return {
            "default": _file_system(data_dir / "files" / "public"),
            "private": _file_system(data_dir / "files" / "private"),
        }
    private_bucket = env_str("HELDOUT_S3_PRIVATE_BUCKET", "")
    return {
        "default": _s3(bucket, "" if private_bucket else "public"),
        "private": _s3(private_bucket or bucket, "" if private_bucket else "private"),
    }


def _file_system(location: Path) -> dict[str, Any]:
    return {
        "BACKEND": "django.core.files.storage.FileSystemStorage",
        "OPTIONS": {"location": str(location)},
    }


def _s3(bucket: str, prefix: str) -> dict[str, Any]:
    options: dict[str, Any] = {
        "bucket_name": bucket,
        "location": prefix,
        "endpoint_url": env_str("HELDOUT_S3_ENDPOINT_URL", "") or None,
        "region_name": env_str("HELDOUT_S3_REGION", "") or None,
        "addressing_style": env_str("HELDOUT_S3_ADDRESSING_STYLE", "") or None,
        "signature_version": "s3v4",
        # Unset credentials fall back to boto3's chain (instance role, AWS_* variables).
        "access_key": env_str("HELDOUT_S3_ACCESS_KEY_ID", "") or None,
        "secret_key": env_str("HELDOUT_S3_SECRET_ACCESS_KEY", "") or None,
        # Stored names are identities (manifests cache hashes by name): never overwrite.
        "file_overwrite": False,
        "default_acl": None,
        "querystring_auth": True,
    }
    return {"BACKEND": "storages.backends.s3.S3Storage", "OPTIONS": options}
