"""STORAGES from the environment (config/storages.py)."""

from pathlib import Path

from config.storages import storages_from_env


def test_without_a_bucket_files_live_under_the_data_folder(monkeypatch):
    monkeypatch.delenv("HELDOUT_S3_BUCKET", raising=False)

    storages = storages_from_env(Path("/srv/heldout"))

    assert {name: s["OPTIONS"]["location"] for name, s in storages.items()} == {
        "default": "/srv/heldout/files/public",
        "private": "/srv/heldout/files/private",
    }


def test_one_bucket_holds_public_and_private_files_under_their_own_prefixes(monkeypatch):
    monkeypatch.setenv("HELDOUT_S3_BUCKET", "heldout")
    monkeypatch.delenv("HELDOUT_S3_PRIVATE_BUCKET", raising=False)
    monkeypatch.setenv("HELDOUT_S3_ENDPOINT_URL", "http://minio:9000")
    monkeypatch.setenv("HELDOUT_S3_ADDRESSING_STYLE", "path")

    storages = storages_from_env(Path("/srv/heldout"))

    options = {name: s["OPTIONS"] for name, s in storages.items()}
    assert {n: (o["bucket_name"], o["location"]) for n, o in options.items()} == {
        "default": ("heldout", "public"),
        "private": ("heldout", "private"),
    }
    assert options["private"]["endpoint_url"] == "http://minio:9000"
    assert options["private"]["addressing_style"] == "path"
    # Stored names identify content (manifests cache hashes by name): never overwritten.
    assert options["private"]["file_overwrite"] is False
    assert storages["private"]["BACKEND"] == "storages.backends.s3.S3Storage"


def test_a_private_bucket_of_its_own_needs_no_prefix(monkeypatch):
    monkeypatch.setenv("HELDOUT_S3_BUCKET", "heldout-public")
    monkeypatch.setenv("HELDOUT_S3_PRIVATE_BUCKET", "heldout-private")

    storages = storages_from_env(Path("/srv/heldout"))

    assert {
        n: (s["OPTIONS"]["bucket_name"], s["OPTIONS"]["location"]) for n, s in storages.items()
    } == {
        "default": ("heldout-public", ""),
        "private": ("heldout-private", ""),
    }
