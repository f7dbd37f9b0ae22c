'use strict';
// Print the parameters, options and credentials of chosen n8n nodes as JSON.
//
// Usage: node refresh_n8n_nodes.js PACKAGE_DIR NAME...
//   PACKAGE_DIR  an unpacked n8n-nodes-base package (its package.json and dist/)
//   NAME         a node type such as n8n-nodes-base.httpRequest, or a credential type
//                written as credential:hubspotAppToken
//
// Run by refresh_n8n_nodes.py, which sets NODE_PATH to a folder holding n8n-workflow and
// the few small libraries that node descriptions read at load time. Any other module a
// node file requires is replaced by an inert stub: descriptions are plain data, and only
// execute() uses those modules. A description that still contains a stub is an error,
// so a stub can never leak into the catalogue.

const Module = require('module');
const fs = require('fs');
const path = require('path');

const PACKAGE_PREFIX = 'n8n-nodes-base.';
const STUB_MARK = Symbol('rabt-stub');
const stubbedModules = new Set();

function makeStub() {
  const handler = {
    get(target, key) {
      if (key === STUB_MARK) return true;
      if (key === Symbol.toPrimitive) return () => '';
      // A stub must not look like a promise, or an `await` on it would hang.
      if (key === 'then') return undefined;
      if (key === '__esModule') return false;
      return stub;
    },
    apply: () => stub,
    construct: () => stub,
  };
  const stub = new Proxy(function inertStub() {}, handler);
  return stub;
}

const STUB = makeStub();
const originalLoad = Module._load;
Module._load = function loadOrStub(request, parent, isMain) {
  try {
    return originalLoad.call(this, request, parent, isMain);
  } catch (error) {
    if (error.code !== 'MODULE_NOT_FOUND' || request.startsWith('.')) throw error;
    stubbedModules.add(request);
    return STUB;
  }
};

function assertNoStub(value, where) {
  if ((typeof value === 'function' || typeof value === 'object') && value !== null) {
    if (value[STUB_MARK] === true) {
      throw new Error(`${where} depends on a stubbed module (${[...stubbedModules].join(', ')}); ` +
        'install that module in the loader folder of refresh_n8n_nodes.py');
    }
  }
}

// Whether a '@version' display condition admits `version`. Conditions are plain
// numbers or {_cnd: {gte|gt|lte|lt|eq|not|between}} objects.
function conditionHolds(condition, version) {
  if (typeof condition === 'number') return condition === version;
  const cnd = condition && condition._cnd;
  if (!cnd) return true;
  if ('gte' in cnd && !(version >= cnd.gte)) return false;
  if ('gt' in cnd && !(version > cnd.gt)) return false;
  if ('lte' in cnd && !(version <= cnd.lte)) return false;
  if ('lt' in cnd && !(version < cnd.lt)) return false;
  if ('eq' in cnd && version !== cnd.eq) return false;
  if ('not' in cnd && version === cnd.not) return false;
  if ('between' in cnd && !(version >= cnd.between.from && version <= cnd.between.to)) return false;
  return true;
}

function shownInVersion(displayOptions, version) {
  if (!displayOptions) return true;
  const show = displayOptions.show && displayOptions.show['@version'];
  if (show && !show.some((condition) => conditionHolds(condition, version))) return false;
  const hide = displayOptions.hide && displayOptions.hide['@version'];
  if (hide && hide.some((condition) => conditionHolds(condition, version))) return false;
  return true;
}

function mergeEntry(existing, entry) {
  if (!existing) return entry;
  const merged = { ...existing };
  merged.types = [...new Set([...existing.types, ...entry.types])].sort();
  if (entry.values || existing.values) {
    const values = [...(existing.values || []), ...(entry.values || [])];
    merged.values = [...new Set(values.map((v) => JSON.stringify(v)))].sort().map((v) => JSON.parse(v));
  }
  if (entry.dynamic) merged.dynamic = true;
  merged.definitions = mergeDefinitions(existing.definitions, entry.definitions);
  if (entry.children) merged.children = mergeParameters(existing.children || {}, entry.children);
  if (entry.groups) {
    merged.groups = { ...(existing.groups || {}) };
    for (const [name, children] of Object.entries(entry.groups)) {
      merged.groups[name] = mergeParameters(merged.groups[name] || {}, children);
    }
  }
  return merged;
}

