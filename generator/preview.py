"""Preview the CRM records a project's field map makes from one webhook body.

``rabt preview`` reads ``integration/mapping.yaml`` of a generated project and runs
the same mapping engine that the generated service runs, on a body from a file or
on a shipped sample. Nothing is sent anywhere.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from generator.errors import InputError, Problem
from generator.i18n import join_list, message
from generator.model import Lang
from generator.resources import load_data
from generator.runtime.engine import (
    PLATFORMS,
    MappedRecords,
    accepted_platforms,
    json_type,
    map_payload,
    topics,
)

SAMPLES_DIR = Path(__file__).resolve().parent / "payloads"


@dataclass(frozen=True)
class Sample:
    """A shipped sample body with the platform and topic it is sent under."""

    name: str
    platform: str
    topic: str
    description: dict[str, str]

    @property
    def path(self) -> Path:
        """The JSON file of the sample."""
        return SAMPLES_DIR / f"{self.name}.json"


@cache
def list_samples() -> tuple[Sample, ...]:
    """Return the shipped samples in the order of ``payloads/samples.yaml``."""
    with (SAMPLES_DIR / "samples.yaml").open(encoding="utf-8") as handle:
        index = yaml.safe_load(handle)
    return tuple(
        Sample(entry["name"], entry["platform"], entry["topic"], dict(entry["description"]))
        for entry in index["samples"]
    )


def find_sample(name: str) -> Sample | None:
    """Return the sample called ``name`` (``.json`` may be given), or None."""
    sample_name = name.removesuffix(".json")
    return next((sample for sample in list_samples() if sample.name == sample_name), None)


def _invalid(lang: Lang, location: str, text: str, fix: str) -> InputError:
    return InputError(message("preview_invalid", lang), [Problem(location, text, fix)])


def load_mapping(project: Path, lang: Lang = "en") -> dict[str, Any]:
    """Read ``integration/mapping.yaml`` of a generated project.

    Raises:
        InputError: The folder has no field map, or the file is not a valid one.
    """
    path = project / "integration" / "mapping.yaml"
    if not path.is_file():
        raise _invalid(lang, "--project", message("preview_no_project", lang, path=project),
                       message("preview_no_project_fix", lang))
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as error:
        raise _invalid(lang, str(path), message("preview_bad_mapping", lang, error=error),
                       message("preview_bad_mapping_fix", lang)) from error
    valid = (isinstance(document, dict) and isinstance(document.get("entities"), dict)
             and bool(accepted_platforms(document)))
    if not valid:
        raise _invalid(lang, str(path), message("preview_bad_mapping", lang,
                                                error=message("preview_mapping_shape", lang)),
                       message("preview_bad_mapping_fix", lang))
    mapping: dict[str, Any] = document
    return mapping


def load_payload(value: str, lang: Lang = "en") -> tuple[Any, Sample | None]:
    """Read a webhook body from a JSON file or from the shipped sample named ``value``.

    A file that exists wins over a sample of the same name.

    Returns:
        The parsed body and the sample it came from (None for a file).

    Raises:
        InputError: ``value`` is neither a file nor a sample, or the file is not JSON.
    """
    sample = None
    path = Path(value)
    if not path.is_file():
        sample = find_sample(value)
        if sample is None:
            raise _invalid(lang, "--payload", message("preview_no_payload", lang, value=value),
                           message("preview_no_payload_fix", lang))
        path = sample.path
    try:
        # json.loads on bytes detects UTF-8, UTF-16 and a UTF-8 byte order mark.
        return json.loads(path.read_bytes()), sample
    except OSError as error:
        raise _invalid(lang, "--payload", message("preview_unreadable", lang, path=path,
                                                  error=error.strerror),
                       message("preview_not_json_fix", lang)) from error
    except (ValueError, UnicodeDecodeError) as error:
        raise _invalid(lang, "--payload", message("preview_not_json", lang, path=path,
                                                  error=error),
                       message("preview_not_json_fix", lang)) from error


def _problem(location: str, text: str, fix: str) -> list[Problem]:
    return [Problem(location, text, fix)]


def _platform_problems(
    platform: str | None, mapping: dict[str, Any] | None, sample: Sample | None, project: Path,
    lang: Lang,
) -> list[Problem]:
    if platform is None:
        return _problem("--platform", message("preview_missing_option", lang),
                        message("preview_missing_option_fix", lang, option="--platform"))
    if platform not in PLATFORMS:
        return _problem("--platform", message("preview_unknown_platform", lang, value=platform,
                                              allowed=join_list(PLATFORMS, lang)),
                        message("preview_unknown_platform_fix", lang))
    problems = []
    accepted = accepted_platforms(mapping) if mapping is not None else (platform,)
    if mapping is not None and platform not in accepted:
        problems += _problem("--platform", message(
            "preview_platform_mismatch", lang, path=project, value=platform,
            project_platform=mapping.get("platform"), allowed=join_list(accepted, lang)),
            message("preview_platform_mismatch_fix", lang, allowed=join_list(accepted, lang)))
    if sample is not None and sample.platform != platform:
        problems += _problem("--payload", message(
            "preview_sample_platform", lang, name=sample.name, sample_platform=sample.platform,
            value=platform), message("preview_sample_platform_fix", lang))
    return problems


def _topic_problems(topic: str | None, platform: str | None, lang: Lang) -> list[Problem]:
    if topic is None:
        return _problem("--topic", message("preview_missing_option", lang),
                        message("preview_missing_option_fix", lang, option="--topic"))
    if platform in PLATFORMS and topic not in topics(str(platform)):
        return _problem("--topic", message("preview_unknown_topic", lang, value=topic,
                                                 platform=platform),
                        message("preview_unknown_topic_fix", lang,
                                topics=join_list(topics(str(platform)), lang)))
    return []


def _read_inputs(
    project: Path, payload: str | None, lang: Lang, problems: list[Problem]
) -> tuple[dict[str, Any] | None, Any, Sample | None]:
    """Read the field map and the body, adding what is wrong with them to ``problems``."""
    mapping = body = sample = None
    try:
        mapping = load_mapping(project, lang)
    except InputError as error:
        problems += error.problems
    if payload is None:
        problems += _problem("--payload", message("preview_missing_option", lang),
                             message("preview_no_payload_fix", lang))
        return mapping, None, None
    try:
        body, sample = load_payload(payload, lang)
    except InputError as error:
        problems += error.problems
        return mapping, None, None
    if not isinstance(body, dict):
        problems += _problem("--payload", message("preview_not_object", lang,
                                                        kind=json_type(body)),
                             message("preview_not_object_fix", lang))
    return mapping, body, sample


def preview_payload(
    project: Path, payload: str | None, platform: str | None = None, topic: str | None = None,
    lang: Lang = "en",
) -> MappedRecords:
    """Map one webhook body with a generated project's field map.

    Args:
        project: Folder of a project made by ``rabt new``.
        payload: Path of a JSON file with one webhook body, or a sample name such as
            ``shopify/orders-create-arabic``.
        platform: Payload family (``shopify``, ``woocommerce`` or ``storefront``);
            a sample's own platform when None.
        topic: Webhook topic or storefront event name; a sample's own topic when None.
        lang: Language of error messages.

    Returns:
        The records and the problems the engine reports.

    Raises:
        InputError: Every problem found with the project, body, platform and topic,
            each with its fix.
    """
    problems: list[Problem] = []
    mapping, body, sample = _read_inputs(project, payload, lang, problems)
    if sample is not None:
        platform = platform or sample.platform
        topic = topic or sample.topic
    # A --payload that was neither a file nor a sample may have been meant as a
    # sample, which brings its own platform and topic, so their absence is not
    # reported on top of it.
    payload_failed = payload is not None and body is None and sample is None
    if not (payload_failed and platform is None):
        problems += _platform_problems(platform, mapping, sample, project, lang)
    if not (payload_failed and topic is None):
        problems += _topic_problems(topic, platform, lang)
    if problems or mapping is None or platform is None or topic is None:
        raise InputError(message("preview_invalid", lang), problems)
    return map_payload(mapping, platform, topic, body)


def format_records(result: MappedRecords, output_format: str = "yaml") -> str:
    """Render a preview as YAML or JSON text, keeping Arabic as it is."""
    data = result.to_data()
    if output_format == "json":
        return json.dumps(data, ensure_ascii=False, indent=2)
    return yaml.safe_dump(data, allow_unicode=True, sort_keys=False, width=100).rstrip("\n")


def samples_data(lang: Lang = "en") -> list[dict[str, str]]:
    """Return the shipped samples as plain data for JSON output."""
    return [{"name": sample.name, "platform": sample.platform, "topic": sample.topic,
             "description": sample.description[lang]} for sample in list_samples()]


def format_samples(lang: Lang = "en") -> list[str]:
    """Return one line per sample (name, platform, topic, description) under a header."""
    header: list[str] = load_data("messages")["preview_samples_header"][lang]
    rows = [tuple(header)]
    rows += [(sample.name, sample.platform, sample.topic, sample.description[lang])
             for sample in list_samples()]
    widths = [max(len(row[column]) for row in rows) for column in range(3)]
    return ["  ".join([*(cell.ljust(width) for cell, width in zip(row[:3], widths, strict=True)),
                       row[3]]) for row in rows]
