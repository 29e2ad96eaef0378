// wampy.js over wss:// (run by tests/interop/test_tls.py, not by `node --test`).
//
// Trusts the test's CA through NODE_EXTRA_CA_CERTS; joins FASTWAMP_WS_URL, calls
// wamp.session.get on its own session and prints the result as JSON.

import WebSocket from 'ws';
import { Wampy } from 'wampy';
import { JsonSerializer } from 'wampy/JsonSerializer.js';

const wampy = new Wampy(process.env.FASTWAMP_WS_URL, {
    realm: process.env.FASTWAMP_REALM || 'realm1',
    ws: WebSocket,
    serializer: new JsonSerializer(),
    autoReconnect: false,
});
await wampy.connect();
const result = await wampy.call('wamp.session.get', [wampy.getSessionId()]);
console.log(JSON.stringify(result.argsList[0]));
await wampy.disconnect();
