// The guide's RPC examples ("Beyond the Basics") on a three-node fastwamp cluster, with wampy.js
// 8.0.2 over json and msgpack: callers and callees on DIFFERENT nodes (node 0 has the callers,
// nodes 1 and 2 the callees, so `locality = "local_first"` has no local callee to prefer).
// The guide's code is written as in ../guide_rpc.test.mjs (GuideWampy, `${app}` for com.myapp).

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import { SERIALIZERS, sleep } from '../helpers.mjs';
import { kill, myapp, norm, sameId } from '../guide_helpers.mjs';
import { clusterPeers, untilCallees } from './nodes.mjs';

const TIMEOUT = 30000;

for (const ser of SERIALIZERS) {
    describe(`guide RPC examples across nodes over ${ser}`, { timeout: TIMEOUT }, () => {
        test('Shared registrations: roundrobin rotates 1, 2, 3, 1, 2 over instances on nodes 1, 2, 1', async (t) => {
            const p = clusterPeers(t);
            const app = myapp();
            for (const [i, node] of [1, 2, 1].entries()) {
                const wampy = await p.connect(node, ser);
                // Service Instance i+1 (the guide's code)
                await wampy.register(`${app}.process_order`, {
                    rpc: function(args, kwargs) {
                        // Process order logic
                        return {order_id: kwargs.order_id, processed_by: `instance_${i + 1}`};
                    },
                    invoke: 'roundrobin' // Load balancing policy
                });
            }
            const wampy = await p.connect(0, ser);
            await untilCallees(wampy, `${app}.process_order`, 3);
            const served = [];
            for (let n = 0; n < 5; n++) {
                const res = await wampy.call(`${app}.process_order`, null, {order_id: 123 + n});
                assert.equal(norm(res.argsDict.order_id), 123 + n);
                served.push(res.argsDict.processed_by);
            }
            assert.deepEqual(served, ['instance_1', 'instance_2', 'instance_3', 'instance_1', 'instance_2']);
        });

        test('first (primary/backup): primary on node 1 gets every call; backup on node 2 takes over when it is killed', async (t) => {
            const p = clusterPeers(t);
            const app = myapp();
            const hits = { primary: 0, backup: 0 };
            const getCacheValue = (who) => function(args) { hits[who]++; return [who, args[0]]; };
            // Primary instance (registered first)
            const primary = await p.connect(1, ser);
            await primary.register(`${app}.cache.get`, {
                rpc: getCacheValue('primary'),
                invoke: 'first'
            });
            const wampy = await p.connect(0, ser);
            await untilCallees(wampy, `${app}.cache.get`, 1);
            // Backup instance (registered second)
            const backup = await p.connect(2, ser);
            await backup.register(`${app}.cache.get`, {
                rpc: getCacheValue('backup'),
                invoke: 'first'
            });
            await untilCallees(wampy, `${app}.cache.get`, 2);
            for (let n = 0; n < 6; n++) {
                assert.deepEqual((await wampy.call(`${app}.cache.get`, [`key${n}`])).argsList, ['primary', `key${n}`]);
            }
            await kill(primary);
            await untilCallees(wampy, `${app}.cache.get`, 1);
            for (let n = 0; n < 3; n++) {
                assert.deepEqual((await wampy.call(`${app}.cache.get`, [`key${n}`])).argsList, ['backup', `key${n}`]);
            }
            assert.deepEqual(hits, { primary: 6, backup: 3 });
        });

        test('last (canary deployment): the canary on node 2 gets every new call', async (t) => {
            const p = clusterPeers(t);
            const app = myapp();
            const served = [];
            const v1 = await p.connect(1, ser);
            await v1.register(`${app}.api.process`, {
                rpc: function() { served.push('v1'); return ['v1']; },
                invoke: 'last'
            });
            const wampy = await p.connect(0, ser);
            await untilCallees(wampy, `${app}.api.process`, 1);
            const canary = await p.connect(2, ser);
            await canary.register(`${app}.api.process`, {
                rpc: function() { served.push('v2'); return ['v2']; },
                invoke: 'last'
            });
            await untilCallees(wampy, `${app}.api.process`, 2);
            for (let n = 0; n < 4; n++) await wampy.call(`${app}.api.process`);
            assert.deepEqual(served, Array(4).fill('v2'));
        });

        test('Prefix Matching: one handler on node 2 serves every "com.myapp.users" procedure called from node 0', async (t) => {
            const p = clusterPeers(t);
            const app = myapp();
            const service = await p.connect(2, ser);
            const users = new Map();
            const seen = [];
            // Register handler for all user operations (the prefix as wampy accepts it)
            await service.register(`${app}.users`, {
                rpc: function(args, kwargs, details) {
                    seen.push(details.procedure);
                    const operation = details.procedure.split('.').pop();
                    switch (operation) {
                    case 'create': users.set(1, { id: 1, ...kwargs }); return users.get(1);
                    case 'get': return users.get(args[0]);
                    default: throw new Error('Unknown operation');
                    }
                },
                match: 'prefix'
            });
            const wampy = await p.connect(0, ser);
            await untilCallees(wampy, `${app}.users`, 1, 'prefix');
            const created = await wampy.call(`${app}.users.create`, null, {name: 'Alice'});
            assert.deepEqual(norm(created.argsDict), { id: 1, name: 'Alice' });
            const got = await wampy.call(`${app}.users.get`, [1]);
            assert.deepEqual(norm(got.argsDict), { id: 1, name: 'Alice' });
            await assert.rejects(wampy.call(`${app}.users.rename`, [1]), (e) => {
                assert.equal(e.error, 'wamp.error.invocation_exception');
                return true;
            });
            assert.deepEqual(seen, ['create', 'get', 'rename'].map((op) => `${app}.users.${op}`));
        });

        test('Call Timeouts: a callee on node 1 too slow for a caller on node 0 → wamp.error.timeout', async (t) => {
            const p = clusterPeers(t);
            const app = myapp();
            const service = await p.connect(1, ser);
            await service.register(`${app}.slow_operation`, {
                rpc: async function(args) {
                    await sleep(args[0]);
                    return ['done', args[0]];
                }
            });
            const wampy = await p.connect(0, ser);
            await untilCallees(wampy, `${app}.slow_operation`, 1);
            const lines = [];
            const run = (data, timeout) => new Promise((resolve) => {
                wampy.call(`${app}.slow_operation`, [data], {
                    timeout: timeout,
                    onSuccess: function(result) { lines.push(['Completed:', norm(result.argsList)]); resolve(); },
                    onError: function(error) {
                        if (error.error === 'wamp.error.timeout') {
                            lines.push(['Operation timed out']);
                        } else {
                            lines.push(['Operation failed:', error.error]);
                        }
                        resolve();
                    }
                });
            });
            const t0 = Date.now();
            await run(900, 400);
            const elapsed = Date.now() - t0;
            await run(10, 2000);
            assert.deepEqual(lines, [['Operation timed out'], ['Completed:', ['done', 10]]]);
            assert.ok(elapsed >= 350 && elapsed < 1500, `timed out after ${elapsed} ms`);
        });

        test('Caller Identification: a callee on node 2 sees the session ids of callers on nodes 0 and 1', async (t) => {
            const p = clusterPeers(t);
            const app = myapp();
            const service = await p.connect(2, ser);
            const seen = [];
            await service.register(`${app}.restricted.operation`, {
                rpc: function(args, kwargs, details) {
                    // details.caller contains caller's session ID
                    seen.push(details);
                    return { argsList: args, argsDict: kwargs };
                },
                disclose_caller: true // Request caller disclosure
            });
            const callers = [await p.connect(0, ser), await p.connect(1, ser)];
            for (const c of callers) {
                await untilCallees(c, `${app}.restricted.operation`, 1);
                const res = await c.call(`${app}.restricted.operation`, ['op'], { level: 2 });
                assert.deepEqual(res.argsList, ['op']);
                assert.deepEqual(norm(res.argsDict), { level: 2 });
            }
            for (const [i, c] of callers.entries()) {
                assert.ok(sameId(seen[i].caller, c.getSessionId()), `details.caller ${seen[i].caller}`);
                assert.equal(seen[i].caller_authrole, 'anonymous');
            }
        });
    });
}
