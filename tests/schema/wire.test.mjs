// wire.test.mjs - the schemas describe exactly what the C core emits: runs
// the wire_samples program (built by CMake; ATTUNE_BUILD_DIR, default
// ./build) and validates every server message, event object and per-role
// state it prints against protocol/schema/. A missing binary is a failure.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import Ajv2020 from 'ajv/dist/2020.js';
import { VISIBILITY } from '../integration/visibility.js';
import addFormats from 'ajv-formats';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const buildDir = process.env.ATTUNE_BUILD_DIR || join(root, 'build');
const program = join(buildDir, 'tests', 'wire_samples');
const BASE = 'https://attune.example/schema/';

function walk(dir) {
  return readdirSync(dir).flatMap((name) => {
    const p = join(dir, name);
    return statSync(p).isDirectory() ? walk(p) : [p];
  });
}

test('every message the C core emits validates against its schema', () => {
  assert.ok(existsSync(program), `${program} is missing: build the project first (cmake)`);
  const ajv = new Ajv2020({ allErrors: true, strict: true, strictTypes: false, strictRequired: false });
  addFormats(ajv);
  for (const p of walk(join(root, 'protocol', 'schema')).filter((f) => f.endsWith('.schema.json')))
    ajv.addSchema(JSON.parse(readFileSync(p, 'utf8')));
  const lines = execFileSync(program, { encoding: 'utf8' }).trim().split('\n');
  const seen = new Set();
  for (const line of lines) {
    const { schema, message } = JSON.parse(line);
    const validate = ajv.getSchema(`${BASE}${schema}.schema.json`);
    assert.ok(validate, `no schema ${schema}`);
    assert.ok(validate(message), `${schema}: ${ajv.errorsText(validate.errors)}\n${line}`);
    seen.add(schema);
  }
  const eventSchemas = [...seen].filter((s) => s.startsWith('event/'));
  for (const t of Object.keys(VISIBILITY))
    assert.ok(seen.has(`event/${t}`), `no event/${t} sample (covered: ${eventSchemas.join(', ')})`);
  for (const s of ['server/event', 'server/state', 'server/ack', 'server/error', 'server/bye'])
    assert.ok(seen.has(s), `no ${s} sample`);
});
