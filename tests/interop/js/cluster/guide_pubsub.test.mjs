// The guide's PubSub and monitoring examples ("Beyond the Basics") on a three-node fastwamp
// cluster, with wampy.js 8.0.2 over json and msgpack: publishers and subscribers on DIFFERENT
// nodes. The guide's code is written as in ../guide_pubsub.test.mjs.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import { SERIALIZERS } from '../helpers.mjs';
import { barrier, kill, myapp, norm, sameId, until } from '../guide_helpers.mjs';
import { clusterPeers, untilCallees, untilSubscribers } from './nodes.mjs';

const TIMEOUT = 30000;

for (const ser of SERIALIZERS) {
    describe(`guide PubSub examples across nodes over ${ser}`, { timeout: TIMEOUT }, () => {
        test('Publisher Exclusion: subscribers on nodes 1 and 2 get every message once, in order; the publisher none', async (t) => {
            const p = clusterPeers(t);
            const app = myapp();
            const got = [[], [], []];
            const sessions = [];
            for (const node of [0, 1, 2]) {
                const wampy = await p.connect(node, ser);
                await wampy.subscribe(`${app}.chat.message`, function(args) {
                    // Won't receive messages published by this session
                    got[node].push(args[0]);
                });
                sessions.push(wampy);
            }
            const wampy = sessions[0];
            await untilSubscribers(wampy, `${app}.chat.message`, 3);
            for (let n = 0; n < 20; n++) {
                await wampy.publish(`${app}.chat.message`, [`Hello everyone! #${n}`], {}, {
                    exclude_me: true // Don't receive this event
                });
            }
            const want = Array.from({ length: 20 }, (_, n) => `Hello everyone! #${n}`);
            await until(() => got[1].length >= 20 && got[2].length >= 20, 'the messages on nodes 1 and 2');
            for (const s of sessions) await barrier(s);
            assert.deepEqual(got, [[], want, want]);
        });

        test('Subscriber Filtering: eligible and exclude with session ids of other nodes', async (t) => {
            const p = clusterPeers(t);
            const app = myapp();
            const subs = [await p.connect(1, ser), await p.connect(2, ser), await p.connect(2, ser)];
            const got = subs.map(() => []);
            for (const [i, s] of subs.entries()) {
                await s.subscribe(`${app}.admin.alert`, (args) => got[i].push(['alert', args[0]]));
                await s.subscribe(`${app}.broadcast`, (args) => got[i].push(['broadcast', args[0]]));
            }
            const [session_id_1, session_id_2, session_id_3] = subs.map((s) => s.getSessionId());
            const wampy = await p.connect(0, ser);
            await untilSubscribers(wampy, `${app}.broadcast`, 3);
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
        });

        test('Pattern-Based Subscriptions: a prefix subscriber on node 2 gets user events published on node 0', async (t) => {
            const p = clusterPeers(t);
            const app = myapp();
            const lines = [];
            const wampy = await p.connect(2, ser);
            // Subscribe to all user events with prefix
            await wampy.subscribe(`${app}.users`, {
                onEvent: function(args, kwargs, details) {
                    lines.push(['User event:', details.topic, norm(args)]);
                },
                match: 'prefix'
            });
            const publisher = await p.connect(0, ser);
            await untilSubscribers(publisher, `${app}.users`, 1, 'prefix');
            for (const what of ['created', 'updated', 'deleted']) {
                await publisher.publish(`${app}.users.${what}`, [{ id: 7, what }]);
            }
            await until(() => lines.length === 3, 'three user events');
            assert.deepEqual(lines, ['created', 'updated', 'deleted'].map((what) =>
                ['User event:', `${app}.users.${what}`, [{ id: 7, what }]]));
        });

        test('Publisher Identification: details.publisher on node 1 is the id of publishers on nodes 0 and 2', async (t) => {
            const p = clusterPeers(t);
            const app = myapp();
            const wampy = await p.connect(1, ser);
            const seen = [];
            await wampy.subscribe(`${app}.events`, {
                onEvent: function(args, kwargs, details) {
                    // details.publisher contains publisher's session ID
                    seen.push([details.publisher, norm(args), norm(kwargs)]);
                },
                get_publisher: true // Request publisher disclosure
            });
            const publishers = [await p.connect(0, ser), await p.connect(2, ser)];
            for (const [i, pub] of publishers.entries()) {
                await untilSubscribers(pub, `${app}.events`, 1);
                await pub.publish(`${app}.events`, ['order', i], { total: 9.5 });
            }
            await until(() => seen.length === 2, 'two events');
            for (const [i, pub] of publishers.entries()) {
                assert.ok(sameId(seen[i][0], pub.getSessionId()), `details.publisher ${seen[i][0]}`);
                assert.deepEqual(seen[i].slice(1), [['order', i], { total: 9.5 }]);
            }
        });

        test('Event retention: a subscriber on node 2 gets the last event retained on node 0', async (t) => {
            const p = clusterPeers(t);
            const app = myapp();
            const publisher = await p.connect(0, ser);
            // wampy 8 drops PUBLISH.Options.retain (it checks it, then leaves it out of the
            // message): put it on the wire below wampy.
            publisher.tap.rewrites.push((m) => { if (m[0] === 16 && m[3] === `${app}.status`) m[2].retain = true; });
            await publisher.publish(`${app}.status`, ['starting'], {}, { retain: true });
            await publisher.publish(`${app}.status`, ['ready'], {}, { retain: true });
            await barrier(publisher);
            const got = [];
            // (the retained event reaches node 2 through NATS within milliseconds: a new
            // subscriber tries again until it is there)
            for (const t0 = Date.now(); got.length === 0 && Date.now() - t0 < 5000;) {
                const wampy = await p.connect(2, ser);
                await wampy.subscribe(`${app}.status`, {
                    onEvent: (args, kwargs, details) => got.push([args[0], details.retained]),
                    get_retained: true
                });
                await barrier(wampy);
                const subscribe = wampy.tap.sent.find((m) => m[0] === 32 && m[3] === `${app}.status`);
                assert.equal(subscribe[2].get_retained, true);
            }
            assert.deepEqual(got, [['ready', true]]);
        });

        test('Monitor and Measure: a watcher on node 0 sees registrations of callees on nodes 1 and 2 come and go', async (t) => {
            const p = clusterPeers(t);
            const app = myapp();
            const proc = `${app}.order.process`;
            const wampy = await p.connect(0, ser);
            const events = [];
            const regIds = new Set();
            for (const topic of ['on_create', 'on_register', 'on_unregister', 'on_delete']) {
                await wampy.subscribe(`wamp.registration.${topic}`, (args) => events.push([topic, args]));
            }
            const mine = () => events.filter(([topic, args]) => (topic === 'on_create'
                ? args[1].uri === proc : regIds.has(String(args[1]))));
            // node 0 must know that the watcher listens before the callees register
            const probe = await p.connect(1, ser);
            await probe.register(`${app}.probe`, { rpc: () => [] });
            await until(() => events.some(([topic, args]) => topic === 'on_create' && args[1].uri === `${app}.probe`),
                'the probe registration seen from node 0', 8000);

            const a = await p.connect(1, ser);
            const b = await p.connect(2, ser);
            const regA = await a.register(proc, { rpc: () => ['a'], invoke: 'roundrobin' });
            regIds.add(String(regA.registrationId));
            await until(() => mine().length === 2, 'on_create + on_register');
            await untilCallees(b, proc, 1);
            const regB = await b.register(proc, { rpc: () => ['b'], invoke: 'roundrobin' });
            regIds.add(String(regB.registrationId));
            await until(() => mine().length === 3, 'on_register(B)');
            await untilCallees(wampy, proc, 2);
            // the ids in these events are those of the callee's node; node 0 accepts them
            for (const reg of [regA, regB]) {
                const details = await wampy.wampy.call('wamp.registration.get', [reg.registrationId]);
                assert.equal(details.argsList[0].uri, proc);
            }
            await a.unregister(proc); // B is still there: no on_delete
            await until(() => mine().length === 4, 'on_unregister(A)');
            await untilCallees(a, proc, 1);
            await kill(b); // the last callee goes away abruptly
            await until(() => mine().length === 6, 'on_unregister(B) + on_delete');
            assert.deepEqual(mine().map((e) => e[0]),
                ['on_create', 'on_register', 'on_register', 'on_unregister', 'on_unregister', 'on_delete']);
            assert.ok(sameId(mine()[0][1][0], a.getSessionId()));
        });
    });
}
