'use strict';
// Check n8n workflow files against the node types of an installed n8n, as n8n checks them.
//
// Usage: node check_n8n_workflows.js N8N_HOME FILE...
//   N8N_HOME  the folder that scripts/install_n8n.sh installed n8n into (it contains
//             package.json and node_modules/n8n, n8n-workflow, n8n-core, n8n-nodes-base)
//   FILE      an n8n workflow JSON file, as `n8n import:workflow` reads it
//
// Nodes come from n8n-nodes-base through n8n-core's LazyPackageDirectoryLoader, the loader
// n8n itself uses. Each workflow is loaded into n8n-workflow's Workflow class, which fills in
// parameter defaults as the editor does. Each node then goes through the checks that n8n
// 2.8's WorkflowValidationService runs before it publishes a workflow:
//   - the node type and its typeVersion exist;
//   - NodeHelpers.getNodeParametersIssues finds no missing or invalid parameter;
//   - every required credential is referenced, and every referenced credential type exists.
// A credential reference without an id is not reported: `n8n import:workflow` links it by
// name to a credential the user created, so in a fresh database it has no id yet.
// Beyond publishing, each connection must use an output the source node has and an input
// the target node has, and a workflow must have a node that can start it.
//
// Prints {"n8n_version", "nodes_base_version", "workflows": [{file, name, problems}]} as
// JSON. Each problem is {node, kind, parameter, message}. Exits 0 when no workflow has a
// problem, 1 when one has, and 2 when the arguments or the installation are unusable.

const fs = require('fs');
const path = require('path');
const { createRequire } = require('module');

const PACKAGE_PREFIX = 'n8n-nodes-base.';
// Nodes that only start a run by hand, which n8n does not count when it publishes a workflow
// (STARTING_NODES in n8n 2.8's constants).
const MANUAL_TRIGGER_TYPES = ['n8n-nodes-base.manualTrigger',
  '@n8n/n8n-nodes-langchain.manualChatTrigger'];

function loadInstallation(home) {
  const packageFile = path.join(home, 'package.json');
  if (!fs.existsSync(packageFile)) {
    throw new Error(`package.json not found in ${home}; run scripts/install_n8n.sh first`);
  }
  const requireFromHome = createRequire(packageFile);
  const nodesBaseDir = path.dirname(requireFromHome.resolve('n8n-nodes-base/package.json'));
  return {
    workflow: requireFromHome('n8n-workflow'),
    core: requireFromHome('n8n-core'),
    nodesBaseDir,
    n8nVersion: requireFromHome('n8n/package.json').version,
    nodesBaseVersion: requireFromHome('n8n-nodes-base/package.json').version,
  };
}

// The node type of one type version, or undefined when n8n-nodes-base has no such type or
// version. n8n's own NodeTypes falls back to any version of an unversioned node class, so
// the version list of its description is checked here as well.
function makeNodeTypes(loader) {
  const lookup = (type, version) => {
    if (!type.startsWith(PACKAGE_PREFIX)) return undefined;
    const name = type.slice(PACKAGE_PREFIX.length);
    if (!(name in loader.known.nodes)) return undefined;
    const loaded = loader.getNode(name).type;
    if (loaded.nodeVersions !== undefined) return loaded.nodeVersions[version];
    const versions = [].concat(loaded.description.version);
    return versions.includes(version) ? loaded : undefined;
  };
  return {
    getByName: (type) => lookup(type, undefined),
    getByNameAndVersion: lookup,
    getKnownTypes: () => ({}),
  };
}

function describeMissingType(loader, node) {
  const name = node.type.startsWith(PACKAGE_PREFIX) ? node.type.slice(PACKAGE_PREFIX.length) : '';
  if (!(name in loader.known.nodes)) return `unknown node type ${node.type}`;
  const loaded = loader.getNode(name).type;
  const versions = loaded.nodeVersions !== undefined
    ? Object.keys(loaded.nodeVersions).map(Number)
    : [].concat(loaded.description.version);
  return `${node.type} has no typeVersion ${node.typeVersion} (it has ${versions.join(', ')})`;
}

function parameterProblems(NodeHelpers, node, nodeType) {
  const issues = NodeHelpers.getNodeParametersIssues(
    nodeType.description.properties, node, nodeType.description);
  const problems = [];
  for (const [parameter, messages] of Object.entries(issues?.parameters ?? {})) {
    for (const message of [].concat(messages)) {
      problems.push({ node: node.name, kind: 'parameter', parameter, message });
    }
  }
  return problems;
}

function credentialProblems(lib, loader, node, nodeType) {
  const problems = [];
  for (const issue of lib.validateNodeCredentials(node, nodeType)) {
    if (issue.type === 'missing') {
      problems.push({ node: node.name, kind: 'credential', parameter: issue.credentialName,
        message: `missing required credential: ${issue.displayName}` });
    }
  }
  for (const kind of Object.keys(node.credentials ?? {})) {
    if (!(kind in loader.known.credentials)) {
      problems.push({ node: node.name, kind: 'credential', parameter: kind,
        message: `unknown credential type ${kind}` });
    }
  }
  return problems;
}

