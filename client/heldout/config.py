"""Profiles in `config.toml` under the user's config folder (platformdirs:
`~/.config/heldout/config.toml` on Linux, `$XDG_CONFIG_HOME/heldout/` when set), written
with mode 0600 since it holds API tokens:

    [profiles.default]
    url = "https://heldout.example.org"
    token = "..."
    username = "alice"

HELDOUT_URL and HELDOUT_TOKEN override the profile's values (a HELDOUT_URL naming another
server than the profile's drops the profile's token: it is never sent elsewhere);
HELDOUT_PROFILE picks the profile when `--profile` is not given.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass
from pathlib import Path

import platformdirs

DEFAULT_PROFILE = "default"


@dataclass(frozen=True)
class Settings:
    profile: str
    url: str | None
    token: str | None
    username: str | None
    source: str  # where the token came from: "environment", the config file, or "none"


def config_path() -> Path:
    return Path(platformdirs.user_config_dir("heldout", appauthor=False)) / "config.toml"


def read_profiles(path: Path | None = None) -> dict[str, dict[str, str]]:
    path = path or config_path()
    if not path.exists():
        return {}
    with path.open("rb") as f:
        data = tomllib.load(f)
    profiles = data.get("profiles", {})
    return {name: dict(values) for name, values in profiles.items() if isinstance(values, dict)}


def profile_name(option: str | None) -> str:
    return option or os.environ.get("HELDOUT_PROFILE") or DEFAULT_PROFILE


def resolve(profile: str | None = None, path: Path | None = None) -> Settings:
    name = profile_name(profile)
    stored = read_profiles(path).get(name, {})
    env_url, env_token = os.environ.get("HELDOUT_URL"), os.environ.get("HELDOUT_TOKEN")
    token = env_token or stored.get("token")
    if env_url and not env_token and _same_server(env_url, stored.get("url")) is False:
        token = None  # the profile's token is for its own server: never send it elsewhere
    source = "HELDOUT_TOKEN" if env_token else (str(path or config_path()) if token else "none")
    return Settings(
        profile=name,
        url=env_url or stored.get("url"),
        token=token,
        username=None if env_token or not token else stored.get("username"),
        source=source,
    )


def _same_server(url: str, stored: str | None) -> bool | None:
    if stored is None:
        return None
    return url.rstrip("/") == stored.rstrip("/")


def save_profile(name: str, values: dict[str, str], path: Path | None = None) -> Path:
    """Write (or replace) one profile, keeping the others; the file is created 0600."""
    path = path or config_path()
    profiles = read_profiles(path)
    profiles[name] = {k: v for k, v in values.items() if v}
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    lines = []
    for profile, entries in profiles.items():
        lines.append(f"[profiles.{_quote(profile)}]")
        lines += [f"{key} = {_quote(value)}" for key, value in entries.items()]
        lines.append("")
    # Create with 0600 before any token is written; fix the mode of an older file too.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write("\n".join(lines))
    return path


def _quote(value: str) -> str:
    """A TOML basic string."""
    escaped = value.replace("\\", "\\\\").replace('"', '\\"')
    escaped = "".join(c if c.isprintable() else f"\\u{ord(c):04x}" for c in escaped)
    return f'"{escaped}"'
