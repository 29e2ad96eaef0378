// Autobahn|JS 26 against fastwamp (run by tests/interop/test_wampy.py with FASTWAMP_WS_URL).
//
// Autobahn|JS 26 uses the platform's WebSocket: built into Node 22+, behind
// --experimental-websocket on Node 20 (test_wampy.py adds the flag there).

import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { describe, it } from 'node:test';

import { REALM, TEST_TIMEOUT, routerUrl, uniqueUri } from './helpers.mjs';

const require = createRequire(import.meta.url);
const autobahn = require('autobahn');

const SERIALIZERS = {
    json: () => new autobahn.serializer.JSONSerializer(),
    msgpack: () => new autobahn.serializer.MsgpackSerializer(),
};

/** Open a session; resolves with [session, connection]. */
function open(serializer) {
    return new Promise((resolve, reject) => {
        const connection = new autobahn.Connection({
            url: routerUrl(),
            realm: REALM,
            serializers: [SERIALIZERS[serializer]()],
            max_retries: 0,
        });
        connection.onopen = (session) => resolve([session, connection]);
        connection.onclose = (reason, details) => {
            reject(new Error(`connection closed: ${reason} ${JSON.stringify(details)}`));
            return true; // do not retry
        };
        connection.open();
    });
}

async function withSessions(serializer, n, body) {
    const opened = [];
    try {
        for (let i = 0; i < n; i++) opened.push(await open(serializer));
        await body(...opened.map(([session]) => session));
    } finally {
        for (const [, connection] of opened) {
            connection.onclose = () => true;
            if (connection.isOpen) connection.close();
        }
    }
}

function uri(name) {
    return uniqueUri(`abjs_${name}`);
}

