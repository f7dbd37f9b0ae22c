"""Every request step of the Zapier and Tray build sheets names its method and URL.

The sheets are rendered from the templates alone (no whole project), for each CRM and
store platform with the support module on, so the ticket links are covered too. The
Arabic documents of whole projects are checked for tatweel, which reads as a typing
habit in running text.
"""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path

import pytest
from click.testing import CliRunner
from jinja2 import Environment, FileSystemLoader

from generator.cli import main
from generator.render import build_context, build_parts
from tests.ipaas_cases import load_case

TEMPLATES = (Path(__file__).parent.parent / "templates/ipaas"
             / "{{cookiecutter._rabt.project_slug}}/workflows")
SHEETS = ("zapier-build-sheet.md", "zapier-build-sheet.ar.md", "tray-build-sheet.md",
          "tray-build-sheet.ar.md")
CRMS = ("hubspot", "zoho", "custom")
PLATFORMS = ("shopify", "woocommerce", "headless")
# A request in a cell: `METHOD URL`, METHOD to `URL` (in both languages), or an SQL
# statement printed under the table.
REQUEST = re.compile(r"`?(GET|POST|PUT|PATCH|DELETE)( to| إلى)? `?(https://|\{)[^`]+`|SQL \d+")
REQUEST_TOOLS = ("| Webhooks by Zapier |", "| HTTP Client |")


@cache
def sheets(crm: str, platform: str) -> dict[str, str]:
    values = {"path": "ipaas", "crm": crm, "platform": platform,
              "support_channels": ["whatsapp", "phone"], "support_agents": 12}
    answers, plan, _ = load_case("support-heavy", values)
    context = build_context(answers, plan, build_parts(answers, plan))
    env = Environment(loader=FileSystemLoader(str(TEMPLATES)),
                      extensions=["generator.jinja_ext.RabtExtension"])
    return {name: env.get_template(name).render(cookiecutter={"_rabt": context})
            for name in SHEETS}


def request_rows(text: str) -> list[str]:
    return [line for line in text.splitlines()
            if line.startswith("| ") and any(tool in line for tool in REQUEST_TOOLS)]


@pytest.mark.parametrize("platform", PLATFORMS)
@pytest.mark.parametrize("crm", CRMS)
def test_request_steps_name_url(crm: str, platform: str) -> None:
    for name, text in sheets(crm, platform).items():
        rows = request_rows(text)
        assert rows, name
        for row in rows:
            assert REQUEST.search(row), (name, row[:300])
        assert "lookup field `" not in text, name
        assert "حقل الربط `" not in text, name


@pytest.mark.parametrize("platform", PLATFORMS)
def test_zoho_order_contact_in_upsert_body(platform: str) -> None:
    for name, text in sheets("zoho", platform).items():
        english = not name.endswith(".ar.md")
        deal = next(row for row in request_rows(text) if "/crm/v8/Deals/upsert" in row)
        assert "`Contact_Name` = `{\"id\": \"…\"}`" in deal, name
        source = ("«Create or update the contact»" if english
                  else "«إنشاء جهة الاتصال أو تحديثها»")
        assert source in deal, name
        link_title = "Link the order to its contact" if english else "ربط الطلب بجهة الاتصال"
        assert link_title not in text, name


@pytest.mark.parametrize("platform", PLATFORMS)
def test_zoho_ticket_links_search_then_update(platform: str) -> None:
    text = sheets("zoho", platform)["zapier-build-sheet.md"]
    contact = next(row for row in request_rows(text) if "Link the ticket to its contact" in row)
    assert "`GET {api_domain}/crm/v8/Contacts/search?criteria=(Email:equals:<customer_email>)`" \
        in contact
    assert "`PUT {api_domain}/crm/v8/Cases/<record id>`" in contact
    assert '`{"data": [{"Related_To": {"id": "<found id>"}}]}`' in contact
    order = next(row for row in request_rows(text) if "Link the ticket to its order" in row)
    assert re.search(r"`GET \{api_domain\}/crm/v8/Deals/search\?criteria=\(\w+:equals:"
                     r"<order_id>\)`", order)
    assert '`{"data": [{"Deal_Name": {"id": "<found id>"}}]}`' in order


TATWEEL = "\u0640"


@pytest.mark.parametrize("crm", CRMS)
def test_arabic_docs_have_no_tatweel(tmp_path: Path, crm: str) -> None:
    values = {"path": "ipaas", "crm": crm, "support_channels": "whatsapp,phone",
              "support_agents": "12"}
    options = [item for key, value in values.items() for item in ("--set", f"{key}={value}")]
    result = CliRunner().invoke(main, ["new", "--no-input", "--preset", "support-heavy",
                                       "--output-dir", str(tmp_path), *options],
                                catch_exceptions=False)
    assert result.exit_code == 0, result.output
    documents = sorted(tmp_path.rglob("*.ar.md"))
    assert len(documents) >= 6
    for document in documents:
        text = document.read_text(encoding="utf-8")
        lines = [line for line in text.splitlines() if TATWEEL in line]
        assert lines == [], (document.relative_to(tmp_path), lines[:3])


def test_arabic_link_titles_read_naturally() -> None:
    text = sheets("zoho", "shopify")["zapier-build-sheet.ar.md"]
    assert "ربط تذكرة الدعم بجهة الاتصال" in text
    assert "ربط تذكرة الدعم بالطلب" in text


@pytest.mark.parametrize("platform", PLATFORMS)
def test_hubspot_ticket_link_searches_contact(platform: str) -> None:
    for name in ("zapier-build-sheet.md", "tray-build-sheet.md"):
        text = sheets("hubspot", platform)[name]
        row = next(row for row in request_rows(text) if "Link the ticket to its contact" in row)
        assert "`POST https://api.hubapi.com/crm/v3/objects/contacts/search`" in row, name
        assert '"propertyName": "email", "operator": "EQ", "value": "<customer_email>"' in row
        assert "/crm/v4/associations/tickets/contacts/batch/create" in row, name
    order_text = sheets("hubspot", platform)["zapier-build-sheet.md"]
    deal = next(row for row in request_rows(order_text) if "Link the order to its contact" in row)
    assert "/search" not in deal
