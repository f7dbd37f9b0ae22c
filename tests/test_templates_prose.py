"""Bake the prose templates (READMEs, decision record, path sections and starter docs).

Each path template is baked first. Its two README sections then go to the common template as the
render step passes them, so the checks read the Markdown a client receives.
"""

from __future__ import annotations

import copy
import decimal
import json
import re
from pathlib import Path
from typing import Any

import pytest
from binaryornot.check import is_binary

from generator.jinja_ext import markdown_inline
from generator.render import build_context, build_parts
from tests.ipaas_cases import load_case

TEMPLATES = Path(__file__).resolve().parents[1] / "templates"
PATH_TEMPLATES = {"connector": "connector", "ipaas": "ipaas", "api": "api-service"}
SECTION_FILES = {"en": "README.section.md", "ar": "README.section.ar.md"}
COMMON_FILES = ("README.md", "README.ar.md", "docs/decision.md", "docs/decision.ar.md")
STARTER_FILES = {
    "connector": ("docs/connector-setup.md", "docs/connector-setup.ar.md"),
    "ipaas": ("workflows/README.md", "workflows/README.ar.md"),
    "api": ("service/README.md", "service/README.ar.md"),
}
OWN_FILES = {
    "common": COMMON_FILES,
    **{PATH_TEMPLATES[path]: (*files, *SECTION_FILES.values())
       for path, files in STARTER_FILES.items()},
}

HOSTILE_NAME = 'Ali\'s "Store": {{ x }}\nسطر\u200f 🎉'
# A Jinja opening that no escaping produced. The md filter writes braces as "\{".
MARKER = re.compile(r"(?<!\\)\{[{%#]")
ARABIC_LETTER = re.compile(r"[\u0621-\u064a]")
UNESCAPED_PIPE = re.compile(r"(?<!\\)\|")
RTL_OPEN = '<div dir="rtl">\n\n'
RTL_CLOSE = "\n\n</div>\n"
EN_DASH = "\u2013"

LABELS = {
    "connector": {"en": "Ready connector", "ar": "موصل جاهز"},
    "ipaas": {"en": "iPaaS workflows", "ar": "منصة تكامل iPaaS"},
    "api": {"en": "Custom API service", "ar": "خدمة API مخصصة"},
}