for (const serializer of Object.keys(SERIALIZERS)) {
    describe(`Autobahn|JS over ${serializer}`, { timeout: TEST_TIMEOUT }, () => {
        it('calls with args and kwargs, and gets application errors back unchanged', async () => {
            await withSessions(serializer, 2, async (callee, caller) => {
                const add = uri('add');
                const fail = uri('fail');
                await callee.register(add, (args, kwargs) =>
                    new autobahn.Result([args[0] + args[1]], { by: kwargs.who }));
                await callee.register(fail, () => {
                    throw new autobahn.Error('com.example.oops', ['bad', 1], { why: 'test' });
                });
                const result = await caller.call(add, [2, 3], { who: 'caller' });
                assert.deepEqual(result.args, [5]);
                assert.deepEqual(result.kwargs, { by: 'caller' });
                await assert.rejects(caller.call(fail), (err) => {
                    assert.equal(err.error, 'com.example.oops');
                    assert.deepEqual(err.args, ['bad', 1]);
                    assert.deepEqual(err.kwargs, { why: 'test' });
                    return true;
                });
                await assert.rejects(caller.call(uri('nothing')),
                    (err) => err.error === 'wamp.error.no_such_procedure');
            });
        });

        it('publishes to several subscribers, excluding the publisher by default', async () => {
            await withSessions(serializer, 3, async (a, b, publisher) => {
                const topic = uri('topic');
                const got = [a, b].map((s) => new Promise((resolve) => s.subscribe(topic,
                    (args, kwargs, details) => resolve([args, kwargs, details]))));
                let own = 0;
                await publisher.subscribe(topic, () => { own += 1; });
                await Promise.all(got.map(() => Promise.resolve()));
                await publisher.publish(topic, ['hi'], { k: 1 }, { acknowledge: true });
                for (const [args, kwargs] of await Promise.all(got)) {
                    assert.deepEqual(args, ['hi']);
                    assert.deepEqual(kwargs, { k: 1 });
                }
                await publisher.call('wamp.session.count'); // a round trip: the event would be here
                assert.equal(own, 0);
            });
        });

        it('routes prefix registrations with details.procedure, and round-robins', async () => {
            await withSessions(serializer, 3, async (one, two, caller) => {
                const base = uri('users');
                await one.register(`${base}.`, (args, kwargs, details) => [1, details.procedure],
                    { match: 'prefix' });
                const rr = uri('rr');
                await one.register(rr, () => 1, { invoke: 'roundrobin' });
                await two.register(rr, () => 2, { invoke: 'roundrobin' });
                assert.deepEqual(await caller.call(`${base}.get`, [123]), [1, `${base}.get`]);
                const order = [];
                for (let i = 0; i < 4; i++) order.push(await caller.call(rr));
                assert.deepEqual(order, [1, 2, 1, 2]);
            });
        });

        it('times out calls in milliseconds with wamp.error.timeout', async () => {
            await withSessions(serializer, 2, async (callee, caller) => {
                const slow = uri('slow');
                await callee.register(slow, () => new Promise(() => {}));
                const started = Date.now();
                await assert.rejects(caller.call(slow, [], {}, { timeout: 200 }),
                    (err) => err.error === 'wamp.error.timeout');
                assert.ok(Date.now() - started < 5000);
            });
        });

        it('delivers progressive results', async () => {
            await withSessions(serializer, 2, async (callee, caller) => {
                const stream = uri('stream');
                await callee.register(stream, (args, kwargs, details) => {
                    for (let i = 0; i < 3; i++) details.progress([i]);
                    return 'done';
                });
                const progress = [];
                const result = await caller.call(stream, [], {}, { receive_progress: true })
                    .progress((value) => progress.push(value)); // one positional result: the value
                assert.equal(result, 'done');
                assert.deepEqual(progress, [0, 1, 2]);
            });
        });

        it('answers meta procedures and publishes meta events', async () => {
            await withSessions(serializer, 2, async (monitor, callee) => {
                const proc = uri('meta');
                const created = new Promise((resolve) => monitor.subscribe(
                    'wamp.registration.on_create', (args) => {
                        if (args[1].uri === proc) resolve(args);
                    }));
                await new Promise((r) => setTimeout(r, 50));
                const registration = await callee.register(proc, () => null);
                const [session, details] = await created;
                assert.equal(String(session), String(callee.id));
                assert.equal(details.match, 'exact');
                const callees = await monitor.call('wamp.registration.list_callees',
                    [registration.id]);
                assert.deepEqual(callees.map(String), [String(callee.id)]);
            });
        });

        it('shards calls by routing key (runmode "partition" and jump_consistent_hash)',
            async () => {
                // Autobahn|JS sends CALL and REGISTER options as given, so it can use
                // sharded registrations; wampy.js and Autobahn|Python drop these options.
                await withSessions(serializer, 4, async (a, b, c, caller) => {
                    const shared = uri('shard_rr');
                    const sharded = uri('shard_jch');
                    for (const [i, s] of [a, b, c].entries()) {
                        await s.register(shared, () => i, { invoke: 'roundrobin' });
                        await s.register(sharded, () => i, { invoke: 'jump_consistent_hash' });
                    }
                    const owner = new Map();
                    for (let round = 0; round < 3; round++) {
                        for (let k = 0; k < 12; k++) {
                            const key = `customer-${k}`;
                            const viaRunmode = await caller.call(shared, [], {},
                                { runmode: 'partition', rkey: key });
                            const viaInvoke = await caller.call(sharded, [], {}, { rkey: key });
                            if (!owner.has(key)) owner.set(key, [viaRunmode, viaInvoke]);
                            assert.deepEqual([viaRunmode, viaInvoke], owner.get(key));
                        }
                    }
                    // The same key hashes to the same callee on both registrations.
                    for (const [first, second] of owner.values()) assert.equal(first, second);
                    assert.ok(new Set([...owner.values()].map(([x]) => x)).size > 1);
                    await assert.rejects(caller.call(sharded),
                        (err) => err.error === 'wamp.error.invalid_argument');
                });
            });
    });
}
