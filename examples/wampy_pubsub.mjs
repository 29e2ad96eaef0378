// Publish and subscribe: a subscriber on a topic prefix, a publisher that waits for the
// router's acknowledgement, and the publisher identity the router adds to each event.
//
//   node wampy_pubsub.mjs              (against `fastwamp` started with no options)
//
// FASTWAMP_WS_URL and FASTWAMP_REALM override ws://127.0.0.1:8080/ws and realm1.

import WebSocket from 'ws';
import { Wampy } from 'wampy';

const URL = process.env.FASTWAMP_WS_URL || 'ws://127.0.0.1:8080/ws';
const REALM = process.env.FASTWAMP_REALM || 'realm1';

async function join() {
    const wampy = new Wampy(URL, { realm: REALM, ws: WebSocket, autoReconnect: false });
    await wampy.connect();
    return wampy;
}

const subscriber = await join();
const publisher = await join();

const received = [];
let allReceived;
const done = new Promise((resolve) => { allReceived = resolve; });
// match "prefix": every topic starting with com.example.sensor. (wampy refuses the
// trailing dot of the guide's form, so the prefix is written without it).
await subscriber.subscribe('com.example.sensor', ({ argsList, argsDict, details }) => {
    // details.topic: the concrete topic (pattern subscriptions only);
    // details.publisher: the publisher's session id (the realm's disclosure = "always",
    // the default; wampy 8 cannot send SUBSCRIBE get_publisher itself).
    console.log(`${details.topic}: ${JSON.stringify(argsList)} ${JSON.stringify(argsDict ?? {})} `
        + `from session ${details.publisher}`);
    received.push(details.topic);
    if (received.length === 2) allReceived();
}, { match: 'prefix' });

// wampy 8 always publishes with acknowledge: true, so publish() resolves once the router
// accepted the event (or rejects with its error).
await publisher.publish('com.example.sensor.temperature', { argsList: [21.5], argsDict: { unit: 'C' } });
await publisher.publish('com.example.sensor.humidity', [40]);

const timeout = setTimeout(() => {
    console.error(`only ${received.length} of 2 events arrived`);
    process.exit(1);
}, 5000);
await done;
clearTimeout(timeout);

await publisher.disconnect();
await subscriber.disconnect();
