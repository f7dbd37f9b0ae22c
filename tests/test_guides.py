"""The client guides docs/playbooks.md and docs/kpis.md, in English and Arabic.

Projects are baked through ``rabt new`` for a HubSpot, a Zoho and a custom-database
preset, and each guide is checked against the spec files written beside it.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from generator.cli import main
from generator.jinja_ext import markdown_inline

TEMPLATE_DOCS = (Path(__file__).resolve().parents[1] / "templates" / "common"
                 / "{{cookiecutter._rabt.project_slug}}" / "docs")
GUIDES = ("docs/playbooks.md", "docs/playbooks.ar.md", "docs/kpis.md", "docs/kpis.ar.md")
# name: (preset, extra --set items). The Zoho preset manages every consent channel, so
# a second Zoho project limits consent to email to show dropped steps.
PROJECTS: dict[str, tuple[str, tuple[str, ...]]] = {
    "hubspot": ("riyadh-perfume-hubspot", ()),
    "zoho": ("jeddah-fashion-zoho", ()),
    "zoho-email-only": ("jeddah-fashion-zoho", ("consent_channels=email", "project_slug=jf-email")),
    "custom": ("custom-erp", ()),
}
HOSTILE_NAME = 'Dar "Al Ward" {{ x }} | عطور'
RTL_OPEN = '<div dir="rtl">\n\n'
RTL_CLOSE = "\n\n</div>\n"


class Project:
    """A baked project: its guides as text and its spec files as data."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.text = {name: (root / name).read_text(encoding="utf-8")
                     for name in GUIDES if (root / name).is_file()}
        self.spec = {name: yaml.safe_load((root / f"integration/{name}.yaml").read_text("utf-8"))
                     for name in ("playbooks", "kpis", "segments")}

    def lines(self, name: str) -> list[str]:
        return self.text[name].splitlines()


