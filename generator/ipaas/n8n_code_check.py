"""Parse the JavaScript of n8n Code nodes with Node.js, for ``rabt validate``.

A Code node's code runs as the body of an async function, so top-level ``return`` and
``await`` are allowed. Each snippet is wrapped the same way before it is parsed.
One ``node`` process compiles every snippet with ``vm.Script``, the V8 parser that
``node --check`` uses, and runs none of them. A ``node --check`` process per snippet
took about 25 seconds for the 107 snippets of one project on a shared 2-core machine.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
from collections.abc import Hashable, Mapping
from pathlib import Path
from typing import TypeVar

CODE_NODE = "n8n-nodes-base.code"
TIMEOUT_SECONDS = 120
Key = TypeVar("Key", bound=Hashable)
# Reads a JSON list of snippets from the file named by argv[1] and prints, as JSON, the
# index and first error line of each snippet that does not parse.
CHECKER = r"""
const fs = require('fs');
const vm = require('vm');
const snippets = JSON.parse(fs.readFileSync(process.argv[1], 'utf8'));
const failures = [];
snippets.forEach((code, index) => {
  try {
    new vm.Script('(async function () {\n' + code + '\n});', {filename: 'code.js'});
  } catch (error) {
    const match = /code\.js:(\d+)/.exec(String(error.stack));
    const line = match ? Number(match[1]) - 1 : null;
    failures.push({index, line, message: String(error.message)});
  }
});
process.stdout.write(JSON.stringify(failures));
"""


def code_snippets(workflow: object) -> list[tuple[str, str]]:
    """Return ``(node name, JavaScript)`` of every JavaScript Code node of ``workflow``."""
    if not isinstance(workflow, dict):
        return []
    found = []
    for node in workflow.get("nodes", []):
        if not isinstance(node, dict) or node.get("type") != CODE_NODE:
            continue
        parameters = node.get("parameters")
        if not isinstance(parameters, dict) or parameters.get("language") == "python":
            continue
        code = parameters.get("jsCode")
        if isinstance(code, str):
            found.append((str(node.get("name")), code))
    return found


def syntax_errors(snippets: Mapping[Key, str]) -> dict[Key, tuple[int | None, str]] | None:
    """Return, per key, the line and message of each snippet that does not parse.

    Returns None when ``node`` is not on PATH, so the caller can say the check was
    skipped.
    """
    node = shutil.which("node")
    if node is None:
        return None
    keys = list(snippets)
    if not keys:
        return {}
    with tempfile.TemporaryDirectory(prefix="rabt-code-") as folder:
        source = Path(folder) / "snippets.json"
        source.write_text(json.dumps([snippets[key] for key in keys]), encoding="utf-8")
        done = subprocess.run([node, "-e", CHECKER, "--", str(source)], capture_output=True,
                              text=True, check=False, timeout=TIMEOUT_SECONDS)
    if done.returncode != 0:
        raise RuntimeError(f"node failed while parsing Code nodes: {done.stderr.strip()}")
    errors = {}
    for item in json.loads(done.stdout):
        key = keys[item["index"]]
        line = item["line"]
        if line is not None:
            # An unclosed block ends on the wrapper's closing line; name the snippet's last.
            line = max(1, min(line, snippets[key].count("\n") + 1))
        errors[key] = (line, item["message"])
    return errors
