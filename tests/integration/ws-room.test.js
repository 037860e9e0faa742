// ws-room.test.js - the room in the WebSocket URL (PROTOCOL.md section 1,
// issue 13): /ws?room=ID with a link (or a staff ticket) for that room joins;
// a link for another room is refused with error wrong_room, bye wrong_room
// and close 4401, and joins nothing; a room= that is not a room id (bad
// characters, too long, empty, given twice) is refused at the upgrade with
// 400; /ws without room= still joins.
import { test, before, after, describe } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, tempDir, createRoom, addAccount, Client } from './harness.js';
import { request, loginCookie } from './http.js';

describe('/ws?room=ID', () => {
  let srv, one, two, cookie;
  before(async () => {
    const dir = tempDir('wsroom');
    one = createRoom(dir);
    two = createRoom(dir);
    addAccount(dir, 'alice', 'alice-long-password');
    srv = await startServer({ dataDir: dir });
    cookie = await loginCookie(srv, 'alice', 'alice-long-password');
  });
  after(async () => {
    await srv?.stop('SIGKILL');
  });

  test('the right room joins, and the ack names it', async () => {
    const c = await Client.connect(`${srv.wsUrl}?room=${one.room}`);
    const { ack, state } = await c.hello(one.tokens.partner_a);
    assert.equal(ack.type, 'ack', JSON.stringify(ack));
    assert.equal(ack.room, one.room);
    assert.equal(ack.role, 'partner_a');
    assert.equal(state.type, 'state');
    await c.close();
  });

  test('no room= still joins (a single node)', async () => {
    const c = await Client.connect(srv.wsUrl);
    const { ack } = await c.hello(two.tokens.partner_b);
    assert.equal(ack.type, 'ack', JSON.stringify(ack));
    assert.equal(ack.room, two.room);
    await c.close();
  });

  test("a link for another room is refused: wrong_room, bye, 4401, and no one joined", async () => {
    const c = await Client.connect(`${srv.wsUrl}?room=${one.room}`);
    const { ack } = await c.hello(two.tokens.therapist);
    assert.equal(ack.type, 'error');
    assert.equal(ack.code, 'wrong_room');
    const info = await c.closed;
    assert.equal(info.code, 4401);
    const bye = c.msgs.find((m) => m.type === 'bye');
    assert.equal(bye?.reason, 'wrong_room');
    assert.ok(!c.msgs.some((m) => m.type === 'state' || m.type === 'event'), 'nothing of either room was sent');
    // The room the link is for recorded no join from the refused hello.
    const w = await Client.connect(`${srv.wsUrl}?room=${two.room}`);
    const seen = await w.hello(two.tokens.therapist);
    assert.equal(seen.ack.type, 'ack');
    // The catch-up (between the ack and the first state) is what was stored before this hello.
    const stateAt = w.msgs.indexOf(seen.state);
    const replayed = w.msgs.slice(seen.ackIndex, stateAt).filter((m) => m.type === 'event');
    assert.ok(replayed.length > 0);
    assert.ok(!replayed.some((m) => m.event.by === 'therapist'), 'the refused hello recorded nothing');
    await w.close();
    assert.ok(srv.logs.some((l) => l.event === 'wrong_room' && l.url_room === one.room));
  });

  test("a staff ticket for another room is refused the same way", async () => {
    const t = await request(srv, 'POST', '/api/rooms', { cookie, json: { exercise: 'enactment' } });
    assert.equal(t.status, 201, t.text);
    const mine = t.json.room.id;
    const ticket = await request(srv, 'POST', `/api/rooms/${mine}/ticket`, { cookie, json: {} });
    assert.equal(ticket.status, 200, ticket.text);
    const c = await Client.connect(`${srv.wsUrl}?room=${one.room}`);
    const r = await c.request({ type: 'hello', ticket: ticket.json.ticket });
    assert.equal(r.code, 'wrong_room', JSON.stringify(r));
    assert.equal((await c.closed).code, 4401);
    // With its own room in the URL, a fresh ticket joins.
    const again = await request(srv, 'POST', `/api/rooms/${mine}/ticket`, { cookie, json: {} });
    const ok = await Client.connect(`${srv.wsUrl}?room=${mine}`);
    const joined = await ok.request({ type: 'hello', ticket: again.json.ticket });
    assert.equal(joined.type, 'ack', JSON.stringify(joined));
    assert.equal(joined.room, mine);
    await ok.close();
  });

  test('a room= that is not a room id is refused at the upgrade with 400', async () => {
    const bad = [
      'room=a%20b', // a space
      'room=a/b',
      'room=%C3%A9t%C3%A9', // not ASCII
      `room=${'x'.repeat(65)}`, // one byte over 64
      'room=', // empty
      'room', // no value
      `room=${one.room}&room=${two.room}`, // twice
      `room=${one.room}&x=${'y'.repeat(1100)}`, // an argument past 1 KiB
    ];
    for (const q of bad) {
      await assert.rejects(Client.connect(`${srv.wsUrl}?${q}`), (e) => e.statusCode === 400, q);
    }
    assert.ok(srv.logs.some((l) => l.event === 'upgrade_refused' && l.why === 'room= is not a room id'));
    // Other arguments are ignored; the longest valid id is accepted.
    const c = await Client.connect(`${srv.wsUrl}?v=2&room=${one.room}`);
    assert.equal((await c.hello(one.tokens.observer)).ack.type, 'ack');
    await c.close();
    const long = await Client.connect(`${srv.wsUrl}?room=${'x'.repeat(64)}`);
    const r = await long.request({ type: 'hello', token: one.tokens.observer });
    assert.equal(r.code, 'wrong_room');
    await long.closed;
  });
});
