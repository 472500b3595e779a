"""The TOML configuration: an ``[output]`` table, one ``[[sources]]`` table per source and the
service catalogue, one ``[[services]]`` table per service.

Validation happens once, up front, and every error names the file, the source and the key, and
says what was expected. Tokens are never in the file: a source names the environment variable
that holds its token (``token_env``).
"""

from __future__ import annotations

import difflib
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from deliverypulse.connector import Connector, load_connector
from deliverypulse.errors import ConfigError, UnknownConnectorError
from deliverypulse.names import source_name_problem
from deliverypulse.sources import COMMON_OPTIONS, Option, SourceConfig, parse_since
from deliverypulse.store.catalogue import Service
from deliverypulse.store.location import Location, check_url, is_url, resolve
from deliverypulse.store.schemas import STREAMS

DEFAULT_OUTPUT = "deliverypulse-data"

TOP_LEVEL_KEYS = ("output", "sources", "collect", "services")
OUTPUT_KEYS = ("path", "endpoint_url")
COLLECT_KEYS = ("concurrency",)
#: The keys of a ``[[services]]`` table, their types and what they are for.
SERVICE_KEYS: dict[str, Option] = {
    "name": Option(str, required=True, help="unique name of the service"),
    "repos": Option(list, help="its repos, owner/name or GitLab paths"),
    "configuration_items": Option(list, help="its ServiceNow configuration item names"),
    "incident_services": Option(list, help="its PagerDuty / Opsgenie services (name or id)"),
    "team": Option(str, help="the team that owns it"),
}


@dataclass(frozen=True)
class Config:
    """A whole validated configuration.

    ``output``: the dataset, a resolved local folder or a URL (``s3://bucket/prefix``) kept as
    given; ``endpoint_url``: the S3-compatible endpoint for such a URL (``[output]
    endpoint_url``; else ``AWS_ENDPOINT_URL`` from the environment)."""

    output: Path | str
    sources: tuple[SourceConfig, ...]
    path: Path | None = None
    concurrency: int = 4
    services: tuple[Service, ...] = ()
    endpoint_url: str | None = None

    def location(self) -> Location:
        """Where the dataset lives (the local folder, or the URL with its endpoint)."""
        return resolve(self.output, endpoint_url=self.endpoint_url)

    def source(self, name: str) -> SourceConfig:
        for source in self.sources:
            if source.name == name:
                return source
        raise ConfigError(f"no source named {name!r}", file=self.path)


def load_config(path: Path | str, *, output: Path | str | None = None) -> Config:
    """Read and validate a TOML config file."""
    file = Path(path)
    if not file.is_file():
        raise ConfigError(f"config file {file} does not exist")
    try:
        raw = tomllib.loads(file.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"not valid TOML: {error}", file=file) from None
    except UnicodeDecodeError:
        raise ConfigError("not a UTF-8 text file", file=file) from None
    return config_from_dict(raw, file=file, output=output)


def config_from_dict(
    raw: Mapping[str, Any], *, file: Path | None = None, output: Path | str | None = None
) -> Config:
    """Validate an already-parsed config (the CLI's ``--git PATH`` builds one of these)."""
    base_dir = file.parent.resolve() if file else Path.cwd()
    _reject_unknown(raw, TOP_LEVEL_KEYS, file=file, where="top level")
    output_table = raw.get("output", {})
    if not isinstance(output_table, Mapping):
        raise ConfigError("[output] must be a table", file=file, key="output")
    _reject_unknown(output_table, OUTPUT_KEYS, file=file, where="[output]")
    endpoint_url = _endpoint(output_table.get("endpoint_url"), file=file)
    out = _output(output, output_table.get("path", DEFAULT_OUTPUT), base_dir, file)
    collect_table = raw.get("collect", {})
    if not isinstance(collect_table, Mapping):
        raise ConfigError("[collect] must be a table", file=file, key="collect")
    _reject_unknown(collect_table, COLLECT_KEYS, file=file, where="[collect]")
    concurrency = collect_table.get("concurrency", 4)
    if isinstance(concurrency, bool) or not isinstance(concurrency, int) or concurrency < 1:
        raise ConfigError(
            f"expected a whole number >= 1, got {concurrency!r}",
            file=file,
            key="collect.concurrency",
        )

    services = _services(raw.get("services", []), file=file)
    entries = raw.get("sources")
    if not isinstance(entries, list) or not entries:
        raise ConfigError(
            'no [[sources]] defined; add at least one, e.g. [[sources]] type = "git" path = "."',
            file=file,
            key="sources",
        )
    sources = []
    for index, entry in enumerate(entries, start=1):
        source = _source(entry, index, file=file, base_dir=base_dir, services=services)
        if source.get("enabled", True):
            sources.append(source)
    seen: set[str] = set()
    for source in sources:
        if source.name in seen:
            raise source.error("two sources have this name; give each a unique 'name'", "name")
        seen.add(source.name)
    return Config(
        output=out,
        sources=tuple(sources),
        path=file,
        concurrency=concurrency,
        services=services,
        endpoint_url=endpoint_url,
    )