SAMPLE: dict[str, Any] = {
    "rabt_version": "0.1.0",
    "client_name": HOSTILE_NAME,
    "project_slug": "riyadh-perfume",
    "platform": "shopify",
    "crm": "hubspot",
    "path": "connector",
    "recommended_path": "connector",
    "overridden": False,
    "contact_sync": "daily",
    "product_sync_limit": 100,
    "labels": {
        "platform": {"en": "Shopify", "ar": "Shopify"},
        "crm": {"en": "HubSpot", "ar": "HubSpot"},
        "path": LABELS["connector"],
        "recommended_path": LABELS["connector"],
    },
    "path_label_en": LABELS["connector"]["en"],
    "path_label_ar": LABELS["connector"]["ar"],
    "modules": [
        {"id": "contacts", "en": "Contacts", "ar": "جهات الاتصال"},
        {"id": "orders", "en": "Orders", "ar": "الطلبات"},
        {"id": "products", "en": "Products", "ar": "المنتجات"},
        {"id": "playbooks", "en": "Playbooks", "ar": "خطط التشغيل"},
    ],
    "rules": [
        {"id": "shopify_growth",
         "reason_en": "Shopify with two stores (fast growth) starts on iPaaS.",
         "reason_ar": "متجر Shopify بفرعين (نمو سريع) يبدأ بمنصة iPaaS."},
        {"id": "marketing_team", "reason_en": "A marketing-led team fits HubSpot's automation.",
         "reason_ar": "يناسب فريقَ التسويق ما يقدمه HubSpot من أتمتة."},
        {"id": "start_small", "reason_en": "Start small: the first sync covers the top 100 SKUs.",
         "reason_ar": "البدء بنطاق صغير: تشمل أول مزامنة للمنتجات أعلى 100 SKU مبيعًا."},
        {"id": "consent_channels",
         "reason_en": "Email and WhatsApp consent is managed per channel.",
         "reason_ar": "تُدار الموافقة على البريد وواتساب لكل قناة على حدة."},
    ],
    "outranked_rules": [
        {"id": "woo_small", "winner_id": "shopify_growth",
         "reason_en": "A young store under 300 orders a month fits a ready connector.",
         "reason_ar": "يناسب المتجرَ الناشئ بأقل من 300 طلب شهريًا موصلٌ جاهز."},
    ],
    "alternatives": [
        {"path": "ipaas", "label_en": LABELS["ipaas"]["en"], "label_ar": LABELS["ipaas"]["ar"],
         "reason_en": "Not needed for one store with standard fields.",
         "reason_ar": "لا حاجة إليها لمتجر واحد بحقول قياسية.",
         "decided_by": "shopify-single-steady-connector"},
        {"path": "api", "label_en": LABELS["api"]["en"], "label_ar": LABELS["api"]["ar"],
         "reason_en": "No deep ERP link is required.",
         "reason_ar": "لا يلزم ربط عميق بنظام ERP.",
         "decided_by": "shopify-single-steady-connector"},
    ],
    "estimate": {
        "days_min": 10, "days_max": 15, "setup_sar_min": 15000, "setup_sar_max": 45000,
        "subscription_en": "Hosting from 150 SAR a month.",
        "subscription_ar": "استضافة تبدأ من 150 ريالًا شهريًا.",
    },
    "comparison": [
        {"path": path, "label_en": LABELS[path]["en"], "label_ar": LABELS[path]["ar"],
         "strengths_en": f"{path} strengths", "strengths_ar": f"نقاط قوة {path}",
         "limits_en": f"{path} limits", "limits_ar": f"حدود {path}",
         "effort_en": f"{path} effort", "effort_ar": f"جهد {path}"}
        for path in ("connector", "ipaas", "api")
    ],
    "notes": [{"en": "HubSpot has no data centre in Saudi Arabia.",
               "ar": "لا يوجد لدى HubSpot مركز بيانات في السعودية."}],
    "answer_rows": [
        {"key": "client_name", "label_en": "Client", "label_ar": "العميل",
         "value_en": HOSTILE_NAME, "value_ar": HOSTILE_NAME},
        {"key": "marketing_channels", "label_en": "Marketing channels", "label_ar": "قنوات التسويق",
         "value_en": "Meta | Google", "value_ar": "Meta | Google"},
    ],
    "checklist": {
        "start": "2027-03-14", "requested_start": "2027-03-12", "moved": True,
        "items": [
            {"day": 1, "date": "2027-03-14", "weekday_en": "Sunday", "weekday_ar": "الأحد",
             "week": 1, "title_en": "Goals and segments", "title_ar": "الأهداف والشرائح",
             "detail_en": "Agree the goal.", "detail_ar": "الاتفاق على الهدف.",
             "owner": "both", "owner_ar": "الطرفان"},
        ],
        "skipped": [],
    },
    "spec_files": [f"integration/{name}.yaml" for name in
                   ("mapping", "lifecycle", "segments", "playbooks", "consent", "kpis")],
    "path_section_en": "",
    "path_section_ar": "",
}


def make_context(**changes: Any) -> dict[str, Any]:
    """Return a copy of SAMPLE with ``changes``, with labels and override flag to match."""
    context = copy.deepcopy(SAMPLE)
    context.update(copy.deepcopy(changes))
    path = context["path"]
    context["labels"]["path"] = LABELS[path]
    context["labels"]["recommended_path"] = LABELS[context["recommended_path"]]
    context["path_label_en"] = LABELS[path]["en"]
    context["path_label_ar"] = LABELS[path]["ar"]
    context["overridden"] = path != context["recommended_path"]
    if path == "ipaas":
        # The iPaaS documents read the flows, blueprints and budget built by generator.ipaas.
        defaults = json.loads((TEMPLATES / "ipaas/cookiecutter.json").read_text(encoding="utf-8"))
        context.setdefault("ipaas", defaults["_rabt"]["ipaas"])
    return context


def overridden_context() -> dict[str, Any]:
    return make_context(path="api", recommended_path="ipaas")


def bake(cookies: Any, template: str, context: dict[str, Any] | None) -> Path:
    extra = None if context is None else {"_rabt": context}
    result = cookies.bake(template=str(TEMPLATES / template), extra_context=extra)
    assert result.exit_code == 0, result.exception
    return Path(result.project_path)


def bake_project(cookies: Any, context: dict[str, Any]) -> dict[str, str]:
    """Bake the path template, then the common one with its sections, and return texts by path."""
    context = copy.deepcopy(context)
    path_project = bake(cookies, PATH_TEMPLATES[context["path"]], context)
    for lang, name in SECTION_FILES.items():
        context[f"path_section_{lang}"] = (path_project / name).read_text(encoding="utf-8")
    common_project = bake(cookies, "common", context)
    texts = read_texts(path_project)
    texts.update(read_texts(common_project))
    return texts


def read_texts(project: Path) -> dict[str, str]:
    return {path.relative_to(project).as_posix(): path.read_text(encoding="utf-8")
            for path in sorted(project.rglob("*")) if path.is_file()}


