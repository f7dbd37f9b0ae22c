"""The connector path's guides, rendered for every connector preset and platform/CRM pair."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.arabic_text import english_runs
from tests.crm_support import make_project

MARKER = re.compile(r"(?<!\\)\{[{%#]")
# Case name: (--set values on top of the preset, texts the English setup guide must contain)
CASES = {
    "riyadh-perfume-hubspot": ((), ["HubSpot's Shopify app", "data sync", "**Orders**",
                                    "**Carts**", "legacy", "HUBSPOT_ACCESS_TOKEN"]),
    "woo-startup": ((), ["links WooCommerce to Zoho CRM", "zoho.sa", "Daily contact sync",
                         "python sync/contact_sync.py", "duplicate_check_fields",
                         "ZOHO_REFRESH_TOKEN"]),
    "support-heavy": ((), ["Zoho CRM's Shopify extension", "read_all_orders",
                           "Shopify_Order_ID"]),
    "woo-hubspot": (("crm=hubspot",), ["links WooCommerce to HubSpot", "abandoned-cart capture",
                                       "HUBSPOT_ACCESS_TOKEN", "ecom_phone_e164",
                                       "contact-sync.yml"]),
}
PRESETS = {"woo-hubspot": "woo-startup"}


@pytest.fixture(scope="module", params=sorted(CASES))
def rendered(request: pytest.FixtureRequest,
             tmp_path_factory: pytest.TempPathFactory) -> tuple[str, Path]:
    name = request.param
    answers, _ = CASES[name]
    project = make_project(PRESETS.get(name, name), tmp_path_factory.mktemp(name), *answers)
    return name, project


def test_docs_exist(rendered: tuple[str, Path]) -> None:
    _, project = rendered
    for name in ("connector-setup", "crm-workflows"):
        assert (project / f"docs/{name}.md").is_file()
        assert (project / f"docs/{name}.ar.md").is_file()


def test_docs_have_no_markers(rendered: tuple[str, Path]) -> None:
    _, project = rendered
    paths = [*sorted((project / "docs").glob("*.md")), project / "README.md",
             project / "README.ar.md"]
    for path in paths:
        text = path.read_text("utf-8")
        assert not MARKER.search(text), path.name
        assert "Undefined" not in text, path.name


def test_setup_names_connector(rendered: tuple[str, Path]) -> None:
    name, project = rendered
    text = (project / "docs/connector-setup.md").read_text("utf-8")
    for words in CASES[name][1]:
        assert words in text, words


def test_setup_has_every_section(rendered: tuple[str, Path]) -> None:
    _, project = rendered
    text = (project / "docs/connector-setup.md").read_text("utf-8")
    headings = re.findall(r"^## (\d)\.", text, flags=re.MULTILINE)
    assert headings == ["1", "2", "3", "4", "5", "6", "7"]
    arabic = (project / "docs/connector-setup.ar.md").read_text("utf-8")
    assert re.findall(r"^## (\d)\.", arabic, flags=re.MULTILINE) == headings
    assert arabic.startswith('<div dir="rtl">')


def test_field_map_lists_rollups(rendered: tuple[str, Path]) -> None:
    _, project = rendered
    mapping = yaml.safe_load((project / "integration/mapping.yaml").read_text("utf-8"))
    text = (project / "docs/connector-setup.md").read_text("utf-8")
    arabic = (project / "docs/connector-setup.ar.md").read_text("utf-8")
    for rollup in mapping["entities"]["contact"]["rollups"]:
        kind, ar_kind = FIELD_KINDS.get(rollup["name"], ("roll-up", "حقل تجميعي"))
        assert f"| {kind} `{rollup['name']}` | `{rollup['target']}` |" in text
        assert f"| {ar_kind} `{rollup['name']}` | `{rollup['target']}` |" in arabic
    # Fields set by workflows or from checkout and consent events add up no orders.
    for name in ("playbook_step", "discount_code", "lifecycle_stage", "last_checkout_at"):
        assert f"| roll-up `{name}` |" not in text, name
        assert f"| حقل تجميعي `{name}` |" not in arabic, name


# Contact fields in the field map that are not roll-ups (English, Arabic label).
FIELD_KINDS = {"last_checkout_at": ("checkout", "حقل عملية الدفع"),
               "last_cart_value_sar": ("checkout", "حقل عملية الدفع"),
               "last_cart_url": ("checkout", "حقل عملية الدفع"),
               "marketing_opt_in_at": ("consent", "حقل الموافقة"),
               "lifecycle_stage": ("lifecycle", "حقل دورة الحياة"),
               "playbook_step": ("playbook", "حقل خطة التشغيل"),
               "discount_code": ("playbook", "حقل خطة التشغيل"),
               "discount_expires_at": ("playbook", "حقل خطة التشغيل")}


def test_workflows_cover_playbooks(rendered: tuple[str, Path]) -> None:
    _, project = rendered
    playbooks = yaml.safe_load((project / "integration/playbooks.yaml").read_text("utf-8"))
    english = (project / "docs/crm-workflows.md").read_text("utf-8")
    arabic = (project / "docs/crm-workflows.ar.md").read_text("utf-8")
    for playbook in playbooks["playbooks"]:
        if playbook["enabled"]:
            assert playbook["name"]["en"] in english
            assert playbook["name"]["ar"] in arabic


def test_workflows_cover_lifecycle(rendered: tuple[str, Path]) -> None:
    _, project = rendered
    lifecycle = yaml.safe_load((project / "integration/lifecycle.yaml").read_text("utf-8"))
    english = (project / "docs/crm-workflows.md").read_text("utf-8")
    for stage in lifecycle["stages"]:
        assert f"### {stage['order']}. {stage['label']['en']}" in english
        assert f"`{stage['crm_value']}`" in english


def test_workflows_name_consent_check(rendered: tuple[str, Path]) -> None:
    _, project = rendered
    english = (project / "docs/crm-workflows.md").read_text("utf-8")
    assert "), and continue only when it is granted" in english
    assert "Exit:" in english


CONSENT_BRANCH = re.compile(r"branch on (\w+) consent \(([^)]*)\)")
CONSENT_BRANCH_AR = re.compile(r"تفرّع حسب موافقة ([^(]+) \(([^)]*)\)")


def test_consent_branches_name_field(rendered: tuple[str, Path]) -> None:
    _, project = rendered
    consent = yaml.safe_load((project / "integration/consent.yaml").read_text("utf-8"))
    hubspot = consent["crm"] == "hubspot"
    fields = {channel["channel"]: channel["target"]["fields"][0]
              for channel in consent["channels"]}
    english, arabic = _docs(project, "crm-workflows")
    plain = english.replace("\n   ", " ")
    branches = CONSENT_BRANCH.findall(plain)
    assert branches
    assert len(branches) == len(re.findall(r"branch on \w+ consent", plain))
    for label, check in branches:
        channel = {"Email": "email", "SMS": "sms", "WhatsApp": "whatsapp"}[label]
        if hubspot:
            assert check == (f"the contact's status in the {label} marketing subscription type"
                             " is Subscribed")
        elif channel == "email":
            assert check == f"`{fields['email']}` is not checked and `Email` is not empty"
        else:
            assert check.startswith(f"`{fields[channel]}` is checked")
    arabic_branches = CONSENT_BRANCH_AR.findall(arabic.replace("\n   ", " "))
    assert len(arabic_branches) == len(branches)
    for _, check in arabic_branches:
        assert ("Subscribed" in check) if hubspot else ("`Email_Opt_Out`" in check
                                                        or "_Opt_In`" in check)


def test_zoho_opt_in_fields_have_filler(rendered: tuple[str, Path]) -> None:
    _, project = rendered
    consent = yaml.safe_load((project / "integration/consent.yaml").read_text("utf-8"))
    english, arabic = _docs(project, "connector-setup")
    opt_ins = [channel["target"]["fields"][0] for channel in consent["channels"]
               if channel["channel"] in consent["managed_channels"]
               and channel["target"]["fields"][0].endswith("_Opt_In")]
    if consent["crm"] != "zoho" or not opt_ins:
        assert "### SMS and WhatsApp consent in Zoho CRM" not in english
        return
    section = english.split("### SMS and WhatsApp consent in Zoho CRM")[1].split("\n## ")[0]
    ar_section = arabic.split("### موافقة الرسائل النصية وواتساب في Zoho CRM")[1].split("\n## ")[0]
    for field in opt_ins:
        assert f"`{field}`" in section
        assert f"`{field}`" in ar_section
    synced = "The daily contact sync sets the checkboxes" in section
    for number in ("1.", "2.", "3.") if synced else ("1.", "2.", "3.", "4."):
        assert f"\n{number} " in section
        assert f"\n{number} " in ar_section
    assert "Import" in section


def test_woo_consent_meta_key_documented(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from generator.cli import main

    result = CliRunner().invoke(main, [
        "new", "--no-input", "--output-dir", str(tmp_path), "--preset", "woo-startup",
        "--set", "consent_channels=email,sms,whatsapp", "--set", "project_slug=woo-opt-in"],
        catch_exceptions=False)
    assert result.exit_code == 0, result.output
    english, arabic = _docs(tmp_path / "woo-opt-in", "connector-setup")
    section = english.split("### SMS and WhatsApp consent in Zoho CRM")[1].split("\n### ")[0]
    ar_section = arabic.split("### موافقة الرسائل النصية وواتساب في Zoho CRM")[1].split("\n### ")[0]
    flat = " ".join(section.split())
    assert "saves the answer as **order** meta, not customer meta" in flat
    assert "the key `_rabt_sms_opt_in` for SMS" in flat
    assert "the key `_rabt_whatsapp_opt_in` for WhatsApp" in flat
    assert "a checkout field plugin" in flat
    assert "The daily contact sync sets the checkboxes from that meta" in flat
    assert "It never infers consent" in flat
    assert "\n4. " not in section
    assert "على **الطلب** لا على العميل" in ar_section
    assert "`_rabt_sms_opt_in`" in ar_section
    assert "ولا تستنتج المزامنة الموافقة أبدًا" in " ".join(ar_section.split())
    assert "the daily contact sync, from the consent meta" in english
    step_3 = " ".join(english.split("\n3. reads every paid order")[1].split("\n4. ")[0].split())
    assert ("and sets the consent checkboxes `Ecom_SMS_Opt_In` for SMS and `Ecom_WhatsApp_Opt_In` "
            "for WhatsApp from the consent meta of the same orders") in step_3
    ar_step_3 = " ".join(arabic.split("\n3. يقرأ كل الطلبات")[1].split("\n4. ")[0].split())
    assert ("ويضبط من البيانات الوصفية (meta) لهذه الطلبات خانتَي الموافقة `Ecom_SMS_Opt_In` "
            "للرسائل النصية و`Ecom_WhatsApp_Opt_In` لواتساب") in ar_step_3
    readme = " ".join((tmp_path / "woo-opt-in/README.md").read_text("utf-8").split())
    assert ("into the CRM, and sets the consent checkboxes `Ecom_SMS_Opt_In` for SMS and "
            "`Ecom_WhatsApp_Opt_In` for WhatsApp from the consent meta of their paid orders; "
            "see \"Daily contact sync\"") in readme
    ar_readme = " ".join((tmp_path / "woo-opt-in/README.ar.md").read_text("utf-8").split())
    assert ("إلى نظام CRM، وتضبط خانتَي الموافقة `Ecom_SMS_Opt_In` للرسائل النصية "
            "و`Ecom_WhatsApp_Opt_In` لواتساب من البيانات الوصفية (meta) لطلباتهم المدفوعة، "
            "وتفصيلها") in ar_readme


def test_sync_names_one_consent_box(tmp_path: Path) -> None:
    project = make_project("woo-startup", tmp_path, "consent_channels=email,whatsapp")
    readme = " ".join((project / "README.md").read_text("utf-8").split())
    assert "and sets the consent checkbox `Ecom_WhatsApp_Opt_In` for WhatsApp from" in readme
    assert "Ecom_SMS_Opt_In" not in readme
    ar_readme = " ".join((project / "README.ar.md").read_text("utf-8").split())
    assert "وتضبط خانة الموافقة `Ecom_WhatsApp_Opt_In` لواتساب من" in ar_readme


def test_sync_without_boxes_names_none(rendered: tuple[str, Path]) -> None:
    name, project = rendered
    if name not in ("woo-startup", "woo-hubspot"):
        pytest.skip("WooCommerce projects with the daily sync only")
    english, arabic = _docs(project, "connector-setup")
    readme = (project / "README.md").read_text("utf-8")
    assert "daily contact sync (`python sync/contact_sync.py`)" in readme
    assert "consent checkbox" not in readme
    assert "from the consent meta of\n   the same orders" not in english
    assert "خانة الموافقة" not in (project / "README.ar.md").read_text("utf-8")
    assert "لهذه الطلبات خان" not in " ".join(arabic.split())


def test_readme_lists_crm_commands(rendered: tuple[str, Path]) -> None:
    _, project = rendered
    readme = (project / "README.md").read_text("utf-8")
    assert "rabt crm plan ." in readme
    assert "docs/crm-workflows.md" in readme
    assert "docs/crm-workflows.ar.md" in (project / "README.ar.md").read_text("utf-8")


def test_docs_never_print_none(rendered: tuple[str, Path]) -> None:
    _, project = rendered
    for path in sorted((project / "docs").glob("connector-setup*.md")):
        text = path.read_text(encoding="utf-8")
        assert not re.search(r"\bNone\b", text), path.name


def test_status_map_names_state_file(rendered: tuple[str, Path]) -> None:
    name, project = rendered
    text = (project / "docs/connector-setup.md").read_text(encoding="utf-8")
    if name == "riyadh-perfume-hubspot":
        assert "set by `rabt crm apply` (see `.rabt/crm-state.json`)" in text
        assert "so this status\nmap does not apply to the connector" in text


def test_rollups_name_their_source(rendered: tuple[str, Path]) -> None:
    _, project = rendered
    text = (project / "docs/connector-setup.md").read_text("utf-8")
    assert "### 4.1 How the roll-ups are filled on this path" in text
    rows = [line for line in text.splitlines() if line.startswith("| roll-up ")]
    assert rows
    for row in rows:
        filled_by = row.rsplit("|", 2)[1].strip()
        assert filled_by.startswith(("a calculation property", "nothing", "not used",
                                     "the lifecycle workflows", "the daily contact sync")), row
    assert "filled by the integration" not in (project / "docs/crm-workflows.md").read_text("utf-8")


def test_field_map_custom_fields(rendered: tuple[str, Path]) -> None:
    name, project = rendered
    text = (project / "docs/connector-setup.md").read_text("utf-8")
    assert "Duplicate rule" not in text
    assert "connector, when its map offers the field" not in text
    for line in text.splitlines():
        if line.startswith("| contact ") and "custom, created by `rabt crm apply`" in line:
            filled_by = line.rsplit("|", 2)[1].strip()
            assert filled_by.startswith(("nothing", "the daily contact sync")), line
            assert "and the connector" not in filled_by, line
    if name == "riyadh-perfume-hubspot":
        assert "| **Conflict resolution**" in text
        assert "**Always use Shopify**" in text


def test_woo_guides_no_60_days(rendered: tuple[str, Path]) -> None:
    name, project = rendered
    if not name.startswith("woo"):
        return
    for path in ("docs/connector-setup.md", "docs/connector-setup.ar.md"):
        text = (project / path).read_text("utf-8")
        assert "60" not in re.sub(r"\d{3,}", "", text), path


def test_support_guide_lists_cases(rendered: tuple[str, Path]) -> None:
    name, project = rendered
    if name != "support-heavy":
        return
    text = (project / "docs/connector-setup.md").read_text("utf-8")
    assert "### 4.2 Support: Cases, SLA targets and events" in text
    assert "| ticket `first_reply_at` | `Ecom_First_Reply_At` |" in text
    assert "| WhatsApp | 15 minutes | 24 hours |" in text
    assert "`Ecom_Events`" in text
    arabic = (project / "docs/connector-setup.ar.md").read_text("utf-8")
    assert "### 4.2 الدعم: الحالات (Cases)" in arabic
    assert "| واتساب | 15 دقيقة | 24 ساعة |" in arabic


def test_arabic_guides_crm_names(rendered: tuple[str, Path]) -> None:
    _, project = rendered
    mapping = yaml.safe_load((project / "integration/mapping.yaml").read_text("utf-8"))
    pipeline = mapping["order_stages"]["pipeline"]["name"]
    arabic = "".join((project / f"docs/{name}.ar.md").read_text("utf-8")
                     for name in ("connector-setup", "crm-workflows"))
    assert f"*{pipeline['en']}*" in arabic
    assert f"*{pipeline['ar']}*" not in arabic
    for wrong in ("توقف التطبيق", "غير مؤكَّد", "القيمة الدائمة", "نقطة نهاية"):
        assert wrong not in arabic, wrong
    assert "مسار المبيعات (Pipeline)" in arabic


def test_setup_lists_crm_variables(rendered: tuple[str, Path]) -> None:
    _, project = rendered
    source = (Path(__file__).parents[1] / "generator/crm/settings.py").read_text("utf-8")
    names = set(re.findall(r'"((?:HUBSPOT|ZOHO)_[A-Z0-9_]+)"', source))
    assert "ZOHO_ACCOUNTS_URL" in names
    crm = yaml.safe_load((project / "crm/desired-state.yaml").read_text("utf-8"))["crm"]
    for path in ("docs/connector-setup.md", "docs/connector-setup.ar.md"):
        text = (project / path).read_text("utf-8")
        for name in names:
            if name.startswith(crm.upper()):
                assert f"`{name}`" in text, (path, name)


ORDER_ROLLUPS = ("orders_count", "ltv_sar", "first_order_at", "last_order_at")


def test_order_rollups_source_per_path(rendered: tuple[str, Path]) -> None:
    name, project = rendered
    text = (project / "docs/connector-setup.md").read_text("utf-8")
    arabic = (project / "docs/connector-setup.ar.md").read_text("utf-8")
    rows = {line.split("`")[1]: line.rsplit("|", 2)[1].strip()
            for line in text.splitlines() if line.startswith("| roll-up ")}
    arabic_rows = {line.split("`")[1]: line.rsplit("|", 2)[1].strip()
                   for line in arabic.splitlines() if line.startswith("| حقل تجميعي ")}
    synced = name.startswith("woo")
    for rollup in ORDER_ROLLUPS:
        assert rows[rollup].startswith("the daily contact sync") == synced, rollup
        assert arabic_rows[rollup].startswith("مزامنة جهات الاتصال اليومية") == synced, rollup
    assert "not the roll-ups" not in text
    assert "دون الحقول التجميعية" not in arabic
    if synced:
        assert "reads all orders with status `processing` or `completed`" in text
        assert "جميع الطلبات التي حالتها\n  `processing` أو `completed`" in arabic
        assert "Calculation** (**Settings" not in text
        assert "Rollup Summary**, *path" not in text
    elif name == "riyadh-perfume-hubspot":
        assert "field type **Calculation**" in text
        assert "daily contact sync" not in text
    else:
        assert "**rollup summary** field type" in text


def test_workflows_name_rollup_source(rendered: tuple[str, Path]) -> None:
    name, project = rendered
    text = (project / "docs/crm-workflows.md").read_text("utf-8")
    arabic = (project / "docs/crm-workflows.ar.md").read_text("utf-8")
    if name.startswith("woo"):
        assert "the daily\ncontact sync fills the order roll-ups" in text
        assert "تملأ مزامنة جهات الاتصال اليومية حقول الطلبات التجميعية" in arabic
        assert "choose the rollup summary fields" not in text
        assert "فاختر في Zoho حقول Rollup Summary" not in arabic
    elif name == "support-heavy":
        assert "choose the rollup summary fields" in text


@pytest.mark.parametrize("command", [["crm"], ["crm", "plan"], ["crm", "apply"]])
def test_crm_help_lists_env_variables(command: list[str]) -> None:
    from click.testing import CliRunner

    from generator.cli import main
    from generator.crm import settings

    source = Path(settings.__file__).read_text("utf-8")
    read = set(re.findall(r'"((?:HUBSPOT|ZOHO)_[A-Z0-9_]+)"', source))
    assert {"HUBSPOT_ACCESS_TOKEN", "HUBSPOT_RATE_LIMIT_PER_10S", "HUBSPOT_BASE_URL",
            "ZOHO_CLIENT_ID", "ZOHO_CLIENT_SECRET", "ZOHO_REFRESH_TOKEN", "ZOHO_DC",
            "ZOHO_ACCOUNTS_URL"} <= read
    result = CliRunner().invoke(main, [*command, "--help"])
    assert result.exit_code == 0, result.output
    listed = set(re.findall(r"^ {4}((?:HUBSPOT|ZOHO)_[A-Z0-9_]+) ", result.output, re.MULTILINE))
    assert listed == read
    assert "number from 2 to 250 (default 100," in result.output
    assert "(default https://api.hubapi.com)" in result.output
    assert "com, eu, in, com.au, jp, com.cn, ca, sa, uk" in result.output


def test_arabic_spec_says_lifetime_value(rendered: tuple[str, Path]) -> None:
    _, project = rendered
    files = [*sorted((project / "integration").glob("*.yaml")), project / "crm/desired-state.yaml"]
    for path in files:
        assert "دائمة" not in path.read_text("utf-8"), path.name
    segments = yaml.safe_load((project / "integration/segments.yaml").read_text("utf-8"))
    vip = next(item for item in segments["segments"] if item["key"] == "vip")
    assert vip["rule"]["entry"]["ar"].startswith("تبلغ قيمة العميل مدى الحياة (")
    source = Path(__file__).parents[1] / "generator/data/spec"
    for path in sorted(source.glob("*.yaml")):
        assert "دائمة" not in path.read_text("utf-8"), path.name


def test_quiet_hours_show_labels(rendered: tuple[str, Path]) -> None:
    _, project = rendered
    playbooks = yaml.safe_load((project / "integration/playbooks.yaml").read_text("utf-8"))
    text = (project / "docs/crm-workflows.md").read_text("utf-8")
    arabic = (project / "docs/crm-workflows.ar.md").read_text("utf-8")
    for window in playbooks["quiet_hours"]["windows"]:
        name, start = window["name"], window["start"]
        assert f"{name} {start}" not in text, name
        assert f"{name} \u200e{start}" not in arabic, name
        if "_" in name:
            assert name not in text + arabic, name
    dash = "\u2013"  # the en dash between a window's start and end
    assert (f"Windows: Night, every day, 22:00{dash}09:00; Friday prayer, Friday, "
            f"11:30{dash}13:30.") in text
    assert (f"الفترات: الليل، كل يوم، \u200e22:00{dash}09:00\u200f؛ "
            "صلاة الجمعة، يوم الجمعة،") in arabic


def test_status_table_sits_in_section_4(rendered: tuple[str, Path]) -> None:
    _, project = rendered
    for suffix, first_match in (("", "the first row whose conditions all hold sets the stage"),
                                (".ar", "يحدّد المرحلةَ أولُ صف تتحقق شروطه كلها")):
        text = (project / f"docs/connector-setup{suffix}.md").read_text("utf-8")
        table = text.index("|---|---|---|\n| checkout `abandoned`")
        assert text.index("## 4.") < table < text.index("### 4.1")
        assert text.index(first_match) < table


def test_shopify_status_rows_join_conditions(rendered: tuple[str, Path]) -> None:
    name, project = rendered
    if name not in ("riyadh-perfume-hubspot", "support-heavy"):
        pytest.skip("Shopify projects only")
    text = (project / "docs/connector-setup.md").read_text("utf-8")
    assert ("| financial_status `pending`, `authorized` and fulfillment_status `restocked` "
            "| Cancelled |") in text


def test_hubspot_scopes_are_named(rendered: tuple[str, Path]) -> None:
    _, project = rendered
    text = (project / "docs/connector-setup.md").read_text("utf-8")
    arabic = (project / "docs/connector-setup.ar.md").read_text("utf-8")
    if "HUBSPOT_ACCESS_TOKEN" not in text or "ZOHO_REFRESH_TOKEN" in text:
        assert "`ZohoCRM.settings.ALL` and `ZohoCRM.org.READ`" in text
        assert "`ZohoCRM.settings.ALL` و`ZohoCRM.org.READ`" in arabic
        return
    for scope in ("crm.schemas.contacts.write", "crm.schemas.deals.write", "crm.lists.write"):
        assert f"`{scope}`" in text
        assert f"`{scope}`" in arabic
    assert "read and write\n  access to the CRM schemas" not in text


def test_no_event_setup_steps(rendered: tuple[str, Path]) -> None:
    _, project = rendered
    text = (project / "docs/connector-setup.md").read_text("utf-8")
    assert "create the module by hand" not in text
    assert "lists the event definitions as manual steps" not in text
    workflows = (project / "docs/crm-workflows.md").read_text("utf-8")
    assert "snippet's checkout_started" not in workflows


def test_new_subscribers_substitute(rendered: tuple[str, Path]) -> None:
    _, project = rendered
    text = (project / "docs/connector-setup.md").read_text("utf-8")
    assert "| segments (VIP, recent buyers, dormant) |" in text
    assert "| the \"New subscribers\" segment | not as the spec defines it" in text
    assert "On this path nothing fills the marketing opt-in time" in (
        project / "docs/kpis.md").read_text("utf-8")


def test_kpis_name_connector_sources(rendered: tuple[str, Path]) -> None:
    name, project = rendered
    text = (project / "docs/kpis.md").read_text("utf-8")
    arabic = (project / "docs/kpis.ar.md").read_text("utf-8")
    notes = re.findall(r"^- \*\*On this path:\*\* (.+)$", text, flags=re.MULTILINE)
    assert len(notes) == 4
    assert len(re.findall(r"^- \*\*في هذا المسار:\*\* ", arabic, flags=re.MULTILINE)) == 4
    assert any("`first_source` stays empty on this path" in note for note in notes)
    if "HUBSPOT_ACCESS_TOKEN" in (project / "docs/connector-setup.md").read_text("utf-8"):
        assert any("*Original source* (`hs_analytics_source`)" in note for note in notes)
    if name == "riyadh-perfume-hubspot":
        assert any("on Free and Starter they stay empty" in note for note in notes)
    if name.startswith("woo"):
        assert any("The daily contact sync (`sync/contact_sync.py`) fills `ltv_sar`" in note
                   for note in notes)


def test_zoho_sync_workflows_documented(rendered: tuple[str, Path]) -> None:
    name, project = rendered
    if name != "woo-startup":
        pytest.skip("the Zoho daily sync only")
    text = (project / "docs/connector-setup.md").read_text("utf-8")
    assert '`"trigger": ["workflow"]`' in text
    assert "`--workflows on` or `--workflows off`" in text
    assert "workflows off)" not in text
    assert "at least daily |" not in text
    arabic = (project / "docs/connector-setup.ar.md").read_text("utf-8")
    assert "**ما تفترضه المواصفات.** تُسجَّل الطلبات **صفقاتٍ**" in arabic


def test_consent_row_names_crm_fields(rendered: tuple[str, Path]) -> None:
    _, project = rendered
    english = (project / "docs/connector-setup.md").read_text("utf-8")
    arabic = (project / "docs/connector-setup.ar.md").read_text("utf-8")
    row = next(line for line in english.splitlines() if line.startswith("| consent per channel"))
    assert "the consent fields on the contact" in row
    assert "stay empty on this path" in row
    assert "the consent fields `rabt crm apply .` creates" not in english
    ar_row = next(line for line in arabic.splitlines() if line.startswith("| الموافقة لكل قناة"))
    assert "حقول الموافقة في جهة الاتصال" in ar_row
    assert "فتبقى فارغة في هذا المسار" in ar_row


def test_playbook_codes_are_shared(rendered: tuple[str, Path]) -> None:
    _, project = rendered
    english = (project / "docs/crm-workflows.md").read_text("utf-8")
    arabic = (project / "docs/crm-workflows.ar.md").read_text("utf-8")
    assert "the contact's single-use discount code" not in english
    assert "Each contact gets its own code" not in english
    assert "On this path nothing creates a code per contact" in english
    assert "the playbook's shared code, one use per customer" in english
    assert "رمز الخصم الخاص بجهة الاتصال" not in arabic
    assert "لا يُنشئ شيء في هذا المسار رمزًا خاصًا بكل جهة اتصال" in arabic
    store = "WooCommerce under **Marketing \u203a Coupons**" if "woo" in project.name else \
        "Shopify's admin under\n  **Discounts**"
    assert store in english


def test_win_back_sends_at_trigger(rendered: tuple[str, Path]) -> None:
    _, project = rendered
    english = (project / "docs/crm-workflows.md").read_text("utf-8")
    arabic = (project / "docs/crm-workflows.ar.md").read_text("utf-8")
    section = english.split("Win-back\n", 1)[1].split("\n### ", 1)[0]
    assert ("2. **Trigger:** the latest paid order is 45 days old and no newer order exists "
            "(the spec allows 45 to 60 days).") in section
    assert "3. **First delay:** none. The trigger already counts the 45 days" in section
    assert "First delay:** 45" not in section
    ar_section = arabic.split("استعادة العملاء\n", 1)[1].split("\n### ", 1)[0]
    assert "**المُشغِّل:** مضى 45 يومًا على أحدث طلب مدفوع" in ar_section
    assert "**المهلة الأولى:** لا مهلة" in ar_section


def test_readme_names_daily_sync(rendered: tuple[str, Path]) -> None:
    _, project = rendered
    english = (project / "README.md").read_text("utf-8")
    arabic = (project / "README.ar.md").read_text("utf-8")
    if (project / ".github/workflows/contact-sync.yml").is_file():
        assert "- `sync/`: the daily contact sync" in english
        assert "- `.github/workflows/contact-sync.yml`: runs that sync every day" in english
        assert "one daily job must be scheduled" in english
        assert "There is no service to run here" not in english
        assert "- `.github/workflows/contact-sync.yml`: يشغّل هذه المزامنة" in arabic
        assert "يجب جدولة مهمة يومية واحدة" in arabic
    else:
        assert "There is no service to run here" in english
        assert "contact-sync.yml" not in english


def test_vip_exit_explained(rendered: tuple[str, Path]) -> None:
    _, project = rendered
    english = (project / "docs/connector-setup.md").read_text("utf-8")
    arabic = (project / "docs/connector-setup.ar.md").read_text("utf-8")
    segments = yaml.safe_load((project / "integration/segments.yaml").read_text("utf-8"))
    vip = segments["vip_threshold"]
    entry, leave = f"{vip['threshold_sar']:,}", f"{vip['exit_threshold_sar']:,}"
    assert entry != leave
    row = next(line for line in english.splitlines() if line.startswith("| segments (VIP"))
    assert f"leaves it as soon as the value falls below {entry} SAR" in row
    assert f"not at the spec's exit bar of {leave} SAR" in row
    ar_row = next(line for line in arabic.splitlines() if line.startswith("| الشرائح"))
    assert f"وهو {leave} ريال" in ar_row


def test_arabic_delays_use_counted_nouns(rendered: tuple[str, Path]) -> None:
    _, project = rendered
    text = (project / "docs/crm-workflows.ar.md").read_text("utf-8")
    # A number from 3 to 10 takes the plural (7 أيام), and zero reads as "no delay".
    assert re.search(r"\b([3-9]|10) (يوم|ساعة)\b", text) is None
    assert re.search(r"\b0 (يوم|ساعة)", text) is None
    # After a preposition the dual is genitive: بعد يومين, never بعد يومان.
    assert NOMINATIVE_DUAL_AFTER_PREPOSITION.search(text) is None
    english = (project / "docs/crm-workflows.md").read_text("utf-8")
    if ", 2 days after the previous step" in english:
        assert "بعد يومين من الخطوة السابقة" in text
    assert "بمدة من 1 إلى 4 ساعات" in text


NOMINATIVE_DUAL_AFTER_PREPOSITION = re.compile(
    r"(?<![\u0600-\u06ff])(?:بعد|قبل|من|إلى|خلال|في|منذ|على|لمدة) (?:يومان|ساعتان|دقيقتان|شهران)")


def test_preposition_check_catches_nominative() -> None:
    assert NOMINATIVE_DUAL_AFTER_PREPOSITION.search("بعد يومان من الخطوة السابقة")
    assert NOMINATIVE_DUAL_AFTER_PREPOSITION.search("بعد يومين من الخطوة") is None
    assert NOMINATIVE_DUAL_AFTER_PREPOSITION.search("مضى يومان على") is None


# First person plural ("we did not check", "we suggest"): the Arabic guides are written
# impersonally, as in لم يُتحقَّق منه.
FIRST_PERSON_PLURAL = re.compile(r"(?<![\u0600-\u06ff])(?:لم |لا |لن )?"
                                 r"(?:نتحقق|تحققنا|نقترح|ننصح|نوصي|نفترض|نؤكد)")


def test_arabic_guides_impersonal(rendered: tuple[str, Path]) -> None:
    _, project = rendered
    for path in sorted((project / "docs").glob("*.ar.md")):
        text = path.read_text("utf-8")
        assert FIRST_PERSON_PLURAL.findall(text) == [], path.name
    setup = (project / "docs/connector-setup.ar.md").read_text("utf-8")
    assert "*(لم يُتحقَّق منه)*" in setup


def test_spec_calls_codes_personal(rendered: tuple[str, Path]) -> None:
    # Nothing on the connector or API path limits a code to one use, so the spec's
    # step contents call it a personal code with an expiry.
    _, project = rendered
    playbooks = yaml.safe_load((project / "integration/playbooks.yaml").read_text("utf-8"))
    mapping = yaml.safe_load((project / "integration/mapping.yaml").read_text("utf-8"))
    contents = [step["content"] for playbook in playbooks["playbooks"]
                for step in playbook["steps"] if step.get("content")]
    discount = next(rollup for rollup in mapping["entities"]["contact"]["rollups"]
                    if rollup["name"] == "discount_code")
    texts = [*contents, discount["rule"]]
    for text in texts:
        assert "single-use" not in text["en"]
        assert "لمرة واحدة" not in text["ar"]
    cart = next(playbook for playbook in playbooks["playbooks"]
                if playbook["key"] == "abandoned_cart")
    assert "a personal discount code with an expiry" in cart["steps"][0]["content"]["en"]
    assert "رمز خصم شخصي له تاريخ انتهاء" in cart["steps"][0]["content"]["ar"]
    workflows = (project / "docs/crm-workflows.md").read_text("utf-8")
    assert "single-use" not in workflows
    assert "Only the iPaaS workflows create a personal code per contact" in workflows


def test_zoho_duplicate_check_fields(rendered: tuple[str, Path]) -> None:
    # Zoho rejects an upsert whose duplicate_check_fields name a field that is neither
    # unique nor system-defined, such as Mobile.
    name, project = rendered
    mapping = yaml.safe_load((project / "integration/mapping.yaml").read_text("utf-8"))
    upsert = mapping["identity"]["upsert"]
    if mapping["crm"] != "zoho":
        return
    assert "Mobile, Email]" not in upsert["en"]
    assert "Mobile is left out" in upsert["en"]
    assert "ويُستبعد الحقل Mobile" in upsert["ar"]
    if name != "woo-startup":
        return
    desired = yaml.safe_load((project / "crm/desired-state.yaml").read_text("utf-8"))
    contacts = next(item for item in desired["modules"] if item["module"] == "Contacts")
    unique = {"Email"} | {field["api_name"] for field in contacts["fields"] if field.get("unique")}
    checks = [entry["target"] for entry in mapping["identity"]["match_order"]
              if entry["target"] in unique]
    assert checks == ["Ecom_Customer_ID", "Email"]
    english = (project / "docs/connector-setup.md").read_text("utf-8")
    arabic = (project / "docs/connector-setup.ar.md").read_text("utf-8")
    assert "`duplicate_check_fields` `Ecom_Customer_ID`, `Email`:" in english
    assert "`Mobile` is left out" in english
    assert "بالحقول `Ecom_Customer_ID` و`Email`،" in arabic


def _structure(text: str) -> dict[str, dict[str, Any]]:
    """Count the numbered steps, bullets and trigger-source lines under each numbered heading."""
    sections: dict[str, dict[str, Any]] = {}
    current: dict[str, Any] | None = None
    step = ""
    for line in text.splitlines():
        heading = re.match(r"^#{2,3} (\d+(?:\.\d+)?)[. ]", line)
        if heading:
            current = sections[heading.group(1)] = {"steps": 0, "bullets": 0, "sources": []}
            continue
        if current is None:
            continue
        numbered = re.match(r"^(\d+)\. ", line)
        if numbered:
            current["steps"] += 1
            step = numbered.group(1)
        if line.startswith("- "):
            current["bullets"] += 1
        if line.strip().startswith(("Source of the trigger:", "مصدر المُشغِّل:")):
            current["sources"].append(step)
    return sections


def test_workflows_arabic_same_structure(rendered: tuple[str, Path]) -> None:
    _, project = rendered
    english = _structure((project / "docs/crm-workflows.md").read_text("utf-8"))
    arabic = _structure((project / "docs/crm-workflows.ar.md").read_text("utf-8"))
    assert sorted(arabic) == sorted(english)
    for number, counts in english.items():
        assert arabic[number]["steps"] == counts["steps"], f"section {number}"
        assert arabic[number]["bullets"] == counts["bullets"], f"section {number}"
        assert arabic[number]["sources"] == counts["sources"], f"section {number}"
    assert any(counts["sources"] for counts in english.values())


def _playbook(text: str, title: str) -> str:
    return text.split(f" {title}\n", 1)[1].split("\n### ", 1)[0]


def test_shopify_cart_trigger_per_crm(rendered: tuple[str, Path]) -> None:
    name, project = rendered
    english = (project / "docs/crm-workflows.md").read_text("utf-8")
    arabic = (project / "docs/crm-workflows.ar.md").read_text("utf-8")
    cart = _playbook(english, "Abandoned cart recovery")
    ar_cart = _playbook(arabic, "استرجاع السلال المتروكة")
    assert "the integration waits" not in english
    assert "checkout_token" not in cart
    if name == "riyadh-perfume-hubspot":
        assert "Source of the trigger: the **Carts** records that HubSpot's data sync app" in cart
        assert "مصدر المُشغِّل: سجلات **Carts**" in ar_cart
    elif name == "support-heavy":
        assert "Source of the trigger: none on this path." in cart
        assert "not abandoned checkouts" in cart
        assert "needs the iPaaS or API path" in cart
        assert "مصدر المُشغِّل: لا مصدر له في هذا المسار." in ar_cart
        setup = (project / "docs/connector-setup.md").read_text("utf-8")
        assert "Zoho CRM's Shopify extension does not sync\n  abandoned checkouts" in setup
    else:
        assert "WooCommerce core has no abandoned-cart webhook" in cart


def test_playbook_triggers_are_concrete(rendered: tuple[str, Path]) -> None:
    name, project = rendered
    english = (project / "docs/crm-workflows.md").read_text("utf-8")
    post = _playbook(english, "Post-purchase series")
    win_back = _playbook(english, "Win-back")
    loyalty = _playbook(english, "Loyalty points")
    hubspot = name in ("riyadh-perfume-hubspot", "woo-hubspot")
    if name == "riyadh-perfume-hubspot":
        assert "the **Order** records that HubSpot's data sync app writes" in post
        assert "Shopify's `fulfillment_status` `fulfilled`" in post
        assert "payment status becomes paid" in loyalty
    elif hubspot:
        assert "Build this workflow on **Deals**" in post
        assert "pipeline becomes *Fulfilled / shipped*" in post
    else:
        assert "Build this rule on the **Deals** module" in post
        assert "the field **Stage** is\n   changed to `Fulfilled`" in post
        assert "a deal whose stage becomes `Paid - Processing`" in loyalty
    if hubspot:
        assert "Enrollment filter: `ecom_last_order_at` is more than\n   45 days ago." in win_back
    else:
        assert "Source of the trigger: the field `Ecom_Last_Order_At`" in win_back
        assert "run the rule 45\n   days after its value" in win_back
    assert "The connector records no reviews\n   or referrals." in loyalty


def test_plan_exit_rule_stated(rendered: tuple[str, Path]) -> None:
    name, project = rendered
    english = (project / "docs/connector-setup.md").read_text("utf-8")
    arabic = (project / "docs/connector-setup.ar.md").read_text("utf-8")
    checks = english.split("## 7.", 1)[1]
    ar_checks = arabic.split("## 7.", 1)[1]
    assert "`rabt crm plan .` exits 0. It exits 4 when apply still has something" in checks
    assert "never make it exit 4" in checks
    assert "ولا تجعله ينتهي برمز\n      الخروج 4 أبدًا" in ar_checks
    assert "(وخطوات" not in ar_checks
    zoho = name in ("woo-startup", "support-heavy")
    assert ("Stage or Lead Source value that is missing" in checks) is zoho
    assert ("the custom views" in checks) is zoho


def test_arabic_guides_have_no_english(rendered: tuple[str, Path]) -> None:
    _, project = rendered
    for name in ("crm-workflows", "connector-setup"):
        text = (project / f"docs/{name}.ar.md").read_text("utf-8")
        assert english_runs(text) == [], name


def test_arabic_workflows_show_arabic_notes(rendered: tuple[str, Path]) -> None:
    _, project = rendered
    english = (project / "docs/crm-workflows.md").read_text("utf-8")
    arabic = (project / "docs/crm-workflows.ar.md").read_text("utf-8")
    playbooks = yaml.safe_load((project / "integration/playbooks.yaml").read_text("utf-8"))
    # The lifecycle note speaks of the API; the guide words it for the workflow editor instead
    # (test_backward_move_clears_stage).
    noted = [item for item in playbooks["playbooks"] if item["enabled"] and "note" in item]
    assert any("loyalty app" in item["note"] for item in noted)
    for item in noted:
        assert item["note"] in english
        assert item["note"] not in arabic
        assert item["note_ar"] in arabic


def test_spec_notes_have_arabic_twins() -> None:
    source = Path(__file__).parents[1] / "generator/data/spec"
    notes: list[Any] = []

    def collect(value: Any) -> None:
        if isinstance(value, dict):
            notes.extend(note for key, note in value.items() if key.endswith("note"))
            for item in value.values():
                collect(item)
        elif isinstance(value, list):
            for item in value:
                collect(item)

    for name in ("playbooks", "lifecycle"):
        collect(yaml.safe_load((source / f"{name}.yaml").read_text("utf-8")))
    assert len(notes) == 6
    for note in notes:
        assert isinstance(note, dict), note
        assert set(note) == {"en", "ar"}, note
        assert re.search("[\u0600-\u06ff]", note["ar"]), note


# Step 1 of each playbook names the object its trigger fires on (English, Arabic).
HUBSPOT_OBJECTS = {"contact": ("a contact-based workflow", "سير عمل على جهات الاتصال"),
                   "deal": ("a deal-based workflow", "سير عمل على الصفقات"),
                   "order": ("an order-based workflow", "سير عمل على الطلبات")}
ZOHO_OBJECTS = {"contact": ("a workflow rule on the **Contacts** module",
                            "قاعدة سير عمل على وحدة **Contacts**"),
                "deal": ("a workflow rule on the **Deals** module",
                         "قاعدة سير عمل على وحدة **Deals**")}
PLAYBOOK_TITLES = {"abandoned_cart": ("Abandoned cart recovery", "استرجاع السلال المتروكة"),
                   "post_purchase": ("Post-purchase series", "سلسلة ما بعد الشراء"),
                   "win_back": ("Win-back", "استعادة العملاء"),
                   "vip_care": ("VIP care", "رعاية كبار العملاء"),
                   "loyalty": ("Loyalty points", "نقاط الولاء")}


def test_playbook_object_matches_trigger(rendered: tuple[str, Path]) -> None:
    name, project = rendered
    english = (project / "docs/crm-workflows.md").read_text("utf-8")
    arabic = (project / "docs/crm-workflows.ar.md").read_text("utf-8")
    hubspot = name in ("riyadh-perfume-hubspot", "woo-hubspot")
    objects = HUBSPOT_OBJECTS if hubspot else ZOHO_OBJECTS
    orders = "order" if name == "riyadh-perfume-hubspot" else "deal"
    expected = {"abandoned_cart": "contact", "post_purchase": orders, "win_back": "contact",
                "vip_care": "contact", "loyalty": orders}
    for key, kind in expected.items():
        title, ar_title = PLAYBOOK_TITLES[key]
        section = _playbook(english, title)
        ar_section = _playbook(arabic, ar_title)
        assert f"1. **Create** {objects[kind][0]}" in section, key
        assert f"1. **أنشئ** {objects[kind][1]}" in ar_section, key
    loyalty = _playbook(english, "Loyalty points")
    ar_loyalty = _playbook(arabic, "نقاط الولاء")
    second = (f'and {objects["contact"][0]} named\n'
              '   "Playbook: Loyalty points (reviews and referrals)"')
    assert second in loyalty
    assert f"لنقاط الشراء، و{objects['contact'][1]}" in ar_loyalty
    assert "contact-based" in loyalty.split("The connector records no reviews", 1)[1]
    post = _playbook(english, "Post-purchase series")
    ar_post = _playbook(arabic, "سلسلة ما بعد الشراء")
    assert f"The steps go to the {orders}'s associated contact" in post
    assert "each consent branch reads that contact's consent" in post
    assert "وتُرسَل الخطوات إلى جهة الاتصال المرتبطة" in ar_post
    assert "The steps go to" not in _playbook(english, "Win-back")


def test_vip_trigger_is_buildable(rendered: tuple[str, Path]) -> None:
    name, project = rendered
    english = _playbook((project / "docs/crm-workflows.md").read_text("utf-8"), "VIP care")
    arabic = _playbook((project / "docs/crm-workflows.ar.md").read_text("utf-8"),
                       "رعاية كبار العملاء")
    segments = yaml.safe_load((project / "integration/segments.yaml").read_text("utf-8"))
    vip = segments["vip_threshold"]
    entry, leave = vip["threshold_sar"], vip["exit_threshold_sar"]
    if name in ("riyadh-perfume-hubspot", "woo-hubspot"):
        assert "**List membership** on that list" in english
        assert "مُشغِّل التسجيل **List membership**" in arabic
        return
    assert "enters the VIP segment" not in english
    assert "تدخل جهة الاتصال شريحة" not in arabic
    assert f"2. **Trigger:** the lifetime value `Ecom_LTV_SAR` reaches {entry} SAR" in english
    assert f"`Ecom_LTV_SAR` is greater than or equal to {entry}" in english
    assert f"when `Ecom_LTV_SAR` falls below {leave} SAR" in english
    assert "cannot start a workflow rule" in english
    assert f"تبلغ قيمة العميل مدى الحياة `Ecom_LTV_SAR` \u200f{entry} ريال" in arabic
    assert f"`Ecom_LTV_SAR` أكبر من {entry} أو يساويه" in arabic
    assert f"أقل من {leave} ريال" in arabic


def test_zoho_docs_say_fields(rendered: tuple[str, Path]) -> None:
    name, project = rendered
    paths = ("docs/connector-setup.md", "docs/crm-workflows.md", "README.md")
    texts = {path: (project / path).read_text("utf-8") for path in paths}
    if name in ("riyadh-perfume-hubspot", "woo-hubspot"):
        assert "custom properties" in texts["README.md"]
        return
    for path, text in texts.items():
        assert "custom properties" not in text, path
        assert "properties, pipeline" not in text, path
        assert "roll-up\nproperties" not in text, path
    assert "custom fields for roll-ups and sources" in texts["docs/connector-setup.md"]
    assert "الحقول المخصصة، ومسار الصفقات" in (project / "README.ar.md").read_text("utf-8")


def _docs(project: Path, name: str) -> tuple[str, str]:
    return ((project / f"docs/{name}.md").read_text("utf-8"),
            (project / f"docs/{name}.ar.md").read_text("utf-8"))


def test_woo_cart_trigger_is_buildable(rendered: tuple[str, Path]) -> None:
    name, project = rendered
    english, arabic = _docs(project, "crm-workflows")
    cart = _playbook(english, "Abandoned cart recovery")
    ar_cart = _playbook(arabic, "استرجاع السلال المتروكة")
    # No path's contact workflow can see a cart being emptied.
    assert "or the cart is emptied" not in cart
    assert '"the cart is emptied", is left out on this path' in cart
    assert "«إفراغ السلة»" in ar_cart
    if not name.startswith("woo"):
        return
    hubspot = name == "woo-hubspot"
    field = "ecom_last_checkout_at" if hubspot else "Ecom_Last_Checkout_At"
    url = "ecom_last_cart_url" if hubspot else "Ecom_Last_Cart_URL"
    assert "where it has one" not in cart
    assert f"the contact {'property' if hubspot else 'field'} `{field}`, which the plugin" in cart
    assert "nothing starts this workflow, so leave it switched off" in cart
    assert f"`{field}`" in ar_cart and "فأبقِه معطَّلًا" in ar_cart
    setup, ar_setup = _docs(project, "connector-setup")
    section_1 = setup.split("## 2.", 1)[0]
    capture = "abandoned-cart capture that writes, on the contact, the time the shopper left"
    assert capture in section_1
    assert "التقاط السلال المتروكة مع كتابة وقت مغادرة المتسوق" in ar_setup.split("## 2.", 1)[0]
    rollups = setup.split("### 4.1", 1)[1].split("### 4.2", 1)[0]
    mapping = yaml.safe_load((project / "integration/mapping.yaml").read_text("utf-8"))
    targets = {item["name"]: item["target"] for item in mapping["entities"]["contact"]["rollups"]}
    assert targets["last_cart_url"] == url
    assert f"the time the shopper left the checkout to\n  `{field}`" in rollups
    assert f"بالحقل `{field}`" in ar_setup


def test_vip_steps_are_workflow_actions(rendered: tuple[str, Path]) -> None:
    name, project = rendered
    english, arabic = _docs(project, "crm-workflows")
    vip = _playbook(english, "VIP care")
    ar_vip = _playbook(arabic, "رعاية كبار العملاء")
    for words in ("front of the WhatsApp queue", "tagged high priority", "routed to senior agents",
                  "removes the VIP owner and priority", "the CRM assigns a named owner"):
        assert words not in vip, words
    for words in ("أول طابور واتساب", "تُوسَم رسائل", "تزيل مسؤول الحساب"):
        assert words not in ar_vip, words
    hubspot = name in ("riyadh-perfume-hubspot", "woo-hubspot")
    flag = "ecom_vip_since" if hubspot else "Ecom_VIP_Since"
    if hubspot:
        assert (f"sets the date property `{flag}`, which `rabt crm apply`\n   creates, to the "
                "enrollment date") in vip
    else:
        assert f"sets the date field\n   `{flag}`, which `rabt crm apply` creates" in vip
    assert "by hand" not in vip.split("**Exit:**", 1)[0].split("Source of the trigger:", 1)[1]
    assert "يدويًا" not in ar_vip.split("مصدر المُشغِّل:", 1)[1].split("**الخروج:**", 1)[0]
    assert "**Priority** = *High*" in vip
    assert "create a task for the fulfilment team" in vip
    assert "أنشئ مهمة لفريق التنفيذ" in ar_vip
    assert f"`{flag}`" in ar_vip
    if hubspot:
        assert f"**Clear property value** on `{flag}`" in vip
        assert f"**Clear property value** على `{flag}`" in ar_vip
        exit_part = vip[vip.index("VIP care (exit)"):]
        assert "Turn re-enrollment on for this\n   workflow too" in exit_part
        assert "وفعّل إعادة التسجيل (Re-enrollment) في سير العمل هذا أيضًا" in ar_vip
    else:
        assert f"clear `{flag}` and set **Contact Owner** back" in vip
        assert f"مسح `{flag}`" in ar_vip


def test_zoho_vip_rule_fires_once(rendered: tuple[str, Path]) -> None:
    name, project = rendered
    if name in ("riyadh-perfume-hubspot", "woo-hubspot"):
        pytest.skip("Zoho projects only")
    english, arabic = _docs(project, "crm-workflows")
    vip = _playbook(english, "VIP care")
    ar_vip = _playbook(arabic, "رعاية كبار العملاء")
    segments = yaml.safe_load((project / "integration/segments.yaml").read_text("utf-8"))
    entry = segments["vip_threshold"]["threshold_sar"]
    leave = segments["vip_threshold"]["exit_threshold_sar"]
    guard = f"`Ecom_LTV_SAR` is greater than or equal to {entry} and `Ecom_VIP_Since` is empty"
    assert guard in vip
    assert "the rule fires once" in vip
    assert (f"conditions `Ecom_LTV_SAR` is less than {leave} and `Ecom_VIP_Since` is not empty"
            in vip)
    assert "وأن يكون\n   `Ecom_VIP_Since` فارغًا" in ar_vip
    setup, ar_setup = _docs(project, "connector-setup")
    row = next(line for line in setup.splitlines() if line.startswith("| segments (VIP"))
    assert "VIP care workflow as ending when the contact leaves it" not in row
    ends = f"ends only when it falls below {leave:,} SAR, not when the contact leaves the view"
    assert ends in row
    ar_row = next(line for line in ar_setup.splitlines() if line.startswith("| الشرائح"))
    assert f"ولا تنتهي إلا حين تنخفض عن {leave:,} ريال" in ar_row


def test_segmentation_has_no_trigger(rendered: tuple[str, Path]) -> None:
    _, project = rendered
    english, arabic = _docs(project, "crm-workflows")
    section = _playbook(english, "Smart segmentation")
    ar_section = _playbook(arabic, "التقسيم الذكي")
    assert "Always on" not in section
    assert "تعمل دائمًا" not in ar_section
    assert "1. **No workflow** to create: this playbook is a way of sending campaigns." in section
    assert "2. **Trigger:** none. A campaign is not an enrollment" in section
    assert "2. **المُشغِّل:** لا مُشغِّل." in ar_section
    assert "favourite category or an average order value" in section


def test_segmentation_sends_only_kept_channels(rendered: tuple[str, Path]) -> None:
    _, project = rendered
    english, arabic = _docs(project, "crm-workflows")
    section = _playbook(english, "Smart segmentation")
    ar_section = _playbook(arabic, "التقسيم الذكي")
    steps = section[:section.index("**Exit:**")]
    trigger = section[section.index("2. **Trigger:**"):section.index("3. **First delay:**")]
    for channel in ("WhatsApp", "SMS"):
        kept = f", {channel}**" in steps
        assert (channel in trigger) is kept, (channel, trigger)
    assert ("email (**" in trigger) is (", Email**" in steps), trigger
    assert "branch on" not in steps
    assert "send the template `segment_campaign` only to the contacts with Email consent" in steps
    assert "تفرّع حسب" not in ar_section[:ar_section.index("**الخروج:**")]
    assert 'named "Segment: " followed by the campaign name' in section


def test_segmentation_without_email_step(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from generator.cli import main

    result = CliRunner().invoke(main, [
        "new", "--no-input", "--output-dir", str(tmp_path), "--preset", "woo-startup",
        "--set", "consent_channels=sms", "--set", "project_slug=woo-sms"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    english, arabic = _docs(tmp_path / "woo-sms", "crm-workflows")
    section = _playbook(english, "Smart segmentation")
    ar_section = _playbook(arabic, "التقسيم الذكي")
    trigger = section[section.index("2. **Trigger:**"):section.index("3. **First delay:**")]
    ar_trigger = ar_section[ar_section.index("2. **المُشغِّل:**"):ar_section.index("3. **المهلة")]
    assert "email" not in trigger.lower()
    assert "as SMS messages through" in trigger
    assert "بريد" not in ar_trigger
    assert "عبر الرسائل النصية" in ar_trigger


@pytest.mark.parametrize("crm", ["zoho", "hubspot"])
def test_segmentation_filters_name_fields(tmp_path: Path, crm: str) -> None:
    from click.testing import CliRunner

    from generator.cli import main

    result = CliRunner().invoke(main, [
        "new", "--no-input", "--output-dir", str(tmp_path), "--preset", "woo-startup",
        "--set", "consent_channels=email,sms,whatsapp", "--set", f"crm={crm}",
        "--set", "project_slug=woo-seg"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    english, arabic = _docs(tmp_path / "woo-seg", "crm-workflows")
    section = " ".join(_playbook(english, "Smart segmentation").split())
    ar_section = " ".join(_playbook(arabic, "التقسيم الذكي").split())
    if crm == "zoho":
        assert "(filters on the view: `Ecom_WhatsApp_Opt_In` is checked," in section
        assert "and either `Email_Opt_Out` is checked or `Email` is empty):" in section
        assert ("`Ecom_SMS_Opt_In` is checked, which section 5 of [connector-setup.md]"
                "(connector-setup.md) says how to fill, and either `Email_Opt_Out` is checked or "
                "`Email` is empty, and "
                "`Ecom_WhatsApp_Opt_In` is not checked):") in section
        assert ("إما أن تكون الخانة `Email_Opt_Out` محددة وإما أن يكون الحقل `Email` فارغًا،"
                " والخانة `Ecom_WhatsApp_Opt_In` غير محددة)"
                in ar_section)
    else:
        assert ("(filters on the list: the contact's status in the WhatsApp marketing subscription "
                "type is Subscribed, and the contact's status in the Email marketing subscription "
                "type is not Subscribed):") in section
        assert "لقناة البريد الإلكتروني ليست Subscribed" in ar_section
    assert "(a filter on the " in section
    assert "filters on the view):" not in section
    assert "filters on the list):" not in section


def test_post_purchase_reads_review_field(rendered: tuple[str, Path]) -> None:
    name, project = rendered
    english, arabic = _docs(project, "crm-workflows")
    post = _playbook(english, "Post-purchase series")
    ar_post = _playbook(arabic, "سلسلة ما بعد الشراء")
    loyalty = _playbook(english, "Loyalty points")
    field = "ecom_last_review_at" if name in ("riyadh-perfume-hubspot", "woo-hubspot") \
        else "Ecom_Last_Review_At"
    assert "the email step got no review" not in post
    assert "Stops when the customer leaves a review" not in post
    if "Step 2, WhatsApp" in post:
        assert f"branch on `{field}`, the review date" in post
        assert f"تفرّع حسب `{field}`" in ar_post
    assert f"Stops when `{field}` changes (the customer left a review)" in post
    assert f"`{field}` for the last published" in loyalty
    assert "by hand" not in loyalty
    assert "that `rabt crm apply` creates for the store's review app" in post
    assert re.search(f"[تي]تغير `{field}`", ar_post)
    assert "لم تُثمر رسالة البريد" not in ar_post


def test_lead_stage_is_buildable(rendered: tuple[str, Path]) -> None:
    name, project = rendered
    english, arabic = _docs(project, "crm-workflows")
    lifecycle = english.split("\n## 1.", 1)[1].split("\n## 2.", 1)[0]
    ar_lifecycle = arabic.split("\n## 1.", 1)[1].split("\n## 2.", 1)[0]
    assert "A rule that reads a\nroll-up" not in lifecycle
    assert "which always holds" in lifecycle
    assert "فيتحقق دائمًا" in ar_lifecycle
    lead = lifecycle.split("### 2. Lead", 1)[1].split("### 3.", 1)[0]
    if name == "riyadh-perfume-hubspot":
        assert "`ecom_last_checkout_at` is known" not in lead
        assert "the contact has an associated cart" in lead
        visitor = "| 1 | Visitor | `ecom_orders_count` is equal to 0 and the contact has no"
        assert f"{visitor} associated cart" in lifecycle
        assert "ترتبط بجهة الاتصال سلة" in ar_lifecycle
    elif name == "support-heavy":
        off = "Leave the Lead rule switched off; a Lead\nstage needs the iPaaS or API path"
        assert off in lifecycle
        assert "أبقِ قاعدة العميل المهتم معطَّلة" in ar_lifecycle
    else:
        assert "leave the Lead workflow switched off until\nthe plugin fills" in lifecycle
        assert "أبقِ سير العميل المهتم معطَّلًا" in ar_lifecycle


def test_backward_move_clears_stage(rendered: tuple[str, Path]) -> None:
    name, project = rendered
    english, arabic = _docs(project, "crm-workflows")
    lifecycle = english.split("\n## 1.", 1)[1].split("\n## 2.", 1)[0]
    ar_lifecycle = arabic.split("\n## 1.", 1)[1].split("\n## 2.", 1)[0]
    assert "the API" not in lifecycle
    assert "empty string" not in lifecycle
    assert "API" not in ar_lifecycle.replace("iPaaS أو API", "")
    if name not in ("riyadh-perfume-hubspot", "woo-hubspot"):
        assert "Clear property value" not in lifecycle
        return
    for stage in ("1. Visitor", "2. Lead"):
        section = lifecycle.split(f"### {stage}", 1)[1].split("### ", 1)[0]
        assert "3. Action **Clear property value** on `lifecyclestage`" in section, stage
    first_time = lifecycle.split("### 3. First-time", 1)[1].split("### ", 1)[0]
    assert "Clear property value" not in first_time
    assert "Note: a HubSpot workflow cannot set `lifecyclestage` to an earlier stage" in lifecycle
    assert "3. إجراء **Clear property value** على `lifecyclestage`" in ar_lifecycle


CHANNEL_NAMES = {"email": ("Email", "البريد الإلكتروني"), "whatsapp": ("WhatsApp", "واتساب"),
                 "sms": ("SMS", "الرسائل النصية")}


def _step_lines(section: str, number: int) -> str:
    """Return the heading line of kept step ``number`` and the line that follows it."""
    match = re.search(rf"^\d+\. \*\*(?:Step|الخطوة) {number}[،,].*\n.*$", section,
                      flags=re.MULTILINE)
    assert match, number
    return match.group(0)


def _alternative_groups(project: Path) -> list[tuple[dict[str, Any], dict[str, list[int]]]]:
    """Return each enabled playbook with its kept step numbers per alternative group."""
    spec = yaml.safe_load((project / "integration/playbooks.yaml").read_text("utf-8"))
    playbooks = []
    for playbook in spec["playbooks"]:
        if not playbook["enabled"]:
            continue
        groups: dict[str, list[int]] = {}
        for step in playbook["steps"]:
            if "alternative_group" in step:
                groups.setdefault(step["alternative_group"], []).append(step["step"])
        playbooks.append((playbook, groups))
    return playbooks


def test_alternatives_exclude_earlier_consent(rendered: tuple[str, Path]) -> None:
    _, project = rendered
    english, arabic = _docs(project, "crm-workflows")
    for playbook, groups in _alternative_groups(project):
        section = _playbook(english, playbook["name"]["en"])
        ar_section = _playbook(arabic, playbook["name"]["ar"])
        channels = {step["step"]: step["channel"] for step in playbook["steps"]}
        for numbers in groups.values():
            for position, number in enumerate(numbers):
                earlier = [CHANNEL_NAMES[channels[n]] for n in numbers[:position]]
                lines = _step_lines(section, number)
                ar_lines = _step_lines(ar_section, number)
                if not earlier:
                    assert " without " not in lines, lines
                    assert "has no " not in lines, lines
                    assert "ولم تمنح" not in ar_lines, ar_lines
                    continue
                english_names = " or ".join(name for name, _ in earlier)
                arabic_names = " ولا موافقة ".join(name for _, name in earlier)
                if playbook["key"] == "smart_segmentation":
                    assert f"and without {english_names} consent (filters on the" in lines
                else:
                    assert f"and the contact has no {english_names} consent;" in lines
                assert f"ولم تمنح{' جهة الاتصال' * (playbook['key'] != 'smart_segmentation')}" \
                       f" موافقة {arabic_names}" in ar_lines, ar_lines


def test_segment_filters_name_every_channel(rendered: tuple[str, Path]) -> None:
    name, project = rendered
    english, arabic = _docs(project, "crm-workflows")
    section = _playbook(english, "Smart segmentation")
    ar_section = _playbook(arabic, "التقسيم الذكي")
    if name == "support-heavy":
        assert ("send the template `segment_campaign` only to the contacts with SMS consent and "
                "without Email or WhatsApp consent (filters on the view: `Ecom_SMS_Opt_In` is "
                "checked") in " ".join(section.split())
        assert ("and either `Email_Opt_Out` is checked or `Email` is empty, and "
                "`Ecom_WhatsApp_Opt_In` is not checked): "
                "A one-line") in " ".join(section.split())
        assert ("لا ترسل القالب `segment_campaign` إلا إلى جهات الاتصال التي منحت موافقة الرسائل"
                " النصية ولم تمنح موافقة البريد الإلكتروني ولا موافقة واتساب (مرشِّحات على طريقة"
                " العرض: الخانة `Ecom_SMS_Opt_In` محددة") in " ".join(ar_section.split())
    if name == "riyadh-perfume-hubspot":
        assert ("only to the contacts with WhatsApp consent and without Email consent (filters on"
                " the list: the contact's status in the WhatsApp marketing subscription type is"
                " Subscribed, and the contact's status in the Email marketing subscription type is"
                " not Subscribed)") in " ".join(section.split())
        assert ("ولم تمنح موافقة البريد الإلكتروني (مرشِّحان على القائمة: حالة جهة الاتصال"
                in " ".join(ar_section.split()))
    assert "; send the template" not in section
    assert "؛ أرسل القالب" not in ar_section


def test_lone_alternative_has_no_label(rendered: tuple[str, Path]) -> None:
    _, project = rendered
    english, arabic = _docs(project, "crm-workflows")
    lone = 0
    for playbook, groups in _alternative_groups(project):
        section = _playbook(english, playbook["name"]["en"])
        ar_section = _playbook(arabic, playbook["name"]["ar"])
        for group, numbers in groups.items():
            for number in numbers:
                heading = _step_lines(section, number).splitlines()[0]
                ar_heading = _step_lines(ar_section, number).splitlines()[0]
                labelled = len(numbers) > 1
                assert (f'one of the "{group}" alternatives' in heading) is labelled, heading
                assert (f'أحد بدائل المجموعة "{group}"' in ar_heading) is labelled, ar_heading
            lone += len(numbers) == 1
    assert lone or project.name != "woo-startup"
    labelled_steps = sum(len(numbers) for _, groups in _alternative_groups(project)
                         for numbers in groups.values() if len(numbers) > 1)
    overview, ar_overview = _docs(project, "playbooks")
    assert overview.count("One of a set: each contact gets") == labelled_steps
    assert ar_overview.count("هذه إحدى القنوات البديلة") == labelled_steps


def test_arabic_menu_paths_unambiguous(rendered: tuple[str, Path]) -> None:
    _, project = rendered
    for path in sorted((project / "docs").glob("*.ar.md")):
        text = path.read_text("utf-8")
        assert "مسارات القوائم" not in text, path.name
        assert "مسار القائمة" not in text, path.name
    arabic = (project / "docs/crm-workflows.ar.md").read_text("utf-8")
    assert "مسارات التنقل في الواجهة ومتطلبات الإصدارات" in arabic


def _field_map(text: str, heading: str) -> str:
    return text.split(heading)[1].split("\n### ")[0].split("\n## ")[0]


def test_field_map_lists_created_fields(rendered: tuple[str, Path]) -> None:
    _, project = rendered
    state = yaml.safe_load((project / "crm/desired-state.yaml").read_text("utf-8"))
    english, arabic = _docs(project, "connector-setup")
    table = _field_map(english, "## 4. Field map")
    ar_table = _field_map(arabic, "## 4. ربط الحقول")
    created = [(prop["object"], prop["name"], prop.get("hasUniqueValue", False))
               for prop in state.get("properties", ())]
    created += [(module["module"], field["api_name"], field.get("unique", False))
                for module in state.get("modules", ()) for field in module["fields"]]
    listed = [item for item in created
              if item[0] in ("contacts", "deals", "line_items", "products",
                             "Contacts", "Deals", "Products")]
    assert any(item[0] in ("deals", "Deals") for item in listed)
    for _, name, unique in listed:
        kind = "custom, unique, created by" if unique else "custom, created by"
        assert f"| `{name}` | {kind} `rabt crm apply` |" in table, name
        ar_kind = "مخصص وفريد، ينشئه" if unique else "مخصص، ينشئه"
        assert f"| `{name}` | {ar_kind} الأمر `rabt crm apply` |" in ar_table, name
    mapping = yaml.safe_load((project / "integration/mapping.yaml").read_text("utf-8"))
    for entity in ("order", "line_item", "product"):
        for field in mapping["entities"][entity]["fields"]:
            assert f"`{field['name']}` | `{field['target']}` |" in table
            assert f"`{field['name']}` | `{field['target']}` |" in ar_table


def test_order_key_filler_per_connector(rendered: tuple[str, Path]) -> None:
    name, project = rendered
    english, arabic = _docs(project, "connector-setup")
    row = next(line for line in english.splitlines()
               if line.startswith("| order `external_order_id`"))
    if name == "support-heavy":
        assert "as its unique key" not in english
        assert "map the order id to\n`Shopify_Order_ID`" in english
        assert "nothing by default: map the Shopify order id to it" in row
        assert "مفتاحها الفريد" not in arabic
    elif name == "riyadh-perfume-hubspot":
        assert "writes Shopify orders as **Orders** records, not deals" in row
    else:
        assert "the plugin, once its deal field map writes the store's order id" in row


def test_connector_intro_names_plugin_writes(rendered: tuple[str, Path]) -> None:
    name, project = rendered
    english, _ = _docs(project, "connector-setup")
    intro = english.split("## 4. Field map")[1].split("| spec field")[0]
    assert "and the connector does not write them" not in intro
    if name.startswith("woo"):
        assert "the cart fields, which the\nplugin's abandoned-cart capture can fill" in intro


def test_settings_heading_has_one_blank_line(rendered: tuple[str, Path]) -> None:
    _, project = rendered
    english, arabic = _docs(project, "connector-setup")
    assert "## 3. Settings, and why\n\n" in english
    assert "## 3. Settings, and why\n\n\n" not in english
    assert "## 3. الإعدادات وأسبابها\n\n\n" not in arabic


def test_zoho_shopify_checkouts_consistent(rendered: tuple[str, Path]) -> None:
    name, project = rendered
    english, arabic = _docs(project, "connector-setup")
    section_1 = english.split("## 1.")[1].split("## 2.")[0]
    section_2 = english.split("## 2.")[1].split("## 3.")[0]
    if name == "support-heavy":
        assert "It does not sync abandoned checkouts" in section_1
        assert "checkouts" not in section_2
        assert "عمليات الدفع المتروكة" in arabic.split("## 1.")[1].split("## 2.")[0]
        assert "عمليات الدفع" not in arabic.split("## 2.")[1].split("## 3.")[0]
    if name == "riyadh-perfume-hubspot":
        assert "(and checkouts, for the Carts records)" in section_2


def test_abandoned_cart_exit_agrees(rendered: tuple[str, Path]) -> None:
    name, project = rendered
    _, arabic = _docs(project, "crm-workflows")
    exit_line = next(line for line in arabic.splitlines() if "تتوقف عند وصول طلب" in line)
    if name == "riyadh-perfume-hubspot":
        assert "(حين يُربط بجهة الاتصال طلبٌ جديد)" in exit_line
    else:
        assert "(حين تُربط بجهة الاتصال صفقةٌ جديدة)" in exit_line
    assert "طلب جديدة" not in arabic
    if "hubspot" in name:
        assert "يرى سير العمل المبني على جهات الاتصال" in arabic
        assert "سير العمل المبنية" not in arabic
    else:
        assert "ترى القاعدة المبنية على جهات الاتصال" in arabic


def test_arabic_setup_terms_consistent(rendered: tuple[str, Path]) -> None:
    _, project = rendered
    for name in ("connector-setup", "crm-workflows"):
        _, arabic = _docs(project, name)
        prose = re.sub(r"`[^`]*`", "", arabic)
        assert "WhatsApp" not in prose, name
        assert "→" not in arabic, name
        assert "المشترين الجدد" not in arabic, name
    _, setup = _docs(project, "connector-setup")
    assert "توقف الأمر `rabt crm apply` فورًا" in setup


def _token_fix(project: Path, lang: str) -> str:
    from generator.crm.settings import hubspot_settings
    from generator.errors import InputError

    desired = yaml.safe_load((project / "crm/desired-state.yaml").read_text("utf-8"))
    with pytest.raises(InputError) as raised:
        # A connector project has the setup guide that the fix points to.
        hubspot_settings({}, "ar" if lang == "ar" else "en", desired, setup_guide=True)
    return raised.value.problems[0].fix


def _guide_scopes(text: str, heading: str) -> list[str]:
    section = text.split(heading)[1].split("\n## ")[0]
    lines = re.findall(r"^  - (`[a-z.-]+`.*)$", section, re.MULTILINE)
    return [scope for line in lines for scope in re.findall(r"`([a-z.-]+)`", line.split(":")[0])]


def test_hubspot_scopes_match_rabt_crm(rendered: tuple[str, Path]) -> None:
    _, project = rendered
    english, arabic = _docs(project, "connector-setup")
    if "**For `rabt crm apply`:** a private app" not in english:
        pytest.skip("HubSpot projects only")
    documented = _guide_scopes(english, "**For `rabt crm apply`:** a private app")
    fix = " ".join(_token_fix(project, "en").split())
    named = fix.split("with the scopes ")[1].split(" (docs/")[0].split(", ")
    assert named == documented
    assert documented[:2] == ["crm.schemas.contacts.read", "crm.schemas.contacts.write"]
    assert "crm.lists.read" in documented
    desired = yaml.safe_load((project / "crm/desired-state.yaml").read_text("utf-8"))
    objects = {entry["object"] for entry in desired["properties"]}
    assert ("tickets" in documented) == ("tickets" in objects)
    assert "a private app (**Settings → Integrations → Private apps**)" in english
    assert fix.startswith("create a private app in HubSpot "
                          "(Settings → Integrations → Private apps)")
    arabic_fix = " ".join(_token_fix(project, "ar").split())
    assert _guide_scopes(arabic, "**للأمر `rabt crm apply`:**") == documented
    assert f"بالصلاحيات (Scopes) {', '.join(documented)} (" in arabic_fix
    assert "(**Settings ثم Integrations ثم Private apps**)" in arabic
    assert "في HubSpot من Settings ثم Integrations ثم Private apps بالصلاحيات" in arabic_fix


@pytest.mark.parametrize("crm", ["zoho", "hubspot"])
def test_two_rule_playbook_names_recipients(tmp_path: Path, crm: str) -> None:
    from click.testing import CliRunner

    from generator.cli import main

    result = CliRunner().invoke(main, [
        "new", "--no-input", "--output-dir", str(tmp_path), "--preset", "woo-startup",
        "--set", f"crm={crm}", "--set", "project_slug=woo-two"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    english, arabic = (" ".join(text.split()) for text in _docs(tmp_path / "woo-two",
                                                                 "crm-workflows"))
    assert ("In the deal-based one, the steps go to the deal's associated contact") in english
    assert "and in the contact-based one to the contact itself. Each consent branch" in english
    assert "إلى اثنين" not in arabic
    assert "يَسِم" not in arabic
    if crm == "zoho":
        assert "يحتاج المُشغِّلان إلى قاعدتين، وكلتاهما تنفّذ الخطوات" in arabic
        assert "وفي القاعدة المبنية على Contacts إلى جهة الاتصال نفسها" in arabic
    else:
        assert "يحتاج المُشغِّلان إلى سيرَي عمل، وكلاهما ينفّذ الخطوات" in arabic
        assert "وفي سير العمل المبني على جهات الاتصال إلى جهة الاتصال نفسها" in arabic


def test_tables_end_with_one_blank_line(rendered: tuple[str, Path]) -> None:
    _, project = rendered
    for name in ("connector-setup", "crm-workflows"):
        for text in _docs(project, name):
            doubled = [text[:match.start()].count("\n") + 1
                       for match in re.finditer(r"\|[^\n]*\|\n\n\n", text)]
            assert doubled == [], (name, doubled)


def test_cases_cover_connector_presets() -> None:
    import datetime as dt

    from generator.answers import (
        AnswerSources,
        builtin_preset_names,
        load_preset,
        resolve_answers,
    )
    from generator.decide import decide

    connector = set()
    for name in builtin_preset_names():
        sources = AnswerSources()
        sources.add(name, load_preset(name).answers)
        if decide(resolve_answers(sources, today=dt.date(2026, 1, 4))).path == "connector":
            connector.add(name)
    assert connector == {"riyadh-perfume-hubspot", "support-heavy", "woo-startup"}
    assert connector <= {PRESETS.get(name, name) for name in CASES}


def test_markdown_no_double_blank_lines(rendered: tuple[str, Path]) -> None:
    _, project = rendered
    paths = sorted(project.rglob("*.md"))
    assert project / "docs/crm-workflows.ar.md" in paths
    for path in paths:
        lines = path.read_text("utf-8").splitlines()
        doubled = [number + 1 for number in range(1, len(lines))
                   if not lines[number].strip() and not lines[number - 1].strip()]
        assert doubled == [], (path.relative_to(project), doubled)


def test_partial_refunds_stated(rendered: tuple[str, Path]) -> None:
    name, project = rendered
    english, arabic = (" ".join(text.split()) for text in _docs(project, "connector-setup"))
    section = english.split("### 4.1 ")[1].split("### 4.2 ")[0]
    ar_section = arabic.split("### 4.1 ")[1].split("### 4.2 ")[0]
    if name != "support-heavy":
        assert "**Partial refunds.**" not in section
        assert "**الاسترداد الجزئي.**" not in ar_section
        return
    kept = ("A partially refunded order keeps its stage, because the goods were sold (in the "
            "status table above, `partially_refunded` leads to a stage the criteria count)")
    assert kept in section
    assert ("the sum of `Amount` counts the whole order total unless the extension lowers `Amount` "
            "after a refund *(not confirmed:") in section
    assert "`Ecom_Refunded_SAR` stays empty (section 4)" in section
    assert "the lifetime value and the VIP segment count partial refunds as revenue" in section
    assert "A full refund moves the deal to the refunded stage (`Refunded`)" in section
    assert "تقود الحالة `partially_refunded` إلى مرحلة يحتسبها الشرط" in ar_section
    assert "ما لم تُنقص الإضافة `Amount` بعد الاسترداد *(لم يُتحقَّق" in ar_section
    assert "إلى مرحلة الاسترداد (`Refunded`)" in ar_section


def test_arabic_loyalty_order_trigger(rendered: tuple[str, Path]) -> None:
    name, project = rendered
    _, arabic = _docs(project, "crm-workflows")
    loyalty = " ".join(arabic.split("### 2.5 نقاط الولاء")[1].split("\n### ")[0].split())
    assert "من تطبيق المزامنة تتغير حالة الدفع فيه" not in loyalty
    assert "وهدفًا للسير" not in loyalty
    if name != "riyadh-perfume-hubspot":
        return
    assert ("أضف هذه الشروط مُشغِّلاتٍ لإلغاء التسجيل (unenrollment triggers) وهدفًا لسير العمل "
            "(goal).") in loyalty
    assert ("مصدر المُشغِّل: يبدأ احتساب نقاط الشراء حين تتحول حالة الدفع إلى «مدفوع» في سجل "
            "**Order** يكتبه تطبيق مزامنة البيانات *(لم يُتحقَّق من اسم الخاصية)*.") in loyalty
