"""The sandbox tests' Docker fixtures (they fail, never skip, without an engine or image)."""

from tests.sandbox.conftest import (  # noqa: F401
    docker_client,
    no_sandbox_container_is_left,
    runner,
    scorer_image,
)