def own_texts(texts: dict[str, str]) -> dict[str, str]:
    """Keep the rendered Markdown this test covers.

    docs/checklist.* belong to the checklist tests, and service/bench/ is copied verbatim.
    """
    return {name: text for name, text in texts.items()
            if name.endswith(".md") and not name.startswith(("docs/checklist", "service/bench/"))}


def flat(text: str) -> str:
    """Return ``text`` with every run of whitespace as one space, so checks ignore line wrapping."""
    return " ".join(text.split())


def tables(text: str) -> list[list[str]]:
    """Return each Markdown table as its list of lines."""
    found: list[list[str]] = []
    current: list[str] = []
    for line in [*text.splitlines(), ""]:
        if line.startswith("|"):
            current.append(line)
        elif current:
            found.append(current)
            current = []
    return found


@pytest.fixture(params=sorted(PATH_TEMPLATES), ids=lambda path: f"path-{path}")
def project(request: pytest.FixtureRequest, cookies: Any) -> dict[str, str]:
    return bake_project(cookies, make_context(path=request.param, recommended_path=request.param))


@pytest.mark.parametrize("template", sorted(OWN_FILES))
def test_template_bakes_with_defaults(cookies: Any, template: str) -> None:
    texts = read_texts(bake(cookies, template, None))
    for name in OWN_FILES[template]:
        assert name in texts
        assert MARKER.search(texts[name]) is None, name


@pytest.mark.parametrize("template", sorted(OWN_FILES))
def test_cookiecutter_json_shape(template: str) -> None:
    data = json.loads((TEMPLATES / template / "cookiecutter.json").read_text(encoding="utf-8"))
    # The API service's code, tests and scripts are copied without rendering.
    copied = ["_copy_without_render"] if template == "api-service" else []
    assert list(data) == ["_rabt", "_extensions", *copied]
    assert data["_extensions"] == ["generator.jinja_ext.RabtExtension"]
    # The common template's guides and the connector's setup and workflow guides read the
    # spec, so those two need a default spec. The connector's field map also lists the
    # custom fields that rabt crm apply creates, and its permissions the HubSpot scopes.
    expected_keys = (set(SAMPLE) | ({"spec"} if template in ("common", "connector") else set())
                     | ({"crm_created_fields", "hubspot_scopes"} if template == "connector"
                        else set())
                     | ({"ipaas"} if template == "ipaas" else set()))
    assert set(data["_rabt"]) == expected_keys
    assert data["_rabt"]["path_section_en"] == ""
    expected_path = {"common": "connector", **{v: k for k, v in PATH_TEMPLATES.items()}}[template]
    assert data["_rabt"]["path"] == expected_path


@pytest.mark.parametrize("template", sorted(OWN_FILES))
def test_template_files_read_as_text(template: str) -> None:
    # cookiecutter copies a file it takes for binary without rendering it. The glob
    # also covers docs/checklist.ar.md, which the checklist tests bake on their own.
    root = TEMPLATES / template / "{{cookiecutter._rabt.project_slug}}"
    names = {*OWN_FILES[template], *(path.relative_to(root).as_posix()
                                      for path in root.rglob("*.md"))}
    for name in sorted(names):
        assert not is_binary(str(root / name)), name
    for path in root.rglob("*.ar.md"):
        assert path.read_bytes()[:512].isascii(), path.name


def test_project_has_every_file(project: dict[str, str]) -> None:
    path = next(key for key, files in STARTER_FILES.items() if files[0] in project)
    for name in (*COMMON_FILES, *STARTER_FILES[path], *SECTION_FILES.values()):
        assert name in project


def test_no_template_marker_left(project: dict[str, str]) -> None:
    for name, text in own_texts(project).items():
        assert "{{" not in text, name
        assert "{%" not in text, name
        assert MARKER.search(text) is None, name


def test_hostile_name_stays_in_title(project: dict[str, str]) -> None:
    escaped = markdown_inline(HOSTILE_NAME)
    assert "\\{\\{ x \\}\\}" in escaped
    for name, text in own_texts(project).items():
        lines = text.splitlines()
        assert not any(line.startswith("سطر") for line in lines), name
        titles = [line for line in lines if line.startswith("# ")]
        if name in SECTION_FILES.values():
            assert titles == [], name
            assert escaped in text, name
        else:
            assert len(titles) == 1, name
            assert escaped in titles[0], name


def test_tables_keep_their_columns(project: dict[str, str]) -> None:
    for name, text in own_texts(project).items():
        for table in tables(text):
            widths = {len(UNESCAPED_PIPE.findall(row)) for row in table}
            assert len(widths) == 1, (name, table)


def test_arabic_files_are_rtl(project: dict[str, str]) -> None:
    for name, text in own_texts(project).items():
        if not name.endswith(".ar.md") or name in SECTION_FILES.values():
            continue
        assert text.startswith(RTL_OPEN), name
        assert text.endswith(RTL_CLOSE), name
        assert len(ARABIC_LETTER.findall(text)) > 200, name