// Definitions in the order the node lists them: n8n takes the default of the first one
// whose display conditions hold, so the order is kept and only exact repeats are dropped.
function mergeDefinitions(first, second) {
  const seen = new Set();
  const result = [];
  for (const definition of [...(first || []), ...(second || [])]) {
    const key = JSON.stringify(definition);
    if (seen.has(key)) continue;
    seen.add(key);
    result.push(definition);
  }
  return result;
}

// The display conditions of one definition without the '@version' keys, which
// describeProperties has already applied to choose the definitions of each version.
function conditionsWithoutVersion(conditions) {
  if (!conditions) return null;
  const rest = Object.fromEntries(Object.entries(conditions).filter(([key]) => key !== '@version'));
  return Object.keys(rest).length > 0 ? rest : null;
}

// Describe one definition with what `rabt validate` needs to find a missing required
// parameter as n8n-workflow's getParameterIssues does: the type, the default that n8n
// fills in for an absent value, whether it is required or needs a number of items, and
// when it is shown.
function describeDefinition(property) {
  assertNoStub(property.default, `${property.name}.default`);
  const definition = { type: property.type, default: property.default === undefined ? null : property.default };
  if (property.required === true) definition.required = true;
  const typeOptions = property.typeOptions || {};
  if (typeOptions.multipleValues !== undefined) definition.multiple_values = true;
  // A fixed collection with minRequiredFields needs that many items in each of its
  // groups, and n8n reports a shortfall as "At least N fields are required".
  if (property.type === 'fixedCollection' && typeOptions.minRequiredFields) {
    definition.min_required_fields = typeOptions.minRequiredFields;
    definition.groups = (property.options || []).map((group) => group.name);
  }
  const displayOptions = property.displayOptions || {};
  const show = conditionsWithoutVersion(displayOptions.show);
  const hide = conditionsWithoutVersion(displayOptions.hide);
  if (show) definition.show = show;
  if (hide) definition.hide = hide;
  return definition;
}

function mergeParameters(target, source) {
  const result = { ...target };
  for (const [name, entry] of Object.entries(source)) result[name] = mergeEntry(result[name], entry);
  return result;
}

function describeProperty(property, version, where) {
  assertNoStub(property.options, `${where}.options`);
  const entry = { types: [property.type], definitions: [describeDefinition(property)] };
  const typeOptions = property.typeOptions || {};
  if (property.type === 'options' || property.type === 'multiOptions') {
    entry.values = (property.options || []).map((option) => option.value);
    if (typeOptions.loadOptionsMethod || typeOptions.loadOptions || typeOptions.loadOptionsDependsOn) {
      entry.dynamic = true;
    }
  } else if (property.type === 'collection') {
    entry.children = describeProperties(property.options || [], version, `${where}.${property.name}`);
  } else if (property.type === 'fixedCollection') {
    entry.groups = {};
    for (const group of property.options || []) {
      const children = describeProperties(group.values || [], version, `${where}.${group.name}`);
      entry.groups[group.name] = mergeParameters(entry.groups[group.name] || {}, children);
    }
  } else if (property.type === 'filter' && typeOptions.filter) {
    // The filter format version is often an expression on $nodeVersion; kept as written.
    entry.filter_version = typeOptions.filter.version === undefined ? null : typeOptions.filter.version;
  }
  return entry;
}

// Parameter names of one version, with option values, nested collections and fixed
// collection groups. A name defined several times (under different display
// conditions) is merged: its values and children are the union of all definitions.
function describeProperties(properties, version, where) {
  assertNoStub(properties, where);
  let result = {};
  for (const property of properties) {
    if (property.type === 'notice' || property.type === 'callout') continue;
    if (!shownInVersion(property.displayOptions, version)) continue;
    const entry = describeProperty(property, version, `${where}.${property.name}`);
    result = mergeParameters(result, { [property.name]: entry });
  }
  return result;
}

function countOutputs(description) {
  return Array.isArray(description.outputs) ? description.outputs.length : null;
}

function describeVersion(description, version, where) {
  const credentials = (description.credentials || [])
    .filter((credential) => shownInVersion(credential.displayOptions, version))
    .map((credential) => credential.name);
  return {
    credentials: [...new Set(credentials)].sort(),
    outputs: countOutputs(description),
    parameters: describeProperties(description.properties || [], version, where),
  };
}

function versionKey(version) {
  return String(Number(version));
}

