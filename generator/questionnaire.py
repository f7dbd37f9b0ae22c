"""Ask, in a terminal, the answers that no preset, answers file or ``--set`` value gave.

Questions come in the schema's ``x-order``. After every answer the list of missing
questions is computed again, because some questions apply only after an earlier
answer (``team_focus`` only for an undecided CRM, ``deep_erp_link`` only when an
ERP or BI system is named). Labels, help lines and choice labels come from
``data/questions.yaml`` in English or Arabic.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import click
import questionary

from generator.answers import (
    NULL_CHOICE,
    answer_schema,
    check_one,
    derive_slug,
    missing_questions,
    next_working_day,
    question_text,
)
from generator.model import Bilingual, Lang

__all__ = ["Option", "Prompter", "QuestionaryPrompter", "Validator", "ask_missing"]

Validator = Callable[[str], str | None]
"""A check of typed text that returns the problem to show under the prompt, or None."""

# Key hints shown after each help line. Key names (Enter, Space, y, n) stay in
# Latin script in the Arabic hints because they are printed on the keys.
_SELECT_HINT = Bilingual(
    en="(default: {default}. Arrow keys move, Enter chooses)",
    ar="(الافتراضي: {default}. تنقّل بالأسهم واضغط Enter للاختيار)",
)
_CHECKBOX_HINT = Bilingual(
    en="(Space ticks or unticks, Enter confirms)",
    ar="(اضغط مفتاح المسافة لتحديد الخيار أو إلغائه، وEnter للتأكيد)",
)
# NOTE: questionary's confirm accepts only the Latin keys y and n. Someone typing
# on an Arabic keyboard layout has to switch layouts or press Enter for the default.
_CONFIRM_HINT = Bilingual(
    en="(y/n, Enter for the default: {default})",
    ar="(y للموافقة أو n للرفض، وEnter للإجابة الافتراضية: {default})",
)
_YES_NO = {True: Bilingual(en="yes", ar="نعم"), False: Bilingual(en="no", ar="لا")}

# Thousands separators people type in counts: the Latin comma and the Arabic one (U+066C).
_THOUSANDS_SEPARATORS = (",", "\u066c")


@dataclass(frozen=True)
class Option:
    """One entry of a select or checkbox list: the value stored and the label shown."""

    value: str
    label: str


class Prompter(Protocol):
    """The four kinds of prompt the questionnaire needs.

    Every method returns None when the person cancels (Ctrl-C or Ctrl-D).
    """

    def select(
        self, message: str, options: Sequence[Option], *, default: str, hint: str
    ) -> str | None:
        """Offer ``options`` with ``default`` pre-selected and return the chosen value."""
        ...

    def checkbox(
        self, message: str, options: Sequence[Option], *, default: Sequence[str], hint: str
    ) -> list[str] | None:
        """Offer ``options`` with the ``default`` values ticked and return the ticked values."""
        ...

    def confirm(self, message: str, *, default: bool, hint: str) -> bool | None:
        """Ask a yes-or-no question and return the answer."""
        ...

    def text(
        self, message: str, *, default: str, hint: str, validate: Validator
    ) -> str | None:
        """Ask for text, showing ``default`` as the initial value.

        The prompt shows the problem that ``validate`` returns and asks again
        until ``validate`` returns None.
        """
        ...


class QuestionaryPrompter:
    """The ``Prompter`` used in a real terminal, built on questionary.

    Args:
        **prompt_options: Passed to every questionary prompt, for example ``input``
            and ``output`` from prompt_toolkit so tests can drive it through a pipe.
    """

    def __init__(self, **prompt_options: Any) -> None:
        self._options = prompt_options

    def select(
        self, message: str, options: Sequence[Option], *, default: str, hint: str
    ) -> str | None:
        """Show an arrow-key list with ``default`` pre-selected."""
        choices = [questionary.Choice(title=option.label, value=option.value) for option in options]
        question = questionary.select(
            message, choices, default=default, instruction=hint, **self._options
        )
        chosen: str | None = _run(question)
        return chosen

    def checkbox(
        self, message: str, options: Sequence[Option], *, default: Sequence[str], hint: str
    ) -> list[str] | None:
        """Show a tick list with the ``default`` values ticked."""
        choices = [
            questionary.Choice(title=option.label, value=option.value,
                               checked=option.value in default)
            for option in options
        ]
        question = questionary.checkbox(message, choices, instruction=hint, **self._options)
        ticked: list[str] | None = _run(question)
        return ticked

    def confirm(self, message: str, *, default: bool, hint: str) -> bool | None:
        """Ask yes or no."""
        question = questionary.confirm(message, default=default, instruction=hint + " ",
                                       **self._options)
        answer: bool | None = _run(question)
        return answer

    def text(
        self, message: str, *, default: str, hint: str, validate: Validator
    ) -> str | None:
        """Ask for a line of text, re-asking while ``validate`` returns a problem."""

        def check(typed: str) -> bool | str:
            problem = validate(typed)
            return True if problem is None else problem

        question = questionary.text(message, default=default, validate=check, instruction=hint,
                                    **self._options)
        entered: str | None = _run(question)
        return entered


def _run(question: questionary.Question) -> Any:
    # unsafe_ask lets Ctrl-C through as KeyboardInterrupt, so the command line
    # prints its own "Cancelled" rather than questionary's message as well.
    # A text prompt ends with EOFError on Ctrl-D, which means the same.
    try:
        return question.unsafe_ask()
    except EOFError:
        raise KeyboardInterrupt from None


# ---------------------------------------------------------------------------
# The questionnaire


def ask_missing(
    values: dict[str, Any],
    lang: Lang = "en",
    *,
    today: dt.date | None = None,
    prompter: Prompter | None = None,
) -> dict[str, Any]:
    """Ask every question that ``values`` leaves unanswered and return the new answers.

    Args:
        values: Answers merged from every other source, without the schema's defaults.
        lang: Language of the labels, help lines and problems shown.
        today: Date used for the default start date (the next Saudi working day).
        prompter: Where the questions go; a questionary prompter when None.

    Returns:
        Only the answers asked here, typed as the schema expects (``path`` is None
        for "use the recommendation"). The caller merges them over ``values``.

    Raises:
        KeyboardInterrupt: The person cancelled with Ctrl-C or Ctrl-D.
    """
    prompter = prompter or QuestionaryPrompter()
    today = today or dt.date.today()
    new_answers: dict[str, Any] = {}
    while True:
        # Recomputed after each answer because an answer can make a later question apply.
        pending = missing_questions({**values, **new_answers})
        if not pending:
            return new_answers
        key = pending[0]
        new_answers[key] = _ask_one(key, {**values, **new_answers}, lang, today, prompter)


def _ask_one(
    key: str, known: Mapping[str, Any], lang: Lang, today: dt.date, prompter: Prompter
) -> Any:
    """Ask ``key`` until its answer passes ``check_one``."""
    while True:
        raw = _prompt(key, known, lang, today, prompter)
        if raw is None:
            raise KeyboardInterrupt
        value = _convert(key, raw, known)
        problem = check_one(key, value, lang)
        if problem is None:
            return value
        # Text prompts validate before returning, so this catches only a
        # prompter that returns a value the schema rejects.
        click.echo(problem, err=True)


def _prompt(
    key: str, known: Mapping[str, Any], lang: Lang, today: dt.date, prompter: Prompter
) -> Any:
    spec = answer_schema()["properties"][key]
    entry = question_text(key)
    label: str = entry["label"][lang]
    help_line: str = entry["help"][lang]

    if "enum" in spec:
        options = _enum_options(spec, entry, lang)
        default = NULL_CHOICE if spec.get("default") is None else str(spec["default"])
        default_label = next(option.label for option in options if option.value == default)
        hint = f"{help_line} {_SELECT_HINT.get(lang).format(default=default_label)}"
        return prompter.select(label, options, default=default, hint=hint)

    kind = spec.get("type")
    if kind == "array":
        options = [Option(value, entry["choices"][value][lang]) for value in spec["items"]["enum"]]
        hint = f"{help_line} {_CHECKBOX_HINT.get(lang)}"
        return prompter.checkbox(label, options, default=list(spec["default"]), hint=hint)
    if kind == "boolean":
        default_answer = bool(spec["default"])
        default_label = _YES_NO[default_answer].get(lang)
        hint = f"{help_line} {_CONFIRM_HINT.get(lang).format(default=default_label)}"
        return prompter.confirm(label, default=default_answer, hint=hint)

    def validate(typed: str) -> str | None:
        return check_one(key, _convert(key, typed, known), lang)

    default_text = _text_default(key, spec, known, today)
    return prompter.text(label, default=default_text, hint=help_line, validate=validate)


def _enum_options(spec: Mapping[str, Any], entry: Mapping[str, Any], lang: Lang) -> list[Option]:
    """List an enum's choices, with "no value" first when the enum allows null.

    NOTE: null is offered only when questions.yaml labels it (``path``).
    ``team_focus`` also allows null, but it is asked only for an undecided CRM,
    where a team focus is needed.
    """
    labels: Mapping[str, Mapping[str, str]] = entry["choices"]
    options = []
    if None in spec["enum"] and NULL_CHOICE in labels:
        options.append(Option(NULL_CHOICE, labels[NULL_CHOICE][lang]))
    choices = [value for value in spec["enum"] if value is not None]
    options.extend(Option(value, labels[value][lang]) for value in choices)
    return options


def _text_default(
    key: str, spec: Mapping[str, Any], known: Mapping[str, Any], today: dt.date
) -> str:
    if key == "project_slug":
        return _derived_slug(known) or ""
    if key == "start_date":
        return next_working_day(today).isoformat()
    return str(spec.get("default", ""))


def _derived_slug(known: Mapping[str, Any]) -> str | None:
    client_name = known.get("client_name")
    return derive_slug(client_name) if isinstance(client_name, str) else None


def _convert(key: str, raw: Any, known: Mapping[str, Any]) -> Any:
    """Turn a prompt's result into the schema's type, leaving bad text as text for ``check_one``."""
    if raw == NULL_CHOICE:
        return None
    if not isinstance(raw, str):
        return raw
    spec = answer_schema()["properties"][key]
    if spec.get("type") == "integer":
        return _parse_integer(raw)
    text = raw.strip()
    if key == "project_slug" and not text:
        # An empty slug means "derive it". When none can be derived, the empty
        # text stays and check_one rejects it, so the person must type a slug.
        return _derived_slug(known) or text
    return text


def _parse_integer(text: str) -> int | str:
    # int() also reads Arabic-Indic digits (١٢٠٠), which merchants often type.
    cleaned = text.strip()
    for separator in _THOUSANDS_SEPARATORS:
        cleaned = cleaned.replace(separator, "")
    try:
        return int(cleaned)
    except ValueError:
        return text