def test_sections_in_readme(project: dict[str, str]) -> None:
    english = project["README.section.md"].strip()
    arabic = project["README.section.ar.md"].strip()
    assert english.startswith("## ")
    assert ARABIC_LETTER.search(arabic.splitlines()[0])
    assert english in project["README.md"]
    assert arabic in project["README.ar.md"]
    assert arabic not in project["README.md"]


def test_readmes_link_each_other(project: dict[str, str]) -> None:
    english_top = project["README.md"].splitlines()[:4]
    arabic_top = project["README.ar.md"].splitlines()[:6]
    assert "[العربية](README.ar.md)" in english_top
    assert "[English](README.md)" in arabic_top
    for readme in ("README.md", "README.ar.md"):
        assert "rabt validate ." in project[readme]
        assert "rabt new --answers .rabt/answers.yaml --no-input --overwrite" in project[readme]


def test_readmes_explain_ci_package(project: dict[str, str]) -> None:
    for readme in ("README.md", "README.ar.md"):
        assert "`RABT_PACKAGE`" in project[readme], readme
        assert "`rabt==0.1.0`" in project[readme], readme
        assert "`git+https://...`" in project[readme], readme
        assert "`PIP_INDEX_URL`" in project[readme], readme
    assert "Rabt is not on the public PyPI" in flat(project["README.md"])
    assert "غير منشورة على PyPI العام" in flat(project["README.ar.md"])


def test_readmes_explain_regeneration(project: dict[str, str]) -> None:
    english = flat(project["README.md"])
    arabic = flat(project["README.ar.md"])
    assert "run this from inside the project folder" in english
    assert "keeps the folder itself and its `.git` folder" in english
    assert "`--overwrite` replaces only a folder that contains `.rabt/answers.yaml`" in english
    assert "من داخل مجلد المشروع" in arabic
    assert "يحتوي على الملف `.rabt/answers.yaml`" in arabic


def test_version_is_not_escaped(project: dict[str, str]) -> None:
    assert "Rabt 0.1.0 generated it" in flat(project["README.md"])
    assert "Rabt 0.1.0 wrote it" in flat(project["docs/decision.md"])
    assert "أداة Rabt 0.1.0 من الإجابات" in flat(project["README.ar.md"])
    assert "أداة Rabt 0.1.0 انطلاقًا" in flat(project["docs/decision.ar.md"])
    for name, text in own_texts(project).items():
        assert "0\\.1" not in text, name


def test_sections_split_present_from_planned(project: dict[str, str]) -> None:
    if "### Planned for this path" not in project["README.section.md"]:
        pytest.skip("this path's section lists no planned files: all of them are generated")
    english = project["README.section.md"]
    arabic = project["README.section.ar.md"]
    assert english.index("### In this project now") < english.index(
        "### Planned for this path (not in this project yet)")
    assert arabic.index("### الموجود في المشروع الآن") < arabic.index(
        "### مخطط لهذا المسار (غير موجود في المشروع بعد)")
    assert "What this path delivers" not in english


@pytest.mark.parametrize(("path", "crm", "planned"), [
    ("api", "custom", "Playbook timers for customer-database projects"),
])
def test_missing_files_listed_as_planned(cookies: Any, path: str, crm: str, planned: str
                                         ) -> None:
    texts = bake_project(cookies, make_context(path=path, recommended_path=path, crm=crm))
    section = texts["README.section.md"]
    assert section.index(planned) > section.index("### Planned for this path")


@pytest.mark.parametrize("crm", ["hubspot", "zoho"])
def test_api_section_plans_nothing_built(cookies: Any, crm: str) -> None:
    texts = bake_project(cookies, make_context(path="api", recommended_path="api", crm=crm,
                                               platform="shopify"))
    english = flat(texts["README.section.md"])
    arabic = flat(texts["README.section.ar.md"])
    assert "### Planned for this path" not in english
    assert "### مخطط لهذا المسار" not in arabic
    assert "Missed webhooks: a reconciliation job" in english
    assert "Playbook timers for the abandoned-cart" in english
    assert "الـ Webhooks الفائتة: مهمة مطابقة" in arabic
    assert "مؤقتات خطط التشغيل" in arabic