// n8n may give a node's inputs and outputs as an expression, which NodeHelpers evaluates.
// Switch, for one, derives its outputs from its rules.
function countMain(endpoints) {
  return endpoints.filter((item) => (typeof item === 'string' ? item : item.type) === 'main')
    .length;
}

function plural(count, word) {
  return `${count} main ${word}${count === 1 ? '' : 's'}`;
}

function connectionProblems(lib, workflow, nodeTypes) {
  const problems = [];
  const ports = (name) => {
    const node = workflow.nodes[name];
    const nodeType = node && nodeTypes.getByNameAndVersion(node.type, node.typeVersion);
    if (!nodeType) return undefined;
    return {
      inputs: countMain(lib.NodeHelpers.getNodeInputs(workflow, node, nodeType.description)),
      outputs: countMain(lib.NodeHelpers.getNodeOutputs(workflow, node, nodeType.description)),
    };
  };
  const add = (node, message) => problems.push({ node, kind: 'connection', parameter: null,
    message });

  for (const [source, byType] of Object.entries(workflow.connectionsBySourceNode)) {
    if (workflow.nodes[source] === undefined) {
      add(source, 'connections start at this node, which the workflow does not have');
      continue;
    }
    const sourcePorts = ports(source);
    (byType.main ?? []).forEach((targets, outputIndex) => {
      if (sourcePorts && outputIndex >= sourcePorts.outputs && (targets ?? []).length > 0) {
        add(source, `output ${outputIndex} is connected, ` +
          `but the node has ${plural(sourcePorts.outputs, 'output')}`);
      }
      for (const target of targets ?? []) {
        const targetPorts = ports(target.node);
        if (workflow.nodes[target.node] === undefined) {
          add(source, `output ${outputIndex} goes to ${target.node}, which does not exist`);
        } else if (targetPorts && target.index >= targetPorts.inputs) {
          add(target.node, `input ${target.index} is connected from ${source}, ` +
            `but the node has ${plural(targetPorts.inputs, 'input')}`);
        }
      }
    });
  }
  return problems;
}

function startProblems(lib, nodes, nodeTypes) {
  const byName = Object.fromEntries(nodes.map((node) => [node.name, node]));
  const result = lib.validateWorkflowHasTriggerLikeNode(byName, nodeTypes, MANUAL_TRIGGER_TYPES);
  if (result.isValid) return [];
  return [{ node: null, kind: 'workflow', parameter: null, message: result.error }];
}

function withoutDuplicates(problems) {
  const seen = new Set();
  return problems.filter((problem) => {
    const key = JSON.stringify(problem);
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}

function checkWorkflow(lib, loader, nodeTypes, file, data) {
  const stored = structuredClone(data.nodes ?? []);
  // The Workflow constructor fills in defaults on its own copy of the nodes.
  const workflow = new lib.Workflow({
    id: data.id, name: data.name, nodes: structuredClone(stored),
    connections: data.connections ?? {}, active: false, nodeTypes,
    settings: data.settings ?? {}, pinData: {},
  });
  const problems = [];
  for (const node of stored) {
    const nodeType = nodeTypes.getByNameAndVersion(node.type, node.typeVersion);
    if (nodeType === undefined) {
      problems.push({ node: node.name, kind: 'type', parameter: null,
        message: describeMissingType(loader, node) });
      continue;
    }
    // Publishing through n8n's REST API checks the stored parameters, and the editor checks
    // them with defaults filled in, so both are checked.
    problems.push(...parameterProblems(lib.NodeHelpers, node, nodeType));
    problems.push(...parameterProblems(lib.NodeHelpers, workflow.nodes[node.name], nodeType));
    problems.push(...credentialProblems(lib, loader, node, nodeType));
  }
  problems.push(...connectionProblems(lib, workflow, nodeTypes));
  problems.push(...startProblems(lib, stored, nodeTypes));
  return { file, name: data.name, problems: withoutDuplicates(problems) };
}

async function main(argv) {
  const [home, ...files] = argv;
  if (home === undefined || files.length === 0) {
    process.stderr.write('usage: node check_n8n_workflows.js N8N_HOME FILE...\n');
    return 2;
  }
  let installation;
  try {
    installation = loadInstallation(path.resolve(home));
  } catch (error) {
    process.stderr.write(`cannot load n8n from ${home}: ${error.message}\n`);
    return 2;
  }
  const loader = new installation.core.LazyPackageDirectoryLoader(installation.nodesBaseDir);
  await loader.loadAll();
  const nodeTypes = makeNodeTypes(loader);
  const workflows = [];
  for (const file of files) {
    let data;
    try {
      data = JSON.parse(fs.readFileSync(file, 'utf8'));
    } catch (error) {
      process.stderr.write(`cannot read the workflow file ${file}: ${error.message}\n`);
      return 2;
    }
    workflows.push(checkWorkflow(installation.workflow, loader, nodeTypes, file, data));
  }
  process.stdout.write(`${JSON.stringify({
    n8n_version: installation.n8nVersion,
    nodes_base_version: installation.nodesBaseVersion,
    workflows,
  }, null, 2)}\n`);
  return workflows.some((item) => item.problems.length > 0) ? 1 : 0;
}

main(process.argv.slice(2)).then((code) => { process.exitCode = code; }, (error) => {
  process.stderr.write(`${error.stack}\n`);
  process.exitCode = 2;
});