function describeNode(instance, typeName) {
  const versions = {};
  const base = instance.description;
  if (instance.nodeVersions) {
    for (const [key, versionInstance] of Object.entries(instance.nodeVersions)) {
      const version = Number(key);
      versions[versionKey(version)] = describeVersion(versionInstance.description, version,
        `${typeName}@${key}`);
    }
  } else {
    const listed = Array.isArray(base.version) ? base.version : [base.version];
    for (const version of listed) {
      versions[versionKey(version)] = describeVersion(base, version, `${typeName}@${version}`);
    }
  }
  const numbers = Object.keys(versions).map(Number);
  const first = instance.nodeVersions ? Object.values(instance.nodeVersions)[0].description : base;
  return {
    display_name: base.displayName,
    default_version: Number(base.defaultVersion || Math.max(...numbers)),
    trigger: (first.group || base.group || []).includes('trigger'),
    webhook: Array.isArray(first.webhooks) && first.webhooks.length > 0,
    versions,
  };
}

function findNodeFile(packageDir, nodeFiles, typeName) {
  const name = typeName.slice(PACKAGE_PREFIX.length).toLowerCase();
  const matches = nodeFiles.filter((file) => path.basename(file).toLowerCase() === `${name}.node.js`);
  if (matches.length !== 1) {
    throw new Error(`${typeName}: expected one file named like ${name}.node.js in the package's ` +
      `n8n.nodes list, found ${matches.length}`);
  }
  return path.join(packageDir, matches[0]);
}

function loadNode(file, typeName) {
  const exported = require(file);
  for (const NodeClass of Object.values(exported)) {
    if (typeof NodeClass !== 'function') continue;
    const instance = new NodeClass();
    if (instance.description && PACKAGE_PREFIX + instance.description.name === typeName) {
      return instance;
    }
  }
  throw new Error(`${file} does not export a node named ${typeName}`);
}

function findCredentialFile(packageDir, credentialFiles, name) {
  const matches = credentialFiles.filter(
    (file) => path.basename(file).toLowerCase() === `${name.toLowerCase()}.credentials.js`);
  if (matches.length !== 1) {
    throw new Error(`credential ${name}: expected one file named like ${name}.credentials.js in ` +
      `the package's n8n.credentials list, found ${matches.length}`);
  }
  return path.join(packageDir, matches[0]);
}

// Display name, the fields a user fills in, and whether the HTTP Request node can use
// the credential as a predefined type: OAuth types always can, others need an
// authenticate rule.
function describeCredential(packageDir, credentialFiles, name) {
  const exported = require(findCredentialFile(packageDir, credentialFiles, name));
  for (const CredentialClass of Object.values(exported)) {
    if (typeof CredentialClass !== 'function') continue;
    const instance = new CredentialClass();
    if (instance.name !== name) continue;
    const extendsTypes = instance.extends || [];
    const shown = (instance.properties || [])
      .filter((property) => !['hidden', 'notice', 'callout'].includes(property.type));
    const fieldValues = {};
    for (const property of shown) {
      if (property.type === 'options') {
        fieldValues[property.name] = (property.options || []).map((option) => option.value);
      }
    }
    const oauthTypes = ['oAuth2Api', 'oAuth1Api'];
    return {
      display_name: instance.displayName,
      extends: extendsTypes,
      fields: shown.map((property) => property.name),
      field_values: fieldValues,
      http_request: Boolean(instance.authenticate) || oauthTypes.includes(name) ||
        extendsTypes.some((type) => oauthTypes.includes(type)),
    };
  }
  throw new Error(`no credential class named ${name} in the package`);
}

function main() {
  const [packageDir, ...names] = process.argv.slice(2);
  if (!packageDir || names.length === 0) {
    process.stderr.write('usage: node refresh_n8n_nodes.js PACKAGE_DIR NAME...\n');
    process.exit(2);
  }
  const packageJson = JSON.parse(fs.readFileSync(path.join(packageDir, 'package.json'), 'utf8'));
  const nodes = {};
  const credentials = {};
  for (const name of names) {
    if (name.startsWith('credential:')) {
      const credential = name.slice('credential:'.length);
      credentials[credential] = describeCredential(packageDir, packageJson.n8n.credentials,
        credential);
    } else {
      const instance = loadNode(findNodeFile(packageDir, packageJson.n8n.nodes, name), name);
      nodes[name] = describeNode(instance, name);
    }
  }
  const result = {
    package: packageJson.name,
    package_version: packageJson.version,
    stubbed_modules: [...stubbedModules].sort(),
    nodes,
    credentials,
  };
  process.stdout.write(JSON.stringify(result));
}

main();