def test_zoho_api_docs_follow_crm(cookies: Any) -> None:
    context = make_context(path="api", recommended_path="api", crm="zoho", platform="shopify")
    context["labels"]["crm"] = {"en": "Zoho CRM", "ar": "Zoho CRM"}
    texts = bake_project(cookies, context)
    readme, readme_ar = flat(texts["README.md"]), flat(texts["README.ar.md"])
    deploy, deploy_ar = flat(texts["docs/deploy.md"]), flat(texts["docs/deploy.ar.md"])
    service, service_ar = flat(texts["service/README.md"]), flat(texts["service/README.ar.md"])

    assert "sandbox mode until ZOHO_REFRESH_TOKEN is set" in readme
    assert "sandbox mode until ZOHO_REFRESH_TOKEN is set" in readme_ar
    for english in (readme, deploy, service):
        assert "syncs to HubSpot only" not in english
        assert "stops at start" not in english
    assert "إلا مع HubSpot" not in readme_ar
    assert "إلا مع HubSpot" not in deploy_ar
    assert "the Zoho CRM client with batching, OAuth token refresh" in readme
    assert "وعميل Zoho CRM الذي يكتب على دفعات" in readme_ar

    assert "| `ZOHO_REFRESH_TOKEN` | always:" in deploy
    assert "| `HUBSPOT_ACCESS_TOKEN` | always:" not in deploy
    assert "| `ZOHO_REFRESH_TOKEN` | دائمًا:" in deploy_ar
    assert "Set `ZOHO_REFRESH_TOKEN` and the webhook secrets first" in deploy
    assert "with the flusher (`flusher`), which writes the worker's outbox to Zoho CRM" in deploy
    assert 'command: ["flusher"]' in texts["compose.yaml"]
    assert 'args: ["flusher"]' in texts["deploy/k8s/worker-deployment.yaml"]
    assert "ZOHO_REFRESH_TOKEN" in texts["deploy/k8s/configmap.yaml"]
    assert "HUBSPOT_ACCESS_TOKEN" not in texts["deploy/k8s/configmap.yaml"]

    assert "a local Zoho CRM stand-in" in service
    assert "reaches the Zoho CRM stand-in once" in service
    assert "In this project they run against the Zoho CRM stand-in" in service
    assert "(`src/storesync/zoho.py`, `zoho_flusher.py`, `flusher.py`)" in service
    assert "records Zoho CRM rejected" in service
    assert "the Zoho CRM stand-in alone" in service
    assert "local Shopify Admin API stand-in" in service
    assert "Zoho: delete to the recycle bin" in service
    assert "Consent from the store is written to the Zoho contact" in service
    zoho_secrets = "`ZOHO_CLIENT_ID`, `ZOHO_CLIENT_SECRET`, `ZOHO_REFRESH_TOKEN`"
    assert f"{zoho_secrets} in the environment" in service
    for phrase in ("HubSpot stand-in", "records HubSpot rejected", "HubSpot flusher",
                   "to HubSpot, and a second one waits", "nothing reaches HubSpot"):
        assert phrase not in service, phrase
    assert "بديل Zoho CRM مرة واحدة" in service_ar
    assert "بديل Zoho CRM المحلي وحده" in service_ar
    assert "وفي Zoho حذف إلى سلة المحذوفات" in service_ar
    assert "وتُكتب الموافقة الآتية من المتجر في جهة الاتصال في Zoho" in service_ar
    assert "بديل HubSpot" not in service_ar
    assert "ZOHO_REFRESH_TOKEN" in texts["service/.env.example"].split("# ---")[0]


def test_starter_docs_say_files_are_planned(cookies: Any) -> None:
    api = read_texts(bake(cookies, "api-service", make_context(path="api", recommended_path="api")))
    assert api["service/README.md"].index("bash scripts/run.sh") < api["service/README.md"].index(
        "## Sandbox mode")
    assert "## وضع التجربة (sandbox)" in api["service/README.ar.md"]
    ipaas = read_texts(bake(cookies, "ipaas", make_context(path="ipaas", recommended_path="ipaas")))
    assert "`make/*.blueprint.json`: one Make scenario blueprint per flow" in flat(
        ipaas["workflows/README.md"])
    assert "## Flows" in ipaas["workflows/README.md"]
    assert "مخطط (blueprint) لسيناريو Make لكل تدفق" in flat(ipaas["workflows/README.ar.md"])