def bake(out: Path, preset: str, *set_items: str) -> Path:
    args = ["new", "--no-input", "--preset", preset, "--output-dir", str(out)]
    for item in set_items:
        args += ["--set", item]
    result = CliRunner().invoke(main, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    folders = [path for path in out.iterdir() if path.is_dir() and not path.name.startswith(".")]
    assert len(folders) == 1, folders
    return folders[0]


@pytest.fixture(scope="module")
def projects(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Project]:
    baked = {}
    for name, (preset, set_items) in PROJECTS.items():
        baked[name] = Project(bake(tmp_path_factory.mktemp(name), preset, *set_items))
    return baked


@pytest.fixture(params=sorted(PROJECTS))
def project(request: pytest.FixtureRequest, projects: dict[str, Project]) -> Project:
    return projects[request.param]


def test_guides_exist(project: Project) -> None:
    for name in GUIDES:
        assert name in project.text, name
        assert project.text[name].strip(), name


def test_crms_differ(projects: dict[str, Project]) -> None:
    crms = {name: project.spec["kpis"]["crm"] for name, project in projects.items()}
    assert crms == {"hubspot": "hubspot", "zoho": "zoho", "zoho-email-only": "zoho",
                    "custom": "custom"}


def test_no_template_marker_left(project: Project) -> None:
    for name, text in project.text.items():
        assert "{{" not in text, name
        assert "{%" not in text, name


def test_arabic_guides_are_rtl(project: Project) -> None:
    for name in ("docs/playbooks.ar.md", "docs/kpis.ar.md"):
        assert project.text[name].startswith(RTL_OPEN), name
        assert project.text[name].endswith(RTL_CLOSE), name


def test_every_playbook_is_named(project: Project) -> None:
    for playbook in project.spec["playbooks"]["playbooks"]:
        for lang, name in (("en", "docs/playbooks.md"), ("ar", "docs/playbooks.ar.md")):
            heading = "## " + markdown_inline(playbook["name"][lang])
            assert heading in project.lines(name), (name, heading)


def test_every_kpi_is_named(project: Project) -> None:
    for kpi in project.spec["kpis"]["kpis"]:
        for lang, name in (("en", "docs/kpis.md"), ("ar", "docs/kpis.ar.md")):
            title = markdown_inline(kpi["name"][lang])
            headings = [line for line in project.lines(name) if line.startswith(f"### {title}")]
            assert len(headings) == 1, (name, title)


def test_primary_kpi_is_marked(project: Project) -> None:
    kpis = project.spec["kpis"]
    primary = next(kpi for kpi in kpis["kpis"] if kpi["key"] == kpis["primary_kpi"])
    for lang, name, mark in (("en", "docs/kpis.md", " (primary KPI)"),
                             ("ar", "docs/kpis.ar.md", " (المؤشر الرئيسي)")):
        marked = [line for line in project.lines(name) if line.startswith("### ")
                  and line.endswith(mark)]
        assert marked == ["### " + markdown_inline(primary["name"][lang]) + mark], name
        assert "**" + markdown_inline(primary["name"][lang]) + "**" in project.text[name], name


def test_dropped_steps_show_their_reason(project: Project) -> None:
    dropped = [step for playbook in project.spec["playbooks"]["playbooks"]
               for step in playbook["dropped_steps"]]
    for step in dropped:
        assert markdown_inline(step["reason"]["en"]) in project.text["docs/playbooks.md"]
        assert markdown_inline(step["reason"]["ar"]) in project.text["docs/playbooks.ar.md"]
    if not dropped:
        assert "No step was dropped for this store." in project.text["docs/playbooks.md"]
        assert "لم تُحذف أي خطوة لهذا المتجر." in project.text["docs/playbooks.ar.md"]


def test_dropped_steps_appear_in_each_crm(projects: dict[str, Project]) -> None:
    for name in ("hubspot", "zoho-email-only", "custom"):
        playbooks = projects[name].spec["playbooks"]["playbooks"]
        assert any(playbook["dropped_steps"] for playbook in playbooks), name
        assert "Steps dropped for this store:" in projects[name].text["docs/playbooks.md"]
        assert "الخطوات المحذوفة لهذا المتجر:" in projects[name].text["docs/playbooks.ar.md"]
    zoho = projects["zoho"].spec["playbooks"]["playbooks"]
    assert not any(playbook["dropped_steps"] for playbook in zoho)


def test_consent_per_step(projects: dict[str, Project]) -> None:
    text = projects["hubspot"].text["docs/playbooks.md"]
    arabic = projects["hubspot"].text["docs/playbooks.ar.md"]
    rows = [line for line in text.splitlines() if line.startswith("| 2 | WhatsApp |")]
    assert rows
    assert all("WhatsApp marketing consent" in row for row in rows)
    assert "approved WhatsApp template (MARKETING)" in text
    assert "موافقة تسويقية على واتساب" in arabic
    service = [line for line in text.splitlines() if "a service reply" in line]
    assert service


def test_rules_for_every_playbook(project: Project) -> None:
    document = project.spec["playbooks"]
    english = project.text["docs/playbooks.md"]
    arabic = project.text["docs/playbooks.ar.md"]
    assert markdown_inline(document["whatsapp"]["rule"]["en"]) in english
    assert markdown_inline(document["whatsapp"]["rule"]["ar"]) in arabic
    assert markdown_inline(document["discount"]["rule"]["en"]) in english
    assert markdown_inline(document["discount"]["rule"]["ar"]) in arabic
    assert f"{document['discount']['percent']}% off" in english
    assert "works once" in english
    assert "Quiet hours (Asia/Riyadh):** every day from 22:00 to 09:00" in english
    assert "كل يوم من 22:00 إلى 09:00" in arabic


def test_timing_in_both_languages(projects: dict[str, Project]) -> None:
    english = projects["hubspot"].text["docs/playbooks.md"]
    arabic = projects["hubspot"].text["docs/playbooks.ar.md"]
    assert "| First step | after 2 hours (adjustable from 1 to 4 hours) |" in english
    assert "| أول خطوة | بعد ساعتين (يمكن ضبطها بين 1 و4 ساعات) |" in arabic
    assert "| First step | after 45 days (adjustable from 45 to 60 days) |" in english
    assert "| أول خطوة | بعد 45 يومًا (يمكن ضبطها بين 45 و60 يومًا) |" in arabic
    assert "| أول خطوة | بعد 7 أيام |" in arabic


def test_kpi_guide_shows_vip_threshold(project: Project) -> None:
    vip = project.spec["segments"]["vip_threshold"]
    english = project.text["docs/kpis.md"]
    arabic = project.text["docs/kpis.ar.md"]
    assert f"**{vip['threshold_sar']:,} SAR**" in english
    assert f"below {vip['exit_threshold_sar']:,} SAR" in english
    assert f"**{vip['threshold_sar']:,} ريال**" in arabic
    for segment in project.spec["segments"]["segments"]:
        assert markdown_inline(segment["name"]["en"]) in english
        assert markdown_inline(segment["name"]["ar"]) in arabic


def test_kpi_inputs_and_formula(projects: dict[str, Project]) -> None:
    english = projects["custom"].text["docs/kpis.md"]
    arabic = projects["custom"].text["docs/kpis.ar.md"]
    assert "Ad platforms' billing (entered by the client every month):" in english
    # The merchant enters it; «العميل» in these guides is the buyer.
    assert "فواتير منصات الإعلان (يُدخلها التاجر كل شهر):" in arabic
    assert "**Formula:** processed\\_ok / (received - duplicates)" in english
    assert "- **Unit:** SAR; lower is better" in english


def test_discount_validity_per_playbook(projects: dict[str, Project]) -> None:
    # The Zoho preset manages every consent channel, so win-back keeps all three steps.
    english = projects["zoho"].text["docs/playbooks.md"]
    arabic = projects["zoho"].text["docs/playbooks.ar.md"]
    win_back = next(playbook for playbook in projects["zoho"].spec["playbooks"]["playbooks"]
                    if playbook["key"] == "win_back")
    assert win_back["discount_code"]["expires_after_hours"] == 17 * 24
    assert "valid for 17 days from then, which covers step 3" in english
    assert "ويبقى صالحًا مدة 17 يومًا من إرساله، فيشمل الخطوة 3" in arabic
    # The step table no longer repeats what the message text already says.
    assert "Includes a single-use discount code." not in english
    assert "تتضمن رمز خصم لمرة واحدة." not in arabic


def test_guide_wording(project: Project) -> None:
    arabic = project.text["docs/playbooks.ar.md"] + project.text["docs/kpis.ar.md"]
    for wrong in ("القناة phone", "القناة sms", "القناة email", "القناة whatsapp",
                  "إحدى قنوات بديلة", "بتوقيت Asia/Riyadh", "شهر الدفعة", "يُدخلها العميل"):
        assert wrong not in arabic, wrong
    assert "بتوقيت الرياض" in arabic
    for name, text in project.text.items():
        for line in text.splitlines():
            prose = line.replace("**", "")
            assert "Dropped:" not in prose, (name, line)
            assert "حُذفت:" not in prose, (name, line)
            assert "off: Off" not in prose, (name, line)


def test_arabic_lists_use_waw(projects: dict[str, Project]) -> None:
    arabic = projects["zoho"].text["docs/playbooks.ar.md"]
    assert "البريد الإلكتروني، والرسائل النصية (SMS)، وواتساب" in arabic


def test_primary_kpi_is_not_a_fragment(project: Project) -> None:
    kpis = project.spec["kpis"]
    primary = next(kpi for kpi in kpis["kpis"] if kpi["key"] == kpis["primary_kpi"])
    english = project.text["docs/kpis.md"]
    arabic = project.text["docs/kpis.ar.md"]
    name_en = markdown_inline(primary["name"]["en"])
    name_ar = markdown_inline(primary["name"]["ar"])
    assert f"**{name_en}**, defined as follows.\n\n> " in english
    assert f"**{name_ar}**، وتعريفه كما يلي.\n\n> " in arabic


def test_arabic_formulas_are_explained(project: Project) -> None:
    arabic = project.text["docs/kpis.ar.md"]
    for kpi in project.spec["kpis"]["kpis"]:
        assert markdown_inline(kpi["formula_text"]["ar"]) in arabic, kpi["key"]


def test_response_time_kpi_off_without_support(tmp_path: Path) -> None:
    root = bake(tmp_path, "woo-startup")
    kpis = yaml.safe_load((root / "integration/kpis.yaml").read_text("utf-8"))
    kpi = next(item for item in kpis["kpis"] if item["key"] == "avg_response_time")
    assert kpi["enabled"] is False
    assert markdown_inline(kpi["disabled_reason"]["en"]) in (
        root / "docs/kpis.md").read_text("utf-8")
    assert markdown_inline(kpi["disabled_reason"]["ar"]) in (
        root / "docs/kpis.ar.md").read_text("utf-8")


def test_readmes_list_the_guides(project: Project) -> None:
    readme = (project.root / "README.md").read_text(encoding="utf-8")
    readme_ar = (project.root / "README.ar.md").read_text(encoding="utf-8")
    assert "| `docs/playbooks.md`, `docs/playbooks.ar.md` |" in readme
    assert "| `docs/kpis.md`, `docs/kpis.ar.md` |" in readme
    assert "| `docs/playbooks.ar.md`، `docs/playbooks.md` |" in readme_ar
    assert "| `docs/kpis.ar.md`، `docs/kpis.md` |" in readme_ar


def test_hostile_client_name_is_escaped(tmp_path: Path) -> None:
    root = bake(tmp_path, "riyadh-perfume-hubspot", f"client_name={HOSTILE_NAME}",
                "project_slug=hostile")
    escaped = markdown_inline(HOSTILE_NAME)
    for name in GUIDES:
        text = (root / name).read_text(encoding="utf-8")
        titles = [line for line in text.splitlines() if line.startswith("# ")]
        assert len(titles) == 1, name
        assert escaped in titles[0], name
        assert "{{ x }}" not in text, name


@pytest.mark.parametrize("name", ["playbooks.ar.md", "kpis.ar.md"])
def test_arabic_templates_start_ascii(name: str) -> None:
    # cookiecutter copies a template it takes for binary without rendering it.
    assert (TEMPLATE_DOCS / name).read_bytes()[:512].isascii()


def test_single_use_claim_per_path(projects: dict[str, Project]) -> None:
    # Only the iPaaS workflows create codes with a usage limit of 1; other paths
    # must not promise that a code works once.
    ipaas = flat_text(projects["zoho"].text["docs/playbooks.md"])
    assert ("works once, because the workflows create it in the store with a usage limit of 1"
            in ipaas)
    for name in ("hubspot", "custom"):
        text = flat_text(projects[name].text["docs/playbooks.md"])
        assert "works once only if it is created in the store with a usage limit of 1" in text
        assert "this project does not create the codes itself" in text
        arabic = flat_text(projects[name].text["docs/playbooks.ar.md"])
        assert "لأن هذا المشروع لا يُنشئ الرموز بنفسه" in arabic


def test_connector_vip_leaves_at_entry_bar(projects: dict[str, Project]) -> None:
    # A CRM list or view keeps no memory of its members, so on the connector path
    # a contact leaves VIP at the entry bar, as docs/connector-setup.md states.
    connector = projects["hubspot"]
    threshold = f"{connector.spec['segments']['vip_threshold']['threshold_sar']:,}"
    text = flat_text(connector.text["docs/kpis.md"])
    assert (f"On this connector project the VIP list cannot remember who was a member, so a "
            f"contact leaves it as soon as the value falls below {threshold} SAR") in text
    assert "تحتفظ القائمة بأعضائها السابقين" in connector.text["docs/kpis.ar.md"]
    for name in ("zoho", "custom"):
        assert "On this connector project" not in projects[name].text["docs/kpis.md"]


def flat_text(text: str) -> str:
    return " ".join(text.split())
