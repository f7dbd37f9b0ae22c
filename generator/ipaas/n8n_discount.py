"""A playbook's discount code in n8n when several sends carry it.

A playbook issues one code at its first discount step, and its later sends repeat
that code: in the same run (the abandoned-cart reminder after a Wait node) or in a
later daily run (win-back steps 2 and 3). So the code cannot sit behind the first
step's consent gate alone. It is created for each contact who has consent on at
least one channel whose send carries the code, and for no other contact.

The nodes hang off the chain in rows above it. n8n's v1 execution order runs the
children of a node top to bottom, so the consent reads run first, then the code
branch, then the chain, which adds each contact's code to its item and goes on with
every contact.
"""

from __future__ import annotations

from dataclasses import replace

from generator.ipaas import n8n_code
from generator.ipaas.crm_calls import contact_update_call, upsert_call
from generator.ipaas.flows import Flow, Step
from generator.ipaas.n8n_graph import Graph
from generator.ipaas.n8n_http import consent_nodes, crm_request, discount_nodes
from generator.model import Bilingual

Heads = list[tuple[str, int]]


def carrier_gates(flow: Flow) -> list[Step]:
    """Return the consent gate of each send that carries the code, one per channel, in order."""
    gates: dict[str, Step] = {}
    sends = {step.key for step in flow.walk()
             if step.kind == "send" and step.params.get("discount")}
    for step in flow.walk():
        if step.kind == "consent_gate" and step.gate is not None and \
                step.params.get("until_step") in sends:
            gates.setdefault(str(step.params["channel"]), step)
    return list(gates.values())


def shares_code(flow: Flow) -> bool:
    """Return whether more than one send of ``flow`` carries the playbook's code."""
    return sum(step.kind == "send" and bool(step.params.get("discount"))
               for step in flow.walk()) > 1


def shared_code_nodes(graph: Graph, discount: Step, heads: Heads) -> Heads:
    """Create the code for contacts with consent on a carrying channel; return the chain's heads.

    NOTE: consent is read when the code is created. A contact who grants consent on a
    later step's channel only after that gets the later send without a code.
    """
    column, row = graph.column, graph.row
    gates = carrier_gates(graph.flow)
    gate_nodes = []
    for offset, gate in enumerate(gates):
        graph.row, graph.column = row - 1 - len(gates) + offset, column
        channel = str(gate.params["channel"])
        titled = replace(gate, title=Bilingual(f"Consent on {channel} for the code",
                                               f"الموافقة على {channel} لرمز الخصم"))
        ends = consent_nodes(graph, titled, heads)
        gate_nodes.append(ends[0][0])
    graph.row, graph.column = row - 1, column
    title = "Contacts with consent for the code"
    pick = graph.add(title, "code", {"mode": "runOnceForAllItems", "language": "javaScript",
                                     "jsCode": any_consent_code(title, gate_nodes)})
    graph.chain(heads, pick)
    code_heads = discount_nodes(graph, discount, [(pick, 0)])
    keep = graph.context_node
    assert keep is not None
    if graph.flow.trigger.kind == "schedule":
        _store_code(graph, discount, code_heads)
    end_column = graph.column
    graph.row, graph.column = row, column
    title = f"{discount.title.en}: add to each contact"
    merge = graph.add(title, "code", {"mode": "runOnceForAllItems", "language": "javaScript",
                                      "jsCode": add_code_code(title, keep)})
    graph.chain(heads, merge)
    graph.column = max(graph.column, end_column)
    graph.context_node = merge
    return [(merge, 0)]


def _store_code(graph: Graph, discount: Step, heads: Heads) -> None:
    """Write the code and its expiry on the contact, where a later day's send reads them."""
    mapping = graph.project.spec["mapping"]
    contact = mapping["entities"]["contact"]
    rollups = {str(item["name"]): str(item["target"]) for item in contact["rollups"]}
    unique = next((str(item["target"]) for item in contact["fields"] if item.get("unique")), None)
    targets = [("discount_code", rollups["discount_code"]),
               ("discount_expires_at", rollups["discount_expires_at"])]
    if graph.project.crm == "custom":
        identity = [(str(key["key"]), str(key["target"]))
                    for key in mapping["identity"]["match_order"]]
        call = contact_update_call(str(contact["object"]), targets, identity)
    else:
        if unique:
            targets.insert(0, ("id", unique))
        call = upsert_call(graph.project.crm, "contact", str(contact["object"]), targets, unique)
    step = replace(discount, title=Bilingual("Store the code on the contact",
                                             "حفظ رمز الخصم في جهة الاتصال"))
    record = graph.add(f"{step.title.en}: record", "code", {
        "mode": "runOnceForAllItems", "language": "javaScript",
        "jsCode": n8n_code.marker_code(step.title.en, graph, call,
                                       {"discount": True}, marker=False)})
    graph.chain(heads, record)
    crm_request(graph, step, call, [(record, 0)], "contact")


def _key_function() -> str:
    return """// A contact is the same item in each node when its key (or record) is the same.
function contactKey(item) {
  const json = item.json || {};
  return String(json.key ?? JSON.stringify(json.record || {}));
}
"""


def any_consent_code(title: str, gates: list[str]) -> str:
    """Return the code that keeps the contacts whom at least one of ``gates`` let through."""
    return n8n_code.header(title) + n8n_code.OUTPUT_OF + _key_function() + f"""
const GATES = {n8n_code.js(gates)};
const consented = new Set(GATES.flatMap((gate) => outputOf(gate).map(contactKey)));
const output = [];
$input.all().forEach((item, index) => {{
  if (consented.has(contactKey(item))) {{
    output.push({{ json: item.json, pairedItem: {{ item: index }} }});
  }}
}});
return output;
"""


def add_code_code(title: str, keep: str) -> str:
    """Return the code that passes every contact on, with its code where ``keep`` created one."""
    return n8n_code.header(title) + n8n_code.OUTPUT_OF + _key_function() + f"""
const codes = new Map(outputOf({n8n_code.js(keep)}).map((item) => [contactKey(item), item.json]));
return $input.all().map((item, index) => {{
  const coded = codes.get(contactKey(item));
  const json = coded ? {{ ...item.json, discount_code: coded.discount_code,
    discount_ends_at: coded.discount_ends_at }} : item.json;
  return {{ json, pairedItem: {{ item: index }} }};
}});
"""