@pytest.mark.parametrize(("platform", "crm"), [
    ("headless", "hubspot"), ("custom", "custom"), ("shopify", "zoho"),
])
def test_platform_label_reads_as_a_field(cookies: Any, platform: str, crm: str) -> None:
    labels = {
        "platform": {"headless": {"en": "Headless storefront (Next.js or similar)",
                                  "ar": "واجهة متجر مستقلة (Headless) مثل Next.js"},
                     "custom": {"en": "Custom-built store", "ar": "متجر مبني خصيصًا"},
                     "shopify": {"en": "Shopify", "ar": "Shopify"}}[platform],
        "crm": {"hubspot": {"en": "HubSpot", "ar": "HubSpot"},
                "zoho": {"en": "Zoho CRM", "ar": "Zoho CRM"},
                "custom": {"en": "Client's own database (PostgreSQL)",
                           "ar": "قاعدة بيانات العميل (PostgreSQL)"}}[crm],
    }
    context = make_context(platform=platform, crm=crm)
    context["labels"].update(labels)
    texts = bake_project(cookies, context)
    platform_en = markdown_inline(labels["platform"]["en"])
    platform_ar = markdown_inline(labels["platform"]["ar"])
    assert f"- **Store platform:** {platform_en}\n" in texts["README.md"]
    assert f"- **منصة المتجر:** {platform_ar}\n" in texts["README.ar.md"]
    for name, text in own_texts(texts).items():
        assert f"{platform_en} store" not in flat(text), name
        assert f"منصة {platform_ar}" not in flat(text), name
        assert f"to {markdown_inline(labels['crm']['en'])}" not in flat(text), name
    assert "online store of" in texts["README.section.md"]
    assert "الإلكتروني بنظام CRM" in flat(texts["README.section.ar.md"])


@pytest.mark.parametrize(("platform", "crm"), [("headless", "hubspot"), ("shopify", "custom")])
def test_missing_connector_lists_platform_and_crm(cookies: Any, platform: str, crm: str) -> None:
    texts = read_texts(bake(cookies, "connector", make_context(platform=platform, crm=crm)))
    english = texts["docs/connector-setup.md"]
    arabic = texts["docs/connector-setup.ar.md"]
    assert "**No packaged connector covers this store platform and CRM:**" in english
    assert "- Store platform: Shopify" in english
    assert "- CRM: HubSpot" in english
    assert "- منصة المتجر: Shopify" in arabic
    assert "- نظام CRM: HubSpot" in arabic


def test_outranked_rules_in_paths_not_chosen(cookies: Any) -> None:
    texts = bake_project(cookies, make_context())
    english = texts["docs/decision.md"]
    arabic = texts["docs/decision.ar.md"]
    rule = SAMPLE["outranked_rules"][0]
    assert (f"- {markdown_inline(rule['reason_en'])} (rule `woo_small`, outranked by rule "
            "`shopify_growth`)") in english
    assert (f"- {markdown_inline(rule['reason_ar'])} (القاعدة `woo_small`، وتتقدّم عليها "
            "القاعدة `shopify_growth`)") in arabic
    assert english.index("## Paths not chosen") < english.index("`woo_small`")
    assert markdown_inline(rule["reason_en"]) not in english.split("## Paths not chosen")[0]
    assert markdown_inline(rule["reason_en"]) not in texts["README.md"]
    without = bake_project(cookies, make_context(outranked_rules=[]))
    assert "woo_small" not in without["docs/decision.md"]
    assert "woo_small" not in without["docs/decision.ar.md"]


def test_rule_ids_only_in_code(project: dict[str, str]) -> None:
    ids = [rule["id"] for rule in (*SAMPLE["rules"], *SAMPLE["outranked_rules"])]
    for name, text in own_texts(project).items():
        for rule_id in ids:
            assert text.count(rule_id) == text.count(f"`{rule_id}`"), (name, rule_id)


# Terms a reviewer replaced, so that one project uses one Arabic word for each thing.
REPLACED_ARABIC_TERMS = ("مسار الربط", "تطبيق الربط", "خطط الأتمتة", "خطط أتمتة", "التشغيلات",
                         "قيم مؤقتة", "أهم 100", "مزامنة المنتجات الأولى")


def test_arabic_uses_agreed_terms(project: dict[str, str]) -> None:
    for name, text in project.items():
        for term in REPLACED_ARABIC_TERMS:
            assert term not in flat(text), (name, term)
    assert "أعلى 100 SKU مبيعًا" in project["README.ar.md"]
    assert "| أول مزامنة للمنتجات | أعلى 100 SKU مبيعًا،" in project["docs/decision.ar.md"]


def test_reasons_in_each_language(project: dict[str, str]) -> None:
    for rule in SAMPLE["rules"]:
        english = markdown_inline(rule["reason_en"])
        arabic = markdown_inline(rule["reason_ar"])
        assert english in project["docs/decision.md"]
        assert arabic in project["docs/decision.ar.md"]
        assert arabic not in project["docs/decision.md"]
        assert english not in project["docs/decision.ar.md"]


def test_readme_lists_top_three_reasons(cookies: Any) -> None:
    texts = bake_project(cookies, make_context())
    rules = SAMPLE["rules"]
    for rule in rules[:3]:
        assert markdown_inline(rule["reason_en"]) in texts["README.md"]
        assert markdown_inline(rule["reason_ar"]) in texts["README.ar.md"]
    assert markdown_inline(rules[3]["reason_en"]) not in texts["README.md"]
    assert markdown_inline(rules[3]["reason_ar"]) not in texts["README.ar.md"]


