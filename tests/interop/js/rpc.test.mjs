// Basic Profile RPC through fastwamp with wampy.js 8 (json and msgpack).

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import {
    SERIALIZERS, TEST_TIMEOUT, dropSession, jsonBytes, norm, peers, sleep, uniqueUri,
} from './helpers.mjs';

const MIB = 1024 * 1024;

const VALUES = [0, 1, -1, 2 ** 31, 2 ** 40, -(2 ** 40), 1.5, -0.25, true, false, null, '', 'text', [], {},
    [1, [2, [3, { deep: [null] }]]], { a: { b: { c: [1, 'x', false] } } }];

const UNICODE = ['Grüße aus Köln', '日本語のテキスト', '😀🎉👩‍👩‍👧‍👦', 'e\u0301 vs é', 'עברית и русский',
    'Ω≈ç√∫˜µ≤≥÷', 'a\u0000b', '\u2028\u2029\ufeff', '\u{10fffd}'];

const echo = ({ argsList, argsDict }) => ({ argsList: argsList ?? [], argsDict: argsDict ?? {} });

for (const ser of SERIALIZERS) {
    describe(`wampy RPC over ${ser}`, { timeout: TEST_TIMEOUT }, () => {
        test('call with args and kwargs', async (t) => {
            const p = peers(t);
            const callee = await p.connect(ser);
            const caller = await p.connect(ser);
            const proc = uniqueUri('echo');
            const reg = await callee.register(proc, echo);
            assert.ok(reg.registrationId);

            const kwargs = { alpha: 1, beta: 'two', gamma: [3.5, null], delta: { x: true } };
            const res = await caller.call(proc, { argsList: VALUES, argsDict: kwargs });
            assert.deepEqual(norm(res.argsList), VALUES);
            assert.deepEqual(norm(res.argsDict), kwargs);

            const onlyArgs = await caller.call(proc, [1, 2, 3]);
            assert.deepEqual(norm(onlyArgs.argsList), [1, 2, 3]);
            const onlyKwargs = await caller.call(proc, { only: 'kw' });
            assert.deepEqual(norm(onlyKwargs.argsDict), { only: 'kw' });
            const single = await caller.call(proc, 'single');
            assert.deepEqual(single.argsList, ['single']);
        });

        test('application error with args and kwargs comes back unchanged', async (t) => {
            const p = peers(t);
            const callee = await p.connect(ser);
            const caller = await p.connect(ser);
            const proc = uniqueUri('fail');
            const errorUri = 'com.example.error.custom_failure';
            const errArgs = [1, 'zwei', [3.5, null], { vier: 4 }, 'ünïcødé ✓'];
            const errKwargs = { reason: 'because', nested: { a: [1, 2, { b: null }] }, flag: false };
            await callee.register(proc, ({ argsList }) => {
                if (argsList[0] === 'bare') {
                    throw { error: errorUri }; // eslint-disable-line no-throw-literal
                }
                throw { error: errorUri, argsList: errArgs, argsDict: errKwargs }; // eslint-disable-line no-throw-literal
            });

            await assert.rejects(caller.call(proc, ['full']), (e) => {
                assert.equal(e.name, 'CallError');
                assert.equal(e.errorUri, errorUri);
                assert.deepEqual(norm(e.argsList), errArgs);
                assert.deepEqual(norm(e.argsDict), errKwargs);
                return true;
            });
            await assert.rejects(caller.call(proc, ['bare']), (e) => {
                assert.equal(e.errorUri, errorUri);
                assert.ok(!e.argsList || e.argsList.length === 0);
                return true;
            });
        });

        test('no_such_procedure', async (t) => {
            const p = peers(t);
            const caller = await p.connect(ser);
            await assert.rejects(caller.call(uniqueUri('nobody_home'), [1]), (e) => {
                assert.equal(e.errorUri, 'wamp.error.no_such_procedure');
                return true;
            });
        });

        test('register twice, unregister, then no_such_procedure', async (t) => {
            const p = peers(t);
            const callee = await p.connect(ser);
            const other = await p.connect(ser);
            const caller = await p.connect(ser);
            const proc = uniqueUri('unreg');
            await callee.register(proc, () => ['first']);
            assert.deepEqual((await caller.call(proc)).argsList, ['first']);

            await assert.rejects(other.register(proc, () => ['second']), (e) => {
                assert.equal(e.errorUri, 'wamp.error.procedure_already_exists');
                return true;
            });

            await callee.unregister(proc);
            await assert.rejects(caller.call(proc), (e) => {
                assert.equal(e.errorUri, 'wamp.error.no_such_procedure');
                return true;
            });
            await other.register(proc, () => ['second']);
            assert.deepEqual((await caller.call(proc)).argsList, ['second']);
        });

        test('1 MiB payloads', async (t) => {
            const p = peers(t);
            const callee = await p.connect(ser);
            const caller = await p.connect(ser);
            const proc = uniqueUri('big');
            await callee.register(proc, echo);
            const text = 'abcdefghijklmnopqrstuvwxyz0123456789'.repeat(Math.ceil(MIB / 36)).slice(0, MIB);
            const wide = '日本語'.repeat(Math.floor(MIB / 3));
            const res = await caller.call(proc, { argsList: [text], argsDict: { wide } });
            assert.equal(res.argsList[0].length, MIB);
            assert.ok(res.argsList[0] === text, '1 MiB ASCII string changed');
            assert.ok(res.argsDict.wide === wide, '1 MiB CJK string changed');
        });

        test('unicode strings and keys', async (t) => {
            const p = peers(t);
            const callee = await p.connect(ser);
            const caller = await p.connect(ser);
            const proc = uniqueUri('unicode');
            await callee.register(proc, echo);
            const kwargs = { ключ: 'значение', キー: UNICODE[1], 'emoji_😀': UNICODE[2] };
            const res = await caller.call(proc, { argsList: UNICODE, argsDict: kwargs });
            assert.deepEqual(res.argsList, UNICODE);
            assert.deepEqual(res.argsDict, kwargs);
        });

        test('concurrent calls answered out of order', async (t) => {
            const p = peers(t);
            const callee = await p.connect(ser);
            const caller = await p.connect(ser);
            const proc = uniqueUri('slow_echo');
            await callee.register(proc, async ({ argsList }) => {
                await sleep((argsList[0] * 7919) % 37);
                return [argsList[0]];
            });
            const n = 60;
            const results = await Promise.all(Array.from({ length: n }, (_, i) => caller.call(proc, [i])));
            assert.deepEqual(results.map((r) => norm(r.argsList[0])), Array.from({ length: n }, (_, i) => i));
        });

        for (const how of ['drop', 'goodbye']) {
            test(`callee leaves (${how}) with a call in flight: caller gets wamp.error.canceled at once`, async (t) => {
                const p = peers(t);
                const callee = await p.connect(ser);
                const caller = await p.connect(ser);
                const proc = uniqueUri('never_returns');
                let invoked;
                const wasInvoked = new Promise((resolve) => { invoked = resolve; });
                await callee.register(proc, () => { invoked(); return new Promise(() => {}); });
                const call = caller.call(proc);
                const outcome = call.then(() => null, (e) => e);
                await wasInvoked;
                const t0 = Date.now();
                if (how === 'drop') {
                    await dropSession(callee);
                } else {
                    await callee.disconnect();
                }
                const err = await outcome;
                const elapsed = Date.now() - t0;
                assert.ok(err, 'the call succeeded?');
                assert.equal(err.errorUri, 'wamp.error.canceled');
                assert.ok(elapsed < 2000, `caller waited ${elapsed} ms`);
                await assert.rejects(caller.call(proc), (e) => {
                    assert.equal(e.errorUri, 'wamp.error.no_such_procedure');
                    return true;
                });
            });
        }
    });
}

