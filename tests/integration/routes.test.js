// routes.test.js - the API's route table (server/net/api.c) answers every path
// and method as protocol/HTTP.md says: a path that is no endpoint is 404 at
// once, a path under /api/rooms/ only after the login (401 before), a known
// path with the other method 404, a method other than GET and POST 400, a
// room id that cannot be one (empty, too long, with a slash) no endpoint,
// someone else's room no room, and each endpoint under /api/rooms/{id}
// reaches its handler.
import { test, before, after, describe } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, tempDir, addAccount } from './harness.js';
import { request, loginCookie } from './http.js';

const PW = { alice: 'alice-long-password', bob: 'bob-long-password-2' };

describe('the API route table', () => {
  let srv, alice, bob, room;
  before(async () => {
    const dir = tempDir('routes');
    addAccount(dir, 'alice', PW.alice);
    addAccount(dir, 'bob', PW.bob);
    srv = await startServer({ dataDir: dir });
    alice = await loginCookie(srv, 'alice', PW.alice);
    bob = await loginCookie(srv, 'bob', PW.bob);
    const created = await request(srv, 'POST', '/api/rooms', { cookie: alice, json: { exercise: 'enactment' } });
    assert.equal(created.status, 201, created.text);
    room = created.json.room.id;
  });
  after(async () => {
    await srv?.stop('SIGKILL');
  });

  const expect = async (method, path, cookie, status, error, opts = {}) => {
    const r = await request(srv, method, path, { cookie, ...opts });
    assert.equal(r.status, status, `${method} ${path}: ${r.text}`);
    if (error) assert.equal(r.json?.error, error, `${method} ${path}: ${r.text}`);
    return r;
  };

  test('no endpoint: 404 without asking for a login', async () => {
    for (const [method, path] of [
      ['GET', '/api/nowhere'],
      ['GET', '/api'],
      ['GET', '/api/'],
      ['GET', '/api/login'], // a POST endpoint
      ['POST', '/api/me'], // a GET endpoint
      ['POST', '/api/crisis'],
      ['GET', '/api/activity'],
      ['GET', '/api/password'],
      ['POST', '/api/exercises'],
      ['GET', '/api/rooms2'],
      ['GET', '/api/me/'],
    ]) {
      const r = await expect(method, path, undefined, 404, 'not_found');
      assert.equal(r.json.message, 'no such endpoint', `${method} ${path}`);
    }
  });

  test('under /api/rooms/: 401 before the login, then 404 for what is no endpoint', async () => {
    const unknown = [
      ['GET', '/api/rooms/'],
      ['GET', `/api/rooms/${room}/nothing`],
      ['GET', `/api/rooms/${room}/log/more`],
      ['GET', `/api/rooms/${'x'.repeat(100)}`], // longer than any room id
      ['POST', `/api/rooms/${room}`], // the room itself is GET only
      ['POST', '/api/rooms/events'],
      ['POST', `/api/rooms/${room}/log`],
      ['GET', `/api/rooms/${room}/ticket`],
      ['GET', `/api/rooms/${room}/invites`],
      ['POST', `/api/rooms/${room}/observers/remove/again`],
    ];
    for (const [method, path] of unknown) await expect(method, path, undefined, 401, 'not_authenticated');
    for (const [method, path] of unknown) {
      const r = await expect(method, path, alice, 404, 'not_found');
      assert.equal(r.json.message, 'no such endpoint', `${method} ${path}`);
    }
  });

  test('every method but GET and POST is a bad request', async () => {
    for (const method of ['PUT', 'DELETE', 'PATCH']) {
      await expect(method, '/api/me', alice, 400, 'bad_request');
      await expect(method, '/api/nowhere', undefined, 400, 'bad_request');
    }
  });

  test("each room endpoint reaches its handler; someone else's room is no room", async () => {
    assert.equal((await expect('GET', `/api/rooms/${room}`, alice, 200)).json.room.id, room);
    assert.ok((await expect('GET', `/api/rooms/${room}/log`, alice, 200)).json);
    assert.ok((await expect('POST', `/api/rooms/${room}/ticket`, alice, 200)).json.ticket);
    // The handlers' own checks of their bodies answer, so each was reached.
    await expect('POST', `/api/rooms/${room}/invites`, alice, 400, 'bad_request', { json: { role: 'nobody' } });
    await expect('POST', `/api/rooms/${room}/observers`, alice, 400, 'bad_request', { json: { name: 'bob' } });
    await expect('POST', `/api/rooms/${room}/observers/remove`, alice, 400, 'bad_request', { json: {} });
    for (const [method, path] of [
      ['GET', `/api/rooms/${room}`],
      ['GET', `/api/rooms/${room}/log`],
      ['POST', `/api/rooms/${room}/ticket`],
      ['POST', `/api/rooms/${room}/invites`],
      ['POST', `/api/rooms/${room}/observers`],
      ['GET', '/api/rooms/r-nosuchroom'],
      ['GET', '/api/rooms/bad%20id/log'],
    ]) {
      const r = await expect(method, path, bob, 404, 'not_found', method === 'POST' ? { json: { role: 'partner_a' } } : {});
      assert.equal(r.json.message, 'no such room', `${method} ${path}`);
    }
    // /api/rooms/events is the stream, not a room called "events".
    const stream = await request(srv, 'GET', '/api/rooms/events', { cookie: alice, open: true });
    assert.equal(stream.status, 200);
    assert.match(stream.headers['content-type'], /^text\/event-stream/);
    stream.req.destroy();
  });

  test('the public endpoints need no login; the others say 401', async () => {
    await expect('GET', '/api/crisis', undefined, 200);
    await expect('POST', '/api/logout', undefined, 204);
    for (const [method, path] of [
      ['GET', '/api/me'],
      ['GET', '/api/exercises'],
      ['GET', '/api/rooms'],
      ['POST', '/api/rooms'],
      ['POST', '/api/activity'],
      ['POST', '/api/password'],
      ['GET', '/api/rooms/events'],
      ['GET', `/api/rooms/${room}`],
    ])
      await expect(method, path, undefined, 401, 'not_authenticated');
    await expect('GET', '/api/me', alice, 200);
    await expect('POST', '/api/activity', alice, 204);
  });
});
