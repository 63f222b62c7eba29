"""The relay's one validated configuration: a TOML file, overridden by the environment.

:func:`load_config` reads a TOML file (the starter one is written by
``ncb-relay relay init``); every setting can then be overridden by an
environment variable named ``NCB_RELAY_`` plus the setting's name, with ``__``
between a section and a key: ``NCB_RELAY_LISTEN__PORT=8080``,
``NCB_RELAY_LIMITS__MAX_BODY_BYTES=262144``, ``NCB_RELAY_DATABASE=/srv/relay.db``.
The environment wins over the file.  Relative paths in the file are taken
relative to the file's directory; relative paths from the environment,
relative to the working directory.  Unknown keys are errors (a misspelt limit
must not silently fall back to its default), and every failure is a
:class:`~ncb_relay.errors.UsageError` that names the file and the setting at
fault.  The configuration never holds a secret: the keystore's passphrase is
read from the environment variable named by ``passphrase_env`` when the
relay starts.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from ..errors import UsageError
from ..identity import check_principal_id
from .limits import RequestLimits

__all__ = [
    "ENV_PREFIX",
    "Limits",
    "Listen",
    "Logging",
    "MetricsListen",
    "Purge",
    "Quotas",
    "RelayConfig",
    "config_from_mapping",
    "load_config",
]

ENV_PREFIX = "NCB_RELAY_"
MAX_CONFIG_BYTES = 1024 * 1024


class Listen(BaseModel):
    """Where the relay listens and how it stops."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    host: str = Field(default="127.0.0.1", min_length=1, max_length=255)
    port: int = Field(default=8443, ge=0, le=65535)
    shutdown_timeout: float = Field(default=10.0, gt=0, le=3600)
    keep_alive_timeout: float = Field(default=5.0, gt=0, le=3600)


class Limits(BaseModel):
    """Every limit the relay enforces on a request (spec/relay-api.md)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    max_body_bytes: int = Field(default=8 * 1024 * 1024, ge=1024, le=64 * 1024 * 1024)
    body_deadline: float = Field(default=30.0, gt=0, le=3600)
    max_header_bytes: int = Field(default=16 * 1024, ge=1024, le=1024 * 1024)
    max_header_count: int = Field(default=100, ge=8, le=1000)
    long_poll_max_wait: int = Field(default=30, ge=0, le=300)
    max_long_polls_per_bureau: int = Field(default=4, ge=1, le=1000)
    lease: int = Field(default=60, ge=1, le=60)  # API-21: an operator may only lower it

    def request_limits(self) -> RequestLimits:
        """The part that :class:`~ncb_relay.relay.limits.RequestLimitsMiddleware` enforces."""
        return RequestLimits(
            max_body_bytes=self.max_body_bytes,
            body_deadline=self.body_deadline,
            max_header_bytes=self.max_header_bytes,
            max_header_count=self.max_header_count,
        )


class Quotas(BaseModel):
    """What one bureau may keep at the relay awaiting delivery (spec/relay-api.md, API-22/23)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    sender_max_messages: int = Field(default=10_000, ge=1, le=10**9)
    sender_max_bytes: int = Field(default=1024**3, ge=1024, le=2**50)
    mailbox_max_messages: int = Field(default=100_000, ge=0, le=10**9)
    retry_after: int = Field(default=60, ge=1, le=86400)


class MetricsListen(BaseModel):
    """The operator's own listener for ``/metrics``: off unless ``port`` is set."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    host: str = Field(default="127.0.0.1", min_length=1, max_length=255)
    port: int | None = Field(default=None, ge=0, le=65535)

    def listen(self, main: Listen) -> Listen | None:
        """The listener to serve metrics on (shutdown as ``main``), or ``None`` when off."""
        if self.port is None:
            return None
        return main.model_copy(update={"host": self.host, "port": self.port})


class Purge(BaseModel):
    """How often expired messages are removed from the store, and how many per transaction."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    interval: float = Field(default=60.0, gt=0, le=86400)
    batch: int = Field(default=1000, ge=1, le=1000)


class Logging(BaseModel):
    """The relay's log: JSON lines on standard error, at this level and above."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    level: Literal["debug", "info", "warning", "error"] = "info"


class RelayConfig(BaseSettings):
    """The relay's settings; build it with :func:`load_config` or :func:`config_from_mapping`."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_nested_delimiter="__",
        extra="forbid",
        frozen=True,
        case_sensitive=False,
    )

    relay_id: str
    database: Path
    keystore: Path
    directory: Path
    anchors: tuple[Path, ...] = Field(min_length=1, max_length=64)
    passphrase_env: str = Field(default="NCB_RELAY_PASSPHRASE", pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    listen: Listen = Field(default_factory=Listen)
    limits: Limits = Field(default_factory=Limits)
    quota: Quotas = Field(default_factory=Quotas)
    metrics: MetricsListen = Field(default_factory=MetricsListen)
    purge: Purge = Field(default_factory=Purge)
    log: Logging = Field(default_factory=Logging)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # the environment overrides the file (passed as init values); no .env, no secrets dir
        return env_settings, init_settings

    @field_validator("relay_id")
    @classmethod
    def _principal(cls, value: str) -> str:
        return check_principal_id(value, error=UsageError)


def _describe(exc: ValidationError) -> str:
    problems = []
    for error in exc.errors(include_url=False, include_input=False):
        where = ".".join(str(part) for part in error["loc"]) or "(top level)"
        problems.append(f"{where}: {error['msg']}")
    return "invalid relay configuration: " + "; ".join(problems)


def _relative_to(base: Path, value: object) -> object:
    if isinstance(value, str) and not os.path.isabs(value):
        return str(base / value)
    return value


def config_from_mapping(values: Mapping[str, Any], *, base: Path | None = None) -> RelayConfig:
    """The configuration from ``values`` (a parsed TOML table), with environment overrides.

    Relative paths in ``values`` (``database``, ``keystore``, ``directory``,
    ``anchors``) are resolved against ``base`` when it is given.
    """
    data = dict(values)
    if base is not None:
        for key in ("database", "keystore", "directory"):
            data[key] = _relative_to(base, data.get(key))
        if isinstance(data.get("anchors"), list):
            data["anchors"] = [_relative_to(base, value) for value in data["anchors"]]
    try:
        return RelayConfig(**data)
    except ValidationError as exc:
        raise UsageError(_describe(exc)) from None
    except ValueError as exc:  # pydantic-settings: an environment value that is not JSON
        raise UsageError(f"invalid relay configuration: {exc}") from None


def load_config(path: str | os.PathLike[str]) -> RelayConfig:
    """Read the TOML file at ``path`` and apply the ``NCB_RELAY_*`` environment overrides."""
    file = Path(path)
    try:
        with file.open("rb") as handle:
            raw = handle.read(MAX_CONFIG_BYTES + 1)
    except OSError as exc:
        raise UsageError(f"cannot read {file}: {exc.strerror or type(exc).__name__}") from None
    try:
        if len(raw) > MAX_CONFIG_BYTES:
            raise UsageError(f"a configuration file is at most {MAX_CONFIG_BYTES} bytes")
        try:
            values = tomllib.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
            raise UsageError(f"not a TOML file: {exc}") from None
        return config_from_mapping(values, base=file.resolve().parent)
    except UsageError as exc:
        exc.add_note(str(file))
        raise