describe('wampy RPC across serializers', { timeout: TEST_TIMEOUT }, () => {
    test('binary: JSON "\\0"+base64 from the caller arrives as bytes at a msgpack callee and back', async (t) => {
        const p = peers(t);
        const callee = await p.connect('msgpack');
        const caller = await p.connect('json');
        const proc = uniqueUri('bytes');
        const received = [];
        await callee.register(proc, ({ argsList, argsDict }) => {
            received.push({ argsList, argsDict });
            return { argsList, argsDict };
        });
        const blob = Uint8Array.from({ length: 300 }, (_, i) => (i * 37) % 256);
        const res = await caller.call(proc, { argsList: [jsonBytes(blob), jsonBytes([]), 'plain'], argsDict: { k: jsonBytes([0, 1, 255]) } });

        assert.equal(received.length, 1);
        const [inBlob, inEmpty, inPlain] = received[0].argsList;
        assert.ok(inBlob instanceof Uint8Array, `msgpack callee got ${typeof inBlob}, not bytes`);
        assert.deepEqual(norm(inBlob), blob);
        assert.ok(inEmpty instanceof Uint8Array && inEmpty.length === 0);
        assert.equal(inPlain, 'plain');
        assert.deepEqual(norm(received[0].argsDict.k), Uint8Array.from([0, 1, 255]));

        assert.deepEqual(res.argsList, [jsonBytes(blob), jsonBytes([]), 'plain']);
        assert.deepEqual(res.argsDict, { k: jsonBytes([0, 1, 255]) });
    });

    test('binary: msgpack bytes from the caller arrive as "\\0"+base64 at a JSON callee', async (t) => {
        const p = peers(t);
        const callee = await p.connect('json');
        const caller = await p.connect('msgpack');
        const proc = uniqueUri('bytes_rev');
        const received = [];
        await callee.register(proc, ({ argsList }) => {
            received.push(argsList);
            return [argsList[0]];
        });
        const blob = Uint8Array.from({ length: 1000 }, (_, i) => (i * 13) % 256);
        const res = await caller.call(proc, [blob]);
        assert.equal(received[0][0], jsonBytes(blob));
        assert.ok(res.argsList[0] instanceof Uint8Array);
        assert.deepEqual(norm(res.argsList[0]), blob);
    });
});

describe('wampy progressive results (wampy 8 callee that does not announce the feature)', { timeout: TEST_TIMEOUT }, () => {
    test('the callee sees receive_progress and its progressive YIELDs reach the caller', async (t) => {
        const p = peers(t);
        const callee = await p.connect('json');
        const caller = await p.connect('msgpack');
        const proc = uniqueUri('stream');
        const seen = [];
        await callee.register(proc, ({ details, result_handler }) => {
            seen.push(details.receive_progress === true);
            if (details.receive_progress) {
                for (let i = 0; i < 3; i++) result_handler({ argsList: [i], options: { progress: true } });
            }
            return { argsList: ['done'] };
        });
        const progress = [];
        const res = await caller.call(proc, [], {
            progress_callback: (r) => progress.push(r.argsList[0]),
        });
        assert.deepEqual(seen, [true]);
        assert.deepEqual(progress, [0, 1, 2]);
        assert.deepEqual(res.argsList, ['done']);
    });
});
