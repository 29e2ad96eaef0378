// Every RPC example of the guide ("Beyond the Basics": load balancing, failover, retries, health
// checks, circuit breaker, pattern-based registration, timeouts, caller identification), run
// against fastwamp with wampy.js 8.0.2 over json and msgpack.
//
// The guide's code is pasted as written, with two mechanical changes:
//   * `com.myapp` becomes a unique root `com.myapp_<hex>` (`${app}`), so that tests sharing the
//     router never collide; patterns keep the same shape (same number of components);
//   * `wampy` is a GuideWampy (guide_helpers.mjs): the guide's callback-style API translated to
//     wampy 8's promise API, see the table at the top of guide_helpers.mjs.
// `console` inside the guide code is a local recorder, so that what the guide prints is checked.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import { SERIALIZERS, TEST_TIMEOUT, sleep } from './helpers.mjs';
import {
    barrier, guidePeers, kill, myapp, norm, sameId, until,
} from './guide_helpers.mjs';

/** A stand-in for `console` that records what the guide's code logs. */
function recorder() {
    const lines = [];
    return {
        lines,
        log: (...a) => lines.push(['log', ...a]),
        error: (...a) => lines.push(['error', ...a]),
    };
}

/** The guide's client-side helpers (Retry Logic, Circuit Breaker Pattern), bound to one client. */
function guideHelpers(wampy) {
    // ---- verbatim from the guide, "Retry Logic" ----
    async function callWithRetry(procedure, args, options = {}, maxRetries = 3) {
        let lastError;
        for (let attempt = 1; attempt <= maxRetries; attempt++) {
            try {
                return await new Promise((resolve, reject) => {
                    wampy.call(procedure, args, {
                        ...options,
                        onSuccess: resolve,
                        onError: reject
                    });
                });
            } catch (error) {
                lastError = error;
                if (attempt < maxRetries) {
                    // Exponential backoff
                    const delay = Math.pow(2, attempt) * 100;
                    await new Promise(resolve => setTimeout(resolve, delay));
                }
            }
        }
        throw lastError;
    }

    // ---- verbatim from the guide, "Circuit Breaker Pattern" ----
    class CircuitBreaker {
        constructor(procedure, threshold = 5, timeout = 60000) {
            this.procedure = procedure;
            this.threshold = threshold;
            this.timeout = timeout;
            this.failures = 0;
            this.state = 'CLOSED'; // CLOSED, OPEN, HALF_OPEN
            this.nextAttempt = null;
        }
        async call(args, kwargs) {
            if (this.state === 'OPEN') {
                if (Date.now() < this.nextAttempt) {
                    throw new Error('Circuit breaker OPEN');
                }
                this.state = 'HALF_OPEN';
            }
            try {
                const result = await new Promise((resolve, reject) => {
                    wampy.call(this.procedure, args, {
                        ...kwargs,
                        onSuccess: resolve,
                        onError: reject
                    });
                });
                // Success: reset or close circuit
                if (this.state === 'HALF_OPEN') {
                    this.state = 'CLOSED';
                    this.failures = 0;
                }
                return result;
            } catch (error) {
                this.failures++;
                if (this.failures >= this.threshold) {
                    this.state = 'OPEN';
                    this.nextAttempt = Date.now() + this.timeout;
                }
                throw error;
            }
        }
    }

    return { callWithRetry, CircuitBreaker };
}

/** How many callees the router has for (uri, match), asked through the registration meta API. */
async function calleeCount(client, uri, match = 'exact') {
    const found = await client.wampy.call('wamp.registration.lookup', [uri, { match }]);
    const id = found.argsList[0];
    if (id === null || id === undefined) return 0;
    try {
        const count = await client.wampy.call('wamp.registration.count_callees', [id]);
        return norm(count.argsList[0]);
    } catch (e) {
        if (e.errorUri === 'wamp.error.no_such_registration') return 0; // deleted meanwhile
        throw e;
    }
}

async function untilCallees(client, uri, n, match = 'exact') {
    let last;
    const t0 = Date.now();
    while ((last = await calleeCount(client, uri, match)) !== n) {
        if (Date.now() - t0 > 5000) throw new Error(`${uri}: ${last} callees, expected ${n}`);
        await sleep(5);
    }
}

