// Every PubSub and monitoring example of the guide ("Beyond the Basics": event filtering,
// pattern-based subscriptions, publisher identification, meta events), run against fastwamp with
// wampy.js 8.0.2 over json and msgpack.
//
// As in guide_rpc.test.mjs: the guide's code is pasted as written, `com.myapp` becomes a unique
// root `${app}`, `wampy` is a GuideWampy (guide_helpers.mjs) and `console` a local recorder.
// Negative checks ("X received nothing") end with a barrier() round trip on X instead of sleeping.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import { SERIALIZERS, TEST_TIMEOUT } from './helpers.mjs';
import {
    barrier, guidePeers, kill, myapp, norm, sameId, until,
} from './guide_helpers.mjs';

function recorder() {
    const lines = [];
    return { lines, log: (...a) => lines.push(a), error: (...a) => lines.push(['ERROR', ...a]) };
}

const PUBLISH = 16;
const SUBSCRIBE = 32;

for (const ser of SERIALIZERS) {
    describe(`guide PubSub examples over ${ser}`, { timeout: TEST_TIMEOUT }, () => {
        test('Publisher Exclusion: exclude_me: true, the publisher does not get its own message', async (t) => {
            const p = guidePeers(t);
            const app = myapp();
            const consoles = [recorder(), recorder()];
            const sessions = [await p.connect(ser), await p.connect(ser)];
            for (const [i, wampy] of sessions.entries()) {
                const console = consoles[i];
                await wampy.subscribe(`${app}.chat.message`, function(args) {
                    // Won't receive messages published by this session
                    console.log('Message from someone else:', args[0]);
                });
            }
            const [wampy, other] = sessions;
            await wampy.publish(`${app}.chat.message`, ['Hello everyone!'], {}, {
                exclude_me: true // Don't receive this event
            });
            await until(() => consoles[1].lines.length === 1, 'the other session to get the message');
            assert.deepEqual(consoles[1].lines, [['Message from someone else:', 'Hello everyone!']]);
            await barrier(wampy);
            assert.deepEqual(consoles[0].lines, []);
            const pub = wampy.tap.sent.find((m) => m[0] === PUBLISH && m[3] === `${app}.chat.message`);
            assert.equal(pub[2].exclude_me, true);

            await other.publish(`${app}.chat.message`, ['Hi back'], {}, { exclude_me: true });
            await until(() => consoles[0].lines.length === 1, 'the first session to get the reply');
            assert.deepEqual(consoles[0].lines, [['Message from someone else:', 'Hi back']]);

            // exclude_me: false never leaves wampy (it drops falsy options); put on the wire
            // below wampy, the router lets the publisher receive its own event.
            await wampy.publish(`${app}.chat.message`, ['dropped by wampy'], {}, { exclude_me: false });
            const last = wampy.tap.sent.at(-1);
            assert.equal(last[0], PUBLISH);
            assert.equal(last[2].exclude_me, undefined, 'wampy now sends exclude_me: false');
            wampy.tap.rewrites.push((m) => { if (m[0] === PUBLISH && m[4]?.[0] === 'echo') m[2].exclude_me = false; });
            await wampy.publish(`${app}.chat.message`, ['echo'], {}, {});
            await until(() => consoles[0].lines.length === 2, 'the publisher to get its own echo');
            assert.deepEqual(consoles[0].lines[1], ['Message from someone else:', 'echo']);
            await barrier(wampy);
            assert.equal(consoles[0].lines.length, 2);
        });

        test('Subscriber Filtering: eligible and exclude with session ids from wampy.getSessionId()', async (t) => {
            const p = guidePeers(t);
            const app = myapp();
            const subs = [await p.connect(ser), await p.connect(ser), await p.connect(ser)];
            const got = subs.map(() => []);
            for (const [i, s] of subs.entries()) {
                await s.subscribe(`${app}.admin.alert`, (args) => got[i].push(['alert', args[0]]));
                await s.subscribe(`${app}.broadcast`, (args) => got[i].push(['broadcast', args[0]]));
            }
            const [session_id_1, session_id_2, session_id_3] = subs.map((s) => s.getSessionId());
            if (ser === 'msgpack') assert.equal(typeof session_id_1, 'bigint'); // and they go back as uint64
            const wampy = await p.connect(ser);
            // Only send to specific sessions
            await wampy.publish(`${app}.admin.alert`, ['System issue'], {}, {
                eligible: [session_id_1, session_id_2] // Only these sessions receive
            });
            // Exclude specific sessions
            await wampy.publish(`${app}.broadcast`, ['Update'], {}, {
                exclude: [session_id_3] // Everyone except this session
            });
            await until(() => got[0].length === 2 && got[1].length === 2, 'sessions 1 and 2 to get both');
            for (const s of subs) await barrier(s);
            assert.deepEqual(got, [
                [['alert', 'System issue'], ['broadcast', 'Update']],
                [['alert', 'System issue'], ['broadcast', 'Update']],
                [],
            ]);
            const sent = wampy.tap.sent.filter((m) => m[0] === PUBLISH);
            assert.deepEqual(norm(sent[0][2].eligible), norm([session_id_1, session_id_2]));
            assert.deepEqual(norm(sent[1][2].exclude), norm([session_id_3]));
        });

        test('Pattern-Based Subscriptions: "com.myapp.users." as wampy accepts it ("com.myapp.users", match prefix)', async (t) => {
            // wampy refuses the guide's trailing-dot URI for subscribe() as for register(): UriError,
            // nothing sent. 'com.myapp.users' with match prefix works, but as a plain string prefix
            // it also receives 'com.myapp.usersettings.*'.
            const p = guidePeers(t);
            const app = myapp();
            const wampy = await p.connect(ser);
            await assert.rejects(wampy.subscribe(`${app}.users.`, { onEvent: () => {}, match: 'prefix' }),
                (e) => { assert.equal(e.name, 'UriError'); return true; });
            const console = recorder();
            // Subscribe to all user events with prefix
            await wampy.subscribe(`${app}.users`, {
                onEvent: function(args, kwargs, details) {
                    console.log('User event:', details.topic, args);
                },
                match: 'prefix'
            });
            const publisher = await p.connect(ser);
            for (const what of ['created', 'updated', 'deleted']) {
                await publisher.publish(`${app}.users.${what}`, [{ id: 7, what }]);
            }
            await publisher.publish(`${app}.usersettings.changed`, ['theme']);
            await publisher.publish(`${app}.orders.created`, ['not a user event']);
            await until(() => console.lines.length === 4, 'four events');
            await barrier(wampy);
            // Receives events from: com.myapp.users.created / updated / deleted
            assert.deepEqual(norm(console.lines), [
                ['User event:', `${app}.users.created`, [{ id: 7, what: 'created' }]],
                ['User event:', `${app}.users.updated`, [{ id: 7, what: 'updated' }]],
                ['User event:', `${app}.users.deleted`, [{ id: 7, what: 'deleted' }]],
                ['User event:', `${app}.usersettings.changed`, ['theme']],
            ]);
        });

        test('Pattern-Based Subscriptions: the guide\'s exact "com.myapp.users." (URI check bypassed below wampy)', async (t) => {
            // wampy subscribes to 'com.myapp.users'; its serializer rewrites that SUBSCRIBE's URI to
            // 'com.myapp.users.' on the wire. EVENTs are dispatched by subscription id, so the
            // handler still runs.
            const p = guidePeers(t);
            const app = myapp();
            const wampy = await p.connect(ser);
            wampy.tap.rewrites.push((m) => {
                if (m[0] === SUBSCRIBE && m[3] === `${app}.users`) m[3] = `${app}.users.`;
            });
            const console = recorder();
            await wampy.subscribe(`${app}.users`, {
                onEvent: function(args, kwargs, details) {
                    console.log('User event:', details.topic, args);
                },
                match: 'prefix'
            });
            assert.ok(wampy.tap.sent.some((m) => m[0] === SUBSCRIBE && m[3] === `${app}.users.`));
            const publisher = await p.connect(ser);
            await publisher.publish(`${app}.usersettings.changed`, ['theme']);
            for (const what of ['created', 'updated', 'deleted']) {
                await publisher.publish(`${app}.users.${what}`, [what], { by: 'admin' });
            }
            await until(() => console.lines.length === 3, 'three events');
            await barrier(wampy);
            assert.deepEqual(console.lines, ['created', 'updated', 'deleted'].map((w) => ['User event:', `${app}.users.${w}`, [w]]));
        });

        test('Publisher Identification: details.publisher is the publisher\'s session id (get_publisher: true)', async (t) => {
            const p = guidePeers(t);
            const app = myapp();
            const wampy = await p.connect(ser);
            const console = recorder();
            await wampy.subscribe(`${app}.events`, {
                onEvent: function(args, kwargs, details) {
                    // details.publisher contains publisher's session ID
                    console.log('Published by session:', details.publisher);
                    console.log('Event data:', args, kwargs);
                },
                get_publisher: true // Request publisher disclosure
            });
            // wampy 8 does not send get_publisher; the router discloses anyway (disclosure "always").
            const sub = wampy.tap.sent.find((m) => m[0] === SUBSCRIBE && m[3] === `${app}.events`);
            assert.equal(sub[2].get_publisher, undefined);

            const publishers = [await p.connect(ser), await p.connect(ser)];
            for (const [i, pub] of publishers.entries()) {
                await pub.publish(`${app}.events`, ['order', i], { total: 9.5 });
            }
            await until(() => console.lines.length === 4, 'two events');
            for (const [i, pub] of publishers.entries()) {
                const [label, publisher] = console.lines[2 * i];
                assert.equal(label, 'Published by session:');
                assert.ok(sameId(publisher, pub.getSessionId()), `details.publisher ${publisher} != ${pub.getSessionId()}`);
                assert.deepEqual(norm(console.lines[2 * i + 1]), ['Event data:', ['order', i], { total: 9.5 }]);
            }
        });

        test('Monitor and Measure: wamp.registration.on_create / on_delete while callees come and go', async (t) => {
            const p = guidePeers(t);
            const app = myapp();
            const proc = `${app}.order.process`;
            const wampy = await p.connect(ser);
            const console = recorder();
            const events = [];
            // Subscribe to registration changes (the guide's code, plus a record of args)
            await wampy.subscribe('wamp.registration.on_create', function(args, kwargs) {
                events.push(['on_create', args, kwargs]);
                console.log('New registration:', kwargs);
            });
            await wampy.subscribe('wamp.registration.on_delete', function(args, kwargs) {
                events.push(['on_delete', args, kwargs]);
                console.log('Registration removed:', kwargs);
            });
            for (const topic of ['on_register', 'on_unregister']) {
                await wampy.subscribe(`wamp.registration.${topic}`, (args, kwargs) => events.push([topic, args, kwargs]));
            }
            const mine = () => events.filter(([topic, args]) => (topic === 'on_create'
                ? args[1].uri.startsWith(app) : regIds.has(String(args[1]))));
            const regIds = new Set();

            const a = await p.connect(ser);
            const b = await p.connect(ser);
            const ida = a.getSessionId();
            const idb = b.getSessionId(); // (wampy forgets it once the session is gone)
            const regA = await a.register(proc, { rpc: () => ['a'], invoke: 'roundrobin' });
            regIds.add(String(regA.registrationId));
            await until(() => mine().length === 2, 'on_create + on_register');
            const regB = await b.register(proc, { rpc: () => ['b'], invoke: 'roundrobin' });
            assert.ok(sameId(regA.registrationId, regB.registrationId), 'a shared registration has one id');
            await a.unregister(proc); // B is still there: no on_delete
            await until(() => mine().length === 4, 'on_register(B), on_unregister(A)');
            await kill(b); // the last callee goes away abruptly
            await until(() => mine().length === 6, 'on_unregister(B) + on_delete');

            const got = mine();
            assert.deepEqual(got.map((e) => e[0]), ['on_create', 'on_register', 'on_register', 'on_unregister', 'on_unregister', 'on_delete']);
            // args carry the data: [session, RegistrationDetails] / [session, registration]
            const [, [creator, details]] = got[0];
            assert.ok(sameId(creator, ida));
            assert.deepEqual(norm({ ...details, created: undefined }),
                { id: norm(regA.registrationId), created: undefined, uri: proc, match: 'exact', invoke: 'roundrobin' });
            assert.match(details.created, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d/);
            const sessionsInOrder = got.slice(1).map((e) => e[1][0]);
            for (const [n, want] of [ida, idb, ida, idb, idb].entries()) assert.ok(sameId(sessionsInOrder[n], want), `event ${n + 1}`);
            for (const e of got.slice(1)) assert.ok(sameId(e[1][1], regA.registrationId));
            // The guide prints kwargs: there are none, so it prints undefined (wampy passes the
            // EVENT's missing ArgumentsKw through as undefined).
            for (const e of got) assert.ok(e[2] === undefined || Object.keys(e[2]).length === 0, `kwargs ${JSON.stringify(e[2])}`);
            assert.ok(console.lines.some((l) => l[0] === 'New registration:'));
            assert.ok(console.lines.some((l) => l[0] === 'Registration removed:'));

            // A prefix registration that comes and goes.
            const c = await p.connect(ser);
            const regC = await c.register(`${app}.users`, { rpc: () => [], match: 'prefix' });
            regIds.add(String(regC.registrationId));
            await c.unregister(`${app}.users`);
            await until(() => mine().length === 10, 'the prefix registration events');
            const tail = mine().slice(6);
            assert.deepEqual(tail.map((e) => e[0]), ['on_create', 'on_register', 'on_unregister', 'on_delete']);
            assert.equal(tail[0][1][1].match, 'prefix');
            assert.equal(tail[0][1][1].invoke, 'single');
            for (const e of tail) assert.ok(sameId(e[1][0], c.getSessionId()));
        });
    });
}