def _output(
    given: Path | str | None,
    configured: Any,
    base_dir: Path,
    file: Path | None,
) -> Path | str:
    """The dataset: ``--out`` (relative to the working folder) or ``[output] path`` (relative
    to the config file), resolved; a URL is checked (scheme, bucket, no credentials in it) and
    kept as written."""
    value = given or configured
    if not isinstance(value, str | Path) or not str(value).strip():
        raise ConfigError(f"expected a folder or URL, got {value!r}", file=file, key="output.path")
    if is_url(str(value)):
        try:
            check_url(str(value))
        except ConfigError as error:
            key = None if given else "output.path"
            raise ConfigError(error.detail, file=file if key else None, key=key) from None
        return str(value).rstrip("/")
    out = Path(value).expanduser()
    if not out.is_absolute():
        out = (Path.cwd() if given else base_dir) / out
    return out.resolve()


def _endpoint(value: Any, *, file: Path | None) -> str | None:
    """``[output] endpoint_url``: an http(s) URL without credentials, or nothing."""
    if value is None:
        return None
    parts = urlsplit(value) if isinstance(value, str) else None
    if parts is None or parts.scheme not in ("http", "https") or not parts.netloc:
        raise ConfigError(
            f"expected an http(s) URL such as http://127.0.0.1:9000, got {value!r}",
            file=file,
            key="output.endpoint_url",
        )
    if parts.username or parts.password:
        raise ConfigError(
            "credentials do not belong in the config; set AWS_ACCESS_KEY_ID and "
            "AWS_SECRET_ACCESS_KEY in the environment",
            file=file,
            key="output.endpoint_url",
        )
    return str(value)


def _services(entries: Any, *, file: Path | None) -> tuple[Service, ...]:
    """The ``[[services]]`` tables, checked like sources: unknown keys (with a suggestion),
    types, names unique."""
    if not isinstance(entries, list):
        raise ConfigError("[[services]] must be an array of tables", file=file, key="services")
    found: list[Service] = []
    for index, entry in enumerate(entries, start=1):
        label = f"[[services]] #{index}"
        if not isinstance(entry, Mapping):
            raise ConfigError(f"{label} must be a table", file=file, key="services")
        where = str(entry.get("name") or label)
        for key in entry:
            if key not in SERVICE_KEYS:
                raise ConfigError(
                    f"unknown key{_suggest(key, SERVICE_KEYS)}; services accept: "
                    f"{', '.join(SERVICE_KEYS)}",
                    file=file,
                    source=f"service {where}",
                    key=key,
                )
        values: dict[str, Any] = {}
        for key, option in SERVICE_KEYS.items():
            value = entry.get(key)
            if value is None:
                if option.required:
                    raise ConfigError(
                        f"missing; expected {option.describe()} ({option.help})",
                        file=file,
                        source=f"service {where}",
                        key=key,
                    )
                continue
            checked = _checked(option, value, file=file, source=f"service {where}", key=key)
            if option.kind is list and not all(isinstance(v, str) and v for v in checked):
                raise ConfigError(
                    f"expected a list of non-empty strings, got {value!r}",
                    file=file,
                    source=f"service {where}",
                    key=key,
                )
            values[key] = tuple(checked) if option.kind is list else checked
        if not str(values["name"]).strip():
            raise ConfigError("must not be empty", file=file, source=label, key="name")
        if any(s.name == values["name"] for s in found):
            raise ConfigError(
                "two services have this name; give each a unique 'name'",
                file=file,
                source=f"service {where}",
                key="name",
            )
        found.append(Service(**values))
    return tuple(found)


