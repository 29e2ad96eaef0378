// The guide's own code ("Beyond the Basics", written for an older wampy), run on wampy 8
// through guide_api.mjs: its load-balancing and timeout examples, unchanged but for the
// client objects.
//
//   node guide_style.mjs               (against `fastwamp` started with no options)
//
// FASTWAMP_WS_URL and FASTWAMP_REALM override ws://127.0.0.1:8080/ws and realm1.

import WebSocket from 'ws';
import { Wampy } from 'wampy';
import { JsonSerializer } from 'wampy/JsonSerializer.js';

import { createGuideApi } from './guide_api.mjs';

const URL = process.env.FASTWAMP_WS_URL || 'ws://127.0.0.1:8080/ws';
const REALM = process.env.FASTWAMP_REALM || 'realm1';

const guide = createGuideApi({ Wampy, WebSocket, serializers: { json: JsonSerializer } });
const worker1 = await guide.connect(URL, REALM, { serializer: 'json' });
const worker2 = await guide.connect(URL, REALM, { serializer: 'json' });
const wampy = await guide.connect(URL, REALM, { serializer: 'json' });

// --- the guide: "Load Balancing" -------------------------------------------------------
// Service Instance 1
await worker1.register('com.myapp.process_order', {
    rpc: function (args, kwargs) {
        // Process order logic
        return { order_id: kwargs.order_id, processed_by: 'instance_1' };
    },
    invoke: 'roundrobin', // Load balancing policy
});
// Service Instance 2
await worker2.register('com.myapp.process_order', {
    rpc: function (args, kwargs) {
        // Same logic, different instance
        return { order_id: kwargs.order_id, processed_by: 'instance_2' };
    },
    invoke: 'roundrobin', // Same policy
});
// Callers don't know or care which instance handles the call
for (const order_id of [123, 124]) {
    // A plain object returned by the guide's rpc arrives as the result's argsDict.
    const result = await wampy.call('com.myapp.process_order', null, { order_id: order_id });
    console.log(`order ${result.argsDict.order_id} processed by ${result.argsDict.processed_by}`);
}

// --- the guide: "Timeouts" (CALL timeout in milliseconds) -------------------------------
await worker1.register('com.myapp.slow_operation', {
    rpc: () => new Promise((resolve) => setTimeout(() => resolve({ argsList: ['late'] }), 2000)),
});
await new Promise((resolve) => {
    wampy.call('com.myapp.slow_operation', [], {
        timeout: 300,
        onSuccess: function (result) { console.log('unexpected:', result); resolve(); },
        onError: function (error) {
            if (error.error === 'wamp.error.timeout') {
                console.log('Operation timed out');
            } else {
                console.log('unexpected error', error.error);
                process.exitCode = 1;
            }
            resolve();
        },
    });
});

for (const client of [wampy, worker1, worker2]) await client.disconnect();
