"""Tests of the questionnaire logic, with the terminal replaced by a scripted prompter."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import pytest
from prompt_toolkit.input import create_pipe_input
from prompt_toolkit.output import DummyOutput

from generator.answers import (
    NULL_CHOICE,
    AnswerSources,
    answer_keys,
    question_text,
    resolve_answers,
)
from generator.model import Lang
from generator.questionnaire import Option, QuestionaryPrompter, Validator, ask_missing

FRIDAY = dt.date(2027, 1, 8)
DOWN = "\x1b[B"
ENTER = "\r"


@dataclass
class Call:
    """One question as the fake prompter received it."""

    key: str
    kind: str
    message: str
    default: Any
    hint: str
    options: list[Option] = field(default_factory=list)
    rejected: list[tuple[str, str]] = field(default_factory=list)


class FakePrompter:
    """Return scripted replies per answer key, or the offered default when none is left.

    A None reply stands for Ctrl-C. Text replies go through ``validate`` as
    questionary does: a rejected reply is recorded and the next reply is used.
    """

    def __init__(
        self, replies: dict[str, list[Any]] | None = None, lang: Lang = "en",
        *, validates: bool = True,
    ) -> None:
        self.replies = {key: list(queue) for key, queue in (replies or {}).items()}
        self.calls: list[Call] = []
        self.validates = validates
        self._keys = {question_text(key)["label"][lang]: key for key in answer_keys()}

    @property
    def keys(self) -> list[str]:
        return [call.key for call in self.calls]

    def call(self, key: str) -> Call:
        matching = [call for call in self.calls if call.key == key]
        assert len(matching) == 1, f"{key} asked {len(matching)} times"
        return matching[0]

    def _record(self, kind: str, message: str, default: Any, hint: str,
                options: Sequence[Option] = ()) -> Call:
        call = Call(self._keys[message], kind, message, default, hint, list(options))
        self.calls.append(call)
        return call

    def _reply(self, call: Call) -> Any:
        queue = self.replies.get(call.key)
        return queue.pop(0) if queue else call.default

    def select(self, message: str, options: Sequence[Option], *, default: str,
               hint: str) -> str | None:
        reply: str | None = self._reply(self._record("select", message, default, hint, options))
        return reply

    def checkbox(self, message: str, options: Sequence[Option], *, default: Sequence[str],
                 hint: str) -> list[str] | None:
        call = self._record("checkbox", message, list(default), hint, options)
        reply: list[str] | None = self._reply(call)
        return reply

    def confirm(self, message: str, *, default: bool, hint: str) -> bool | None:
        reply: bool | None = self._reply(self._record("confirm", message, default, hint))
        return reply

    def text(self, message: str, *, default: str, hint: str,
             validate: Validator) -> str | None:
        call = self._record("text", message, default, hint)
        while True:
            reply: str | None = self._reply(call)
            if reply is None or not self.validates:
                return reply
            problem = validate(reply)
            if problem is None:
                return reply
            call.rejected.append((reply, problem))
            if not self.replies.get(call.key):
                pytest.fail(f"{call.key} re-asked after {reply!r} but no reply is left")


def run(values: dict[str, Any], replies: dict[str, list[Any]] | None = None,
        lang: Lang = "en") -> tuple[dict[str, Any], FakePrompter]:
    prompter = FakePrompter(replies, lang)
    return ask_missing(values, lang, today=FRIDAY, prompter=prompter), prompter


# ---------------------------------------------------------------------------
# Which questions are asked


def test_order_follows_schema() -> None:
    _, prompter = run({"client_name": "Test Store"})

    assert prompter.keys == [
        "project_slug", "platform", "monthly_orders", "store_count", "growth", "sku_count",
        "crm", "erp_bi", "support_channels", "support_agents", "marketing_channels",
        "consent_channels", "goal", "start_date", "path",
    ]


def test_client_name_asked_first_when_missing() -> None:
    result, prompter = run({}, {"client_name": ["Test Store"]})

    assert prompter.keys[0] == "client_name"
    assert prompter.call("client_name").default == ""
    assert result["client_name"] == "Test Store"


def test_given_keys_never_asked() -> None:
    supplied = {"client_name": "Test Store", "platform": "custom", "crm": "zoho",
             "monthly_orders": 90, "start_date": "2027-02-01"}

    result, prompter = run(supplied)

    for key in supplied:
        assert key not in prompter.keys
        assert key not in result


def test_nothing_asked_when_all_given() -> None:
    supplied = {key: None for key in answer_keys()}

    result, prompter = run(supplied)

    assert result == {}
    assert prompter.calls == []


def test_advanced_keys_never_asked() -> None:
    result, prompter = run({"client_name": "Test Store"})

    assert "eid_al_fitr_days" not in prompter.keys
    assert "eid_al_adha_days" not in prompter.keys
    assert "eid_al_fitr_days" not in result


def test_team_focus_asked_when_crm_undecided() -> None:
    result, prompter = run({"client_name": "Test Store"},
                           {"crm": ["undecided"], "team_focus": ["sales_support"]})

    assert prompter.keys.index("team_focus") == prompter.keys.index("crm") + 1
    assert result["team_focus"] == "sales_support"


def test_team_focus_skipped_when_crm_chosen() -> None:
    result, prompter = run({"client_name": "Test Store"}, {"crm": ["zoho"]})

    assert "team_focus" not in prompter.keys
    assert "team_focus" not in result


def test_team_focus_asked_when_given_crm_undecided() -> None:
    _, prompter = run({"client_name": "Test Store", "crm": "undecided"})

    assert "team_focus" in prompter.keys


def test_deep_erp_link_asked_when_erp_named() -> None:
    result, prompter = run({"client_name": "Test Store"},
                           {"erp_bi": [["odoo", "power_bi"]], "deep_erp_link": [True]})

    assert prompter.keys.index("deep_erp_link") == prompter.keys.index("erp_bi") + 1
    assert result["erp_bi"] == ["odoo", "power_bi"]
    assert result["deep_erp_link"] is True


def test_deep_erp_link_skipped_without_erp() -> None:
    result, prompter = run({"client_name": "Test Store"}, {"erp_bi": [[]]})

    assert "deep_erp_link" not in prompter.keys
    assert result["erp_bi"] == []


# ---------------------------------------------------------------------------
# Defaults offered


def test_enum_default_preselected_and_named() -> None:
    _, prompter = run({"client_name": "Test Store"})
    platform = prompter.call("platform")

    assert platform.kind == "select"
    assert platform.default == "shopify"
    assert "default: Shopify" in platform.hint
    assert prompter.call("crm").default == "hubspot"
    assert prompter.call("goal").default == "repeat_purchase"


def test_list_defaults_preticked() -> None:
    _, prompter = run({"client_name": "Test Store"})

    assert prompter.call("support_channels").kind == "checkbox"
    assert prompter.call("support_channels").default == ["email"]
    assert prompter.call("marketing_channels").default == ["meta", "google"]
    assert prompter.call("consent_channels").default == ["email", "whatsapp"]
    assert prompter.call("erp_bi").default == []


def test_boolean_default_offered() -> None:
    _, prompter = run({"client_name": "Test Store"}, {"erp_bi": [["sap_b1"]]})
    deep = prompter.call("deep_erp_link")

    assert deep.kind == "confirm"
    assert deep.default is False
    assert "Enter for the default: no" in deep.hint


def test_integer_defaults_offered_as_text() -> None:
    _, prompter = run({"client_name": "Test Store"})

    assert prompter.call("monthly_orders").default == "500"
    assert prompter.call("store_count").default == "1"
    assert prompter.call("sku_count").default == "0"
    assert prompter.call("support_agents").default == "2"


def test_accepted_defaults_typed() -> None:
    result, _ = run({"client_name": "Test Store"})

    assert result == {
        "project_slug": "test-store", "platform": "shopify", "monthly_orders": 500,
        "store_count": 1, "growth": "steady", "sku_count": 0, "crm": "hubspot",
        "erp_bi": [], "support_channels": ["email"], "support_agents": 2,
        "marketing_channels": ["meta", "google"], "consent_channels": ["email", "whatsapp"],
        "goal": "repeat_purchase", "start_date": "2027-01-10", "path": None,
    }


def test_start_date_default_next_working_day() -> None:
    _, prompter = run({"client_name": "Test Store"})

    # 8 January 2027 is a Friday, and the Saudi working week starts again on Sunday the 10th.
    assert prompter.call("start_date").default == "2027-01-10"


def test_start_date_default_today_on_working_day() -> None:
    prompter = FakePrompter()
    ask_missing({"client_name": "Test Store"}, today=dt.date(2027, 1, 12), prompter=prompter)

    assert prompter.call("start_date").default == "2027-01-12"


def test_slug_default_from_given_client_name() -> None:
    _, prompter = run({"client_name": "Riyadh Perfume Co."})

    assert prompter.call("project_slug").default == "riyadh-perfume-co"


def test_slug_default_from_asked_client_name() -> None:
    result, prompter = run({}, {"client_name": ["Oud & Musk"]})

    assert prompter.call("project_slug").default == "oud-musk"
    assert result["client_name"] == "Oud & Musk"
    assert result["project_slug"] == "oud-musk"


def test_empty_slug_means_derived() -> None:
    result, _ = run({"client_name": "Test Store"}, {"project_slug": [""]})

    assert result["project_slug"] == "test-store"


def test_slug_required_when_underivable() -> None:
    result, prompter = run({"client_name": "١٢٣"}, {"project_slug": ["", "store-123"]})
    slug = prompter.call("project_slug")

    assert slug.default == ""
    assert [typed for typed, _ in slug.rejected] == [""]
    assert "project slug" in slug.rejected[0][1]
    assert result["project_slug"] == "store-123"


def test_typed_slug_kept() -> None:
    result, _ = run({"client_name": "Test Store"}, {"project_slug": ["ts-main"]})

    assert result["project_slug"] == "ts-main"


# ---------------------------------------------------------------------------
# Invalid answers


def test_invalid_integer_reasked() -> None:
    result, prompter = run({"client_name": "Test Store"}, {"monthly_orders": ["abc", "1200"]})
    orders = prompter.call("monthly_orders")

    assert [typed for typed, _ in orders.rejected] == ["abc"]
    assert "expected a whole number" in orders.rejected[0][1]
    assert result["monthly_orders"] == 1200


def test_out_of_range_integer_reasked() -> None:
    result, prompter = run({"client_name": "Test Store"},
                           {"store_count": ["0", "1001", "3"]})
    stores = prompter.call("store_count")

    assert [typed for typed, _ in stores.rejected] == ["0", "1001"]
    assert "below the minimum of 1" in stores.rejected[0][1]
    assert "above the maximum of 1000" in stores.rejected[1][1]
    assert result["store_count"] == 3


def test_fractional_integer_reasked() -> None:
    result, prompter = run({"client_name": "Test Store"}, {"support_agents": ["2.5", "3"]})

    assert [typed for typed, _ in prompter.call("support_agents").rejected] == ["2.5"]
    assert result["support_agents"] == 3


def test_empty_integer_reasked() -> None:
    result, prompter = run({"client_name": "Test Store"}, {"sku_count": ["", "40"]})

    assert [typed for typed, _ in prompter.call("sku_count").rejected] == [""]
    assert result["sku_count"] == 40


@pytest.mark.parametrize(
    ("typed", "expected"),
    [("١٢٠٠", 1200), ("1,200", 1200), ("١٬٢٠٠", 1200), (" 75 ", 75), ("1_000", 1000)],  # noqa: RUF001
    ids=["arabic-indic", "comma", "arabic-separator", "spaces", "underscore"],
)
def test_integer_forms_accepted(typed: str, expected: int) -> None:
    result, prompter = run({"client_name": "Test Store"}, {"monthly_orders": [typed]})

    assert prompter.call("monthly_orders").rejected == []
    assert result["monthly_orders"] == expected


def test_invalid_date_reasked() -> None:
    result, prompter = run({"client_name": "Test Store"},
                           {"start_date": ["2027-02-30", "next week", "2027-03-01"]})
    start = prompter.call("start_date")

    assert [typed for typed, _ in start.rejected] == ["2027-02-30", "next week"]
    assert "YYYY-MM-DD" in start.rejected[0][1]
    assert result["start_date"] == "2027-03-01"


def test_blank_client_name_reasked() -> None:
    result, prompter = run({}, {"client_name": ["   ", "متجر الورد"]})

    assert [typed for typed, _ in prompter.call("client_name").rejected] == ["   "]
    assert result["client_name"] == "متجر الورد"


def test_invalid_slug_reasked() -> None:
    result, prompter = run({"client_name": "Test Store"},
                           {"project_slug": ["Test Store", "9lives", "test-store-2"]})

    assert [typed for typed, _ in prompter.call("project_slug").rejected] == [
        "Test Store", "9lives"]
    assert result["project_slug"] == "test-store-2"


def test_unvalidated_answer_reasked(capsys: pytest.CaptureFixture[str]) -> None:
    prompter = FakePrompter({"monthly_orders": ["abc", "70"]}, validates=False)

    result = ask_missing({"client_name": "Test Store"}, today=FRIDAY, prompter=prompter)

    assert result["monthly_orders"] == 70
    assert [call.key for call in prompter.calls].count("monthly_orders") == 2
    assert "'abc' is text, expected a whole number" in capsys.readouterr().err


def test_unknown_choice_reasked(capsys: pytest.CaptureFixture[str]) -> None:
    prompter = FakePrompter({"platform": ["magento", "custom"]})

    result = ask_missing({"client_name": "Test Store"}, today=FRIDAY, prompter=prompter)

    assert result["platform"] == "custom"
    assert "'magento' is not an allowed value" in capsys.readouterr().err


# ---------------------------------------------------------------------------
# Null choices, cancelling, language


def test_path_offers_no_override_first() -> None:
    result, prompter = run({"client_name": "Test Store"})
    path = prompter.call("path")

    assert path.options[0] == Option(NULL_CHOICE, "No, use the recommendation")
    assert [option.value for option in path.options[1:]] == ["connector", "ipaas", "api"]
    assert path.default == NULL_CHOICE
    assert result["path"] is None


def test_path_override_chosen() -> None:
    result, _ = run({"client_name": "Test Store"}, {"path": ["api"]})

    assert result["path"] == "api"


def test_team_focus_offers_no_null() -> None:
    _, prompter = run({"client_name": "Test Store", "crm": "undecided"})
    focus = prompter.call("team_focus")

    assert [option.value for option in focus.options] == ["marketing", "sales_support"]
    assert focus.default == "marketing"


@pytest.mark.parametrize("key", ["client_name", "platform", "erp_bi", "deep_erp_link"])
def test_cancel_raises_keyboard_interrupt(key: str) -> None:
    values: dict[str, Any] = {} if key == "client_name" else {"client_name": "Test Store"}
    replies: dict[str, list[Any]] = {key: [None]}
    if key == "deep_erp_link":
        replies["erp_bi"] = [["odoo"]]

    with pytest.raises(KeyboardInterrupt):
        run(values, replies)


def test_arabic_labels_and_help() -> None:
    result, prompter = run({"client_name": "متجر الورد", "crm": "undecided"},
                           {"erp_bi": [["odoo"]]}, lang="ar")
    platform = prompter.call("platform")

    assert platform.message == "منصة المتجر"
    assert platform.hint.startswith("المنصة التي تُسجَّل فيها الطلبات.")
    assert "الافتراضي: Shopify" in platform.hint
    assert [option.label for option in prompter.call("team_focus").options] == [
        "حملات تسويقية متعددة القنوات", "مبيعات هاتفية ودعم العملاء"]
    assert prompter.call("path").options[0].label == "لا، اعتمد التوصية"
    assert prompter.call("support_channels").options[0].label == "واتساب"
    assert "للإجابة الافتراضية: لا" in prompter.call("deep_erp_link").hint
    assert prompter.call("project_slug").default == "matjar-al-wrd"
    assert result["project_slug"] == "matjar-al-wrd"


def test_arabic_problem_text() -> None:
    _, prompter = run({"client_name": "Test Store"},
                      {"monthly_orders": ["abc", "10"]}, lang="ar")

    problem = prompter.call("monthly_orders").rejected[0][1]
    assert "عدد صحيح" in problem


def test_answers_resolve_after_merge() -> None:
    values = {"client_name": "Test Store"}
    asked, _ = run(values, {"crm": ["undecided"], "erp_bi": [["metabase"]],
                            "deep_erp_link": [True], "path": ["ipaas"]})
    sources = AnswerSources()
    sources.add("--set", values)
    sources.add("questionnaire", asked)

    answers = resolve_answers(sources, today=FRIDAY)

    assert answers.project_slug == "test-store"
    assert answers.team_focus == "marketing"
    assert answers.deep_erp_link is True
    assert answers.path == "ipaas"
    assert answers.start_date == dt.date(2027, 1, 10)


# ---------------------------------------------------------------------------
# The questionary prompter, driven through a pipe


def answer_through_pipe(keys: str, ask: Callable[[QuestionaryPrompter], Any]) -> Any:
    """Type ``keys`` into a real questionary prompt and return what ``ask`` returns."""
    with create_pipe_input() as pipe:
        pipe.send_text(keys)
        return ask(QuestionaryPrompter(input=pipe, output=DummyOutput()))


LETTERS = [Option("a", "A"), Option("b", "B"), Option("c", "C")]


def test_questionary_select_moves_from_default() -> None:
    chosen = answer_through_pipe(
        DOWN + ENTER, lambda prompter: prompter.select("Pick", LETTERS, default="b", hint="h"))

    assert chosen == "c"


def test_questionary_checkbox_keeps_defaults() -> None:
    ticked = answer_through_pipe(
        " " + ENTER, lambda prompter: prompter.checkbox("Pick", LETTERS, default=["b"], hint="h"))

    assert ticked == ["a", "b"]


def test_questionary_confirm_default() -> None:
    answer = answer_through_pipe(
        ENTER, lambda prompter: prompter.confirm("Sure?", default=False, hint="h"))

    assert answer is False


def test_questionary_confirm_yes() -> None:
    answer = answer_through_pipe(
        "y", lambda prompter: prompter.confirm("Sure?", default=False, hint="h"))

    assert answer is True


def test_questionary_text_reasks_invalid() -> None:
    seen: list[str] = []

    def digits_only(typed: str) -> str | None:
        seen.append(typed)
        return None if typed.isdigit() else "digits only"

    entered = answer_through_pipe(
        "abc" + ENTER + "\x15" + "42" + ENTER,
        lambda prompter: prompter.text("Count", default="", hint="h", validate=digits_only))

    assert entered == "42"
    assert seen[0] == "abc"
    assert seen[-1] == "42"


def test_questionary_text_default_kept() -> None:
    entered = answer_through_pipe(
        ENTER, lambda prompter: prompter.text("Count", default="500", hint="h",
                                              validate=lambda _: None))

    assert entered == "500"


@pytest.mark.parametrize("keys", ["\x03", "\x04"], ids=["ctrl-c", "ctrl-d"])
def test_questionary_text_cancel(keys: str) -> None:
    with pytest.raises(KeyboardInterrupt):
        answer_through_pipe(
            keys, lambda prompter: prompter.text("Count", default="", hint="h",
                                                 validate=lambda _: None))


def test_questionary_select_cancel() -> None:
    with pytest.raises(KeyboardInterrupt):
        answer_through_pipe(
            "\x03", lambda prompter: prompter.select("Pick", LETTERS, default="a", hint="h"))