for (const ser of SERIALIZERS) {
    describe(`guide RPC examples over ${ser}`, { timeout: TEST_TIMEOUT }, () => {
        test('Shared registrations: roundrobin rotates 1, 2, 3, 1, 2 across three instances', async (t) => {
            const p = guidePeers(t);
            const app = myapp();
            const instances = [await p.connect(ser), await p.connect(ser), await p.connect(ser)];
            for (const [i, wampy] of instances.entries()) {
                // Service Instance i+1 (the guide's code)
                await wampy.register(`${app}.process_order`, {
                    rpc: function(args, kwargs) {
                        // Process order logic
                        return {order_id: kwargs.order_id, processed_by: `instance_${i + 1}`};
                    },
                    invoke: 'roundrobin' // Load balancing policy
                });
            }
            // Callers don't know or care which instance handles the call
            const wampy = await p.connect(ser);
            const served = [];
            for (let n = 0; n < 5; n++) {
                const res = await wampy.call(`${app}.process_order`, null, {order_id: 123 + n});
                assert.equal(norm(res.argsDict.order_id), 123 + n);
                served.push(res.argsDict.processed_by);
            }
            // Call 1 → Instance 1, Call 2 → Instance 2, Call 3 → Instance 3, Call 4 → Instance 1 (wraps), Call 5 → Instance 2
            assert.deepEqual(served, ['instance_1', 'instance_2', 'instance_3', 'instance_1', 'instance_2']);
        });

        test('Shared registrations: random spreads 300 calls over every instance', async (t) => {
            const p = guidePeers(t);
            const app = myapp();
            const counts = [0, 0, 0];
            for (let i = 0; i < 3; i++) {
                const wampy = await p.connect(ser);
                const trackEvent = function() { counts[i]++; return ['tracked']; };
                wampy.register(`${app}.analytics.track`, {
                    rpc: trackEvent,
                    invoke: 'random' // Random distribution
                });
                await barrier(wampy);
            }
            const wampy = await p.connect(ser);
            await Promise.all(Array.from({ length: 300 }, (_, n) => wampy.call(`${app}.analytics.track`, [n])));
            assert.equal(counts.reduce((a, b) => a + b), 300);
            // Loose: uniform would give ~100 each; < 30 has probability ~1e-9 per instance.
            for (const c of counts) assert.ok(c >= 30, `random distribution ${counts}`);
        });

        for (const how of ['unregisters', 'disconnects']) {
            test(`first (primary/backup): primary gets every call; backup takes over when the primary ${how}`, async (t) => {
                const p = guidePeers(t);
                const app = myapp();
                const hits = { primary: 0, backup: 0, again: 0 };
                const getCacheValue = (who) => function(args) { hits[who]++; return [who, args[0]]; };
                // Primary instance (registered first)
                const primary = await p.connect(ser);
                await primary.register(`${app}.cache.get`, {
                    rpc: getCacheValue('primary'),
                    invoke: 'first'
                });
                // Backup instance (registered second)
                // Only receives calls if primary unregisters
                const backup = await p.connect(ser);
                await backup.register(`${app}.cache.get`, {
                    rpc: getCacheValue('backup'),
                    invoke: 'first'
                });
                const wampy = await p.connect(ser);
                for (let n = 0; n < 6; n++) {
                    const res = await wampy.call(`${app}.cache.get`, [`key${n}`]);
                    assert.deepEqual(res.argsList, ['primary', `key${n}`]);
                }
                assert.deepEqual(hits, { primary: 6, backup: 0, again: 0 });

                if (how === 'unregisters') {
                    await primary.unregister(`${app}.cache.get`);
                } else {
                    await kill(primary);
                    await untilCallees(wampy, `${app}.cache.get`, 1);
                }
                for (let n = 0; n < 4; n++) {
                    assert.deepEqual((await wampy.call(`${app}.cache.get`, ['k'])).argsList, ['backup', 'k']);
                }
                // A primary coming back registers after the backup: the backup stays first.
                const again = await p.connect(ser);
                await again.register(`${app}.cache.get`, { rpc: getCacheValue('again'), invoke: 'first' });
                for (let n = 0; n < 3; n++) {
                    assert.deepEqual((await wampy.call(`${app}.cache.get`, ['k'])).argsList, ['backup', 'k']);
                }
                assert.deepEqual(hits, { primary: 6, backup: 7, again: 0 });
            });
        }

        test('last (canary deployment): every new call goes to the newest instance', async (t) => {
            const p = guidePeers(t);
            const app = myapp();
            const served = [];
            const processV1 = (n) => function() { served.push(`v1#${n}`); return ['v1']; };
            const processV2 = (n) => function() { served.push(`v2#${n}`); return ['v2']; };
            // Existing version (multiple instances)
            const v1 = [await p.connect(ser), await p.connect(ser)];
            for (const [n, wampy] of v1.entries()) {
                await wampy.register(`${app}.api.process`, {
                    rpc: processV1(n + 1),
                    invoke: 'last'
                });
            }
            const wampy = await p.connect(ser);
            await wampy.call(`${app}.api.process`);
            assert.deepEqual(served, ['v1#2']); // the last registered v1 instance

            // New version (canary instance)
            const canary = await p.connect(ser);
            await canary.register(`${app}.api.process`, {
                rpc: processV2(1),
                invoke: 'last'
            });
            // All new calls go to canary
            served.length = 0;
            for (let n = 0; n < 5; n++) assert.deepEqual((await wampy.call(`${app}.api.process`)).argsList, ['v2']);
            assert.deepEqual(served, Array(5).fill('v2#1'));

            // If it works, deploy more v2 instances: the newest one takes the calls
            const more = await p.connect(ser);
            await more.register(`${app}.api.process`, { rpc: processV2(2), invoke: 'last' });
            served.length = 0;
            for (let n = 0; n < 3; n++) await wampy.call(`${app}.api.process`);
            assert.deepEqual(served, Array(3).fill('v2#2'));

            // Rolling back: when the newest leaves, the previous one is "last" again.
            await kill(more);
            await untilCallees(wampy, `${app}.api.process`, 3);
            await canary.unregister(`${app}.api.process`);
            served.length = 0;
            for (let n = 0; n < 3; n++) await wampy.call(`${app}.api.process`);
            assert.deepEqual(served, Array(3).fill('v1#2'));
        });

        test('single: only one callee allowed; a different policy is refused too', async (t) => {
            const p = guidePeers(t);
            const app = myapp();
            const a = await p.connect(ser);
            const b = await p.connect(ser);
            await a.register(`${app}.singleton`, { rpc: () => ['a'], invoke: 'single' });
            await assert.rejects(b.register(`${app}.singleton`, { rpc: () => ['b'], invoke: 'single' }), (e) => {
                assert.equal(e.error, 'wamp.error.procedure_already_exists');
                return true;
            });
            // "Start Simple, Scale Gradually": a first instance registered with {rpc: handler}
            // (policy single) cannot be joined by a roundrobin instance; all instances have to
            // (re-)register with the same policy.
            await a.register(`${app}.process`, { rpc: () => ['simple'] });
            await assert.rejects(b.register(`${app}.process`, { rpc: () => ['scaled'], invoke: 'roundrobin' }), (e) => {
                assert.equal(e.error, 'wamp.error.procedure_already_exists');
                return true;
            });
            await a.unregister(`${app}.process`);
            await a.register(`${app}.process`, { rpc: () => ['a'], invoke: 'roundrobin' });
            await b.register(`${app}.process`, { rpc: () => ['b'], invoke: 'roundrobin' });
            const c = await p.connect(ser);
            const got = [];
            for (let n = 0; n < 4; n++) got.push((await c.call(`${app}.process`)).argsList[0]);
            assert.deepEqual(got, ['a', 'b', 'a', 'b']);
        });

        test('Automatic failover: killed instance leaves the rotation, a new instance joins it (steps 1-8)', async (t) => {
            const p = guidePeers(t);
            const app = myapp();
            const proc = `${app}.order.process`;
            const served = [];
            const instance = async (name) => {
                const wampy = await p.connect(ser);
                await wampy.register(proc, {
                    rpc: function(args) { served.push(name); return [name, args[0]]; },
                    invoke: 'roundrobin'
                });
                return wampy;
            };
            const i1 = await instance('instance_1'); // 1. Instance 1 registers procedure
            await instance('instance_2'); // 2. Instance 2 registers procedure (roundrobin)
            const wampy = await p.connect(ser);
            for (let n = 0; n < 4; n++) await wampy.call(proc, [n]); // 3. Calls distributed
            assert.deepEqual(served, ['instance_1', 'instance_2', 'instance_1', 'instance_2']);

            await kill(i1); // 4. Instance 1 crashes or disconnects
            await untilCallees(wampy, proc, 1); // 5. Bondy removes Instance 1's registration
            served.length = 0;
            for (let n = 0; n < 4; n++) await wampy.call(proc, [n]); // 6. All subsequent calls go to Instance 2
            assert.deepEqual(served, Array(4).fill('instance_2'));

            await instance('instance_3'); // 7. New Instance 3 registers procedure
            served.length = 0;
            for (let n = 0; n < 6; n++) await wampy.call(proc, [n]); // 8. Distribution resumes between 2 & 3
            assert.equal(served.filter((s) => s === 'instance_2').length, 3, served.join());
            assert.equal(served.filter((s) => s === 'instance_3').length, 3, served.join());
            for (let n = 1; n < served.length; n++) assert.notEqual(served[n], served[n - 1], served.join());
        });

        test('Failover + Retry Logic: a call in flight on a killed instance is retried on the survivor', async (t) => {
            const p = guidePeers(t);
            const app = myapp();
            const proc = `${app}.api.process`;
            let hung;
            const hanging = new Promise((resolve) => { hung = resolve; });
            const i1 = await p.connect(ser);
            await i1.register(proc, {
                rpc: function() { hung(); return new Promise(() => {}); }, // never answers
                invoke: 'roundrobin'
            });
            const i2 = await p.connect(ser);
            await i2.register(proc, { rpc: function(args) { return ['instance_2', args[0]]; }, invoke: 'roundrobin' });

            const wampy = await p.connect(ser);
            const console = recorder();
            const { callWithRetry } = guideHelpers(wampy);
            const data = 'payload';
            const outcome = (async () => {
                // Usage (the guide's)
                try {
                    const result = await callWithRetry(proc, [data]);
                    console.log('Success:', result);
                } catch (error) {
                    console.error('Failed after retries:', error);
                }
            })();
            await hanging; // attempt 1 reached instance 1 (roundrobin starts there)
            await kill(i1); // the router answers attempt 1 with wamp.error.canceled
            await outcome;
            assert.equal(console.lines.length, 1);
            const [kind, , result] = console.lines[0];
            assert.equal(kind, 'log', `callWithRetry failed: ${result?.error ?? result}`);
            assert.deepEqual(result.argsList, ['instance_2', data]);
        });

        test('Retry Logic: callWithRetry succeeds once a callee appears; gives up after maxRetries', async (t) => {
            const p = guidePeers(t);
            const app = myapp();
            const wampy = await p.connect(ser);
            const { callWithRetry } = guideHelpers(wampy);
            const service = await p.connect(ser);

            // Attempt 1 fails (no_such_procedure), the callee registers during the 200 ms backoff.
            const t0 = Date.now();
            const retried = callWithRetry(`${app}.api.process`, ['data']);
            await sleep(50);
            await service.register(`${app}.api.process`, { rpc: (args) => ['processed', args[0]] });
            const result = await retried;
            assert.deepEqual(result.argsList, ['processed', 'data']);
            assert.ok(Date.now() - t0 >= 190, 'no backoff between the attempts?');

            // Transient application errors: the third attempt succeeds.
            let attempts = 0;
            await service.register(`${app}.api.flaky`, {
                rpc: function() {
                    attempts++;
                    if (attempts < 3) throw { error: 'com.myapp.error.transient' }; // eslint-disable-line no-throw-literal
                    return ['finally'];
                }
            });
            assert.deepEqual((await callWithRetry(`${app}.api.flaky`, [])).argsList, ['finally']);
            assert.equal(attempts, 3);

            // Nobody there: the last error comes out, with the guide's error.error URI.
            await assert.rejects(callWithRetry(`${app}.api.missing`, ['data'], {}, 2), (error) => {
                assert.equal(error.error, 'wamp.error.no_such_procedure');
                return true;
            });
        });

        test('Health Checks: the monitor sees healthy, then unhealthy when the service is gone', async (t) => {
            const p = guidePeers(t);
            const app = myapp();
            const service = await p.connect(ser);
            // Service registers health check
            await service.register(`${app}.service.health`, {
                rpc: function() {
                    return {
                        status: 'healthy',
                        timestamp: Date.now(),
                        version: '1.2.3',
                        uptime: process.uptime()
                    };
                }
            });
            const wampy = await p.connect(ser);
            const { callWithRetry } = guideHelpers(wampy);
            const console = recorder();
            // Monitor calls health checks (every 20 ms here instead of 30 s)
            const timer = setInterval(async () => {
                try {
                    const health = await callWithRetry(`${app}.service.health`, [], {}, 1);
                    console.log('Service healthy:', health);
                } catch (error) {
                    console.error('Service unhealthy:', error);
                    // Alert operations team
                }
            }, 20); // Check every 30 seconds
            t.after(() => clearInterval(timer));

            await until(() => console.lines.length >= 2, 'two health checks');
            const [kind, , health] = console.lines[0];
            assert.equal(kind, 'log');
            assert.equal(health.argsDict.status, 'healthy');
            assert.equal(health.argsDict.version, '1.2.3');
            assert.equal(typeof norm(health.argsDict.uptime), 'number');
            assert.ok(Math.abs(norm(health.argsDict.timestamp) - Date.now()) < 5000);

            await kill(service);
            const bad = await until(() => console.lines.find(([k]) => k === 'error'), 'an unhealthy report');
            assert.equal(bad[2].error, 'wamp.error.no_such_procedure');
            clearInterval(timer);
        });

        test('Circuit Breaker: opens after threshold failures, short-circuits, closes after a half-open success', async (t) => {
            const p = guidePeers(t);
            const app = myapp();
            const wampy = await p.connect(ser);
            const { CircuitBreaker } = guideHelpers(wampy);
            const proc = `${app}.external.api`;
            const callsOnWire = () => wampy.tap.sent.filter((m) => m[0] === 48 && m[3] === proc).length;

            // Usage (the guide's): threshold 5, 60 s
            const breaker = new CircuitBreaker(proc, 5, 60000);
            const data = 'x';
            const console = recorder();
            for (let n = 0; n < 5; n++) {
                try {
                    await breaker.call([data]);
                } catch (error) {
                    console.log('Call failed or circuit open:', error);
                }
            }
            assert.deepEqual(console.lines.map((l) => l[2].error), Array(5).fill('wamp.error.no_such_procedure'));
            assert.equal(breaker.state, 'OPEN');
            assert.equal(callsOnWire(), 5);

            // The service comes up, but the open breaker does not even try for 60 s.
            const service = await p.connect(ser);
            let invoked = 0;
            await service.register(proc, { rpc: (args, kwargs) => { invoked++; return { args, kwargs }; } });
            await assert.rejects(breaker.call([data]), /Circuit breaker OPEN/);
            assert.equal(callsOnWire(), 5);
            assert.equal(invoked, 0);

            // A breaker with a 100 ms timeout: half-open after it, and one success closes it.
            const quick = new CircuitBreaker(proc, 1, 100);
            quick.state = 'OPEN';
            quick.failures = 1;
            quick.nextAttempt = Date.now() + quick.timeout;
            await assert.rejects(quick.call([data]), /Circuit breaker OPEN/);
            await sleep(120);
            const result = await quick.call([data], { user: 'alice' });
            assert.equal(quick.state, 'CLOSED');
            assert.equal(quick.failures, 0);
            assert.deepEqual(result.argsDict, { args: [data], kwargs: { user: 'alice' } });
            assert.equal(invoked, 1);
        });

        test('Prefix Matching: "com.myapp.users." as wampy accepts it ("com.myapp.users", match prefix)', async (t) => {
            // wampy 8 refuses the guide's 'com.myapp.users.' before sending anything: its URI check
            // (strict: /^(\w+\.{1,2})*(\w+)$/, loose: /^([^\s#.]+\.{1,2})*([^\s#.]+)$/ for patterns)
            // requires the URI to end with a non-empty component, so register() rejects with a
            // UriError and no REGISTER reaches the router. Without the trailing dot the
            // registration works, but a prefix is a plain string prefix (spec), so
            // 'com.myapp.users' also matches 'com.myapp.usersettings.get'.
            const p = guidePeers(t);
            const app = myapp();
            const wampy = await p.connect(ser);
            const sentBefore = wampy.tap.sent.length;
            await assert.rejects(
                wampy.register(`${app}.users.`, { rpc: () => [], match: 'prefix' }),
                (e) => { assert.equal(e.name, 'UriError'); return true; },
            );
            assert.equal(wampy.tap.sent.length, sentBefore, 'wampy sent something for the refused URI');

            const users = new Map();
            const getUser = (id) => users.get(norm(id)) ?? null;
            const listUsers = () => [...users.values()];
            const createUser = (kwargs) => { const u = { id: users.size + 1, ...kwargs }; users.set(u.id, u); return u; };
            const deleteUser = (id) => users.delete(norm(id));
            const seen = [];
            await wampy.register(`${app}.users`, {
                rpc: function(args, kwargs, details) {
                    seen.push(details.procedure);
                    // details.procedure contains exact URI called
                    const operation = details.procedure.split('.').pop();
                    switch (operation) {
                        case 'get':
                            return getUser(args[0]);
                        case 'list':
                            return listUsers();
                        case 'create':
                            return createUser(kwargs);
                        case 'delete':
                            return deleteUser(args[0]);
                        default:
                            throw new Error('Unknown operation');
                    }
                },
                match: 'prefix'
            });
            await checkUsersHandler(await p.connect(ser), app, seen);
            // The string-prefix catch: a sibling namespace reaches the handler too.
            const caller = await p.connect(ser);
            await assert.rejects(caller.call(`${app}.usersettings.theme`), (e) => {
                assert.equal(e.error, 'wamp.error.invocation_exception'); // 'Unknown operation'
                return true;
            });
            assert.equal(seen.at(-1), `${app}.usersettings.theme`);
        });

        test('Prefix Matching: the guide\'s exact "com.myapp.users." (wampy\'s URI check bypassed below wampy)', async (t) => {
            // wampy registers 'com.myapp.users'; its serializer (below wampy) rewrites the URI of that
            // one REGISTER message to the guide's 'com.myapp.users.' on the wire. wampy keeps its
            // registration under the id the router returns, so INVOCATIONs reach the handler.
            const p = guidePeers(t);
            const app = myapp();
            const wampy = await p.connect(ser);
            wampy.tap.rewrites.push((msg) => {
                if (msg[0] === 64 && msg[3] === `${app}.users`) msg[3] = `${app}.users.`;
            });
            const seen = [];
            const users = new Map();
            await wampy.register(`${app}.users`, {
                rpc: function(args, kwargs, details) {
                    seen.push(details.procedure);
                    const operation = details.procedure.split('.').pop();
                    switch (operation) {
                        case 'get':
                            return users.get(norm(args[0])) ?? null;
                        case 'list':
                            return [...users.values()];
                        case 'create': {
                            const u = { id: users.size + 1, ...kwargs };
                            users.set(u.id, u);
                            return u;
                        }
                        case 'delete':
                            return users.delete(norm(args[0]));
                        default:
                            throw new Error('Unknown operation');
                    }
                },
                match: 'prefix'
            });
            assert.ok(wampy.tap.sent.some((m) => m[0] === 64 && m[3] === `${app}.users.`));
            const caller = await p.connect(ser);
            const lookup = await caller.wampy.call('wamp.registration.lookup', [`${app}.users.`, { match: 'prefix' }]);
            assert.ok(lookup.argsList[0], 'the router does not know the trailing-dot prefix registration');
            await checkUsersHandler(caller, app, seen);
            // With the trailing dot, 'com.myapp.usersettings...' is not under the prefix.
            await assert.rejects(caller.call(`${app}.usersettings.theme`), (e) => {
                assert.equal(e.error, 'wamp.error.no_such_procedure');
                return true;
            });
        });

        test('Wildcard Matching: audit middleware "com.myapp..audit" logs procedure and caller, then forwards', async (t) => {
            const p = guidePeers(t);
            const app = myapp();
            // The actual handlers (another service)
            const service = await p.connect(ser);
            const serviceSaw = [];
            for (const name of ['users', 'orders', 'products']) {
                await service.register(`${app}.${name}`, {
                    rpc: function(args, kwargs, details) {
                        serviceSaw.push(details.caller);
                        return { argsList: [name, ...(args ?? [])], argsDict: kwargs ?? {} };
                    }
                });
            }
            // Logging middleware using wildcard (the guide's code)
            const wampy = await p.connect(ser);
            const console = recorder();
            await wampy.register(`${app}..audit`, {
                rpc: function(args, kwargs, details) {
                    console.log('Audit called:', {
                        procedure: details.procedure,
                        caller: details.caller,
                        timestamp: Date.now()
                    });
                    // Forward to actual handler
                    const actualProcedure = details.procedure.replace('.audit', '');
                    return wampy.call(actualProcedure, args, kwargs);
                },
                match: 'wildcard'
            });

            const caller = await p.connect(ser);
            // Matches: com.myapp.users.audit, com.myapp.orders.audit, com.myapp.products.audit
            for (const name of ['users', 'orders', 'products']) {
                const res = await caller.call(`${app}.${name}.audit`, [7], { reason: 'check' });
                assert.deepEqual(norm(res.argsList), [name, 7]);
                assert.deepEqual(res.argsDict, { reason: 'check' });
            }
            assert.deepEqual(console.lines.map((l) => l[2].procedure),
                ['users', 'orders', 'products'].map((n) => `${app}.${n}.audit`));
            for (const [, , entry] of console.lines) {
                assert.ok(sameId(entry.caller, caller.getSessionId()), `details.caller ${entry.caller}`);
            }
            // The forwarded call comes from the audit session.
            for (const c of serviceSaw) assert.ok(sameId(c, wampy.getSessionId()));

            // Not matched: more components, or an exact registration wins over the wildcard.
            await assert.rejects(caller.call(`${app}.users.x.audit`), (e) => e.error === 'wamp.error.no_such_procedure');
            await service.register(`${app}.users.audit`, { rpc: () => ['exact'] });
            assert.deepEqual((await caller.call(`${app}.users.audit`)).argsList, ['exact']);
            assert.equal(console.lines.length, 3);
        });

        test('Call Timeouts: timeout 500 ms → onError with error.error === "wamp.error.timeout"', async (t) => {
            const p = guidePeers(t);
            const app = myapp();
            const service = await p.connect(ser);
            let finished = 0;
            await service.register(`${app}.slow_operation`, {
                rpc: async function(args) {
                    await sleep(args[0]);
                    finished++;
                    return ['done', args[0]];
                }
            });
            const wampy = await p.connect(ser);
            const console = recorder();
            const run = (data, timeout) => new Promise((resolve) => {
                // The guide's code (with a 500 ms timeout instead of 5 s)
                wampy.call(`${app}.slow_operation`, [data], {
                    timeout: timeout, // 5 second timeout
                    onSuccess: function(result) {
                        console.log('Completed:', result);
                        resolve();
                    },
                    onError: function(error) {
                        if (error.error === 'wamp.error.timeout') {
                            console.log('Operation timed out');
                        } else {
                            console.error('Operation failed:', error);
                        }
                        resolve();
                    }
                });
            });
            const t0 = Date.now();
            await run(900, 500);
            const elapsed = Date.now() - t0;
            assert.deepEqual(console.lines, [['log', 'Operation timed out']]);
            assert.ok(elapsed >= 450 && elapsed < 1500, `timed out after ${elapsed} ms`);
            const call = wampy.tap.sent.find((m) => m[0] === 48 && m[3] === `${app}.slow_operation`);
            assert.equal(call[2].timeout, 500, 'wampy did not send CALL.Options.timeout');

            // Fast enough: completes normally.
            console.lines.length = 0;
            await run(10, 500);
            assert.equal(console.lines[0][0], 'log');
            assert.equal(console.lines[0][1], 'Completed:');
            assert.deepEqual(norm(console.lines[0][2].argsList), ['done', 10]);

            // The late answer of the timed-out call is dropped; the callee keeps working.
            await until(() => finished === 2, 'the slow invocation to finish');
            await barrier(wampy);
            // wampy's callee has no call_canceling: no INTERRUPT on timeout (it would drop its session).
            assert.deepEqual(service.tap.received.filter((m) => m[0] === 69), []);
            assert.deepEqual(norm((await wampy.call(`${app}.slow_operation`, [1])).argsList), ['done', 1]);
        });

        test('Cancel ("Advanced RPC"): a wampy callee (no call_canceling) gets no INTERRUPT in any mode', async (t) => {
            // wampy does not announce callee call_canceling and drops its session on INTERRUPT,
            // so the router must treat every CANCEL mode as skip for it: the caller gets
            // wamp.error.canceled at once, the callee's late answer is dropped, and the callee
            // session survives.
            const p = guidePeers(t);
            const app = myapp();
            const service = await p.connect(ser);
            const releases = [];
            await service.register(`${app}.long_job`, {
                rpc: function(args) {
                    if (args[0] === 'quick') return ['quick'];
                    return new Promise((resolve) => releases.push(() => resolve(['late', args[0]])));
                }
            });
            const wampy = await p.connect(ser);
            for (const mode of ['skip', 'kill', 'killnowait', undefined]) {
                const n = releases.length;
                const call = wampy.call(`${app}.long_job`, [mode ?? 'default']);
                const reqId = wampy.wampy.getOpStatus().reqId;
                await until(() => releases.length === n + 1, 'the invocation');
                const t0 = Date.now();
                wampy.wampy.cancel(reqId, mode ? { mode } : undefined);
                await assert.rejects(call, (e) => {
                    assert.equal(e.error, 'wamp.error.canceled');
                    return true;
                });
                assert.ok(Date.now() - t0 < 1000);
                releases.at(-1)(); // the late YIELD: dropped by the router
                assert.ok(service.getSessionId(), `the callee lost its session (mode ${mode})`);
                assert.deepEqual((await wampy.call(`${app}.long_job`, ['quick'])).argsList, ['quick']);
            }
            const cancels = wampy.tap.sent.filter((m) => m[0] === 49);
            assert.deepEqual(cancels.map((m) => m[2].mode), ['skip', 'kill', 'killnowait', undefined]);
            assert.deepEqual(service.tap.received.filter((m) => m[0] === 69), [], 'INTERRUPT sent to wampy');
        });

        test('Caller Identification: details.caller is the caller\'s session id', async (t) => {
            const p = guidePeers(t);
            const app = myapp();
            const service = await p.connect(ser);
            const console = recorder();
            const performOperation = (args, kwargs) => ({ argsList: args, argsDict: kwargs });
            const seen = [];
            await service.register(`${app}.restricted.operation`, {
                rpc: function(args, kwargs, details) {
                    seen.push(details);
                    // details.caller contains caller's session ID
                    console.log('Called by session:', details.caller);
                    return performOperation(args, kwargs);
                },
                disclose_caller: true // Request caller disclosure
            });
            // wampy 8 does not put disclose_caller on the wire; the router discloses anyway
            // (realm disclosure = "always", like Bondy).
            const reg = service.tap.sent.find((m) => m[0] === 64 && m[3] === `${app}.restricted.operation`);
            assert.equal(reg[2].disclose_caller, undefined);

            const callers = [await p.connect(ser), await p.connect(ser)];
            for (const c of callers) {
                const res = await c.call(`${app}.restricted.operation`, ['op'], { level: 2 });
                assert.deepEqual(res.argsList, ['op']);
            }
            assert.equal(seen.length, 2);
            for (const [i, c] of callers.entries()) {
                assert.ok(sameId(console.lines[i][2], c.getSessionId()),
                    `details.caller ${console.lines[i][2]} != ${c.getSessionId()}`);
                assert.equal(typeof seen[i].caller_authid, 'string');
                assert.equal(seen[i].caller_authrole, 'anonymous');
            }
            assert.ok(!sameId(seen[0].caller, seen[1].caller));
        });
    });
}

/** The guide's four example calls against a users prefix handler. */
async function checkUsersHandler(wampy, app, seen) {
    // All these calls route to the same handler
    const created = await wampy.call(`${app}.users.create`, null, {name: 'Alice'});
    assert.deepEqual(norm(created.argsDict), { id: 1, name: 'Alice' });
    const got = await wampy.call(`${app}.users.get`, [1]);
    assert.deepEqual(norm(got.argsDict), { id: 1, name: 'Alice' });
    const listed = await wampy.call(`${app}.users.list`);
    assert.deepEqual(norm(listed.argsList), [{ id: 1, name: 'Alice' }]);
    const deleted = await wampy.call(`${app}.users.delete`, [1]);
    assert.deepEqual(deleted.argsList, [true]);
    await assert.rejects(wampy.call(`${app}.users.rename`, [1]), (e) => {
        assert.equal(e.error, 'wamp.error.invocation_exception'); // throw new Error('Unknown operation')
        return true;
    });
    assert.deepEqual(seen.slice(0, 5), ['create', 'get', 'list', 'delete', 'rename'].map((op) => `${app}.users.${op}`));
}