def test_override_shows_both_paths(cookies: Any) -> None:
    texts = bake_project(cookies, overridden_context())
    english = texts["docs/decision.md"]
    arabic = texts["docs/decision.ar.md"]
    assert "**Warning: this path differs from the recommendation.**" in english
    assert "| Path | **Custom API service** | iPaaS workflows |" in english
    assert "| Typical effort and cost (estimate) | api effort | ipaas effort |" in english
    assert "**تنبيه: هذا المسار يختلف عن المسار الموصى به.**" in arabic
    assert "| المسار | **خدمة API مخصصة** | منصة تكامل iPaaS |" in arabic
    assert "(set by override; the decision rules recommend iPaaS workflows)" in texts["README.md"]
    assert "توصي قواعد القرار بمسار منصة تكامل iPaaS" in texts["README.ar.md"]


def test_no_warning_without_override(cookies: Any) -> None:
    texts = bake_project(cookies, make_context())
    assert "Warning" not in texts["docs/decision.md"]
    assert "تنبيه" not in texts["docs/decision.ar.md"]
    assert "set by override" not in texts["README.md"]


def test_estimates_in_riyals(cookies: Any) -> None:
    texts = bake_project(cookies, make_context())
    english = texts["docs/decision.md"]
    arabic = texts["docs/decision.ar.md"]
    assert "## Effort and cost (estimates)" in english
    assert f"- **Estimated effort:** 10{EN_DASH}15 working days" in english
    assert f"- **Estimated set-up cost:** 15,000{EN_DASH}45,000 SAR" in english
    assert "- **Subscriptions:** Hosting from 150 SAR a month." in english
    assert "## الجهد والتكلفة (تقديرات)" in arabic
    assert "- **تكلفة الإعداد التقديرية:** من 15,000 إلى 45,000 ريال" in arabic
    assert "- **عدد أيام العمل التقديري:** من 10 إلى 15" in arabic


def test_equal_estimate_bounds_print_once(cookies: Any) -> None:
    estimate = {**SAMPLE["estimate"], "days_min": 5, "days_max": 5,
                "setup_sar_min": 3000, "setup_sar_max": 3000}
    texts = bake_project(cookies, make_context(estimate=estimate))
    assert "- **Estimated effort:** 5 working days" in texts["docs/decision.md"]
    assert "- **Estimated set-up cost:** 3,000 SAR" in texts["docs/decision.md"]
    assert "- **تكلفة الإعداد التقديرية:** 3,000 ريال" in texts["docs/decision.ar.md"]


def test_decision_lists_alternatives_and_notes(cookies: Any) -> None:
    texts = bake_project(cookies, make_context())
    english = texts["docs/decision.md"]
    arabic = texts["docs/decision.ar.md"]
    assert "- **iPaaS workflows:** Not needed for one store with standard fields." in english
    assert "- **خدمة API مخصصة:** لا يلزم ربط عميق بنظام ERP." in arabic
    assert "| **Ready connector** (chosen) | connector strengths |" in english
    assert "- HubSpot has no data centre in Saudi Arabia." in english
    assert "| Marketing channels | Meta \\| Google |" in english
    assert "| قنوات التسويق | Meta \\| Google |" in arabic


def test_product_limit_and_sync_mode(cookies: Any) -> None:
    limited = bake_project(cookies, make_context())
    assert "the top 100 SKUs only" in limited["README.md"]
    assert "| Contact sync | once a day |" in limited["docs/decision.md"]
    unlimited = bake_project(cookies,
                             make_context(product_sync_limit=None, contact_sync="realtime"))
    assert "SKUs only" not in unlimited["README.md"]
    assert "| First product sync | the whole catalogue |" in unlimited["docs/decision.md"]
    assert "| Contact sync | in real time, through webhooks |" in unlimited["docs/decision.md"]


def test_moved_start_is_explained(cookies: Any) -> None:
    moved = bake_project(cookies, make_context())
    assert "on 2027-03-14 (Sunday). The requested start, 2027-03-12" in moved["README.md"]
    assert "يوم الأحد 2027-03-14" in moved["README.ar.md"]
    checklist = {**SAMPLE["checklist"], "requested_start": "2027-03-14", "moved": False}
    kept = bake_project(cookies, make_context(checklist=checklist))
    assert "requested start" not in kept["README.md"]


