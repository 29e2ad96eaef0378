// Basic Profile PubSub through fastwamp with wampy.js 8 (json and msgpack).
//
// wampy always publishes with acknowledge=true, and never sends exclude_me=false
// (see docs: it drops falsy standard options), so only the default exclusion is tested.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import {
    EventSink, SERIALIZERS, TEST_TIMEOUT, barrier, dropSession, norm, peers, uniqueUri,
} from './helpers.mjs';

const MIB = 1024 * 1024;

for (const ser of SERIALIZERS) {
    describe(`wampy PubSub over ${ser}`, { timeout: TEST_TIMEOUT }, () => {
        test('several subscribers receive args and kwargs', async (t) => {
            const p = peers(t);
            const publisher = await p.connect(ser);
            const subscribers = [await p.connect(ser), await p.connect(ser), await p.connect(ser)];
            const topic = uniqueUri('fanout');
            const sinks = subscribers.map(() => new EventSink());
            for (const [i, s] of subscribers.entries()) {
                const sub = await s.subscribe(topic, sinks[i].handler);
                assert.ok(sub.subscriptionId);
            }
            const kwargs = { ключ: 'значение', nested: { a: [true, false] } };
            const pub = await publisher.publish(topic, { argsList: [1, 'two', [3.5, null]], argsDict: kwargs });
            assert.ok(pub.publicationId, 'PUBLISHED without a publication id');
            for (const sink of sinks) {
                const [ev] = await sink.wait(1);
                assert.deepEqual(norm(ev.argsList), [1, 'two', [3.5, null]]);
                assert.deepEqual(norm(ev.argsDict), kwargs);
            }
            for (const s of subscribers) await barrier(s);
            assert.deepEqual(sinks.map((s) => s.events.length), [1, 1, 1]);
        });

        test('publisher does not receive its own event', async (t) => {
            const p = peers(t);
            const publisher = await p.connect(ser);
            const other = await p.connect(ser);
            const topic = uniqueUri('exclude_me');
            const own = new EventSink();
            const theirs = new EventSink();
            await publisher.subscribe(topic, own.handler);
            await other.subscribe(topic, theirs.handler);
            await publisher.publish(topic, ['hello']);
            const [ev] = await theirs.wait(1);
            assert.deepEqual(ev.argsList, ['hello']);
            await barrier(publisher);
            assert.equal(own.events.length, 0, 'the publisher got its own event');
        });

        test('unsubscribe stops delivery to that session only', async (t) => {
            const p = peers(t);
            const publisher = await p.connect(ser);
            const leaving = await p.connect(ser);
            const staying = await p.connect(ser);
            const topic = uniqueUri('unsub');
            const gone = new EventSink();
            const kept = new EventSink();
            const sub = await leaving.subscribe(topic, gone.handler);
            await staying.subscribe(topic, kept.handler);
            await publisher.publish(topic, ['before']);
            await gone.wait(1);
            await kept.wait(1);

            await leaving.unsubscribe(sub.subscriptionId);
            await publisher.publish(topic, ['after']);
            const events = await kept.wait(2);
            assert.deepEqual(events[1].argsList, ['after']);
            await barrier(leaving);
            assert.deepEqual(gone.events.map((e) => e.argsList), [['before']]);
        });

        test('events arrive in publish order', async (t) => {
            const p = peers(t);
            const publisher = await p.connect(ser);
            const subscriber = await p.connect(ser);
            const topic = uniqueUri('order');
            const sink = new EventSink();
            await subscriber.subscribe(topic, sink.handler);
            const n = 200;
            await Promise.all(Array.from({ length: n }, (_, i) => publisher.publish(topic, [i])));
            const events = await sink.wait(n);
            assert.deepEqual(events.map((e) => norm(e.argsList[0])), Array.from({ length: n }, (_, i) => i));
        });

        test('1 MiB event', async (t) => {
            const p = peers(t);
            const publisher = await p.connect(ser);
            const subscriber = await p.connect(ser);
            const topic = uniqueUri('big_event');
            const sink = new EventSink();
            await subscriber.subscribe(topic, sink.handler);
            const text = 'Ünïcødé ✓ '.repeat(MIB / 8);
            await publisher.publish(topic, [text]);
            const [ev] = await sink.wait(1, 10000);
            assert.ok(ev.argsList[0] === text, '1 MiB event payload changed');
        });

        test('a subscriber that drops its connection does not disturb the others', async (t) => {
            const p = peers(t);
            const publisher = await p.connect(ser);
            const dropper = await p.connect(ser);
            const keeper = await p.connect(ser);
            const topic = uniqueUri('leaver');
            const kept = new EventSink();
            await dropper.subscribe(topic, () => {});
            await keeper.subscribe(topic, kept.handler);
            await dropSession(dropper);
            for (let i = 0; i < 20; i++) await publisher.publish(topic, [i]);
            const events = await kept.wait(20);
            assert.deepEqual(events.map((e) => norm(e.argsList[0])), Array.from({ length: 20 }, (_, i) => i));
        });
    });
}

describe('wampy PubSub across serializers', { timeout: TEST_TIMEOUT }, () => {
    test('json and msgpack subscribers get the same event from either publisher', async (t) => {
        const p = peers(t);
        const topic = uniqueUri('mixed');
        const sinks = {};
        for (const ser of SERIALIZERS) {
            const s = await p.connect(ser);
            sinks[ser] = new EventSink();
            await s.subscribe(topic, sinks[ser].handler);
        }
        for (const ser of SERIALIZERS) {
            const pub = await p.connect(ser);
            await pub.publish(topic, { argsList: [ser, 'ünï ✓', 2 ** 40, 0.5, null], argsDict: { from: ser } });
        }
        for (const ser of SERIALIZERS) {
            const events = await sinks[ser].wait(SERIALIZERS.length);
            assert.deepEqual(events.map((e) => norm(e.argsList)), SERIALIZERS.map((s) => [s, 'ünï ✓', 2 ** 40, 0.5, null]));
            assert.deepEqual(events.map((e) => norm(e.argsDict)), SERIALIZERS.map((s) => ({ from: s })));
        }
    });
});
