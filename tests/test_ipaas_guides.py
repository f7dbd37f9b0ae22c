"""iPaaS project guides: links to the n8n folder, one credential list, Make webhook steps."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from generator.arabic_counts import Case
from generator.cli import main
from generator.ipaas.flows import arabic_duration
from generator.ipaas.make_schedule import quiet_windows_text

CREDENTIAL_ROW = re.compile(r"^\| `([a-z0-9-]+)` \|", re.M)


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    output = tmp_path_factory.mktemp("guides")
    result = CliRunner().invoke(main, ["new", "--no-input", "--preset", "jeddah-fashion-zoho",
                                       "--output-dir", str(output)], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return next(path for path in output.iterdir() if path.is_dir())


def read(project: Path, relative: str) -> str:
    return (project / relative).read_text(encoding="utf-8")


@pytest.mark.parametrize(("readme", "link"), [
    ("README.md", "(workflows/n8n/README.md)"),
    ("README.ar.md", "(workflows/n8n/README.ar.md)"),
    ("workflows/README.md", "(n8n/README.md)"),
    ("workflows/README.ar.md", "(n8n/README.ar.md)"),
])
def test_readme_links_n8n_guide(project: Path, readme: str, link: str) -> None:
    assert link in read(project, readme)


@pytest.mark.parametrize("lang", ["", ".ar"])
def test_credentials_match_n8n_guide(project: Path, lang: str) -> None:
    listed = set(CREDENTIAL_ROW.findall(read(project, f"workflows/README{lang}.md")))
    n8n_listed = set(CREDENTIAL_ROW.findall(read(project, f"workflows/n8n/README{lang}.md")))
    credentials = {name for name in n8n_listed if name.startswith("jeddah-fashion-")}
    assert len(credentials) >= 5
    assert listed == credentials


@pytest.mark.parametrize("lang", ["", ".ar"])
def test_make_guide_headers_and_phone(project: Path, lang: str) -> None:
    text = read(project, f"workflows/README{lang}.md")
    assert "**Get request headers**" in text
    assert "| `phone_e164_sa` |" in text


def test_tray_sheet_concrete_steps(project: Path) -> None:
    text = read(project, "workflows/tray-build-sheet.md")
    assert "{'" not in text
    # Only a JSON body or a URL placeholder may start a code span with a brace.
    assert re.search(r"`\{(?!\"|api_domain\})", text) is None
    assert ("| Data Storage | Operation Get Value, scope Account. Key: `processed_events:` "
            "followed by `header X-Shopify-Event-Id` from the trigger.") in text
    assert "| Script | Input: the trigger body." in text
    assert "| HTTP Client | Operation by the method below" in text
    assert "Unconfirmed name: use the Delay operation that pauses the run for a set time." in text


def test_tray_sheet_arabic_steps(project: Path) -> None:
    text = read(project, "workflows/tray-build-sheet.ar.md")
    assert "{'" not in text
    assert "| Data Storage | العملية Get Value بالنطاق Account." in text
    assert "اسم غير مؤكد: استخدم من Delay العملية التي توقف التشغيل مدة محددة." in text


def test_zapier_sheet_marks_action_names(project: Path) -> None:
    text = read(project, "workflows/zapier-build-sheet.md")
    assert ("The name Get Value may differ in your Zapier account; pick the Storage by Zapier "
            "action or rule that reads the value stored under one key.") in text
    assert ("The name Custom Request may differ in your Zapier account; pick the Webhooks by "
            "Zapier action or rule that sends an HTTP request") in text
    arabic = read(project, "workflows/zapier-build-sheet.ar.md")
    assert "قد يختلف الاسم Get Value في حسابك على Zapier" in arabic


def order_section(text: str) -> str:
    start = text.index("(`order-sync`)")
    return text[start:text.index("(`", start + len("(`order-sync`)"))]


@pytest.mark.parametrize("lang", ["", ".ar"])
def test_zapier_zoho_one_sales_order(project: Path, lang: str) -> None:
    section = order_section(read(project, f"workflows/zapier-build-sheet{lang}.md"))
    assert "Sales_Orders/upsert" not in section
    assert section.count("`POST {api_domain}/crm/v8/Sales_Orders`") == 1
    assert section.count("`POST {api_domain}/crm/v8/Products/upsert`") == 1
    # The signature check after the trigger, then the two line-item steps.
    assert section.count("| Code by Zapier |") == 3
    assert "Product_Details" in section
    assert "Looping by Zapier" not in section
    assert "`zoho_sales_orders`" in section


def test_zapier_zoho_line_steps_in_order(project: Path) -> None:
    section = order_section(read(project, "workflows/zapier-build-sheet.md"))
    rows = [line for line in section.splitlines() if line.startswith("| ") and " | " in line]
    tools = [row.split(" | ")[2] for row in rows if "line items" in row or "line item," in row]
    assert tools == ["Storage by Zapier", "Paths by Zapier", "Code by Zapier",
                     "Webhooks by Zapier", "Code by Zapier", "Webhooks by Zapier",
                     "Storage by Zapier"]


def table_rows(section: str) -> list[list[str]]:
    return [line.split(" | ") for line in section.splitlines()
            if line.startswith("| ") and line[2:3].isdigit()]


@pytest.mark.parametrize("lang", ["", ".ar"])
def test_tray_zoho_one_sales_order(project: Path, lang: str) -> None:
    section = order_section(read(project, f"workflows/tray-build-sheet{lang}.md"))
    assert "Sales_Orders/upsert" not in section
    assert section.count("`{api_domain}/crm/v8/Sales_Orders`") == 1
    assert section.count("`{api_domain}/crm/v8/Products/upsert`") == 1
    assert "Product_Details" in section
    assert "`zoho_sales_orders:sales-order:`" in section
    assert "| Loop Collection |" not in section


def test_tray_zoho_line_steps_in_order(project: Path) -> None:
    section = order_section(read(project, "workflows/tray-build-sheet.md"))
    line_rows = [row for row in table_rows(section) if "line item" in row[1]]
    assert [row[2] for row in line_rows] == [
        "Data Storage", "Boolean Condition", "Script", "HTTP Client", "Script",
        "HTTP Client", "Data Storage"]
    for row in line_rows:
        assert "Unconfirmed name: use the " in row[3]
    # The checkout-token step after the line items still runs for an order that
    # already has its sales order.
    assert ('the steps from "Remember the order\'s checkout token for the abandoned-cart '
            'check" on after the condition') in line_rows[1][3]


def test_tray_contact_check_keeps_order_steps(project: Path) -> None:
    section = order_section(read(project, "workflows/tray-build-sheet.md"))
    row = next(row for row in table_rows(section) if "email or a phone" in row[1])
    assert row[2] == "Boolean Condition"
    assert ('the steps from "Map the order to the deal, with its stage" on after the '
            "condition") in row[3]
    assert "the false path ends the run" not in row[3]


def flow_section(text: str, key: str) -> str:
    start = text.index(f"(`{key}`)")
    end = text.find("\n## ", start)
    return text[start:end if end != -1 else len(text)]


def tools_of(section: str, title: str) -> list[str]:
    return [row[2] for row in table_rows(section) if row[1].endswith(title)]


def test_zapier_order_contact_check_uses_paths(project: Path) -> None:
    section = order_section(read(project, "workflows/zapier-build-sheet.md"))
    assert tools_of(section, "Continue only with an email or a phone") == ["Paths by Zapier"]
    assert ('Path B takes the Fallback rule: build in it only the rows from "Map the order '
            'to the deal, with its stage" on') in section


def test_zapier_gate_with_later_steps_uses_paths(project: Path) -> None:
    section = flow_section(read(project, "workflows/zapier-build-sheet.md"),
                           "abandoned-checkout")
    # Each gate first reads the contact's consent in the CRM. The email gate guards only
    # its send: the WhatsApp reminder must still run.
    assert tools_of(section, "Check email consent") == ["Webhooks by Zapier", "Paths by Zapier"]
    assert 'only the rows from "Wait for the next step" on' in section
    # Ending the Zap is right at the last gate and at the dedupe check.
    assert tools_of(section, "Check whatsapp consent") == ["Webhooks by Zapier",
                                                           "Filter by Zapier"]
    assert tools_of(section, "Skip an event already processed")[1] == "Filter by Zapier"


def test_zapier_gate_paths_arabic(project: Path) -> None:
    section = flow_section(read(project, "workflows/zapier-build-sheet.ar.md"),
                           "abandoned-checkout")
    assert "ابنِ فيه الصفوف ابتداءً من «الانتظار حتى الخطوة التالية» فقط" in section


def test_zapier_filter_names_its_rule(project: Path) -> None:
    section = order_section(read(project, "workflows/zapier-build-sheet.md"))
    dedupe = [row[3] for row in table_rows(section)
              if row[1] == "Skip an event already processed"]
    assert "The name Does not exist may differ" in dedupe[1]
    assert "The name Set Value may differ" in dedupe[2]


@pytest.mark.parametrize("sheet", ["zapier-build-sheet", "tray-build-sheet"])
def test_win_back_later_steps_read_code(project: Path, sheet: str) -> None:
    section = flow_section(read(project, f"workflows/{sheet}.md"), "win-back")
    rows = table_rows(section)
    whatsapp = [row[3] for row in rows if row[1].endswith("Send step 2 by whatsapp")]
    sms = [row[3] for row in rows if row[1].endswith("Send step 3 by sms")]
    for settings in (whatsapp[-1], sms[-1]):
        assert "put the contact's `Ecom_Discount_Code` from the search result" in settings
        assert "leave it out when `Ecom_Discount_Expires_At` has passed" in settings
    assert "`coupon_code`" in whatsapp[-1]


def test_win_back_code_arabic(project: Path) -> None:
    section = flow_section(read(project, "workflows/zapier-build-sheet.ar.md"), "win-back")
    assert "ضع قيمة `Ecom_Discount_Code` لجهة الاتصال من نتيجة البحث" in section


@pytest.mark.parametrize("sheet", ["zapier-build-sheet", "tray-build-sheet"])
def test_cart_code_created_before_gate(project: Path, sheet: str) -> None:
    section = flow_section(read(project, f"workflows/{sheet}.md"), "abandoned-checkout")
    titles = [row[1] for row in table_rows(section)]
    code = next(index for index, title in enumerate(titles)
                if title.endswith("Create the contact's single-use discount code"))
    gate = next(index for index, title in enumerate(titles)
                if title.endswith("Check email consent"))
    # A contact without email consent still gets the code for the WhatsApp reminder.
    assert code < gate
    reminder = [row[3] for row in table_rows(section)
                if row[1].endswith("Send step 2 by whatsapp")]
    assert "Put the code of the discount step above in" in reminder[-1]


def test_zapier_later_rows_inside_paths(project: Path) -> None:
    section = flow_section(read(project, "workflows/zapier-build-sheet.md"),
                           "abandoned-checkout")
    recheck = [row[3] for row in table_rows(section)
               if row[1].endswith("Look for an order with the checkout or cart token")
               and row[2] == "Paths by Zapier"]
    assert 'so build the rows from "Wait for the end of quiet hours" on at the end of each ' \
        "path that does not stop the flow" in recheck[-1]


def test_budget_notes_failures(project: Path) -> None:
    for name, text in (("docs/operations-budget.md", "assume that every CRM write succeeds"),
                       ("docs/operations-budget.ar.md", "أن كل كتابة في CRM تنجح")):
        assert text in " ".join(read(project, name).split())


@pytest.mark.parametrize(("lang", "windows"), [
    ("", "(22:00 to 09:00 every day, and 11:30 to 13:30 on Fridays, time zone Asia/Riyadh)"),
    (".ar", "من 22:00 إلى 09:00 كل يوم، ومن 11:30 إلى 13:30 يوم الجمعة، بالمنطقة الزمنية "
            "Asia/Riyadh"),
])
def test_make_guide_quiet_tokens(project: Path, lang: str, windows: str) -> None:
    text = " ".join(read(project, f"workflows/README{lang}.md").split())
    assert windows in text
    assert "`HHmm`" in text
    assert "`d`" in text
    assert '"Outside quiet hours"' in text


def test_quiet_windows_text_from_spec() -> None:
    quiet = {"timezone": "Asia/Riyadh", "windows": [
        {"name": "night", "days": ["sun", "mon", "tue", "wed", "thu", "fri", "sat"],
         "start": "23:00", "end": "08:00"},
        {"name": "weekend", "days": ["fri", "sat"], "start": "12:00", "end": "16:00"}]}
    text = quiet_windows_text(quiet)
    assert text.en == "23:00 to 08:00 every day, and 12:00 to 16:00 on Fridays and Saturdays"
    assert text.ar == "من 23:00 إلى 08:00 كل يوم، ومن 12:00 إلى 16:00 أيام الجمعة والسبت"


def test_tray_arabic_duration_genitive(project: Path) -> None:
    text = read(project, "workflows/tray-build-sheet.ar.md")
    # After مدة the length is genitive: ساعتين, never the nominative ساعتان.
    assert "التأخير مدة ساعتين (المسموح من 1 إلى 4)" in text
    assert "مدة ساعتان" not in text
    assert not re.search(r"مدة \d+ (hours|days)", text)


def test_zapier_arabic_duration_nominative(project: Path) -> None:
    text = read(project, "workflows/zapier-build-sheet.ar.md")
    assert "Delay For: ساعتان (المسموح من 1 إلى 4)" in text
    assert not re.search(r"Delay For: \d+ (hours|days)", text)


@pytest.mark.parametrize(("amount", "unit", "case", "expected"), [
    (2, "hours", "oblique", "ساعتين"),
    (2, "hours", "nominative", "ساعتان"),
    (1, "days", "oblique", "يوم واحد"),
    (7, "days", "oblique", "7 أيام"),
    (30, "minutes", "nominative", "30 دقيقة"),
])
def test_arabic_duration_cases(amount: int, unit: str, case: Case, expected: str) -> None:
    assert arabic_duration(amount, unit, case) == expected


@pytest.mark.parametrize("relative", [
    "workflows/README.md", "workflows/zapier-build-sheet.md", "workflows/tray-build-sheet.md"])
def test_consent_sync_direction_stated(project: Path, relative: str) -> None:
    text = read(project, relative)
    assert "listens for consent changes on both sides" not in text
    assert "No workflow reads changes made in the CRM" in text
    assert "must be recorded in the store the same day" in text


@pytest.mark.parametrize("relative", [
    "workflows/README.ar.md", "workflows/zapier-build-sheet.ar.md",
    "workflows/tray-build-sheet.ar.md"])
def test_consent_sync_direction_stated_arabic(project: Path, relative: str) -> None:
    text = read(project, relative)
    assert "من الطرفين" not in text
    assert "ولا يقرأ أي مسار التغييرات التي تتم في CRM" in text


@pytest.mark.parametrize(("lang", "statement", "row"), [
    ("", "**The Make scenarios do not check the store's signature.**",
     "| Store webhook signature | checked by the Shopify and WooCommerce trigger nodes"),
    (".ar", "**لا تتحقق سيناريوهات Make من توقيع المتجر.**",
     "| توقيع Webhook المتجر | تتحقق منه عقدتا التشغيل"),
])
def test_make_signature_gap_stated(project: Path, lang: str, statement: str, row: str) -> None:
    text = read(project, f"workflows/README{lang}.md")
    assert statement in text
    # The statement comes before the flow table, so a reader sees it first.
    assert text.index(statement) < text.index("\n## ")
    assert "n8n 2.8.4" in text[text.index(statement):text.index("\n## ")]
    assert row in text


@pytest.mark.parametrize(("lang", "statement"), [
    ("", "Each step falls due its offset after the end of the playbook's delay, counted from"
         " the trigger\nevent"),
    (".ar", "ويحين موعد كل خطوة بعد انتهاء مهلة الخطة بمقدار فارقها"),
])
def test_step_timing_anchor_stated(project: Path, lang: str, statement: str) -> None:
    assert statement in read(project, f"workflows/README{lang}.md")


# The sentence each HubSpot guide gives about event-sync's Enterprise requirement.
EVENT_TIER_NOTES = {
    "workflows/README.md": "which need a HubSpot\nEnterprise subscription",
    "workflows/README.ar.md": "وهي تتطلب اشتراك\nEnterprise في HubSpot",
    "workflows/n8n/README.md": "Activate `event-sync` only when the HubSpot account has an "
                               "Enterprise subscription",
    "workflows/n8n/README.ar.md": "لا تفعّل `event-sync` إلا إذا كان حساب HubSpot مشتركًا في "
                                  "Enterprise",
}


def test_event_sync_enterprise_note_hubspot_only(tmp_path: Path, project: Path) -> None:
    result = CliRunner().invoke(main, ["new", "--no-input", "--preset", "shopify-growth",
                                       "--output-dir", str(tmp_path)], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    hubspot = tmp_path / "shopify-growth"
    for relative, note in EVENT_TIER_NOTES.items():
        assert note in read(hubspot, relative), relative
        # Zoho records events in its own module on every edition, so its guides omit the note.
        assert "/events/v3/send" not in read(project, relative), relative
    assert "because `abandoned-checkout` writes them" in read(hubspot, "workflows/README.md")


def playbook_rows(text: str, label: str) -> dict[str, str]:
    """Return the ``label`` row of each playbook section, keyed by the section heading."""
    rows = {}
    for section in text.split("\n## ")[1:]:
        heading = section.splitlines()[0]
        found = re.search(rf"^\| {label} \| (.+) \|$", section, re.M)
        if found:
            rows[heading] = found.group(1)
    return rows


def test_playbooks_name_their_runner(project: Path) -> None:
    rows = playbook_rows(read(project, "docs/playbooks.md"), "Runs in")
    assert rows["Abandoned cart recovery"].startswith("the workflow `abandoned-checkout`")
    assert rows["Post-purchase series"].startswith("the workflow `post-purchase`")
    assert rows["Win-back"].startswith("the workflow `win-back`")
    # No workflow runs these three, so the guide says what to build in Zoho CRM.
    for name in ("VIP care", "Loyalty points", "Smart segmentation"):
        assert rows[name].startswith("no workflow of this project: ")
    assert "a custom view of VIP contacts by `Ecom_LTV_SAR`" in rows["VIP care"]
    assert "loyalty app" in rows["Loyalty points"]
    assert "Zoho CRM custom views on `Mailing_City`" in rows["Smart segmentation"]


def test_playbooks_name_their_runner_arabic(project: Path) -> None:
    rows = playbook_rows(read(project, "docs/playbooks.ar.md"), "تعمل في")
    assert len(rows) == 6
    assert sum(row.startswith("مسار العمل `") for row in rows.values()) == 3
    assert sum(row.startswith("لا يشغّلها أي مسار عمل في هذا المشروع: ")
               for row in rows.values()) == 3
    assert "<div dir=\"rtl\">\n\n# " in read(project, "docs/playbooks.ar.md")
