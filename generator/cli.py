"""The ``rabt`` command line: parse options, call the library, print, exit.

Exit codes: 0 ok, 1 failure, 2 invalid input or usage, 3 validation problems,
4 differences found by ``rabt crm plan``.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import sys
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from functools import wraps
from pathlib import Path
from typing import Any, TypeVar

import click

from generator import __version__
from generator.answers import (
    DEFAULT_PRESET,
    AnswerSources,
    builtin_preset_names,
    load_answers_file,
    load_preset,
    missing_questions,
    next_working_day,
    parse_set_options,
    resolve_answers,
)
from generator.decide import decide
from generator.errors import (
    EXIT_DRIFT,
    EXIT_FAILURE,
    EXIT_OK,
    EXIT_VALIDATION_PROBLEMS,
    InputError,
    Problem,
    RabtError,
)
from generator.i18n import join_list, message
from generator.model import Answers, Lang, Plan
from generator.resources import load_data

F = TypeVar("F", bound=Callable[..., Any])
log = logging.getLogger("rabt")


@dataclass(frozen=True)
class AnswerOptions:
    """The options every command that reads answers shares."""

    preset: str | None
    answers_file: Path | None
    set_items: tuple[str, ...]
    no_input: bool
    lang: Lang


def _lang_option(function: F) -> F:
    return click.option(
        "--lang", type=click.Choice(["en", "ar"]), default="en", show_default=True,
        help="Language of messages and questions (en or ar).",
    )(function)


def _answer_options(function: F) -> F:
    options = [
        click.option("--preset", metavar="NAME|PATH",
                     help="Start from a built-in preset (see 'rabt presets') or a preset file."),
        click.option("--answers", "answers_file", type=click.Path(path_type=Path),
                     metavar="FILE", help="Answers file, e.g. a project's .rabt/answers.yaml."),
        click.option("--set", "set_items", multiple=True, metavar="KEY=VALUE",
                     help="Set one answer; repeat for more. Lists take commas: "
                          "erp_bi=odoo,power_bi."),
        click.option("--no-input", is_flag=True,
                     help="Ask nothing: missing answers take their defaults, and with no preset "
                          f"or answers file the '{DEFAULT_PRESET}' preset is used."),
        _lang_option,
    ]
    for option in reversed(options):
        function = option(function)
    return function


def _handle_errors(function: F) -> F:
    """Print user errors once, in the chosen language, and exit with their code."""

    @wraps(function)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        lang: Lang = kwargs.get("lang", "en")
        try:
            return function(*args, **kwargs)
        except RabtError as error:
            click.echo(error.render(lang), err=True)
            sys.exit(error.exit_code)
        except KeyboardInterrupt:
            click.echo(message("cancelled", lang), err=True)
            sys.exit(EXIT_FAILURE)
        except BrokenPipeError:
            # The reader of our output went away (e.g. `| head`); stop quietly.
            sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - replaces the closed pipe
            sys.exit(EXIT_FAILURE)
        except click.exceptions.Exit:
            raise
        except Exception as error:  # a bug: keep the traceback out of the user's way
            log.debug("unexpected error", exc_info=True)
            click.echo(f"Internal error in rabt {__version__}: {error!r}. "
                       "Run again with --verbose for the traceback and report it.", err=True)
            if logging.getLogger("rabt").isEnabledFor(logging.DEBUG):
                traceback.print_exc()
            sys.exit(EXIT_FAILURE)

    return wrapper  # type: ignore[return-value]


# Answers that do not change the plan; `rabt explain` fills them instead of asking.
PLAN_NEUTRAL_DEFAULTS = {"client_name": "Explained Client", "path": None}


def gather_answers(options: AnswerOptions, *, plan_only: bool = False) -> Answers:
    """Merge every answer source in order and, on a terminal, ask what is still missing.

    With ``plan_only``, answers that cannot change the plan are filled with
    placeholders instead of being asked, so ``rabt explain`` works in scripts.
    """
    sources = AnswerSources()
    use_default_preset = options.no_input and not options.preset and not options.answers_file
    preset_name = options.preset or (DEFAULT_PRESET if use_default_preset else None)
    if preset_name:
        preset = load_preset(preset_name, options.lang)
        sources.add(preset.source, preset.answers)
    if options.answers_file:
        sources.add(f"answers file {options.answers_file}",
                    load_answers_file(options.answers_file, options.lang))
    if options.set_items:
        sources.add("--set", parse_set_options(options.set_items, options.lang))
    if plan_only:
        neutral = {**PLAN_NEUTRAL_DEFAULTS,
                   "start_date": next_working_day(dt.date.today()).isoformat()}
        sources.add("explain", {key: value for key, value in neutral.items()
                                if key not in sources.values})
    missing = missing_questions(sources.values)
    if not options.no_input and missing:
        if not sys.stdin.isatty():
            raise InputError(message("invalid_answers", options.lang, count=1), [
                Problem("stdin", message("no_terminal", options.lang,
                                         keys=join_list(missing, options.lang)),
                        message("no_terminal_fix", options.lang))])
        from generator.questionnaire import ask_missing  # imports prompt_toolkit lazily

        sources.add("questionnaire", ask_missing(dict(sources.values), options.lang))
    return resolve_answers(sources, lang=options.lang)


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="rabt")
@click.option("-v", "--verbose", is_flag=True, help="Log each pipeline step to standard error.")
def main(verbose: bool) -> None:
    """Scaffold store-to-CRM integration projects for online stores in Saudi Arabia.

    \b
    Example:
      rabt new --no-input --output-dir ./clients
    """
    logging.basicConfig(level=logging.DEBUG if verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")


@main.command()
@_answer_options
@click.option("--output-dir", type=click.Path(path_type=Path), default=Path("."),
              show_default=True, help="Folder in which the project folder <slug> is created.")
@click.option("--overwrite", is_flag=True, help="Replace an existing project folder.")
@click.option("--dry-run", is_flag=True, help="Write nothing; list the files that would be made.")
@_handle_errors
def new(preset: str | None, answers_file: Path | None, set_items: tuple[str, ...],
        no_input: bool, lang: Lang, output_dir: Path, overwrite: bool, dry_run: bool) -> None:
    """Generate an integration project from a preset, answers and questions.

    \b
    Examples:
      rabt new --no-input
      rabt new --preset woo-startup --set client_name="Dar Al Qahwa" --output-dir clients
      rabt new --answers clients/acme/.rabt/answers.yaml --no-input --overwrite --output-dir clients
    """
    from generator.render import render_project

    options = AnswerOptions(preset, answers_file, set_items, no_input, lang)
    answers = gather_answers(options)
    log.debug("answers resolved for %s", answers.project_slug)
    plan = decide(answers)
    result = render_project(answers, plan, output_dir, overwrite=overwrite, dry_run=dry_run,
                            lang=lang)
    _print_summary(plan, lang)
    if result.dry_run:
        _print_dry_run_note(result.project_dir, overwrite, lang)
        click.echo(message("dry_run_header", lang, path=result.project_dir))
        for name in result.files:
            click.echo(f"  {name}")
        return
    click.echo(message("created", lang, path=result.project_dir))
    _print_next_steps(result.project_dir, output_dir, lang)


def _print_dry_run_note(target: Path, overwrite: bool, lang: Lang) -> None:
    """Say what a real run would do with an existing folder."""
    from generator.render import check_output_dir

    try:
        check_output_dir(target, overwrite, lang)
    except InputError as error:
        click.echo(message("dry_run_would_fail", lang,
                           reason=error.problems[0].message, fix=error.problems[0].fix))
        return
    if target.is_dir() and any(target.iterdir()):
        click.echo(message("dry_run_replaces", lang, path=target))


def _summary_lines(plan: Plan, lang: Lang) -> list[str]:
    """Return the one-line plan summary, and the override line when there is one."""
    paths = load_data("paths")
    separator = "، " if lang == "ar" else ", "
    modules = separator.join(paths["modules"][module][lang] for module in plan.modules)
    lines = [message("summary_plan", lang, path=paths["paths"][plan.path]["label"][lang],
                     crm=paths["crm_labels"][plan.crm][lang], modules=modules)]
    if plan.overridden:
        lines.append(message("summary_override", lang,
                             path=paths["paths"][plan.path]["label"][lang],
                             recommended=paths["paths"][plan.recommended_path]["label"][lang]))
    return lines


def _print_summary(plan: Plan, lang: Lang) -> None:
    for line in _summary_lines(plan, lang):
        click.echo(line)


def _print_next_steps(project: Path, output_dir: Path, lang: Lang) -> None:
    decision = "docs/decision.ar.md" if lang == "ar" else "docs/decision.md"
    click.echo(message("next_steps", lang))
    click.echo(f"  1. {message('next_read', lang, file=decision)}")
    click.echo(f"  2. {message('next_validate', lang, path=project)}")
    click.echo(f"  3. {message('next_regenerate', lang, path=project, parent=output_dir)}")


@main.command()
@_lang_option
@_handle_errors
def presets(lang: Lang) -> None:
    """List the built-in presets: name, platform, CRM, chosen path and description.

    \b
    Example:
      rabt presets --lang ar
    """
    rows: list[tuple[str, ...]] = [tuple(load_data("messages")["presets_header"][lang])]
    for name in builtin_preset_names():
        preset = load_preset(name, lang)
        sources = AnswerSources()
        sources.add(preset.source, preset.answers)
        plan = decide(resolve_answers(sources, lang=lang))
        rows.append((name, plan.platform, plan.crm, plan.path, preset.description.get(lang)))
    widths = [max(len(row[column]) for row in rows) for column in range(4)]
    for row in rows:
        cells = [cell.ljust(width) for cell, width in zip(row[:4], widths, strict=True)]
        click.echo("  ".join([*cells, row[4]]))


@main.command()
@_answer_options
@click.option("--format", "output_format", type=click.Choice(["text", "json"]), default="text",
              show_default=True, help="Output format; json is for scripts.")
@_handle_errors
def explain(preset: str | None, answers_file: Path | None, set_items: tuple[str, ...],
            no_input: bool, lang: Lang, output_format: str) -> None:
    """Show the plan (path, CRM, modules, reasons, estimate) without writing files.

    \b
    Examples:
      rabt explain --preset shopify-growth
      rabt explain --no-input --set platform=woocommerce --set monthly_orders=150 --format json
    """
    options = AnswerOptions(preset, answers_file, set_items, no_input, lang)
    plan = decide(gather_answers(options, plan_only=True))
    if output_format == "json":
        click.echo(json.dumps(plan.to_data(), ensure_ascii=False, indent=2))
        return
    click.echo(format_plan(plan, lang))


def format_plan(plan: Plan, lang: Lang) -> str:
    """Render the plan as readable text in ``lang``."""
    paths = load_data("paths")
    lines = _summary_lines(plan, lang)
    lines += ["", f"{message('explain_rules', lang)}:"]
    lines += [f"  - {hit.id}: {hit.reason.get(lang)}" for hit in plan.applied_rules]
    if plan.outranked_rules:
        lines += ["", f"{message('explain_outranked', lang)}:"]
        lines += [f"  - {hit.id} ({hit.outranked_by}): {hit.reason.get(lang)}"
                  for hit in plan.outranked_rules]
    lines += ["", f"{message('explain_alternatives', lang)}:"]
    lines += [f"  - {paths['paths'][alt.path]['label'][lang]}: {alt.reason.get(lang)}"
              f" ({alt.decided_by})" for alt in plan.alternatives]
    estimate = plan.estimate
    effort = message("estimate_line", lang, days_min=estimate.days_min,
                     days_max=estimate.days_max, sar_min=f"{estimate.setup_sar_min:,}",
                     sar_max=f"{estimate.setup_sar_max:,}")
    lines += ["", f"{message('explain_estimate', lang)}:", f"  {effort}",
              f"  {estimate.subscription.get(lang)}"]
    return "\n".join(lines)


@main.command()
@click.argument("directory", type=click.Path(path_type=Path), default=Path("."))
@_lang_option
@_handle_errors
def validate(directory: Path, lang: Lang) -> None:
    """Check a generated project; exit 0 when clean, 3 with a list of problems.

    \b
    Example:
      rabt validate clients/riyadh-perfume
    """
    from generator.validate import validate_project

    if not directory.is_dir():
        name = "dir_not_found" if not directory.exists() else "not_a_project"
        raise InputError(message("invalid_argument", lang), [
            Problem("DIRECTORY", message(name, lang, value=directory),
                    message("not_a_project_fix", lang))])
    report = validate_project(directory, lang)
    for note in report.skipped:
        click.echo(note)
    if not report.problems:
        click.echo(message("validate_clean", lang, path=directory, count=report.checked))
        sys.exit(EXIT_OK)
    click.echo(message("validate_problems", lang, path=directory, count=len(report.problems)))
    for problem in report.problems:
        click.echo(f"  - {problem.render(lang)}")
    sys.exit(EXIT_VALIDATION_PROBLEMS)


@main.command()
@click.option("--project", type=click.Path(path_type=Path), default=Path("."), show_default=True,
              metavar="DIR",
              help="Project made by 'rabt new'; its integration/mapping.yaml is read.")
@click.option("--platform", metavar="shopify|woocommerce|storefront",
              help="Payload family of the body. Default: the sample's own.")
@click.option("--topic", metavar="TOPIC",
              help="Webhook topic (orders/create, order.updated) or storefront event name "
                   "(add_to_cart). Default: the sample's own.")
@click.option("--payload", metavar="FILE|SAMPLE",
              help="JSON file with one webhook body, or a shipped sample name.")
@click.option("--format", "output_format", type=click.Choice(["yaml", "json"]), default="yaml",
              show_default=True, help="Output format.")
@click.option("--list-samples", is_flag=True, help="List the shipped sample bodies and exit.")
@_lang_option
@_handle_errors
def preview(project: Path, platform: str | None, topic: str | None, payload: str | None,
            output_format: str, list_samples: bool, lang: Lang) -> None:
    """Show the CRM records a project's field map makes from one webhook body.

    Each field shows the flags its transform set. Nothing is sent anywhere.

    \b
    Examples:
      rabt preview --project clients/riyadh-perfume --platform shopify \\
          --topic orders/create --payload shopify/orders-create-arabic
      rabt preview --project clients/woo-startup --payload body.json \\
          --platform woocommerce --topic order.updated --format json
      rabt preview --list-samples
    """
    from generator.preview import format_records, format_samples, preview_payload, samples_data

    if list_samples:
        if output_format == "json":
            click.echo(json.dumps(samples_data(lang), ensure_ascii=False, indent=2))
            return
        for line in format_samples(lang):
            click.echo(line)
        return
    result = preview_payload(project, payload, platform, topic, lang)
    click.echo(format_records(result, output_format))


def _crm_environment_help() -> str:
    """Return the help paragraph that lists the variables ``generator.crm.settings`` reads."""
    from generator.crm import settings
    from generator.runtime.zoho_regions import ZOHO_ACCOUNTS_BY_DC

    data_centres = ", ".join(ZOHO_ACCOUNTS_BY_DC)
    lines = [
        "\b",
        "Environment variables (read only from the environment, never from a file):",
        "  HUBSPOT_ACCESS_TOKEN        HubSpot private app access token; required for",
        "                              HubSpot projects",
        "  HUBSPOT_RATE_LIMIT_PER_10S  HubSpot calls per rolling 10 seconds, a whole",
        f"                              number from 2 to {settings.HUBSPOT_MAX_RATE_LIMIT_PER_10S} "
        f"(default {settings.HUBSPOT_DEFAULT_RATE_LIMIT_PER_10S}, the",
        "                              Free and Starter limit; Professional and",
        "                              Enterprise allow 190)",
        "  HUBSPOT_BASE_URL            HubSpot API address, https:// or a loopback",
        "                              http:// stand-in (default "
        f"{settings.HUBSPOT_DEFAULT_BASE_URL})",
        "  ZOHO_CLIENT_ID              client id of the self client in the Zoho API",
        "                              console; required for Zoho projects",
        "  ZOHO_CLIENT_SECRET          that client's secret; required for Zoho projects",
        "  ZOHO_REFRESH_TOKEN          refresh token issued to that client; required for",
        "                              Zoho projects",
        "  ZOHO_DC                     data centre of the Zoho account, one of",
        f"                              {data_centres}",
        "                              (sa for zoho.sa); required for Zoho projects",
        "  ZOHO_ACCOUNTS_URL           Zoho Accounts server address, https:// or a",
        "                              loopback http:// stand-in (default: the server",
        "                              of ZOHO_DC, such as https://accounts.zoho.sa)",
    ]
    return "\n".join(lines)


# The variable list is built when help is shown, because importing generator.crm
# loads httpx and the CRM clients, which every other command can do without.
class _CrmGroup(click.Group):
    def format_epilog(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        self.epilog = _crm_environment_help()
        super().format_epilog(ctx, formatter)


class _CrmCommand(click.Command):
    def format_epilog(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        self.epilog = _crm_environment_help()
        super().format_epilog(ctx, formatter)


@main.group(cls=_CrmGroup)
def crm() -> None:
    """Plan and apply a project's CRM set-up (crm/desired-state.yaml) in HubSpot or Zoho.

    Credentials and endpoints come only from the environment variables listed
    below. Ids the CRM returns are recorded in the project's .rabt/crm-state.json.

    \b
    Examples:
      rabt crm plan clients/riyadh-perfume
      rabt crm apply clients/riyadh-perfume --yes
    """


def _crm_options(function: F) -> F:
    options = [
        click.argument("directory", type=click.Path(path_type=Path), default=Path(".")),
        click.option("--format", "output_format", type=click.Choice(["text", "json"]),
                     default="text", show_default=True, help="Output format; json is for scripts."),
        click.option("--prune", is_flag=True,
                     help="Also delete items that Rabt created and the desired state no longer "
                          "has; items Rabt did not create are never deleted."),
        _lang_option,
    ]
    for option in reversed(options):
        function = option(function)
    return function


def _crm_json_errors(function: F) -> F:
    """With --format json, also print a failure as a JSON error document on standard output."""

    @wraps(function)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from generator.crm.apply import ApplyFailed
        from generator.crm.output import error_data

        try:
            return function(*args, **kwargs)
        except RabtError as error:
            # A failed apply has printed its own document, with the failed item in it.
            if kwargs.get("output_format") == "json" and not isinstance(error, ApplyFailed):
                click.echo(json.dumps(error_data(error), ensure_ascii=False, indent=2))
            raise

    return wrapper  # type: ignore[return-value]


@crm.command("plan", cls=_CrmCommand)
@_crm_options
@_handle_errors
@_crm_json_errors
def crm_plan(directory: Path, output_format: str, prune: bool, lang: Lang) -> None:
    """Compare the CRM with the desired state; exit 4 when they differ, else 0.

    They differ when apply has something to do, or when Rabt reads a difference only a
    person can fix (a missing Zoho stage value, a field type it may not change). Manual
    steps Rabt cannot read (custom views, event definitions, general set-up) never give
    exit 4. Nothing is changed. Exit 1 means a CRM call failed, 2 invalid input or
    credentials.

    \b
    Examples:
      rabt crm plan clients/riyadh-perfume
      rabt crm plan clients/woo-startup --format json --lang ar
    """
    from generator.crm.output import format_plan, plan_data
    from generator.crm.session import open_session

    with open_session(directory, os.environ, lang) as session:
        plan = session.plan(prune)
        endpoint = session.adapter.endpoint
    if output_format == "json":
        click.echo(json.dumps(plan_data(plan, endpoint), ensure_ascii=False, indent=2))
    else:
        click.echo(format_plan(plan, endpoint, lang))
    sys.exit(EXIT_DRIFT if plan.differs else EXIT_OK)


@crm.command("apply", cls=_CrmCommand)
@_crm_options
@click.option("--yes", is_flag=True, help="Apply without asking; needed when not on a terminal.")
@_handle_errors
@_crm_json_errors
def crm_apply(directory: Path, output_format: str, prune: bool, lang: Lang, yes: bool) -> None:
    """Create and update what the plan lists, in dependency order, and record the ids.

    Asks before changing anything unless --yes is given. A failed call stops the run
    at once with the CRM's error; run the printed command to finish.

    \b
    Examples:
      rabt crm apply clients/riyadh-perfume
      rabt crm apply clients/woo-startup --yes --format json
    """
    from generator.crm.apply import ApplyFailed, apply_plan
    from generator.crm.output import apply_data, format_done, format_ids, format_plan
    from generator.crm.session import api_failures, open_session

    as_json = output_format == "json"
    with open_session(directory, os.environ, lang) as session:
        plan = session.plan(prune)
        endpoint = session.adapter.endpoint
        if not as_json:
            click.echo(format_plan(plan, endpoint, lang, for_apply=True))
        if plan.pending:
            _confirm_apply(len(plan.pending), yes, lang)

        def echo_done(item: Any) -> None:
            if not as_json:
                click.echo(format_done(item, session.state, lang))

        try:
            with api_failures(plan.crm, lang, "write"):
                result = apply_plan(directory, plan, session.adapter, session.state,
                                    lang=lang, yes=yes, output_format=output_format,
                                    on_done=echo_done)
        except ApplyFailed as failure:
            if as_json:
                failed = {"key": failure.failed.key, "action": failure.failed.action,
                          "error": str(failure.error)}
                data = apply_data(plan, endpoint, failure.result, session.state, failed,
                                  resume=failure.resume)
                click.echo(json.dumps(data, ensure_ascii=False, indent=2))
            raise
    if as_json:
        click.echo(json.dumps(apply_data(plan, endpoint, result, session.state),
                              ensure_ascii=False, indent=2))
        return
    click.echo(message("crm_apply_done", lang, count=len(result.done), path=result.state_file))
    for line in format_ids(session.state, lang):
        click.echo(line)


def apply_question(count: int, lang: Lang) -> str:
    """Return the confirmation question shown before apply changes ``count`` items."""
    from generator.arabic_counts import arabic_count

    if count == 1:
        return message("crm_apply_confirm_one", lang)
    changes = arabic_count(count, "change") if lang == "ar" else f"{count} changes"
    return message("crm_apply_confirm", lang, changes=changes)


def _confirm_apply(count: int, yes: bool, lang: Lang) -> None:
    """Ask before changing the CRM; without a terminal, --yes is required."""
    if yes:
        return
    if not sys.stdin.isatty():
        raise InputError(message("invalid_argument", lang), [
            Problem("--yes", message("crm_apply_no_terminal", lang),
                    message("crm_apply_no_terminal_fix", lang))])
    if not click.confirm(apply_question(count, lang), err=True):
        click.echo(message("cancelled", lang), err=True)
        sys.exit(EXIT_FAILURE)
