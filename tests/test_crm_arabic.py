"""``rabt crm`` under ``--lang ar``: every sentence Rabt writes itself is Arabic.

The commands run against the HubSpot and Zoho stand-ins on 127.0.0.1, with faults
that make the HTTP client log a retry and make apply stop halfway. The CRM's own
error text stays as the CRM sent it, so the check removes it before looking for
English.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from generator.crm.apply import ApplyFailed, apply_plan
from generator.crm.http import CallOptions
from generator.crm.session import open_session
from generator.model import Lang
from generator.resources import load_data
from generator.standins.hubspot import HubSpotStandinConfig
from generator.standins.hubspot import create_app as create_hubspot
from generator.standins.zoho import create_app as create_zoho
from tests.crm_support import copy_project, hubspot_env, make_project, run_crm
from tests.servers import serve

NO_LIMIT = HubSpotStandinConfig(rate_limit_per_10s=0)
# Three lowercase Latin words in a row: an English phrase. Names in the output (API
# names, labels, paths) are single tokens or capitalised, so they do not match.
ENGLISH_PHRASE = re.compile(r"\b[a-z]{2,}(?: [a-z]{2,}){2,}\b")
# Text that is not Rabt's prose: the CRM's message for the injected fault, URLs,
# quoted names and the commands the messages tell the user to run. A Zoho view keeps
# its English name in both languages, because the user types that name in Zoho.
NOT_PROSE = [
    re.compile(r"Injected failure with HTTP \d+ from the stand-in"),
    re.compile(r'"[^"\n]*"'),
    re.compile(r"https?://\S+"),
    re.compile(r"rabt crm \w+[^\n،]*"),
]
ZOHO_ENV = {"ZOHO_CLIENT_ID": "test-client-1", "ZOHO_CLIENT_SECRET": "test-secret-1",
            "ZOHO_REFRESH_TOKEN": "test-refresh-1", "ZOHO_DC": "sa"}


def english_phrases(text: str) -> list[str]:
    """Return the English phrases left in ``text`` once the CRM's text and commands are gone."""
    for pattern in NOT_PROSE:
        text = pattern.sub(" ", text)
    return ENGLISH_PHRASE.findall(text)


@pytest.fixture(scope="module")
def hubspot_generated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_project("riyadh-perfume-hubspot", tmp_path_factory.mktemp("hubspot"))


@pytest.fixture()
def hubspot() -> Iterator[str]:
    with serve(create_hubspot(NO_LIMIT)) as base_url:
        yield base_url


def inject(base_url: str, status: int, prefix: str) -> None:
    response = httpx.post(f"{base_url}/_standin/faults", timeout=10,
                          json={"status": status, "count": 1, "path_prefix": prefix})
    assert response.status_code == 201


def test_english_phrase_check_finds_english() -> None:
    assert english_phrases("فشل: the connection failed (ConnectError)") == [
        "the connection failed"]
    assert english_phrases("أكمل بالأمر: rabt crm apply /tmp/x --yes") == []


def failed_apply(project: Path, base_url: str, lang: Lang) -> ApplyFailed:
    """Plan, then apply with one retried 503 and a 400 at the first list, and return the failure.

    The faults go in after the plan has read the account, because the stand-in
    matches them by path prefix and the plan reads the same paths.
    """
    with open_session(project, hubspot_env(base_url), lang,
                      CallOptions(sleep=lambda _: None)) as session:
        plan = session.plan()
        inject(base_url, 503, "/crm/v3/properties")
        inject(base_url, 400, "/crm/v3/lists")
        with pytest.raises(ApplyFailed) as raised:
            apply_plan(project, plan, session.adapter, session.state, lang=lang)
    return raised.value


def test_arabic_apply_failure_has_no_english(hubspot_generated: Path, hubspot: str,
                                             tmp_path: Path,
                                             caplog: pytest.LogCaptureFixture) -> None:
    project = copy_project(hubspot_generated, tmp_path / "project")
    with caplog.at_level(logging.WARNING, logger="rabt"):
        failure = failed_apply(project, hubspot, "ar")
    warnings = [record.getMessage() for record in caplog.records]
    assert warnings, "the 503 should have been retried with a warning"
    assert "ستُعاد المحاولة" in warnings[0]
    assert english_phrases("\n".join(warnings)) == []
    text = failure.render("ar")
    assert "فشلت عملية الإنشاء" in text
    assert "create" not in text.replace("rabt crm apply", "")
    assert english_phrases(text) == []


def test_arabic_apply_failure_counts_agree(hubspot_generated: Path, hubspot: str,
                                           tmp_path: Path) -> None:
    project = copy_project(hubspot_generated, tmp_path / "project")
    failure = failed_apply(project, hubspot, "ar")
    # 53 changes are planned for an empty account; 50 are done before the first list.
    assert failure.summary == "توقف التطبيق بعد 50 من 53 تغييرًا لأن طلبًا إلى نظام CRM فشل."


def test_english_apply_failure_counts(hubspot_generated: Path, hubspot: str,
                                      tmp_path: Path) -> None:
    project = copy_project(hubspot_generated, tmp_path / "project")
    failure = failed_apply(project, hubspot, "en")
    assert failure.summary == "Apply stopped after 50 of 53 changes because a CRM call failed."
    assert failure.problems[0].message.startswith("create failed: POST /crm/v3/lists")


def test_arabic_zoho_plan_has_no_english(tmp_path: Path) -> None:
    project = make_project("riyadh-perfume-hubspot", tmp_path, "crm=zoho")
    with serve(create_zoho()) as base_url:
        result = run_crm("plan", str(project), "--lang", "ar",
                         env={**ZOHO_ENV, "ZOHO_ACCOUNTS_URL": base_url})
    assert result.exit_code == 4, result.output
    assert english_phrases(result.stdout) == []
    assert english_phrases(result.stderr) == []


def test_arabic_missing_settings_have_no_english(hubspot_generated: Path) -> None:
    result = run_crm("plan", str(hubspot_generated), "--lang", "ar",
                     env={"HUBSPOT_ACCESS_TOKEN": ""})
    assert result.exit_code == 2
    assert "مضبوط لكن قيمته فارغة" in result.stderr
    assert english_phrases(result.stderr) == []


def test_catalogue_arabic_impersonal() -> None:
    first_person = re.compile(r"(?<![\u0600-\u06ff])(?:نتحقق|تحققنا|نقترح|ننصح|نوصي|نفترض)")
    for name, entry in load_data("messages").items():
        text = entry["ar"] if isinstance(entry["ar"], str) else " ".join(entry["ar"])
        assert first_person.findall(text) == [], name
