// A shared registration: three callees register the same procedure with invoke "roundrobin";
// a caller calls it six times and each callee answers in turn.
//
//   node wampy_roundrobin.mjs          (against `fastwamp` started with no options)
//
// FASTWAMP_WS_URL and FASTWAMP_REALM override ws://127.0.0.1:8080/ws and realm1.

import WebSocket from 'ws';
import { Wampy } from 'wampy';

const URL = process.env.FASTWAMP_WS_URL || 'ws://127.0.0.1:8080/ws';
const REALM = process.env.FASTWAMP_REALM || 'realm1';
const PROCEDURE = 'com.example.whoami';

async function join() {
    const wampy = new Wampy(URL, { realm: REALM, ws: WebSocket, autoReconnect: false });
    await wampy.connect();
    return wampy;
}

const callees = [];
for (const name of ['worker-a', 'worker-b', 'worker-c']) {
    const callee = await join();
    // Every callee must ask for the same policy; a different one is refused with
    // wamp.error.procedure_already_exists.
    await callee.register(PROCEDURE, ({ argsList }) => ({ argsList: [name, argsList[0]] }),
        { invoke: 'roundrobin' });
    callees.push(callee);
}

const caller = await join();
const answers = [];
for (let i = 1; i <= 6; i++) {
    const result = await caller.call(PROCEDURE, [i]);
    const [worker, n] = result.argsList;
    console.log(`call ${n} answered by ${worker}`);
    answers.push(worker);
}
// Round robin: each callee in turn, in the order they registered.
if (answers.join() !== 'worker-a,worker-b,worker-c,worker-a,worker-b,worker-c') {
    console.error(`unexpected order: ${answers.join()}`);
    process.exitCode = 1;
}

for (const session of [caller, ...callees]) await session.disconnect();
