"""Find English sentences left in an Arabic document."""

from __future__ import annotations

import re
from collections.abc import Iterable

# Six or more Latin words in a row, outside code blocks and spans, quoted names, bold UI
# labels and link targets: an English sentence that reached an Arabic document.
LATIN_RUN = re.compile(r"[A-Za-z][A-Za-z'-]*(?:[ ,;:()]+[A-Za-z][A-Za-z'-]*){5,}")


def arabic_prose(text: str) -> str:
    """Return ``text`` without code blocks and spans, quoted names, bold labels and link targets."""
    text = re.sub(r"^```[^\n]*\n.*?^```$", " ", text, flags=re.MULTILINE | re.DOTALL)
    text = re.sub(r"`[^`\n]*`", " ", text)
    text = re.sub(r'"[^"\n]*"', " ", text)
    text = re.sub(r"\*\*[^*\n]+\*\*", " ", text)
    return re.sub(r"\]\([^)\n]*\)", "]", text)


def english_runs(text: str, names: Iterable[str] = ()) -> list[str]:
    """Return the runs of English words in the prose of an Arabic document.

    ``names`` are English names the document shows as they appear in another tool, such
    as an imported workflow's name, so they do not count as English prose.
    """
    for name in names:
        text = text.replace(name, " ")
    return LATIN_RUN.findall(arabic_prose(text))