@pytest.mark.parametrize(("platform", "crm", "english", "arabic"), [
    ("shopify", "hubspot", "**HubSpot's Shopify app, in its current \"data sync\" form**",
     "بصيغته الحالية \"مزامنة البيانات\" (data sync)"),
    ("shopify", "zoho", "**Zoho CRM's Shopify extension**", "**إضافة Shopify في Zoho CRM**"),
    ("woocommerce", "hubspot", "MakeWebBetter HubSpot for WooCommerce",
     "إضافة WordPress تربط WooCommerce بـ HubSpot"),
    ("woocommerce", "zoho", "links WooCommerce to Zoho CRM", "تربط WooCommerce بـ Zoho CRM"),
    ("headless", "hubspot", "**No packaged connector covers", "**لا يوجد موصل جاهز"),
    ("shopify", "custom", "**No packaged connector covers", "**لا يوجد موصل جاهز"),
])
def test_connector_named_per_platform(
    cookies: Any, platform: str, crm: str, english: str, arabic: str
) -> None:
    texts = read_texts(bake(cookies, "connector", make_context(platform=platform, crm=crm)))
    assert english in texts["docs/connector-setup.md"]
    assert arabic in texts["docs/connector-setup.ar.md"]


def test_connector_setup_permissions(cookies: Any) -> None:
    shopify = read_texts(bake(cookies, "connector", make_context()))
    assert "`read_all_orders`" in shopify["docs/connector-setup.md"]
    assert "`read_all_orders`" in shopify["docs/connector-setup.ar.md"]
    woo = read_texts(bake(cookies, "connector", make_context(platform="woocommerce", crm="zoho")))
    assert "read_all_orders" not in woo["docs/connector-setup.md"]
    assert "REST API keys" in woo["docs/connector-setup.md"]
    assert "(zoho.sa)" in woo["docs/connector-setup.md"]


def test_workflows_follow_modules(cookies: Any) -> None:
    # The credential table is built from the n8n set-up of the real project, so this
    # context comes from the pipeline, not from the template's defaults.
    answers, plan, _ = load_case("woo-startup", {"monthly_orders": 400})
    real = build_context(answers, plan, build_parts(answers, plan))
    slug = answers.project_slug
    full = read_texts(bake(cookies, "ipaas", real))["workflows/README.md"]
    # The flow rows come from generator.ipaas.flows, which tests/test_ipaas_flows.py covers.
    assert "| Customer to contact (`contact-sync`) |" in full
    assert f"| `{slug}-woocommerce` | WooCommerce API |" in full
    assert f"| `{slug}-zoho` | OAuth2 API (the generic one;" in full
    assert f"| `{slug}-alerts-smtp` | SMTP |" in full
    # The client sends no WhatsApp marketing, so no WhatsApp credential is listed.
    assert f"| `{slug}-whatsapp` |" not in full
    assert "WooCommerce does not retry" in full
    context = make_context(path="ipaas", recommended_path="ipaas", platform="woocommerce",
                           crm="zoho")
    context["modules"] = SAMPLE["modules"][:2]
    texts = read_texts(bake(cookies, "ipaas", context))
    # The credential table comes from the n8n set-up in the context, which this trimmed
    # context does not rebuild, so only the prose that follows the modules is checked.
    for name in ("workflows/README.md", "workflows/README.ar.md"):
        assert "playbooks.yaml" not in texts[name], name


# Store projects also receive storefront-shaped posts (tickets from the support inbox,
# and WooCommerce's cart events), so their services list two webhook endpoints.
@pytest.mark.parametrize(("platform", "endpoint", "check", "endpoints"), [
    ("shopify", "`POST /webhooks/shopify`", "`X-Shopify-Hmac-Sha256`", 2),
    ("woocommerce", "`POST /webhooks/woocommerce`", "`X-WC-Webhook-Signature`", 2),
    ("headless", "`POST /webhooks/storefront`", "Standard Webhooks", 1),
])
def test_service_endpoints_per_platform(
    cookies: Any, platform: str, endpoint: str, check: str, endpoints: int
) -> None:
    context = make_context(path="api", recommended_path="api", platform=platform)
    texts = read_texts(bake(cookies, "api-service", context))
    for name in ("service/README.md", "service/README.ar.md"):
        assert endpoint in texts[name], name
        assert check in texts[name], name
        assert "`GET /healthz`" in texts[name], name
        assert texts[name].count("`POST /webhooks/") == endpoints, name


def test_bad_amount_fails_bake(cookies: Any) -> None:
    context = make_context(estimate={**SAMPLE["estimate"], "setup_sar_min": "a lot"})
    result = cookies.bake(template=str(TEMPLATES / "common"), extra_context={"_rabt": context})
    assert result.exit_code != 0
    assert isinstance(result.exception, decimal.InvalidOperation)


def test_missing_label_fails_bake(cookies: Any) -> None:
    context = make_context(modules=[{"id": "contacts", "en": "Contacts"}])
    result = cookies.bake(template=str(TEMPLATES / "common"), extra_context={"_rabt": context})
    assert result.exit_code != 0
    assert "ar" in str(result.exception)