def _source(
    entry: Any,
    index: int,
    *,
    file: Path | None,
    base_dir: Path,
    services: tuple[Service, ...] = (),
) -> SourceConfig:
    label = f"[[sources]] #{index}"
    if not isinstance(entry, Mapping):
        raise ConfigError(f"{label} must be a table", file=file, key="sources")
    type_name = entry.get("type")
    if not isinstance(type_name, str) or not type_name:
        raise ConfigError(
            f'{label} has no \'type\' (e.g. "github", "gitlab", "git")', file=file, key="type"
        )
    display = str(entry.get("name") or f"{label} ({type_name})")
    try:
        connector = load_connector(type_name)
    except UnknownConnectorError as error:
        raise UnknownConnectorError(
            str(error).split(": ", 1)[-1], file=file, source=display, key="type"
        ) from None
    known = {**COMMON_OPTIONS, **connector.options}
    for key in entry:
        if key not in known:
            raise ConfigError(
                f"unknown key{_suggest(key, known)}; {type_name} sources accept: "
                f"{', '.join(sorted(known))}",
                file=file,
                source=display,
                key=key,
            )
    options: dict[str, Any] = {}
    for key, option in known.items():
        value = entry.get(key, option.default)
        if value is None:
            if option.required:
                raise ConfigError(
                    f"missing; expected {option.describe()} ({option.help})",
                    file=file,
                    source=display,
                    key=key,
                )
            options[key] = None
            continue
        options[key] = _checked(option, value, file=file, source=display, key=key)
    name = options["name"] or _default_name(type_name, connector, options)
    if problem := source_name_problem(name):
        raise ConfigError(problem, file=file, source=name, key="name")
    source = SourceConfig(
        name=name,
        type=type_name,
        options=options,
        config_file=file,
        base_dir=base_dir,
        services=services,
    )
    _check_common(source, connector)
    connector.validate(source)
    return source


def _checked(option: Option, value: Any, *, file: Path | None, source: str, key: str) -> Any:
    """``value`` if it has the option's type; a regex option compiled."""
    if option.is_url:
        return _url(value, file=file, source=source, key=key)
    if option.is_pattern:
        if not isinstance(value, (str, re.Pattern)):
            raise ConfigError(
                f"expected {option.describe()}, got {value!r}", file=file, source=source, key=key
            )
        try:
            return re.compile(value)
        except re.error as error:
            raise ConfigError(
                f"not a valid regular expression: {error}", file=file, source=source, key=key
            ) from None
    if not isinstance(value, option.kind) or (isinstance(value, bool) and option.kind is int):
        raise ConfigError(
            f"expected {option.describe()}, got {value!r}", file=file, source=source, key=key
        )
    return value


def _url(value: Any, *, file: Path | None, source: str, key: str) -> str:
    """An http(s) URL with a host, checked now rather than failing (or retrying) at run time."""
    problem = None
    if not isinstance(value, str):
        problem = f"expected an http(s) URL, got {value!r}"
    else:
        try:
            parts = urlsplit(value.strip())
            parts.port  # noqa: B018 - raises ValueError for a bad port
        except ValueError as error:
            problem = f"{value!r} is not a valid URL ({error})"
        else:
            if parts.scheme not in ("http", "https"):
                problem = f"{value!r}: expected an http:// or https:// URL"
            elif not parts.hostname:
                problem = f"{value!r}: the URL has no host"
    if problem:
        raise ConfigError(problem, file=file, source=source, key=key)
    return str(value).strip()


def _check_common(source: SourceConfig, connector: type[Connector]) -> None:
    try:
        source.since  # noqa: B018 - parses and validates
    except ConfigError as error:
        raise source.error(error.detail, "since") from None
    for stream in source.streams:
        if stream not in connector.streams:
            raise source.error(
                f"{stream!r} is not a stream of {source.type} sources "
                f"(it has {', '.join(connector.streams)})",
                "streams",
            )
        spec = next((s for s in connector.stream_specs if s.name == stream), None)
        if spec is not None and not spec.wanted(source.options):
            raise source.error(f"{stream!r} is read only when {spec.option!r} is set", "streams")
    if source.token_env and source.token() is None:
        raise source.error(
            f"environment variable {source.token_env} is not set (or empty); "
            "export it before running",
            "token_env",
        )


def _default_name(type_name: str, connector: type[Connector], options: Mapping[str, Any]) -> str:
    for key in ("repo", "project", "org", "group", "path"):
        value = options.get(key)
        if isinstance(value, str) and value:
            tail = Path(value).resolve().name if key == "path" else value
            return re.sub(r"[^A-Za-z0-9_.-]+", "-", f"{type_name}-{tail}").strip("-")
    return type_name


def _reject_unknown(
    table: Mapping[str, Any], allowed: tuple[str, ...], *, file: Path | None, where: str
) -> None:
    for key in table:
        if key not in allowed:
            raise ConfigError(
                f"unknown key at {where}{_suggest(key, allowed)}; expected one of "
                f"{', '.join(allowed)}",
                file=file,
                key=key,
            )


def _suggest(key: str, known: Any) -> str:
    close = difflib.get_close_matches(key, list(known), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


__all__ = [
    "COMMON_OPTIONS",
    "SERVICE_KEYS",
    "STREAMS",
    "Config",
    "Option",
    "Service",
    "SourceConfig",
    "config_from_dict",
    "load_config",
    "parse_since",
]
