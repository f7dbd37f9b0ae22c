"""Every request step of the Zapier and Tray build sheets names its method and URL.

The sheets are rendered from the templates alone (no whole project), for each CRM and
store platform with the support module on, so the ticket links are covered too.
"""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path

import pytest
from jinja2 import Environment, FileSystemLoader

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
