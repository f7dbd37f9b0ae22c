"""Help texts that name the CRM the settings select, filled in when the help is shown.

One service serves HubSpot, Zoho CRM or the customer database, picked by ``CRM_TARGET``
(by default the field map's ``crm``). A command built with ``CrmHelpCommand`` or
``CrmHelpGroup`` writes ``{crm}`` and ``{switch}`` in its docstring. ``--help`` and the
command list replace them with the CRM's name and the setting that ends sandbox mode.
Only ``CRM_TARGET`` and the field map are read, so help works while other settings are
invalid.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

import click

from .settings import ENV_FILE_NAME, SERVICE_DIR, crm_target_of, sandbox_switch

# The CRMs a flusher and a stand-in serve, by CRM target. The customer database has
# neither, so its help names both CRMs that have them.
CRM_NAMES = {"hubspot": "HubSpot", "zoho": "Zoho CRM", "custom": "HubSpot or Zoho CRM"}


def help_names() -> dict[str, str]:
    """Return the CRM's name and its sandbox switch for the current settings."""
    target = crm_target_of(os.environ, env_file=SERVICE_DIR / ENV_FILE_NAME)
    return {"{crm}": CRM_NAMES.get(target, "the CRM"), "{switch}": sandbox_switch(target)}


def fill_crm_names(text: str) -> str:
    """Replace ``{crm}`` and ``{switch}`` in ``text``, leaving other braces as they are."""
    for placeholder, value in help_names().items():
        text = text.replace(placeholder, value)
    return text


class _CrmHelp(click.Command):
    @contextmanager
    def _filled_help(self) -> Iterator[None]:
        # Click reads self.help in both methods below, so the template goes back after.
        template = self.help
        if template is not None:
            self.help = fill_crm_names(template)
        try:
            yield
        finally:
            self.help = template

    def get_short_help_str(self, limit: int = 45) -> str:
        """Return the command list's line, with the CRM named."""
        with self._filled_help():
            return super().get_short_help_str(limit)

    def format_help_text(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """Write the help text, with the CRM named."""
        with self._filled_help():
            super().format_help_text(ctx, formatter)


class CrmHelpCommand(_CrmHelp):
    """A command whose help names the configured CRM."""


class CrmHelpGroup(_CrmHelp, click.Group):
    """A command group whose help names the configured CRM."""
